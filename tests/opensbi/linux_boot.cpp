// linux_boot KERNEL INITRD [CMDLINE] [SECONDS]: boots OpenSBI (fw_jump) + a Linux Image + initramfs on
// the jit accelerator with the mini virt machine (no PLIC: the 8250 runs polled), console on
// stderr. A CPU bring-up tool, independent of hw/; exits 0 when the guest powers off.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "accel/jit/jit_accelerator.h"
#include "tests/opensbi/mini_virt.h"

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: linux_boot KERNEL INITRD [CMDLINE] [SECONDS]\n");
    return 2;
  }
  const std::string cmdline = argc > 3 ? argv[3] : "console=ttyS0 earlycon=sbi";
  const double seconds = argc > 4 ? std::atof(argv[4]) : 600;
  const auto firmware = read_file("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin");
  const auto kernel = read_file(argv[1]);
  const auto initrd = read_file(argv[2]);
  if (firmware.empty() || kernel.empty() || initrd.empty()) {
    std::fprintf(stderr, "linux_boot: cannot read firmware, kernel or initrd\n");
    return 2;
  }
  constexpr uint64_t kRam = 0x80000000, kRamSize = 512ull << 20, kKernel = 0x80200000, kInitrd = 0x88000000,
                     kFdt = 0x9fe00000;
  // The device tree: the test's virt.dts with a bigger memory node and the boot parameters.
  std::ifstream dts_file("tests/opensbi/virt.dts");
  std::string dts((std::istreambuf_iterator<char>(dts_file)), std::istreambuf_iterator<char>());
  std::string escaped;  // a DTS string literal
  for (char c : cmdline) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  const std::string chosen = "chosen {\n\t\tbootargs = \"" + escaped + "\";\n\t\tlinux,initrd-start = <0x0 " +
                             hex(kInitrd) + ">;\n\t\tlinux,initrd-end = <0x0 " +
                             hex(kInitrd + initrd.size()) + ">;\n";
  dts.replace(dts.find("chosen {\n"), 9, chosen);
  const std::string memory_reg = "0x0 0x80000000 0x0 0x10000000";
  dts.replace(dts.find(memory_reg), memory_reg.size(), "0x0 0x80000000 0x0 " + hex(kRamSize));
  const std::string dts_path = "/tmp/linux_boot." + std::to_string(getpid()) + ".dts";
  const std::string dtb_path = dts_path + ".dtb";
  std::ofstream(dts_path) << dts;
  if (std::system(("dtc -q -I dts -O dtb -o " + dtb_path + " " + dts_path).c_str()) != 0) return 2;
  const auto fdt = read_file(dtb_path);
  std::remove(dts_path.c_str());
  std::remove(dtb_path.c_str());

  base::GuestMemory memory;
  if (!memory.add_region(kRam, kRamSize).ok() || !memory.write(kRam, firmware) ||
      !memory.write(kKernel, kernel) || !memory.write(kInitrd, initrd) || !memory.write(kFdt, fdt)) {
    std::fprintf(stderr, "linux_boot: images do not fit\n");
    return 2;
  }
  base::Timebase timebase;
  minivirt::MiniVirt machine(timebase);
  machine.echo = true;
  auto accel = accel::make_jit_accelerator();
  accel::VmSpec spec;
  spec.arch = "riscv64";
  spec.vcpu_count = minivirt::kHarts;
  spec.timebase = &timebase;
  auto vm = accel->create_vm(spec, memory, machine);
  if (!vm.ok()) return 2;
  machine.vm = vm->get();
  std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
  for (unsigned i = 0; i < minivirt::kHarts; ++i) {
    auto vcpu = (*vm)->create_vcpu(i);
    if (!vcpu.ok()) return 2;
    (void)(*vcpu)->set_boot_state(accel::RiscvBootState{kRam, i, kFdt, 0});
    vcpus.push_back(std::move(*vcpu));
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (auto& vcpu : vcpus) threads.emplace_back([&vcpu] { (void)vcpu->run(); });
  const bool finished = machine.wait_finished(seconds);
  for (auto& vcpu : vcpus) vcpu->kick();
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\nlinux_boot: %s after %.1f s\n", finished ? "powered off" : "time limit", elapsed);
  return finished ? 0 : 1;
}
