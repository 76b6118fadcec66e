#include "backends/chardev/stdio.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "base/fd_io.h"
#include "security/thread_role.h"

namespace backends::chardev {

namespace {

// Saved terminal state, kept in plain statics because the signal handlers read it: a handler may
// only use async-signal-safe calls, and tcsetattr is one. One terminal at a time is enough (the
// launcher has one stdin); a second raw request on the same fd keeps the first saved state.
struct SavedTerminal {
  volatile sig_atomic_t active = 0;
  int fd = -1;
  termios state{};
};
SavedTerminal g_saved;
std::mutex g_saved_lock;

constexpr int kFatalSignals[] = {SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
struct sigaction g_previous[65];
bool g_handlers_installed = false;

void restore_saved() {
  if (g_saved.active) {
    tcsetattr(g_saved.fd, TCSANOW, &g_saved.state);
    g_saved.active = 0;
  }
}

void on_fatal_signal(int sig, siginfo_t* info, void* context) {
  const struct sigaction& previous = g_previous[sig];
  bool has_handler = (previous.sa_flags & SA_SIGINFO)
                         ? previous.sa_sigaction != nullptr
                         : (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN);
  if (has_handler) {
    // Someone else (a JIT handling its own faults, say) owns this signal: let them decide. The
    // terminal stays raw because the process may well continue.
    if (previous.sa_flags & SA_SIGINFO)
      previous.sa_sigaction(sig, info, context);
    else
      previous.sa_handler(sig);
    return;
  }
  restore_saved();
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_handlers_once() {
  if (g_handlers_installed) return;
  g_handlers_installed = true;
  std::atexit(restore_saved);
  for (int sig : kFatalSignals) {
    struct sigaction action {};
    action.sa_sigaction = on_fatal_signal;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(sig, &action, &g_previous[sig]);
  }
}

bool make_raw(int fd, bool keep_signals) {
  std::lock_guard lock(g_saved_lock);
  if (!isatty(fd)) return false;
  termios state;
  if (tcgetattr(fd, &state) != 0) return false;
  if (!g_saved.active) {
    g_saved.fd = fd;
    g_saved.state = state;
    install_handlers_once();
    g_saved.active = 1;
  }
  termios raw = state;
  cfmakeraw(&raw);
  // Keep output post-processing so the host terminal turns the guest's "\n" into a new line the
  // way every console user expects (QEMU does the same).
  raw.c_oflag |= OPOST;
  if (keep_signals) raw.c_lflag |= ISIG;
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  return tcsetattr(fd, TCSANOW, &raw) == 0;
}

constexpr std::string_view kHelp =
    "\r\nC-a h    print this help\r\nC-a x    exit vmlaunch\r\nC-a C-a  send C-a\r\n";

}  // namespace

void restore_terminals() {
  std::lock_guard lock(g_saved_lock);
  restore_saved();
}

void EscapeFilter::process(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  for (uint8_t byte : in) {
    if (!m_got_escape) {
      if (byte == kEscape)
        m_got_escape = true;
      else
        out.push_back(byte);
      continue;
    }
    m_got_escape = false;
    switch (byte) {
      case 'x':
      case 'X':
        if (m_quit) m_quit();
        break;
      case 'h':
      case 'H':
        if (m_help) m_help(kHelp);
        break;
      case kEscape:
        out.push_back(kEscape);
        break;
      default:
        out.push_back(kEscape);
        out.push_back(byte);
        break;
    }
  }
}

StdioBackend::StdioBackend(Options options)
    : m_options(std::move(options)), m_filter(m_options.quit, [this](std::string_view text) {
        std::lock_guard lock(m_write_lock);
        base::write_fully(m_options.out_fd, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
      }) {
  if (m_options.raw) m_raw_active = make_raw(m_options.in_fd, m_options.signal);
  m_reader = std::thread([this] {
    security::ThreadRole role(security::Role::Chardev);
    run();
  });
}

StdioBackend::~StdioBackend() {
  m_stop.store(true);
  m_waker.wake();
  m_slot.wake();
  m_reader.join();
  if (m_raw_active) restore_terminals();
}

void StdioBackend::run() {
  InputFilter filter;
  if (m_options.escape)
    filter = [this](std::span<const uint8_t> in, std::vector<uint8_t>& out) { m_filter.process(in, out); };
  // EOF on stdin (a script ran out) just ends input; the guest keeps running.
  read_loop(m_options.in_fd, m_waker, m_stop, m_slot, filter);
}

void StdioBackend::write(std::span<const uint8_t> data) {
  std::lock_guard lock(m_write_lock);
  size_t done = base::write_fully(m_options.out_fd, data);
  if (done < data.size()) m_dropped += data.size() - done;
}

void StdioBackend::attach(CharReceiver* receiver) {
  m_slot.attach(receiver);
}

}  // namespace backends::chardev
