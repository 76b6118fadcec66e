// GuestMemory: the guest's RAM, as host mappings with guest-physical bases.
// Everything the guest hands us (descriptor addresses, DMA buffers, boot pointers) is checked here:
// an access is served only if [gpa, gpa+len) lies inside one region, with overflow checked.
// Accelerators map the regions (KVM memory slots, the interpreter's TLB); devices only see this API.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/result.h"

namespace base {

class GuestMemory {
 public:
  struct Region {
    uint64_t guest_base = 0;
    uint64_t size = 0;
    uint8_t* host = nullptr;  // owned by GuestMemory; valid for its lifetime
    int fd = -1;              // the memfd behind a shareable region (owned), else -1
  };

  GuestMemory() = default;
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Maps `size` bytes of zeroed anonymous memory at guest-physical `guest_base`.
  // Fails on zero size, overflow, overlap with an existing region, or mmap failure.
  ErrorOr<Region> add_region(uint64_t guest_base, uint64_t size);

  // Regions added after set_shareable(true) live in a sealed memfd (MFD_CLOEXEC|MFD_ALLOW_SEALING,
  // shrinking and growing sealed off) mapped shared, so another process (a vhost-user backend such
  // as virtiofsd) can map the same RAM from Region::fd. Machines turn it on only when a vhost-user
  // device is present: private anonymous memory stays the default.
  void set_shareable(bool shareable) { m_shareable = shareable; }
  bool shareable() const { return m_shareable; }

  const std::vector<Region>& regions() const { return m_regions; }

  // The host bytes for [gpa, gpa+len) if they lie wholly inside one region, else nullopt.
  std::optional<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const;

  bool read(uint64_t gpa, std::span<uint8_t> out) const;
  bool write(uint64_t gpa, std::span<const uint8_t> in) const;

  // Little-endian scalar access (all our guests are little-endian).
  template <typename T>
  std::optional<T> read_le(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    if (!read(gpa, {reinterpret_cast<uint8_t*>(&value), sizeof(T)})) return std::nullopt;
    return value;
  }
  template <typename T>
  bool write_le(uint64_t gpa, T value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, {reinterpret_cast<const uint8_t*>(&value), sizeof(T)});
  }

 private:
  ErrorOr<Region> add_shared_region(uint64_t guest_base, uint64_t size);

  std::vector<Region> m_regions;
  bool m_shareable = false;
};

}  // namespace base
