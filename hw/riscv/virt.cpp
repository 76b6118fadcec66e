#include "hw/riscv/virt.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>

#include "accel/accelerator.h"
#include "base/field_use.h"
#include "graph/graph.h"
#include "hw/boot/elf.h"
#include "hw/boot/image.h"
#include "hw/boot/kernel_check.h"
#include "hw/device_model.h"
#include "hw/machine.h"
#include "hw/pci/models.h"
#include "hw/riscv/clint.h"
#include "hw/riscv/htif.h"
#include "hw/riscv/plic.h"
#include "hw/riscv/pvpanic_mmio.h"
#include "hw/riscv/sifive_gpio.h"
#include "hw/riscv/sifive_test.h"
#include "hw/serial/ns16550.h"
#include "security/thread_role.h"

// What the riscv64 virt builder honours beyond the graph's devices.
VML_CONSUMES("boot.firmware");
VML_CONSUMES("boot.kernel");
VML_CONSUMES("boot.initrd");
VML_CONSUMES("boot.cmdline");
VML_CONSUMES("boot.dtb");
VML_CONSUMES("cpu.count");
VML_CONSUMES("cpu.model");
VML_CONSUMES("cpu.features");
VML_CONSUMES("cpu.topology");  // the device tree's cpu-map
VML_CONSUMES("machine.memory");
VML_CONSUMES("device-type:ns16550");  // built here, not by a device model

namespace hw::riscv {
namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr uint64_t kPage = 4 * KiB;
constexpr uint32_t kPlicSources = 97;  // sources 1..96, riscv,ndev = 96 as QEMU 7.2

uint64_t align_down(uint64_t v, uint64_t a) {
  return v & ~(a - 1);
}
uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

std::string hex(uint64_t v) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%llx", (unsigned long long)v);
  return text;
}

// Forwards PLIC/CLINT outputs to the Vm's hart inputs. Detached before the Vm is destroyed, so a
// late timer or backend thread can never reach a dead Vm.
class HartIrqRouter {
 public:
  void attach(accel::Vm* vm) {
    std::unique_lock guard(m_lock);
    m_vm = vm;
  }
  void set(unsigned hart, unsigned bit, bool level) {
    std::shared_lock guard(m_lock);
    if (m_vm) (void)m_vm->set_irq_line(hart * 64 + bit, level);
  }

 private:
  std::shared_mutex m_lock;
  accel::Vm* m_vm = nullptr;
};

class VirtMachine final : public Machine {
 public:
  ~VirtMachine() override {
    {
      std::lock_guard guard(m_button_lock);
      m_closing = true;
    }
    m_button_changed.notify_all();
    if (m_button_thread.joinable()) m_button_thread.join();
    m_router.attach(nullptr);
    m_vcpus.clear();
    m_vm.reset();
  }
  RunOutcome run() override { return run_vcpus(m_vcpus, m_power, m_on_debug_exit, m_stats); }
  PowerController& power() override { return m_power; }

  // Harts first, then the clock (no hart sees it stop); the clock first on the way back.
  base::ErrorOr<void> pause() override {
    auto parked = m_vm->pause(std::chrono::seconds(2));
    if (!parked.ok()) return base::fail(base::Error(parked.error().message));
    m_timebase.pause();
    return {};
  }
  base::ErrorOr<void> resume() override {
    m_timebase.resume();
    auto resumed = m_vm->resume();
    if (!resumed.ok()) return base::fail(base::Error(resumed.error().message));
    return {};
  }

  std::optional<SnapshotAccess> snapshot_access() override {
    SnapshotAccess access;
    access.parts = m_parts;
    if (m_htif) access.parts.push_back({"htif", "htif", m_htif.get()});
    access.vm = m_vm.get();
    access.memory = &m_memory;
    access.timebase = &m_timebase;
    for (auto& vcpu : m_vcpus) access.vcpus.push_back(vcpu.get());
    return access;
  }

  std::optional<DebugAccess> debug_access() override {
    DebugAccess access;
    access.vm = m_vm.get();
    access.memory = &m_memory;
    for (auto& vcpu : m_vcpus) access.vcpus.push_back(vcpu.get());
    return access;
  }

