// Entropy backend interface, for virtio-rng.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"

namespace backends {

class RngBackend {
 public:
  virtual ~RngBackend() = default;
  // Fills `out` completely or fails; may block briefly.
  virtual base::ErrorOr<void> fill(std::span<uint8_t> out) = 0;
};

}  // namespace backends
