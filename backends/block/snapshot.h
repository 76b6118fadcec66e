// `snapshot: true`: the guest sees a writable disk, but its writes land in an unlinked temporary
// file and vanish when the machine stops; the image itself is opened read-only and never changes.
// Granularity is 4 KiB blocks, copied up from the image on their first partial write.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "backends/block.h"
#include "base/result.h"

namespace backends::block {

class SnapshotBackend : public BlockBackend {
 public:
  static constexpr uint64_t kBlock = 4096;
  static base::ErrorOr<std::unique_ptr<SnapshotBackend>> create(std::shared_ptr<BlockBackend> image);
  ~SnapshotBackend() override;

  uint64_t size() const override { return m_image->size(); }
  bool read_only() const override { return false; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override;
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override;
  base::ErrorOr<void> flush() override { return {}; }  // nothing here is meant to last
  base::ErrorOr<void> discard(uint64_t offset, uint64_t length) override;
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override;

 private:
  SnapshotBackend(std::shared_ptr<BlockBackend> image, int fd);
  base::ErrorOr<void> write_block_part(uint64_t offset, std::span<const uint8_t> in);

  std::shared_ptr<BlockBackend> m_image;
  int m_fd;
  std::vector<bool> m_written;  // per 4 KiB block: the temporary file holds it
  std::mutex m_lock;
};

}  // namespace backends::block
