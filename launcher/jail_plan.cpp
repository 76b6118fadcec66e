#include "launcher/jail_plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include "backends/factory.h"
#include "base/field_use.h"
#include "hw/boot/image.h"
#include "jit/tier_loader.h"

VML_CONSUMES("security.jail");  // up builds the jail from this plan

namespace launcher {

namespace fs = std::filesystem;

namespace {

void add(security::JailSpec& spec, const std::string& path, bool writable, bool directory) {
  if (path.empty()) return;
  std::error_code ec;
  std::string absolute = fs::absolute(path, ec).lexically_normal().string();
  for (security::JailBind& bind : spec.binds)
    if (bind.path == absolute) {
      bind.writable = bind.writable || writable;
      return;
    }
  spec.binds.push_back({absolute, writable, directory});
}

std::string backend_kind(graph::BackendKind kind) {
  return std::string(graph::backend_kind_name(kind));
}

}  // namespace

base::ErrorOr<security::JailSpec> jail_spec(const JailInputs& inputs) {
  const graph::Graph& graph = *inputs.graph;
  security::JailSpec spec;
  spec.hostname = inputs.name;
  spec.cgroup_name = inputs.name;
  spec.network = false;
  // Boot files: read again when the guest reboots.
  auto firmware = hw::boot::resolve_firmware(graph.boot.firmware);
  if (firmware.ok()) {
    add(spec, firmware.value().path, false, false);
    add(spec, firmware.value().payload_path, false, false);
  }
  for (const std::string* file : {&graph.boot.kernel, &graph.boot.initrd, &graph.boot.dtb})
    add(spec, *file, false, false);
  backends::FactoryContext context;
  context.base_dir = inputs.base_dir;
  context.machine_name = inputs.name;
  backends::HostNeeds needs;
  for (const graph::Backend& backend : graph.backends)
    TRY(backends::add_host_needs(backend_kind(backend.kind), backend.name, backend.driver, backend.options,
                                 context, needs));
  for (const backends::HostPath& path : needs.paths) add(spec, path.path, path.writable, path.directory);
  spec.devices = needs.devices;
  spec.pty = needs.pty;
  spec.network = needs.network;
  if (inputs.accelerator == "kvm") spec.devices.push_back("/dev/kvm");
  if (inputs.gdb) {
    if (inputs.gdb->is_unix())
      add(spec, fs::path(inputs.gdb->path).parent_path().string(), true, true);
    else
      spec.network = true;  // a TCP listener on the host's addresses
  }
  if (!inputs.restore_dir.empty()) add(spec, inputs.restore_dir, false, true);
  if (!inputs.state_dir.empty()) {
    add(spec, inputs.state_dir.string(), true, true);
    spec.root = (inputs.state_dir / "root").string();
  }
  // The LLVM tier and the libraries it needs are mapped now, outside: inside there is no /usr.
  // RTLD_NODELETE keeps them; the same path string finds them loaded again later.
  if (inputs.jit_code) {
    std::string path = jit::default_tier_path();
    ::setenv("VMLAUNCH_JIT_TIER", path.c_str(), 1);
    auto loaded = jit::load_tier(path);
    if (!loaded) return base::fail(base::Error(loaded.error() + " (loaded before entering the jail)"));
  }
  // Cgroup v2 limits: guest RAM plus a quarter of it (at least 256 MiB) for the VMM itself, and
  // one CPU more than the vCPUs for the device and I/O threads.
  uint64_t ram = graph.machine.ram_size;
  spec.memory_limit = ram + std::max<uint64_t>(ram / 4, 256ull << 20);
  spec.cpu_limit = graph.machine.cpu.count + 1;
  std::sort(spec.binds.begin(), spec.binds.end(),
            [](const security::JailBind& a, const security::JailBind& b) { return a.path < b.path; });
  return spec;
}

}  // namespace launcher
