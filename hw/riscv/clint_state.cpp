// The CLINT's snapshot state (see hw/device_state.h). mtime itself is the machine's Timebase, saved
// with the machine; MTIP follows from mtime and mtimecmp and is recomputed here.
#include "hw/riscv/clint.h"

namespace hw::riscv {

void Clint::save_state(StateWriter& out) {
  std::lock_guard guard(m_lock);
  out.u32s(m_msip);
  out.u64s(m_mtimecmp);
}

base::ErrorOr<void> Clint::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, "clint"));
  std::vector<uint32_t> msip(m_hart_count);
  std::vector<uint64_t> mtimecmp(m_hart_count);
  in.u32s(msip, m_hart_count);
  in.u64s(mtimecmp, m_hart_count);
  TRY(in.finish("clint"));
  {
    std::lock_guard guard(m_lock);
    const uint64_t now = m_timebase.now();
    for (unsigned hart = 0; hart < m_hart_count; ++hart) {
      m_msip[hart] = msip[hart] & 1;
      m_sink(hart, kMipMsip, m_msip[hart] != 0);
      m_mtimecmp[hart] = mtimecmp[hart];
      update_mtip_locked(hart, now);
    }
  }
  m_changed.notify_all();  // the deadline thread sleeps on the old deadlines
  return {};
}

}  // namespace hw::riscv
