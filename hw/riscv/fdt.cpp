#include "hw/riscv/fdt.h"

#include <algorithm>
#include <cstdio>

extern "C" {
#include <libfdt.h>
}

namespace hw::riscv {
namespace {

std::string hex(uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "%llx", (unsigned long long)value);
  return text;
}

// Collects libfdt's first error so the builder code stays linear.
class Writer {
 public:
  explicit Writer(size_t capacity) : m_buffer(capacity) { check(fdt_create(m_buffer.data(), (int)capacity)); }

  void begin(const std::string& name) { check(fdt_begin_node(m_buffer.data(), name.c_str())); }
  void end() { check(fdt_end_node(m_buffer.data())); }
  void prop(const char* name) { check(fdt_property(m_buffer.data(), name, nullptr, 0)); }
  void prop_u32(const char* name, uint32_t value) { check(fdt_property_u32(m_buffer.data(), name, value)); }
  void prop_u64(const char* name, uint64_t value) { check(fdt_property_u64(m_buffer.data(), name, value)); }
  void prop_string(const char* name, const std::string& value) {
    check(fdt_property_string(m_buffer.data(), name, value.c_str()));
  }
  // A string list ("sifive,test1\0sifive,test0\0syscon").
  void prop_strings(const char* name, const std::vector<std::string>& values) {
    std::string joined;
    for (const auto& v : values) joined.append(v).push_back('\0');
    check(fdt_property(m_buffer.data(), name, joined.data(), (int)joined.size()));
  }
  void prop_cells(const char* name, const std::vector<uint32_t>& cells) {
    std::vector<fdt32_t> be;
    for (uint32_t c : cells) be.push_back(cpu_to_fdt32(c));
    check(fdt_property(m_buffer.data(), name, be.data(), (int)(be.size() * sizeof(fdt32_t))));
  }
  void prop_bytes(const char* name, const std::vector<uint8_t>& bytes) {
    check(fdt_property(m_buffer.data(), name, bytes.data(), (int)bytes.size()));
  }
  void reg(FdtRange range) {
    prop_cells("reg", {uint32_t(range.base >> 32), uint32_t(range.base), uint32_t(range.size >> 32),
                       uint32_t(range.size)});
  }

  base::ErrorOr<std::vector<uint8_t>> finish() {
    check(fdt_finish(m_buffer.data()));
    if (m_error != 0)
      return base::fail(base::Error(std::string("building the device tree: ") + fdt_strerror(m_error)));
    m_buffer.resize(fdt_totalsize(m_buffer.data()));
    return std::move(m_buffer);
  }
  void start() {
    check(fdt_finish_reservemap(m_buffer.data()));
    begin("");
  }

 private:
  void check(int rc) {
    if (rc < 0 && m_error == 0) m_error = rc;
  }
  std::vector<uint8_t> m_buffer;
  int m_error = 0;
};

}  // namespace

std::string uart_node_path(const FdtLayout& layout) {
  if (layout.uarts.empty()) return {};
  return "/soc/serial@" + hex(layout.uarts.front().reg.base);
}

