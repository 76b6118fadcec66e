#include "snapshot/state_file.h"

#include <array>
#include <cstring>

namespace snapshot {
namespace {

constexpr char kMagic[8] = {'V', 'M', 'L', 'S', 'N', 'A', 'P', 0};

std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82f63b78u ^ (c >> 1) : c >> 1;  // Castagnoli, reflected
    table[i] = c;
  }
  return table;
}

void put(std::vector<uint8_t>& out, uint64_t v, unsigned width) {
  for (unsigned i = 0; i < width; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t get(std::span<const uint8_t> in, size_t at, unsigned width) {
  uint64_t v = 0;
  for (unsigned i = 0; i < width; ++i) v |= uint64_t{in[at + i]} << (8 * i);
  return v;
}

}  // namespace

uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_table();
  crc = ~crc;
  for (uint8_t b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::vector<uint8_t> encode(const StateFile& file) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  put(out, kFormatVersion, 4);
  const std::string header = file.header.dump(1);
  put(out, header.size(), 8);
  out.insert(out.end(), header.begin(), header.end());
  put(out, file.blob.size(), 8);
  out.insert(out.end(), file.blob.begin(), file.blob.end());
  put(out, crc32c(out), 4);
  return out;
}

base::ErrorOr<StateFile> decode(std::span<const uint8_t> bytes) {
  if (bytes.size() < sizeof kMagic + 4 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    return base::fail(base::Error("not a vmlaunch snapshot state file"));
  const uint32_t version = static_cast<uint32_t>(get(bytes, 8, 4));
  if (version != kFormatVersion)
    return base::fail(base::Error("snapshot format version " + std::to_string(version) +
                                  ", this vmlaunch reads version " + std::to_string(kFormatVersion)));
  auto truncated = [&] {
    return base::fail(
        base::Error("the state file is truncated (" + std::to_string(bytes.size()) + " bytes)"));
  };
  size_t at = 12;
  if (bytes.size() - at < 8) return truncated();
  const uint64_t header_size = get(bytes, at, 8);
  at += 8;
  if (header_size > bytes.size() - at) return truncated();
  const size_t header_at = at;
  at += header_size;
  if (bytes.size() - at < 8) return truncated();
  const uint64_t blob_size = get(bytes, at, 8);
  at += 8;
  if (blob_size > bytes.size() - at || bytes.size() - at - blob_size < 4) return truncated();
  const size_t blob_at = at;
  at += blob_size;
  if (bytes.size() - at != 4)
    return base::fail(
        base::Error("the state file has " + std::to_string(bytes.size() - at - 4) + " bytes after its end"));
  const uint32_t stored = static_cast<uint32_t>(get(bytes, at, 4));
  const uint32_t computed = crc32c(bytes.first(at));
  if (stored != computed) return base::fail(base::Error("the state file is corrupted (checksum mismatch)"));
  StateFile file;
  file.header = nlohmann::json::parse(bytes.begin() + header_at, bytes.begin() + header_at + header_size,
                                      nullptr, false);
  if (file.header.is_discarded() || !file.header.is_object())
    return base::fail(base::Error("the state file's header is not a JSON object"));
  file.blob.assign(bytes.begin() + blob_at, bytes.begin() + blob_at + blob_size);
  return file;
}

base::ErrorOr<std::span<const uint8_t>> blob_range(const StateFile& file, const nlohmann::json& where) {
  if (!where.is_object() || !where.contains("offset") || !where.contains("length") ||
      !where["offset"].is_number_integer() || !where["length"].is_number_integer() ||
      where["offset"].get<int64_t>() < 0 || where["length"].get<int64_t>() < 0)
    return base::fail(base::Error("the state file's header lacks an offset/length"));
  const uint64_t offset = where["offset"].get<uint64_t>(), length = where["length"].get<uint64_t>();
  if (offset > file.blob.size() || length > file.blob.size() - offset)
    return base::fail(base::Error("the state file's header points outside its data"));
  return std::span<const uint8_t>(file.blob).subspan(offset, length);
}

}  // namespace snapshot
