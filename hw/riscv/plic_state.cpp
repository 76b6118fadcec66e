// The PLIC's snapshot state (see hw/device_state.h).
#include "hw/riscv/plic.h"

namespace hw::riscv {

void Plic::save_state(StateWriter& out) {
  std::lock_guard guard(m_lock);
  out.u32(m_source_count);
  out.u32s(m_priority);
  out.u32s(m_pending);
  out.u32s(m_claimed);
  out.u32s(m_level);
  out.u32(static_cast<uint32_t>(m_contexts.size()));
  for (const Context& ctx : m_contexts) {
    out.u32s(ctx.enable);
    out.u32(ctx.threshold);
  }
}

base::ErrorOr<void> Plic::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, "plic"));
  const size_t words = m_pending.size();
  if (in.u32() != m_source_count) in.fail();
  std::vector<uint32_t> priority(m_source_count), pending(words), claimed(words), level(words);
  in.u32s(priority, m_source_count);
  in.u32s(pending, words);
  in.u32s(claimed, words);
  in.u32s(level, words);
  if (in.u32() != m_contexts.size()) in.fail();
  std::vector<Context> contexts(m_contexts.size());
  for (Context& ctx : contexts) {
    ctx.enable.assign(words, 0);
    in.u32s(ctx.enable, words);
    ctx.threshold = in.u32();
  }
  TRY(in.finish("plic"));
  std::lock_guard guard(m_lock);
  for (uint32_t& p : priority) p = p > kPriorityMax ? kPriorityMax : p;
  m_priority = std::move(priority);
  m_pending = std::move(pending);
  m_claimed = std::move(claimed);
  m_level = std::move(level);
  m_contexts = std::move(contexts);  // outputs start low, as the new harts' lines are
  update_locked();
  return {};
}

}  // namespace hw::riscv
