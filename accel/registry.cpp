#include "accel/registry.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "accel/catalogue.h"
#include "jit/llvm_info.h"

namespace accel {

namespace {

constexpr int kKvmApiVersion = 12;  // the only stable KVM API there has ever been

std::string host_arch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

Availability not_on_linux(const char* os) {
  return {false, std::string("known, but not available on a Linux host (") + os + ")"};
}

Registry make_builtin() {
  Registry registry;
  for (const KnownAccelerator& known : known_accelerators()) {
    std::function<Availability()> probe;
    if (known.name == "kvm")
      probe = [] {
        // KVM runs guests of the host's own architecture, and vmlaunch's KVM machines are x86_64.
        if (host_arch() != "x86_64")
          return Availability{false, "vmlaunch's kvm machines are x86_64; this host is " + host_arch()};
        return probe_kvm();
      };
    else if (known.name == "jit")
      probe = probe_jit;
    else if (known.name == "xen")
      probe = [] { return not_on_linux("needs a Xen dom0"); };
    else if (known.name == "hvf")
      probe = [] { return not_on_linux("macOS only"); };
    else if (known.name == "whpx")
      probe = [] { return not_on_linux("Windows only"); };
    else
      probe = [] { return not_on_linux("NetBSD only"); };
    registry.add({known.name, known.description, known.guest_arches, std::move(probe)});
  }
  return registry;
}

}  // namespace

Registry& Registry::builtin() {
  // Function-local static: safe to use from other translation units' static registrations.
  static Registry registry = make_builtin();
  return registry;
}

void Registry::add(AcceleratorInfo info) {
  for (AcceleratorInfo& existing : m_accelerators) {
    if (existing.name == info.name) {
      existing = std::move(info);
      return;
    }
  }
  m_accelerators.push_back(std::move(info));
}

const AcceleratorInfo* Registry::find(std::string_view name) const {
  for (const AcceleratorInfo& info : m_accelerators)
    if (info.name == name) return &info;
  return nullptr;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const AcceleratorInfo& info : m_accelerators) out.push_back(info.name);
  return out;
}

void Registry::set_factory(std::string name, Factory factory) {
  for (auto& [existing, f] : m_factories) {
    if (existing == name) {
      f = std::move(factory);
      return;
    }
  }
  m_factories.emplace_back(std::move(name), std::move(factory));
}

void Registry::set_cpu_feature_check(std::string name, CpuFeatureCheck check) {
  for (auto& [existing, c] : m_feature_checks) {
    if (existing == name) {
      c = std::move(check);
      return;
    }
  }
  m_feature_checks.emplace_back(std::move(name), std::move(check));
}

std::string Registry::cpu_feature_problem(std::string_view name, const std::string& feature) const {
  for (const auto& [existing, check] : m_feature_checks)
    if (existing == name) return check(feature);
  return {};
}

bool Registry::has_factory(std::string_view name) const {
  for (const auto& [existing, f] : m_factories)
    if (existing == name) return true;
  return false;
}

std::unique_ptr<Accelerator> Registry::create(std::string_view name) const {
  for (const auto& [existing, factory] : m_factories)
    if (existing == name) return factory();
  return nullptr;
}

Selection Registry::select(const std::vector<std::string>& preference, std::string_view arch) const {
  Selection selection;
  std::vector<std::string> candidates = preference.empty() ? names() : preference;
  for (const std::string& name : candidates) {
    const AcceleratorInfo* info = find(name);
    if (!info) {
      selection.rejected.push_back({name, "unknown accelerator (known: " + join(names()) + ")"});
      continue;
    }
    bool runs_arch = false;
    for (const std::string& a : info->guest_arches) runs_arch = runs_arch || a == arch;
    if (!runs_arch) {
      selection.rejected.push_back(
          {name, "does not run " + std::string(arch) + " guests (only " + join(info->guest_arches) + ")"});
      continue;
    }
    Availability availability = info->probe();
    if (!availability.usable) {
      selection.rejected.push_back({name, availability.detail});
      continue;
    }
    selection.ok = true;
    selection.name = name;
    selection.reason = (preference.empty() ? std::string("first usable known accelerator")
                                           : "first usable of [" + join(preference) + "]") +
                       " for " + std::string(arch) + ": " + availability.detail;
    return selection;
  }
  selection.error = "no usable accelerator for " + std::string(arch) + " guests:";
  for (const Selection::Rejected& r : selection.rejected)
    selection.error += " " + r.name + ": " + r.reason + ";";
  if (!selection.error.empty() && selection.error.back() == ';') selection.error.pop_back();
  return selection;
}

std::string kvm_device_path() {
  const char* override_path = std::getenv("VMLAUNCH_KVM_DEVICE");
  return override_path && *override_path ? override_path : "/dev/kvm";
}

Availability probe_kvm(const char* device_path) {
  const std::string default_path = kvm_device_path();
  if (!device_path) device_path = default_path.c_str();
  // Safety: open/ioctl/close on a file descriptor we own; KVM_GET_API_VERSION takes no argument.
  int fd = ::open(device_path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return {false, std::string(device_path) + ": " + std::strerror(errno)};
  int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  int saved_errno = errno;
  ::close(fd);
  if (version < 0)
    return {false, std::string("KVM_GET_API_VERSION on ") + device_path + ": " + std::strerror(saved_errno)};
  if (version != kKvmApiVersion)
    return {false, std::string(device_path) + " speaks KVM API " + std::to_string(version) +
                       ", vmlaunch needs " + std::to_string(kKvmApiVersion)};
  return {true, "KVM API " + std::to_string(version) + " on " + device_path};
}

std::string llvm_version() {
  return jit::llvm_version();
}

Availability probe_jit() {
  // The interpreter needs nothing from the host. The LLVM translator tier is not built yet; say so
  // rather than imply it runs (the LLVM version is what it will be built against).
  return {true, "riscv64 guests on the reference interpreter (LLVM " + llvm_version() +
                    " translator tier not built yet)"};
}

}  // namespace accel
