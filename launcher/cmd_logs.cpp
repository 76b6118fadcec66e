// `vmlaunch logs NAME [-f] [--tail N]`: the machine's serial console output from its console log
// (kept whatever the console backend is, capped, one rotation). -f follows it until the machine stops.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "launcher/command.h"
#include "launcher/machine_state.h"

namespace launcher {
namespace {

void write_out(std::string_view text) {
  if (!text.empty()) std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

std::string last_lines(const std::string& text, long lines) {
  if (lines < 0) return text;
  size_t pos = text.size();
  // A final newline ends the last line; it does not start an empty one.
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (long seen = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
  }
  return lines == 0 ? std::string() : text.substr(pos);
}

int run_logs(const std::string& name, bool follow, long tail) {
  if (auto valid = vmm::check_name(name); !valid.ok()) {
    std::fprintf(stderr, "vmlaunch: %s\n", valid.error().message.c_str());
    return kExitBadInput;
  }
  auto root = open_state_root();
  if (!root) return kExitRuntimeFailure;
  std::filesystem::path dir = *root / name;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    std::fprintf(stderr, "vmlaunch: no machine named %s\n", name.c_str());
    return kExitRuntimeFailure;
  }
  std::filesystem::path log = dir / "console.log";
  std::string current = read_text(log);
  write_out(last_lines(read_text(dir / "console.log.1") + current, tail));
  if (!follow) return kExitOk;
  uint64_t offset = current.size();
  for (;;) {
    bool running = vmm::read_record(*root, name).vmm_alive;
    struct stat st {};
    if (::stat(log.c_str(), &st) == 0) {
      uint64_t size = static_cast<uint64_t>(st.st_size);
      if (size < offset) offset = 0;  // rotated: the new file starts over
      if (size > offset) {
        std::ifstream in(log, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(offset));
        std::string chunk(size - offset, '\0');
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        chunk.resize(static_cast<size_t>(in.gcount()));
        offset += chunk.size();
        write_out(chunk);
        continue;
      }
    }
    if (!running) return kExitOk;  // checked before the last read: nothing written after it is lost
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

void register_logs(CLI::App& app, Action& action) {
  CLI::App* cmd =
      app.add_subcommand("logs", "Print a machine's serial console output (kept in its console log)");
  auto name = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false);
  auto tail = std::make_shared<long>(-1);
  cmd->add_option("NAME", *name, "Machine name (see ps)")->required();
  cmd->add_flag("-f,--follow", *follow, "Keep printing new output until the machine stops");
  cmd->add_option("-n,--tail", *tail, "Print only the last N lines first")->check(CLI::NonNegativeNumber);
  cmd->callback([&action, name, follow, tail] {
    action = [name, follow, tail] { return run_logs(*name, *follow, *tail); };
  });
}

}  // namespace launcher
