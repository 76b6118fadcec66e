// Entropy backends for virtio-rng: `random` reads a host file or device (default /dev/urandom);
// `builtin` asks the kernel directly with getrandom(2) (no file needed, e.g. in a sandbox).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "backends/rng.h"
#include "base/result.h"

namespace backends::rng {

class FileRng : public RngBackend {
 public:
  static base::ErrorOr<std::unique_ptr<FileRng>> open(const std::string& path = "/dev/urandom");
  ~FileRng() override;
  base::ErrorOr<void> fill(std::span<uint8_t> out) override;

 private:
  FileRng(int fd, std::string path) : m_fd(fd), m_path(std::move(path)) {}
  int m_fd;
  std::string m_path;
  std::mutex m_lock;
};

class GetrandomRng : public RngBackend {
 public:
  base::ErrorOr<void> fill(std::span<uint8_t> out) override;
};

}  // namespace backends::rng
