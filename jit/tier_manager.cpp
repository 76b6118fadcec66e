#include "jit/tier_manager.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>

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
constexpr size_t kMaxQueued = 1024;  // a hart outrunning the compilers drops requests, never waits

uint64_t thread_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

// Which request a compile thread takes first: the one whose code ran most (entries x size).
uint64_t score(const CompileJob& job) {
  return static_cast<uint64_t>(job.heat) * job.insns.size();
}

bool same_page(const CompileJob& a, const CompileJob& b) {
  return a.source == b.source && a.ppn == b.ppn && a.generation == b.generation;
}
}  // namespace

TierManager::TierManager(const TierOptions& options) : m_options(options) {}

base::Result<std::unique_ptr<TierManager>, std::string> TierManager::create(const TierOptions& options,
                                                                            unsigned harts) {
  std::unique_ptr<TierManager> manager(new TierManager(options));
  manager->m_harts = std::max(1u, harts);
  manager->m_limit = options.code_cache_bytes ? options.code_cache_bytes : TierOptions::kDefaultCodeCache;
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
  for (unsigned i = 0; i < threads; ++i) manager->m_optimisers.push_back(std::make_unique<Instance>());
  for (unsigned i = 0; i < threads; ++i)
    manager->m_threads.emplace_back([m = manager.get(), i, path, threads] {
      security::ThreadRole role(security::Role::Translator);
      m->worker(i, path, threads);
    });
  return manager;
}

