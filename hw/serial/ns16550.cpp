#include "hw/serial/ns16550.h"

#include <cstdio>

namespace hw {
namespace {

// Register indices (DLAB selects DLL/DLM at 0/1).
constexpr unsigned kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

constexpr uint8_t kIerRdi = 0x01, kIerThri = 0x02, kIerRlsi = 0x04, kIerMsi = 0x08;
constexpr uint8_t kIirNone = 0x01, kIirMsi = 0x00, kIirThri = 0x02, kIirRdi = 0x04, kIirRlsi = 0x06,
                  kIirCti = 0x0c, kIirFifoEnabled = 0xc0;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02, kFcrClearTx = 0x04;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr uint8_t kLsrDr = 0x01, kLsrOe = 0x02, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
constexpr uint8_t kMsrDeltaCts = 0x01, kMsrDeltaDsr = 0x02, kMsrTeri = 0x04, kMsrDeltaDcd = 0x08;

}  // namespace

Ns16550::Ns16550(std::string name, unsigned stride, std::shared_ptr<IrqLine> irq,
                 std::shared_ptr<backends::CharBackend> backend)
    : m_name(std::move(name)),
      m_stride(stride == 0 ? 1 : stride),
      m_irq(std::move(irq)),
      m_backend(std::move(backend)) {
  m_msr = msr_inputs_locked();
  if (m_backend) m_backend->attach(this);
}

Ns16550::~Ns16550() {
  if (m_backend) m_backend->attach(nullptr);
}

void Ns16550::read(uint64_t offset, std::span<uint8_t> data) {
  for (auto& byte : data) byte = 0;
  if (data.empty()) return;
  if (offset % m_stride != 0 || offset / m_stride >= kRegisterCount) {
    std::lock_guard guard(m_lock);
    if (!m_warned_bad_access) {
      std::fprintf(stderr, "vmlaunch: %s: guest read at unaligned/unknown offset 0x%llx ignored\n",
                   m_name.c_str(), (unsigned long long)offset);
      m_warned_bad_access = true;
    }
    return;
  }
  data[0] = read_register(static_cast<unsigned>(offset / m_stride));
}

void Ns16550::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (offset % m_stride != 0 || offset / m_stride >= kRegisterCount) {
    std::lock_guard guard(m_lock);
    if (!m_warned_bad_access) {
      std::fprintf(stderr, "vmlaunch: %s: guest write at unaligned/unknown offset 0x%llx ignored\n",
                   m_name.c_str(), (unsigned long long)offset);
      m_warned_bad_access = true;
    }
    return;
  }
  write_register(static_cast<unsigned>(offset / m_stride), data[0]);
}

uint8_t Ns16550::read_register(unsigned reg) {
  std::lock_guard guard(m_lock);
  return read_locked(reg);
}

void Ns16550::write_register(unsigned reg, uint8_t value) {
  bool transmit = false;
  {
    std::lock_guard guard(m_lock);
    if (reg == kRbrThr && !(m_lcr & kLcrDlab) && !loopback_locked()) {
      // The byte leaves at once: THR empties, so the THRE interrupt (if enabled) is re-armed.
      m_thr_pending = true;
      update_irq_locked();
      transmit = true;
    } else {
      write_locked(reg, value);
    }
  }
  // Outside the lock: a backend may call straight back into receive()/can_receive().
  if (transmit) (m_backend ? m_tx_bytes : m_tx_dropped).fetch_add(1, std::memory_order_relaxed);
  if (transmit && m_backend) m_backend->write({&value, 1});
}

StatsRegistry::Counters Ns16550::counters() const {
  return {{"tx_bytes", m_tx_bytes.load(std::memory_order_relaxed)},
          {"tx_dropped_no_backend", m_tx_dropped.load(std::memory_order_relaxed)},
          {"rx_bytes", m_rx_bytes.load(std::memory_order_relaxed)},
          {"rx_overruns", m_rx_overruns.load(std::memory_order_relaxed)}};
}

void Ns16550::add_stats(StatsRegistry* stats, const std::string& id, const std::shared_ptr<Ns16550>& uart) {
  if (!stats) return;
  stats->add_device(id, [weak = std::weak_ptr<Ns16550>(uart)]() -> StatsRegistry::Counters {
    auto alive = weak.lock();
    return alive ? alive->counters() : StatsRegistry::Counters{};
  });
}

size_t Ns16550::can_receive() {
  std::lock_guard guard(m_lock);
  if (loopback_locked()) return 0;  // the line is disconnected from the outside in loopback
  size_t capacity = fifo_capacity_locked();
  return m_rx.size() >= capacity ? 0 : capacity - m_rx.size();
}

void Ns16550::receive(std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  if (loopback_locked()) return;
  for (uint8_t byte : data) push_rx_locked(byte);
  update_irq_locked();
}

uint8_t Ns16550::read_locked(unsigned reg) {
  switch (reg) {
    case kRbrThr: {
      if (m_lcr & kLcrDlab) return static_cast<uint8_t>(m_divisor & 0xff);
      if (m_rx.empty()) return 0;
      uint8_t byte = m_rx.front();
      m_rx.pop_front();
      update_irq_locked();
      return byte;
    }
    case kIer:
      if (m_lcr & kLcrDlab) return static_cast<uint8_t>(m_divisor >> 8);
      return m_ier;
    case kIirFcr: {
      uint8_t iir = iir_locked();
      // Reading IIR while it reports THRE acknowledges that interrupt (8250 semantics).
      if ((iir & 0x0f) == kIirThri) {
        m_thr_pending = false;
        update_irq_locked();
      }
      return iir;
    }
    case kLcr:
      return m_lcr;
    case kMcr:
      return m_mcr;
    case kLsr: {
      uint8_t lsr = lsr_locked();
      if (m_overrun) {
        m_overrun = false;
        update_irq_locked();
      }
      return lsr;
    }
    case kMsr: {
      uint8_t msr = m_msr;
      m_msr &= 0xf0;  // reading clears the delta bits
      update_irq_locked();
      return msr;
    }
    case kScr:
      return m_scr;
  }
  return 0;
}

