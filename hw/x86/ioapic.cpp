#include "hw/x86/ioapic.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace hw::x86 {
namespace {

constexpr uint64_t kIoregsel = 0x00, kIowin = 0x10, kEoi = 0x40;
constexpr uint8_t kRegId = 0x00, kRegVersion = 0x01, kRegArbitration = 0x02, kRegTable = 0x10;
constexpr uint64_t kMsiBase = 0xfee00000;
constexpr unsigned kExtInt = 7;

}  // namespace

void Ioapic::attach(accel::Vm* vm) {
  std::lock_guard guard(m_lock);
  m_vm = vm;
  // A fresh accelerator starts without IOAPIC routes (KVM's split irqchip: an empty routing table),
  // so nothing is sent until a level-triggered entry exists.
  m_routes = vm ? std::optional<std::vector<accel::Vm::IoapicRoute>>(std::in_place) : std::nullopt;
  if (vm) {
    update_routes();
    service();
  }
}

void Ioapic::save_state(StateWriter& out) {
  std::lock_guard guard(m_lock);
  out.u8(m_id);
  out.u8(m_select);
  for (uint64_t entry : m_entries) out.u64(entry);
  out.u32(m_level);
  out.u32(m_edge_pending);
}

base::ErrorOr<void> Ioapic::load_state(StateReader& in, uint32_t version) {
  TRY(check_version(version, 1, m_name));
  std::lock_guard guard(m_lock);
  m_id = in.u8();
  m_select = in.u8();
  for (uint64_t& entry : m_entries) entry = in.u64();
  const uint32_t pins = (1u << kPins) - 1;
  m_level = in.u32() & pins;
  m_edge_pending = in.u32() & pins;
  TRY(in.finish(m_name));
  if (m_vm && m_routes) {
    m_routes->clear();                   // the fresh accelerator has none: send the loaded ones
    m_routes->push_back({kPins, 0, 0});  // never equal to a real set, so update_routes sends
    update_routes();
    service();
  }
  return {};
}

void Ioapic::set_pin(unsigned pin, bool asserted) {
  if (pin >= kPins) return;
  std::lock_guard guard(m_lock);
  const uint32_t bit = 1u << pin;
  const bool was = m_level & bit;
  if (asserted)
    m_level |= bit;
  else
    m_level &= ~bit;
  // The 82093AA ignores edges on masked pins; a level pin is sampled whenever it becomes deliverable.
  if (!(m_entries[pin] & kLevel) && asserted && !was && !(m_entries[pin] & kMasked)) m_edge_pending |= bit;
  // The input is taken as "asserted", whatever the entry's polarity: devices drive asserted as 1 and
  // the tables declare every pin active high (QEMU's IOAPIC does the same; KVM's in-kernel one XORs the
  // polarity in, which only agrees while guests keep the tables' polarity).
  if (asserted && !was) service();
}

void Ioapic::eoi(uint8_t vector) {
  std::lock_guard guard(m_lock);
  eoi_locked(vector);
}

void Ioapic::eoi_locked(uint8_t vector) {
  bool cleared = false;
  for (auto& entry : m_entries) {
    if ((entry & kLevel) && (entry & kRemoteIrr) && (entry & kVectorMask) == vector) {
      entry &= ~kRemoteIrr;
      cleared = true;
    }
  }
  if (cleared) service();  // a line still asserted interrupts again
}

void Ioapic::service() {
  for (unsigned pin = 0; pin < kPins; ++pin) {
    const uint32_t bit = 1u << pin;
    const uint64_t entry = m_entries[pin];
    if (entry & kMasked) continue;
    if (entry & kLevel) {
      if ((m_level & bit) && !(entry & kRemoteIrr)) deliver(pin);
    } else if (m_edge_pending & bit) {
      m_edge_pending &= ~bit;
      deliver(pin);
    }
  }
}

accel::Vm::IoapicRoute Ioapic::compose(unsigned pin, uint64_t entry) {
  // As QEMU's ioapic_entry_parse: entry bits 48-63 (destination, extended destination id, and the
  // remappable-format bit) become MSI address bits 4-19, the destination mode address bit 2; the data
  // carries vector, delivery mode and trigger mode. Delivery status and remote IRR never leave.
  accel::Vm::IoapicRoute route;
  route.pin = pin;
  route.address = kMsiBase | (((entry >> 48) & 0xffff) << 4) | ((entry & kDestLogical) ? 1u << 2 : 0);
  route.data = static_cast<uint32_t>((entry & kVectorMask) | (((entry >> kDeliveryShift) & 7) << 8) |
                                     ((entry & kLevel) ? 1u << 15 : 0));
  return route;
}

