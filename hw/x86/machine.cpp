// The x86_64 machines, `microvm` and `pc`, registered as "x86_64/microvm" and "x86_64/pc".
//
// Both: RAM from 0 (split at 3 GiB, the rest from 4 GiB), LAPICs in the accelerator, COM ports (ns16550 on
// the ISA slots of the graph), an i8042 for reset and the host's Ctrl-Alt-Del, pvpanic (port 0x505), the
// debug exit port 0x501, ACPI sleep registers for poweroff (hw/x86/acpi_sleep.h), MP table + ACPI (hardware-
// reduced) for the CPUs, a VM generation ID where the config asks (hw/x86/vmgenid.h); pc also an ACPI
// power button (hw/x86/acpi_power_button.h), and direct kernel boot
// (bzImage, vmlinux or PVH ELF). microvm runs the accelerator's split irqchip (LAPICs only; no PIC, no PIT,
// unless machine.pit) with the userspace IOAPIC of hw/x86/ioapic.h, and adds virtio-mmio transports,
// announced on the kernel command line as Firecracker does; pc keeps the accelerator's full irqchip (PIC,
// IOAPIC, PIT) and adds the CF8/CFC PCI host (hw/pci) with every PCI device at the graph's address and BARs
// assigned from the graph's PCI window before the guest starts. pc with `boot: {firmware: seabios}` boots
// through Debian's SeaBIOS instead of a kernel (hw/x86/seabios.h): the image below 4 GiB, fw_cfg and the
// CMOS for it, the vCPUs at their reset state; SeaBIOS then re-assigns the BARs and writes its own tables.
#include "hw/machine.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "accel/accelerator.h"
#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/boot/image.h"
#include "hw/device_model.h"
#include "hw/pci/models.h"
#include "hw/serial/ns16550.h"
#include "hw/x86/acpi_power_button.h"
#include "hw/x86/acpi_sleep.h"
#include "hw/x86/boot.h"
#include "hw/x86/cmos.h"
#include "hw/x86/i8042.h"
#include "hw/x86/ioapic.h"
#include "hw/x86/pvpanic_isa.h"
#include "hw/x86/seabios.h"
#include "hw/x86/tables.h"
#include "hw/x86/vmgenid.h"

VML_CONSUMES("machine.pit");          // microvm: KVM's full irqchip with the PIT and PIC pair
VML_CONSUMES("device-type:ns16550");  // COM ports, built here
VML_CONSUMES("device-type:vmgenid");  // the VM generation ID, built here

namespace hw::x86 {
namespace {

constexpr uint64_t MiB = 1 << 20, GiB = uint64_t{1} << 30;

// Drives the IOAPIC pins (GSIs): the accelerator's (pc) or the machine's own IOAPIC (microvm).
// Several devices may share a PCI INTx line: the GSI is high while any of them is. Detached before
// the Vm goes away so a late backend thread never reaches it.
class GsiRouter {
 public:
  void attach(accel::Vm* vm, std::shared_ptr<Ioapic> ioapic) {
    std::unique_lock guard(m_lock);
    m_vm = vm;
    m_ioapic = std::move(ioapic);
  }
  void change(uint32_t gsi, bool up) {
    std::unique_lock guard(m_lock);
    int& count = m_asserted[gsi];
    bool before = count > 0;
    count += up ? 1 : -1;
    if (count < 0) count = 0;
    bool after = count > 0;
    if (before == after) return;
    if (m_ioapic)
      m_ioapic->set_pin(gsi, after);
    else if (m_vm)
      (void)m_vm->set_irq_line(gsi, after);
  }
  // The in-kernel IOAPIC only: a userspace one (split irqchip) has no eventfd path.
  bool bind_eventfds(uint32_t gsi, int trigger, int resample) {
    std::shared_lock guard(m_lock);
    return !m_ioapic && m_vm && m_vm->set_level_eventfd(gsi, trigger, resample).ok();
  }
  void unbind_eventfds(uint32_t gsi, int trigger) {
    std::shared_lock guard(m_lock);
    if (!m_ioapic && m_vm) (void)m_vm->remove_level_eventfd(gsi, trigger);
  }

