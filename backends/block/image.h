// Opens a disk image by format: "raw", "qcow2", "zstd", or "" to probe (qcow2 magic, zstd magic,
// else raw). Backing chains of qcow2 images are opened through here too (read-only): a file met
// again in its own chain is a "backing file loop" error naming the chain, and the depth is bounded.
#pragma once

#include <memory>
#include <string>

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

// "qcow2", "zstd" or "raw" from the file's first bytes.
base::ErrorOr<std::string> probe_format(const std::string& path);

}  // namespace backends::block
