// Snapshot state of the PCI functions and hosts (see hw/device_state.h). Functions with model state
// of their own beyond config space (virtio-pci) are separate parts of the machine.
#include <map>

#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_function.h"

namespace hw::pci {

void PciFunction::save_config(StateWriter& out) {
  std::lock_guard guard(m_lock);
  out.bytes(m_config);
}

base::ErrorOr<void> PciFunction::load_config(StateReader& in) {
  std::vector<uint8_t> saved = in.bytes(kConfigSize);
  if (saved.size() != kConfigSize) in.fail();
  if (!in.ok()) return base::fail(base::Error(m_name + ": saved config space is short"));
  {
    std::lock_guard guard(m_lock);
    for (size_t i = 0; i < kConfigSize; ++i) {
      const uint8_t guest = m_wmask[i] | m_w1c[i];
      m_config[i] = static_cast<uint8_t>((m_config[i] & ~guest) | (saved[i] & guest));
    }
    m_intx_level = false;  // the model drives its pin again; the new machine's line starts low
    update_intx_locked();
  }
  update_mappings();
  return {};
}

void PciHost::collect_all(PciBus& bus, std::vector<PciFunction*>& out) {
  for (auto [d, f] : bus.occupied()) {
    PciFunction* fn = bus.function(d, f);
    out.push_back(fn);
    if (fn->is_bridge()) collect_all(static_cast<PciBridge*>(fn)->secondary(), out);
  }
}

std::vector<PciFunction*> PciHost::all_functions() {
  std::vector<PciFunction*> out;
  collect_all(m_root, out);
  return out;
}

void PciHost::save_state(StateWriter& out) {
  auto all = all_functions();
  out.u32(static_cast<uint32_t>(all.size()));
  for (PciFunction* fn : all) {
    out.bytes({reinterpret_cast<const uint8_t*>(fn->name().data()), fn->name().size()});
    fn->save_config(out);
  }
}

base::ErrorOr<void> PciHost::load_state(StateReader& in) {
  std::map<std::string, PciFunction*> by_name;
  for (PciFunction* fn : all_functions()) by_name[fn->name()] = fn;
  const uint32_t count = in.u32();
  if (!in.ok() || count != by_name.size())
    return base::fail(base::Error("the snapshot has " + std::to_string(count) +
                                  " PCI functions, this machine " + std::to_string(by_name.size())));
  for (uint32_t i = 0; i < count; ++i) {
    std::vector<uint8_t> name = in.bytes(256);
    auto it = by_name.find(std::string(name.begin(), name.end()));
    if (!in.ok() || it == by_name.end())
      return base::fail(base::Error("the snapshot has PCI function \"" +
                                    std::string(name.begin(), name.end()) + "\" this machine does not"));
    TRY(it->second->load_config(in));
  }
  return {};
}

void Cf8ConfigDevice::save_state(StateWriter& out) {
  {
    std::lock_guard guard(m_lock);
    out.u32(m_address);
  }
  m_host->save_state(out);
}

base::ErrorOr<void> Cf8ConfigDevice::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, "pci-cf8"));
  const uint32_t address = in.u32();
  TRY(m_host->load_state(in));
  TRY(in.finish("pci-cf8"));
  std::lock_guard guard(m_lock);
  m_address = address;
  return {};
}

}  // namespace hw::pci
