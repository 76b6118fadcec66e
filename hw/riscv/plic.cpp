#include "hw/riscv/plic.h"

#include <cstdio>

namespace hw::riscv {
namespace {

constexpr uint64_t kPending = 0x1000;
constexpr uint64_t kEnable = 0x2000, kEnableStride = 0x80;
constexpr uint64_t kContext = 0x200000, kContextStride = 0x1000;

class SourceLine final : public IrqLine {
 public:
  SourceLine(std::shared_ptr<Plic> plic, uint32_t source) : m_plic(std::move(plic)), m_source(source) {}
  void set_level(bool asserted) override { m_plic->set_source_level(m_source, asserted); }

 private:
  std::shared_ptr<Plic> m_plic;
  uint32_t m_source;
};

}  // namespace

Plic::Plic(unsigned hart_count, uint32_t source_count, HartIrqSink sink)
    : m_hart_count(hart_count),
      m_source_count(source_count < 2 ? 2 : (source_count > 1024 ? 1024 : source_count)),
      m_sink(std::move(sink)) {
  size_t words = (m_source_count + 31) / 32;
  m_priority.assign(m_source_count, 0);
  m_pending.assign(words, 0);
  m_claimed.assign(words, 0);
  m_level.assign(words, 0);
  m_contexts.resize(context_count());
  for (auto& ctx : m_contexts) ctx.enable.assign(words, 0);
}

std::shared_ptr<IrqLine> Plic::source_line(uint32_t source) {
  if (source == 0 || source >= m_source_count) return nullptr;
  auto self = weak_from_this().lock();
  if (!self) return nullptr;
  return std::make_shared<SourceLine>(std::move(self), source);
}

void Plic::set_source_level(uint32_t source, bool level) {
  if (source == 0 || source >= m_source_count) return;
  std::lock_guard guard(m_lock);
  set_bit(m_level, source, level);
  // A rising (or held) level makes the source pending unless it is being serviced.
  if (level && !bit(m_claimed, source)) set_bit(m_pending, source, true);
  if (!level) set_bit(m_pending, source, false);  // level-triggered: the request went away
  update_locked();
}

void Plic::set_bit(std::vector<uint32_t>& map, uint32_t source, bool on) {
  if (on)
    map[source / 32] |= 1u << (source % 32);
  else
    map[source / 32] &= ~(1u << (source % 32));
}

void Plic::read(uint64_t offset, std::span<uint8_t> data) {
  for (auto& b : data) b = 0;
  if (data.size() != 4 || offset % 4 != 0) {
    std::lock_guard guard(m_lock);
    if (!m_warned) {
      std::fprintf(stderr, "vmlaunch: plic: guest read of %zu bytes at 0x%llx ignored (32-bit only)\n",
                   data.size(), (unsigned long long)offset);
      m_warned = true;
    }
    return;
  }
  std::lock_guard guard(m_lock);
  uint32_t value = read_word_locked(offset);
  for (size_t i = 0; i < 4; ++i) data[i] = static_cast<uint8_t>(value >> (8 * i));
}

void Plic::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 4 || offset % 4 != 0) {
    std::lock_guard guard(m_lock);
    if (!m_warned) {
      std::fprintf(stderr, "vmlaunch: plic: guest write of %zu bytes at 0x%llx ignored (32-bit only)\n",
                   data.size(), (unsigned long long)offset);
      m_warned = true;
    }
    return;
  }
  uint32_t value = data[0] | data[1] << 8 | data[2] << 16 | uint32_t{data[3]} << 24;
  std::lock_guard guard(m_lock);
  write_word_locked(offset, value);
}

