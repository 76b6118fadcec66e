// A generic vhost-user frontend (the "master" side of QEMU's docs/interop/vhost-user.rst): the
// messages that hand a device's virtqueues to a backend process (virtiofsd today; vhost-user-blk and
// -net later) over a connected AF_UNIX stream socket, file descriptors passed with SCM_RIGHTS.
//
// The backend is a separate process and is not trusted: every reply is read with a deadline and
// checked (request code, reply flag, version, exact payload size); descriptors it sends unasked are
// closed; a short, oversized or mismatched reply is an error and the connection is unusable after it.
// One caller at a time (the device serialises its control path).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace hw::virtio::vhost_user {

enum class Request : uint32_t {
  GetFeatures = 1,
  SetFeatures = 2,
  SetOwner = 3,
  ResetOwner = 4,
  SetMemTable = 5,
  SetVringNum = 8,
  SetVringAddr = 9,
  SetVringBase = 10,
  GetVringBase = 11,
  SetVringKick = 12,
  SetVringCall = 13,
  GetProtocolFeatures = 15,
  SetProtocolFeatures = 16,
  GetQueueNum = 17,
  SetVringEnable = 18,
};

constexpr uint32_t kVersion = 0x1;                         // flags bits 0-1
constexpr uint32_t kFlagReply = 1u << 2;                   // set by the backend on replies
constexpr uint32_t kHeaderSize = 12;                       // request, flags, size (all le32)
constexpr uint32_t kMaxMemRegions = 8;                     // VHOST_MEMORY_BASELINE_NREGIONS
constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;  // VHOST_USER_F_PROTOCOL_FEATURES
constexpr uint64_t kProtocolMq = 1ull << 0;                // VHOST_USER_PROTOCOL_F_MQ
constexpr uint64_t kVringNoFd = 1ull << 8;                 // SET_VRING_KICK/CALL without a descriptor

// One shared guest RAM region as the backend maps it: `fd` (a memfd) at `mmap_offset` holds guest
// physical [guest_phys_addr, +memory_size), which the frontend sees at `userspace_addr`. Ring
// addresses in SET_VRING_ADDR are frontend userspace addresses.
struct MemoryRegion {
  uint64_t guest_phys_addr = 0;
  uint64_t memory_size = 0;
  uint64_t userspace_addr = 0;
  uint64_t mmap_offset = 0;
  int fd = -1;
};

class Frontend {
 public:
  // Takes ownership of `socket`, a connected AF_UNIX stream socket. `reply_timeout_ms` bounds the
  // wait for each reply (a hung backend must not hang the VMM).
  explicit Frontend(int socket, int reply_timeout_ms = 10000);
  ~Frontend();
  Frontend(const Frontend&) = delete;
  Frontend& operator=(const Frontend&) = delete;

  base::ErrorOr<void> set_owner();
  base::ErrorOr<uint64_t> get_features();
  base::ErrorOr<void> set_features(uint64_t features);
  base::ErrorOr<uint64_t> get_protocol_features();
  base::ErrorOr<void> set_protocol_features(uint64_t features);
  base::ErrorOr<uint64_t> get_queue_num();
  base::ErrorOr<void> set_mem_table(std::span<const MemoryRegion> regions);
  base::ErrorOr<void> set_vring_num(uint32_t index, uint32_t num);
  base::ErrorOr<void> set_vring_base(uint32_t index, uint32_t base);
  // Stops the ring in the backend and returns where it got to (the next avail index).
  base::ErrorOr<uint32_t> get_vring_base(uint32_t index);
  base::ErrorOr<void> set_vring_addr(uint32_t index, uint64_t desc, uint64_t used, uint64_t avail);
  base::ErrorOr<void> set_vring_kick(uint32_t index, int eventfd);
  base::ErrorOr<void> set_vring_call(uint32_t index, int eventfd);
  base::ErrorOr<void> set_vring_enable(uint32_t index, bool enable);

  // The socket, for watching it for hang-up (never read or written outside this class).
  int socket() const { return m_socket; }
  // Whether an earlier exchange failed (the stream may be out of step: nothing more is sent).
  bool broken() const { return m_broken; }

 private:
  base::ErrorOr<void> send(Request request, std::span<const uint8_t> payload, std::span<const int> fds = {});
  base::ErrorOr<std::vector<uint8_t>> reply(Request request, uint32_t size);
  base::ErrorOr<uint64_t> get_u64(Request request);
  base::ErrorOr<void> set_u64(Request request, uint64_t value);
  base::ErrorOr<void> set_state(Request request, uint32_t index, uint32_t num);
  base::ErrorOr<void> set_fd(Request request, uint32_t index, int fd);
  base::Error fail(std::string message);

  int m_socket;
  int m_timeout_ms;
  bool m_broken = false;
};

}  // namespace hw::virtio::vhost_user
