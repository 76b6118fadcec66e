// The `hostfwd:` rule syntax of user networking ("tcp:127.0.0.1:2222-:22"), parsed in one place:
// `validate` checks it (bad input, exit 2) and the user-network backend reads the same result.
#pragma once

#include <cstdint>
#include <string>

namespace config {

struct HostForward {
  bool udp = false;
  std::string host_addr;  // empty: all interfaces
  uint16_t host_port = 0;
  std::string guest_addr;  // empty: the DHCP address (10.0.2.15)
  uint16_t guest_port = 0;
};

// "tcp:127.0.0.1:2222-:22" -> `out`. On failure returns false and sets `why` to a message that
// quotes the rule and says what is wrong with it and what the form is.
bool parse_hostfwd(const std::string& rule, HostForward& out, std::string& why);

}  // namespace config
