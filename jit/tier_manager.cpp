#include "jit/tier_manager.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

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

const char* exit_reason_name(unsigned reason) {
  switch (reason) {
    case kJitExitBranch:
      return "branch";
    case kJitExitTrap:
      return "trap";
    case kJitExitIndirect:
      return "indirect";
    case kJitExitBudget:
      return "budget";
    case kJitExitCodeStore:
      return "code_store";
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
  if (sync) {
    const std::string why = manager->load(path, 1);
    if (!why.empty()) return base::fail("tier llvm: " + why);
    manager->m_active = true;
    return manager;
  }
  // auto: mapping libLLVM (~130 MB, most of it relocations) and building each compiler's LLJIT
  // took ~1 s on the loaded 2-core host before the first guest instruction ran, a third of a
  // Linux boot. The first compile thread does it while the interpreter boots; only a missing file
  // is known here.
  if (::access(path.c_str(), R_OK) != 0) {
    manager->m_note = "jit tier " + path + ": " + std::strerror(errno) + " (running the interpreter only)";
    return manager;
  }
  manager->m_active = true;
  // The seccomp filters (security/) go on only once the first compile thread has mapped libLLVM
  // and built the compilers: it holds arming until then (the translator's allow-list has no
  // dlopen in it).
  manager->m_arming_hold = std::make_unique<security::ArmingHold>("the jit's LLVM tier is loading");
  const unsigned threads = std::max(1u, options.compile_threads);
  for (unsigned i = 0; i < threads; ++i)
    manager->m_threads.emplace_back([m = manager.get(), i, path, threads] {
      security::ThreadRole role(security::Role::Translator);
      m->worker(i, path, threads);
    });
  return manager;
}

std::string TierManager::load(const std::string& path, unsigned instances) {
  auto library = load_tier(path);
  if (!library.ok()) return library.error();
  m_library = std::move(*library);
  m_helpers.load = jit_tier_load;
  m_helpers.store = jit_tier_store;
  for (unsigned i = 0; i < instances; ++i) {
    char error[512] = {};
    const int quality = m_options.mode == TierOptions::Mode::kLlvm ? kJitCompileFast : kJitCompileOptimised;
    void* compiler = m_library->api().create(&m_helpers, quality, error, sizeof error);
    if (!compiler) return std::string("jit tier ") + path + ": " + error;
    auto instance = std::make_unique<Instance>();
    instance->compiler = compiler;
    if (m_options.mode == TierOptions::Mode::kLlvm) {
      m_sync[m_sync_count.load(std::memory_order_relaxed)] = std::move(instance);
      m_sync_count.fetch_add(1, std::memory_order_release);
    } else {
      m_instances.push_back(std::move(instance));
    }
  }
  m_ready.store(true, std::memory_order_release);
  return {};
}

TierManager::~TierManager() {
  stop();
  // Compiled code dies with its compiler instance; the harts using it are gone by now (Engine).
  // The threads are joined: whatever the loader created is here.
  for (auto& instance : m_instances)
    if (instance->compiler) m_library->api().destroy(instance->compiler);
  for (unsigned i = 0; i < m_sync_count.load(std::memory_order_acquire); ++i)
    m_library->api().destroy(m_sync[i]->compiler);
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

uint64_t TierManager::content_key(const std::vector<JitRegionInsn>& insns, uint32_t entry_offset) {
  uint64_t hash = 1469598103934665603ull ^ entry_offset;  // FNV-1a over the region's bytes
  const auto* bytes = reinterpret_cast<const uint8_t*>(insns.data());
  for (size_t i = 0; i < insns.size() * sizeof(JitRegionInsn); ++i)
    hash = (hash ^ bytes[i]) * 1099511628211ull;
  return hash;
}

JitRegionFn TierManager::find_compiled(uint64_t key, const std::vector<JitRegionInsn>& insns,
                                       uint32_t entry_offset) const {
  std::lock_guard<std::mutex> lock(m_compiled_mutex);
  auto [begin, end] = m_compiled.equal_range(key);
  for (auto it = begin; it != end; ++it) {
    const CompiledCode& code = it->second;
    if (code.entry_offset == entry_offset && code.insns.size() == insns.size() &&
        std::memcmp(code.insns.data(), insns.data(), insns.size() * sizeof(JitRegionInsn)) == 0)
      return code.fn;
  }
  return nullptr;
}

JitRegionFn TierManager::compile_on(Instance& instance, const std::vector<JitRegionInsn>& insns,
                                    uint32_t entry_offset) {
  const uint64_t key = content_key(insns, entry_offset);
  if (JitRegionFn fn = find_compiled(key, insns, entry_offset)) {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    ++m_reused;
    return fn;
  }
  const auto start = std::chrono::steady_clock::now();
  char error[512] = {};
  JitRegionFn fn;
  {
    std::lock_guard<std::mutex> lock(instance.mutex);
    // Another hart may have compiled it while this one waited for the instance.
    if ((fn = find_compiled(key, insns, entry_offset))) {
      std::lock_guard<std::mutex> stats_lock(m_stats_mutex);
      ++m_reused;
      return fn;
    }
    fn = m_library->api().compile_region(instance.compiler, insns.data(), insns.size(), entry_offset, error,
                                         sizeof error);
    if (fn) {
      std::lock_guard<std::mutex> lock(m_compiled_mutex);
      m_compiled.emplace(key, CompiledCode{insns, entry_offset, fn});
    }
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
  if (!m_ready.load(std::memory_order_acquire)) return nullptr;
  // Harts compiling at the same time each get a compiler of their own (up to the host's cores), so
  // a 2-hart guest under tier llvm does not run one hart at a time through one compiler.
  const unsigned count = m_sync_count.load(std::memory_order_acquire);
  for (unsigned i = 0; i < count; ++i) {
    if (m_sync[i]->mutex.try_lock()) {
      m_sync[i]->mutex.unlock();
      return compile_on(*m_sync[i], insns, entry_offset);
    }
  }
  {
    std::lock_guard<std::mutex> lock(m_sync_grow_mutex);
    const unsigned now = m_sync_count.load(std::memory_order_relaxed);
    const unsigned limit = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxSyncCompilers);
    if (now < limit) {
      char error[512] = {};
      if (void* compiler = m_library->api().create(&m_helpers, kJitCompileFast, error, sizeof error)) {
        m_sync[now] = std::make_unique<Instance>();
        m_sync[now]->compiler = compiler;
        m_sync_count.store(now + 1, std::memory_order_release);
        return compile_on(*m_sync[now], insns, entry_offset);
      }
    }
  }
  return compile_on(*m_sync[0], insns, entry_offset);  // all busy: wait for the first
}

void TierManager::enqueue(CompileJob job) {
  {
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    if (m_stopping || !m_active || m_load_failed || m_queue.size() >= kMaxQueued) return;
    m_queue.push_back(std::move(job));
  }
  m_queue_cv.notify_one();
}

void TierManager::worker(unsigned index, const std::string& path, unsigned threads) {
  // Thread 0 loads the tier first, at normal priority: a machine that stops early waits for it.
  if (index == 0) {
    const std::string why = load(path, threads);
    {
      std::lock_guard<std::mutex> lock(m_queue_mutex);
      if (!why.empty()) {
        m_load_failed = true;
        m_note = why + " (running the interpreter only)";
        m_queue.clear();
      }
    }
    m_queue_cv.notify_all();
  }
  // Compiling must never slow the vCPUs down: on a machine with as many busy harts as cores, a
  // compile thread at the same priority takes a core's share from a hart. At nice 10 it runs on
  // what the harts leave (wfi, waits on devices) and otherwise on its small share.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
  if (index == 0 && m_arming_hold) m_arming_hold->release();  // loaded (or failed): confine now
  for (;;) {
    CompileJob job;
    {
      std::unique_lock<std::mutex> lock(m_queue_mutex);
      m_queue_cv.wait(lock, [&] {
        return m_stopping || m_load_failed || (m_ready.load(std::memory_order_acquire) && !m_queue.empty());
      });
      if (m_stopping || m_load_failed) return;
      job = std::move(m_queue.front());
      m_queue.pop_front();
    }
    JitRegionFn fn = compile_on(*m_instances[index], job.insns, job.entry_offset);
    if (job.done) job.done(job, fn);
  }
}

TierStats TierManager::stats() const {
  TierStats s;
  s.mode = mode_name(m_options.mode);
  const bool ready = m_ready.load(std::memory_order_acquire);
  if (ready) s.tier = m_library->api().describe();
  std::vector<uint64_t> ns;
  {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    ns = m_compile_ns;
    s.regions_failed = m_failed;
    s.regions_reused = m_reused;
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
  for (unsigned i = 0; i < kJitExitReasons; ++i) s.exits[i] = m_exits[i].load(std::memory_order_relaxed);
  if (ready) {
    for (const auto& instance : m_instances) s.code_bytes += m_library->api().code_bytes(instance->compiler);
    for (unsigned i = 0; i < m_sync_count.load(std::memory_order_acquire); ++i)
      s.code_bytes += m_library->api().code_bytes(m_sync[i]->compiler);
  }
  return s;
}

}  // namespace jit
