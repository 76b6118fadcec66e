#include "tests/isa/isa_harness.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>
#include <vector>

#include "accel/jit/jit_accelerator.h"
#include "base/timebase.h"

namespace isa {
namespace {

constexpr uint64_t kToHost = 0x40000000, kIrqCtl = 0x40000100, kIrqLater = 0x40000108, kMagic = 0x40000300,
                   kDump = 0x40000400;

class HarnessOps final : public accel::VmOps {
 public:
  bool mmio_read(uint64_t addr, std::span<uint8_t> data) override {
    if (addr >= kMagic && addr + data.size() <= kMagic + 8) {
      const uint64_t v = 0x1234567887654321ull >> (8 * (addr - kMagic));
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(v >> (8 * i));
      return true;
    }
    if (addr == kToHost) {
      std::fill(data.begin(), data.end(), 0);
      return true;
    }
    return false;
  }

  bool mmio_write(uint64_t addr, std::span<const uint8_t> data) override {
    uint64_t v = 0;
    for (size_t i = 0; i < data.size() && i < 8; ++i) v |= static_cast<uint64_t>(data[i]) << (8 * i);
    if (addr == kToHost) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (!done) {
          done = true;
          tohost = v;
        }
      }
      cv.notify_all();
      return true;
    }
    if (addr == kIrqCtl) {
      (void)vm->set_irq_line(static_cast<uint32_t>(v >> 1), v & 1);
      return true;
    }
    if (addr == kDump) {
      dump_addr = v;
      return true;
    }
    if (addr == kDump + 8) {
      dump_len = v;
      return true;
    }
    if (addr == kIrqLater) {
      std::lock_guard<std::mutex> lock(mutex);
      later.emplace_back([this, v] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        (void)vm->set_irq_line(static_cast<uint32_t>(v), true);
      });
      return true;
    }
    return false;
  }

  bool pio_read(uint16_t, std::span<uint8_t>) override { return false; }
  bool pio_write(uint16_t, std::span<const uint8_t>) override { return false; }

  accel::Vm* vm = nullptr;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  bool failed = false;  // a vCPU's run() returned an error
  uint64_t tohost = 0;
  uint64_t dump_addr = 0, dump_len = 0;
  std::vector<std::thread> later;
};

}  // namespace

RunResult run_image(const std::string& image_path, unsigned harts, unsigned ram_mib, double timeout_seconds,
                    const AccelOptions& accel_options) {
  RunResult result;
  std::ifstream file(image_path, std::ios::binary);
  if (!file) {
    result.error = "cannot open " + image_path;
    return result;
  }
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());

  base::GuestMemory memory;
  auto region = memory.add_region(kRamBase, static_cast<uint64_t>(ram_mib) << 20);
  if (!region.ok()) {
    result.error = region.error().message;
    return result;
  }
  if (!memory.write(kRamBase, image)) {
    result.error = "image larger than RAM";
    return result;
  }
  base::Timebase timebase;
  HarnessOps ops;
  auto accel = accel::make_jit_accelerator();
  accel::VmSpec spec;
  spec.arch = "riscv64";
  spec.vcpu_count = harts;
  spec.cpu_model = "rv64gc";
  spec.timebase = &timebase;
  spec.accel_options = accel_options;
  auto vm = accel->create_vm(spec, memory, ops);
  if (!vm.ok()) {
    result.error = vm.error().message;
    return result;
  }
  ops.vm = vm->get();
  std::vector<std::unique_ptr<accel::Vcpu>> vcpus;
  for (unsigned i = 0; i < harts; ++i) {
    auto vcpu = (*vm)->create_vcpu(i);
    if (!vcpu.ok()) {
      result.error = vcpu.error().message;
      return result;
    }
    (void)(*vcpu)->set_boot_state(accel::RiscvBootState{kRamBase, i, 0, 0});
    vcpus.push_back(std::move(*vcpu));
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (auto& vcpu : vcpus)
    threads.emplace_back([&vcpu, &ops, &result] {
      auto run = vcpu->run();
      if (!run.ok()) {  // e.g. a lockstep divergence: stop waiting for tohost
        std::lock_guard<std::mutex> lock(ops.mutex);
        if (result.vcpu_error.empty()) result.vcpu_error = run.error().message;
        ops.failed = true;
        ops.cv.notify_all();
      }
    });
  {
    std::unique_lock<std::mutex> lock(ops.mutex);
    ops.cv.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                    [&] { return ops.done || ops.failed; });
    result.finished = ops.done;
    result.tohost = ops.tohost;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& vcpu : vcpus) vcpu->kick();
  for (auto& t : threads) t.join();
  std::vector<std::thread> later;
  {
    std::lock_guard<std::mutex> lock(ops.mutex);
    later.swap(ops.later);
  }
  for (auto& t : later) t.join();
  result.stats_json = accel->stats_json();
  if (ops.dump_len > 0 && ops.dump_len <= (64u << 20)) {
    result.dump.resize(ops.dump_len);
    if (!memory.read(ops.dump_addr, result.dump)) {
      result.dump.clear();
      result.error = "dump range outside RAM";
    }
  }
  return result;
}

}  // namespace isa