 private:
  std::shared_mutex m_lock;
  accel::Vm* m_vm = nullptr;
  std::shared_ptr<Ioapic> m_ioapic;
  std::map<uint32_t, int> m_asserted;
};

// What the accelerator calls back into: the bus for device accesses, plus LAPIC EOIs for the
// userspace IOAPIC (split irqchip). m_ioapic is set before any vCPU runs and never changes after.
class X86VmOps final : public accel::VmOps {
 public:
  explicit X86VmOps(Bus& bus) : m_bus(bus) {}
  bool mmio_read(uint64_t addr, std::span<uint8_t> data) override { return m_bus.mmio_read(addr, data); }
  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    return m_bus.mmio_write(addr, data);
  }
  bool pio_read(uint16_t port, std::span<uint8_t> data) override { return m_bus.pio_read(port, data); }
  bool pio_write(uint16_t port, std::span<const uint8_t> data) override {
    return m_bus.pio_write(port, data);
  }
  void ioapic_eoi(uint8_t vector) override {
    if (m_ioapic) m_ioapic->eoi(vector);
  }

  std::shared_ptr<Ioapic> m_ioapic;

 private:
  Bus& m_bus;
};

class GsiLine final : public IrqLine {
 public:
  GsiLine(GsiRouter& router, uint32_t gsi) : m_router(router), m_gsi(gsi) {}
  void set_level(bool asserted) override {
    if (m_level.exchange(asserted) != asserted) m_router.change(m_gsi, asserted);
  }
  bool bind_eventfds(int trigger, int resample) override {
    return m_router.bind_eventfds(m_gsi, trigger, resample);
  }
  void unbind_eventfds(int trigger) override { m_router.unbind_eventfds(m_gsi, trigger); }

 private:
  GsiRouter& m_router;
  uint32_t m_gsi;
  std::atomic<bool> m_level{false};
};

// MSI messages of PCI functions (pc only) to the accelerator's LAPICs. Detached before the Vm goes
// away, like the GsiRouter, so a late backend thread's interrupt becomes a no-op.
class MsiRouter final : public MsiSink {
 public:
  void attach(accel::Vm* vm) {
    std::unique_lock guard(m_lock);
    m_vm = vm;
  }
  void signal(uint64_t address, uint32_t data) override {
    std::shared_lock guard(m_lock);
    if (m_vm) (void)m_vm->signal_msi(address, data);
  }
  bool bind_eventfd(int eventfd, uint64_t address, uint32_t data) override {
    std::shared_lock guard(m_lock);
    return m_vm && m_vm->set_msi_eventfd(eventfd, address, data).ok();
  }
  void unbind_eventfd(int eventfd) override {
    std::shared_lock guard(m_lock);
    if (m_vm) (void)m_vm->remove_msi_eventfd(eventfd);
  }

 private:
  std::shared_mutex m_lock;
  accel::Vm* m_vm = nullptr;
};

// Direct mappings to the accelerator's memory slots; detached before the Vm goes away (a BAR moved
// by a late vCPU write then stays trapped).
class DirectRouter final : public DirectMapper {
 public:
  void attach(accel::Vm* vm) {
    std::unique_lock guard(m_lock);
    m_vm = vm;
  }
  std::optional<uint32_t> map(uint64_t gpa, void* host, uint64_t size) override {
    std::shared_lock guard(m_lock);
    if (!m_vm) return std::nullopt;
    auto mapped = m_vm->map_device_memory(gpa, host, size);
    if (!mapped.ok()) return std::nullopt;
    return mapped.value();
  }
  void unmap(uint32_t id) override {
    std::shared_lock guard(m_lock);
    if (m_vm) (void)m_vm->unmap_device_memory(id);
  }

