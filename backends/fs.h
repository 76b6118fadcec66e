// Shared-folder backend interface, for virtio-9p (and vhost-user-fs, see vhost_user() below): a host
// directory served to the guest as a 9P2000.L file server. The device only moves messages between its
// virtqueue and serve(); everything about files (and every check on what the guest asks for) lives behind
// this interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace backends {

class FsBackend {
 public:
  virtual ~FsBackend() = default;
  // Whether the share refuses every change (each writing request answers EROFS).
  virtual bool read_only() const = 0;
  // Serves one 9P request (`request` as the guest wrote it: hostile, any length) and writes the
  // reply into `reply`, whose size is the room the guest offered. Returns the reply's length; 0 when
  // not even an error reply fits or the request is too short to carry a tag. Never throws; one
  // caller at a time (the device serialises its queue).
  virtual size_t serve(std::span<const uint8_t> request, std::span<uint8_t> reply) = 0;
  // The device was reset: forget every fid and open file (the next session starts with Tversion).
  virtual void reset() = 0;

  // Snapshots: the session the guest holds (negotiated msize, its fids and what they name), saved
  // with the device between requests. cannot_save() says why the session cannot be reproduced from
  // the share (a file deleted or moved away while a fid names it), nullopt if it can. load_state()
  // gets what save_state() wrote, from a file: hostile, checked as guest requests are.
  // save_state() never returns more than kMaxSavedState bytes: cannot_save() refuses a session
  // that would need more, so every saved state can be loaded again.
  static constexpr size_t kMaxSavedState = 16u << 20;
  virtual std::optional<std::string> cannot_save() const { return "this fs backend cannot save its state"; }
  virtual std::vector<uint8_t> save_state() { return {}; }
  virtual base::ErrorOr<void> load_state(std::span<const uint8_t> bytes) {
    (void)bytes;
    return base::fail(base::Error("this fs backend cannot load a saved state"));
  }

  // A share served by an external vhost-user daemon (virtiofsd) instead of vmlaunch's 9P server:
  // such a backend answers serve() with nothing and is for vhost-user-fs devices only.
  virtual bool vhost_user() const { return false; }
  // The connected vhost-user socket, handed over once (the caller owns it); -1 otherwise.
  virtual int take_vhost_user_socket() { return -1; }
};

}  // namespace backends
