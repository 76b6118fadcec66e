// `raw` block backend: a plain file or a host block device, byte for byte.
// `direct` opens with O_DIRECT (no host page cache); unaligned requests then go through an
// aligned bounce buffer. flush() is fdatasync(): data the guest flushed is on the disk.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "backends/block.h"
#include "base/result.h"

namespace backends::block {

class RawBackend : public BlockBackend {
 public:
  struct Options {
    bool read_only = false;
    bool direct = false;
  };
  static base::ErrorOr<std::unique_ptr<RawBackend>> open(const std::string& path, Options options);
  ~RawBackend() override;

  uint64_t size() const override { return m_size; }
  bool read_only() const override { return m_options.read_only; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override;
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override;
  base::ErrorOr<void> flush() override;
  base::ErrorOr<void> discard(uint64_t offset, uint64_t length) override;
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override;

  int direct_fd() const override { return m_options.direct ? -1 : m_fd; }

  bool is_block_device() const { return m_block_device; }
  int fd() const { return m_fd; }

 private:
  RawBackend(int fd, std::string path, Options options, uint64_t size, bool block_device)
      : m_fd(fd), m_path(std::move(path)), m_options(options), m_size(size), m_block_device(block_device) {}
  base::ErrorOr<void> check(uint64_t offset, uint64_t length, bool writing) const;
  base::ErrorOr<void> read_direct(uint64_t offset, std::span<uint8_t> out);
  base::ErrorOr<void> write_direct(uint64_t offset, std::span<const uint8_t> in);
  base::Error io_error(const char* what, uint64_t offset) const;

  int m_fd;
  std::string m_path;
  Options m_options;
  uint64_t m_size;
  bool m_block_device;
  std::mutex m_bounce_lock;  // read-modify-write of partial O_DIRECT blocks
};

// pread/pwrite the whole span, retrying short transfers and EINTR. Reading past end of file
// fills zeros (a sparse or short image reads as zeros, like a disk).
base::ErrorOr<void> pread_all(int fd, uint64_t offset, std::span<uint8_t> out);
base::ErrorOr<void> pwrite_all(int fd, uint64_t offset, std::span<const uint8_t> in);

}  // namespace backends::block
