// Lockstep mode of the compiled tier (`{type: jit, tier: llvm, lockstep: true}`): every compiled
// region a hart enters also runs on the interpreter from a copy of the state it started from, and
// the two results are compared at the region's exit: pc, x and f registers, fflags/frm, every CSR
// in CpuState, priv, instret, the LR/SC reservation, a trap the region took, and the stores each
// made (address, size, bytes, in order). The first difference stops the hart with a report naming
// the region, the differing field or store, both values and the instruction where they part.
//
// How (jit/lockstep.cpp, Hart::lockstep_region):
// - While lockstep is on the write TLB stays empty (Hart::tlb_insert), so every store of either
//   tier reaches Hart::store_slow or the atomics' host_for_atomic, which log it here (physical
//   address, old and new bytes). Chaining is off (an empty jump cache): each region exit returns
//   to the dispatcher and is compared.
// - After the region: its stores are undone (old bytes back, newest first), the state is reset to
//   the copy and the interpreter runs the same number of instructions one at a time (taking the
//   same trap if one is due), logging its stores; then both results are compared.
// - A device access (anything not RAM) has side effects and cannot be done twice: compiled code in
//   lockstep stops before it (the slow path refuses it, the region exits at that instruction), the
//   instructions before it are compared, and the interpreter then runs the accessing instruction
//   once (counted as a device exit). So access faults outside RAM are taken by the interpreter.
// Off (the default), the cost is one predictable branch per region entry and per slow-path store.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "jit/cpu_state.h"

namespace jit {

class Lockstep {
 public:
  struct Store {
    uint64_t pa = 0;
    uint8_t* host = nullptr;  // where the bytes went (RAM only)
    uint32_t size = 0;
    bool pending = false;  // an atomic: `after` is read once it completed (finish())
    uint8_t before[8] = {};
    uint8_t after[8] = {};
  };

  // The slow paths report here (only while a region or its replay runs).
  void note_store(uint64_t pa, uint8_t* host, const void* in, unsigned size) {
    if (!m_recording) return;
    finish();
    Store s;
    s.pa = pa;
    s.host = host;
    s.size = size > 8 ? 8 : size;
    std::memcpy(s.before, host, s.size);
    std::memcpy(s.after, in, s.size);
    m_log.push_back(s);
  }
  // An LR/SC/AMO about to write `size` bytes at host: its result is read when it has completed.
  void note_atomic(uint64_t pa, uint8_t* host, unsigned size) {
    if (!m_recording) return;
    finish();
    Store s;
    s.pa = pa;
    s.host = host;
    s.size = size > 8 ? 8 : size;
    s.pending = true;
    std::memcpy(s.before, host, s.size);
    m_log.push_back(s);
  }

  // Counters for `up --stats` (any thread).
  uint64_t compared() const { return m_compared.load(std::memory_order_relaxed); }
  // Exits where compiled code stopped before a device access (the interpreter made it).
  uint64_t device_exits() const { return m_device_exits.load(std::memory_order_relaxed); }
  // The first divergence's report; empty while there is none.
  const std::string& failure() const { return m_failure; }

  // Test hook: called on the compiled result of every region (its state and its stores) before it
  // is compared, as if the compiled code had computed that (a deliberately wrong tier).
  // entry_pc: where the region began.
  void (*corrupt_for_test)(CpuState* compiled, std::vector<Store>* stores, uint64_t entry_pc) = nullptr;

 private:
  friend class Hart;
  // stop_devices: the compiled run (device accesses are refused, m_device_stop says one was).
  void begin(bool stop_devices) {
    m_log.clear();
    m_stop_devices = stop_devices;
    m_device_stop = false;
    m_recording = true;
  }
  void finish() {
    if (!m_log.empty() && m_log.back().pending) {
      Store& s = m_log.back();
      std::memcpy(s.after, s.host, s.size);
      s.pending = false;
    }
  }
  void end() {
    finish();
    m_recording = false;
    m_stop_devices = false;
  }
  // Puts back what the logged stores overwrote, newest first.
  static void undo(const std::vector<Store>& log) {
    for (auto it = log.rbegin(); it != log.rend(); ++it) std::memcpy(it->host, it->before, it->size);
  }

  bool m_recording = false;
  bool m_stop_devices = false, m_device_stop = false;
  std::vector<Store> m_log;
  std::atomic<uint64_t> m_compared{0}, m_device_exits{0};
  std::string m_failure;
};

// With several harts, lockstep runs them one chunk at a time, in turn (a fair ticket lock the
// Platform holds): undoing a region's stores and replaying it must not interleave with another
// hart's stores to the same memory, or the comparison (and the other hart's data) would be wrong.
class LockstepTurns {
 public:
  void acquire() {
    std::unique_lock<std::mutex> lock(m_mutex);
    const uint64_t ticket = m_next++;
    m_cv.wait(lock, [&] { return m_serving == ticket; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      ++m_serving;
    }
    m_cv.notify_all();
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  uint64_t m_next = 0, m_serving = 0;
};

}  // namespace jit
