// Runs tiny hand-assembled guests on the real /dev/kvm (skipped where it is missing or unusable).
#include "accel/kvm/kvm.h"

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/skip.h"

using namespace accel;

namespace {

struct RecordingOps : VmOps {
  std::mutex lock;
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> pio_writes;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> mmio_writes;
  std::vector<uint64_t> mmio_reads;
  Vcpu* kick_on_done = nullptr;  // port 0x501 ends the test by kicking its own vCPU

  bool mmio_read(uint64_t addr, std::span<uint8_t> data) override {
    std::lock_guard g(lock);
    mmio_reads.push_back(addr);
    uint32_t value = 0xaabbccdd;
    std::memcpy(data.data(), &value, std::min<size_t>(4, data.size()));
    return true;
  }
  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    std::lock_guard g(lock);
    mmio_writes.push_back({addr, {data.begin(), data.end()}});
    return true;
  }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t port, std::span<const uint8_t> data) override {
    std::lock_guard g(lock);
    pio_writes.push_back({port, {data.begin(), data.end()}});
    if (port == 0x501 && kick_on_done) kick_on_done->kick();
    return true;
  }
  std::vector<uint8_t> written(uint16_t port) {
    std::lock_guard g(lock);
    for (auto& [p, bytes] : pio_writes)
      if (p == port) return bytes;
    return {};
  }
};

// Usable = the device opens and a VM can be created (nested setups may allow only the first).
bool kvm_usable(std::string& why) {
  Availability availability = kvm::KvmAccelerator().probe();
  why = "kvm unusable here: " + availability.detail;
  if (!availability.usable) return false;
  base::GuestMemory memory;
  RecordingOps ops;
  VmSpec spec;
  spec.arch = "x86_64";
  auto vm = kvm::KvmAccelerator().create_vm(spec, memory, ops);
  if (!vm.ok()) why = "kvm unusable here: " + vm.error().message;
  return vm.ok();
}

struct Guest {
  base::GuestMemory memory;
  RecordingOps ops;
  kvm::KvmAccelerator accelerator;
  std::unique_ptr<Vm> vm;
  std::unique_ptr<Vcpu> vcpu;

  AccelResult<void> start(std::vector<uint8_t> code, VmSpec spec = {}, bool long_mode = false) {
    auto region = memory.add_region(0, 2 << 20);
    REQUIRE(region.ok());
    REQUIRE(memory.write(0x1000, code));
    if (spec.arch.empty()) spec.arch = "x86_64";
    spec.cpu_model = "host";
    auto created = accelerator.create_vm(spec, memory, ops);
    if (!created.ok()) return base::fail(created.error());
    vm = std::move(created.value());
    REQUIRE(vm->map_memory(region.value()).ok());
    auto made = vm->create_vcpu(0);
    REQUIRE(made.ok());
    vcpu = std::move(made.value());
    ops.kick_on_done = vcpu.get();
    X86BootState state;
    state.rip = 0x1000;
    state.rsp = 0x8000;
    state.gdt_base = 0x500;
    if (long_mode) {
      // Identity map of the first 1 GiB with one 1 GiB... 2 MiB pages: PML4 -> PDPT -> PD.
      memory.write_le<uint64_t>(0x9000, 0xa000 | 3);
      memory.write_le<uint64_t>(0xa000, 0xb000 | 3);
      memory.write_le<uint64_t>(0xb000, 0x83);
      state.mode = X86BootState::Mode::Linux64;
      state.cr3 = 0x9000;
    }
    return vcpu->set_boot_state(state);
  }
};

// mov edx,0x501 ; out dx,eax ; jmp $
const std::vector<uint8_t> kReportEax = {0xba, 0x01, 0x05, 0x00, 0x00, 0xef, 0xeb, 0xfe};

std::vector<uint8_t> concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("a missing device names the file and the likely cause") {
  auto fd = kvm::open_kvm("/nonexistent/kvm");
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().message.find("/nonexistent/kvm: No such file or directory") == 0);
  Availability availability = kvm::KvmAccelerator("/nonexistent/kvm").probe();
  CHECK_FALSE(availability.usable);
}

TEST_CASE("no permission on the device names the kvm group fix") {
  if (access("/dev/kvm", F_OK) != 0) VML_SKIP("no /dev/kvm here to be refused access to");
  // As root, drop to nobody in a child (root is never refused); otherwise try as ourselves.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (getuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) _exit(2);
    auto fd = kvm::open_kvm("/dev/kvm");
    std::string message = fd.ok() ? "" : fd.error().message;
    (void)!write(fds[1], message.data(), message.size());
    _exit(fd.ok() ? 1 : 0);
  }
  close(fds[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
    VML_SKIP("this user may open /dev/kvm (kvm group or mode)");
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(message.find("/dev/kvm: Permission denied") == 0);
  CHECK(message.find("usermod -aG kvm") != std::string::npos);
}

TEST_CASE("a device that is not KVM fails the API version check") {
  auto fd = kvm::open_kvm("/dev/null");
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.error().message.find("KVM_GET_API_VERSION") != std::string::npos);
}

