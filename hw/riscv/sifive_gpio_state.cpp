// The SiFive GPIO's snapshot state (see hw/device_state.h). The host-driven pin levels (the power
// button) are not saved: the process holding the button down is gone, so a restored machine sees
// the pins released (a falling edge, if one was held) and its own host drives them from then on.
#include "hw/riscv/sifive_gpio.h"

namespace hw::riscv {

void SifiveGpio::save_state(StateWriter& out) {
  std::lock_guard guard(m_lock);
  for (uint32_t v :
       {m_input_en, m_output_en, m_output_val, m_pue, m_ds, m_rise_ie, m_rise_ip, m_fall_ie, m_fall_ip,
        m_high_ie, m_high_ip, m_low_ie, m_low_ip, m_iof_en, m_iof_sel, m_out_xor, m_value})
    out.u32(v);
}

base::ErrorOr<void> SifiveGpio::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, "sifive-gpio"));
  uint32_t v[17];
  for (uint32_t& field : v) field = in.u32();
  TRY(in.finish("sifive-gpio"));
  std::lock_guard guard(m_lock);
  uint32_t* fields[] = {&m_input_en, &m_output_en, &m_output_val, &m_pue,     &m_ds,      &m_rise_ie,
                        &m_rise_ip,  &m_fall_ie,   &m_fall_ip,    &m_high_ie, &m_high_ip, &m_low_ie,
                        &m_low_ip,   &m_iof_en,    &m_iof_sel,    &m_out_xor, &m_value};
  for (size_t i = 0; i < 17; ++i) *fields[i] = v[i] & m_mask;
  m_external = 0;
  m_raised = 0;  // the new machine's lines start low; update_locked raises what is pending
  update_locked();
  return {};
}

}  // namespace hw::riscv