  // The button is held down for kButtonHold and then released, as QEMU's gpio-key: long enough for
  // gpio-keys' debounce (5 ms) to see it pressed. A press while it is down changes nothing.
  static constexpr auto kButtonHold = std::chrono::milliseconds(200);
  base::ErrorOr<void> press_power_button() override {
    if (!m_power_gpio) return Machine::press_power_button();
    std::lock_guard guard(m_button_lock);
    if (m_button_down) return {};
    if (m_button_thread.joinable()) m_button_thread.join();  // the previous press's release is done
    m_button_down = true;
    m_power_gpio->set_pin(0, true);
    m_button_thread = std::thread([this] {
      security::ThreadRole role(security::Role::DeviceIo);
      std::unique_lock lock(m_button_lock);
      m_button_changed.wait_for(lock, kButtonHold, [this] { return m_closing; });
      m_power_gpio->set_pin(0, false);
      m_button_down = false;
    });
    return {};
  }

  // Declaration order matters for destruction: devices (in m_bus and m_devices) go after the Vm is
  // detached in the destructor body; memory outlives everything that points into it.
  base::Timebase m_timebase;
  base::GuestMemory m_memory;
  PowerController m_power;
  StatsRegistry* m_stats = nullptr;  // the launcher's, for query-stats; may be null
  HartIrqRouter m_router;
  Bus m_bus;
  std::vector<std::shared_ptr<Device>> m_devices;
  std::vector<SnapshotPart> m_parts;  // the graph's devices in graph order, for snapshots
  std::shared_ptr<Htif> m_htif;
  std::shared_ptr<SifiveGpio> m_power_gpio;
  std::mutex m_button_lock;
  std::condition_variable m_button_changed;
  bool m_button_down = false, m_closing = false;
  std::thread m_button_thread;
  uint64_t m_htif_base = 0, m_htif_size = 0;
  std::unique_ptr<accel::Vm> m_vm;
  std::vector<std::unique_ptr<accel::Vcpu>> m_vcpus;
  DebugExitHook m_on_debug_exit;

  bool write_phys(uint64_t gpa, std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
      if (m_htif && gpa >= m_htif_base && gpa < m_htif_base + m_htif_size) {
        uint64_t n = std::min<uint64_t>(bytes.size(), m_htif_base + m_htif_size - gpa);
        if (!m_htif->load(gpa - m_htif_base, bytes.first(n))) return false;
        gpa += n;
        bytes = bytes.subspan(n);
        continue;
      }
      // The largest prefix inside one RAM region (stopping at the HTIF window).
      uint64_t n = bytes.size();
      if (m_htif && gpa < m_htif_base && gpa + n > m_htif_base) n = m_htif_base - gpa;
      if (!m_memory.write(gpa, bytes.first(n))) return false;
      gpa += n;
      bytes = bytes.subspan(n);
    }
    return true;
  }
};

}  // namespace

base::ErrorOr<BootPlan> plan_boot(uint64_t ram_base, uint64_t ram_size, bool has_firmware,
                                  uint64_t kernel_size, uint64_t initrd_size, uint64_t fdt_size,
                                  uint64_t firmware_fdt_copy) {
  BootPlan plan;
  const uint64_t ram_end = ram_base + ram_size;
  plan.firmware_address = ram_base;
  plan.kernel_address = has_firmware ? ram_base + 2 * MiB : ram_base;
  const uint64_t kernel_end = plan.kernel_address + kernel_size;
  uint64_t top = ram_base + std::min(ram_size, 3 * GiB);
  if (fdt_size + kPage > top - ram_base) return base::fail(base::Error("RAM too small for the device tree"));
  plan.fdt_address = align_down(top - fdt_size, 2 * MiB);
  if (plan.fdt_address < kernel_end) plan.fdt_address = align_down(top - fdt_size, kPage);
  plan.info_address = plan.fdt_address - kPage;
  if (plan.info_address < kernel_end)
    return base::fail(base::Error("the kernel (" + std::to_string(kernel_size) + " bytes at " +
                                  hex(plan.kernel_address) + ") leaves no room in " +
                                  std::to_string(ram_size >> 20) + " MiB of RAM for the device tree"));
  if (initrd_size > 0) {
    plan.initrd_address = align_up(plan.kernel_address + std::min(ram_size / 2, 128 * MiB), kPage);
    if (plan.initrd_address < kernel_end) plan.initrd_address = align_up(kernel_end, kPage);
    // The firmware's own copy of the device tree would overwrite an initrd there: go above it.
    if (firmware_fdt_copy && plan.initrd_address < firmware_fdt_copy + fdt_size &&
        firmware_fdt_copy < plan.initrd_address + initrd_size)
      plan.initrd_address = align_up(firmware_fdt_copy + fdt_size, 2 * MiB);
    if (plan.initrd_address + initrd_size > plan.info_address) {
      // Small RAM: put it as high as it goes, just below the firmware info and device tree.
      if (initrd_size > plan.info_address) return base::fail(base::Error("the initrd does not fit in RAM"));
      plan.initrd_address = align_down(plan.info_address - initrd_size, kPage);
      if (plan.initrd_address < align_up(kernel_end, kPage))
        return base::fail(
            base::Error("kernel and initrd (" + std::to_string((kernel_size + initrd_size) >> 20) +
                        " MiB) do not fit in " + std::to_string(ram_size >> 20) + " MiB of RAM"));
    }
  }
  if (kernel_end > ram_end) return base::fail(base::Error("the kernel does not fit in RAM"));
  return plan;
}