TEST_CASE("32-bit guest: port I/O and MMIO reach VmOps, unclaimed ports read all-ones") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  Guest guest;
  std::vector<uint8_t> code = {
      0xba, 0xf8, 0x03, 0x00, 0x00,  // mov edx, 0x3f8
      0xb0, 'K',  0xee,              // mov al, 'K' ; out dx, al
      0xb8, 0x78, 0x56, 0x34, 0x12,  // mov eax, 0x12345678
      0xa3, 0x00, 0x00, 0xb0, 0xfe,  // mov [0xfeb00000], eax
      0xa1, 0x04, 0x00, 0xb0, 0xfe,  // mov eax, [0xfeb00004]
      0xba, 0x99, 0x00, 0x00, 0x00,  // mov edx, 0x99
      0xec,                          // in al, dx
  };
  REQUIRE(guest.start(concat(code, kReportEax)).ok());
  auto exit = guest.vcpu->run();
  REQUIRE(exit.ok());
  CHECK(std::holds_alternative<ExitInterrupted>(exit.value()));
  CHECK(guest.ops.written(0x3f8) == std::vector<uint8_t>{'K'});
  REQUIRE(guest.ops.mmio_writes.size() == 1);
  CHECK(guest.ops.mmio_writes[0].first == 0xfeb00000);
  CHECK(guest.ops.mmio_writes[0].second == std::vector<uint8_t>{0x78, 0x56, 0x34, 0x12});
  CHECK(guest.ops.written(0x501) == std::vector<uint8_t>{0xff, 0xcc, 0xbb, 0xaa});
}

TEST_CASE("64-bit guest starts in long mode with the given page tables") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  Guest guest;
  std::vector<uint8_t> code = {
      0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // mov rax, 0x1122334455667788
      0x48, 0xc1, 0xe8, 0x20,                                      // shr rax, 32 (only works in 64-bit)
  };
  REQUIRE(guest.start(concat(code, kReportEax), {}, true).ok());
  auto exit = guest.vcpu->run();
  REQUIRE(exit.ok());
  CHECK(guest.ops.written(0x501) == std::vector<uint8_t>{0x44, 0x33, 0x22, 0x11});
}

TEST_CASE("cpu feature edits are visible to the guest's CPUID") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  std::vector<uint8_t> code = {
      0xb8, 0x01, 0x00, 0x00, 0x00,  // mov eax, 1
      0x31, 0xc9,                    // xor ecx, ecx
      0x0f, 0xa2,                    // cpuid
      0x89, 0xc8,                    // mov eax, ecx
  };
  auto leaf1_ecx = [&](std::vector<std::string> features) {
    Guest guest;
    VmSpec spec;
    spec.cpu_features = std::move(features);
    REQUIRE(guest.start(concat(code, kReportEax), spec).ok());
    REQUIRE(guest.vcpu->run().ok());
    auto bytes = guest.ops.written(0x501);
    REQUIRE(bytes.size() == 4);
    uint32_t ecx;
    std::memcpy(&ecx, bytes.data(), 4);
    return ecx;
  };
  uint32_t plain = leaf1_ecx({});
  if (!(plain & (1u << 13))) VML_SKIP("this host's KVM does not offer cx16");
  uint32_t edited = leaf1_ecx({"-cx16", "+x2apic"});
  CHECK_FALSE((edited & (1u << 13)) != 0);
  CHECK((edited & (1u << 21)) != 0);
}

TEST_CASE("bad cpu models and features fail create_vm with the name") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  base::GuestMemory memory;
  RecordingOps ops;
  kvm::KvmAccelerator accelerator;
  VmSpec spec;
  spec.arch = "x86_64";
  spec.cpu_model = "host";
  spec.cpu_features = {"+frobnicate"};
  auto vm = accelerator.create_vm(spec, memory, ops);
  REQUIRE_FALSE(vm.ok());
  CHECK(vm.error().message.find("frobnicate") != std::string::npos);
  spec.cpu_features = {};
  spec.cpu_model = "pentium";
  CHECK_FALSE(accelerator.create_vm(spec, memory, ops).ok());
  spec.cpu_model = "host";
  spec.arch = "riscv64";
  CHECK_FALSE(accelerator.create_vm(spec, memory, ops).ok());
}

TEST_CASE("kick from another thread interrupts a spinning guest; irq lines accept levels") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  Guest guest;
  REQUIRE(guest.start({0xeb, 0xfe}).ok());  // jmp $
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    auto exit = guest.vcpu->run();
    CHECK(exit.ok());
    if (exit.ok()) CHECK(std::holds_alternative<ExitInterrupted>(exit.value()));
    returned = true;
  });
  while (!returned) {
    guest.vcpu->kick();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  runner.join();
  CHECK(guest.vm->set_irq_line(4, true).ok());
  CHECK(guest.vm->set_irq_line(4, false).ok());
}

TEST_CASE("an MSI message reaches the in-kernel LAPICs; accelerators without MSI say so") {
  struct NoMsiVm : Vm {
    AccelResult<void> map_memory(const base::GuestMemory::Region&) override { return {}; }
    AccelResult<std::unique_ptr<Vcpu>> create_vcpu(unsigned) override {
      return base::fail(AccelError("none"));
    }
    AccelResult<void> set_irq_line(uint32_t, bool) override { return {}; }
  } plain;
  auto refused = plain.signal_msi(0xfee00000, 0x30);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("MSI is not supported") != std::string::npos);

  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  Guest guest;
  REQUIRE(guest.start(kReportEax).ok());
  // Fixed delivery of vector 0x30 to APIC id 0 (the one vCPU), as a Linux MSI-X entry looks.
  auto sent = guest.vm->signal_msi(0xfee00000, 0x30);
  CHECK_MESSAGE(sent.ok(), (sent.ok() ? "" : sent.error().message));
}
