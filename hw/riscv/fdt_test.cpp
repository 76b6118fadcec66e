#include "hw/riscv/fdt.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/skip.h"

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
  CHECK(cell(fdt, "/cpus/cpu-map/socket0/cluster0/core1", "cpu") == cell(fdt, "/cpus/cpu@1", "phandle"));
}

TEST_CASE("fdt: cpu-map has a socket per socket, its cores, and threads when there are several") {
  hw::riscv::FdtLayout layout = sample(8);
  layout.sockets = 2;
  layout.cores_per_socket = 2;
  layout.threads_per_core = 2;
  auto blob = hw::riscv::build_fdt(layout);
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  // Harts socket-major, then core, then thread: hart 6 is socket 1, core 1, thread 0.
  CHECK(cell(fdt, "/cpus/cpu-map/socket0/cluster0/core0/thread1", "cpu") ==
        cell(fdt, "/cpus/cpu@1", "phandle"));
  CHECK(cell(fdt, "/cpus/cpu-map/socket1/cluster0/core1/thread0", "cpu") ==
        cell(fdt, "/cpus/cpu@6", "phandle"));
  CHECK(cell(fdt, "/cpus/cpu-map/socket1/cluster0/core1/thread1", "cpu") ==
        cell(fdt, "/cpus/cpu@7", "phandle"));
  CHECK(fdt_path_offset(fdt, "/cpus/cpu-map/socket2") < 0);

  layout = sample(3);  // 3 harts in 2 sockets x 2 cores: the last core is left out
  layout.sockets = 2;
  layout.cores_per_socket = 2;
  blob = hw::riscv::build_fdt(layout);
  REQUIRE(blob.ok());
  fdt = blob->data();
  CHECK(cell(fdt, "/cpus/cpu-map/socket1/cluster0/core0", "cpu") == cell(fdt, "/cpus/cpu@2", "phandle"));
  CHECK(fdt_path_offset(fdt, "/cpus/cpu-map/socket1/cluster0/core1") < 0);
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

TEST_CASE("fdt: the nodes firmware relies on match QEMU's virt device tree") {
  // QEMU 7.2's own DTB for the same board (1 hart, 256 MiB, all 8 virtio-mmio slots filled so their
  // nodes exist on our side too).
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string path = std::string(tmp ? tmp : "/tmp") + "/qemu-virt.dtb";
  std::string cmd =
      "qemu-system-riscv64 -M virt,dumpdtb=" + path + " -m 256M -smp 1 -nographic >/dev/null 2>&1";
  if (std::system("command -v qemu-system-riscv64 >/dev/null 2>&1") != 0 || std::system(cmd.c_str()) != 0)
    VML_SKIP("qemu-system-riscv64 (qemu-system-misc) is not installed");
  std::ifstream in(path, std::ios::binary);
  std::vector<char> qemu((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(fdt_check_header(qemu.data()) == 0);

  auto layout = sample(1);
  layout.pci.reset();
  layout.virtio_mmio.clear();
  for (uint32_t i = 0; i < 8; ++i) layout.virtio_mmio.push_back({{0x10001000u + 0x1000u * i, 0x1000}, i + 1});
  auto ours = hw::riscv::build_fdt(layout);
  REQUIRE(ours.ok());
  const void* fdt = ours->data();

  const char* nodes[] = {"/soc/serial@10000000",
                         "/soc/test@100000",
                         "/soc/plic@c000000",
                         "/soc/clint@2000000",
                         "/soc/virtio_mmio@10001000",
                         "/soc/virtio_mmio@10008000",
                         "/poweroff",
                         "/reboot",
                         "/cpus/cpu@0/interrupt-controller"};
  for (const char* node : nodes) {
    CAPTURE(node);
    REQUIRE(fdt_path_offset(qemu.data(), node) >= 0);
    REQUIRE(fdt_path_offset(fdt, node) >= 0);
    for (const char* prop :
         {"compatible", "reg", "interrupts", "riscv,ndev", "value", "offset", "#interrupt-cells"}) {
      CAPTURE(prop);
      int qlen = -1, olen = -1;
      const void* q = fdt_getprop(qemu.data(), fdt_path_offset(qemu.data(), node), prop, &qlen);
      const void* o = fdt_getprop(fdt, fdt_path_offset(fdt, node), prop, &olen);
      CHECK((q == nullptr) == (o == nullptr));
      if (q && o) {
        CHECK(qlen == olen);
        if (qlen == olen) CHECK(std::memcmp(q, o, qlen) == 0);
      }
    }
  }
  CHECK(cell(qemu.data(), "/cpus", "timebase-frequency") == cell(fdt, "/cpus", "timebase-frequency"));
  CHECK(str(qemu.data(), "/chosen", "stdout-path") == str(fdt, "/chosen", "stdout-path"));
  // interrupts-extended lists (M then S per hart; MSIP then MTIP) use the same bit numbers.
  for (const char* node : {"/soc/plic@c000000", "/soc/clint@2000000"}) {
    CHECK(cell(qemu.data(), node, "interrupts-extended", 1) == cell(fdt, node, "interrupts-extended", 1));
    CHECK(cell(qemu.data(), node, "interrupts-extended", 3) == cell(fdt, node, "interrupts-extended", 3));
  }
}

TEST_CASE("fdt: the power button is a gpio-keys KEY_POWER on pin 0 of a SiFive GPIO; pvpanic-mmio") {
  auto layout = sample();
  layout.power_gpio = hw::riscv::FdtLayout::Irq{{0x10060000, 0x1000}, 12};
  layout.pvpanic = hw::riscv::FdtRange{0x102000, 2};
  auto blob = hw::riscv::build_fdt(layout);
  REQUIRE(blob.ok());
  const void* fdt = blob->data();
  CHECK(str(fdt, "/soc/gpio@10060000", "compatible") ==
        std::string("sifive,fu540-c000-gpio\0sifive,gpio0", 35));
  CHECK(cell(fdt, "/soc/gpio@10060000", "interrupts") == 12);  // one line: Linux sees one pin
  CHECK(cell(fdt, "/soc/gpio@10060000", "#gpio-cells") == 2);
  CHECK(cell(fdt, "/soc/gpio@10060000", "interrupt-parent") == cell(fdt, "/soc/plic@c000000", "phandle"));
  CHECK(str(fdt, "/gpio-keys", "compatible") == "gpio-keys");
  CHECK(cell(fdt, "/gpio-keys/power", "linux,code") == 116);
  CHECK(cell(fdt, "/gpio-keys/power", "gpios", 0) == cell(fdt, "/soc/gpio@10060000", "phandle"));
  CHECK(cell(fdt, "/gpio-keys/power", "gpios", 1) == 0);  // pin 0
  CHECK(cell(fdt, "/gpio-keys/power", "gpios", 2) == 0);  // active high
  CHECK(str(fdt, "/soc/pvpanic@102000", "compatible") == "qemu,pvpanic-mmio");
  CHECK(cell(fdt, "/soc/pvpanic@102000", "reg", 3) == 2);
}

TEST_CASE("fdt: no power button or pvpanic nodes unless the machine has them") {
  auto blob = hw::riscv::build_fdt(sample());
  REQUIRE(blob.ok());
  CHECK(fdt_path_offset(blob->data(), "/gpio-keys") < 0);
  CHECK(fdt_path_offset(blob->data(), "/soc/gpio@10060000") < 0);
  CHECK(fdt_path_offset(blob->data(), "/soc/pvpanic@102000") < 0);
}
