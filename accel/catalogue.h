// The accelerators vmlaunch knows and the guest architectures each can run: static facts, the same
// on every host. Graph resolution and `plan` use only this (they never probe the host); `up` asks
// accel/registry.h which of the file's candidates this host can run.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace accel {

struct KnownAccelerator {
  std::string name;                       // "kvm"
  std::string description;                // one line for `vmlaunch accel`
  std::vector<std::string> guest_arches;  // guest architectures vmlaunch runs on it
};

// kvm, jit, xen, hvf, whpx, nvmm, in this order (the default preference).
const std::vector<KnownAccelerator>& known_accelerators();
const KnownAccelerator* find_known(std::string_view name);
std::vector<std::string> known_names();

// The file's ordered `accel:` list narrowed to what can run `arch` at all, decided without the host.
struct Preference {
  bool ok = false;
  std::vector<std::string> candidates;  // in the file's order; `up` tries them on the host in turn
  std::string reason;                   // "first of [kvm, jit] that runs x86_64 guests"
  struct Rejected {
    std::string name;
    std::string reason;  // "runs only riscv64 guests"
  };
  std::vector<Rejected> rejected;  // candidates that can never run `arch`
  std::string error;               // !ok: one line naming each candidate's reason
  const std::string& preferred() const { return candidates.front(); }  // only when ok
};

// An empty list means every known accelerator in catalogue order.
Preference prefer(const std::vector<std::string>& preference, std::string_view arch);

}  // namespace accel
