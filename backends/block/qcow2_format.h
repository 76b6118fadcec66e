// The qcow2 on-disk format (QEMU docs/interop/qcow2.txt): header parsing and validation as a
// pure function over bytes, so the fuzzer and the tests reach it without a file. Everything in an
// image is untrusted: every field is range-checked before anything is sized or offset by it.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "base/result.h"

namespace backends::block::qcow2 {

constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
constexpr uint64_t kIncompatDirty = 1ull << 0;
constexpr uint64_t kIncompatCorrupt = 1ull << 1;
constexpr uint64_t kIncompatDataFile = 1ull << 2;
constexpr uint64_t kIncompatCompression = 1ull << 3;
constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
// The incompatible features we can honour; anything else refuses the image.
constexpr uint64_t kIncompatSupported = kIncompatDirty | kIncompatCorrupt | kIncompatCompression;

constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;  // bits 9-55 of L1 and standard L2 entries
constexpr uint64_t kCopied = 1ull << 63;
constexpr uint64_t kCompressed = 1ull << 62;
constexpr uint64_t kZero = 1ull;
constexpr uint64_t kL1Reserved = 0x7f000000000001ffull;
constexpr uint64_t kL2Reserved = 0x3f000000000001feull;

constexpr uint32_t kMaxL1Bytes = 32u << 20;            // QEMU's QCOW_MAX_L1_SIZE
constexpr uint32_t kMaxRefcountTableBytes = 8u << 20;  // QEMU's QCOW_MAX_REFTABLE_SIZE

struct Header {
  uint32_t version = 3;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 16;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible = 0;
  uint64_t compatible = 0;
  uint64_t autoclear = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 72;
  uint8_t compression_type = 0;

  std::string backing_file;
  std::string backing_format;                          // from the 0xe2792aca extension; empty = probe
  std::map<uint32_t, std::string> incompatible_names;  // bit -> name from the feature name table

  uint64_t cluster_size() const { return 1ull << cluster_bits; }
  uint64_t l2_entries() const { return cluster_size() / 8; }
  uint64_t refcount_bits() const { return 1ull << refcount_order; }
  uint64_t refcounts_per_block() const { return cluster_size() * 8 / refcount_bits(); }
  // Number of L1 entries needed to map `size` bytes.
  uint64_t l1_needed() const;
};

// Big-endian helpers (qcow2 stores every number big-endian).
uint64_t load_be64(const uint8_t* p);
uint32_t load_be32(const uint8_t* p);
uint16_t load_be16(const uint8_t* p);
void store_be64(uint8_t* p, uint64_t v);
void store_be32(uint8_t* p, uint32_t v);

// Parses and validates the header cluster (`bytes` = the file's first cluster or fewer bytes if the
// file is shorter). `file_size` bounds the table offsets' plausibility.
base::ErrorOr<Header> parse_header(std::span<const uint8_t> bytes);

// Human-readable names of unsupported incompatible feature bits ("extended L2 entries (bit 4)").
std::string describe_incompatible(const Header& header, uint64_t bits);

}  // namespace backends::block::qcow2
