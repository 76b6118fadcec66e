#include "hw/riscv/fdt.h"

#include <doctest/doctest.h>

#include <string>

extern "C" {
#include <libfdt.h>
}

namespace {

hw::riscv::FdtLayout sample(unsigned harts = 2) {
  hw::riscv::FdtLayout layout;
  layout.hart_count = harts;
  layout.isa_extensions = {"zicsr", "zifencei", "sstc"};
  layout.memory = {{0x80000000, 256 << 20}};
  layout.bootargs = "console=ttyS0 quiet";
  layout.initrd = hw::riscv::FdtRange{0x88000000, 0x1000};
  layout.uarts = {{{0x10000000, 0x100}, 10}};
  layout.virtio_mmio = {{{0x10001000, 0x1000}, 1}};
  layout.pci = hw::riscv::FdtLayout::PciHost{
      {0x30000000, 0x10000000}, {0x3000000, 0x10000}, {0x40000000, 0x40000000}, {32, 33, 34, 35}};
  return layout;
}

std::string str(const void* fdt, const char* path, const char* prop) {
  int node = fdt_path_offset(fdt, path);
  if (node < 0) return "<no node>";
  int len = 0;
  const char* v = static_cast<const char*>(fdt_getprop(fdt, node, prop, &len));
  if (!v) return "<no prop>";
  return std::string(v, len > 0 ? len - 1 : 0);
}

uint32_t cell(const void* fdt, const char* path, const char* prop, int index = 0) {
  int node = fdt_path_offset(fdt, path);
  int len = 0;
  const fdt32_t* v = static_cast<const fdt32_t*>(fdt_getprop(fdt, node, prop, &len));
  if (!v || len < 4 * (index + 1)) return 0xdeadbeef;
  return fdt32_to_cpu(v[index]);
}

}  // namespace

TEST_CASE("fdt: the blob is valid and has QEMU virt's top-level layout") {
  auto blob = hw::riscv::build_fdt(sample());
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  CHECK(fdt_check_header(fdt) == 0);
  CHECK(str(fdt, "/", "compatible") == "riscv-virtio");
  CHECK(cell(fdt, "/", "#address-cells") == 2);
  CHECK(str(fdt, "/memory@80000000", "device_type") == "memory");
  CHECK(cell(fdt, "/memory@80000000", "reg", 1) == 0x80000000);
  CHECK(cell(fdt, "/memory@80000000", "reg", 3) == (256u << 20));
}

TEST_CASE("fdt: chosen has bootargs, stdout-path and the initrd range") {
  auto blob = hw::riscv::build_fdt(sample());
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  CHECK(str(fdt, "/chosen", "bootargs") == "console=ttyS0 quiet");
  CHECK(str(fdt, "/chosen", "stdout-path") == "/soc/serial@10000000");
  int chosen = fdt_path_offset(fdt, "/chosen");
  int len = 0;
  auto start = static_cast<const fdt64_t*>(fdt_getprop(fdt, chosen, "linux,initrd-start", &len));
  REQUIRE(start);
  CHECK(len == 8);
  CHECK(fdt64_to_cpu(*start) == 0x88000000);
  auto end = static_cast<const fdt64_t*>(fdt_getprop(fdt, chosen, "linux,initrd-end", &len));
  CHECK(fdt64_to_cpu(*end) == 0x88001000);
}

TEST_CASE("fdt: one cpu node per hart with isa, mmu type and an interrupt controller") {
  auto blob = hw::riscv::build_fdt(sample(2));
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  CHECK(cell(fdt, "/cpus", "timebase-frequency") == 10000000);
  CHECK(str(fdt, "/cpus/cpu@0", "riscv,isa") == "rv64imafdc_zicsr_zifencei_sstc");
  CHECK(str(fdt, "/cpus/cpu@1", "mmu-type") == "riscv,sv48");
  CHECK(cell(fdt, "/cpus/cpu@1", "reg") == 1);
  CHECK(str(fdt, "/cpus/cpu@0/interrupt-controller", "compatible") == "riscv,cpu-intc");
  int node = fdt_path_offset(fdt, "/cpus/cpu@0");
  CHECK(fdt_stringlist_search(fdt, node, "riscv,isa-extensions", "sstc") >= 0);
  CHECK(fdt_stringlist_search(fdt, node, "riscv,isa-extensions", "c") >= 0);
  CHECK(fdt_path_offset(fdt, "/cpus/cpu@2") < 0);
  CHECK(cell(fdt, "/cpus/cpu-map/cluster0/core1", "cpu") == cell(fdt, "/cpus/cpu@1", "phandle"));
}