base::Result<void, base::Error> apply_cpu_model(const std::string& model,
                                                const std::vector<std::string>& features, FdtLayout& layout) {
  if (!model.empty() && model != "rv64gc" && model != "rv64imafdc" && model != "max")
    return base::fail(
        base::Error("cpu model \"" + model + "\" is not a riscv64 model this machine knows (rv64gc)"));
  layout.isa = "rv64imafdc";
  layout.isa_extensions = {"zicntr", "zicsr", "zifencei", "sstc"};
  layout.mmu_type = "riscv,sv48";
  for (const std::string& feature : features) {
    if (feature.size() < 2 || (feature[0] != '+' && feature[0] != '-'))
      return base::fail(base::Error("cpu feature \"" + feature + "\" must start with + or -"));
    std::string name = feature.substr(1);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    auto& exts = layout.isa_extensions;
    if (name == "sv48" || name == "sv39") {
      layout.mmu_type = feature[0] == '-' && name == "sv48" ? "riscv,sv39" : "riscv," + name;
      continue;
    }
    auto it = std::find(exts.begin(), exts.end(), name);
    if (feature[0] == '-' && it != exts.end()) exts.erase(it);
    if (feature[0] == '+' && it == exts.end()) exts.push_back(name);
  }
  return {};
}

namespace {

base::ErrorOr<std::unique_ptr<Machine>> build_virt(const graph::Graph& graph, MachineContext& context) {
  const graph::Machine& spec = graph.machine;
  if (!context.accelerator) return base::fail(base::Error("riscv64/virt: no accelerator was chosen"));
  const unsigned harts = spec.cpu.count;
  if (harts == 0) return base::fail(base::Error("riscv64/virt: cpu.count must be at least 1"));
  if (spec.ram_size < 16 * MiB)
    return base::fail(base::Error("riscv64/virt: at least 16 MiB of RAM is needed"));
  const uint64_t ram_base = spec.ram_base ? spec.ram_base : 0x80000000;

  auto machine = std::make_unique<VirtMachine>();
  machine->m_stats = context.stats;
  machine->m_on_debug_exit = context.on_debug_exit;

  // Boot images first: the kernel's symbol table decides whether RAM gets an HTIF hole.
  hw::boot::Firmware firmware = TRY(hw::boot::resolve_firmware(graph.boot.firmware));
  std::vector<uint8_t> firmware_bytes, kernel_bytes, initrd_bytes;
  if (firmware.kind != hw::boot::Firmware::Kind::None)
    firmware_bytes = TRY(hw::boot::read_file(firmware.path));
  std::string kernel_path = !graph.boot.kernel.empty() ? graph.boot.kernel : firmware.payload_path;
  if (!graph.boot.kernel.empty() && !firmware.payload_path.empty())
    return base::fail(
        base::Error("boot: firmware \"u-boot\" brings its own payload; leave boot.kernel empty "
                    "(or use firmware: opensbi with the kernel)"));
  if (!kernel_path.empty()) kernel_bytes = TRY(hw::boot::read_file(kernel_path));
  // Say what is wrong with the kernel file before starting (an empty file, another architecture's
  // kernel, a Linux Image without SBI firmware ran into silence).
  if (!graph.boot.kernel.empty())
    TRY(hw::boot::check_riscv_kernel(kernel_bytes, kernel_path,
                                     firmware.kind != hw::boot::Firmware::Kind::None,
                                     !graph.boot.initrd.empty() || !graph.boot.cmdline.empty()));
  if (!graph.boot.initrd.empty()) initrd_bytes = TRY(hw::boot::read_file(graph.boot.initrd));
  if (firmware.kind == hw::boot::Firmware::Kind::None && kernel_bytes.empty())
    return base::fail(base::Error("boot: nothing to run (set boot.kernel, or boot.firmware: opensbi)"));

  std::optional<hw::boot::ElfFile> kernel_elf;
  if (hw::boot::ElfFile::looks_like_elf(kernel_bytes)) {
    auto parsed = hw::boot::ElfFile::parse(kernel_bytes);
    if (!parsed.ok()) return base::fail(parsed.error().with_context("boot.kernel " + kernel_path));
    kernel_elf = std::move(parsed.value());
  }
  // A bare-metal test given as firmware (`qemu-system-riscv64 -bios test.elf`) talks HTIF too.
  std::optional<hw::boot::ElfFile> firmware_elf;
  if (firmware.kind != hw::boot::Firmware::Kind::None && hw::boot::ElfFile::looks_like_elf(firmware_bytes)) {
    auto parsed = hw::boot::ElfFile::parse(firmware_bytes);
    if (!parsed.ok()) return base::fail(parsed.error().with_context("boot.firmware " + firmware.path));
    firmware_elf = std::move(parsed.value());
  }
  // The program whose tohost/fromhost words get the HTIF window: the kernel's when it has them,
  // else the firmware's.
  const hw::boot::ElfFile* htif_program = nullptr;
  const char* htif_field = "boot.kernel";
  if (kernel_elf && kernel_elf->symbol("tohost")) {
    htif_program = &*kernel_elf;
  } else if (firmware_elf && firmware_elf->symbol("tohost")) {
    htif_program = &*firmware_elf;
    htif_field = "boot.firmware";
  }

  // RAM, minus the HTIF window when the program has one.
  const uint64_t ram_end = ram_base + spec.ram_size;
  // Guest addresses of the HTIF words, when the program defines them inside RAM. Plain values with
  // a flag rather than std::optional: GCC 12 reports its payload as maybe-uninitialized here.
  auto word_in_ram = [&](const char* name, uint64_t& address) {
    if (!htif_program) return false;
    auto symbol = htif_program->symbol(name);
    if (!symbol || *symbol < ram_base || *symbol > ram_end || ram_end - *symbol < 8) return false;
    address = *symbol;
    return true;
  };
  // vhost-user backends (virtiofsd) map guest RAM themselves: then it lives in a shareable memfd.
  for (const graph::Device& device : graph.devices)
    if (device.driver.rfind("vhost-user-", 0) == 0) machine->m_memory.set_shareable(true);
  uint64_t tohost = 0, fromhost = 0;
  if (word_in_ram("tohost", tohost)) {
    uint64_t lo = align_down(tohost, kPage), hi = align_up(tohost + 8, kPage);
    if (word_in_ram("fromhost", fromhost)) {
      lo = std::min(lo, align_down(fromhost, kPage));
      hi = std::max(hi, align_up(fromhost + 8, kPage));
    } else {
      fromhost = tohost + 8;  // no fromhost symbol: acknowledge in the next word (never read)
    }
    if (hi - lo > 16 * kPage)
      return base::fail(base::Error(std::string(htif_field) + ": tohost and fromhost are too far apart"));
    machine->m_htif_base = lo;
    machine->m_htif_size = hi - lo;
    if (lo > ram_base) TRY(machine->m_memory.add_region(ram_base, lo - ram_base));
    if (hi < ram_end) TRY(machine->m_memory.add_region(hi, ram_end - hi));
  } else {
    TRY(machine->m_memory.add_region(ram_base, spec.ram_size));
  }

  accel::VmSpec vm_spec;
  vm_spec.arch = spec.arch;
  vm_spec.vcpu_count = harts;
  vm_spec.cpu_model = spec.cpu.model;
  vm_spec.cpu_features = spec.cpu.features;
  vm_spec.topology = {spec.cpu.sockets, spec.cpu.cores, spec.cpu.threads};
  vm_spec.timebase = &machine->m_timebase;
  if (auto it = graph.accel.settings.find(std::string(context.accelerator->name()));
      it != graph.accel.settings.end())
    vm_spec.accel_options = it->second;
  auto vm = context.accelerator->create_vm(vm_spec, machine->m_memory, machine->m_bus);
  if (!vm.ok()) return base::fail(base::Error("creating the VM: " + vm.error().message));
  machine->m_vm = std::move(vm.value());
  for (const auto& region : machine->m_memory.regions()) {
    auto mapped = machine->m_vm->map_memory(region);
    if (!mapped.ok()) return base::fail(base::Error("mapping guest RAM: " + mapped.error().message));
  }
  machine->m_router.attach(machine->m_vm.get());
  VirtMachine* raw = machine.get();
  HartIrqSink sink = [raw](unsigned hart, unsigned bit, bool level) { raw->m_router.set(hart, bit, level); };

  FdtLayout layout;
  TRY(apply_cpu_model(spec.cpu.model, spec.cpu.features, layout));
  layout.hart_count = harts;
  layout.sockets = spec.cpu.sockets;
  layout.cores_per_socket = spec.cpu.cores;
  layout.threads_per_core = spec.cpu.threads;
  layout.memory = {{ram_base, spec.ram_size}};
  layout.bootargs = graph.boot.cmdline;
  layout.plic_ndev = kPlicSources - 1;
  layout.timebase_frequency = machine->m_timebase.frequency_hz();

  auto map = [&](const graph::Device& device, uint64_t base, uint64_t size,
                 std::shared_ptr<Device> model) -> base::Result<void, base::Error> {
    auto inserted = machine->m_bus.mmio().insert(base, size, model);
    if (!inserted.ok()) return base::fail(device_error(device, inserted.error().message()));
    machine->m_parts.push_back({device.id, device.driver, dynamic_cast<DeviceState*>(model.get())});
    machine->m_devices.push_back(std::move(model));
    return {};
  };

  // Interrupt controllers first: every other device needs its PLIC line.
  auto plic = std::make_shared<Plic>(harts, kPlicSources, sink);
  std::shared_ptr<backends::CharBackend> console;
  for (const graph::Device& device : graph.devices) {
    const graph::SlotResource* region = device.region ? &*device.region : nullptr;
    const graph::SlotResource* slot = device.address.resource ? &*device.address.resource : nullptr;
    std::shared_ptr<IrqLine> irq = device.irq ? plic->source_line(*device.irq) : nullptr;
    if (device.irq && !irq)
      return base::fail(
          device_error(device, "interrupt " + std::to_string(*device.irq) + " is not a PLIC source"));

    if (device.driver == "riscv-plic" && region) {
      TRY(map(device, region->base, region->size, plic));
      layout.plic = {region->base, region->size};
    } else if (device.driver == "riscv-clint" && region) {
      TRY(map(device, region->base, region->size, std::make_shared<Clint>(harts, machine->m_timebase, sink)));
      layout.clint = {region->base, region->size};
    } else if (device.driver == "sifive-test" && region) {
      TRY(map(device, region->base, region->size, std::make_shared<SifiveTest>(machine->m_power)));
      layout.syscon = {region->base, region->size};
    } else if (device.driver == "sifive-gpio" && region) {
      if (!irq) return base::fail(device_error(device, "has no interrupt line"));
      machine->m_power_gpio = std::make_shared<SifiveGpio>(std::vector<std::shared_ptr<IrqLine>>{irq});
      TRY(map(device, region->base, region->size, machine->m_power_gpio));
      layout.power_gpio = FdtLayout::Irq{{region->base, region->size}, *device.irq};
    } else if (device.driver == "pvpanic-mmio" && region) {
      PowerController* power = &machine->m_power;
      auto on_panic = [power, hook = context.on_guest_panic] {
        if (!hook || !hook()) power->panic();
      };
      TRY(map(device, region->base, region->size, std::make_shared<PvPanicMmio>(on_panic)));
      layout.pvpanic = FdtRange{region->base, region->size};
    } else if (device.driver == "ns16550") {
      if (!slot || !device.irq) return base::fail(device_error(device, "has no MMIO slot or interrupt"));
      std::shared_ptr<backends::CharBackend> chardev;
      if (const graph::BackendRef* ref = device.backend("chardev")) {
        chardev = context.backends ? context.backends->chardev(ref->name) : nullptr;
        if (!chardev)
          return base::fail(device_error(device, "chardev backend \"" + ref->name + "\" was not created"));
      }
      if (!console) console = chardev;
      auto uart = std::make_shared<Ns16550>(device.id, 1, irq, chardev);
      Ns16550::add_stats(context.stats, device.id, uart);
      TRY(map(device, slot->base, slot->size, uart));
      layout.uarts.push_back({{slot->base, slot->size}, *device.irq});
    } else if (const DeviceModelFactory* factory = find_device_model(device.driver)) {
      if (!context.backends) return base::fail(device_error(device, "no backends were given to the machine"));
      DeviceEnv env{graph,           device, machine->m_memory, machine->m_bus, irq, *context.backends,
                    machine->m_power};
      env.stats = context.stats;
      auto model = (*factory)(env);
      if (!model.ok()) return base::fail(device_error(device, model.error().message));
      const graph::SlotResource* where = slot ? slot : region;
      if (model.value() && where)
        TRY(map(device, where->base, where->size, model.value()));
      else if (model.value())
        machine->m_devices.push_back(model.value());
      if (!model.value() || !where)  // mapped itself (PCI hosts) or unmapped: no state interface yet
        machine->m_parts.push_back(
            {device.id, device.driver,
             model.value() ? dynamic_cast<DeviceState*>(model.value().get()) : nullptr});
      const graph::Bus* bus = graph.find_bus(device.bus);
      if (bus && bus->kind == graph::BusKind::VirtioMmio && slot && device.irq)
        layout.virtio_mmio.push_back({{slot->base, slot->size}, *device.irq});
      if (device.driver == "gpex-pcihost" && region) {
        FdtLayout::PciHost pci;
        pci.ecam = {region->base, region->size};
        for (const graph::MemoryRegion& r : graph.memory_map) {
          if (r.device != device.id || r.kind != graph::MemoryRegion::Kind::PciWindow) continue;
          if (r.base < 0x10000000)
            pci.pio = {r.base, r.size};
          else
            pci.mmio32 = {r.base, r.size};
        }
        // The root bus's INTx routing: the bus the host provides, or (a machine root bus) the one it sits on.
        std::vector<std::string> buses = device.provides;
        buses.push_back(device.bus);
        for (const std::string& name : buses)
          if (const graph::Bus* pci_bus = graph.find_bus(name); pci_bus && pci.intx_irqs.empty())
            pci.intx_irqs = pci_bus->pci_irqs;
        layout.pci = pci;
      }
    } else if (device.builtin && device.driver == "gpex-pcihost") {
      // No PCI host model is linked in: leave PCI out of the machine and its device tree, unless
      // the config put devices on it.
      for (const std::string& provided : device.provides)
        if (!graph.devices_on(provided).empty())
          return base::fail(
              device_error(device, "PCI devices are configured but this build has no PCIe host model"));
    } else {
      return base::fail(device_error(device, "not supported on riscv64/virt by this build"));
    }
  }

  // PCI: bus numbers and BARs, as firmware would leave them (no-op without a PCI host model).
  TRY(hw::pci::finish(machine->m_bus, graph));

  // HTIF console goes where the serial console goes.
  if (machine->m_htif_size) {
    machine->m_htif = std::make_shared<Htif>(machine->m_htif_base, machine->m_htif_size,
                                             tohost - machine->m_htif_base, fromhost - machine->m_htif_base,
                                             machine->m_power, console, &machine->m_memory);
    auto inserted = machine->m_bus.mmio().insert(machine->m_htif_base, machine->m_htif_size, machine->m_htif);
    if (!inserted.ok()) return base::fail(base::Error("HTIF window: " + inserted.error().message()));
  }

  // Place and load the boot images.
  std::vector<uint8_t> seed(32);
  std::random_device random;
  for (auto& b : seed) b = static_cast<uint8_t>(random());
  layout.rng_seed = seed;
  // The device tree's size depends on the initrd range only by value, so size it once with a
  // placeholder range and build it again with the real one.
  if (!initrd_bytes.empty()) layout.initrd = FdtRange{ram_base, initrd_bytes.size()};
  // boot.dtb replaces the generated tree (QEMU's -dtb); only /chosen is set from the file.
  std::vector<uint8_t> user_dtb;
  const bool has_user_dtb = !graph.boot.dtb.empty();
  if (has_user_dtb) user_dtb = TRY(hw::boot::read_file(graph.boot.dtb));
  auto make_fdt = [&]() -> base::ErrorOr<std::vector<uint8_t>> {
    if (!has_user_dtb) return build_fdt(layout);
    auto patched = patch_user_fdt(user_dtb, layout.bootargs, layout.initrd);
    if (!patched.ok()) return base::fail(patched.error().with_context("boot.dtb " + graph.boot.dtb));
    return patched;
  };
  uint64_t fdt_size = align_up(TRY(make_fdt()).size(), kPage);
  uint64_t raw_kernel_size = kernel_elf ? 0 : kernel_bytes.size();
  uint64_t kernel_extent = raw_kernel_size;
  if (kernel_elf) {
    // Keep the device tree and initrd clear of an ELF kernel's segments.
    uint64_t end = 0;
    for (const auto& s : kernel_elf->segments()) end = std::max(end, s.paddr + s.mem_size);
    uint64_t kernel_base = firmware.kind == hw::boot::Firmware::Kind::None ? ram_base : ram_base + 2 * MiB;
    kernel_extent = end > kernel_base ? end - kernel_base : 0;
  }
  const uint64_t fdt_copy = firmware.kind == hw::boot::Firmware::Kind::Jump ? ram_base + kFwJumpFdtOffset : 0;
  BootPlan plan = TRY(plan_boot(ram_base, spec.ram_size, firmware.kind != hw::boot::Firmware::Kind::None,
                                kernel_extent, initrd_bytes.size(), fdt_size, fdt_copy));
  auto writer = [raw](uint64_t gpa, std::span<const uint8_t> bytes) { return raw->write_phys(gpa, bytes); };

  uint64_t entry = 0, kernel_entry = 0;
  if (!firmware_bytes.empty()) {
    auto loaded =
        hw::boot::load_image(firmware_bytes, plan.firmware_address, writer, "firmware " + firmware.path);
    if (!loaded.ok()) return base::fail(loaded.error());
    entry = loaded->entry;
  }
  if (!kernel_bytes.empty()) {
    auto loaded = hw::boot::load_image(kernel_bytes, plan.kernel_address, writer, "kernel " + kernel_path);
    if (!loaded.ok()) return base::fail(loaded.error());
    kernel_entry = loaded->entry;
    if (firmware_bytes.empty()) entry = kernel_entry;
  }
  if (!initrd_bytes.empty()) {
    if (!writer(plan.initrd_address, initrd_bytes))
      return base::fail(base::Error("initrd does not fit in RAM at " + hex(plan.initrd_address)));
    layout.initrd = FdtRange{plan.initrd_address, initrd_bytes.size()};
  }
  std::vector<uint8_t> fdt = TRY(make_fdt());
  if (!writer(plan.fdt_address, fdt)) return base::fail(base::Error("device tree does not fit in RAM"));
  uint64_t a2 = 0;
  if (firmware.kind == hw::boot::Firmware::Kind::Dynamic) {
    auto info = hw::boot::fw_dynamic_info(kernel_entry ? kernel_entry : plan.kernel_address);
    if (!writer(plan.info_address, info))
      return base::fail(base::Error("fw_dynamic info does not fit in RAM"));
    a2 = plan.info_address;
  }

  for (unsigned hart = 0; hart < harts; ++hart) {
    auto vcpu = machine->m_vm->create_vcpu(hart);
    if (!vcpu.ok())
      return base::fail(base::Error("creating vCPU " + std::to_string(hart) + ": " + vcpu.error().message));
    accel::RiscvBootState state;
    state.pc = entry;
    state.a0 = hart;
    state.a1 = plan.fdt_address;
    state.a2 = a2;
    auto set = vcpu.value()->set_boot_state(state);
    if (!set.ok())
      return base::fail(base::Error("vCPU " + std::to_string(hart) + " boot state: " + set.error().message));
    machine->m_vcpus.push_back(std::move(vcpu.value()));
  }
  return std::unique_ptr<Machine>(std::move(machine));
}

}  // namespace

HW_REGISTER_MACHINE("riscv64/virt", build_virt);

}  // namespace hw::riscv