std::string TierManager::load(const std::string& path, unsigned instances) {
  const uint64_t cpu_start = thread_cpu_ns();
  auto library = load_tier(path);
  if (!library.ok()) return library.error();
  m_library = std::move(*library);
  m_helpers.load = jit_tier_load;
  m_helpers.store = jit_tier_store;
  m_helpers.exec = jit_tier_exec;
  for (unsigned i = 0; i < instances; ++i) {
    char error[512] = {};
    void* compiler = m_library->api().create(&m_helpers, quality(), error, sizeof error);
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
  {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    m_load_cpu_ns += thread_cpu_ns() - cpu_start;
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
  for (auto& instance : m_optimisers)
    if (instance->compiler) m_library->api().destroy(instance->compiler);
  for (const auto& [epoch, compiler] : m_retired) m_library->api().destroy(compiler);
}

void TierManager::attach(const std::atomic<uint64_t>* running) {
  std::lock_guard<std::mutex> lock(m_epoch_mutex);
  m_running.push_back(running);
}

void TierManager::detach(const std::atomic<uint64_t>* running) {
  std::lock_guard<std::mutex> lock(m_epoch_mutex);
  m_running.erase(std::remove(m_running.begin(), m_running.end(), running), m_running.end());
}

bool TierManager::renew(Instance& instance, uint64_t epoch, int quality) {
  if (instance.compiler && instance.epoch.load(std::memory_order_relaxed) == epoch) return true;
  char error[512] = {};
  void* fresh = m_library->api().create(&m_helpers, quality, error, sizeof error);
  if (!fresh) {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    ++m_failed;
    m_last_failure = std::string("code cache flush: ") + error;
    return false;
  }
  if (instance.compiler) {
    std::lock_guard<std::mutex> lock(m_epoch_mutex);
    m_retired.emplace_back(epoch, instance.compiler);
  }
  instance.compiler = fresh;
  instance.bytes.store(0, std::memory_order_relaxed);
  instance.epoch.store(epoch, std::memory_order_relaxed);
  return true;
}

uint64_t TierManager::live_code_bytes() const {
  const uint64_t epoch = m_epoch.load(std::memory_order_seq_cst);
  uint64_t bytes = 0;
  auto add = [&](const Instance& instance) {
    if (instance.epoch.load(std::memory_order_relaxed) == epoch)
      bytes += instance.bytes.load(std::memory_order_relaxed);
  };
  for (const auto& instance : m_instances) add(*instance);
  for (const auto& instance : m_optimisers) add(*instance);
  for (unsigned i = 0; i < m_sync_count.load(std::memory_order_acquire); ++i) add(*m_sync[i]);
  return bytes;
}

void TierManager::enforce_limit() {
  if (live_code_bytes() <= m_limit) return;
  {
    std::lock_guard<std::mutex> lock(m_epoch_mutex);
    if (live_code_bytes() <= m_limit) return;  // another thread flushed first
    m_epoch.fetch_add(1, std::memory_order_seq_cst);
  }
  m_flushes.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(m_compiled_mutex);
  m_compiled.clear();  // answers from the old code must not be handed out again
  m_sources.clear();
}

void TierManager::reclaim() {
  std::vector<void*> done;
  {
    std::lock_guard<std::mutex> lock(m_epoch_mutex);
    for (auto it = m_retired.begin(); it != m_retired.end();) {
      const uint64_t old = it->first;
      const bool unused =
          std::all_of(m_running.begin(), m_running.end(), [old](const std::atomic<uint64_t>* r) {
            const uint64_t running = r->load(std::memory_order_seq_cst);
            return running == kIdle || running >= old;
          });
      if (unused) {
        done.push_back(it->second);
        it = m_retired.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (void* compiler : done) m_library->api().destroy(compiler);
}

void TierManager::stop() {
  {
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    m_stopping = true;
    m_queue.clear();
    m_tier_up.clear();
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

RegionEntry TierManager::find_compiled(uint64_t key, const std::vector<JitRegionInsn>& insns,
                                       uint32_t entry_offset) const {
  std::lock_guard<std::mutex> lock(m_compiled_mutex);
  auto [begin, end] = m_compiled.equal_range(key);
  for (auto it = begin; it != end; ++it) {
    const CompiledCode& code = it->second;
    if (code.entry_offset == entry_offset && code.insns.size() == insns.size() &&
        std::memcmp(code.insns.data(), insns.data(), insns.size() * sizeof(JitRegionInsn)) == 0)
      return code.entry;
  }
  return {};
}

RegionEntry TierManager::compile_on(Instance& instance, const std::vector<JitRegionInsn>& insns,
                                    uint32_t entry_offset) {
  const uint64_t key = content_key(insns, entry_offset);
  if (RegionEntry fn = find_compiled(key, insns, entry_offset)) {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    ++m_reused;
    return fn;
  }
  // Over the limit: flush before compiling (the limit may be passed by one compile).
  enforce_limit();
  reclaim();
  const auto start = std::chrono::steady_clock::now();
  const uint64_t cpu_start = thread_cpu_ns();
  char error[512] = {};
  RegionEntry fn;
  const uint64_t epoch = m_epoch.load(std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(instance.mutex);
    if (!renew(instance, epoch)) return {};
    // Another hart may have compiled it while this one waited for the instance.
    if ((fn = find_compiled(key, insns, entry_offset))) {
      std::lock_guard<std::mutex> stats_lock(m_stats_mutex);
      ++m_reused;
      return fn;
    }
    fn.fn = m_library->api().compile_region(instance.compiler, insns.data(), insns.size(), entry_offset,
                                            error, sizeof error);
    fn.epoch = epoch;
    instance.bytes.store(m_library->api().code_bytes(instance.compiler), std::memory_order_relaxed);
    if (fn) {
      std::lock_guard<std::mutex> lock(m_compiled_mutex);
      if (m_epoch.load(std::memory_order_seq_cst) == epoch)
        m_compiled.emplace(key, CompiledCode{insns, entry_offset, fn});
    }
  }
  const uint64_t ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
  const uint64_t cpu_ns = thread_cpu_ns() - cpu_start;
  std::lock_guard<std::mutex> lock(m_stats_mutex);
  ++m_batches;
  m_compile_cpu_ns += cpu_ns;
  if (fn) {
    m_compile_ns.push_back(ns);
    m_compiled_guest_insns += insns.size();
  } else {
    ++m_failed;
    m_last_failure = error;
  }
  return fn;
}

RegionEntry TierManager::compile_now(const std::vector<JitRegionInsn>& insns, uint32_t entry_offset) {
  if (!m_ready.load(std::memory_order_acquire)) return {};
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
        m_sync[now]->epoch.store(m_epoch.load(std::memory_order_seq_cst), std::memory_order_relaxed);
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
    if (m_stopping || !m_active || m_load_failed) return;
    for (CompileJob& queued : m_queue) {
      if (same_page(queued, job) && queued.entry_offset == job.entry_offset) {
        queued.heat = std::max(queued.heat, job.heat);
        queued.asked = job.asked;
        queued.insns = std::move(job.insns);
        return;  // a thread is already due to take it
      }
    }
    if (m_queue.size() >= kMaxQueued) {
      auto coldest =
          std::min_element(m_queue.begin(), m_queue.end(),
                           [](const CompileJob& a, const CompileJob& b) { return score(a) < score(b); });
      if (score(*coldest) >= score(job)) {
        ++m_dropped;
        return;
      }
      *coldest = std::move(job);
      ++m_dropped;
    } else {
      m_queue.push_back(std::move(job));
    }
  }
  m_queue_cv.notify_one();
}

void TierManager::take_batch(std::vector<CompileJob>* batch) {
  const auto now = std::chrono::steady_clock::now();
  const size_t before = m_queue.size();
  m_queue.erase(std::remove_if(m_queue.begin(), m_queue.end(),
                               [&](const CompileJob& job) { return now - job.asked > kStaleAfter; }),
                m_queue.end());
  m_dropped += before - m_queue.size();
  std::sort(m_queue.begin(), m_queue.end(),
            [](const CompileJob& a, const CompileJob& b) { return score(a) > score(b); });
  // The hottest requests, each with the other requests for its page (one region with several entries).
  std::vector<bool> taken(m_queue.size(), false);
  for (size_t i = 0; i < m_queue.size() && batch->size() < kBatchJobs; ++i) {
    if (taken[i]) continue;
    for (size_t k = i; k < m_queue.size() && batch->size() < kBatchJobs; ++k) {
      if (taken[k] || !same_page(m_queue[i], m_queue[k])) continue;
      taken[k] = true;
      batch->push_back(std::move(m_queue[k]));
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < m_queue.size(); ++i)
    if (!taken[i]) m_queue[kept++] = std::move(m_queue[i]);
  m_queue.resize(kept);
}

void TierManager::compile_batch(Instance& instance, std::vector<CompileJob>& batch) {
  // Code compiled before (another hart, another page with the same code): answered at once.
  std::vector<RegionEntry> result(batch.size());
  std::vector<uint64_t> keys(batch.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < batch.size(); ++i) {
    keys[i] = content_key(batch[i].insns, batch[i].entry_offset);
    if ((result[i] = find_compiled(keys[i], batch[i].insns, batch[i].entry_offset))) {
      std::lock_guard<std::mutex> lock(m_stats_mutex);
      ++m_reused;
    } else {
      todo.push_back(i);
    }
  }
  // One region per page: the union of the requests' instructions, entered at each request's entry
  // (the batch holds a page's requests next to each other). A union that would grow past the
  // tier's limits starts another region for the same page.
  struct Group {
    std::map<uint32_t, JitRegionInsn> insns;
    std::vector<uint32_t> entries;
    std::vector<size_t> jobs;
    std::vector<JitRegionInsn> flat;
  };
  std::vector<Group> groups;
  for (size_t i : todo) {
    const CompileJob& job = batch[i];
    Group* group = groups.empty() ? nullptr : &groups.back();
    if (group && same_page(batch[group->jobs[0]], job) && group->entries.size() < kJitMaxRegionEntries) {
      size_t added = 0;
      for (const JitRegionInsn& in : job.insns) added += group->insns.count(in.offset) ? 0 : 1;
      if (group->insns.size() + added > kJitMaxRegionInsns) group = nullptr;
    } else {
      group = nullptr;
    }
    if (!group) group = &groups.emplace_back();
    for (const JitRegionInsn& in : job.insns) group->insns.emplace(in.offset, in);
    group->entries.push_back(job.entry_offset);
    group->jobs.push_back(i);
  }
  if (!groups.empty()) {
    std::vector<JitRegionSpec> specs;
    for (Group& group : groups) {
      for (const auto& [offset, in] : group.insns) group.flat.push_back(in);
      specs.push_back(JitRegionSpec{group.flat.data(), group.flat.size(), group.entries.data(),
                                    group.entries.size(), nullptr});
    }
    enforce_limit();  // over the limit: flush before compiling
    reclaim();
    const auto start = std::chrono::steady_clock::now();
    const uint64_t cpu_start = thread_cpu_ns();
    char error[512] = {};
    const uint64_t epoch = m_epoch.load(std::memory_order_seq_cst);
    {
      std::lock_guard<std::mutex> lock(instance.mutex);
      if (renew(instance, epoch)) {
        m_library->api().compile_regions(instance.compiler, specs.data(), specs.size(), error, sizeof error);
        instance.bytes.store(m_library->api().code_bytes(instance.compiler), std::memory_order_relaxed);
      }
    }
    const uint64_t cpu_ns = thread_cpu_ns() - cpu_start;
    const uint64_t ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
            .count());
    size_t compiled = 0, failed = 0, compiled_insns = 0;
    {
      std::lock_guard<std::mutex> lock(m_compiled_mutex);
      for (size_t g = 0; g < groups.size(); ++g) {
        const Group& group = groups[g];
        for (size_t k = 0; k < group.jobs.size(); ++k) {
          const size_t i = group.jobs[k];
          result[i] = RegionEntry{specs[g].fn, static_cast<uint32_t>(k), epoch};
          if (!result[i] || m_epoch.load(std::memory_order_seq_cst) != epoch) continue;
          m_compiled.emplace(keys[i], CompiledCode{batch[i].insns, batch[i].entry_offset, result[i]});
        }
        if (specs[g].fn) {
          ++compiled;
          compiled_insns += group.flat.size();
          if (m_epoch.load(std::memory_order_seq_cst) == epoch)
            m_sources[specs[g].fn] = RegionSource{group.flat, group.entries, epoch, false, nullptr};
        } else {
          ++failed;
        }
      }
    }
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    ++m_batches;
    m_compile_cpu_ns += cpu_ns;
    m_compiled_guest_insns += compiled_insns;
    for (size_t i = 0; i < compiled; ++i) m_compile_ns.push_back(ns / compiled);
    if (failed) {
      m_failed += failed;
      m_last_failure = error;
    }
  }
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].done) batch[i].done(batch[i], result[i]);
}

void TierManager::request_tier_up(JitRegionFn fn, uint64_t epoch,
                                  std::function<void(JitRegionFn, RegionEntry)> done) {
  RegionEntry ready;
  {
    std::lock_guard<std::mutex> lock(m_compiled_mutex);
    auto it = m_sources.find(fn);
    if (it == m_sources.end() || it->second.epoch != epoch) return;
    if (it->second.optimised) {
      ready = RegionEntry{it->second.optimised, 0, epoch};  // another hart asked first
    } else {
      const bool queued = it->second.queued;
      it->second.queued = true;
      std::lock_guard<std::mutex> queue_lock(m_queue_mutex);
      if (m_stopping || m_load_failed) return;
      m_tier_up.push_back(TierUpJob{fn, epoch, std::move(done)});
      if (queued) return;  // a thread will answer this request with the first
    }
  }
  if (ready) {
    done(fn, ready);
    return;
  }
  m_queue_cv.notify_one();
}

void TierManager::optimise(Instance& instance, std::vector<TierUpJob>& waiting) {
  const JitRegionFn old = waiting.front().fn;
  const uint64_t epoch = m_epoch.load(std::memory_order_seq_cst);
  RegionSource source;
  JitRegionFn ready = nullptr;
  {
    std::lock_guard<std::mutex> lock(m_compiled_mutex);
    auto it = m_sources.find(old);
    if (it == m_sources.end() || it->second.epoch != epoch) return;  // flushed meanwhile
    ready = it->second.optimised;  // asked again while the first request compiled
    source.insns = it->second.insns;
    source.entries = it->second.entries;
  }
  if (ready) {
    for (TierUpJob& job : waiting)
      if (job.done) job.done(old, RegionEntry{ready, 0, epoch});
    return;
  }
  enforce_limit();
  reclaim();
  const uint64_t cpu_start = thread_cpu_ns();
  char error[512] = {};
  JitRegionSpec spec{source.insns.data(), source.insns.size(), source.entries.data(), source.entries.size(),
                     nullptr};
  {
    std::lock_guard<std::mutex> lock(instance.mutex);
    if (!renew(instance, epoch, kJitCompileHot)) return;
    m_library->api().compile_regions(instance.compiler, &spec, 1, error, sizeof error);
    instance.bytes.store(m_library->api().code_bytes(instance.compiler), std::memory_order_relaxed);
  }
  const uint64_t cpu_ns = thread_cpu_ns() - cpu_start;
  {
    std::lock_guard<std::mutex> lock(m_stats_mutex);
    m_compile_cpu_ns += cpu_ns;
    m_optimise_cpu_ns += cpu_ns;
    ++m_batches;
    if (spec.fn) {
      ++m_optimised;
    } else {
      ++m_failed;
      m_last_failure = std::string("tier-up: ") + error;
    }
  }
  if (!spec.fn) return;
  {
    std::lock_guard<std::mutex> lock(m_compiled_mutex);
    if (m_epoch.load(std::memory_order_seq_cst) != epoch) return;  // flushed: the new code is gone too
    if (auto it = m_sources.find(old); it != m_sources.end()) it->second.optimised = spec.fn;
    // Later requests for the same code (reuse by content) get the optimised code.
    for (auto& [key, code] : m_compiled)
      if (code.entry.fn == old) code.entry.fn = spec.fn;
  }
  for (TierUpJob& job : waiting)
    if (job.done) job.done(old, RegionEntry{spec.fn, 0, epoch});
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
  // Compiling must never slow the vCPUs down: on a machine with as many harts as cores, a compile
  // thread at the same priority takes a core's share from a hart; at nice 10 it runs on what the
  // harts leave (wfi, waits on devices) and otherwise on its small share. With fewer harts than
  // cores it keeps the normal priority: a core is there for it, and at nice 10 on a host loaded by
  // other work it starved (one region compiled in a whole Linux boot, 1.2 s after it was asked for).
  if (m_harts >= std::max(1u, std::thread::hardware_concurrency()))
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
  if (index == 0 && m_arming_hold) m_arming_hold->release();  // loaded (or failed): confine now
  std::vector<TierUpJob> waiting;
  for (;;) {
    std::vector<CompileJob> batch;
    {
      std::unique_lock<std::mutex> lock(m_queue_mutex);
      m_queue_cv.wait(lock, [&] {
        return m_stopping || m_load_failed ||
               (m_ready.load(std::memory_order_acquire) && (!m_queue.empty() || !m_tier_up.empty()));
      });
      if (m_stopping || m_load_failed) return;
      take_batch(&batch);
      // New code first (it runs in the interpreter until compiled); tier-ups when none waits.
      if (batch.empty() && !m_tier_up.empty()) {
        const JitRegionFn fn = m_tier_up.front().fn;
        auto same = std::stable_partition(m_tier_up.begin(), m_tier_up.end(),
                                          [fn](const TierUpJob& job) { return job.fn == fn; });
        waiting.assign(std::make_move_iterator(m_tier_up.begin()), std::make_move_iterator(same));
        m_tier_up.erase(m_tier_up.begin(), same);
      }
    }
    if (!batch.empty()) compile_batch(*m_instances[index], batch);
    if (!waiting.empty()) optimise(*m_optimisers[index], waiting);
    waiting.clear();
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
    s.batches = m_batches;
    s.compile_cpu_ns = m_compile_cpu_ns;
    s.load_cpu_ns = m_load_cpu_ns;
    s.compiled_guest_insns = m_compiled_guest_insns;
    s.regions_optimised = m_optimised;
    s.optimise_cpu_ns = m_optimise_cpu_ns;
  }
  {
    std::lock_guard<std::mutex> lock(m_queue_mutex);
    s.regions_dropped = m_dropped;
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
  s.chains = m_chains.load(std::memory_order_relaxed);
  if (ready) s.code_bytes = live_code_bytes();
  s.code_cache_limit = m_limit;
  s.code_cache_flushes = m_flushes.load(std::memory_order_relaxed);
  return s;
}

}  // namespace jit
