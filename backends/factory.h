// Creates concrete backends from the `backends:` section of a machine config: (kind, name, driver,
// options). The machine builder calls this once per declared backend and injects the result into
// devices by name; hw/ never sees the concrete types.
//
// Kinds and drivers:
//   chardev: stdio {escape, raw, signal}, null, file {path}, ringbuf {size}, pty,
//            socket {path (unix, or "tcp:HOST:PORT") | host+port, server, wait, reconnect: seconds}
//   block:   raw | qcow2 | zstd {file (or path), readonly, direct (raw), snapshot}
//   net:     user {hostfwd: [..], restrict, net, dns, hostname}, tap {ifname}, socket {...}
//   rng:     random {file, default /dev/urandom}, builtin (getrandom)
//   fs:      local {path, readonly} (a host directory, served over 9P2000.L by fs::P9Server)
//            virtiofsd {path, readonly} (served over virtio-fs by virtiofsd, started here)
// Errors name the backend, the place in the config, and what would fix it.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/block.h"
#include "backends/chardev.h"
#include "backends/fs.h"
#include "backends/net.h"
#include "backends/rng.h"
#include "base/result.h"
#include "config/node.h"

namespace passthrough {
class VfioDevice;
}
namespace hw::usb {
class UsbDevice;
}

namespace backends {

// What the machine gives the factory besides the options.
struct FactoryContext {
  // Called (from a backend thread) when the user asks to quit: stdio's `Ctrl-a x`.
  std::function<void()> quit;
  // Relative paths in options are resolved against this (the config file's directory).
  std::filesystem::path base_dir;
  // Machine name: seeds anything that must be stable per machine (e.g. generated MACs).
  std::string machine_name;
};

// One created backend: exactly one pointer is set, matching `kind`.
struct AnyBackend {
  std::string kind;
  std::string name;
  std::string driver;
  std::shared_ptr<CharBackend> chardev;
  std::shared_ptr<BlockBackend> block;
  std::shared_ptr<NetBackend> net;
  std::shared_ptr<RngBackend> rng;
  std::shared_ptr<FsBackend> fs;
  std::shared_ptr<passthrough::VfioDevice> vfio;  // kind "passthrough", driver vfio-pci
  std::shared_ptr<hw::usb::UsbDevice> usb;        // kind "passthrough", driver usb-host
};

base::ErrorOr<AnyBackend> create_backend(std::string_view kind, std::string_view name,
                                         std::string_view driver, const config::Node& options,
                                         const FactoryContext& context);

base::ErrorOr<std::shared_ptr<FsBackend>> create_fs(std::string_view name, std::string_view driver,
                                                    const config::Node& options,
                                                    const FactoryContext& context);

// Typed shortcuts; fail if `driver` is not of that kind.
base::ErrorOr<std::shared_ptr<CharBackend>> create_chardev(std::string_view name, std::string_view driver,
                                                           const config::Node& options,
                                                           const FactoryContext& context);
base::ErrorOr<std::shared_ptr<BlockBackend>> create_block(std::string_view name, std::string_view driver,
                                                          const config::Node& options,
                                                          const FactoryContext& context);
base::ErrorOr<std::shared_ptr<NetBackend>> create_net(std::string_view name, std::string_view driver,
                                                      const config::Node& options,
                                                      const FactoryContext& context);
base::ErrorOr<std::shared_ptr<RngBackend>> create_rng(std::string_view name, std::string_view driver,
                                                      const config::Node& options,
                                                      const FactoryContext& context);

// What a backend uses of the host, for the jail (security/jail.h) to make visible inside: files and
// directories (bind-mounted at their own paths), device nodes, a pty, the network. Called before
// the backend exists, with the same options; an image's backing files are listed too.
struct HostPath {
  std::string path;
  bool writable = false;
  bool directory = false;
};
struct HostNeeds {
  std::vector<HostPath> paths;
  std::vector<std::string> devices;  // "/dev/net/tun"
  bool pty = false;
  bool network = false;  // needs the host's network namespace (user, tap, tcp sockets)
};
base::ErrorOr<void> add_host_needs(std::string_view kind, std::string_view name, std::string_view driver,
                                   const config::Node& options, const FactoryContext& context,
                                   HostNeeds& needs);

// The kinds and, per kind, the drivers this build supports (for errors and `vmlaunch plan`).
std::vector<std::string> known_kinds();
std::vector<std::string> known_drivers(std::string_view kind);

}  // namespace backends
