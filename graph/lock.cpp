#include "graph/lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/fd_io.h"
#include "config/loader.h"
#include "graph/json_text.h"

namespace graph {

std::string lock_path_for(const std::string& config_path) {
  return config_path + ".lock";
}

base::ErrorOr<std::string> write_lock_file(const std::string& config_path, const std::string& text) {
  if (config_path == "-") return base::fail(base::Error("a machine file read from stdin has no lock file"));
  struct stat st;
  if (::stat(config_path.c_str(), &st) != 0)
    return base::fail(base::Error(config_path + ": " + std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return base::fail(base::Error(config_path + " is not a regular file; a lock file is written only "
                                                "next to a regular machine file"));
  // /dev/stdin (or /proc/self/fd/0) redirected from a regular file passes the check above, but its
  // lock would land in /dev or /proc: the lock goes next to a machine file in a real directory.
  std::error_code ec;
  std::string dir = std::filesystem::canonical(std::filesystem::absolute(config_path, ec).parent_path(), ec);
  if (ec || dir == "/dev" || dir.rfind("/dev/", 0) == 0 || dir == "/proc" || dir.rfind("/proc/", 0) == 0)
    return base::fail(base::Error(config_path +
                                  " is not a machine file in a directory; a lock file is written "
                                  "only next to a regular machine file"));
  std::string path = lock_path_for(config_path);
  // A lock file that is a symlink, device or directory is refused, not written through: rename
  // below would replace a symlink, but the user asked for the file next to the config.
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return base::fail(base::Error(path + " exists and is not a regular file (a symlink?); remove it first"));
  // Written to a temporary file in the same directory and renamed over the old lock, so a reader
  // (or a crash) never sees half a lock file.
  std::string temp = path + ".XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error("cannot create " + temp + ": " + std::strerror(errno)));
  auto fail = [&](const std::string& what) {
    std::string why = what + " " + temp + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(temp.c_str());
    return base::fail(base::Error(why));
  };
  if (!base::write_all(fd, text)) return fail("cannot write");
  if (::fchmod(fd, 0644) != 0) return fail("cannot set the mode of");
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    std::string why = "cannot write " + temp + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return base::fail(base::Error(why));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    std::string why = "cannot rename " + temp + " to " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return base::fail(base::Error(why));
  }
  return path;
}

std::optional<Lock> read_lock_file(const std::string& config_path, config::Diagnostics& diagnostics) {
  if (config_path == "-") return std::nullopt;  // a machine file on stdin has no lock file
  std::string path = lock_path_for(config_path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  std::string error;
  std::optional<std::string> text = config::read_file(path, &error);
  if (!text) {
    diagnostics.push_back(config::Diagnostic::error({path}, "", "cannot read the lock file: " + error));
    return std::nullopt;
  }
  config::ParseResult parsed = config::parse_string(*text, path, config::Format::Yaml);
  for (config::Diagnostic& d : parsed.diagnostics) diagnostics.push_back(std::move(d));
  if (!parsed.ok()) return std::nullopt;
  size_t before = diagnostics.size();
  Lock lock = lock_from_document(parsed.node, diagnostics);
  if (config::has_errors({diagnostics.begin() + static_cast<long>(before), diagnostics.end()}))
    return std::nullopt;
  return lock;
}

Lock lock_from_document(const config::Node& document, config::Diagnostics& diagnostics) {
  Lock lock;
  lock.location = document.location();
  auto bad = [&](const config::Location& at, std::string path, std::string message) {
    diagnostics.push_back(
        config::Diagnostic::error(at, std::move(path), std::move(message),
                                  "delete the lock file and run `vmlaunch plan --lock` again"));
  };
  if (!document.is_map()) {
    bad(document.location(), "", "a lock file is a JSON object");
    return lock;
  }
  const config::Node* version = document.find("vmlaunch-lock");
  if (!version || !version->is_int() || version->as_int() != 1) {
    bad(version ? version->location() : document.location(), "vmlaunch-lock",
        "unsupported lock file version");
    return lock;
  }
  if (const config::Node* machine = document.find("machine"); machine && machine->is_string())
    lock.machine = machine->as_string();
  const config::Node* devices = document.find("devices");
  if (!devices || !devices->is_list()) {
    bad(document.location(), "devices", "missing devices list");
    return lock;
  }
  for (size_t i = 0; i < devices->items().size(); ++i) {
    const config::Node& item = devices->items()[i];
    std::string path = "devices[" + std::to_string(i) + "]";
    auto field = [&](const char* key) -> const config::Node* {
      const config::Node* n = item.is_map() ? item.find(key) : nullptr;
      return n && n->is_string() ? n : nullptr;
    };
    const config::Node *id = field("id"), *driver = field("driver"), *bus = field("bus"),
                       *addr = field("addr");
    if (!id || !driver || !bus || !addr) {
      bad(item.location(), path, "a lock entry needs id, driver, bus and addr strings");
      continue;
    }
    lock.entries.push_back(
        {id->as_string(), driver->as_string(), bus->as_string(), addr->as_string(), item.location()});
  }
  return lock;
}

Lock lock_from_graph(const Graph& graph) {
  Lock lock;
  lock.machine = graph.machine.arch + "/" + graph.machine.type;
  for (const Device& d : graph.devices) {
    if (d.builtin || !d.address_inferred || d.bus.empty()) continue;
    lock.entries.push_back({d.id, d.driver, d.bus, d.address.to_string(), {}});
  }
  return lock;
}

std::string lock_to_json(const Lock& lock) {
  std::string out = "{\n  \"vmlaunch-lock\": 1,\n  \"machine\": " + json_string(lock.machine) + ",\n";
  out += "  \"devices\": [";
  for (size_t i = 0; i < lock.entries.size(); ++i) {
    const LockEntry& e = lock.entries[i];
    out += i ? ",\n" : "\n";
    out += "    {\"id\": " + json_string(e.id) + ", \"driver\": " + json_string(e.driver) +
           ", \"bus\": " + json_string(e.bus) + ", \"addr\": " + json_string(e.addr) + "}";
  }
  out += lock.entries.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

}  // namespace graph
