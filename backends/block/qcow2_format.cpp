#include "backends/block/qcow2_format.h"

#include <cstring>

namespace backends::block::qcow2 {

uint64_t load_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}
uint32_t load_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
void store_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
void store_be32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

uint64_t Header::l1_needed() const {
  uint64_t per_l2 = cluster_size() * l2_entries();  // bytes one L2 table maps
  return (size + per_l2 - 1) / per_l2;
}

namespace {
base::Error bad(const std::string& why) {
  return base::Error("not a valid qcow2 image: " + why);
}

std::string known_feature_name(uint64_t bit) {
  switch (bit) {
    case 0:
      return "dirty bit";
    case 1:
      return "corrupt bit";
    case 2:
      return "external data file";
    case 3:
      return "compression type";
    case 4:
      return "extended L2 entries";
    default:
      return "unknown feature";
  }
}
}  // namespace

std::string describe_incompatible(const Header& header, uint64_t bits) {
  std::string out;
  for (uint32_t bit = 0; bit < 64; ++bit) {
    if (!(bits & (1ull << bit))) continue;
    auto named = header.incompatible_names.find(bit);
    std::string name = named != header.incompatible_names.end() ? named->second : known_feature_name(bit);
    out += (out.empty() ? "" : ", ") + name + " (bit " + std::to_string(bit) + ")";
  }
  return out;
}

base::ErrorOr<Header> parse_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < 72) return base::fail(bad("file shorter than a qcow2 header"));
  const uint8_t* p = bytes.data();
  if (load_be32(p) != kMagic) return base::fail(bad("bad magic"));
  Header h;
  h.version = load_be32(p + 4);
  if (h.version != 2 && h.version != 3)
    return base::fail(bad("version " + std::to_string(h.version) + " (only 2 and 3 exist)"));
  h.backing_file_offset = load_be64(p + 8);
  h.backing_file_size = load_be32(p + 16);
  h.cluster_bits = load_be32(p + 20);
  h.size = load_be64(p + 24);
  h.crypt_method = load_be32(p + 32);
  h.l1_size = load_be32(p + 36);
  h.l1_table_offset = load_be64(p + 40);
  h.refcount_table_offset = load_be64(p + 48);
  h.refcount_table_clusters = load_be32(p + 56);
  h.nb_snapshots = load_be32(p + 60);
  h.snapshots_offset = load_be64(p + 64);
  if (h.cluster_bits < 9 || h.cluster_bits > 21)
    return base::fail(bad("cluster_bits " + std::to_string(h.cluster_bits) + " outside [9, 21]"));
  uint64_t cluster = h.cluster_size();
  if (h.version == 3) {
    if (bytes.size() < 104) return base::fail(bad("file shorter than a version 3 header"));
    h.incompatible = load_be64(p + 72);
    h.compatible = load_be64(p + 80);
    h.autoclear = load_be64(p + 88);
    h.refcount_order = load_be32(p + 96);
    h.header_length = load_be32(p + 100);
    if (h.header_length < 104 || h.header_length % 8 || h.header_length > cluster ||
        h.header_length > bytes.size())
      return base::fail(bad("header_length " + std::to_string(h.header_length)));
    if (h.header_length > 104) h.compression_type = p[104];
    if (h.refcount_order > 6)
      return base::fail(bad("refcount_order " + std::to_string(h.refcount_order) + " above 6"));
  }
  if (h.crypt_method != 0) return base::fail(base::Error("encrypted qcow2 images are not supported"));
  // Sizes: a virtual size whose L1 table would not fit in 32 MiB cannot be opened (QEMU agrees).
  if (h.size > (1ull << 60)) return base::fail(bad("virtual size too large"));
  if (h.l1_size > kMaxL1Bytes / 8) return base::fail(bad("L1 table larger than 32 MiB"));
  if (h.l1_size < h.l1_needed()) return base::fail(bad("L1 table too small for the virtual size"));
  if (h.l1_size && (h.l1_table_offset % cluster || h.l1_table_offset == 0))
    return base::fail(bad("L1 table offset not cluster aligned"));
  if (h.l1_table_offset > kOffsetMask) return base::fail(bad("L1 table offset out of range"));
  if (h.refcount_table_offset % cluster || h.refcount_table_offset == 0 ||
      h.refcount_table_offset > kOffsetMask)
    return base::fail(bad("refcount table offset invalid"));
  if (h.refcount_table_clusters == 0 ||
      uint64_t(h.refcount_table_clusters) * cluster > kMaxRefcountTableBytes)
    return base::fail(bad("refcount table size " + std::to_string(h.refcount_table_clusters) + " clusters"));
  if (h.nb_snapshots && (h.snapshots_offset % cluster)) return base::fail(bad("snapshot table not aligned"));
  if (h.compression_type > 1) return base::fail(bad("unknown compression type"));

  // Backing file name: lives in the header cluster (QEMU's rule).
  if (h.backing_file_offset) {
    if (h.backing_file_size == 0 || h.backing_file_size > 1023)
      return base::fail(bad("backing file name length " + std::to_string(h.backing_file_size)));
    if (h.backing_file_offset > bytes.size() || h.backing_file_size > bytes.size() - h.backing_file_offset)
      return base::fail(bad("backing file name outside the header cluster"));
    h.backing_file.assign(reinterpret_cast<const char*>(p + h.backing_file_offset), h.backing_file_size);
  }

  // Header extensions, up to the backing file name or the end of the header cluster.
  uint64_t end = std::min<uint64_t>(bytes.size(), cluster);
  if (h.backing_file_offset) end = std::min(end, h.backing_file_offset);
  uint64_t at = h.version == 3 ? h.header_length : 72;
  while (at + 8 <= end) {
    uint32_t type = load_be32(p + at);
    uint32_t length = load_be32(p + at + 4);
    if (type == 0) break;
    if (length > end - at - 8) return base::fail(bad("header extension runs past the header"));
    const uint8_t* data = p + at + 8;
    if (type == 0xe2792aca) {
      h.backing_format.assign(reinterpret_cast<const char*>(data), length);
    } else if (type == 0x6803f857) {
      // Feature name table: 48-byte entries {u8 type, u8 bit, char name[46]}.
      for (uint32_t off = 0; off + 48 <= length; off += 48) {
        if (data[off] != 0) continue;  // only incompatible names matter for our errors
        const char* name = reinterpret_cast<const char*>(data + off + 2);
        h.incompatible_names[data[off + 1]] = std::string(name, strnlen(name, 46));
      }
    }
    at += 8 + ((uint64_t(length) + 7) & ~7ull);
  }

  uint64_t unsupported = h.incompatible & ~kIncompatSupported;
  if (unsupported)
    return base::fail(base::Error("qcow2 image uses unsupported incompatible features: " +
                                  describe_incompatible(h, unsupported)));
  return h;
}

}  // namespace backends::block::qcow2
