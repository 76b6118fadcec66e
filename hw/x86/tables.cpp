#include "hw/x86/tables.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

namespace hw::x86 {
namespace {

struct Bytes {
  std::vector<uint8_t> data;
  template <typename T>
  void add(T value) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    data.insert(data.end(), raw, raw + sizeof(T));
  }
  void add_text(const char* text, size_t size) {
    for (size_t i = 0; i < size; ++i)
      data.push_back(static_cast<uint8_t>(i < std::strlen(text) ? text[i] : ' '));
  }
  template <typename T>
  void set(size_t offset, T value) {
    std::memcpy(data.data() + offset, &value, sizeof(T));
  }
};

// AML's PkgLength for `content` bytes that follow it: 1 to 3 bytes, counting themselves.
void add_pkg_length(Bytes& out, size_t content) {
  if (content + 1 < 0x40) {
    out.add<uint8_t>(static_cast<uint8_t>(content + 1));
  } else if (content + 2 < 0x1000) {
    const size_t total = content + 2;
    out.add<uint8_t>(static_cast<uint8_t>(0x40 | (total & 0x0f)));
    out.add<uint8_t>(static_cast<uint8_t>(total >> 4));
  } else {
    const size_t total = content + 3;
    out.add<uint8_t>(static_cast<uint8_t>(0x80 | (total & 0x0f)));
    out.add<uint8_t>(static_cast<uint8_t>(total >> 4));
    out.add<uint8_t>(static_cast<uint8_t>(total >> 12));
  }
}

// An AML integer as a DWordConst (any value below 2^32; one encoding keeps it simple).
void add_aml_dword(Bytes& out, uint32_t value) {
  out.add<uint8_t>(0x0c);
  out.add<uint32_t>(value);
}

// Device (NAME) { body }: DeviceOp, its length, then the body (which starts with the name).
void add_aml_device(Bytes& out, const Bytes& body) {
  out.add<uint8_t>(0x5b);  // DeviceOp
  out.add<uint8_t>(0x82);
  add_pkg_length(out, body.data.size());
  out.data.insert(out.data.end(), body.data.begin(), body.data.end());
}

// Name (NAME, "text"): NameOp, a 4-character name, a null-terminated String.
void add_aml_name_string(Bytes& out, const char* name, std::string_view text) {
  out.add<uint8_t>(0x08);
  out.add_text(name, 4);
  out.add<uint8_t>(0x0d);
  out.add_text(text.data(), text.size());
  out.add<uint8_t>(0);
}

// A 16-bit address space descriptor (ACPI 6.4.3.5.3): a producer with fixed min and max.
void add_word_space(Bytes& out, uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max) {
  out.add<uint8_t>(0x88);
  out.add<uint16_t>(13);
  out.add<uint8_t>(type);  // 1 = I/O, 2 = bus numbers
  out.add<uint8_t>(0x0c);  // MinFixed, MaxFixed, positive decode, producer
  out.add<uint8_t>(type_flags);
  out.add<uint16_t>(0);  // granularity
  out.add<uint16_t>(min);
  out.add<uint16_t>(max);
  out.add<uint16_t>(0);  // translation
  out.add<uint16_t>(static_cast<uint16_t>(max - min + 1));
}

// Device (NAME) { Name (_HID, hid), Name (_CRS, ResourceTemplate () { resources }) }. `hid` is the
// encoded value: an EisaId (0x0c + 4 bytes) or a string (0x0d ... 0).
Bytes simple_device(const char* name, const Bytes& hid, const Bytes& resources) {
  Bytes body;
  body.add_text(name, 4);
  body.add<uint8_t>(0x08);
  body.add_text("_HID", 4);
  body.data.insert(body.data.end(), hid.data.begin(), hid.data.end());
  body.add<uint8_t>(0x08);
  body.add_text("_CRS", 4);
  body.add<uint8_t>(0x11);  // BufferOp
  Bytes buffer;
  add_aml_dword(buffer, static_cast<uint32_t>(resources.data.size() + 2));
  buffer.data.insert(buffer.data.end(), resources.data.begin(), resources.data.end());
  buffer.add<uint8_t>(0x79);  // EndTag
  buffer.add<uint8_t>(0);
  add_pkg_length(body, buffer.data.size());
  body.data.insert(body.data.end(), buffer.data.begin(), buffer.data.end());
  Bytes device;
  add_aml_device(device, body);
  return device;
}

// IO (Decode16, port, port, 1, length): one fixed range.
void add_io(Bytes& out, uint16_t port, uint8_t length) {
  out.add<uint8_t>(0x47);
  out.add<uint8_t>(0x01);
  out.add<uint16_t>(port);
  out.add<uint16_t>(port);
  out.add<uint8_t>(0x01);
  out.add<uint8_t>(length);
}

// Device (KBD) { PNP0303: IO 0x60, IO 0x64, IRQNoFlags {irq} } (as QEMU's pckbd declares it), the power
// button (PWRB), the VM generation ID (VGEN), the GED0 that notifies them and Device (PEVT) { "QEMU0001": IO
// (port, 1) } (QEMU's pvpanic-isa), as the inputs ask.
Bytes legacy_devices(const TableInputs& inputs) {
  Bytes out;
  if (inputs.i8042) {
    Bytes hid;
    for (uint8_t byte : std::initializer_list<uint8_t>{0x0c, 0x41, 0xd0, 0x03, 0x03}) hid.add<uint8_t>(byte);
    Bytes resources;
    add_io(resources, 0x60, 1);
    add_io(resources, 0x64, 1);
    resources.add<uint8_t>(0x22);  // IRQNoFlags: edge, active high
    resources.add<uint16_t>(static_cast<uint16_t>(1u << (inputs.keyboard_irq & 15)));
    Bytes device = simple_device("KBD_", hid, resources);
    out.data.insert(out.data.end(), device.data.begin(), device.data.end());
  }
  if (inputs.power_button_irq) {
    // Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")), Name (_UID, 0) }
    Bytes button;
    button.add_text("PWRB", 4);
    for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0c,
                                                       0x08, '_', 'U', 'I', 'D', 0x00})
      button.add<uint8_t>(byte);
    add_aml_device(out, button);
  }
  if (inputs.vmgenid) {
    // Device (VGEN) { Name (_HID, "VMGENCTR"), Name (_CID, "VM_Gen_Counter"), Name (_DDN, "VM_Gen_Counter"),
    //   Method (ADDR, 0) { Return (Package (2) { low 32 bits, high 32 bits }) } }
    // Linux 6.1 matches the _HID (its ids: "VMGENCTR", "VM_GEN_COUNTER"); Windows the _CID, as on QEMU.
    Bytes body;
    body.add_text("VGEN", 4);
    add_aml_name_string(body, "_HID", "VMGENCTR");
    for (const char* name : {"_CID", "_DDN"}) {
      add_aml_name_string(body, name, "VM_Gen_Counter");
    }
    Bytes package;  // NumElements, then the two halves
    package.add<uint8_t>(2);
    add_aml_dword(package, static_cast<uint32_t>(inputs.vmgenid->address));
    add_aml_dword(package, static_cast<uint32_t>(inputs.vmgenid->address >> 32));
    Bytes method;
    method.add_text("ADDR", 4);
    method.add<uint8_t>(0);     // no arguments, not serialized
    method.add<uint8_t>(0xa4);  // ReturnOp
    method.add<uint8_t>(0x12);  // PackageOp
    add_pkg_length(method, package.data.size());
    method.data.insert(method.data.end(), package.data.begin(), package.data.end());
    body.add<uint8_t>(0x14);  // MethodOp
    add_pkg_length(body, method.data.size());
    body.data.insert(body.data.end(), method.data.begin(), method.data.end());
    add_aml_device(out, body);
  }
  if (inputs.power_button_irq || inputs.vmgenid) {
    // Device (GED0) { Name (_HID, "ACPI0013"), Name (_UID, 0),
    //   Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {irq}
    //                                     for each source }),
    //   Method (_EVT, 1) { Notify (PWRB, 0x80) } }  (the power button alone), or with several sources
    //   Method (_EVT, 1) { If (LEqual (Arg0, irq)) { Notify (SOURCE, 0x80) } ... }
    // Linux's GED driver takes the first interrupt of each descriptor and calls _EVT with its GSI,
    // so every source has a descriptor of its own.
    struct Source {
      uint8_t irq;
      const char* device;
    };
    std::vector<Source> sources;
    if (inputs.power_button_irq) sources.push_back({*inputs.power_button_irq, "PWRB"});
    if (inputs.vmgenid) sources.push_back({inputs.vmgenid->irq, "VGEN"});
    Bytes ged;
    ged.add_text("GED0", 4);
    add_aml_name_string(ged, "_HID", "ACPI0013");
    for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'U', 'I', 'D', 0x00})
      ged.add<uint8_t>(byte);
    Bytes resources;  // Extended Interrupt Descriptors: consumer, edge, active high, exclusive; one GSI
    for (const Source& source : sources) {
      for (uint8_t byte : std::initializer_list<uint8_t>{0x89, 6, 0, 0x03, 1}) resources.add<uint8_t>(byte);
      resources.add<uint32_t>(source.irq);
    }
    resources.add<uint8_t>(0x79);
    resources.add<uint8_t>(0);
    ged.add<uint8_t>(0x08);
    ged.add_text("_CRS", 4);
    ged.add<uint8_t>(0x11);  // BufferOp
    Bytes buffer;
    add_aml_dword(buffer, static_cast<uint32_t>(resources.data.size()));
    buffer.data.insert(buffer.data.end(), resources.data.begin(), resources.data.end());
    add_pkg_length(ged, buffer.data.size());
    ged.data.insert(ged.data.end(), buffer.data.begin(), buffer.data.end());
    Bytes method;
    method.add_text("_EVT", 4);
    method.add<uint8_t>(0x01);  // 1 argument: the GSI
    for (const Source& source : sources) {
      Bytes notify;  // Notify (\_SB.SOURCE, 0x80)
      for (uint8_t byte : std::initializer_list<uint8_t>{0x86, 0x5c, 0x2e, '_', 'S', 'B', '_'})
        notify.add<uint8_t>(byte);
      notify.add_text(source.device, 4);
      notify.add<uint8_t>(0x0a);
      notify.add<uint8_t>(0x80);
      if (sources.size() == 1) {
        method.data.insert(method.data.end(), notify.data.begin(), notify.data.end());
        continue;
      }
      Bytes body;  // LEqual (Arg0, irq), then the Notify
      for (uint8_t byte : std::initializer_list<uint8_t>{0x93, 0x68, 0x0a, source.irq})
        body.add<uint8_t>(byte);
      body.data.insert(body.data.end(), notify.data.begin(), notify.data.end());
      method.add<uint8_t>(0xa0);  // IfOp
      add_pkg_length(method, body.data.size());
      method.data.insert(method.data.end(), body.data.begin(), body.data.end());
    }
    ged.add<uint8_t>(0x14);  // MethodOp
    add_pkg_length(ged, method.data.size());
    ged.data.insert(ged.data.end(), method.data.begin(), method.data.end());
    add_aml_device(out, ged);
  }
  if (inputs.pvpanic_port) {
    Bytes hid;
    hid.add<uint8_t>(0x0d);
    hid.add_text("QEMU0001", 8);
    hid.add<uint8_t>(0);
    Bytes resources;
    add_io(resources, inputs.pvpanic_port, 1);
    Bytes device = simple_device("PEVT", hid, resources);
    out.data.insert(out.data.end(), device.data.begin(), device.data.end());
  }
  return out;
}

