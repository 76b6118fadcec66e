// PciFunction: one PCI function's configuration space (type 0 or, for bridges, type 1 header),
// its BARs and capability list. Device models (virtio-pci, the host bridge, pci-bridge) derive from
// it, define their BARs and capabilities once at construction, and override the hooks for
// registers with side effects (MSI-X control, virtio's notify config...).
//
// Config writes follow a per-byte write mask (read-only bits keep their value) plus write-1-to-clear
// bits of the status register, which gives BAR sizing (write ~0, read back ~(size-1) | type) for free.
// When the guest moves a BAR or flips the command register's decode bits, the BAR's device is
// remapped in the host's address spaces (AddressSpace is safe against concurrent lookups).
// Thread safety: one mutex per function guards its config space.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hw/address_space.h"
#include "hw/device.h"
#include "hw/device_state.h"

namespace hw::pci {

// Standard header offsets.
inline constexpr uint16_t kVendorId = 0x00, kDeviceId = 0x02, kCommand = 0x04, kStatus = 0x06;
inline constexpr uint16_t kRevision = 0x08, kClassProg = 0x09, kHeaderType = 0x0e, kBar0 = 0x10;
inline constexpr uint16_t kSubsystemVendorId = 0x2c, kSubsystemId = 0x2e, kCapabilityPointer = 0x34;
inline constexpr uint16_t kExpansionRom = 0x30;  // endpoints; bit 0 enables decoding
inline constexpr uint16_t kInterruptLine = 0x3c, kInterruptPin = 0x3d;
inline constexpr uint16_t kCommandIo = 1, kCommandMemory = 2, kCommandBusMaster = 4,
                          kCommandIntxDisable = 0x400;
inline constexpr uint16_t kStatusInterrupt = 0x08, kStatusCapabilities = 0x10;

struct Bdf {
  uint8_t bus = 0, device = 0, function = 0;
  bool operator==(const Bdf&) const = default;
  std::string to_string() const;  // "00:03.1" as lspci prints it
};

struct FunctionIds {
  uint16_t vendor = 0, device = 0;
  uint32_t class_code = 0;  // base << 16 | sub << 8 | prog-if
  uint8_t revision = 0;
  uint16_t subsystem_vendor = 0, subsystem = 0;
};

enum class BarKind { Io, Memory32, Memory64 };

// Where a function's BARs and interrupts go; set when the function is plugged into a host.
struct PciResources {
  AddressSpace* mmio = nullptr;
  AddressSpace* pio = nullptr;
  // Base of the I/O window in MMIO space for hosts without port I/O (ECAM on riscv); nullopt: ports.
  std::optional<uint64_t> io_in_mmio;
};

class PciFunction {
 public:
  static constexpr size_t kConfigSize = 4096;  // PCIe extended space; CF8/CFC reaches the first 256

  PciFunction(std::string name, const FunctionIds& ids, bool bridge = false);
  virtual ~PciFunction();
  PciFunction(const PciFunction&) = delete;
  PciFunction& operator=(const PciFunction&) = delete;

  const std::string& name() const { return m_name; }
  bool is_bridge() const { return m_bridge; }

  // Config access with size 1, 2 or 4 at any offset below kConfigSize; out-of-range or odd-sized
  // accesses read as all-ones and ignore writes (hostile guests).
  uint32_t config_read(uint16_t offset, unsigned size);
  void config_write(uint16_t offset, unsigned size, uint32_t value);

  // BAR `index` (0..5; a 64-bit BAR takes two) of `size` bytes (a power of two, >= 16 for memory,
  // >= 4 for I/O) decoded by `device`. Call before plugging.
  void define_bar(unsigned index, uint64_t size, BarKind kind, std::shared_ptr<Device> device,
                  bool prefetchable = false);
  // An expansion ROM of `size` bytes (a power of two, at least 2 KiB), read through `device` where
  // the guest places it while it enables the ROM and memory decoding. Endpoints only.
  void define_rom(uint64_t size, std::shared_ptr<Device> device);
  struct Bar {
    uint64_t size = 0;
    BarKind kind = BarKind::Memory32;
    bool prefetchable = false;
    std::shared_ptr<Device> device;
    std::optional<uint64_t> mapped;  // where it is mapped now
  };
  const std::array<Bar, 6>& bars() const { return m_bars; }
  std::optional<uint64_t> bar_address(unsigned index);  // as programmed (whether or not decoding)

  // Appends a capability (id, then `body` after the id/next bytes) to the list; returns its offset.
  // `writable` marks body bytes (same length as body, may be empty) the guest may write.
  uint8_t add_capability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable = {});

  void set_interrupt(uint8_t pin, uint8_t line);  // pin 1..4 = INTA..INTD, 0 = none
  // INTx: the function asserts its pin; delivered unless the command register disables INTx.
  void set_intx(bool level);
  void set_irq_line(std::shared_ptr<IrqLine> line) { m_irq = std::move(line); }

  // Plugging: the host gives address spaces; mappings follow the registers from then on.
  void attach(const PciResources& resources);
  void detach();  // unmaps every BAR (explicit only: destruction leaves the mappings to the spaces)

  // Direct register access for the host's resource assignment and for tests.
  void program_bar(unsigned index, uint64_t address);
  void set_command(uint16_t bits);

  // Snapshot (pci_state.cpp): the config space as the guest left it. Loading takes only the bits the
  // guest can change (writable and write-1-to-clear ones; the rest is the model's), then maps the
  // BARs where the registers say and re-drives INTx.
  void save_config(StateWriter& out);
  base::ErrorOr<void> load_config(StateReader& in);

 protected:
  // Hooks for registers with side effects, called with the function's lock released. `offset` and
  // `size` are the guest's access.
  virtual void config_written(uint16_t offset, unsigned size) {}
  // BAR `index` now decodes at `address` (nullopt: nowhere): it was mapped, moved or unmapped in the
  // bus. Called with the function's lock held: an override must not call back into the function.
  virtual void bar_moved(unsigned index, std::optional<uint64_t> address) {
    (void)index;
    (void)address;
  }
  // Lets a derived class override what a read returns (e.g. live status bits); default: stored bytes.
  virtual std::optional<uint32_t> config_read_override(uint16_t offset, unsigned size) {
    return std::nullopt;
  }

  // Raw register setup for derived classes (no masks applied).
  void set_config(uint16_t offset, std::span<const uint8_t> bytes);
  void set_config_u8(uint16_t offset, uint8_t value);
  void set_config_u16(uint16_t offset, uint16_t value);
  void set_config_u32(uint16_t offset, uint32_t value);
  void set_writable(uint16_t offset, std::span<const uint8_t> mask);
  uint32_t read_raw(uint16_t offset, unsigned size);

 private:
  void update_mappings();
  void update_intx_locked();

  const std::string m_name;
  const bool m_bridge;
  std::mutex m_lock;
  std::array<uint8_t, kConfigSize> m_config{};
  std::array<uint8_t, kConfigSize> m_wmask{};
  std::array<uint8_t, kConfigSize> m_w1c{};
  std::array<Bar, 6> m_bars{};
  uint64_t m_rom_size = 0;
  std::shared_ptr<Device> m_rom;
  std::optional<uint64_t> m_rom_mapped;
  uint8_t m_next_capability = 0x40;
  uint8_t m_last_capability = 0;
  PciResources m_resources;
  bool m_attached = false;
  bool m_intx_level = false;
  std::shared_ptr<IrqLine> m_irq;
  bool m_warned_map = false;
};

}  // namespace hw::pci
