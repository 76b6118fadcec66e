// Ns16550: a 16550A UART (the "ns16550a" of QEMU's virt machine and the PC's COM ports).
// Transmit is instantaneous: a THR write goes straight to the character backend (or, in loopback,
// into the receive FIFO), so THR is always empty afterwards and the THRE interrupt fires at once.
// Receive goes through a 16-byte FIFO (1 byte when FIFOs are off); the backend never sends more than
// can_receive() allows, so nothing is lost on our side. With FIFOs on, data below the trigger level is
// reported as a character timeout right away (drivers treat RDI and CTI alike).
//
// Registers are `stride` bytes apart (1 for PC port I/O and riscv virt, 4 for reg-shift 2 boards);
// only the low byte of each register slot is decoded, any access width is accepted.
// Thread safety: vCPU threads and the backend's thread may call in concurrently; one mutex guards
// the state. The interrupt line is driven with the lock held, so an IrqLine must not call back into
// this device.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "backends/chardev.h"
#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/stats.h"

namespace hw {

class Ns16550 final : public Device, public DeviceState, public backends::CharReceiver {
 public:
  static constexpr size_t kFifoSize = 16;
  static constexpr unsigned kRegisterCount = 8;

  // `irq` and `backend` may be null (an unconnected port: output is dropped, nothing arrives).
  // Attaches itself to the backend; detaches in the destructor.
  Ns16550(std::string name, unsigned stride, std::shared_ptr<IrqLine> irq,
          std::shared_ptr<backends::CharBackend> backend);
  ~Ns16550() override;

  // The size of the register window the bus should map (8 registers * stride).
  uint64_t region_size() const { return uint64_t{kRegisterCount} * m_stride; }

  std::string_view name() const override { return m_name; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  size_t can_receive() override;
  void receive(std::span<const uint8_t> data) override;

  // Register-level access for port I/O users and tests (reg is 0..7).
  uint8_t read_register(unsigned reg);
  void write_register(unsigned reg, uint8_t value);

  // query-stats: bytes the guest sent (to the backend, or dropped when the port has none), bytes
  // received into the FIFO, bytes lost to a full FIFO (LSR overrun).
  StatsRegistry::Counters counters() const;
  // Registers `uart`'s counters under `id` (no-op without a registry).
  static void add_stats(StatsRegistry* stats, const std::string& id, const std::shared_ptr<Ns16550>& uart);

  // Snapshot (ns16550_state.cpp): registers and the bytes received but not yet read by the guest.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

 private:
  uint8_t read_locked(unsigned reg);
  void write_locked(unsigned reg, uint8_t value);
  void push_rx_locked(uint8_t byte);
  void update_irq_locked();
  uint8_t iir_locked() const;
  uint8_t lsr_locked() const;
  uint8_t msr_inputs_locked() const;
  void update_msr_locked();
  size_t fifo_capacity_locked() const;
  size_t trigger_level_locked() const;
  bool loopback_locked() const;

  const std::string m_name;
  const unsigned m_stride;
  const std::shared_ptr<IrqLine> m_irq;
  const std::shared_ptr<backends::CharBackend> m_backend;

  std::mutex m_lock;
  std::deque<uint8_t> m_rx;
  uint8_t m_ier = 0;
  uint8_t m_fcr = 0;  // as last written (FIFO enable, trigger level); reset bits are self-clearing
  uint8_t m_lcr = 0;
  uint8_t m_mcr = 0;
  uint8_t m_scr = 0;
  uint8_t m_msr = 0;        // current modem status (inputs in the high nibble, deltas low)
  uint16_t m_divisor = 12;  // 9600 baud at 1.8432 MHz; only stored (timing is not modelled)
  bool m_overrun = false;   // LSR.OE, cleared by reading LSR
  bool m_thr_pending =
      false;  // THRE interrupt latched; cleared by an IIR read that reports it or a THR write
  bool m_irq_level = false;
  bool m_warned_bad_access = false;
  std::atomic<uint64_t> m_tx_bytes{0}, m_tx_dropped{0}, m_rx_bytes{0}, m_rx_overruns{0};
};

}  // namespace hw