// Device (VRnn) { _HID "LNRO0005", _UID nn, _CRS { Memory32Fixed (ReadWrite, base, size),
// IRQNoFlags { irq } } } for each virtio-mmio transport (nn: two hex digits; at most 256).
Bytes virtio_mmio_devices(const TableInputs& inputs) {
  const char* digits = "0123456789ABCDEF";
  Bytes devices;
  for (size_t i = 0; i < inputs.virtio_mmio.size() && i < kMaxDsdtVirtioMmio; ++i) {
    const auto& transport = inputs.virtio_mmio[i];
    Bytes resources;
    resources.add<uint8_t>(0x86);  // Memory32Fixed, read-write
    resources.add<uint16_t>(9);
    resources.add<uint8_t>(1);
    resources.add<uint32_t>(static_cast<uint32_t>(transport.base));
    resources.add<uint32_t>(transport.size);
    resources.add<uint8_t>(0x22);  // IRQNoFlags: edge, active high, as the ISA default of its pin
    resources.add<uint16_t>(static_cast<uint16_t>(1u << (transport.irq & 15)));
    resources.add<uint8_t>(0x79);
    resources.add<uint8_t>(0);
    Bytes body;
    body.add<uint8_t>('V');
    body.add<uint8_t>('R');
    body.add<uint8_t>(static_cast<uint8_t>(digits[(i >> 4) & 15]));
    body.add<uint8_t>(static_cast<uint8_t>(digits[i & 15]));
    add_aml_name_string(body, "_HID", "LNRO0005");
    body.add<uint8_t>(0x08);
    body.add_text("_UID", 4);
    add_aml_dword(body, static_cast<uint32_t>(i));
    body.add<uint8_t>(0x08);
    body.add_text("_CRS", 4);
    body.add<uint8_t>(0x11);  // BufferOp
    Bytes buffer;
    add_aml_dword(buffer, static_cast<uint32_t>(resources.data.size()));
    buffer.data.insert(buffer.data.end(), resources.data.begin(), resources.data.end());
    add_pkg_length(body, buffer.data.size());
    body.data.insert(body.data.end(), buffer.data.begin(), buffer.data.end());
    add_aml_device(devices, body);
  }
  return devices;
}

