#include "backends/block/image.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/block/qcow2.h"
#include "backends/block/raw.h"
#include "backends/block/zstd.h"

namespace backends::block {

base::ErrorOr<std::string> probe_format(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + std::strerror(errno)));
  uint8_t magic[4] = {};
  ssize_t n = pread(fd, magic, 4, 0);
  close(fd);
  if (n == 4 && std::memcmp(magic, "QFI\xfb", 4) == 0) return std::string("qcow2");
  if (n == 4 && std::memcmp(magic, "\x28\xb5\x2f\xfd", 4) == 0) return std::string("zstd");
  return std::string("raw");
}

base::ErrorOr<std::shared_ptr<BlockBackend>> open_image(const std::string& path, const ImageOptions& options,
                                                        int depth) {
  if (depth > kMaxBackingDepth)
    return base::fail(
        base::Error(path + ": backing chain deeper than " + std::to_string(kMaxBackingDepth) + " (a loop?)"));
  std::string format = options.format;
  // A backing format of "raw" for a file that is really zstd is how qemu-img would describe our
  // compressed bases; trust the magic over the hint for zstd.
  std::string probed = TRY(probe_format(path));
  if (format.empty() || (format == "raw" && probed == "zstd")) format = probed;
  if (format == "raw") {
    auto raw = TRY(RawBackend::open(path, {options.read_only, options.direct}));
    return std::shared_ptr<BlockBackend>(std::move(raw));
  }
  if (format == "zstd") {
    if (!options.read_only)
      return base::fail(base::Error(path + ": zstd images are read-only (set read-only: true)"));
    auto image = TRY(ZstdBackend::open(path));
    return std::shared_ptr<BlockBackend>(std::move(image));
  }
  if (format == "qcow2") {
    if (probed != "qcow2") return base::fail(base::Error(path + ": not a qcow2 image (no QFI magic)"));
    Qcow2Backend::Options qcow2_options;
    qcow2_options.read_only = options.read_only;
    qcow2_options.open_backing = [depth](const std::string& backing, const std::string& backing_format) {
      return open_image(backing, {backing_format, true, false}, depth + 1);
    };
    auto image = TRY(Qcow2Backend::open(path, std::move(qcow2_options)));
    return std::shared_ptr<BlockBackend>(std::move(image));
  }
  return base::fail(base::Error("unknown image format '" + format + "' (known: raw, qcow2, zstd)"));
}

}  // namespace backends::block
