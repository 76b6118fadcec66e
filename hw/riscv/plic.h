// Plic: the platform-level interrupt controller of QEMU's virt board ("sifive,plic-1.0.0",
// "riscv,plic0"), level-triggered sources 1..source_count-1 (source 0 does not exist).
//   0x000000 + 4*src        priority (0 = never interrupts)
//   0x001000                pending bits (read-only)
//   0x002000 + 0x80*ctx     enable bits
//   0x200000 + 0x1000*ctx   threshold; +4 claim (read) / complete (write)
// Context 2*hart is the hart's M-mode (drives MEIP), 2*hart+1 its S-mode (drives SEIP), as QEMU
// wires "MS" harts. A source that is claimed is not pending again until completed; if its line is
// still asserted then, it becomes pending at once (level semantics).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/riscv/hart_irq.h"

namespace hw::riscv {

class Plic final : public Device, public DeviceState, public std::enable_shared_from_this<Plic> {
 public:
  static constexpr uint64_t kSize = 0x600000;
  static constexpr uint32_t kDefaultSources = 96;  // QEMU virt: riscv,ndev = 95
  static constexpr uint32_t kPriorityMax = 7;

  Plic(unsigned hart_count, uint32_t source_count, HartIrqSink sink);

  std::string_view name() const override { return "plic"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint32_t source_count() const { return m_source_count; }
  unsigned context_count() const { return m_hart_count * 2; }

  // The input line of `source` (1..source_count-1) for a device to drive. Null for source 0, out of
  // range, or a PLIC not owned by a shared_ptr. The line keeps the PLIC alive.
  std::shared_ptr<IrqLine> source_line(uint32_t source);
  void set_source_level(uint32_t source, bool level);

  // Snapshot (plic_state.cpp): priorities, pending/claimed/level bitmaps, per-context enables and
  // thresholds; the outputs to the harts are recomputed and driven on load.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override;
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override;

 private:
  struct Context {
    std::vector<uint32_t> enable;  // bitmap words
    uint32_t threshold = 0;
    bool output = false;
  };
  uint32_t read_word_locked(uint64_t offset);
  void write_word_locked(uint64_t offset, uint32_t value);
  uint32_t claim_locked(unsigned ctx);
  void complete_locked(unsigned ctx, uint32_t source);
  void update_locked();
  bool bit(const std::vector<uint32_t>& map, uint32_t source) const {
    return map[source / 32] >> (source % 32) & 1;
  }
  void set_bit(std::vector<uint32_t>& map, uint32_t source, bool on);

  const unsigned m_hart_count;
  const uint32_t m_source_count;
  const HartIrqSink m_sink;

  std::mutex m_lock;
  std::vector<uint32_t> m_priority;
  std::vector<uint32_t> m_pending;  // bitmaps over sources
  std::vector<uint32_t> m_claimed;
  std::vector<uint32_t> m_level;
  std::vector<Context> m_contexts;
  bool m_warned = false;
};

}  // namespace hw::riscv
