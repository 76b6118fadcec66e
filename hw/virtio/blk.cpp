#include "hw/virtio/blk.h"

#include <cstring>

#include "hw/virtio/blk_uring.h"
#include "security/thread_role.h"

namespace hw::virtio {

namespace {
constexpr uint64_t kSector = 512;
constexpr uint32_t kSegMax = 126;  // what we advertise; chains are bounded by the queue anyway

template <typename T>
void put(uint8_t* config, size_t offset, T value) {
  std::memcpy(config + offset, &value, sizeof(T));
}
}  // namespace

BlkDevice::BlkDevice(std::shared_ptr<backends::BlockBackend> backend, Options options)
    : m_backend(std::move(backend)), m_options(std::move(options)) {
  m_read_only = m_options.read_only || m_backend->read_only();
  m_capacity_sectors = m_backend->size() / kSector;
  if (m_options.num_queues == 0) m_options.num_queues = 1;
  if (m_options.io_threads == 0) m_options.io_threads = 1;
}

BlkDevice::~BlkDevice() {
  reset();
}

uint64_t BlkDevice::features() const {
  uint64_t f = kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx | kFeatureSegMax | kFeatureBlkSize |
               kFeatureFlush;
  if (m_options.num_queues > 1) f |= kFeatureMq;
  if (m_read_only)
    f |= kFeatureRo;
  else
    f |= kFeatureDiscard | kFeatureWriteZeroes;
  return f;
}

void BlkDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[60] = {};
  put<uint64_t>(config, 0, m_capacity_sectors);
  put<uint32_t>(config, 12, std::min<uint32_t>(kSegMax, m_options.queue_size - 2));  // seg_max
  put<uint32_t>(config, 20, 512);                                                    // blk_size
  put<uint16_t>(config, 34, m_options.num_queues);
  put<uint32_t>(config, 36, 0x3fffff);             // max_discard_sectors (2 GiB - 512)
  put<uint32_t>(config, 40, kMaxDiscardSegments);  // max_discard_seg
  put<uint32_t>(config, 44, 8);                    // discard_sector_alignment: 4 KiB
  put<uint32_t>(config, 48, 0x3fffff);             // max_write_zeroes_sectors
  put<uint32_t>(config, 52, kMaxDiscardSegments);  // max_write_zeroes_seg
  config[56] = 1;                                  // write_zeroes_may_unmap
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

void BlkDevice::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  std::lock_guard lock(m_lock);
  m_host = &host;
  m_queues = std::move(queues);
  if (m_options.io_uring && m_backend->direct_fd() >= 0 && start_uring()) return;
  m_workers.start(m_options.io_threads, security::Role::BlockIo, [this] { service_queues(); });
}

void BlkDevice::notify(uint16_t) {
  if (m_uring_active) {
    uring_kick();
    return;
  }
  m_workers.kick();
}

void BlkDevice::reset() {
  m_workers.stop();                  // each finishes the request it is running
  if (m_uring_active) stop_uring();  // waits for the requests in flight
  std::lock_guard lock(m_lock);
  m_host = nullptr;
  m_queues.clear();
}

void BlkDevice::service_queues() {
  // Several threads pop from the same queues, one chain at a time, until every queue is empty.
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t q = 0; q < m_queues.size(); ++q) {
      Queue* queue = m_queues[q];
      if (!queue) continue;
      std::optional<Chain> chain;
      {
        std::lock_guard lock(queue->lock);
        auto next = queue->ring.pop();
        if (!next) {
          m_host->needs_reset(next.error().message);
          continue;
        }
        chain = std::move(*next);
      }
      if (!chain) continue;
      progress = true;
      uint32_t written = execute(*chain);
      bool notify;
      {
        std::lock_guard lock(queue->lock);
        queue->ring.push(chain->head, written);
        notify = queue->ring.should_notify();
      }
      if (notify) m_host->interrupt_queue(static_cast<uint16_t>(q));
      if (m_workers.stopping()) return;
    }
  }
}

bool BlkDevice::in_range(uint64_t sector, uint64_t bytes) const {
  if (sector > m_capacity_sectors) return false;
  uint64_t room = (m_capacity_sectors - sector) * kSector;
  return bytes <= room;
}

