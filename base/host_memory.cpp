#include "base/host_memory.h"

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace base {

ErrorOr<HostMemory> parse_meminfo(std::string_view text) {
  HostMemory out;
  bool have_available = false;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view rest = line.substr(colon + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    uint64_t kib = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kib);
    if (ec != std::errc() || kib > (UINT64_MAX >> 10)) continue;
    if (key == "MemAvailable") {
      out.available = kib << 10;
      have_available = true;
    } else if (key == "SwapFree") {
      out.swap_free = kib << 10;
    }
  }
  if (!have_available) return fail(Error("/proc/meminfo has no MemAvailable line"));
  return out;
}

ErrorOr<HostMemory> host_memory() {
  std::ifstream in("/proc/meminfo");
  if (!in) return fail(Error("cannot read /proc/meminfo"));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_meminfo(text.str());
}

std::string human_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  uint64_t whole = bytes;
  while (whole >= 1024 && unit < 6) {
    whole >>= 10;
    ++unit;
  }
  if (unit == 0) return std::to_string(bytes) + " bytes";
  uint64_t scale = uint64_t{1} << (10 * unit);
  if (bytes % scale == 0) return std::to_string(bytes / scale) + " " + kUnits[unit];
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", static_cast<double>(bytes) / static_cast<double>(scale),
                kUnits[unit]);
  return text;
}

ErrorOr<void> check_guest_memory(uint64_t guest_bytes, const HostMemory& host,
                                 const std::string& override_hint) {
  uint64_t backable = host.available + host.swap_free;
  if (backable < host.available) backable = UINT64_MAX;  // overflow: no limit worth stating
  if (guest_bytes <= backable) return {};
  return fail(Error("memory: " + human_bytes(guest_bytes) + " is more than this host can back (" +
                    human_bytes(host.available) + " available, " + human_bytes(host.swap_free) +
                    " free swap); lower it" + (override_hint.empty() ? "" : ", or " + override_hint)));
}

}  // namespace base
