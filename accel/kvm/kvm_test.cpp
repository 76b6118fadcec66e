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
  Vm* msi_vm = nullptr;          // port 0x502 sends it msi_data to 0xfee00000 (the guest is ready)
  uint32_t msi_data = 0;
  std::vector<uint8_t> eois;

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
    if (port == 0x502 && msi_vm) CHECK(msi_vm->signal_msi(0xfee00000, msi_data).ok());
    return true;
  }
  void ioapic_eoi(uint8_t vector) override {
    std::lock_guard g(lock);
    eois.push_back(vector);
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

TEST_CASE("pause parks a running vCPU inside run() with its state; resume lets it continue") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  Guest guest;
  // loop: inc dword [0x2000] ; jmp loop
  REQUIRE(guest.start({0xff, 0x05, 0x00, 0x20, 0x00, 0x00, 0xeb, 0xf8}).ok());
  auto counter = [&] {
    uint32_t value = 0;
    REQUIRE(guest.memory.read(0x2000, {reinterpret_cast<uint8_t*>(&value), 4}));
    return value;
  };
  auto wait_beyond = [&](uint32_t floor) {
    for (int i = 0; i < 20000 && counter() <= floor; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return counter() > floor;
  };
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    auto exit = guest.vcpu->run();
    CHECK(exit.ok());
    if (exit.ok()) CHECK(std::holds_alternative<ExitInterrupted>(exit.value()));
    returned = true;
  });
  REQUIRE(wait_beyond(0));
  REQUIRE(guest.vm->pause(std::chrono::seconds(10)).ok());
  CHECK(guest.vm->pause(std::chrono::seconds(10)).ok());  // already paused: nothing to do
  const uint32_t parked = counter();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(counter() == parked);    // exactly: the guest runs no instruction while parked
  CHECK_FALSE(returned.load());  // parked inside run(), which did not return
  REQUIRE(guest.vm->resume().ok());
  CHECK(guest.vm->resume().ok());
  CHECK(wait_beyond(parked));  // the same loop continues from where it was
  // A second round trip works the same.
  REQUIRE(guest.vm->pause(std::chrono::seconds(10)).ok());
  const uint32_t again = counter();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(counter() == again);
  REQUIRE(guest.vm->resume().ok());
  CHECK(wait_beyond(again));
  while (!returned) {
    guest.vcpu->kick();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  runner.join();
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

namespace {
// A 32-bit guest that enables its LAPIC, loads an IDT with vector 0x40, tells the host it is ready
// (port 0x502: RecordingOps sends the MSI) and waits in HLT; the handler EOIs and reports 0x77.
void start_interrupt_guest(Guest& guest, VmSpec spec) {
  std::vector<uint8_t> code = {
      0xb0, 0xff, 0xe6, 0x21, 0xe6, 0xa1,                          // mask the 8259s (full irqchip)
      0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00,  // mov dword [0xfee000f0], 0x1ff
      0x0f, 0x01, 0x1d, 0x00, 0x06, 0x00, 0x00,                    // lidt [0x600]
      0xba, 0x02, 0x05, 0x00, 0x00, 0xee,                          // mov edx, 0x502 ; out dx, al
      0xfb, 0xf4, 0xeb, 0xfc,                                      // sti ; hlt ; jmp sti
  };
  REQUIRE(guest.start(code, spec).ok());
  std::vector<uint8_t> handler = {
      0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00,  // mov dword [0xfee000b0], 0 (EOI)
      0xb8, 0x77, 0x00, 0x00, 0x00,                                // mov eax, 0x77
  };
  REQUIRE(guest.memory.write(0x2000, concat(handler, kReportEax)));
  // GDT at 0x500 (null, null, flat code 0x10, flat data 0x18): the interrupt gate reloads CS from it.
  REQUIRE(guest.memory.write_le<uint64_t>(0x510, 0x00cf9b000000ffffull));
  REQUIRE(guest.memory.write_le<uint64_t>(0x518, 0x00cf93000000ffffull));
  REQUIRE(guest.memory.write_le<uint64_t>(0x3000 + 0x40 * 8, 0x00008e0000102000ull));  // gate -> 0x10:0x2000
  REQUIRE(guest.memory.write_le<uint16_t>(0x600, 0x41 * 8 - 1));
  REQUIRE(guest.memory.write_le<uint32_t>(0x602, 0x3000));
}

// Runs the guest to its report on port 0x501, then once more until a kick: KVM reports an EOI exit
// at the vCPU's next entry, and the kick at 0x501 makes that entry return at once.
void run_to_report(Guest& guest) {
  // Both runs on one thread: kick() signals the thread that ran the vCPU.
  std::atomic<int> returned{0};
  std::thread runner([&] {
    auto exit = guest.vcpu->run();
    CHECK(exit.ok());
    if (exit.ok()) CHECK(std::holds_alternative<ExitInterrupted>(exit.value()));
    returned = 1;
    auto again = guest.vcpu->run();
    CHECK(again.ok());
    returned = 2;
  });
  while (returned < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  while (returned < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    guest.vcpu->kick();
  }
  runner.join();
}
}  // namespace

TEST_CASE("split irqchip: EOIs of routed level vectors reach VmOps::ioapic_eoi; no in-kernel IOAPIC") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  for (bool routed : {true, false}) {
    CAPTURE(routed);
    Guest guest;
    VmSpec spec;
    spec.x86_irqchip = VmSpec::X86Irqchip::Split;
    start_interrupt_guest(guest, spec);
    auto line = guest.vm->set_irq_line(4, true);
    REQUIRE_FALSE(line.ok());
    CHECK(line.error().message.find("split irqchip") != std::string::npos);
    if (routed) {
      Vm::IoapicRoute route{4, 0xfee00000, 0x8040};  // pin 4: vector 0x40, level, to APIC 0
      REQUIRE(guest.vm->set_ioapic_routes({&route, 1}).ok());
    }
    Vm::IoapicRoute beyond{24, 0xfee00000, 0x8041};
    CHECK_FALSE(guest.vm->set_ioapic_routes({&beyond, 1}).ok());
    guest.ops.msi_vm = guest.vm.get();
    guest.ops.msi_data = 0x8040;  // as the IOAPIC sends a level-triggered pin
    run_to_report(guest);
    CHECK(guest.ops.written(0x501) == std::vector<uint8_t>{0x77, 0, 0, 0});
    // Only a vector the routes mark level-triggered comes back as an EOI.
    CHECK(guest.ops.eois == (routed ? std::vector<uint8_t>{0x40} : std::vector<uint8_t>{}));
  }
}

TEST_CASE("full irqchip: created at the first vCPU, after the RAM slots; IOAPIC routes are not ours") {
  std::string why;
  if (!kvm_usable(why)) VML_SKIP(why.c_str());
  Guest guest;
  start_interrupt_guest(guest, {});
  Vm::IoapicRoute route{4, 0xfee00000, 0x8040};
  CHECK_FALSE(guest.vm->set_ioapic_routes({&route, 1}).ok());
  CHECK(guest.vm->set_irq_line(4, true).ok());
  CHECK(guest.vm->set_irq_line(4, false).ok());
  // A slot after the irqchip exists still works (it is only slower).
  auto extra = guest.memory.add_region(0x10000000, 1 << 20);
  REQUIRE(extra.ok());
  CHECK(guest.vm->map_memory(extra.value()).ok());
  guest.ops.msi_vm = guest.vm.get();
  guest.ops.msi_data = 0x40;  // edge
  run_to_report(guest);
  CHECK(guest.ops.written(0x501) == std::vector<uint8_t>{0x77, 0, 0, 0});
  CHECK(guest.ops.eois.empty());  // the in-kernel IOAPIC takes its EOIs itself
}

TEST_CASE("a restore keeps, sets or refuses the guest's TSC rate") {
  using accel::kvm::TscAction;
  using accel::kvm::tsc_action;
  // Same rate, or none saved: nothing to do, with or without TSC scaling.
  CHECK(tsc_action(2900000, 2900000, false) == TscAction::kKeep);
  CHECK(tsc_action(0, 2900000, false) == TscAction::kKeep);
  // Within 250 ppm (725 kHz of 2.9 GHz): KVM takes it without scaling.
  CHECK(tsc_action(2900725, 2900000, false) == TscAction::kSet);
  CHECK(tsc_action(2899275, 2900000, false) == TscAction::kSet);
  // Further apart: only with KVM_CAP_TSC_CONTROL.
  CHECK(tsc_action(2900726, 2900000, false) == TscAction::kRefuse);
  CHECK(tsc_action(2899274, 2900000, false) == TscAction::kRefuse);
  CHECK(tsc_action(2000000, 2900000, true) == TscAction::kSet);
  CHECK(tsc_action(3500000, 2900000, true) == TscAction::kSet);
  const std::string text = accel::kvm::tsc_refusal(2000000, 2900000, "no KVM_CAP_TSC_CONTROL");
  CHECK(text.find("2000000 kHz") != std::string::npos);
  CHECK(text.find("2900000 kHz") != std::string::npos);
  CHECK(text.find("same TSC rate") != std::string::npos);
}
