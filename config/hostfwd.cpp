#include "config/hostfwd.h"

#include <arpa/inet.h>

namespace config {

namespace {

// Decimal 0..65535, nothing else ("+1", " 1" and "99999" are not ports).
bool parse_port(const std::string& text, uint16_t& port) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  unsigned long value = std::stoul(text);
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

bool parse_hostfwd(const std::string& rule, HostForward& out, std::string& why) {
  auto bad = [&](const std::string& what) {
    why =
        "hostfwd \"" + rule + "\": " + what + " (expected tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport)";
    return false;
  };
  HostForward fwd;
  size_t colon = rule.find(':');
  if (colon == std::string::npos) return bad("no protocol");
  std::string proto = rule.substr(0, colon);
  if (proto != "tcp" && proto != "udp") return bad("protocol must be tcp or udp");
  fwd.udp = proto == "udp";
  std::string rest = rule.substr(colon + 1);
  size_t dash = rest.find('-');
  if (dash == std::string::npos) return bad("no '-' between host and guest");
  std::string host = rest.substr(0, dash), guest = rest.substr(dash + 1);
  size_t host_colon = host.rfind(':'), guest_colon = guest.rfind(':');
  if (host_colon == std::string::npos || guest_colon == std::string::npos) return bad("missing ':port'");
  fwd.host_addr = host.substr(0, host_colon);
  fwd.guest_addr = guest.substr(0, guest_colon);
  const std::string host_port = host.substr(host_colon + 1), guest_port = guest.substr(guest_colon + 1);
  if (!parse_port(host_port, fwd.host_port)) return bad("host port " + host_port + " is not 0-65535");
  if (!parse_port(guest_port, fwd.guest_port) || fwd.guest_port == 0)
    return bad("guest port " + guest_port + " is not 1-65535");
  in_addr probe;
  if (!fwd.host_addr.empty() && inet_pton(AF_INET, fwd.host_addr.c_str(), &probe) != 1)
    return bad("host address " + fwd.host_addr + " is not an IPv4 address");
  if (!fwd.guest_addr.empty() && inet_pton(AF_INET, fwd.guest_addr.c_str(), &probe) != 1)
    return bad("guest address " + fwd.guest_addr + " is not an IPv4 address");
  out = fwd;
  return true;
}

}  // namespace config
