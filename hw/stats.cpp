#include "hw/stats.h"

namespace hw {

thread_local VcpuCounters* t_vcpu_counters = nullptr;

void StatsRegistry::add_device(std::string id, std::function<Counters()> source) {
  std::lock_guard guard(m_lock);
  m_devices.emplace_back(std::move(id), std::move(source));
}

VcpuCounters& StatsRegistry::vcpu(unsigned index) {
  std::lock_guard guard(m_lock);
  while (m_vcpus.size() <= index) m_vcpus.emplace_back();
  return m_vcpus[index];
}

StatsRegistry::Snapshot StatsRegistry::snapshot() const {
  std::lock_guard guard(m_lock);
  Snapshot out;
  for (const VcpuCounters& c : m_vcpus)
    out.vcpus.push_back({{"mmio_reads", c.mmio_reads.load()},
                         {"mmio_writes", c.mmio_writes.load()},
                         {"pio_reads", c.pio_reads.load()},
                         {"pio_writes", c.pio_writes.load()},
                         {"runs", c.runs.load()},
                         {"interrupted", c.interrupted.load()}});
  for (const auto& [id, source] : m_devices) out.devices.emplace_back(id, source());
  return out;
}

}  // namespace hw