// One interrupt link per _PRT entry (NumElements is one byte, and so are the names' digits).
constexpr size_t kMaxLinks = 255;

// The NameSeg LKnn (nn: two hex digits) of interrupt link `index`.
void add_link_name(Bytes& out, size_t index) {
  const char* digits = "0123456789ABCDEF";
  out.add<uint8_t>('L');
  out.add<uint8_t>('K');
  out.add<uint8_t>(static_cast<uint8_t>(digits[(index >> 4) & 15]));
  out.add<uint8_t>(static_cast<uint8_t>(digits[index & 15]));
}

// Device (LKnn) { _HID PNP0C0F, _UID nn, _PRS and _CRS: Interrupt (ResourceConsumer, Level,
// ActiveHigh, Shared) { gsi }, Method (_SRS, 1) {} }, one per PCI INTx route: the link that routes
// the pin to its fixed GSI (QEMU's pc has LNKA-LNKD the same way). Linux sets the link (_SRS) before
// using it; the routing cannot change, so _SRS accepts and does nothing.
Bytes pci_interrupt_links(const TableInputs& inputs) {
  Bytes links;
  for (size_t i = 0; i < inputs.pci_irqs.size() && i < kMaxLinks; ++i) {
    Bytes resource;  // Extended Interrupt Descriptor: consumer, level, active high, shared; one GSI
    for (uint8_t byte : std::initializer_list<uint8_t>{0x89, 6, 0, 0x09, 1}) resource.add<uint8_t>(byte);
    resource.add<uint32_t>(inputs.pci_irqs[i].gsi);
    resource.add<uint8_t>(0x79);
    resource.add<uint8_t>(0);
    Bytes body;
    add_link_name(body, i);
    for (uint8_t byte :
         std::initializer_list<uint8_t>{0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x0f})
      body.add<uint8_t>(byte);  // EisaId ("PNP0C0F")
    for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'U', 'I', 'D'}) body.add<uint8_t>(byte);
    add_aml_dword(body, static_cast<uint32_t>(i));
    for (const char* name : {"_PRS", "_CRS"}) {
      body.add<uint8_t>(0x08);
      body.add_text(name, 4);
      body.add<uint8_t>(0x11);  // BufferOp
      Bytes buffer;
      add_aml_dword(buffer, static_cast<uint32_t>(resource.data.size()));
      buffer.data.insert(buffer.data.end(), resource.data.begin(), resource.data.end());
      add_pkg_length(body, buffer.data.size());
      body.data.insert(body.data.end(), buffer.data.begin(), buffer.data.end());
    }
    body.add<uint8_t>(0x14);  // MethodOp (_SRS, 1 argument, empty)
    add_pkg_length(body, 5);
    body.add_text("_SRS", 4);
    body.add<uint8_t>(1);
    add_aml_device(links, body);
  }
  return links;
}