uint32_t BlkDevice::execute(const Chain& chain) {
  struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  } header{};
  if (chain.writable == 0) {
    // Nowhere to put a status: nothing we can answer. Complete it empty so the guest gets the
    // descriptors back, and count it.
    m_bad_requests++;
    return 0;
  }
  uint64_t status_at = chain.writable - 1;
  uint32_t written = 0;
  uint8_t status;
  if (chain.read(0, {reinterpret_cast<uint8_t*>(&header), sizeof(header)}) != sizeof(header)) {
    m_bad_requests++;
    status = kStatusIoErr;
  } else {
    switch (header.type) {
      case kTypeIn:
        status = do_read(chain, header.sector, status_at, written);
        break;
      case kTypeOut:
        status = do_write(chain, header.sector, chain.readable - sizeof(header));
        break;
      case kTypeFlush:
        status = m_backend->flush() ? kStatusOk : (m_io_errors++, kStatusIoErr);
        break;
      case kTypeGetId: {
        uint8_t id[20] = {};
        std::memcpy(id, m_options.serial.data(), std::min<size_t>(20, m_options.serial.size()));
        written = static_cast<uint32_t>(chain.write(0, {id, std::min<uint64_t>(20, status_at)}));
        status = kStatusOk;
        break;
      }
      case kTypeDiscard:
      case kTypeWriteZeroes:
        status = m_read_only ? kStatusIoErr : do_ranges(chain, header.type);
        break;
      default:
        status = kStatusUnsupp;
        break;
    }
  }
  chain.write(status_at, {&status, 1});
  return written + 1;
}

uint8_t BlkDevice::do_read(const Chain& chain, uint64_t sector, uint64_t length, uint32_t& written) {
  if (length % kSector || !in_range(sector, length)) {
    m_bad_requests++;
    return kStatusIoErr;
  }
  uint64_t offset = sector * kSector;
  uint64_t left = length;
  // Straight into guest memory, one backend call per writable segment (the status byte excluded).
  for (const Segment& s : chain.segments) {
    if (!s.device_writable || left == 0) continue;
    uint64_t n = std::min<uint64_t>(s.len, left);
    if (!m_backend->read(offset, s.host.first(n))) {
      m_io_errors++;
      return kStatusIoErr;
    }
    offset += n;
    left -= n;
    written += static_cast<uint32_t>(n);
  }
  return kStatusOk;
}

uint8_t BlkDevice::do_write(const Chain& chain, uint64_t sector, uint64_t length) {
  if (m_read_only) return kStatusIoErr;
  if (length % kSector || !in_range(sector, length)) {
    m_bad_requests++;
    return kStatusIoErr;
  }
  uint64_t offset = sector * kSector;
  uint64_t skip = 16;  // the header
  for (const Segment& s : chain.segments) {
    if (s.device_writable) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    auto part = s.host.subspan(skip);
    skip = 0;
    if (!m_backend->write(offset, part)) {
      m_io_errors++;
      return kStatusIoErr;
    }
    offset += part.size();
  }
  return kStatusOk;
}

uint8_t BlkDevice::do_ranges(const Chain& chain, uint32_t type) {
  struct Range {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
  };
  uint64_t bytes = chain.readable - 16;
  if (bytes == 0 || bytes % sizeof(Range) || bytes / sizeof(Range) > kMaxDiscardSegments) {
    m_bad_requests++;
    return kStatusIoErr;
  }
  for (uint64_t i = 0; i < bytes / sizeof(Range); ++i) {
    Range range;
    chain.read(16 + i * sizeof(Range), {reinterpret_cast<uint8_t*>(&range), sizeof(range)});
    // Flags other than UNMAP (bit 0, write-zeroes only) are reserved: UNSUPP (spec 5.2.6.2).
    if (range.flags & ~uint32_t(type == kTypeWriteZeroes ? 1 : 0)) return kStatusUnsupp;
    uint64_t length = uint64_t(range.num_sectors) * kSector;
    if (!in_range(range.sector, length)) {
      m_bad_requests++;
      return kStatusIoErr;
    }
    auto result = type == kTypeDiscard ? m_backend->discard(range.sector * kSector, length)
                                       : m_backend->write_zeroes(range.sector * kSector, length);
    if (!result) {
      m_io_errors++;
      return kStatusIoErr;
    }
  }
  return kStatusOk;
}

}  // namespace hw::virtio