void Ns16550::write_locked(unsigned reg, uint8_t value) {
  switch (reg) {
    case kRbrThr:
      if (m_lcr & kLcrDlab) {
        m_divisor = static_cast<uint16_t>((m_divisor & 0xff00) | value);
      } else {
        // Loopback: the transmitter feeds our own receiver.
        push_rx_locked(value);
        m_thr_pending = true;
        update_irq_locked();
      }
      return;
    case kIer:
      if (m_lcr & kLcrDlab) {
        m_divisor = static_cast<uint16_t>((m_divisor & 0x00ff) | (value << 8));
        return;
      }
      // Enabling THRE while THR is empty raises it at once; Linux's 8250 driver relies on that to
      // start transmission.
      if ((value & kIerThri) && !(m_ier & kIerThri)) m_thr_pending = true;
      m_ier = value & 0x0f;
      update_irq_locked();
      return;
    case kIirFcr: {
      bool was_enabled = m_fcr & kFcrEnable;
      bool enabled = value & kFcrEnable;
      if ((value & kFcrClearRx) || was_enabled != enabled) {
        m_rx.clear();
        m_overrun = false;
      }
      (void)kFcrClearTx;     // the transmitter never holds data
      m_fcr = value & 0xc9;  // enable, DMA mode, trigger level
      update_irq_locked();
      return;
    }
    case kLcr:
      m_lcr = value;
      return;
    case kMcr:
      m_mcr = value & 0x1f;
      update_msr_locked();
      update_irq_locked();
      return;
    case kLsr:
    case kMsr:
      return;  // read-only on a 16550A (factory test writes are ignored)
    case kScr:
      m_scr = value;
      return;
  }
}

void Ns16550::push_rx_locked(uint8_t byte) {
  if (m_rx.size() >= fifo_capacity_locked()) {
    m_overrun = true;  // the byte is lost, as on hardware
    m_rx_overruns.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  m_rx.push_back(byte);
  m_rx_bytes.fetch_add(1, std::memory_order_relaxed);
}

size_t Ns16550::fifo_capacity_locked() const {
  return (m_fcr & kFcrEnable) ? kFifoSize : 1;
}

size_t Ns16550::trigger_level_locked() const {
  if (!(m_fcr & kFcrEnable)) return 1;
  static constexpr size_t kLevels[4] = {1, 4, 8, 14};
  return kLevels[m_fcr >> 6];
}

bool Ns16550::loopback_locked() const {
  return m_mcr & kMcrLoop;
}

uint8_t Ns16550::lsr_locked() const {
  uint8_t lsr = kLsrThre | kLsrTemt;
  if (!m_rx.empty()) lsr |= kLsrDr;
  if (m_overrun) lsr |= kLsrOe;
  return lsr;
}

uint8_t Ns16550::msr_inputs_locked() const {
  if (loopback_locked()) {
    uint8_t msr = 0;
    if (m_mcr & kMcrRts) msr |= kMsrCts;
    if (m_mcr & kMcrDtr) msr |= kMsrDsr;
    if (m_mcr & kMcrOut1) msr |= kMsrRi;
    if (m_mcr & kMcrOut2) msr |= kMsrDcd;
    return msr;
  }
  // A connected terminal: carrier, data set ready and clear to send, as QEMU reports.
  return kMsrCts | kMsrDsr | kMsrDcd;
}

void Ns16550::update_msr_locked() {
  uint8_t old_inputs = m_msr & 0xf0;
  uint8_t inputs = msr_inputs_locked();
  uint8_t changed = old_inputs ^ inputs;
  uint8_t deltas = m_msr & 0x0f;
  if (changed & kMsrCts) deltas |= kMsrDeltaCts;
  if (changed & kMsrDsr) deltas |= kMsrDeltaDsr;
  if ((old_inputs & kMsrRi) && !(inputs & kMsrRi)) deltas |= kMsrTeri;  // trailing edge of RI
  if (changed & kMsrDcd) deltas |= kMsrDeltaDcd;
  m_msr = static_cast<uint8_t>(inputs | deltas);
}

uint8_t Ns16550::iir_locked() const {
  uint8_t fifo_bits = (m_fcr & kFcrEnable) ? kIirFifoEnabled : 0;
  if ((m_ier & kIerRlsi) && m_overrun) return fifo_bits | kIirRlsi;
  if ((m_ier & kIerRdi) && !m_rx.empty())
    return fifo_bits | (m_rx.size() >= trigger_level_locked() ? kIirRdi : kIirCti);
  if ((m_ier & kIerThri) && m_thr_pending) return fifo_bits | kIirThri;
  if ((m_ier & kIerMsi) && (m_msr & 0x0f)) return fifo_bits | kIirMsi;
  return fifo_bits | kIirNone;
}

void Ns16550::update_irq_locked() {
  bool level = !(iir_locked() & kIirNone);
  if (level == m_irq_level) return;
  m_irq_level = level;
  if (m_irq) m_irq->set_level(level);
}

}  // namespace hw
