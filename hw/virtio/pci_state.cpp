// virtio-pci's snapshot state (see hw/device_state.h): what the function keeps beyond its config
// space (saved by the PCI host) and the TransportCore (transport_state.cpp).
#include "hw/virtio/pci.h"

namespace hw::virtio {

void PciTransport::save_state(hw::StateWriter& out) {
  {
    std::lock_guard lock(m_isr_lock);
    out.u8(m_isr);
  }
  {
    std::lock_guard lock(m_core.lock());
    out.u32(m_device_features_select);
    out.u32(m_driver_features_select);
  }
  const unsigned queues = m_core.device().num_queues();
  out.u32(queues);
  for (unsigned q = 0; q <= queues; ++q) out.u16(m_queue_vector[q].load());
  out.u16(m_config_vector.load());
  {
    std::lock_guard lock(m_msix_lock);
    out.boolean(m_msix_enabled);
    out.boolean(m_msix_function_masked);
    out.bytes(m_msix_table);
    out.u64s(m_msix_pending);
  }
  m_core.save_state(out);
}

base::ErrorOr<void> PciTransport::load_state(hw::StateReader& in) {
  const uint8_t isr = in.u8() & 3;
  const uint32_t device_select = in.u32(), driver_select = in.u32();
  const unsigned queues = m_core.device().num_queues();
  if (in.u32() != queues) in.fail();
  std::vector<uint16_t> vectors(queues + 1);
  for (uint16_t& v : vectors) v = in.u16();
  const uint16_t config_vector = in.u16();
  const bool msix_enabled = in.boolean(), function_masked = in.boolean();
  std::vector<uint8_t> table = in.bytes(m_msix_table.size());
  std::vector<uint64_t> pending(m_msix_pending.size());
  in.u64s(pending, pending.size());
  if (table.size() != m_msix_table.size() || (msix_enabled && !m_msix_vectors)) in.fail();
  if (!in.ok()) return in.finish(name());
  // Vector numbers are guest input: anything we did not offer is NO_VECTOR, as a register write.
  auto vector = [&](uint16_t v) { return v < m_msix_vectors ? v : kNoVector; };
  {
    std::lock_guard lock(m_core.lock());
    m_device_features_select = device_select;
    m_driver_features_select = driver_select;
  }
  for (unsigned q = 0; q <= queues; ++q) m_queue_vector[q].store(vector(vectors[q]));
  m_config_vector.store(vector(config_vector));
  {
    std::lock_guard lock(m_msix_lock);
    m_msix_enabled = msix_enabled;
    m_msix_function_masked = function_masked;
    m_msix_table = std::move(table);
    // Pending bits only for vectors that exist.
    for (size_t i = 0; i < pending.size(); ++i) {
      const unsigned valid = std::min<unsigned>(64, m_msix_vectors - 64 * static_cast<unsigned>(i));
      m_msix_pending[i] = pending[i] & (valid == 64 ? ~uint64_t{0} : (uint64_t{1} << valid) - 1);
    }
  }
  if (auto loaded = m_core.load_state(in); !loaded.ok())
    return base::fail(loaded.error().with_context(name()));
  std::lock_guard lock(m_isr_lock);
  m_isr = isr;
  set_intx(isr != 0 && !msix_enabled);
  return {};
}

}  // namespace hw::virtio