uint32_t Plic::read_word_locked(uint64_t offset) {
  if (offset < kPending) {
    uint64_t source = offset / 4;
    return source < m_source_count ? m_priority[source] : 0;
  }
  if (offset < kEnable) {
    uint64_t word = (offset - kPending) / 4;
    return word < m_pending.size() ? m_pending[word] : 0;
  }
  if (offset < kContext) {
    uint64_t ctx = (offset - kEnable) / kEnableStride;
    uint64_t word = (offset - kEnable) % kEnableStride / 4;
    if (ctx < m_contexts.size() && word < m_contexts[ctx].enable.size()) return m_contexts[ctx].enable[word];
    return 0;
  }
  uint64_t ctx = (offset - kContext) / kContextStride;
  uint64_t reg = (offset - kContext) % kContextStride;
  if (ctx >= m_contexts.size()) return 0;
  if (reg == 0) return m_contexts[ctx].threshold;
  if (reg == 4) return claim_locked(static_cast<unsigned>(ctx));
  return 0;
}

void Plic::write_word_locked(uint64_t offset, uint32_t value) {
  if (offset < kPending) {
    uint64_t source = offset / 4;
    if (source > 0 && source < m_source_count) m_priority[source] = value & kPriorityMax;
  } else if (offset < kEnable) {
    return;  // pending bits are read-only
  } else if (offset < kContext) {
    uint64_t ctx = (offset - kEnable) / kEnableStride;
    uint64_t word = (offset - kEnable) % kEnableStride / 4;
    if (ctx >= m_contexts.size() || word >= m_contexts[ctx].enable.size()) return;
    if (word == 0) value &= ~1u;  // source 0 does not exist
    if (word == m_contexts[ctx].enable.size() - 1 && m_source_count % 32 != 0)
      value &= (1u << (m_source_count % 32)) - 1;
    m_contexts[ctx].enable[word] = value;
  } else {
    uint64_t ctx = (offset - kContext) / kContextStride;
    uint64_t reg = (offset - kContext) % kContextStride;
    if (ctx >= m_contexts.size()) return;
    if (reg == 0) m_contexts[ctx].threshold = value & kPriorityMax;
    if (reg == 4) complete_locked(static_cast<unsigned>(ctx), value);
  }
  update_locked();
}

uint32_t Plic::claim_locked(unsigned ctx) {
  // The highest-priority pending enabled source; ties go to the lowest number.
  uint32_t best = 0, best_priority = 0;
  for (uint32_t source = 1; source < m_source_count; ++source) {
    if (!bit(m_pending, source) || !bit(m_contexts[ctx].enable, source)) continue;
    if (m_priority[source] > best_priority) {
      best = source;
      best_priority = m_priority[source];
    }
  }
  if (best != 0) {
    set_bit(m_pending, best, false);
    set_bit(m_claimed, best, true);
  }
  update_locked();
  return best;
}

void Plic::complete_locked(unsigned ctx, uint32_t source) {
  // The spec lets hardware ignore completions of sources not enabled for the context; QEMU accepts
  // them, and so do we: Linux may move an interrupt's enable bit to another hart (affinity) between
  // claim and complete, and an ignored completion would leave the source claimed forever.
  (void)ctx;
  if (source == 0 || source >= m_source_count) return;
  set_bit(m_claimed, source, false);
  if (bit(m_level, source)) set_bit(m_pending, source, true);
}

void Plic::update_locked() {
  for (unsigned ctx = 0; ctx < m_contexts.size(); ++ctx) {
    Context& c = m_contexts[ctx];
    bool output = false;
    for (size_t word = 0; word < m_pending.size() && !output; ++word) {
      uint32_t candidates = m_pending[word] & c.enable[word];
      while (candidates != 0 && !output) {
        uint32_t source = static_cast<uint32_t>(word * 32 + __builtin_ctz(candidates));
        candidates &= candidates - 1;
        if (m_priority[source] > c.threshold) output = true;
      }
    }
    if (output == c.output) continue;
    c.output = output;
    m_sink(ctx / 2, ctx % 2 == 0 ? kMipMeip : kMipSeip, output);
  }
}

}  // namespace hw::riscv
