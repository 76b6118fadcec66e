// libFuzzer target: the snapshot state file (snapshot/state_file), as `up --restore DIR` reads it
// from a directory anyone may have edited. Byte 0 picks the mode: raw bytes as the file, or the
// same bytes with their trailing CRC-32C recomputed, so the fuzzer gets past the checksum into the
// lengths and the JSON header. Every decoded header is walked for blob references
// ({"offset", "length"} objects, as the vCPU and device entries hold), each checked by blob_range:
// a range it accepts must lie inside the blob.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "snapshot/state_file.h"

namespace {

void walk(const snapshot::StateFile& file, const nlohmann::json& node, int depth) {
  if (depth > 64) return;
  if (node.is_object()) {
    if (node.contains("offset") || node.contains("length")) {
      auto range = snapshot::blob_range(file, node);
      if (range.ok()) {
        const uint8_t* begin = file.blob.data();
        const uint8_t* end = begin + file.blob.size();
        if (!range.value().empty() &&
            (range.value().data() < begin || range.value().data() + range.value().size() > end))
          std::abort();
      }
    }
    for (const auto& item : node.items()) walk(file, item.value(), depth + 1);
  } else if (node.is_array()) {
    for (const auto& item : node) walk(file, item, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::vector<uint8_t> bytes(data + 1, data + size);
  if ((data[0] & 1) && bytes.size() >= 4) {
    uint32_t crc = snapshot::crc32c({bytes.data(), bytes.size() - 4});
    for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  }
  auto decoded = snapshot::decode(bytes);
  if (!decoded.ok()) return 0;
  walk(decoded.value(), decoded.value().header, 0);
  // What decode accepts, encode writes back the same way.
  auto again = snapshot::decode(snapshot::encode(decoded.value()));
  if (!again.ok() || again.value().blob != decoded.value().blob) std::abort();
  return 0;
}
