// A part of the machine whose state lives in another part: a device on a controller's bus (a
// scsi-hd's state is virtio-scsi's) or a pci-bridge (its config space is saved by the PCI host).
// The machine lists it under its graph id so a snapshot knows nothing of it is left out; it saves
// nothing itself and is never mapped (its owner reaches it).
#pragma once

#include <algorithm>
#include <string>

#include "hw/device.h"
#include "hw/device_state.h"

namespace hw {

class StateHeldElsewhere final : public Device, public DeviceState {
 public:
  explicit StateHeldElsewhere(std::string id) : m_id(std::move(id)) {}
  std::string_view name() const override { return m_id; }
  void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xff); }
  void write(uint64_t, std::span<const uint8_t>) override {}
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter&) override {}
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, m_id));
    return in.finish(m_id);
  }

 private:
  std::string m_id;
};

}  // namespace hw