 private:
  std::shared_mutex m_lock;
  accel::Vm* m_vm = nullptr;
};

// A graph device whose state the accelerator keeps (the LAPICs in each vCPU's state, KVM's in-kernel
// IOAPIC in the VM's): saved there, so its own part is empty.
class InAcceleratorState final : public DeviceState {
 public:
  explicit InAcceleratorState(std::string what) : m_what(std::move(what)) {}
  uint32_t state_version() const override { return 1; }
  void save_state(StateWriter&) override {}
  base::ErrorOr<void> load_state(StateReader& in, uint32_t version) override {
    TRY(check_version(version, 1, m_what));
    return in.finish(m_what);
  }

 private:
  std::string m_what;
};

class X86Machine final : public Machine {
 public:
  ~X86Machine() override {
    // Nothing may reach the Vm once it is gone: detach every path to it first.
    m_msi->attach(nullptr);
    m_direct->attach(nullptr);
    m_router.attach(nullptr, nullptr);
    if (m_ops.m_ioapic) m_ops.m_ioapic->attach(nullptr);
    m_vcpus.clear();
    m_vm.reset();
  }
  RunOutcome run() override { return run_vcpus(m_vcpus, m_power, m_on_debug_exit, m_stats); }
  PowerController& power() override { return m_power; }

  // The vCPUs park inside the accelerator with their state; kvm also stops the guest's clock.
  base::ErrorOr<void> pause() override {
    auto parked = m_vm->pause(std::chrono::seconds(2));
    if (!parked.ok()) return base::fail(base::Error(parked.error().message));
    return {};
  }
  base::ErrorOr<void> resume() override {
    auto resumed = m_vm->resume();
    if (!resumed.ok()) return base::fail(base::Error(resumed.error().message));
    return {};
  }

  // pc: the ACPI power button (a GED notifying PWRB, hw/x86/acpi_power_button.h). microvm: Ctrl-Alt-Del on
  // the i8042's keyboard (as Firecracker's SendCtrlAltDel); a guest that answers it with a reboot
  // instead of a power-off is taken as powered off by the controller (vmm/controller.cpp).
  base::ErrorOr<void> press_power_button() override {
    if (m_button) {
      m_button->press();
      return {};
    }
    if (m_i8042) {
      if (!m_i8042->press_ctrl_alt_del())
        return base::fail(base::Error("the guest has turned its keyboard off: Ctrl-Alt-Del cannot reach it"));
      return {};
    }
    return Machine::press_power_button();
  }

  // Snapshots: the graph's devices in graph order, then the firmware's devices (SeaBIOS: CMOS,
  // fw_cfg); the vCPUs; and the VM's own state (guest clock, in-kernel irqchip) through the Vm.
  std::optional<DebugAccess> debug_access() override {
    DebugAccess access;
    access.vm = m_vm.get();
    access.memory = &m_memory;
    for (auto& vcpu : m_vcpus) access.vcpus.push_back(vcpu.get());
    return access;
  }

  std::optional<SnapshotAccess> snapshot_access() override {
    SnapshotAccess access;
    access.parts = m_parts;
    access.vm = m_vm.get();
    access.memory = &m_memory;
    for (auto& vcpu : m_vcpus) access.vcpus.push_back(vcpu.get());
    return access;
  }

  base::GuestMemory m_memory;
  PowerController m_power;
  StatsRegistry* m_stats = nullptr;  // the launcher's, for query-stats; may be null
  DebugExitHook m_on_debug_exit;     // the gdb stub's, when one is attached
  std::vector<SnapshotPart> m_parts;
  std::vector<std::shared_ptr<DeviceState>> m_part_states;  // parts that are no Device (kept alive)
  GsiRouter m_router;
  std::shared_ptr<MsiRouter> m_msi = std::make_shared<MsiRouter>();
  std::shared_ptr<DirectRouter> m_direct = std::make_shared<DirectRouter>();
  Bus m_bus;
  X86VmOps m_ops{m_bus};  // declared before m_vm: the accelerator's VmOps outlive the Vm
  std::vector<std::shared_ptr<Device>> m_devices;
  std::shared_ptr<AcpiPowerButton> m_button;  // pc's power button
  std::shared_ptr<I8042> m_i8042;             // microvm's Ctrl-Alt-Del (no PM block)
  std::unique_ptr<accel::Vm> m_vm;
  std::vector<std::unique_ptr<accel::Vcpu>> m_vcpus;
};

std::string hex(uint64_t v) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%llx", (unsigned long long)v);
  return text;
}

