// The 16550's snapshot state (see hw/device_state.h): its registers and the received bytes the
// guest has not read yet. Bytes the host typed after the snapshot arrive through the new backend.
#include "hw/serial/ns16550.h"

namespace hw {

void Ns16550::save_state(StateWriter& out) {
  std::lock_guard guard(m_lock);
  std::vector<uint8_t> rx(m_rx.begin(), m_rx.end());
  out.bytes(rx);
  for (uint8_t reg : {m_ier, m_fcr, m_lcr, m_mcr, m_scr, m_msr}) out.u8(reg);
  out.u16(m_divisor);
  out.boolean(m_overrun);
  out.boolean(m_thr_pending);
}

base::ErrorOr<void> Ns16550::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, m_name));
  std::vector<uint8_t> rx = in.bytes(kFifoSize);
  uint8_t regs[6];
  for (uint8_t& reg : regs) reg = in.u8();
  uint16_t divisor = in.u16();
  bool overrun = in.boolean(), thr_pending = in.boolean();
  TRY(in.finish(m_name));
  std::lock_guard guard(m_lock);
  m_rx.assign(rx.begin(), rx.end());
  m_ier = regs[0], m_fcr = regs[1], m_lcr = regs[2], m_mcr = regs[3], m_scr = regs[4], m_msr = regs[5];
  m_divisor = divisor;
  m_overrun = overrun;
  m_thr_pending = thr_pending;
  m_irq_level = false;  // the new machine's line starts low
  update_irq_locked();
  return {};
}

}  // namespace hw