base::ErrorOr<std::vector<uint8_t>> build_fdt(const FdtLayout& layout) {
  if (layout.hart_count == 0) return base::fail(base::Error("building the device tree: no harts"));
  Writer w(64 * 1024 + layout.bootargs.size() + 256 * layout.hart_count);
  uint32_t next_phandle = 1;
  std::vector<uint32_t> cpu_phandle(layout.hart_count), intc_phandle(layout.hart_count);
  for (unsigned h = 0; h < layout.hart_count; ++h) {
    cpu_phandle[h] = next_phandle++;
    intc_phandle[h] = next_phandle++;
  }
  const uint32_t plic_phandle = next_phandle++;
  const uint32_t syscon_phandle = next_phandle++;
  const uint32_t gpio_phandle = next_phandle++;

  w.start();
  w.prop_u32("#address-cells", 2);
  w.prop_u32("#size-cells", 2);
  w.prop_string("compatible", "riscv-virtio");
  w.prop_string("model", "riscv-virtio,vmlaunch");

  w.begin("chosen");
  if (!layout.bootargs.empty()) w.prop_string("bootargs", layout.bootargs);
  if (!layout.uarts.empty()) w.prop_string("stdout-path", uart_node_path(layout));
  if (layout.initrd) {
    w.prop_u64("linux,initrd-start", layout.initrd->base);
    w.prop_u64("linux,initrd-end", layout.initrd->base + layout.initrd->size);
  }
  if (!layout.rng_seed.empty()) w.prop_bytes("rng-seed", layout.rng_seed);
  w.end();

  w.begin("poweroff");
  w.prop_u32("value", 0x5555);
  w.prop_u32("offset", 0);
  w.prop_u32("regmap", syscon_phandle);
  w.prop_string("compatible", "syscon-poweroff");
  w.end();
  w.begin("reboot");
  w.prop_u32("value", 0x7777);
  w.prop_u32("offset", 0);
  w.prop_u32("regmap", syscon_phandle);
  w.prop_string("compatible", "syscon-reboot");
  w.end();

  if (layout.power_gpio) {
    // Linux's gpio-keys: pin 0 high = KEY_POWER pressed (both edges interrupt; 5 ms debounce).
    w.begin("gpio-keys");
    w.prop_string("compatible", "gpio-keys");
    w.begin("power");
    w.prop_string("label", "power");
    w.prop_u32("linux,code", 116);                // KEY_POWER
    w.prop_cells("gpios", {gpio_phandle, 0, 0});  // pin 0, GPIO_ACTIVE_HIGH
    w.end();
    w.end();
  }

  for (const FdtRange& ram : layout.memory) {
    w.begin("memory@" + hex(ram.base));
    w.prop_string("device_type", "memory");
    w.reg(ram);
    w.end();
  }

  std::string isa = layout.isa;
  for (const auto& ext : layout.isa_extensions) isa += "_" + ext;
  std::vector<std::string> extensions;  // riscv,isa-extensions: single letters, then the rest
  for (char letter : layout.isa.substr(layout.isa.rfind("rv64", 0) == 0 ? 4 : 0))
    extensions.emplace_back(1, letter);
  extensions.insert(extensions.end(), layout.isa_extensions.begin(), layout.isa_extensions.end());

  w.begin("cpus");
  w.prop_u32("#address-cells", 1);
  w.prop_u32("#size-cells", 0);
  w.prop_u32("timebase-frequency", static_cast<uint32_t>(layout.timebase_frequency));
  for (unsigned h = 0; h < layout.hart_count; ++h) {
    w.begin("cpu@" + hex(h));
    w.prop_u32("phandle", cpu_phandle[h]);
    w.prop_string("device_type", "cpu");
    w.prop_u32("reg", h);
    w.prop_string("status", "okay");
    w.prop_string("compatible", "riscv");
    w.prop_string("riscv,isa", isa);
    w.prop_string("riscv,isa-base", "rv64i");
    w.prop_strings("riscv,isa-extensions", extensions);
    w.prop_string("mmu-type", layout.mmu_type);
    w.begin("interrupt-controller");
    w.prop_u32("#interrupt-cells", 1);
    w.prop("interrupt-controller");
    w.prop_string("compatible", "riscv,cpu-intc");
    w.prop_u32("phandle", intc_phandle[h]);
    w.end();
    w.end();
  }
  // cpu-map after the device tree binding (Documentation/devicetree/bindings/cpu/cpu-topology.txt):
  // socketN/cluster0/coreM[/threadK]; Linux 6.1 reports socketN as physical_package_id (a bare
  // clusterN would all be package 0). Sockets without harts (count below the topology's room) are
  // left out.
  w.begin("cpu-map");
  unsigned sockets = std::max(1u, layout.sockets), cores = std::max(1u, layout.cores_per_socket),
           threads = std::max(1u, layout.threads_per_core);
  if (sockets * cores * threads < layout.hart_count) {  // no room for every hart: one flat cluster
    sockets = threads = 1;
    cores = layout.hart_count;
  }
  for (unsigned socket = 0; socket < sockets; ++socket) {
    const unsigned first = socket * cores * threads;
    if (first >= layout.hart_count) break;
    w.begin("socket" + std::to_string(socket));
    w.begin("cluster0");
    for (unsigned core = 0; core < cores && first + core * threads < layout.hart_count; ++core) {
      w.begin("core" + std::to_string(core));
      const unsigned hart = first + core * threads;
      if (threads == 1) {
        w.prop_u32("cpu", cpu_phandle[hart]);
      } else {
        for (unsigned thread = 0; thread < threads && hart + thread < layout.hart_count; ++thread) {
          w.begin("thread" + std::to_string(thread));
          w.prop_u32("cpu", cpu_phandle[hart + thread]);
          w.end();
        }
      }
      w.end();
    }
    w.end();  // cluster0
    w.end();  // socket
  }
  w.end();
  w.end();  // cpus

  w.begin("soc");
  w.prop_u32("#address-cells", 2);
  w.prop_u32("#size-cells", 2);
  w.prop_string("compatible", "simple-bus");
  w.prop("ranges");

  w.begin("test@" + hex(layout.syscon.base));
  w.prop_u32("phandle", syscon_phandle);
  w.reg(layout.syscon);
  w.prop_strings("compatible", {"sifive,test1", "sifive,test0", "syscon"});
  w.end();

  if (layout.power_gpio) {
    w.begin("gpio@" + hex(layout.power_gpio->reg.base));
    w.prop_u32("phandle", gpio_phandle);
    w.prop_u32("interrupt-parent", plic_phandle);
    w.prop_cells("interrupts", {layout.power_gpio->irq});  // one line per pin: Linux counts pins by them
    w.reg(layout.power_gpio->reg);
    w.prop("gpio-controller");
    w.prop_u32("#gpio-cells", 2);
    w.prop("interrupt-controller");
    w.prop_u32("#interrupt-cells", 2);
    w.prop_strings("compatible", {"sifive,fu540-c000-gpio", "sifive,gpio0"});
    w.end();
  }

  if (layout.pvpanic) {
    w.begin("pvpanic@" + hex(layout.pvpanic->base));
    w.reg(*layout.pvpanic);
    w.prop_string("compatible", "qemu,pvpanic-mmio");
    w.end();
  }

  for (const auto& uart : layout.uarts) {
    w.begin("serial@" + hex(uart.reg.base));
    w.prop_u32("interrupts", uart.irq);
    w.prop_u32("interrupt-parent", plic_phandle);
    w.prop_u32("clock-frequency", layout.uart_clock);
    w.reg(uart.reg);
    w.prop_string("compatible", "ns16550a");
    w.end();
  }

  if (layout.pci) {
    const auto& pci = *layout.pci;
    w.begin("pci@" + hex(pci.ecam.base));
    // INTx of slot s, pin p (1..4) -> intx_irqs[(s + p - 1) % 4]; the mask keeps 2 slot bits, as QEMU.
    std::vector<uint32_t> map;
    if (pci.intx_irqs.size() == 4) {
      for (uint32_t slot = 0; slot < 4; ++slot)
        for (uint32_t pin = 1; pin <= 4; ++pin) {
          map.insert(map.end(), {slot << 11, 0, 0, pin, plic_phandle, pci.intx_irqs[(slot + pin - 1) % 4]});
        }
      w.prop_cells("interrupt-map-mask", {0x1800, 0, 0, 7});
      w.prop_cells("interrupt-map", map);
    }
    std::vector<uint32_t> ranges = {0x01000000,
                                    0,
                                    0,
                                    uint32_t(pci.pio.base >> 32),
                                    uint32_t(pci.pio.base),
                                    uint32_t(pci.pio.size >> 32),
                                    uint32_t(pci.pio.size)};
    ranges.insert(ranges.end(), {0x02000000, uint32_t(pci.mmio32.base >> 32), uint32_t(pci.mmio32.base),
                                 uint32_t(pci.mmio32.base >> 32), uint32_t(pci.mmio32.base),
                                 uint32_t(pci.mmio32.size >> 32), uint32_t(pci.mmio32.size)});
    w.prop_cells("ranges", ranges);
    w.reg(pci.ecam);
    w.prop("dma-coherent");
    uint32_t last_bus = pci.ecam.size >= (256u << 20) ? 0xff : uint32_t(pci.ecam.size >> 20) - 1;
    w.prop_cells("bus-range", {0, last_bus});
    w.prop_u32("linux,pci-domain", 0);
    w.prop_string("device_type", "pci");
    w.prop_string("compatible", "pci-host-ecam-generic");
    w.prop_u32("#size-cells", 2);
    w.prop_u32("#interrupt-cells", 1);
    w.prop_u32("#address-cells", 3);
    w.end();
  }

  for (const auto& virtio : layout.virtio_mmio) {
    w.begin("virtio_mmio@" + hex(virtio.reg.base));
    w.prop_u32("interrupts", virtio.irq);
    w.prop_u32("interrupt-parent", plic_phandle);
    w.reg(virtio.reg);
    w.prop_string("compatible", "virtio,mmio");
    w.end();
  }

  w.begin("plic@" + hex(layout.plic.base));
  w.prop_u32("phandle", plic_phandle);
  w.prop_u32("riscv,ndev", layout.plic_ndev);
  w.reg(layout.plic);
  std::vector<uint32_t> plic_irqs;  // M-mode then S-mode context of each hart
  for (unsigned h = 0; h < layout.hart_count; ++h)
    plic_irqs.insert(plic_irqs.end(), {intc_phandle[h], 11, intc_phandle[h], 9});
  w.prop_cells("interrupts-extended", plic_irqs);
  w.prop("interrupt-controller");
  w.prop_strings("compatible", {"sifive,plic-1.0.0", "riscv,plic0"});
  w.prop_u32("#address-cells", 0);
  w.prop_u32("#interrupt-cells", 1);
  w.end();

  w.begin("clint@" + hex(layout.clint.base));
  std::vector<uint32_t> clint_irqs;  // MSIP then MTIP of each hart
  for (unsigned h = 0; h < layout.hart_count; ++h)
    clint_irqs.insert(clint_irqs.end(), {intc_phandle[h], 3, intc_phandle[h], 7});
  w.prop_cells("interrupts-extended", clint_irqs);
  w.reg(layout.clint);
  w.prop_strings("compatible", {"sifive,clint0", "riscv,clint0"});
  w.end();

  w.end();  // soc
  w.end();  // root
  return w.finish();
}

