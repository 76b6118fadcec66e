#include "hw/riscv/sifive_gpio.h"

#include <algorithm>

namespace hw::riscv {

SifiveGpio::SifiveGpio(std::vector<std::shared_ptr<IrqLine>> pin_irqs) : m_irqs(std::move(pin_irqs)) {
  if (m_irqs.size() > 32) m_irqs.resize(32);
  m_mask = m_irqs.size() >= 32 ? 0xffffffffu : (1u << m_irqs.size()) - 1;
}

void SifiveGpio::set_pin(unsigned pin, bool level) {
  if (pin >= m_irqs.size()) return;
  std::lock_guard guard(m_lock);
  uint32_t bit = 1u << pin;
  m_external = level ? m_external | bit : m_external & ~bit;
  update_locked();
}

// The pin level: driven by the guest where it enables the output, else by the host. Edges latch into
// rise_ip/fall_ip, levels into high_ip/low_ip; then each pin's line follows its enabled pending bits.
void SifiveGpio::update_locked() {
  uint32_t driven = ((m_output_val ^ m_out_xor) & m_output_en) | (m_external & ~m_output_en);
  uint32_t value = driven & m_mask;
  uint32_t rose = value & ~m_value, fell = ~value & m_value & m_mask;
  m_value = value;
  m_rise_ip |= rose;
  m_fall_ip |= fell;
  m_high_ip |= value;
  m_low_ip |= ~value & m_mask;
  uint32_t pending =
      ((m_rise_ip & m_rise_ie) | (m_fall_ip & m_fall_ie) | (m_high_ip & m_high_ie) | (m_low_ip & m_low_ie)) &
      m_mask;
  for (unsigned pin = 0; pin < m_irqs.size(); ++pin) {
    uint32_t bit = 1u << pin;
    if ((pending & bit) == (m_raised & bit)) continue;
    m_raised ^= bit;
    if (m_irqs[pin]) m_irqs[pin]->set_level((pending & bit) != 0);
  }
}

uint32_t SifiveGpio::read_locked(uint32_t reg) {
  switch (reg) {
    case kInputVal:
      return m_value & m_input_en;
    case kInputEn:
      return m_input_en;
    case kOutputEn:
      return m_output_en;
    case kOutputVal:
      return m_output_val;
    case kPue:
      return m_pue;
    case kDs:
      return m_ds;
    case kRiseIe:
      return m_rise_ie;
    case kRiseIp:
      return m_rise_ip;
    case kFallIe:
      return m_fall_ie;
    case kFallIp:
      return m_fall_ip;
    case kHighIe:
      return m_high_ie;
    case kHighIp:
      return m_high_ip;
    case kLowIe:
      return m_low_ie;
    case kLowIp:
      return m_low_ip;
    case kIofEn:
      return m_iof_en;
    case kIofSel:
      return m_iof_sel;
    case kOutXor:
      return m_out_xor;
    default:
      return 0;
  }
}

void SifiveGpio::write_locked(uint32_t reg, uint32_t value) {
  value &= m_mask;
  switch (reg) {
    case kInputEn:
      m_input_en = value;
      break;
    case kOutputEn:
      m_output_en = value;
      break;
    case kOutputVal:
      m_output_val = value;
      break;
    case kPue:
      m_pue = value;
      break;
    case kDs:
      m_ds = value;
      break;
    case kRiseIe:
      m_rise_ie = value;
      break;
    case kRiseIp:
      m_rise_ip &= ~value;
      break;
    case kFallIe:
      m_fall_ie = value;
      break;
    case kFallIp:
      m_fall_ip &= ~value;
      break;
    case kHighIe:
      m_high_ie = value;
      break;
    case kHighIp:
      m_high_ip &= ~value;
      break;
    case kLowIe:
      m_low_ie = value;
      break;
    case kLowIp:
      m_low_ip &= ~value;
      break;
    case kIofEn:
      m_iof_en = value;
      break;
    case kIofSel:
      m_iof_sel = value;
      break;
    case kOutXor:
      m_out_xor = value;
      break;
    default:
      return;  // input_val is read-only; unknown offsets ignore writes
  }
  update_locked();
}

// Registers are 32 bits wide; narrower or unaligned accesses see (or change) the bytes they cover.
void SifiveGpio::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard guard(m_lock);
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t at = offset + i;
    data[i] = at < kSize
                  ? static_cast<uint8_t>(read_locked(static_cast<uint32_t>(at & ~3ull)) >> (8 * (at & 3)))
                  : 0;
  }
}

void SifiveGpio::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  size_t i = 0;
  while (i < data.size()) {
    uint64_t at = offset + i;
    if (at >= kSize) return;
    uint32_t reg = static_cast<uint32_t>(at & ~3ull);
    // Merge the bytes of this register the access covers into its current value. Write-1-to-clear
    // registers take only the bytes written (reading back the pending bits would clear them all).
    bool clear_on_write = reg == kRiseIp || reg == kFallIp || reg == kHighIp || reg == kLowIp;
    uint32_t value = clear_on_write ? 0 : read_locked(reg);
    for (; i < data.size() && ((offset + i) & ~3ull) == reg; ++i) {
      unsigned shift = 8 * ((offset + i) & 3);
      value = (value & ~(0xffu << shift)) | (uint32_t{data[i]} << shift);
    }
    write_locked(reg, value);
  }
}

}  // namespace hw::riscv
