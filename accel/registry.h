// Which of the known accelerators (accel/catalogue.h) can run on this host and why not, and which one
// `up` gets: the first of the graph's candidates that this host can run. `vmlaunch accel` prints the
// table, `plan` notes on stderr whether this host could run the file. Graph resolution never uses
// this: it probes the host.
//
// Concrete accelerators register a factory here from their own library (see AccelFactoryRegistration)
// so this library never depends on them: the launcher links kvm and jit in, the registry finds them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accel/accelerator.h"

namespace accel {

using Factory = std::function<std::unique_ptr<Accelerator>()>;

struct AcceleratorInfo {
  std::string name;                       // "kvm"
  std::string description;                // one line for `vmlaunch accel`
  std::vector<std::string> guest_arches;  // guest architectures it can run at all
  std::function<Availability()> probe;    // cheap, side-effect free, may run more than once
};

// The outcome of choosing from the config's ordered `accel:` list.
struct Selection {
  bool ok = false;
  std::string name;    // chosen accelerator
  std::string reason;  // why: "first usable of [kvm, jit] for riscv64; LLVM 19.1.7 ..."
  struct Rejected {
    std::string name;
    std::string reason;
  };
  std::vector<Rejected> rejected;  // every candidate tried before `name` (all of them when !ok)
  std::string error;               // !ok: one line naming each candidate's reason
};

class Registry {
 public:
  // kvm, jit, xen, hvf, whpx, nvmm with their real probes, plus every factory registered so far.
  static Registry& builtin();

  Registry() = default;
  void add(AcceleratorInfo info);
  const std::vector<AcceleratorInfo>& accelerators() const { return m_accelerators; }
  const AcceleratorInfo* find(std::string_view name) const;
  std::vector<std::string> names() const;

  // Hook for implementations: `kvm` and `jit` call this (usually through AccelFactoryRegistration).
  void set_factory(std::string name, Factory factory);
  bool has_factory(std::string_view name) const;
  // nullptr when no implementation of `name` is linked into this binary.
  std::unique_ptr<Accelerator> create(std::string_view name) const;

  // What an implementation says of a `cpu.features` entry ("+sstc", "-x2apic") without touching the
  // host: empty when it can honour it, else why not. Registered beside the factory; an accelerator
  // without a check accepts everything here (and may still refuse at `up`).
  using CpuFeatureCheck = std::function<std::string(const std::string& feature)>;
  void set_cpu_feature_check(std::string name, CpuFeatureCheck check);
  std::string cpu_feature_problem(std::string_view name, const std::string& feature) const;

  // First candidate that is known, supports `arch` and probes usable. An empty preference list means
  // every known accelerator in registry order.
  Selection select(const std::vector<std::string>& preference, std::string_view arch) const;

 private:
  std::vector<AcceleratorInfo> m_accelerators;
  std::vector<std::pair<std::string, Factory>> m_factories;
  std::vector<std::pair<std::string, CpuFeatureCheck>> m_feature_checks;
};

// Static registration from an implementation's .cpp (its cc_library needs alwayslink = True):
//   static accel::AccelFactoryRegistration reg("kvm", [] { return std::make_unique<KvmAccelerator>(); });
struct AccelFactoryRegistration {
  AccelFactoryRegistration(std::string name, Factory factory, Registry::CpuFeatureCheck check = {}) {
    if (check) Registry::builtin().set_cpu_feature_check(name, std::move(check));
    Registry::builtin().set_factory(std::move(name), std::move(factory));
  }
};

// The KVM device vmlaunch opens: $VMLAUNCH_KVM_DEVICE when set (tests point it elsewhere to show
// that nothing but `up` and `accel` depend on the host), else /dev/kvm.
std::string kvm_device_path();

// The individual probes, exposed for tests and `vmlaunch accel`. nullptr: kvm_device_path().
Availability probe_kvm(const char* device_path = nullptr);
Availability probe_jit();
std::string llvm_version();  // "19.1.7", from the LLVM headers vmlaunch was built with

}  // namespace accel
