#include "jit/engine.h"

#include <algorithm>

#include "jit/hart.h"

namespace jit {

Engine::Engine(accel::VmOps& ops, const base::Timebase& timebase, unsigned hart_count,
               const CpuConfig& config)
    : m_platform(std::make_unique<Platform>(ops, timebase, config)) {
  // Harts exist from the start so interrupt lines work before (and without) a vCPU thread.
  for (unsigned i = 0; i < hart_count; ++i) m_harts.push_back(std::make_unique<Hart>(*m_platform, i));
}

Engine::~Engine() {
  // Background compiles post results to harts: stop them before the harts go.
  if (m_tier) m_tier->stop();
  m_harts.clear();
}

base::Result<bool, std::string> Engine::set_tier(const TierOptions& options) {
  auto tier = TierManager::create(options, static_cast<unsigned>(m_harts.size()));
  if (!tier.ok()) return base::fail(std::move(tier).error());
  if (m_tier) m_tier->stop();
  for (auto& hart : m_harts) {
    hart->set_tier(tier->get());  // before the old manager goes
    hart->set_lockstep(options.lockstep && (*tier)->active());
  }
  m_tier = std::move(*tier);
  return m_tier->active();
}

TierStats Engine::tier_stats() const {
  TierStats stats = m_tier ? m_tier->stats() : TierStats{};
  for (const auto& hart : m_harts) {
    if (const Lockstep* lockstep = hart->lockstep()) {
      stats.lockstep = true;
      stats.lockstep_compared += lockstep->compared();
      stats.lockstep_device_exits += lockstep->device_exits();
    }
  }
  return stats;
}

std::string Engine::lockstep_failure(unsigned hart) const {
  if (hart >= m_harts.size() || !m_harts[hart]->lockstep()) return {};
  return m_harts[hart]->lockstep()->failure();
}

void Engine::add_ram(const base::GuestMemory::Region& region) {
  m_platform->add_ram(region);
}

bool Engine::reset(unsigned hart, uint64_t pc, uint64_t a0, uint64_t a1, uint64_t a2) {
  if (hart >= m_harts.size()) return false;
  m_harts[hart]->reset(pc, a0, a1, a2);
  return true;
}

bool Engine::run(unsigned hart) {
  if (hart >= m_harts.size()) return false;
  // halt() kicks after setting the flag, so a run() that passes this check still returns soon.
  if (!halted() && lockstep_failure(hart).empty()) m_harts[hart]->run();
  return true;
}

bool Engine::step(unsigned hart, uint64_t max_instructions) {
  if (hart >= m_harts.size()) return false;
  m_harts[hart]->step(max_instructions);
  return true;
}

std::optional<uint64_t> Engine::instructions_retired(unsigned hart) const {
  if (hart >= m_harts.size()) return std::nullopt;
  return m_harts[hart]->published_instret();
}

bool Engine::kick(unsigned hart) {
  if (hart >= m_harts.size()) return false;
  m_harts[hart]->kick();
  return true;
}

bool Engine::set_irq(unsigned hart, unsigned bit, bool level) {
  if (hart >= m_harts.size() || bit >= 64) return false;
  m_harts[hart]->set_irq(bit, level);
  return true;
}

bool Engine::park(std::chrono::milliseconds timeout) {
  for (auto& hart : m_harts) hart->request_park();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool all = true;
  for (auto& hart : m_harts) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    all = hart->wait_parked(std::max(left, std::chrono::milliseconds(0))) && all;
  }
  return all;
}

void Engine::resume() {
  for (auto& hart : m_harts) hart->resume();
}

std::optional<CpuState> Engine::state(unsigned hart) const {
  if (hart >= m_harts.size()) return std::nullopt;
  return m_harts[hart]->state();
}

bool Engine::set_state(unsigned hart, const CpuState& state) {
  if (hart >= m_harts.size()) return false;
  m_harts[hart]->set_state(state);
  return true;
}

bool Engine::set_debug(unsigned hart, bool single_step, std::vector<uint64_t> breakpoints,
                       const std::vector<Watch>& watches) {
  if (hart >= m_harts.size()) return false;
  std::vector<Hart::Watch> hart_watches;
  for (const Watch& w : watches) hart_watches.push_back({w.addr, w.len, w.read, w.write});
  m_harts[hart]->set_debug(single_step, std::move(breakpoints), std::move(hart_watches));
  return true;
}

std::optional<Engine::DebugStop> Engine::debug_stop(unsigned hart) {
  if (hart >= m_harts.size()) return std::nullopt;
  auto stop = m_harts[hart]->take_debug_stop();
  if (!stop) return std::nullopt;
  return DebugStop{static_cast<DebugStop::Kind>(stop->kind), stop->pc, stop->data_addr, stop->write};
}

std::optional<uint64_t> Engine::debug_translate(unsigned hart, uint64_t va) const {
  uint64_t pa = 0;
  if (hart >= m_harts.size() || !m_harts[hart]->debug_translate(va, &pa)) return std::nullopt;
  return pa;
}

void Engine::invalidate_range(uint64_t pa, uint64_t len) {
  for (auto& hart : m_harts) hart->invalidate_range(pa, len);
}

void Engine::halt() {
  m_halted.store(true, std::memory_order_release);
  for (auto& hart : m_harts) hart->kick();
  // Parked harts must leave run() too (their threads are about to be joined); the kick above is
  // seen before they execute anything.
  resume();
}

}  // namespace jit
