// Debian's OpenSBI (fw_jump) on the jit accelerator with a two-hart subset of the virt machine
// built right here (ns16550 transmit, CLINT, sifive_test), running an S-mode payload that checks
// the SBI services Linux needs. This tests the CPU against real firmware, independently of hw/.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "accel/jit/jit_accelerator.h"
#include "base/timebase.h"
#include "tests/skip.h"

namespace {

constexpr const char* kFirmware = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
constexpr uint64_t kRam = 0x80000000, kPayload = 0x80200000, kFdt = 0x82200000;
constexpr unsigned kHarts = 2;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

uint64_t merge(uint64_t reg, uint64_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size() && offset + i < 8; ++i) {
    reg &= ~(0xffull << (8 * (offset + i)));
    reg |= static_cast<uint64_t>(data[i]) << (8 * (offset + i));
  }
  return reg;
}

void extract(uint64_t reg, uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = offset + i < 8 ? static_cast<uint8_t>(reg >> (8 * (offset + i))) : 0;
}

class MiniVirt final : public accel::VmOps {
 public:
  explicit MiniVirt(const base::Timebase& timebase) : m_timebase(timebase) {
    for (auto& t : m_mtimecmp) t = ~0ull;
    m_timer = std::thread([this] { timer_loop(); });
  }
  ~MiniVirt() override {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stop = true;
    }
    m_cv.notify_all();
    m_timer.join();
  }

  bool mmio_read(uint64_t addr, std::span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), 0);
    if (addr >= 0x10000000 && addr < 0x10000100) {
      if (addr == 0x10000005) data[0] = 0x60;  // LSR: transmitter empty
      return true;
    }
    if (addr >= 0x2000000 && addr < 0x2010000) {
      std::lock_guard<std::mutex> lock(m_mutex);
      const uint64_t off = addr - 0x2000000;
      if (off < 4 * kHarts)
        extract(m_msip[off / 4], off % 4, data);
      else if (off >= 0x4000 && off < 0x4000 + 8 * kHarts)
        extract(m_mtimecmp[(off - 0x4000) / 8], off % 8, data);
      else if (off >= 0xbff8)
        extract(m_timebase.now(), off - 0xbff8, data);
      return true;
    }
    return addr >= 0x100000 && addr < 0x101000;
  }

  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    if (addr >= 0x10000000 && addr < 0x10000100) {
      std::lock_guard<std::mutex> lock(m_mutex);
      if (addr == 0x10000000 && !(m_lcr & 0x80)) console.push_back(static_cast<char>(data[0]));
      if (addr == 0x10000003) m_lcr = data[0];
      return true;
    }
    if (addr >= 0x100000 && addr < 0x101000) {
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        uint32_t v = 0;
        for (size_t i = 0; i < data.size() && i < 4; ++i) v |= static_cast<uint32_t>(data[i]) << (8 * i);
        if (!finished) {
          finished = true;
          finisher = v;
        }
      }
      m_cv.notify_all();
      return true;
    }
    if (addr >= 0x2000000 && addr < 0x2010000) {
      const uint64_t off = addr - 0x2000000;
      std::lock_guard<std::mutex> lock(m_mutex);
      if (off < 4 * kHarts) {
        const unsigned hart = off / 4;
        m_msip[hart] = merge(m_msip[hart], off % 4, data) & 1;
        (void)vm->set_irq_line(hart * 64 + 3, m_msip[hart]);
      } else if (off >= 0x4000 && off < 0x4000 + 8 * kHarts) {
        const unsigned hart = (off - 0x4000) / 8;
        m_mtimecmp[hart] = merge(m_mtimecmp[hart], off % 8, data);
        update_timers();
        m_cv.notify_all();
      }
      return true;
    }
    return false;
  }
  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }

  bool wait_finished(double seconds) {
    std::unique_lock<std::mutex> lock(m_mutex);
    return m_cv.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return finished; });
  }
  std::string output() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return console;
  }

  accel::Vm* vm = nullptr;
  std::string console;
  bool finished = false;
  uint32_t finisher = 0;

 private:
  // Caller holds m_mutex. MTIP is the level (mtime >= mtimecmp).
  void update_timers() {
    const uint64_t now = m_timebase.now();
    for (unsigned h = 0; h < kHarts; ++h) (void)vm->set_irq_line(h * 64 + 7, now >= m_mtimecmp[h]);
  }
  void timer_loop() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (!m_stop) {
      if (vm) update_timers();
      uint64_t next = ~0ull;
      const uint64_t now = m_timebase.now();
      for (uint64_t t : m_mtimecmp)
        if (t > now) next = std::min(next, t);
      if (next == ~0ull)
        m_cv.wait_for(lock, std::chrono::milliseconds(50));
      else
        m_cv.wait_until(lock, m_timebase.time_of(next));
    }
  }

  const base::Timebase& m_timebase;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::thread m_timer;
  bool m_stop = false;
  uint8_t m_lcr = 0;
  uint64_t m_msip[kHarts] = {};
  uint64_t m_mtimecmp[kHarts];
};

}  // namespace

TEST_CASE("opensbi: fw_jump boots two harts and serves an S-mode payload (timer, IPI, HSM, fences, SRST)") {
  const auto firmware = read_file(kFirmware);
  if (firmware.empty()) VML_SKIP("Debian's opensbi package is not installed");
  const auto payload = read_file("tests/opensbi/payload.bin");
  const auto fdt = read_file("tests/opensbi/virt.dtb");
  REQUIRE(!payload.empty());
  REQUIRE(!fdt.empty());

  base::GuestMemory memory;
  REQUIRE(memory.add_region(kRam, 256u << 20).ok());
  REQUIRE(memory.write(kRam, firmware));
  REQUIRE(memory.write(kPayload, payload));
  REQUIRE(memory.write(kFdt, fdt));
  base::Timebase timebase;
  MiniVirt machine(timebase);
  auto accel = accel::make_jit_accelerator();
  accel::VmSpec spec;
  spec.arch = "riscv64";
  spec.vcpu_count = kHarts;
  spec.timebase = &timebase;
  auto vm = accel->create_vm(spec, memory, machine);
  REQUIRE(vm.ok());
  machine.vm = vm->get();
  std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
  for (unsigned i = 0; i < kHarts; ++i) {
    auto vcpu = (*vm)->create_vcpu(i);
    REQUIRE(vcpu.ok());
    REQUIRE((*vcpu)->set_boot_state(accel::RiscvBootState{kRam, i, kFdt, 0}).ok());
    vcpus.push_back(std::move(*vcpu));
  }
  std::vector<std::thread> threads;
  for (auto& vcpu : vcpus) threads.emplace_back([&vcpu] { (void)vcpu->run(); });
  const bool finished = machine.wait_finished(60);
  for (auto& vcpu : vcpus) vcpu->kick();
  for (auto& t : threads) t.join();
  const std::string out = machine.output();
  INFO("console:\n" << out);
  CHECK(finished);
  CHECK(out.find("OpenSBI") != std::string::npos);
  CHECK(out.find("payload: hello from S-mode") != std::string::npos);
  CHECK(out.find("payload: all ok") != std::string::npos);
  CHECK(machine.finisher == 0x5555);  // sifive_test "pass" = SRST shutdown
}
