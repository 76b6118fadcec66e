#include "hw/riscv/htif.h"

#include <cstdio>
#include <cstring>

namespace hw::riscv {
namespace {
constexpr uint64_t kSysWrite = 64;
constexpr uint64_t kPayloadMask = (uint64_t{1} << 48) - 1;
}  // namespace

Htif::Htif(uint64_t base, uint64_t size, uint64_t tohost_offset, uint64_t fromhost_offset,
           PowerController& power, std::shared_ptr<backends::CharBackend> console,
           const base::GuestMemory* memory)
    : m_base(base),
      m_tohost(tohost_offset),
      m_fromhost(fromhost_offset),
      m_power(power),
      m_console(std::move(console)),
      m_memory(memory),
      m_bytes(size, 0) {}

bool Htif::load(uint64_t offset, std::span<const uint8_t> bytes) {
  std::lock_guard guard(m_lock);
  if (offset > m_bytes.size() || bytes.size() > m_bytes.size() - offset) return false;
  std::memcpy(m_bytes.data() + offset, bytes.data(), bytes.size());
  return true;
}

void Htif::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard guard(m_lock);
  if (offset > m_bytes.size() || data.size() > m_bytes.size() - offset) {
    for (auto& b : data) b = 0;
    return;
  }
  std::memcpy(data.data(), m_bytes.data() + offset, data.size());
}

void Htif::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  if (offset > m_bytes.size() || data.size() > m_bytes.size() - offset) return;
  std::memcpy(m_bytes.data() + offset, data.data(), data.size());
  // rv64 programs store tohost with one sd; rv32 ones write the low word, then the high word, and
  // the command is complete with the high word (as Spike and QEMU treat it).
  bool touches_command = (offset <= m_tohost && offset + data.size() >= m_tohost + 8) ||
                         (offset == m_tohost + 4 && data.size() == 4);
  if (!touches_command) return;
  uint64_t command = word_locked(m_tohost);
  if (command != 0) handle_locked(command);
}

uint64_t Htif::word_locked(uint64_t offset) const {
  uint64_t value = 0;
  std::memcpy(&value, m_bytes.data() + offset, 8);
  return value;
}

void Htif::set_word_locked(uint64_t offset, uint64_t value) {
  std::memcpy(m_bytes.data() + offset, &value, 8);
}

void Htif::handle_locked(uint64_t command) {
  uint64_t device = command >> 56;
  uint64_t cmd = (command >> 48) & 0xff;
  uint64_t payload = command & kPayloadMask;
  set_word_locked(m_tohost, 0);
  if (device == 0 && cmd == 0) {
    if (payload & 1) {
      m_power.power_off(static_cast<int>(payload >> 1));
      return;
    }
    syscall_locked(payload);
    set_word_locked(m_fromhost, 1);
    return;
  }
  if (device == 1 && cmd == 1) {
    uint8_t ch = static_cast<uint8_t>(payload);
    if (m_console) m_console->write({&ch, 1});
    set_word_locked(m_fromhost, (uint64_t{1} << 56) | (uint64_t{1} << 48));
    return;
  }
  if (!m_warned) {
    std::fprintf(stderr, "vmlaunch: htif: unsupported command 0x%016llx ignored\n",
                 (unsigned long long)command);
    m_warned = true;
  }
}

int64_t Htif::syscall_locked(uint64_t args_address) {
  // riscv-pk's magic_mem: 8 words, [0] = number (result on return), [1..] = arguments.
  uint64_t args[4] = {};
  auto read_arg = [&](int i) -> bool {
    uint64_t gpa = args_address + 8 * i;
    if (gpa >= m_base && gpa + 8 <= m_base + m_bytes.size()) {
      args[i] = word_locked(gpa - m_base);
      return true;
    }
    if (!m_memory) return false;
    auto value = m_memory->read_le<uint64_t>(gpa);
    if (!value) return false;
    args[i] = *value;
    return true;
  };
  int64_t result = -38;  // -ENOSYS
  if (read_arg(0) && read_arg(1) && read_arg(2) && read_arg(3) && args[0] == kSysWrite &&
      (args[1] == 1 || args[1] == 2) && m_memory) {
    auto bytes = m_memory->slice(args[2], args[3]);
    if (bytes) {
      if (m_console) m_console->write(*bytes);
      result = static_cast<int64_t>(args[3]);
    } else {
      result = -14;  // -EFAULT
    }
  } else if (!m_warned) {
    std::fprintf(stderr, "vmlaunch: htif: unsupported syscall %llu\n", (unsigned long long)args[0]);
    m_warned = true;
  }
  if (m_memory) (void)m_memory->write_le<uint64_t>(args_address, static_cast<uint64_t>(result));
  return result;
}

}  // namespace hw::riscv
