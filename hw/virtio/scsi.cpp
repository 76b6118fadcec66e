#include "hw/virtio/scsi.h"

#include <algorithm>
#include <cstring>

#include "security/thread_role.h"

namespace hw::virtio {

namespace {

constexpr uint32_t kSegMax = 126;
constexpr uint64_t kRequestFixed = 8 + 8 + 3;  // lun, id, task_attr, prio, crn (the CDB follows)
constexpr uint64_t kResponseFixed = 12;        // sense_len, resid, status_qualifier, status, response
constexpr uint32_t kControlTmf = 0, kControlAnQuery = 1, kControlAnSubscribe = 2;

template <typename T>
void put(uint8_t* at, T value) {
  std::memcpy(at, &value, sizeof(T));
}

// The request's data parts as spans of guest memory: data-out is the readable part after the
// request header, data-in the writable part after the response header.
hw::scsi::DataBuffers data_buffers(const Chain& chain, uint64_t out_skip, uint64_t in_skip) {
  hw::scsi::DataBuffers buffers;
  for (const Segment& s : chain.segments) {
    uint64_t& skip = s.device_writable ? in_skip : out_skip;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    std::span<uint8_t> rest = s.host.subspan(skip);
    skip = 0;
    if (s.device_writable)
      buffers.in.push_back(rest);
    else
      buffers.out.push_back(rest);
  }
  return buffers;
}

}  // namespace

ScsiDevice::ScsiDevice(std::map<uint16_t, Target> targets, Options options)
    : m_targets(std::move(targets)), m_options(options) {
  if (m_options.request_queues == 0) m_options.request_queues = 1;
  for (auto& [id, luns] : m_targets) {
    m_max_target = std::max(m_max_target, id);
    if (!luns.empty()) m_max_lun = std::max(m_max_lun, luns.rbegin()->first);
  }
}

ScsiDevice::~ScsiDevice() {
  reset();
}

void ScsiDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[36] = {};
  put<uint32_t>(config + 0, m_options.request_queues);
  put<uint32_t>(config + 4, std::min<uint32_t>(kSegMax, m_options.queue_size - 2));  // seg_max
  put<uint32_t>(config + 8, 0xffff);                                                 // max_sectors
  put<uint32_t>(config + 12, 128);                                                   // cmd_per_lun
  put<uint32_t>(config + 16, 16);  // event_info_size (we send no events)
  put<uint32_t>(config + 20, m_sense_size.load());
  put<uint32_t>(config + 24, m_cdb_size.load());
  put<uint16_t>(config + 28, 0);             // max_channel
  put<uint16_t>(config + 30, m_max_target);  // scanning stops at the last target we have
  put<uint32_t>(config + 32, m_max_lun);     // and at the highest LUN
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

void ScsiDevice::write_config(uint64_t offset, std::span<const uint8_t> data) {
  // Only sense_size (20) and cdb_size (24) are driver-writable, as whole 32-bit fields.
  if (data.size() != 4 || (offset != 20 && offset != 24)) return;
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  if (offset == 20)
    m_sense_size = std::min(value, kMaxSenseSize);
  else
    m_cdb_size = std::min(value, kMaxCdbSize);
}

void ScsiDevice::activate(DeviceHost& host, uint64_t, std::vector<Queue*> queues) {
  m_worker.stop();  // the transport resets before activating again; never leave a thread behind
  std::lock_guard lock(m_lock);
  m_host = &host;
  m_queues = std::move(queues);
  m_worker.start(1, security::Role::BlockIo, [this] { service_queues(); });
}

void ScsiDevice::notify(uint16_t q) {
  if (q == 0) {  // task management is instant here: every command has already completed or will
    std::lock_guard lock(m_lock);
    if (m_host && !m_queues.empty() && m_queues[0])
      drain_queue(*m_host, *m_queues[0], 0, [&](const Chain& chain) { return control(chain); });
    return;
  }
  if (q == 1) return;  // eventq: the driver offers buffers we never fill
  m_worker.kick();
}

void ScsiDevice::reset() {
  m_worker.stop();  // finishes the command it is running
  std::lock_guard lock(m_lock);
  m_host = nullptr;
  m_queues.clear();
  m_cdb_size = kDefaultCdbSize;
  m_sense_size = kDefaultSenseSize;
}

void ScsiDevice::quiesce() {
  m_worker.stop();  // finishes the command it is running
  std::lock_guard lock(m_lock);
  m_host = nullptr;
  m_queues.clear();
}

void ScsiDevice::save_state(hw::StateWriter& out) {
  out.u32(m_cdb_size.load());
  out.u32(m_sense_size.load());
}

base::ErrorOr<void> ScsiDevice::load_state(hw::StateReader& in, uint32_t version) {
  if (version != 1)
    return base::fail(base::Error("virtio-scsi: saved state version " + std::to_string(version)));
  const uint32_t cdb_size = in.u32(), sense_size = in.u32();
  // As write_config would have accepted them: the request layout is sized by these.
  if (cdb_size > kMaxCdbSize || sense_size > kMaxSenseSize) in.fail();
  TRY(in.finish("virtio-scsi"));
  m_cdb_size = cdb_size;
  m_sense_size = sense_size;
  return {};
}

void ScsiDevice::service_queues() {
  // m_host and m_queues change only in activate/reset, and both join this thread first.
  for (size_t q = 2; q < m_queues.size(); ++q)
    if (m_queues[q])
      drain_queue(*m_host, *m_queues[q], static_cast<uint16_t>(q),
                  [&](const Chain& chain) { return execute(chain); });
}

uint32_t ScsiDevice::execute(const Chain& chain) {
  const uint32_t cdb_size = m_cdb_size.load();
  const uint32_t sense_size = m_sense_size.load();
  const uint64_t request_size = kRequestFixed + cdb_size;
  const uint64_t response_size = kResponseFixed + sense_size;
  if (chain.writable < response_size) {
    // No room for the response: nothing we can answer. Hand the buffers back, count it.
    m_bad_requests++;
    return 0;
  }
  uint8_t response[kResponseFixed + kMaxSenseSize] = {};
  auto finish = [&](uint8_t code, const hw::scsi::Outcome* outcome, uint64_t residual) -> uint32_t {
    uint32_t sense_len = 0;
    if (outcome && outcome->status == hw::scsi::kStatusCheckCondition)
      sense_len = static_cast<uint32_t>(outcome->write_sense({response + kResponseFixed, sense_size}));
    put<uint32_t>(response + 0, sense_len);
    put<uint32_t>(response + 4, static_cast<uint32_t>(std::min<uint64_t>(residual, UINT32_MAX)));
    response[10] = outcome ? outcome->status : 0;
    response[11] = code;
    chain.write(0, {response, response_size});
    return static_cast<uint32_t>(response_size + (outcome ? outcome->data_in : 0));
  };
  if (chain.readable < request_size) {
    m_bad_requests++;
    return finish(kFailure, nullptr, 0);
  }
  // Copy the header out of guest memory first: the guest may change it while we work.
  uint8_t header[kRequestFixed + kMaxCdbSize];
  chain.read(0, {header, request_size});
  const uint8_t* lun = header;
  hw::scsi::DataBuffers buffers = data_buffers(chain, request_size, response_size);
  const uint64_t in_size = buffers.in_size(), out_size = buffers.out_size();
  if (lun[0] != 1) return finish(kBadTarget, nullptr, in_size + out_size);
  auto target = m_targets.find(lun[1]);
  if (target == m_targets.end()) return finish(kBadTarget, nullptr, in_size + out_size);
  // Single-level LUN: peripheral (00b) or flat space (01b) addressing of the first level.
  if ((lun[2] >> 6) > 1) return finish(kIncorrectLun, nullptr, in_size + out_size);
  const uint16_t lun_number = static_cast<uint16_t>((lun[2] & 0x3f) << 8 | lun[3]);
  const std::span<const uint8_t> cdb(header + kRequestFixed, cdb_size);
  const Target& luns = target->second;
  hw::scsi::Outcome outcome;
  if (cdb_size > 0 && cdb[0] == 0xa0) {  // REPORT LUNS: the target answers, at any of its LUNs
    std::vector<uint16_t> numbers;
    for (const auto& [number, disk] : luns) numbers.push_back(number);
    outcome = hw::scsi::report_luns(cdb, buffers, numbers);
  } else if (auto unit = luns.find(lun_number); unit != luns.end()) {
    outcome = unit->second->execute(cdb, buffers);
  } else {
    outcome = hw::scsi::no_such_lun(cdb, buffers);
  }
  if (outcome.overrun) return finish(kOverrun, nullptr, in_size + out_size);
  uint64_t residual = in_size ? in_size - outcome.data_in : out_size - outcome.data_out;
  return finish(kOk, &outcome, residual);
}

uint32_t ScsiDevice::control(const Chain& chain) {
  uint32_t type = 0;
  if (chain.read(0, {reinterpret_cast<uint8_t*>(&type), 4}) != 4) {
    m_bad_requests++;
    return 0;
  }
  if (type == kControlTmf) {
    // struct virtio_scsi_ctrl_tmf: le32 type, le32 subtype, u8 lun[8], le64 id; then u8 response.
    // Every command completes before its request is popped again, so aborts and resets have
    // nothing left to do: FUNCTION COMPLETE.
    if (chain.readable < 24 || chain.writable < 1) {
      m_bad_requests++;
      return 0;
    }
    uint8_t response = kFunctionComplete;
    return static_cast<uint32_t>(chain.write(0, {&response, 1}));
  }
  if (type == kControlAnQuery || type == kControlAnSubscribe) {
    // struct virtio_scsi_ctrl_an: le32 type, u8 lun[8], le32 event_requested; then le32
    // event_actual, u8 response. We report no asynchronous events.
    if (chain.readable < 16 || chain.writable < 5) {
      m_bad_requests++;
      return 0;
    }
    uint8_t reply[5] = {0, 0, 0, 0, kOk};
    return static_cast<uint32_t>(chain.write(0, {reply, sizeof(reply)}));
  }
  m_bad_requests++;
  if (chain.writable >= 1) {
    uint8_t response = kFailure;
    return static_cast<uint32_t>(chain.write(0, {&response, 1}));
  }
  return 0;
}

}  // namespace hw::virtio
