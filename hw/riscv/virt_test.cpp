#include "hw/riscv/virt.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "graph/graph.h"
#include "hw/machine.h"
#include "hw/testing/built_machine.h"
#include "hw/testing/recording_accel.h"
#include "hw/testing/recording_char.h"
#include "tests/skip.h"

extern "C" {
#include <libfdt.h>
}

namespace {

constexpr uint64_t MiB = 1 << 20;

// What a tiny guest on the fake accelerator does: power off through the sifive_test device.
void power_off_through_syscon(accel::VmOps& ops, unsigned) {
  uint8_t pass[4] = {0x55, 0x55, 0, 0};
  ops.mmio_write(0x100000, pass);
}

const accel::RiscvBootState& boot_of(const hw::testing::RecordingAccel::State& s, unsigned hart) {
  return std::get<accel::RiscvBootState>(s.boot.at(hart));
}

struct Backends : hw::BackendSource {
  std::shared_ptr<hw::testing::RecordingChar> console = std::make_shared<hw::testing::RecordingChar>();
  std::shared_ptr<backends::CharBackend> chardev(std::string_view name) override {
    return name == "console" ? console : nullptr;
  }
};

using Built = hw::testing::BuiltMachine<Backends>;

graph::Device builtin(std::string id, std::string driver, uint64_t base, uint64_t size) {
  graph::Device d;
  d.id = std::move(id);
  d.driver = std::move(driver);
  d.builtin = true;
  d.region = graph::SlotResource{base, size, std::nullopt, false};
  return d;
}

graph::Graph virt_graph(unsigned harts = 1) {
  graph::Graph g;
  g.machine.arch = "riscv64";
  g.machine.type = "virt";
  g.machine.ram_base = 0x80000000;
  g.machine.ram_size = 64 * MiB;
  g.machine.cpu.count = harts;
  g.machine.cpu.model = "rv64gc";
  g.devices.push_back(builtin("syscon", "sifive-test", 0x100000, 0x1000));
  g.devices.push_back(builtin("clint", "riscv-clint", 0x2000000, 0x10000));
  g.devices.push_back(builtin("plic", "riscv-plic", 0xc000000, 0x600000));
  graph::Device uart;
  uart.id = "serial0";
  uart.driver = "ns16550";
  uart.bus = "sysbus";
  uart.address.kind = graph::Address::Kind::Slot;
  uart.address.resource = graph::SlotResource{0x10000000, 0x100, 10};
  uart.irq = 10;
  graph::BackendRef ref;
  ref.property = "chardev";
  ref.name = "console";
  uart.backends.push_back(ref);
  g.devices.push_back(uart);
  return g;
}

// Writes `bytes` to a temporary file that is removed at scope exit.
// A bare-metal riscv64 ELF (entry and one segment at 0x80000000) holding `code`: what the machine
// loads when boot.cmdline or boot.initrd is set without firmware (a raw blob would be refused as
// "not a Linux kernel").
std::vector<uint8_t> riscv_elf(const std::vector<uint8_t>& code) {
  std::vector<uint8_t> elf(0x100 + code.size(), 0);
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(elf.data() + at, &v, 4); };
  auto put64 = [&](size_t at, uint64_t v) { std::memcpy(elf.data() + at, &v, 8); };
  std::memcpy(elf.data(),
              "\x7f"
              "ELF\x02\x01\x01",
              7);
  elf[0x10] = 2, elf[0x12] = 243, elf[0x14] = 1;  // ET_EXEC, EM_RISCV, EV_CURRENT
  put64(0x18, 0x80000000);                        // entry
  put64(0x20, 0x40);                              // program headers
  elf[0x34] = 64, elf[0x36] = 56, elf[0x38] = 1;
  put32(0x40, 1);  // PT_LOAD
  put32(0x44, 5);  // R+X
  put64(0x48, 0x100);
  put64(0x50, 0x80000000);
  put64(0x58, 0x80000000);
  put64(0x60, code.size());
  put64(0x68, code.size());
  std::memcpy(elf.data() + 0x100, code.data(), code.size());
  return elf;
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    char name[] = "/tmp/vml-virt-test-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, bytes.data(), bytes.size()) == (ssize_t)bytes.size());
    close(fd);
    path = name;
  }
  ~TempFile() { unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("virt: boot plan places kernel, initrd and device tree as QEMU does") {
  auto plan = hw::riscv::plan_boot(0x80000000, 512 * MiB, true, 20 * MiB, 8 * MiB, 0x2000);
  REQUIRE(plan.ok());
  CHECK(plan->firmware_address == 0x80000000);
  CHECK(plan->kernel_address == 0x80200000);
  CHECK(plan->initrd_address == 0x80200000 + 128 * MiB);
  CHECK(plan->fdt_address == 0x80000000 + 512 * MiB - 2 * MiB);
  CHECK(plan->info_address < plan->fdt_address);
  auto small = hw::riscv::plan_boot(0x80000000, 64 * MiB, true, 20 * MiB, 30 * MiB, 0x2000);
  REQUIRE(small.ok());
  CHECK(small->initrd_address >= 0x80200000 + 20 * MiB);
  CHECK(small->initrd_address + 30 * MiB <= small->info_address);
  CHECK_FALSE(hw::riscv::plan_boot(0x80000000, 64 * MiB, true, 40 * MiB, 30 * MiB, 0x2000).ok());
  // fw_jump copies the device tree to 0x82200000, QEMU's initrd spot on 64 MiB: the initrd goes above.
  auto jump = hw::riscv::plan_boot(0x80000000, 64 * MiB, true, 6 * MiB, 1 * MiB, 0x2000,
                                   0x80000000 + hw::riscv::kFwJumpFdtOffset);
  REQUIRE(jump.ok());
  CHECK(jump->initrd_address == 0x82400000);
  CHECK(jump->fdt_address == 0x83e00000);
  auto bare = hw::riscv::plan_boot(0x80000000, 64 * MiB, false, 4096, 0, 0x2000);
  REQUIRE(bare.ok());
  CHECK(bare->kernel_address == 0x80000000);
}

TEST_CASE("virt: cpu model and features shape the advertised ISA") {
  hw::riscv::FdtLayout layout;
  REQUIRE(hw::riscv::apply_cpu_model("rv64gc", {"-sstc", "-sv48", "+zba"}, layout).ok());
  CHECK(layout.isa == "rv64imafdc");
  CHECK(std::find(layout.isa_extensions.begin(), layout.isa_extensions.end(), "sstc") ==
        layout.isa_extensions.end());
  CHECK(std::find(layout.isa_extensions.begin(), layout.isa_extensions.end(), "zba") !=
        layout.isa_extensions.end());
  CHECK(layout.mmu_type == "riscv,sv39");
  CHECK_FALSE(hw::riscv::apply_cpu_model("host", {}, layout).ok());
  CHECK_FALSE(hw::riscv::apply_cpu_model("rv64gc", {"sstc"}, layout).ok());
}

TEST_CASE("virt: builds from the graph, loads the kernel and passes hart id and device tree") {
  std::vector<uint8_t> kernel = riscv_elf({0x73, 0x00, 0x50, 0x10, 0x6f, 0x00, 0x00, 0x00});  // wfi; j .
  TempFile kernel_file(kernel);
  std::vector<uint8_t> initrd(3000, 0xab);
  TempFile initrd_file(initrd);
  auto g = virt_graph(2);
  g.boot.kernel = kernel_file.path;
  g.boot.initrd = initrd_file.path;
  g.boot.cmdline = "console=ttyS0 hello";
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& s = *built.accel.state;
  REQUIRE(s.boot.size() == 2);
  CHECK(boot_of(s, 1).a0 == 1);
  CHECK(boot_of(s, 0).pc == 0x80000000);  // no firmware: the kernel runs from the start of RAM
  CHECK(*s.memory->read_le<uint32_t>(0x80000000) == 0x10500073);
  REQUIRE(s.mapped.size() == 1);
  CHECK(s.mapped[0].size == 64 * MiB);

  auto fdt_bytes = s.memory->slice(boot_of(s, 0).a1, 0x40);
  REQUIRE(fdt_bytes);
  const void* fdt = fdt_bytes->data();
  REQUIRE(fdt_check_header(fdt) == 0);
  auto whole = s.memory->slice(boot_of(s, 0).a1, fdt_totalsize(fdt));
  REQUIRE(whole);
  fdt = whole->data();
  int chosen = fdt_path_offset(fdt, "/chosen");
  CHECK(std::string(static_cast<const char*>(fdt_getprop(fdt, chosen, "bootargs", nullptr))) ==
        "console=ttyS0 hello");
  auto start = static_cast<const fdt64_t*>(fdt_getprop(fdt, chosen, "linux,initrd-start", nullptr));
  REQUIRE(start);
  CHECK(*s.memory->read_le<uint8_t>(fdt64_to_cpu(*start)) == 0xab);
  CHECK(fdt_path_offset(fdt, "/cpus/cpu@1") >= 0);
  CHECK(fdt_path_offset(fdt, "/soc/serial@10000000") >= 0);

  // The UART is on the bus and its interrupt goes through the PLIC to hart 0's SEIP.
  uint8_t c = 'Z';
  CHECK(s.ops->mmio_write(0x10000000, {&c, 1}));
  CHECK(built.backends.console->output == "Z");
  uint8_t w[4] = {1, 0, 0, 0};
  CHECK(s.ops->mmio_write(0xc000000 + 4 * 10, w));          // priority 1
  uint8_t en[4] = {0, 4, 0, 0};                             // source 10
  CHECK(s.ops->mmio_write(0xc000000 + 0x2000 + 0x80, en));  // context 1 (hart 0 S)
  uint8_t ier = 0x02;
  CHECK(s.ops->mmio_write(0x10000001, {&ier, 1}));
  CHECK(s.irq[0 * 64 + 9]);

  // Running: the tiny guest writes 0x5555 to the syscon.
  s.on_run = power_off_through_syscon;
  auto outcome = built.machine->run();
  CHECK(outcome.kind == hw::RunOutcome::Kind::PowerOff);
  CHECK(outcome.exit_code == 0);
}

TEST_CASE("virt: boot.dtb replaces the generated device tree; /chosen comes from the file") {
  std::vector<uint8_t> kernel = riscv_elf({0x73, 0x00, 0x50, 0x10, 0x6f, 0x00, 0x00, 0x00});  // wfi; j .
  TempFile kernel_file(kernel);
  TempFile initrd_file(std::vector<uint8_t>(100, 0xcd));
  std::vector<uint8_t> dtb(4096);
  REQUIRE(fdt_create_empty_tree(dtb.data(), static_cast<int>(dtb.size())) == 0);
  REQUIRE(fdt_setprop_string(dtb.data(), 0, "model", "user-board") == 0);
  REQUIRE(fdt_pack(dtb.data()) == 0);
  dtb.resize(fdt_totalsize(dtb.data()));
  TempFile dtb_file(dtb);
  auto g = virt_graph();
  g.boot.kernel = kernel_file.path;
  g.boot.initrd = initrd_file.path;
  g.boot.dtb = dtb_file.path;
  g.boot.cmdline = "console=ttyS0 from-file";
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& s = *built.accel.state;
  auto header = s.memory->slice(boot_of(s, 0).a1, 0x40);
  REQUIRE(header);
  REQUIRE(fdt_check_header(header->data()) == 0);
  auto whole = s.memory->slice(boot_of(s, 0).a1, fdt_totalsize(header->data()));
  REQUIRE(whole);
  const void* fdt = whole->data();
  CHECK(std::string(static_cast<const char*>(fdt_getprop(fdt, 0, "model", nullptr))) == "user-board");
  CHECK(fdt_path_offset(fdt, "/soc") < 0);  // nothing of the generated tree
  int chosen = fdt_path_offset(fdt, "/chosen");
  REQUIRE(chosen >= 0);
  CHECK(std::string(static_cast<const char*>(fdt_getprop(fdt, chosen, "bootargs", nullptr))) ==
        "console=ttyS0 from-file");
  auto start = static_cast<const fdt64_t*>(fdt_getprop(fdt, chosen, "linux,initrd-start", nullptr));
  REQUIRE(start);
  CHECK(*s.memory->read_le<uint8_t>(fdt64_to_cpu(*start)) == 0xcd);

  // Not a device tree, or a truncated one: refused, naming the file.
  for (std::vector<uint8_t> bad :
       {std::vector<uint8_t>(64, 0x5a), std::vector<uint8_t>(dtb.begin(), dtb.begin() + 60),
        std::vector<uint8_t>()}) {
    TempFile bad_file(bad);
    auto b = virt_graph();
    b.boot.kernel = kernel_file.path;
    b.boot.dtb = bad_file.path;
    Built refused(b);
    CHECK_FALSE(refused.machine);
    CHECK(refused.error.find("boot.dtb " + bad_file.path) != std::string::npos);
  }
}

TEST_CASE("virt: OpenSBI fw_jump at the start of RAM, the kernel at +2 MiB") {
  if (access("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin", R_OK) != 0)
    VML_SKIP("Debian's opensbi package is not installed");
  std::vector<uint8_t> kernel(4096, 0x13);
  TempFile kernel_file(kernel);
  auto g = virt_graph();
  g.boot.firmware = "opensbi";
  g.boot.kernel = kernel_file.path;
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& s = *built.accel.state;
  CHECK(boot_of(s, 0).pc == 0x80000000);
  CHECK(*s.memory->read_le<uint32_t>(0x80200000) == 0x13131313);
  CHECK(*s.memory->read_le<uint32_t>(0x80000000) != 0);
}

TEST_CASE("virt: a bare-metal ELF with tohost gets an HTIF window carved out of RAM") {
  // Minimal ELF: one segment at 0x80000000 and symbols tohost=0x80001000, fromhost=0x80001040.
  std::vector<uint8_t> b(64, 0);
  auto put16 = [&](size_t o, uint16_t v) { std::memcpy(&b[o], &v, 2); };
  auto put32 = [&](size_t o, uint32_t v) { std::memcpy(&b[o], &v, 4); };
  auto put64 = [&](size_t o, uint64_t v) { std::memcpy(&b[o], &v, 8); };
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 2, b[5] = 1, b[6] = 1;
  b.resize(64 + 56 + 8 + 17 + 72 + 192, 0);
  put16(16, 2), put16(18, 243), put64(24, 0x80000000), put64(32, 64), put16(54, 56), put16(56, 1);
  put32(64, 1), put64(64 + 8, 120), put64(64 + 16, 0x80000000), put64(64 + 24, 0x80000000);
  put64(64 + 32, 8), put64(64 + 40, 0x1100);  // .bss covers the tohost page
  size_t str = 128, sym = 145, sh = 217;
  std::memcpy(&b[str], "\0tohost\0fromhost\0", 17);
  put32(sym + 24, 1), put64(sym + 32, 0x80001000), put32(sym + 48, 8), put64(sym + 56, 0x80001040);
  put32(sh + 64 + 4, 2), put64(sh + 64 + 24, sym), put64(sh + 64 + 32, 72), put32(sh + 64 + 40, 2),
      put64(sh + 64 + 56, 24);
  put32(sh + 128 + 4, 3), put64(sh + 128 + 24, str), put64(sh + 128 + 32, 17);
  put64(40, sh), put16(58, 64), put16(60, 3);
  TempFile elf(b);

  auto g = virt_graph();
  g.boot.kernel = elf.path;
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& s = *built.accel.state;
  REQUIRE(s.mapped.size() == 2);
  CHECK(s.mapped[0].size == 0x1000);            // below the tohost page
  CHECK(s.mapped[1].guest_base == 0x80002000);  // above it
  uint8_t exit[8] = {(5 << 1) | 1, 0, 0, 0, 0, 0, 0, 0};
  CHECK(s.ops->mmio_write(0x80001000, exit));
  s.on_run = power_off_through_syscon;
  auto outcome = built.machine->run();  // the power-off came first
  CHECK(outcome.exit_code == 5);
}

TEST_CASE("virt: configuration problems are errors naming the culprit") {
  hw::testing::RecordingAccel accel("riscv64");
  Backends backends;
  hw::MachineContext context;
  context.accelerator = &accel;
  context.backends = &backends;
  auto g = virt_graph();
  auto nothing = hw::build_machine(g, context);
  REQUIRE_FALSE(nothing.ok());
  CHECK(nothing.error().message.find("nothing to run") != std::string::npos);
  g.boot.kernel = "/nonexistent/Image";
  auto missing = hw::build_machine(g, context);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("/nonexistent/Image") != std::string::npos);
  std::vector<uint8_t> k(16, 0);
  TempFile kernel(k);
  g.boot.kernel = kernel.path;
  g.devices[3].backends[0].name = "nope";
  auto no_backend = hw::build_machine(g, context);
  REQUIRE_FALSE(no_backend.ok());
  CHECK(no_backend.error().message.find("serial0") != std::string::npos);
  g = virt_graph();
  g.boot.kernel = kernel.path;
  graph::Device odd;
  odd.id = "gpu0";
  odd.driver = "virtio-gpu-mmio";
  g.devices.push_back(odd);
  auto unsupported = hw::build_machine(g, context);
  REQUIRE_FALSE(unsupported.ok());
  CHECK(unsupported.error().message.find("gpu0") != std::string::npos);
}

