#include "hw/virtio/blk_uring.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "hw/virtio/blk.h"
#include "security/thread_role.h"

namespace hw::virtio {

namespace {
constexpr uint64_t kPollTag = 0;  // user_data of the eventfd poll; requests use their pointer
constexpr uint64_t kSector = 512;

struct Inflight {
  Chain chain;
  uint16_t queue = 0;
  uint32_t type = 0;
  uint64_t expected = 0;  // bytes the read/write must transfer
  std::vector<iovec> iov;
};
}  // namespace

bool BlkDevice::start_uring() {
  auto state = std::make_unique<UringState>();
  uint32_t depth = 0;
  for (Queue* q : m_queues)
    if (q) depth += q->ring.size();
  // One entry per descriptor head the guest can have outstanding, plus the eventfd poll.
  state->entries = std::min<uint32_t>(4096, depth + 1);
  // Fails where io_uring is unavailable (old kernel, seccomp, io_uring_disabled): the caller then
  // runs the worker threads instead.
  if (io_uring_queue_init(state->entries, &state->ring, 0) < 0) return false;
  state->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->kick_fd < 0) {
    io_uring_queue_exit(&state->ring);
    return false;
  }
  m_uring = std::move(state);
  m_uring_active = true;
  m_uring->thread = std::thread([this] {
    security::ThreadRole role(security::Role::BlockIo);
    uring_loop();
  });
  return true;
}

void BlkDevice::uring_kick() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(m_uring->kick_fd, &one, sizeof(one));
}

void BlkDevice::stop_uring() {
  {
    std::lock_guard lock(m_lock);
    m_uring->stop = true;
  }
  uring_kick();
  m_uring->thread.join();
  io_uring_queue_exit(&m_uring->ring);
  close(m_uring->kick_fd);
  m_uring.reset();
  m_uring_active = false;
}

void BlkDevice::uring_loop() {
  io_uring* ring = &m_uring->ring;
  const int fd = m_backend->direct_fd();
  size_t inflight = 0;
  auto get_sqe = [&]() {
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (!sqe) {
      io_uring_submit(ring);
      sqe = io_uring_get_sqe(ring);
    }
    return sqe;
  };
  auto arm_poll = [&] {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_add(sqe, m_uring->kick_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, kPollTag);
  };
  auto complete = [&](uint16_t q, const Chain& chain, uint32_t written) {
    bool notify;
    {
      std::lock_guard lock(m_queues[q]->lock);
      m_queues[q]->ring.push(chain.head, written);
      notify = m_queues[q]->ring.should_notify();
    }
    if (notify) m_host->interrupt_queue(q);
  };
  // Starts one request: asynchronously when it is a plain read, write or flush, else runs it now.
  auto start = [&](uint16_t q, Chain chain) {
    struct {
      uint32_t type, reserved;
      uint64_t sector;
    } header{};
    bool plain = chain.writable >= 1 &&
                 chain.read(0, {reinterpret_cast<uint8_t*>(&header), sizeof(header)}) == sizeof(header);
    auto request = std::make_unique<Inflight>();
    request->queue = q;
    request->type = header.type;
    uint64_t status_at = chain.writable ? chain.writable - 1 : 0;
    if (plain && header.type == kTypeIn) {
      request->expected = status_at;
      uint64_t left = status_at;
      for (const Segment& s : chain.segments) {
        if (!s.device_writable || left == 0 || s.len == 0) continue;
        uint64_t n = std::min<uint64_t>(s.len, left);
        request->iov.push_back({s.host.data(), n});
        left -= n;
      }
    } else if (plain && header.type == kTypeOut && !m_read_only) {
      request->expected = chain.readable - 16;
      uint64_t skip = 16;
      for (const Segment& s : chain.segments) {
        if (s.device_writable) break;
        if (skip >= s.len) {
          skip -= s.len;
          continue;
        }
        request->iov.push_back({s.host.data() + skip, s.len - skip});
        skip = 0;
      }
    } else if (!(plain && header.type == kTypeFlush)) {
      plain = false;
    }
    bool bounded = request->expected % kSector == 0 && in_range(header.sector, request->expected) &&
                   request->iov.size() <= IOV_MAX && (request->expected == 0 || !request->iov.empty());
    if (!plain || !bounded) {
      // Everything unusual (errors included) takes the synchronous path, which validates and answers.
      complete(q, chain, execute(chain));
      return;
    }
    io_uring_sqe* sqe = get_sqe();
    if (header.type == kTypeFlush)
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    else if (header.type == kTypeIn)
      io_uring_prep_readv(sqe, fd, request->iov.data(), static_cast<unsigned>(request->iov.size()),
                          header.sector * kSector);
    else
      io_uring_prep_writev(sqe, fd, request->iov.data(), static_cast<unsigned>(request->iov.size()),
                           header.sector * kSector);
    request->chain = std::move(chain);
    io_uring_sqe_set_data(sqe, request.release());
    inflight++;
  };

  arm_poll();
  while (true) {
    bool stopping;
    {
      std::lock_guard lock(m_lock);
      stopping = m_uring->stop;
    }
    if (!stopping) {
      for (size_t q = 0; q < m_queues.size(); ++q) {
        if (!m_queues[q]) continue;
        while (true) {
          std::optional<Chain> chain;
          {
            std::lock_guard lock(m_queues[q]->lock);
            auto next = m_queues[q]->ring.pop();
            if (!next) {
              m_host->needs_reset(next.error().message);
              break;
            }
            chain = std::move(*next);
          }
          if (!chain) break;
          start(static_cast<uint16_t>(q), std::move(*chain));
        }
      }
    }
    io_uring_submit(ring);
    if (stopping && inflight == 0) break;
    io_uring_cqe* cqe;
    if (io_uring_wait_cqe(ring, &cqe) < 0) continue;
    unsigned head, seen = 0;
    bool rearm = false;
    io_uring_for_each_cqe(ring, head, cqe) {
      seen++;
      if (io_uring_cqe_get_data64(cqe) == kPollTag) {
        uint64_t drained;
        [[maybe_unused]] ssize_t n = ::read(m_uring->kick_fd, &drained, sizeof(drained));
        rearm = true;
        continue;
      }
      std::unique_ptr<Inflight> request(static_cast<Inflight*>(io_uring_cqe_get_data(cqe)));
      inflight--;
      int64_t result = cqe->res;
      uint32_t written;
      if (result < 0 || static_cast<uint64_t>(result) != request->expected) {
        // Short transfers and errors are rare: redo the request synchronously, which retries
        // short I/O and reports errors as the status byte.
        written = execute(request->chain);
      } else {
        uint8_t status = kStatusOk;
        request->chain.write(request->chain.writable - 1, {&status, 1});
        written = static_cast<uint32_t>((request->type == kTypeIn ? request->expected : 0) + 1);
      }
      complete(request->queue, request->chain, written);
    }
    io_uring_cq_advance(ring, seen);
    if (rearm) arm_poll();
  }
}

}  // namespace hw::virtio
