// The `kvm` accelerator: x86_64 guests on Linux KVM (/dev/kvm).
//
// One Vm = one KVM VM fd with, per VmSpec::x86_irqchip, either the full in-kernel irqchip (PIC,
// IOAPIC, LAPICs) and PIT, created after the RAM slots, or the split irqchip (LAPICs only; the
// machine's IOAPIC sends MSIs and gets EOIs through VmOps::ioapic_eoi); guest RAM regions
// become memory slots. One Vcpu = one vCPU fd and its mmapped kvm_run; run() is called from the
// vCPU's own thread and hands every port-I/O and MMIO exit to the injected VmOps, so only halt,
// shutdown, reset and kicks come back as VcpuExit. vCPU 0 is the BSP; the others wait for INIT/SIPI
// from the guest (the in-kernel LAPIC handles both), so they need no boot state.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "accel/accelerator.h"
#include "accel/kvm/cpuid.h"

namespace accel::kvm {

inline constexpr int kApiVersion = 12;

class KvmAccelerator final : public Accelerator {
 public:
  // `device_path` is configurable so tests can point it at missing or unreadable files.
  explicit KvmAccelerator(std::string device_path = "/dev/kvm") : m_device_path(std::move(device_path)) {}
  ~KvmAccelerator() override;

  std::string_view name() const override { return "kvm"; }
  std::vector<std::string> guest_arches() const override { return {"x86_64"}; }
  Availability probe() const override;
  AccelResult<std::unique_ptr<Vm>> create_vm(const VmSpec& spec, const base::GuestMemory& memory,
                                             VmOps& ops) override;

 private:
  std::string m_device_path;
  // /dev/kvm, opened by the first create_vm and kept: a VM rebuilt after a guest reset must not
  // need to open it again (the VMM may have dropped privileges and armed seccomp by then).
  std::mutex m_system_lock;
  int m_system_fd = -1;
};

// Opens the KVM device and checks its API version. Errors say which of: missing, no permission
// (with the usual fix), wrong API version.
AccelResult<int> open_kvm(const std::string& device_path);

// KVM_GET_SUPPORTED_CPUID on an open /dev/kvm fd.
AccelResult<CpuidTable> supported_cpuid(int kvm_fd);

// What a restore does about the guest's TSC rate (kHz, as KVM_GET_TSC_KHZ reports it): the saved
// rate and this host's. Equal (or not saved: 0): nothing. Within KVM's own tolerance (250 ppm, two
// boots' calibrations of one CPU): set it, which KVM accepts without scaling. Further apart: set
// it only where KVM scales the TSC (KVM_CAP_TSC_CONTROL), else refuse: the guest's clock would run
// at the wrong rate.
enum class TscAction { kKeep, kSet, kRefuse };
inline constexpr uint32_t kTscTolerancePpm = 250;
TscAction tsc_action(uint32_t saved_khz, uint32_t host_khz, bool tsc_control);
// The refusal's text, naming both rates and the fix; `why`: what KVM said or lacks.
std::string tsc_refusal(uint32_t saved_khz, uint32_t host_khz, const std::string& why);

}  // namespace accel::kvm
