// Guest RAM and split virtqueues for the fuzz targets of virtio devices (virtqueue_fuzz,
// blk_fuzz, net_fuzz): 1 MiB at kRamBase that each input overwrites from its own bytes, and rings
// laid out as a driver would (descriptor table, avail ring, then the used ring 4-aligned).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "base/guest_memory.h"
#include "hw/virtio/virtqueue.h"

namespace fuzzing {

constexpr uint64_t kRamBase = 0x10000, kRamSize = 1 << 20;

// The one guest RAM, zeroed and then filled with `bytes` (as much as fits).
inline base::GuestMemory& fuzz_ram(const uint8_t* bytes, size_t size) {
  static base::GuestMemory* memory = [] {
    auto* m = new base::GuestMemory();
    (void)m->add_region(kRamBase, kRamSize);
    return m;
  }();
  auto region = memory->regions()[0];
  std::memset(region.host, 0, region.size);
  std::memcpy(region.host, bytes, std::min<size_t>(size, region.size));
  return *memory;
}

// A ring of `size` entries with its descriptor table at `base`; nullopt when the walker refuses it.
inline std::optional<hw::virtio::Virtqueue> ring_at(base::GuestMemory& memory, uint64_t base, uint32_t size,
                                                    uint8_t feature_bits) {
  hw::virtio::Virtqueue::Layout layout{size, base, base + 16ull * size, 0};
  layout.used = (layout.avail + 6 + 2ull * size + 3) & ~3ull;
  hw::virtio::Virtqueue::Features features{(feature_bits & 1) != 0, (feature_bits & 2) != 0};
  auto queue = hw::virtio::Virtqueue::create(memory, layout, features);
  if (!queue) return std::nullopt;
  return std::move(queue).value();
}

}  // namespace fuzzing