base::ErrorOr<std::unique_ptr<Machine>> build_x86(const graph::Graph& graph, MachineContext& context,
                                                  bool pc) {
  const graph::Machine& spec = graph.machine;
  const std::string type = "x86_64/" + spec.type;
  if (!context.accelerator) return base::fail(base::Error(type + ": no accelerator was chosen"));
  if (spec.cpu.count == 0) return base::fail(base::Error(type + ": cpu.count must be at least 1"));
  if (spec.ram_size < 4 * MiB) return base::fail(base::Error(type + ": at least 4 MiB of RAM is needed"));
  // pc with SeaBIOS boots from its disks; otherwise the kernel is booted directly.
  const bool seabios = pc && graph.boot.firmware == "seabios";
  if (seabios && !graph.boot.kernel.empty())
    return base::fail(base::Error(type + ": boot.kernel with firmware \"seabios\" is not supported yet "
                                         "(SeaBIOS boots the disks in bootindex order)"));
  if (!seabios && graph.boot.kernel.empty())
    return base::fail(
        base::Error(type + ": boot.kernel is required (direct kernel boot: bzImage, vmlinux or PVH ELF)"));
  auto log = [&](const std::string& text) {
    if (context.log)
      context.log(text);
    else
      std::fprintf(stderr, "vmlaunch: %s\n", text.c_str());
  };
  if (!seabios && !graph.boot.firmware.empty() && graph.boot.firmware != "none")
    log(type + ": boot.firmware \"" + graph.boot.firmware + "\" is ignored; the kernel is booted directly");

  auto machine = std::make_unique<X86Machine>();
  machine->m_stats = context.stats;
  machine->m_on_debug_exit = context.on_debug_exit;
  const uint64_t low = std::min<uint64_t>(spec.ram_size, 3 * GiB);
  // vhost-user backends (virtiofsd) map guest RAM themselves: then it lives in a shareable memfd.
  for (const graph::Device& device : graph.devices)
    if (device.driver.rfind("vhost-user-", 0) == 0) machine->m_memory.set_shareable(true);
  TRY(machine->m_memory.add_region(0, low));
  if (spec.ram_size > low) TRY(machine->m_memory.add_region(4 * GiB, spec.ram_size - low));
  if (seabios) {
    const std::string path = TRY(find_seabios());
    std::vector<uint8_t> image = TRY(hw::boot::read_file(path));
    auto placed = place_seabios(machine->m_memory, image);
    if (!placed.ok()) return base::fail(placed.error().with_context(path));
  }

  accel::VmSpec vm_spec;
  vm_spec.arch = spec.arch;
  vm_spec.vcpu_count = spec.cpu.count;
  vm_spec.cpu_model = spec.cpu.model;
  vm_spec.cpu_features = spec.cpu.features;
  vm_spec.topology = {spec.cpu.sockets, spec.cpu.cores, spec.cpu.threads};
  // microvm: the split irqchip and our IOAPIC. It needs no PIT: Linux takes the TSC frequency from
  // kvmclock and, with ARAT and the TSC-deadline timer, uses the LAPIC timer without a PIT check.
  // `machine.pit: true` (older guests) gives microvm the full irqchip, whose PIT and PICs come with
  // KVM's IOAPIC, as pc always has.
  const bool full_irqchip = pc || spec.pit;
  vm_spec.x86_irqchip = full_irqchip ? accel::VmSpec::X86Irqchip::Full : accel::VmSpec::X86Irqchip::Split;
  auto vm = context.accelerator->create_vm(vm_spec, machine->m_memory, machine->m_ops);
  if (!vm.ok()) return base::fail(base::Error("creating the VM: " + vm.error().message));
  machine->m_vm = std::move(vm.value());
  // RAM first: the accelerator creates a full irqchip only afterwards (cheap memory slots on KVM).
  for (const auto& region : machine->m_memory.regions()) {
    auto mapped = machine->m_vm->map_memory(region);
    if (!mapped.ok()) return base::fail(base::Error("mapping guest RAM: " + mapped.error().message));
  }

  std::string cmdline = graph.boot.cmdline;
  // `acpi=off` (a whole word): the guest reads no DSDT, so devices described only there are unseen.
  const bool acpi_off = (" " + cmdline + " ").find(" acpi=off ") != std::string::npos;
  TableInputs tables;
  tables.has_pci = pc;
  for (const graph::MemoryRegion& r : graph.memory_map)
    if (pc && r.kind == graph::MemoryRegion::Kind::PciWindow && r.base + r.size <= (uint64_t{1} << 32) &&
        r.size > tables.pci_mmio_size) {
      tables.pci_mmio_base = r.base;
      tables.pci_mmio_size = r.size;
    }
  tables.has_pic = full_irqchip;
  tables.sleep_port = AcpiSleep::kPort;
  // APIC ids as the accelerator numbers vCPUs; the IOAPIC's id follows from them.
  for (unsigned i = 0; i < spec.cpu.count; ++i)
    tables.apic_ids.push_back(accel::x86_apic_id(vm_spec.topology, i));
  std::shared_ptr<Ioapic> ioapic;
  if (!full_irqchip) {
    ioapic = std::make_shared<Ioapic>("ioapic", ioapic_id(tables));
    ioapic->attach(machine->m_vm.get());
    tables.ioapic_version = Ioapic::kVersion;
    machine->m_ops.m_ioapic = ioapic;
  }
  machine->m_router.attach(machine->m_vm.get(), ioapic);
  machine->m_msi->attach(machine->m_vm.get());
  machine->m_direct->attach(machine->m_vm.get());
  bool ioapic_mapped = false;

  // Every graph device (and firmware device) mapped here becomes a snapshot part by its id.
  auto map = [&](const graph::Device& device, const graph::SlotResource& where,
                 std::shared_ptr<Device> model) -> base::Result<void, base::Error> {
    AddressSpace& space = where.port_io ? machine->m_bus.pio() : machine->m_bus.mmio();
    auto inserted = space.insert(where.base, where.size, model);
    if (!inserted.ok()) return base::fail(device_error(device, inserted.error().message()));
    if (!device.id.empty())
      machine->m_parts.push_back({device.id, device.driver, dynamic_cast<DeviceState*>(model.get())});
    machine->m_devices.push_back(std::move(model));
    return {};
  };
  auto stateless_part = [&](const graph::Device& device, std::shared_ptr<DeviceState> state) {
    machine->m_parts.push_back({device.id, device.driver, state.get()});
    machine->m_part_states.push_back(std::move(state));
  };

  // Providers before the devices on their buses; anything a hand-made graph left off every bus list
  // still gets built, after the rest.
  std::vector<size_t> order = graph.topological_order();
  std::vector<bool> listed(graph.devices.size(), false);
  for (size_t index : order) listed[index] = true;
  for (size_t index = 0; index < graph.devices.size(); ++index)
    if (!listed[index]) order.push_back(index);
  for (size_t index : order) {
    const graph::Device& device = graph.devices[index];
    const graph::SlotResource* region = device.region ? &*device.region : nullptr;
    const graph::SlotResource* slot = device.address.resource ? &*device.address.resource : nullptr;
    std::shared_ptr<IrqLine> irq =
        device.irq ? std::make_shared<GsiLine>(machine->m_router, *device.irq) : nullptr;
    if (device.irq && *device.irq >= 24)
      return base::fail(
          device_error(device, "interrupt " + std::to_string(*device.irq) + " is not an IOAPIC pin"));

    if (device.driver == "ioapic" && ioapic && region) {
      if (region->size < Ioapic::kSize || region->port_io)
        return base::fail(device_error(device, "needs a 4 KiB MMIO region"));
      TRY(map(device, *region, ioapic));
      ioapic_mapped = true;
    } else if (device.driver == "ioapic" || device.driver == "lapic") {
      // In the accelerator (full irqchip: KVM's IOAPIC; the LAPICs always), saved with it.
      stateless_part(device, std::make_shared<InAcceleratorState>(device.id));
      continue;
    } else if (device.driver == "i8042" && region) {
      if (region->base != 0x60 || region->size < 5 || !region->port_io)
        return base::fail(device_error(device, "needs ports 0x60-0x64"));
      machine->m_i8042 = std::make_shared<I8042>(machine->m_power, irq);
      TRY(map(device, *region, machine->m_i8042));
      tables.i8042 = true;
      if (device.irq) tables.keyboard_irq = static_cast<uint8_t>(*device.irq);
    } else if (device.driver == "acpi-power-button") {
      if (!device.irq) return base::fail(device_error(device, "needs an interrupt (the GED's)"));
      machine->m_button = std::make_shared<AcpiPowerButton>(irq);
      machine->m_parts.push_back({device.id, device.driver, machine->m_button.get()});
      tables.power_button_irq = static_cast<uint8_t>(*device.irq);
    } else if (device.driver == "vmgenid") {
      // SeaBIOS writes its own ACPI tables, without VGEN; acpi=off reads none.
      if (seabios)
        return base::fail(device_error(device,
                                       "the guest finds vmgenid in the DSDT vmlaunch writes, and "
                                       "boot.firmware \"seabios\" writes its own: boot the kernel "
                                       "directly or remove the device"));
      if (acpi_off)
        log(device.id + ": the kernel command line says acpi=off, so the guest never sees vmgenid");
      if (!device.irq) return base::fail(device_error(device, "needs an interrupt (of the GED)"));
      if (tables.vmgenid) return base::fail(device_error(device, "a machine has one VM generation ID"));
      std::shared_ptr<backends::RngBackend> entropy;
      if (const graph::BackendRef* ref = device.backend("rng")) {
        entropy = context.backends ? context.backends->rng(ref->name) : nullptr;
        if (!entropy)
          return base::fail(device_error(device, "rng backend \"" + ref->name + "\" was not created"));
      } else {
        entropy = context.backends ? context.backends->host_entropy() : nullptr;
        if (!entropy) return base::fail(device_error(device, "no rng backend and no host entropy was given"));
      }
      auto genid = std::make_shared<VmGenId>(machine->m_memory, std::move(entropy), irq);
      auto started = genid->start();
      if (!started.ok()) return base::fail(device_error(device, started.error().message));
      stateless_part(device, genid);
      tables.vmgenid = TableInputs::VmGenId{VmGenId::kAddress, static_cast<uint8_t>(*device.irq)};
    } else if (device.driver == "pvpanic-isa" && region) {
      if (!region->port_io || region->base > 0xffff)
        return base::fail(device_error(device, "needs an I/O port"));
      PowerController* power = &machine->m_power;
      auto on_panic = [power, hook = context.on_guest_panic] {
        if (!hook || !hook()) power->panic();
      };
      TRY(map(device, *region, std::make_shared<PvPanicIsa>(on_panic)));
      tables.pvpanic_port = static_cast<uint16_t>(region->base);
    } else if (device.driver == "ns16550") {
      if (!slot || !slot->port_io) return base::fail(device_error(device, "needs an ISA port slot on x86"));
      std::shared_ptr<backends::CharBackend> chardev;
      if (const graph::BackendRef* ref = device.backend("chardev")) {
        chardev = context.backends ? context.backends->chardev(ref->name) : nullptr;
        if (!chardev)
          return base::fail(device_error(device, "chardev backend \"" + ref->name + "\" was not created"));
      }
      auto uart = std::make_shared<Ns16550>(device.id, 1, irq, chardev);
      Ns16550::add_stats(context.stats, device.id, uart);
      TRY(map(device, *slot, uart));
      if (device.irq && *device.irq < 16)
        tables.serial_ports.push_back({static_cast<uint16_t>(slot->base), static_cast<uint8_t>(*device.irq)});
    } else if (const DeviceModelFactory* factory = find_device_model(device.driver)) {
      if (!context.backends) return base::fail(device_error(device, "no backends were given to the machine"));
      // MSI only on pc: its PCI functions may use MSI-X through the in-kernel LAPICs.
      DeviceEnv env{graph,
                    device,
                    machine->m_memory,
                    machine->m_bus,
                    irq,
                    *context.backends,
                    machine->m_power,
                    pc ? machine->m_msi : nullptr};
      env.stats = context.stats;
      if (pc) env.direct = machine->m_direct;
      auto model = (*factory)(env);
      if (!model.ok()) return base::fail(device_error(device, model.error().message));
      const graph::SlotResource* where = slot ? slot : region;
      if (model.value() && where)
        TRY(map(device, *where, model.value()));
      else if (model.value())
        machine->m_devices.push_back(model.value());
      if (!model.value() || !where)  // mapped itself (a PCI function) or unmapped: its own state, if any
        machine->m_parts.push_back(
            {device.id, device.driver,
             model.value() ? dynamic_cast<DeviceState*>(model.value().get()) : nullptr});
      const graph::Bus* bus = graph.find_bus(device.bus);
      if (bus && bus->kind == graph::BusKind::VirtioMmio && slot && device.irq) {
        // Linux finds a transport in the DSDT (LNRO0005) or on the command line, and takes both when
        // it is given both (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, with virtio_mmio built in or loaded by
        // a modprobe that passes the command line's module options): the same registers registered
        // twice, the second probe failing with EBUSY. So, as QEMU's microvm with ACPI: the DSDT alone
        // where it can describe the transport (an ISA IRQ, at most 256 of them), the command line
        // where it cannot or where the guest is told not to read ACPI.
        const bool in_dsdt = *device.irq < 16 && tables.virtio_mmio.size() < kMaxDsdtVirtioMmio;
        if (in_dsdt)
          tables.virtio_mmio.push_back(
              {slot->base, static_cast<uint32_t>(slot->size), static_cast<uint8_t>(*device.irq)});
        if (!in_dsdt || acpi_off)
          cmdline += " virtio_mmio.device=" + std::to_string(slot->size) + "@" + hex(slot->base) + ":" +
                     std::to_string(*device.irq);
      }
      // MP table INTx entries cover the root bus; guests swizzle through bridges themselves.
      if (bus && bus->kind == graph::BusKind::Pci && bus->provided_by.empty() && device.irq &&
          device.address.kind == graph::Address::Kind::Pci && device.address.function == 0) {
        tables.pci_irqs.push_back(
            {static_cast<uint8_t>(device.address.slot), 1, static_cast<uint8_t>(*device.irq)});
      }
    } else if (device.builtin && device.driver == "pci-host-bridge") {
      return base::fail(device_error(device, "this build has no PCI host model (link //hw/pci:models)"));
    } else {
      return base::fail(device_error(device, "not supported on " + type + " by this build"));
    }
  }
  if (ioapic && !ioapic_mapped)
    return base::fail(base::Error(type + ": the graph has no ioapic device, and interrupts need one"));
  TRY(map(graph::Device{}, graph::SlotResource{DebugExit::kPort, 2, std::nullopt, true},
          std::make_shared<DebugExit>(machine->m_power)));
  TRY(map(graph::Device{}, graph::SlotResource{AcpiSleep::kPort, 2, std::nullopt, true},
          std::make_shared<AcpiSleep>(machine->m_power)));
  TRY(hw::pci::finish(machine->m_bus, graph));

  if (seabios) {
    auto cmos = std::make_shared<Cmos>();
    cmos->set_memory(low, spec.ram_size - low);
    cmos->set_cpus(spec.cpu.count);
    TRY(map(graph::Device{}, graph::SlotResource{Cmos::kPort, Cmos::kSize, std::nullopt, true}, cmos));
    std::shared_ptr<FwCfg> fw_cfg = TRY(seabios_fw_cfg(graph, low, spec.ram_size - low));
    TRY(map(graph::Device{}, graph::SlotResource{FwCfg::kPort, FwCfg::kSize, std::nullopt, true}, fw_cfg));
    // Not graph devices: parts by their own names (no graph id can clash: ids are the config's).
    machine->m_parts.push_back({"firmware.cmos", "cmos", cmos.get()});
    machine->m_parts.push_back({"firmware.fw_cfg", "fw_cfg", fw_cfg.get()});
    // Every vCPU stays at its reset state: the BSP at the reset vector (CS 0xF000 based at 0xFFFF0000,
    // IP 0xFFF0, inside the image), the others waiting for SeaBIOS's INIT/SIPI.
    for (unsigned i = 0; i < spec.cpu.count; ++i) {
      auto vcpu = machine->m_vm->create_vcpu(i);
      if (!vcpu.ok())
        return base::fail(base::Error("creating vCPU " + std::to_string(i) + ": " + vcpu.error().message));
      machine->m_vcpus.push_back(std::move(vcpu.value()));
    }
    return std::unique_ptr<Machine>(std::move(machine));
  }

  // Boot images and tables.
  std::vector<uint8_t> kernel_bytes = TRY(hw::boot::read_file(graph.boot.kernel));
  auto kernel = load_kernel(machine->m_memory, kernel_bytes);
  if (!kernel.ok()) return base::fail(kernel.error().with_context("boot.kernel " + graph.boot.kernel));
  BootInputs inputs;
  inputs.kernel = &kernel.value();
  inputs.bzimage = kernel_bytes;
  inputs.cmdline = cmdline;
  if (!graph.boot.initrd.empty()) {
    std::vector<uint8_t> initrd = TRY(hw::boot::read_file(graph.boot.initrd));
    inputs.initrd_address = TRY(place_initrd(machine->m_memory, kernel.value(), initrd.size()));
    inputs.initrd_size = initrd.size();
    if (!machine->m_memory.write(inputs.initrd_address, initrd))
      return base::fail(base::Error("boot.initrd does not fit in RAM"));
  }
  TRY(write_mp_table(machine->m_memory, kEbdaStart, tables));
  inputs.rsdp_address = TRY(write_acpi_tables(machine->m_memory, kAcpiStart, tables));
  accel::X86BootState state = TRY(prepare_boot(machine->m_memory, inputs));

  for (unsigned i = 0; i < spec.cpu.count; ++i) {
    auto vcpu = machine->m_vm->create_vcpu(i);
    if (!vcpu.ok())
      return base::fail(base::Error("creating vCPU " + std::to_string(i) + ": " + vcpu.error().message));
    // Application processors wait for the guest's INIT/SIPI in the accelerator's LAPIC.
    if (i == 0) {
      auto set = vcpu.value()->set_boot_state(state);
      if (!set.ok()) return base::fail(base::Error("vCPU 0 boot state: " + set.error().message));
    }
    machine->m_vcpus.push_back(std::move(vcpu.value()));
  }
  return std::unique_ptr<Machine>(std::move(machine));
}

base::ErrorOr<std::unique_ptr<Machine>> build_microvm(const graph::Graph& graph, MachineContext& context) {
  return build_x86(graph, context, false);
}
base::ErrorOr<std::unique_ptr<Machine>> build_pc(const graph::Graph& graph, MachineContext& context) {
  return build_x86(graph, context, true);
}

}  // namespace

HW_REGISTER_MACHINE("x86_64/microvm", build_microvm);
HW_REGISTER_MACHINE("x86_64/pc", build_pc);

}  // namespace hw::x86
