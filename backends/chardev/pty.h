// `pty` chardev: a pseudo-terminal whose slave path (/dev/pts/N) is printed so the user can attach
// `screen` or `picocom`. We keep a slave fd open ourselves so a user detaching does not turn the
// master into a stream of EIO/HUP; output with nobody reading fills the pty buffer and is then
// dropped and counted instead of blocking the vCPU.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backends/chardev.h"
#include "backends/chardev/pump.h"
#include "base/result.h"

namespace backends::chardev {

class PtyBackend : public CharBackend {
 public:
  static base::ErrorOr<std::unique_ptr<PtyBackend>> open();
  ~PtyBackend() override;

  void write(std::span<const uint8_t> data) override;
  void attach(CharReceiver* receiver) override;

  const std::string& path() const { return m_path; }
  uint64_t dropped() const { return m_dropped.load(); }

 private:
  PtyBackend(int master, int slave, std::string path);

  int m_master;
  int m_slave;
  std::string m_path;
  std::mutex m_write_lock;
  std::atomic<uint64_t> m_dropped{0};
  ReceiverSlot m_slot;
  Waker m_waker;
  std::atomic<bool> m_stop{false};
  std::thread m_reader;
};

}  // namespace backends::chardev
