// Internal to virtio-blk: the io_uring engine's state (see BlkDevice::start_uring).
#pragma once

#include <liburing.h>

#include <thread>

#include "hw/virtio/blk.h"

namespace hw::virtio {

struct BlkDevice::UringState {
  io_uring ring{};
  int kick_fd = -1;  // eventfd: notify() -> the uring thread (polled through the ring itself)
  unsigned entries = 0;
  std::thread thread;
  bool stop = false;  // guarded by BlkDevice::m_lock
};

}  // namespace hw::virtio
