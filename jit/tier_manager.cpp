#include "jit/tier_manager.h"

#include <algorithm>
#include <chrono>

#include "jit/mmu.h"
#include "jit/tier_loader.h"
#include "security/thread_role.h"

namespace jit {

const char* mode_name(TierOptions::Mode mode) {
  switch (mode) {
    case TierOptions::Mode::kAuto:
      return "auto";
    case TierOptions::Mode::kInterp:
      return "interp";
    case TierOptions::Mode::kLlvm:
      return "llvm";
  }
  return "?";
}

namespace {
constexpr size_t kMaxQueued = 4096;  // a hart outrunning the compilers drops requests, never waits
}

TierManager::TierManager(const TierOptions& options) : m_options(options) {}

base::Result<std::unique_ptr<TierManager>, std::string> TierManager::create(const TierOptions& options) {
  std::unique_ptr<TierManager> manager(new TierManager(options));
  if (options.mode == TierOptions::Mode::kInterp) return manager;
  const bool sync = options.mode == TierOptions::Mode::kLlvm;
  manager->m_threshold =
      options.hot_threshold ? options.hot_threshold : (sync ? 1 : TierOptions::kDefaultAutoThreshold);
  const std::string path = options.library.empty() ? default_tier_path() : options.library;
  auto library = load_tier(path);
  if (!library.ok()) {
    if (sync) return base::fail("tier llvm: " + library.error());
    manager->m_note = library.error() + " (running the interpreter only)";
    return manager;
  }
  manager->m_library = std::move(*library);
  manager->m_helpers.load = jit_tier_load;
  manager->m_helpers.store = jit_tier_store;
  const unsigned threads = sync ? 0 : std::max(1u, options.compile_threads);
  for (unsigned i = 0; i < 1 + threads; ++i) {
    char error[512] = {};
    void* compiler = manager->m_library->api().create(&manager->m_helpers, error, sizeof error);
    if (!compiler) {
      std::string why = std::string("jit tier ") + path + ": " + error;
      if (sync) return base::fail(why);
      manager->m_note = why + " (running the interpreter only)";
      return manager;
    }
    manager->m_instances.push_back(std::make_unique<Instance>());
    manager->m_instances.back()->compiler = compiler;
  }
  manager->m_instances_ready = true;
  for (size_t i = 1; i < manager->m_instances.size(); ++i)
    manager->m_threads.emplace_back([m = manager.get(), i] {
      security::ThreadRole role(security::Role::Translator);
      m->worker(*m->m_instances[i]);
    });
  return manager;
}

TierManager::~TierManager() {
  stop();
  // Compiled code dies with its compiler instance; the harts using it are gone by now (Engine).
  for (auto& instance : m_instances)
    if (instance->compiler) m_library->api().destroy(instance->compiler);
}

void TierManager::stop() {
  {
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    m_stopping = true;
    m_queue.clear();
  }
  m_queue_cv.notify_all();
  for (auto& thread : m_threads) thread.join();
  m_threads.clear();
}

JitRegionFn TierManager::compile_on(Instance& instance, const std::vector<JitRegionInsn>& insns,
                                    uint32_t entry_offset) {
  const auto start = std::chrono::steady_clock::now();
  char error[512] = {};
  JitRegionFn fn;
  {
    std::lock_guard<std::mutex> lock(instance.mutex);
    fn = m_library->api().compile_region(instance.compiler, insns.data(), insns.size(), entry_offset, error,
                                         sizeof error);
  }
  const uint64_t ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  std::lock_guard<std::mutex> lock(m_stats_mutex);
  if (fn) {
    m_compile_ns.push_back(ns);
  } else {
    ++m_failed;
    m_last_failure = error;
  }
  return fn;
}

JitRegionFn TierManager::compile_now(const std::vector<JitRegionInsn>& insns, uint32_t entry_offset) {
  if (!m_instances_ready) return nullptr;
  return compile_on(*m_instances[0], insns, entry_offset);
}

void TierManager::enqueue(CompileJob job) {
  {
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    if (m_stopping || !m_instances_ready || m_queue.size() >= kMaxQueued) return;
    m_queue.push_back(std::move(job));
  }
  m_queue_cv.notify_one();
}

void TierManager::worker(Instance& instance) {
  for (;;) {
    CompileJob job;
    {
      std::unique_lock<std::mutex> lock(m_queue_mutex);
      m_queue_cv.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
      if (m_stopping) return;
      job = std::move(m_queue.front());
      m_queue.pop_front();
    }
    JitRegionFn fn = compile_on(instance, job.insns, job.entry_offset);
    if (job.done) job.done(job, fn);
  }
}

TierStats TierManager::stats() const {
  TierStats s;
  s.mode = mode_name(m_options.mode);
  if (m_library) s.tier = m_library->api().describe();
  std::vector<uint64_t> ns;
  {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    ns = m_compile_ns;
    s.regions_failed = m_failed;
    s.last_failure = m_last_failure;
  }
  s.regions_compiled = ns.size();
  for (uint64_t v : ns) s.compile_ns_total += v;
  if (!ns.empty()) {
    std::sort(ns.begin(), ns.end());
    s.compile_ns_p50 = ns[ns.size() / 2];
    s.compile_ns_p99 = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)];
  }
  s.regions_installed = m_installed.load(std::memory_order_relaxed);
  s.guest_instructions = m_guest_instructions.load(std::memory_order_relaxed);
  s.compiled_instructions = m_compiled_instructions.load(std::memory_order_relaxed);
  return s;
}

}  // namespace jit
