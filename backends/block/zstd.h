// `zstd` block backend: a zstd-compressed raw image (`base.raw.zst`), read-only, typically the
// backing file of a qcow2 overlay (ship the compressed base, keep local changes in the overlay).
//
// Random access: an image made of several frames with known sizes (e.g. `zstd_compress_frames`
// below, or concatenated `zstd` outputs) is indexed: each read decompresses only the frames it
// touches, with a small LRU cache of decompressed frames. A single-frame image (plain `zstd
// file`) cannot be entered in the middle, so it is decompressed once at open into an unlinked,
// sparse temporary file (in $TMPDIR, else /var/tmp) that serves the reads.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/block.h"
#include "base/result.h"

namespace backends::block {

class ZstdBackend : public BlockBackend {
 public:
  static base::ErrorOr<std::unique_ptr<ZstdBackend>> open(const std::string& path);
  ~ZstdBackend() override;

  uint64_t size() const override { return m_size; }
  bool read_only() const override { return true; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override;
  base::ErrorOr<void> write(uint64_t, std::span<const uint8_t>) override { return read_only_error(); }
  base::ErrorOr<void> flush() override { return {}; }
  base::ErrorOr<void> discard(uint64_t, uint64_t) override { return read_only_error(); }
  base::ErrorOr<void> write_zeroes(uint64_t, uint64_t) override { return read_only_error(); }

  bool indexed() const { return m_cache_fd < 0; }
  size_t frame_count() const { return m_frames.size(); }

 private:
  struct Frame {
    uint64_t compressed_offset, compressed_size;
    uint64_t offset, size;  // decompressed
  };
  ZstdBackend() = default;
  base::ErrorOr<void> read_error(const std::string& why) const;
  base::ErrorOr<void> read_only_error() const {
    return base::fail(base::Error(m_path + ": zstd images are read-only"));
  }
  base::ErrorOr<const std::vector<uint8_t>*> frame_data(size_t index);

  std::string m_path;
  const uint8_t* m_map = nullptr;  // the compressed file, mapped read-only
  uint64_t m_map_size = 0;
  uint64_t m_size = 0;
  std::vector<Frame> m_frames;
  int m_cache_fd = -1;  // single-frame mode: the decompressed image

  std::mutex m_lock;
  std::list<size_t> m_lru;
  std::map<size_t, std::pair<std::vector<uint8_t>, std::list<size_t>::iterator>> m_decoded;
};

// Writes `raw` as a multi-frame zstd file (one frame per `frame_size` bytes) that ZstdBackend
// indexes: how to make a base image with fast random access.
base::ErrorOr<void> zstd_compress_frames(const std::string& raw, const std::string& out, uint64_t frame_size,
                                         int level = 3);

}  // namespace backends::block