void Ioapic::deliver(unsigned pin) {
  uint64_t& entry = m_entries[pin];
  const unsigned mode = (entry >> kDeliveryShift) & 7;
  if (mode == kExtInt || mode == 3 || mode == 6) {
    // ExtINT asks the 8259 for the vector, and there is no 8259 on this machine; 3 and 6 are reserved.
    note_ignored("delivery mode without a target", mode);
    return;
  }
  if (entry & kLevel) entry |= kRemoteIrr;
  // Delivery is synchronous (the message is sent before this returns), so the entry's delivery status
  // bit, "send pending" on the chip, never reads 1.
  if (!m_vm) return;
  const accel::Vm::IoapicRoute msi = compose(pin, entry);
  // KVM_SIGNAL_MSI rather than KVM_IRQ_LINE on the pin's routed GSI: the message is built from the
  // entry as it is now, under this lock, so delivery never depends on the accelerator's copy of the
  // routes being current; the routes then only matter for EOI reporting and are sent only when a
  // level-triggered entry changes (each KVM_SET_GSI_ROUTING waits for an SRCU grace period).
  auto sent = m_vm->signal_msi(msi.address, msi.data);
  if (!sent.ok()) note_ignored(("MSI not delivered: " + sent.error().message).c_str(), pin);
}

void Ioapic::update_routes() {
  if (!m_vm || !m_routes) return;
  std::vector<accel::Vm::IoapicRoute> routes;
  for (unsigned pin = 0; pin < kPins; ++pin)
    if (m_entries[pin] & kLevel) routes.push_back(compose(pin, m_entries[pin]));
  auto same = [](const accel::Vm::IoapicRoute& a, const accel::Vm::IoapicRoute& b) {
    return a.pin == b.pin && a.address == b.address && a.data == b.data;
  };
  if (std::equal(routes.begin(), routes.end(), m_routes->begin(), m_routes->end(), same)) return;
  auto set = m_vm->set_ioapic_routes(routes);
  if (!set.ok()) {
    note_ignored(("IOAPIC routes not set: " + set.error().message).c_str(), routes.size());
    return;  // m_routes keeps the old set, so the next change tries again
  }
  *m_routes = std::move(routes);
}

uint32_t Ioapic::read_register(uint8_t index) const {
  switch (index) {
    case kRegId:
    case kRegArbitration:
      // The ID in bits 24-31: the chip has 4 bits, but Linux reads 8 and the tables may list ids
      // above 15 (many vCPUs); the arbitration id follows the ID, as after the chip's ID write.
      return uint32_t{m_id} << 24;
    case kRegVersion:
      return ((kPins - 1) << 16) | kVersion;
    default:
      break;
  }
  if (index < kRegTable || index >= kRegTable + 2 * kPins) return 0;
  const uint64_t entry = m_entries[(index - kRegTable) / 2];
  return static_cast<uint32_t>((index & 1) ? entry >> 32 : entry);
}

void Ioapic::write_register(uint8_t index, uint32_t value) {
  if (index == kRegId) {
    m_id = static_cast<uint8_t>(value >> 24);
    return;
  }
  if (index < kRegTable || index >= kRegTable + 2 * kPins) {
    note_ignored("write to a read-only or missing register", index);
    return;
  }
  const unsigned pin = (index - kRegTable) / 2;
  uint64_t& entry = m_entries[pin];
  const uint64_t read_only = entry & kReadOnly;
  uint64_t next =
      (index & 1) ? (entry & 0xffffffffull) | (uint64_t{value} << 32) : (entry & ~0xffffffffull) | value;
  next = (next & kWritable) | read_only;
  // Remote IRR only means something for level pins: switching to edge clears it (Linux's way of
  // clearing a stuck remote IRR on IOAPICs without an EOI register).
  if (!(next & kLevel)) next &= ~kRemoteIrr;
  entry = next;
  update_routes();
  service();
}

void Ioapic::read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  std::lock_guard guard(m_lock);
  uint32_t value = 0;
  if (offset == kIoregsel && !data.empty() && data.size() <= 4) {
    value = m_select;
  } else if (offset == kIowin && data.size() == 4) {
    value = read_register(m_select);
  } else {
    note_ignored("read of a missing register or with a bad width", offset);
    return;
  }
  std::memcpy(data.data(), &value, std::min<size_t>(data.size(), 4));
}

void Ioapic::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard guard(m_lock);
  uint32_t value = 0;
  std::memcpy(&value, data.data(), std::min<size_t>(data.size(), 4));
  if (offset == kIoregsel && !data.empty() && data.size() <= 4) {
    m_select = static_cast<uint8_t>(value);
  } else if (offset == kIowin && data.size() == 4) {
    write_register(m_select, value);
  } else if (offset == kEoi && data.size() == 4) {
    eoi_locked(static_cast<uint8_t>(value));  // version 0x20's EOI register: the vector in bits 0-7
  } else {
    note_ignored("write to a missing register or with a bad width", offset);
  }
}

uint64_t Ioapic::entry(unsigned pin) const {
  std::lock_guard guard(m_lock);
  return pin < kPins ? m_entries[pin] : 0;
}

uint64_t Ioapic::ignored_accesses() const {
  std::lock_guard guard(m_lock);
  return m_ignored;
}

void Ioapic::note_ignored(const char* what, uint64_t value) {
  ++m_ignored;
  if (m_warned) return;
  m_warned = true;
  std::fprintf(stderr, "vmlaunch: %s: %s (0x%llx) ignored; further ones are counted only\n", m_name.c_str(),
               what, (unsigned long long)value);
}

}  // namespace hw::x86