// Device (PCI0) { _HID PNP0A03, _UID 0, _CRS, _PRT }: the root bridge of bus 0, as QEMU's pc has.
Bytes pci_root_bridge(const TableInputs& inputs) {
  Bytes crs;                           // the resource template
  add_word_space(crs, 2, 0, 0, 0xff);  // bus numbers 0-255
  for (uint8_t byte : std::initializer_list<uint8_t>{0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08})
    crs.add<uint8_t>(byte);                      // IO 0xcf8, 8
  add_word_space(crs, 1, 0x03, 0x0000, 0x0cf7);  // I/O below and above the config ports
  add_word_space(crs, 1, 0x03, 0x0d00, 0xffff);
  if (inputs.pci_mmio_size) {
    // A 32-bit memory descriptor: read-write, non-cacheable, producer with fixed min and max.
    const uint64_t end = inputs.pci_mmio_base + inputs.pci_mmio_size - 1;
    crs.add<uint8_t>(0x87);
    crs.add<uint16_t>(23);
    crs.add<uint8_t>(0);     // memory
    crs.add<uint8_t>(0x0c);  // MinFixed, MaxFixed
    crs.add<uint8_t>(0x01);  // read-write
    crs.add<uint32_t>(0);
    crs.add<uint32_t>(static_cast<uint32_t>(inputs.pci_mmio_base));
    crs.add<uint32_t>(static_cast<uint32_t>(end));
    crs.add<uint32_t>(0);
    crs.add<uint32_t>(static_cast<uint32_t>(inputs.pci_mmio_size));
  }
  crs.add<uint8_t>(0x79);  // EndTag
  crs.add<uint8_t>(0);

  Bytes body;
  body.add_text("PCI0", 4);
  for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03})
    body.add<uint8_t>(byte);  // PNP0A03
  for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'U', 'I', 'D', 0x00}) body.add<uint8_t>(byte);
  // Name (_CRS, Buffer () { crs })
  for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'C', 'R', 'S', 0x11}) body.add<uint8_t>(byte);
  Bytes buffer;
  add_aml_dword(buffer, static_cast<uint32_t>(crs.data.size()));
  buffer.data.insert(buffer.data.end(), crs.data.begin(), crs.data.end());
  add_pkg_length(body, buffer.data.size());
  body.data.insert(body.data.end(), buffer.data.begin(), buffer.data.end());
  // Name (_PRT, Package () { Package () { slot << 16 | 0xffff, pin - 1, LKnn, 0 }, ... }): each
  // INTx through an interrupt link (pci_interrupt_links) that says level, active high, as the MADT's
  // overrides for these GSIs do. A plain GSI here would mean active low, and Linux refuses to
  // register a GSI the override made active high (EBUSY: the device's probe fails).
  Bytes routes;
  size_t count = 0;
  for (const PciIntx& intx : inputs.pci_irqs) {
    if (count == kMaxLinks) break;
    Bytes entry;
    entry.add<uint8_t>(4);
    add_aml_dword(entry, (uint32_t{intx.device} << 16) | 0xffff);
    add_aml_dword(entry, static_cast<uint32_t>(intx.pin - 1));
    add_link_name(entry, count);
    add_aml_dword(entry, 0);
    routes.add<uint8_t>(0x12);
    add_pkg_length(routes, entry.data.size());
    routes.data.insert(routes.data.end(), entry.data.begin(), entry.data.end());
    ++count;
  }
  for (uint8_t byte : std::initializer_list<uint8_t>{0x08, '_', 'P', 'R', 'T', 0x12}) body.add<uint8_t>(byte);
  add_pkg_length(body, routes.data.size() + 1);
  body.add<uint8_t>(static_cast<uint8_t>(count));
  body.data.insert(body.data.end(), routes.data.begin(), routes.data.end());

  Bytes device;
  add_aml_device(device, body);
  return device;
}