base::ErrorOr<std::vector<uint8_t>> patch_user_fdt(std::vector<uint8_t> blob, const std::string& bootargs,
                                                   const std::optional<FdtRange>& initrd) {
  // fdt_check_full validates the header against the buffer's size and walks the whole structure
  // block, so libfdt's later accesses stay inside `blob`.
  if (blob.size() < sizeof(fdt_header) || fdt_check_full(blob.data(), blob.size()) != 0)
    return base::fail(base::Error("not a valid flattened device tree (dtb)"));
  // Room for the properties we add or replace.
  const size_t room = blob.size() + bootargs.size() + 1024;
  std::vector<uint8_t> out(room);
  if (fdt_open_into(blob.data(), out.data(), static_cast<int>(room)) != 0)
    return base::fail(base::Error("cannot open the device tree for editing"));
  void* fdt = out.data();
  int chosen = fdt_path_offset(fdt, "/chosen");
  if (chosen < 0) chosen = fdt_add_subnode(fdt, 0, "chosen");
  if (chosen < 0) return base::fail(base::Error("cannot add /chosen to the device tree"));
  if (!bootargs.empty() && fdt_setprop_string(fdt, chosen, "bootargs", bootargs.c_str()) != 0)
    return base::fail(base::Error("cannot set /chosen/bootargs in the device tree"));
  if (initrd && (fdt_setprop_u64(fdt, chosen, "linux,initrd-start", initrd->base) != 0 ||
                 fdt_setprop_u64(fdt, chosen, "linux,initrd-end", initrd->base + initrd->size) != 0))
    return base::fail(base::Error("cannot set the initrd range in the device tree"));
  if (fdt_pack(fdt) != 0) return base::fail(base::Error("cannot pack the device tree"));
  out.resize(fdt_totalsize(fdt));
  return out;
}

}  // namespace hw::riscv
