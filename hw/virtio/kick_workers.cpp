#include "hw/virtio/kick_workers.h"

namespace hw::virtio {

void KickWorkers::start(unsigned count, security::Role role, std::function<void()> service) {
  m_service = std::move(service);
  m_stop = false;
  for (unsigned i = 0; i < count; ++i)
    m_threads.emplace_back([this, role] {
      security::ThreadRole declared(role);
      run();
    });
}

void KickWorkers::kick() {
  {
    std::lock_guard lock(m_lock);
    m_kicks++;
  }
  m_wake.notify_one();
}

void KickWorkers::stop() {
  {
    std::lock_guard lock(m_lock);
    m_stop = true;
  }
  m_wake.notify_all();
  for (std::thread& t : m_threads) t.join();
  m_threads.clear();
}

void KickWorkers::run() {
  uint64_t seen = ~0ull;  // differs from any count: a fresh thread services once at start
  while (true) {
    {
      std::unique_lock lock(m_lock);
      m_wake.wait(lock, [&] { return m_stop.load() || m_kicks != seen; });
      if (m_stop) return;
      seen = m_kicks;
    }
    m_service();
  }
}

}  // namespace hw::virtio