// An ACPI table header with the length and checksum filled in by finish_sdt.
Bytes sdt(const char* signature, uint8_t revision) {
  Bytes t;
  t.add_text(signature, 4);
  t.add<uint32_t>(0);
  t.add<uint8_t>(revision);
  t.add<uint8_t>(0);
  t.add_text("VMLNCH", 6);
  t.add_text("VMLAUNCH", 8);
  t.add<uint32_t>(1);
  t.add_text("VMLN", 4);
  t.add<uint32_t>(1);
  return t;
}
void finish_sdt(Bytes& t) {
  t.set<uint32_t>(4, static_cast<uint32_t>(t.data.size()));
  t.data[9] = 0;
  t.data[9] = static_cast<uint8_t>(-checksum(t.data.data(), t.data.size()));
}

}  // namespace

uint8_t ioapic_id(const TableInputs& inputs) {
  uint32_t top = 0;
  for (uint32_t id : inputs.apic_ids) top = std::max(top, id);
  return static_cast<uint8_t>(std::min<uint32_t>(top + 1, 0xfe));
}

uint8_t checksum(const uint8_t* bytes, size_t size) {
  uint8_t sum = 0;
  for (size_t i = 0; i < size; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return sum;
}

base::ErrorOr<uint64_t> write_mp_table(const base::GuestMemory& memory, uint64_t address,
                                       const TableInputs& inputs) {
  const uint8_t ioapic = ioapic_id(inputs);
  const uint8_t pci_bus = 0, isa_bus = inputs.has_pci ? 1 : 0;
  Bytes table;
  table.add_text("PCMP", 4);
  table.add<uint16_t>(0);  // length, below
  table.add<uint8_t>(4);   // spec 1.4
  table.add<uint8_t>(0);   // checksum, below
  table.add_text("VMLAUNCH", 8);
  table.add_text("VM", 12);
  table.add<uint32_t>(0);
  table.add<uint16_t>(0);
  table.add<uint16_t>(0);  // entry count, below
  table.add<uint32_t>(static_cast<uint32_t>(kLapicAddress));
  table.add<uint16_t>(0);
  table.add<uint8_t>(0);
  table.add<uint8_t>(0);
  uint16_t entries = 0;
  for (size_t i = 0; i < inputs.apic_ids.size(); ++i) {
    if (inputs.apic_ids[i] > 0xfe) return base::fail(base::Error("APIC ids above 254 need x2APIC tables"));
    table.add<uint8_t>(0);
    table.add<uint8_t>(static_cast<uint8_t>(inputs.apic_ids[i]));
    table.add<uint8_t>(0x14);                  // LAPIC version
    table.add<uint8_t>(i == 0 ? 0x03 : 0x01);  // enabled, BSP
    table.add<uint32_t>(0x600);                // CPU signature: family 6
    table.add<uint32_t>(0x201);                // FPU, APIC
    table.add<uint64_t>(0);
    ++entries;
  }
  if (inputs.has_pci) {
    table.add<uint8_t>(1);
    table.add<uint8_t>(pci_bus);
    table.add_text("PCI", 6);
    ++entries;
  }
  table.add<uint8_t>(1);
  table.add<uint8_t>(isa_bus);
  table.add_text("ISA", 6);
  ++entries;
  table.add<uint8_t>(2);
  table.add<uint8_t>(ioapic);
  table.add<uint8_t>(inputs.ioapic_version);
  table.add<uint8_t>(1);
  table.add<uint32_t>(static_cast<uint32_t>(kIoapicAddress));
  ++entries;
  auto io_interrupt = [&](uint8_t type, uint16_t flags, uint8_t bus, uint8_t irq, uint8_t pin) {
    table.add<uint8_t>(3);
    table.add<uint8_t>(type);
    table.add<uint16_t>(flags);
    table.add<uint8_t>(bus);
    table.add<uint8_t>(irq);
    table.add<uint8_t>(ioapic);
    table.add<uint8_t>(pin);
    ++entries;
  };
  if (inputs.has_pic) io_interrupt(3, 0, isa_bus, 0, 0);  // ExtINT from the PIC
  for (uint8_t irq = 0; irq < 16; ++irq) {
    if (irq == 2) continue;
    io_interrupt(0, 0, isa_bus, irq, irq == 0 ? 2 : irq);
  }
  // PCI INTx: level triggered, active high. KVM's IOAPIC takes the line's level as we drive it and
  // XORs in the programmed polarity, and we drive "asserted" as 1, so the pins must be active high
  // (QEMU's pc declares its PCI links the same way).
  for (const PciIntx& intx : inputs.pci_irqs)
    io_interrupt(0, 0x0d, pci_bus, static_cast<uint8_t>((intx.device << 2) | ((intx.pin - 1) & 3)), intx.gsi);
  for (uint8_t lint = 0; lint < 2; ++lint) {
    table.add<uint8_t>(4);
    table.add<uint8_t>(lint == 0 ? 3 : 1);  // ExtINT, NMI
    table.add<uint16_t>(0);
    table.add<uint8_t>(isa_bus);
    table.add<uint8_t>(0);
    table.add<uint8_t>(0xff);
    table.add<uint8_t>(lint);
    ++entries;
  }
  table.set<uint16_t>(4, static_cast<uint16_t>(table.data.size()));
  table.set<uint16_t>(34, entries);
  table.data[7] = static_cast<uint8_t>(-checksum(table.data.data(), table.data.size()));

  Bytes floating;
  floating.add_text("_MP_", 4);
  floating.add<uint32_t>(static_cast<uint32_t>(address + 16));
  floating.add<uint8_t>(1);
  floating.add<uint8_t>(4);
  floating.add<uint8_t>(0);
  floating.add<uint8_t>(0);
  floating.add<uint32_t>(0);
  floating.data[10] = static_cast<uint8_t>(-checksum(floating.data.data(), floating.data.size()));
  if (!memory.write(address, floating.data) || !memory.write(address + 16, table.data))
    return base::fail(base::Error("the MP table does not fit in guest RAM"));
  return 16 + table.data.size();
}

base::ErrorOr<uint64_t> write_acpi_tables(const base::GuestMemory& memory, uint64_t address,
                                          const TableInputs& inputs) {
  const uint64_t rsdp_address = address;
  const uint64_t dsdt_address = address + 0x40;

  Bytes dsdt = sdt("DSDT", 2);
  if (inputs.sleep_port) {
    // Name (_S5, Package (4) { 5, 0, 0, 0 }): SLP_TYP 5 for the sleep control register.
    for (uint8_t byte :
         std::initializer_list<uint8_t>{0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0, 0, 0})
      dsdt.add<uint8_t>(byte);
  }
  if (!inputs.serial_ports.empty() || inputs.has_pci || !inputs.virtio_mmio.empty() || inputs.i8042 ||
      inputs.pvpanic_port || inputs.power_button_irq || inputs.vmgenid) {
    // Scope (\_SB) { Device (COMn) { _HID PNP0501, _UID n, _CRS { IO (port, 8), IRQNoFlags {irq} } }
    //                Device (PCI0) { ... } }
    Bytes scope;
    for (size_t i = 0; i < inputs.serial_ports.size() && i < 9; ++i) {
      const auto& com = inputs.serial_ports[i];
      const uint16_t mask = static_cast<uint16_t>(1u << (com.irq & 15));
      const std::vector<uint8_t> body = {'C',
                                         'O',
                                         'M',
                                         static_cast<uint8_t>('1' + i),
                                         0x08,
                                         '_',
                                         'H',
                                         'I',
                                         'D',
                                         0x0c,
                                         0x41,
                                         0xd0,
                                         0x05,
                                         0x01,  // EisaId ("PNP0501")
                                         0x08,
                                         '_',
                                         'U',
                                         'I',
                                         'D',
                                         0x0a,
                                         static_cast<uint8_t>(i + 1),
                                         0x08,
                                         '_',
                                         'C',
                                         'R',
                                         'S',
                                         0x11,
                                         0x10,
                                         0x0a,
                                         0x0d,  // Buffer (13)
                                         0x47,
                                         0x01,
                                         static_cast<uint8_t>(com.port),
                                         static_cast<uint8_t>(com.port >> 8),
                                         static_cast<uint8_t>(com.port),
                                         static_cast<uint8_t>(com.port >> 8),
                                         0x00,
                                         0x08,  // IO
                                         0x22,
                                         static_cast<uint8_t>(mask),
                                         static_cast<uint8_t>(mask >> 8),  // IRQNoFlags
                                         0x79,
                                         0x00};  // EndTag
      scope.add<uint8_t>(0x5b);                  // DeviceOp
      scope.add<uint8_t>(0x82);
      scope.add<uint8_t>(static_cast<uint8_t>(body.size() + 1));  // PkgLength (< 64: one byte)
      for (uint8_t byte : body) scope.add<uint8_t>(byte);
    }
    Bytes legacy = legacy_devices(inputs);
    scope.data.insert(scope.data.end(), legacy.data.begin(), legacy.data.end());
    Bytes transports = virtio_mmio_devices(inputs);
    scope.data.insert(scope.data.end(), transports.data.begin(), transports.data.end());
    if (inputs.has_pci) {
      Bytes links = pci_interrupt_links(inputs);
      scope.data.insert(scope.data.end(), links.data.begin(), links.data.end());
      Bytes pci = pci_root_bridge(inputs);
      scope.data.insert(scope.data.end(), pci.data.begin(), pci.data.end());
    }
    dsdt.add<uint8_t>(0x10);  // ScopeOp
    add_pkg_length(dsdt, scope.data.size() + 4);
    for (uint8_t byte : {'_', 'S', 'B', '_'}) dsdt.add<uint8_t>(byte);
    for (uint8_t byte : scope.data) dsdt.add<uint8_t>(byte);
  }
  finish_sdt(dsdt);
  const uint64_t fadt_address = dsdt_address + ((dsdt.data.size() + 15) & ~15ull);

  Bytes fadt = sdt("FACP", 6);
  fadt.data.resize(276);
  fadt.set<uint32_t>(40, static_cast<uint32_t>(dsdt_address));  // DSDT
  fadt.set<uint32_t>(112, (1u << 20) | (1u << 4));              // HW_REDUCED_ACPI, PWR_BUTTON (none fixed)
  fadt.set<uint16_t>(109, inputs.i8042 ? 2 : 0);                // IAPC_BOOT_ARCH: 8042, nothing else claimed
  fadt.data[131] = 5;                                           // FADT minor version 6.5
  fadt.set<uint64_t>(140, dsdt_address);                        // X_DSDT
  if (inputs.sleep_port) {
    // SLEEP_CONTROL_REG and SLEEP_STATUS_REG: generic addresses in system I/O, 8 bits, byte access.
    for (unsigned i = 0; i < 2; ++i) {
      const size_t at = 244 + 12 * i;
      fadt.data[at] = 1;
      fadt.data[at + 1] = 8;
      fadt.data[at + 3] = 1;
      fadt.set<uint64_t>(at + 4, inputs.sleep_port + i);
    }
  }
  fadt.set<uint64_t>(268, 0x564d4c41554e4348ull);  // hypervisor vendor identity
  finish_sdt(fadt);
  const uint64_t madt_address = fadt_address + ((fadt.data.size() + 15) & ~15ull);

  Bytes madt = sdt("APIC", 5);
  madt.add<uint32_t>(static_cast<uint32_t>(kLapicAddress));
  // PCAT_COMPAT says there are 8259s too. Without them it must stay clear: Linux since 2024
  // ("x86/i8259: Skip probing when ACPI/MADT advertises PCAT compatibility") then believes in a PIC
  // without probing; with the flag clear it probes (writes the mask at port 0x21 and reads it back,
  // which reads 0xff here as nothing decodes the port) and runs with its NULL legacy PIC, which is
  // what Linux 6.1 concludes either way. ISA IRQs still map 1:1 to IOAPIC pins (plus the override).
  madt.add<uint32_t>(inputs.has_pic ? 1 : 0);
  for (size_t i = 0; i < inputs.apic_ids.size(); ++i) {
    if (inputs.apic_ids[i] > 0xfe) return base::fail(base::Error("APIC ids above 254 need x2APIC tables"));
    madt.add<uint8_t>(0);
    madt.add<uint8_t>(8);
    madt.add<uint8_t>(static_cast<uint8_t>(i));
    madt.add<uint8_t>(static_cast<uint8_t>(inputs.apic_ids[i]));
    madt.add<uint32_t>(1);  // enabled
  }
  madt.add<uint8_t>(1);
  madt.add<uint8_t>(12);
  madt.add<uint8_t>(ioapic_id(inputs));
  madt.add<uint8_t>(0);
  madt.add<uint32_t>(static_cast<uint32_t>(kIoapicAddress));
  madt.add<uint32_t>(0);
  madt.add<uint8_t>(2);  // ISA IRQ 0 -> GSI 2
  madt.add<uint8_t>(10);
  madt.add<uint8_t>(0);
  madt.add<uint8_t>(0);
  madt.add<uint32_t>(2);
  madt.add<uint16_t>(0);
  // PCI INTx GSIs below 16 are level triggered, active high (see the MP table above).
  std::vector<uint8_t> pci_gsis;
  for (const PciIntx& intx : inputs.pci_irqs)
    if (intx.gsi < 16 && std::find(pci_gsis.begin(), pci_gsis.end(), intx.gsi) == pci_gsis.end())
      pci_gsis.push_back(intx.gsi);
  for (uint8_t gsi : pci_gsis) {
    madt.add<uint8_t>(2);
    madt.add<uint8_t>(10);
    madt.add<uint8_t>(0);
    madt.add<uint8_t>(gsi);
    madt.add<uint32_t>(gsi);
    madt.add<uint16_t>(0x0d);
  }
  madt.add<uint8_t>(4);  // LINT1 is NMI on every processor
  madt.add<uint8_t>(6);
  madt.add<uint8_t>(0xff);
  madt.add<uint16_t>(0);
  madt.add<uint8_t>(1);
  finish_sdt(madt);
  const uint64_t xsdt_address = madt_address + ((madt.data.size() + 15) & ~15ull);

  Bytes xsdt = sdt("XSDT", 1);
  xsdt.add<uint64_t>(fadt_address);
  xsdt.add<uint64_t>(madt_address);
  finish_sdt(xsdt);

  Bytes rsdp;
  rsdp.add_text("RSD PTR ", 8);
  rsdp.add<uint8_t>(0);
  rsdp.add_text("VMLNCH", 6);
  rsdp.add<uint8_t>(2);
  rsdp.add<uint32_t>(0);
  rsdp.add<uint32_t>(36);
  rsdp.add<uint64_t>(xsdt_address);
  rsdp.add<uint8_t>(0);
  rsdp.add<uint8_t>(0);
  rsdp.add<uint16_t>(0);
  rsdp.data[8] = static_cast<uint8_t>(-checksum(rsdp.data.data(), 20));
  rsdp.data[32] = static_cast<uint8_t>(-checksum(rsdp.data.data(), 36));

  if (inputs.vmgenid && xsdt_address + xsdt.data.size() > inputs.vmgenid->address)
    return base::fail(base::Error("the ACPI tables reach the VM generation ID's address"));
  if (!memory.write(rsdp_address, rsdp.data) || !memory.write(dsdt_address, dsdt.data) ||
      !memory.write(fadt_address, fadt.data) || !memory.write(madt_address, madt.data) ||
      !memory.write(xsdt_address, xsdt.data))
    return base::fail(base::Error("the ACPI tables do not fit in guest RAM"));
  return rsdp_address;
}

}  // namespace hw::x86
