// Counters a running machine keeps for `query-stats`: per vCPU (device accesses it made: for kvm
// each is an MMIO/PIO exit, for jit an access that left RAM; and why its run() returned) and per
// device (whatever the model counts: virtqueue kicks and interrupts, bad requests, I/O errors...).
// The launcher owns one registry per machine build and hands it over in MachineContext; device
// models add their sources through DeviceEnv; run_vcpus gives each vCPU thread its counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hw {

struct VcpuCounters {
  std::atomic<uint64_t> mmio_reads{0}, mmio_writes{0}, pio_reads{0}, pio_writes{0};
  std::atomic<uint64_t> runs{0};         // returns from Vcpu::run()
  std::atomic<uint64_t> interrupted{0};  // of which kicks (pause, stop, debug)
};

// The calling vCPU thread's counters (null on other threads): the Bus counts accesses through it.
extern thread_local VcpuCounters* t_vcpu_counters;

class StatsRegistry {
 public:
  using Counters = std::vector<std::pair<std::string, uint64_t>>;
  // A device's counters, read when someone asks. The source must stay safe to call for the
  // registry's life (capture weak pointers to what it reads).
  void add_device(std::string id, std::function<Counters()> source);
  // The counters of vCPU `index`, made on first use; the reference stays valid.
  VcpuCounters& vcpu(unsigned index);

  struct Snapshot {
    std::vector<Counters> vcpus;                            // by index
    std::vector<std::pair<std::string, Counters>> devices;  // in registration order
  };
  Snapshot snapshot() const;

 private:
  mutable std::mutex m_lock;
  std::deque<VcpuCounters> m_vcpus;
  std::vector<std::pair<std::string, std::function<Counters()>>> m_devices;
};

}  // namespace hw
