// The snapshot's state file (DIR/state.vmls): what the machine was, and the saved state of its
// vCPUs and devices, behind a checksum.
//
//   "VMLSNAP\0"  magic (8 bytes)
//   u32          format version (kFormatVersion)
//   u64          header length, then the header: JSON (what, where, versions; see snapshot.h)
//   u64          blob length, then the blob: the vCPU and device states the header points into
//   u32          CRC-32C of every byte before it
// Little-endian. A file of another format version is refused before anything else is read; a
// truncated or altered one fails the length checks or the checksum.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace snapshot {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr char kStateFile[] = "state.vmls";
inline constexpr char kRamFile[] = "ram.zst";
inline constexpr char kConfigFile[] = "config.json";

struct StateFile {
  nlohmann::json header;
  std::vector<uint8_t> blob;
};

uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0);

std::vector<uint8_t> encode(const StateFile& file);
// Errors say what is wrong: not a snapshot, another format version, truncated, checksum mismatch.
base::ErrorOr<StateFile> decode(std::span<const uint8_t> bytes);

// The byte range [offset, offset+length) of the blob, checked against its size.
base::ErrorOr<std::span<const uint8_t>> blob_range(const StateFile& file, const nlohmann::json& where);

}  // namespace snapshot
