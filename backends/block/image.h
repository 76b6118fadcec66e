// Opens a disk image by format: "raw", "qcow2", "zstd", or "" to probe (qcow2 magic, zstd magic,
// else raw). Backing chains of qcow2 images are opened through here too (read-only): a file met
// again in its own chain is a "backing file loop" error naming the chain, and the depth is bounded.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/block.h"
#include "base/result.h"

namespace backends::block {

struct ImageOptions {
  std::string format;  // "", "raw", "qcow2", "zstd"
  bool read_only = false;
  bool direct = false;  // raw only
};

constexpr int kMaxBackingDepth = 16;

base::ErrorOr<std::shared_ptr<BlockBackend>> open_image(const std::string& path, const ImageOptions& options,
                                                        int depth = 0);

// The files an image is made of: `path` first, then its backing chain in order (opened read-only
// and closed again). For the jail, which must show exactly these.
base::ErrorOr<std::vector<std::string>> image_chain_files(const std::string& path, const std::string& format);

// "qcow2", "zstd" or "raw" from the file's first bytes.
base::ErrorOr<std::string> probe_format(const std::string& path);

}  // namespace backends::block
