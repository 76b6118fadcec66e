// QEMU's firmware configuration interface (fw_cfg) on I/O ports, as SeaBIOS reads it on x86: a 16-bit
// selector at port 0x510 picks an item, and each byte read from port 0x511 gives the item's next byte
// (zero past its end, or when no item has that key). Items are the fixed keys SeaBIOS asks for
// (signature "QEMU", interface id, CPU count, ...) and named files listed in the file directory (key
// 0x19: a big-endian count, then {size, key, reserved, name[56]} per file, as QEMU's
// hw/nvram/fw_cfg.c writes it). Only the traditional byte interface: the id says "no DMA", so
// SeaBIOS never writes a DMA address. Guest writes to the data port are ignored (read-only items).
// The machine builder fills the items before any vCPU runs; afterwards only the cursor changes.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::x86 {

class FwCfg final : public Device, public DeviceState {
 public:
  static constexpr uint16_t kPort = 0x510;  // selector (16-bit writes); data at kPort + 1
  static constexpr uint16_t kSize = 2;
  // Keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h and hw/i386/fw_cfg.h).
  static constexpr uint16_t kSignature = 0x00, kId = 0x01, kRamSize = 0x03, kNoGraphic = 0x04, kNbCpus = 0x05,
                            kBootMenu = 0x0e, kMaxCpus = 0x0f, kFileDir = 0x19, kFileFirst = 0x20;
  static constexpr size_t kNameSize = 56;      // a file name with its NUL
  static constexpr size_t kMaxFiles = 0x1000;  // keys 0x20 up to the arch-local range

  FwCfg();
  std::string_view name() const override { return "fw_cfg"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // A fixed-key item (replaces one with the same key). Keys of files are refused.
  base::ErrorOr<void> add_item(uint16_t key, std::vector<uint8_t> bytes);
  // A named file, listed in the directory in name order as QEMU sorts it; returns its key. Refused:
  // an empty name, one of kNameSize bytes or more, a duplicate, more than kMaxFiles files.
  base::ErrorOr<uint16_t> add_file(const std::string& name, std::vector<uint8_t> bytes);

  // Snapshot: the selector and the read position; the items come from the config, rebuilt alike.
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override {
    std::lock_guard guard(m_lock);
    out.u16(m_selector);
    out.u64(m_cursor);
  }
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, name()));
    std::lock_guard guard(m_lock);
    m_selector = in.u16();
    m_cursor = in.u64();  // reads past an item's end give 0 (read()), so any value is safe
    return in.finish(std::string(name()));
  }

  // Little-endian helpers for the fixed items.
  static std::vector<uint8_t> le16(uint16_t v) { return {uint8_t(v), uint8_t(v >> 8)}; }
  static std::vector<uint8_t> le32(uint32_t v);
  static std::vector<uint8_t> le64(uint64_t v);

 private:
  void rebuild_directory();

  std::mutex m_lock;
  std::map<uint16_t, std::vector<uint8_t>> m_items;
  std::map<std::string, uint16_t> m_files;  // name -> key
  uint16_t m_selector = kSignature;
  size_t m_cursor = 0;  // next byte of the selected item
};

}  // namespace hw::x86