TEST_CASE("fdt: PLIC and CLINT contexts point at each hart's interrupt controller") {
  auto blob = hw::riscv::build_fdt(sample(2));
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  uint32_t intc1 = cell(fdt, "/cpus/cpu@1/interrupt-controller", "phandle");
  // hart 1: PLIC context 2 (M, 11) and 3 (S, 9); CLINT MSIP 3 and MTIP 7.
  CHECK(cell(fdt, "/soc/plic@c000000", "interrupts-extended", 4) == intc1);
  CHECK(cell(fdt, "/soc/plic@c000000", "interrupts-extended", 5) == 11);
  CHECK(cell(fdt, "/soc/plic@c000000", "interrupts-extended", 7) == 9);
  CHECK(cell(fdt, "/soc/plic@c000000", "riscv,ndev") == 96);
  CHECK(cell(fdt, "/soc/clint@2000000", "interrupts-extended", 5) == 3);
  CHECK(cell(fdt, "/soc/clint@2000000", "interrupts-extended", 7) == 7);
  CHECK(str(fdt, "/soc/clint@2000000", "compatible") == std::string("sifive,clint0\0riscv,clint0", 26));
}

TEST_CASE("fdt: devices are wired to the PLIC; syscon poweroff/reboot reference the test device") {
  auto blob = hw::riscv::build_fdt(sample());
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  uint32_t plic = cell(fdt, "/soc/plic@c000000", "phandle");
  CHECK(cell(fdt, "/soc/serial@10000000", "interrupt-parent") == plic);
  CHECK(cell(fdt, "/soc/serial@10000000", "interrupts") == 10);
  CHECK(str(fdt, "/soc/serial@10000000", "compatible") == "ns16550a");
  CHECK(cell(fdt, "/soc/virtio_mmio@10001000", "interrupts") == 1);
  CHECK(fdt_path_offset(fdt, "/soc/virtio_mmio@10002000") < 0);  // empty slots are left out
  uint32_t test = cell(fdt, "/soc/test@100000", "phandle");
  CHECK(cell(fdt, "/poweroff", "regmap") == test);
  CHECK(cell(fdt, "/poweroff", "value") == 0x5555);
  CHECK(cell(fdt, "/reboot", "value") == 0x7777);
}

TEST_CASE("fdt: the PCIe host has ECAM, windows and a rotated INTx map") {
  auto blob = hw::riscv::build_fdt(sample());
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  CHECK(str(fdt, "/soc/pci@30000000", "compatible") == "pci-host-ecam-generic");
  CHECK(cell(fdt, "/soc/pci@30000000", "bus-range", 1) == 0xff);
  // entry for slot 1 pin A (row 4): irq 33
  CHECK(cell(fdt, "/soc/pci@30000000", "interrupt-map", 4 * 6 + 0) == (1u << 11));
  CHECK(cell(fdt, "/soc/pci@30000000", "interrupt-map", 4 * 6 + 5) == 33);
  auto no_pci = sample();
  no_pci.pci.reset();
  auto blob2 = hw::riscv::build_fdt(no_pci);
  REQUIRE(blob2.ok());
  CHECK(fdt_path_offset(blob2->data(), "/soc/pci@30000000") < 0);
}

TEST_CASE("fdt: without a UART there is no stdout-path; zero harts is an error") {
  auto layout = sample();
  layout.uarts.clear();
  auto blob = hw::riscv::build_fdt(layout);
  REQUIRE(blob.ok());
  CHECK(str(blob->data(), "/chosen", "stdout-path") == "<no prop>");
  layout.hart_count = 0;
  CHECK_FALSE(hw::riscv::build_fdt(layout).ok());
}