TEST_CASE("virt: the PCIe host from the graph answers on ECAM and appears in the device tree") {
  std::vector<uint8_t> k(16, 0);
  TempFile kernel(k);
  auto g = virt_graph();
  g.boot.kernel = kernel.path;
  graph::Device host = builtin("pcie-host", "gpex-pcihost", 0x30000000, 0x10000000);
  host.bus = "pcie.0";  // as the catalogue places it: on the machine root bus, slot 0
  g.devices.push_back(host);
  graph::Bus pcie;
  pcie.name = "pcie.0";
  pcie.kind = graph::BusKind::Pci;
  pcie.last_slot = 31;
  pcie.pci_irqs = {32, 33, 34, 35};
  pcie.provided_by = "";
  g.buses.push_back(pcie);
  g.memory_map = {{"pcie-pio", 0x3000000, 0x10000, graph::MemoryRegion::Kind::PciWindow, "pcie-host"},
                  {"pcie-ecam", 0x30000000, 0x10000000, graph::MemoryRegion::Kind::PciConfig, "pcie-host"},
                  {"pcie-mmio", 0x40000000, 0x40000000, graph::MemoryRegion::Kind::PciWindow, "pcie-host"}};
  Built built(g);
  REQUIRE_MESSAGE(built.machine, built.error);
  auto& s = *built.accel.state;
  uint8_t id[4] = {};
  REQUIRE(s.ops->mmio_read(0x30000000, id));
  CHECK((id[0] | id[1] << 8) == 0x1b36);
  auto header = s.memory->slice(boot_of(s, 0).a1, 0x40);
  REQUIRE(header);
  auto whole = s.memory->slice(boot_of(s, 0).a1, fdt_totalsize(header->data()));
  REQUIRE(whole);
  const void* fdt = whole->data();
  int pci = fdt_path_offset(fdt, "/soc/pci@30000000");
  REQUIRE(pci >= 0);
  int len = 0;
  auto map = static_cast<const fdt32_t*>(fdt_getprop(fdt, pci, "interrupt-map", &len));
  REQUIRE(map);
  CHECK(len == 16 * 6 * 4);
  CHECK(fdt32_to_cpu(map[5]) == 32);
  auto ranges = static_cast<const fdt32_t*>(fdt_getprop(fdt, pci, "ranges", &len));
  REQUIRE(ranges);
  CHECK(fdt32_to_cpu(ranges[4]) == 0x3000000);       // I/O window CPU address
  CHECK(fdt32_to_cpu(ranges[7 + 2]) == 0x40000000);  // MMIO window PCI address
}
