// Guest RAM in a snapshot (DIR/ram.zst): RAM in chunks of kChunkPages pages, each stored as a bitmap
// of its non-zero pages followed by one zstd frame (with its content checksum) of those pages.
// All-zero chunks take no space at all and zero pages are never written back (a restored machine's
// RAM starts zeroed). Chunks are compressed and decompressed on several threads (role snapshot);
// the index (offsets, sizes, CRC-32C of each stored chunk) goes into the state file's header, so
// a truncated or altered RAM file is refused before any of it is used.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/guest_memory.h"
#include "base/result.h"

namespace snapshot {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kChunkPages = 1024;  // 4 MiB of RAM per chunk

struct RamStats {
  uint64_t ram_bytes = 0;      // guest RAM covered
  uint64_t nonzero_pages = 0;  // pages written
  uint64_t stored_bytes = 0;   // size of the RAM file
};

// Writes every RAM region of `memory` to `path` (created, replaced) and returns the index for the
// header. Call with the vCPUs parked.
base::ErrorOr<nlohmann::json> save_ram(const base::GuestMemory& memory, const std::filesystem::path& path,
                                       unsigned threads, RamStats* stats = nullptr);

// Checks `index` against `memory`'s regions and the file, then fills RAM. Nothing is written to
// RAM before the file's size matches the index; a chunk that fails its checksum fails the load.
base::ErrorOr<void> load_ram(const base::GuestMemory& memory, const std::filesystem::path& path,
                             const nlohmann::json& index, unsigned threads);

// The ranges of `memory` as the index records them, for comparison at restore.
nlohmann::json ram_layout(const base::GuestMemory& memory);

}  // namespace snapshot
