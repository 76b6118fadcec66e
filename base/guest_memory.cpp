#include "base/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace base {

GuestMemory::~GuestMemory() {
  for (const Region& region : m_regions) {
    munmap(region.host, region.size);
    if (region.fd >= 0) close(region.fd);
  }
}

ErrorOr<GuestMemory::Region> GuestMemory::add_region(uint64_t guest_base, uint64_t size) {
  if (size == 0) return fail(Error("guest memory region of zero size"));
  if (guest_base + size < guest_base) return fail(Error("guest memory region wraps the address space"));
  for (const Region& other : m_regions) {
    if (guest_base < other.guest_base + other.size && other.guest_base < guest_base + size)
      return fail(Error("guest memory region overlaps another"));
  }
  if (m_shareable) return add_shared_region(guest_base, size);
  // Anonymous, private and lazily backed: untouched guest RAM costs no host memory.
  // MAP_NORESERVE so a large guest does not fail on overcommit accounting.
  void* host =
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (host == MAP_FAILED)
    return fail(Error(std::string("mmap of guest memory failed: ") + std::strerror(errno)));
  Region region{guest_base, size, static_cast<uint8_t*>(host)};
  m_regions.push_back(region);
  return region;
}

ErrorOr<GuestMemory::Region> GuestMemory::add_shared_region(uint64_t guest_base, uint64_t size) {
  int fd = memfd_create("vmlaunch-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return fail(Error(std::string("memfd_create for guest memory failed: ") + std::strerror(errno)));
  // Sealed at its size: a backend that maps it cannot shrink it under us (SIGBUS in the VMM).
  if (ftruncate(fd, static_cast<off_t>(size)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return fail(Error("sizing the guest memory memfd failed: " + why));
  }
  void* host = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (host == MAP_FAILED) {
    std::string why = std::strerror(errno);
    close(fd);
    return fail(Error("mmap of shared guest memory failed: " + why));
  }
  Region region{guest_base, size, static_cast<uint8_t*>(host), fd};
  m_regions.push_back(region);
  return region;
}

std::optional<std::span<uint8_t>> GuestMemory::slice(uint64_t gpa, uint64_t len) const {
  for (const Region& region : m_regions) {
    if (gpa < region.guest_base) continue;
    uint64_t offset = gpa - region.guest_base;
    // offset <= size and len <= size - offset: no overflow possible in either comparison.
    if (offset > region.size || len > region.size - offset) continue;
    return std::span<uint8_t>(region.host + offset, len);
  }
  return std::nullopt;
}

bool GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  auto bytes = slice(gpa, out.size());
  if (!bytes) return false;
  std::memcpy(out.data(), bytes->data(), out.size());
  return true;
}

bool GuestMemory::write(uint64_t gpa, std::span<const uint8_t> in) const {
  auto bytes = slice(gpa, in.size());
  if (!bytes) return false;
  std::memcpy(bytes->data(), in.data(), in.size());
  return true;
}

}  // namespace base
