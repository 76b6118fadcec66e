#include "launcher/machine_state.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace launcher {

std::optional<std::filesystem::path> open_state_root() {
  auto root = vmm::state_root();
  if (!root.ok()) {
    std::fprintf(stderr, "vmlaunch: state directory: %s\n", root.error().message.c_str());
    return std::nullopt;
  }
  return root.value();
}

std::optional<vmm::MachineRecord> running_record(const std::filesystem::path& root, const std::string& name) {
  vmm::MachineRecord record = vmm::read_record(root, name);
  if (record.vmm_alive && record.state == "running") return record;
  std::fprintf(stderr, "vmlaunch: no running machine named %s%s\n", name.c_str(),
               record.state == "stale" ? (" (stale: " + record.stale_reason + ")").c_str() : "");
  return std::nullopt;
}

nlohmann::json record_json(const vmm::MachineRecord& record) {
  nlohmann::json out = {{"name", record.name},
                        {"state", record.state},
                        {"pid", record.pid},
                        {"accelerator", record.accelerator},
                        {"vcpus", record.vcpus},
                        {"memory", record.memory},
                        {"config", record.config_path},
                        {"started_at", record.started_at},
                        {"dir", record.dir.string()}};
  out["uptime_s"] = record.state == "running" ? vmm::now_seconds() - record.started_at : 0.0;
  if (record.state == "stale") out["stale_reason"] = record.stale_reason;
  if (record.state == "stopped")
    out["exit"] = {{"status", record.exit_status}, {"reason", record.exit_reason}};
  return out;
}

std::string format_uptime(const vmm::MachineRecord& record) {
  if (record.state != "running" || record.started_at <= 0) return "-";
  long s = static_cast<long>(vmm::now_seconds() - record.started_at);
  char text[32];
  if (s < 3600)
    std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, (s / 60) % 60);
  return text;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace launcher
