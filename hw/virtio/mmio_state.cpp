// virtio-mmio's snapshot state (see hw/device_state.h): interrupt status and feature selectors,
// then the TransportCore's (transport_state.cpp).
#include "hw/virtio/mmio.h"

namespace hw::virtio {

void MmioTransport::save_state(hw::StateWriter& out) {
  out.u32(m_isr.load());
  {
    std::lock_guard lock(m_core.lock());
    out.u32(m_device_features_select);
    out.u32(m_driver_features_select);
  }
  m_core.save_state(out);
}

base::ErrorOr<void> MmioTransport::load_state(hw::StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, m_name));
  uint32_t isr = in.u32() & (kIsrUsed | kIsrConfig);
  {
    std::lock_guard lock(m_core.lock());
    m_device_features_select = in.u32();
    m_driver_features_select = in.u32();
  }
  if (auto loaded = m_core.load_state(in); !loaded.ok())
    return base::fail(loaded.error().with_context(m_name));
  std::lock_guard lock(m_irq_lock);
  m_isr.store(isr);
  set_level(isr != 0);
  return {};
}

}  // namespace hw::virtio
