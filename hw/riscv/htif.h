// Htif: Spike's host-target interface, as bare-metal test programs (riscv-tests, our ISA tests) use
// it. The program's ELF names two 64-bit words, `tohost` and `fromhost`; the machine carves the
// page(s) holding them out of RAM and maps this device there, because harts access RAM directly and
// would never tell us about a store to tohost. Everything else in the window behaves as RAM.
//
// tohost = device << 56 | command << 48 | payload:
//   device 0, command 0, payload odd   -> exit with status payload >> 1 (1 = pass -> exit 0)
//   device 0, command 0, payload even  -> a pointer to riscv-pk syscall args; SYS_write (64) to fd
//                                         1/2 goes to the console, the result to args[0], fromhost=1
//   device 1, command 1                -> putchar(payload & 0xff), acknowledged in fromhost
// tohost reads back as 0 once handled (the program polls it), as Spike does.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/chardev.h"
#include "base/guest_memory.h"
#include "hw/device.h"
#include "hw/device_state.h"
#include "hw/machine.h"

namespace hw::riscv {

class Htif final : public Device, public DeviceState {
 public:
  // The window [base, base+size) must contain both words (offsets relative to base). `console` may be
  // null (output dropped); `memory` is used for syscall arguments and may be null (syscalls fail).
  Htif(uint64_t base, uint64_t size, uint64_t tohost_offset, uint64_t fromhost_offset, PowerController& power,
       std::shared_ptr<backends::CharBackend> console, const base::GuestMemory* memory);

  std::string_view name() const override { return "htif"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Loader access to the RAM this window replaced (ELF segments may cover it).
  bool load(uint64_t offset, std::span<const uint8_t> bytes);

  // Snapshot: the window's bytes (tohost, fromhost and the RAM around them it replaced).
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter& out) override {
    std::lock_guard guard(m_lock);
    out.bytes(m_bytes);
  }
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, "htif"));
    std::vector<uint8_t> bytes = in.bytes(m_bytes.size());
    if (bytes.size() != m_bytes.size()) in.fail();
    TRY(in.finish("htif"));
    std::lock_guard guard(m_lock);
    m_bytes = std::move(bytes);
    return {};
  }

 private:
  uint64_t word_locked(uint64_t offset) const;
  void set_word_locked(uint64_t offset, uint64_t value);
  void handle_locked(uint64_t command);
  int64_t syscall_locked(uint64_t args_address);

  const uint64_t m_base;
  const uint64_t m_tohost;
  const uint64_t m_fromhost;
  PowerController& m_power;
  const std::shared_ptr<backends::CharBackend> m_console;
  const base::GuestMemory* m_memory;

  std::mutex m_lock;
  std::vector<uint8_t> m_bytes;
  bool m_warned = false;
};

}  // namespace hw::riscv
