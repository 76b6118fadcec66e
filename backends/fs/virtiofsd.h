// The `virtiofsd` fs backend: a host directory shared over virtio-fs by Debian's virtiofsd
// (/usr/lib/qemu/virtiofsd, package qemu-system-common), which vmlaunch starts when the backend is
// created (at `up`) and stops when it is destroyed. The daemon listens on a socket in a private
// 0700 temporary directory; we connect once and hand the socket to the vhost-user-fs device.
//
// Read-only shares: this virtiofsd (QEMU 7.2's C daemon) has no read-only option, so the daemon
// runs in its own mount namespace in which the shared directory is a read-only bind mount; every
// write the guest attempts fails with EROFS in the kernel, whatever the daemon does.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "backends/fs.h"
#include "base/result.h"

namespace backends::fs {

// Where virtiofsd is looked for; the environment variable VMLAUNCH_VIRTIOFSD overrides it.
constexpr const char* kVirtiofsdPath = "/usr/lib/qemu/virtiofsd";

class Virtiofsd : public FsBackend {
 public:
  // Starts virtiofsd on `directory` and connects to it. Fails (naming the package to install)
  // when virtiofsd is missing, and when it exits or does not listen within a few seconds.
  static base::ErrorOr<std::unique_ptr<Virtiofsd>> start(const std::string& directory, bool read_only);
  ~Virtiofsd() override;

  bool read_only() const override { return m_read_only; }
  size_t serve(std::span<const uint8_t>, std::span<uint8_t>) override { return 0; }
  void reset() override {}
  bool vhost_user() const override { return true; }
  int take_vhost_user_socket() override;

  pid_t pid() const { return m_pid; }

 private:
  Virtiofsd() = default;
  bool m_read_only = false;
  pid_t m_pid = -1;
  int m_socket = -1;
  std::string m_dir;  // the private directory holding the socket
};

}  // namespace backends::fs
