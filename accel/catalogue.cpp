#include "accel/catalogue.h"

namespace accel {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

const std::vector<KnownAccelerator>& known_accelerators() {
  // kvm: vmlaunch's machines for KVM are x86_64 ones; the host must be x86_64 too (the probe says so).
  static const std::vector<KnownAccelerator> known = {
      {"kvm", "Linux KVM: hardware virtualization through /dev/kvm", {"x86_64"}},
      {"jit", "vmlaunch's riscv64 translator (reference interpreter, LLVM ORC tier)", {"riscv64"}},
      {"xen", "Xen HVM", {"x86_64"}},
      {"hvf", "Apple Hypervisor.framework", {"x86_64", "aarch64"}},
      {"whpx", "Windows Hypervisor Platform", {"x86_64"}},
      {"nvmm", "NetBSD Virtual Machine Monitor", {"x86_64"}},
  };
  return known;
}

const KnownAccelerator* find_known(std::string_view name) {
  for (const KnownAccelerator& known : known_accelerators())
    if (known.name == name) return &known;
  return nullptr;
}

std::vector<std::string> known_names() {
  std::vector<std::string> names;
  for (const KnownAccelerator& known : known_accelerators()) names.push_back(known.name);
  return names;
}

Preference prefer(const std::vector<std::string>& preference, std::string_view arch) {
  Preference out;
  const std::vector<std::string> list = preference.empty() ? known_names() : preference;
  for (const std::string& name : list) {
    const KnownAccelerator* known = find_known(name);
    if (!known) {
      out.rejected.push_back({name, "unknown accelerator (known: " + join(known_names()) + ")"});
      continue;
    }
    bool runs = false;
    for (const std::string& a : known->guest_arches) runs = runs || a == arch;
    if (!runs) {
      out.rejected.push_back({name, "runs only " + join(known->guest_arches) + " guests"});
      continue;
    }
    out.candidates.push_back(name);
  }
  out.ok = !out.candidates.empty();
  if (out.ok) {
    out.reason = (preference.empty() ? std::string("first known accelerator")
                                     : "first of [" + join(preference) + "]") +
                 " that runs " + std::string(arch) + " guests";
    return out;
  }
  out.error = "no accelerator in [" + join(list) + "] runs " + std::string(arch) + " guests:";
  for (size_t i = 0; i < out.rejected.size(); ++i)
    out.error += std::string(i ? ";" : "") + " " + out.rejected[i].name + ": " + out.rejected[i].reason;
  return out;
}

}  // namespace accel
