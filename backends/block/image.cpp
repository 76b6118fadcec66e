#include "backends/block/image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

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

namespace {

// One image of a backing chain: its file identity and the name it was opened by.
struct ChainLink {
  dev_t device;
  ino_t inode;
  std::string path;
};

base::ErrorOr<std::shared_ptr<BlockBackend>> open_chain(const std::string& path, const ImageOptions& options,
                                                        std::vector<ChainLink>& chain);

}  // namespace

base::ErrorOr<std::shared_ptr<BlockBackend>> open_image(const std::string& path, const ImageOptions& options,
                                                        int depth) {
  std::vector<ChainLink> chain;
  for (int i = 0; i < depth; ++i) chain.push_back({0, 0, ""});  // callers that count depth themselves
  return open_chain(path, options, chain);
}

base::ErrorOr<std::vector<std::string>> image_chain_files(const std::string& path,
                                                          const std::string& format) {
  std::vector<ChainLink> chain;
  TRY(open_chain(path, {format, true, false}, chain));
  std::vector<std::string> files;
  for (const ChainLink& link : chain) files.push_back(link.path.empty() ? path : link.path);
  return files;
}

namespace {

base::ErrorOr<std::shared_ptr<BlockBackend>> open_chain(const std::string& path, const ImageOptions& options,
                                                        std::vector<ChainLink>& chain) {
  const int depth = static_cast<int>(chain.size());
  if (depth > kMaxBackingDepth)
    return base::fail(base::Error(path + ": backing chain deeper than " + std::to_string(kMaxBackingDepth)));
  // A file met again in its own chain is a loop: say so, before opening it a second time (the
  // first open's lock would refuse the second, which would read as "in use by another process").
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    for (size_t i = 0; i < chain.size(); ++i) {
      if (chain[i].path.empty() || chain[i].device != st.st_dev || chain[i].inode != st.st_ino) continue;
      std::string names;
      for (size_t k = i; k < chain.size(); ++k) names += chain[k].path + " -> ";
      return base::fail(base::Error("backing file loop: " + names + path));
    }
    chain.push_back({st.st_dev, st.st_ino, path});
  } else {
    chain.push_back({0, 0, ""});
  }
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
    qcow2_options.open_backing = [&chain](const std::string& backing, const std::string& backing_format) {
      return open_chain(backing, {backing_format, true, false}, chain);
    };
    auto image = TRY(Qcow2Backend::open(path, std::move(qcow2_options)));
    return std::shared_ptr<BlockBackend>(std::move(image));
  }
  return base::fail(base::Error("unknown image format '" + format + "' (known: raw, qcow2, zstd)"));
}

}  // namespace

}  // namespace backends::block
