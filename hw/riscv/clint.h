// Clint: the SiFive core-local interruptor of QEMU's virt board (compatible "sifive,clint0").
//   0x0000 + 4*hart  msip      bit 0 drives the hart's MSIP (IPIs between harts in M-mode)
//   0x4000 + 8*hart  mtimecmp  MTIP is raised while mtime >= mtimecmp
//   0xbff8           mtime     the shared base::Timebase (read-only here: harts read the same counter)
// A deadline thread sleeps until the earliest armed mtimecmp and raises MTIP then, so a hart in wfi
// wakes at the right time without anyone polling. 32-bit halves of the 64-bit registers are accepted
// (OpenSBI on rv32 and some drivers write them that way).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/timebase.h"
#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/riscv/hart_irq.h"

namespace hw::riscv {

class Clint final : public Device, public DeviceState {
 public:
  static constexpr uint64_t kSize = 0x10000;
  static constexpr uint64_t kMtimecmpBase = 0x4000;
  static constexpr uint64_t kMtime = 0xbff8;

  // `timebase` outlives the Clint. Starts the deadline thread.
  Clint(unsigned hart_count, const base::Timebase& timebase, HartIrqSink sink);
  ~Clint() override;

  std::string_view name() const override { return "clint"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshot (clint_state.cpp): msip and mtimecmp per hart; MTIP is recomputed from mtime.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

 private:
  void set_mtimecmp_locked(unsigned hart, uint64_t value);
  void update_mtip_locked(unsigned hart, uint64_t now);
  void deadline_loop();

  const unsigned m_hart_count;
  const base::Timebase& m_timebase;
  const HartIrqSink m_sink;

  std::mutex m_lock;
  std::condition_variable m_changed;
  std::vector<uint32_t> m_msip;
  std::vector<uint64_t> m_mtimecmp;
  std::vector<bool> m_mtip;
  bool m_stop = false;
  bool m_warned = false;
  std::thread m_thread;
};

}  // namespace hw::riscv
