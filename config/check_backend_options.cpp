#include "config/checks.h"
#include "config/hostfwd.h"
#include "config/schema.h"

namespace config {

// What the backends would only find out at `up` although the file alone decides it: a hostfwd rule
// with port 99999 or address 999.1.1.1, a socket (or debug.gdb) given both a unix path and a TCP
// host/port.
Diagnostics check_backend_options(const Node& document) {
  Diagnostics out;
  // The gdb stub's address is written as a socket chardev's, with the same rule: one or the other.
  const Node* debug = document.is_map() ? document.find("debug") : nullptr;
  if (const Node* gdb = debug && debug->is_map() ? debug->find("gdb") : nullptr; gdb && gdb->is_map()) {
    const Node* unix_path = gdb->find("path");
    const Node* host = gdb->find("host");
    const Node* port = gdb->find("port");
    if (unix_path && (host || port))
      out.push_back(Diagnostic::error(
          (host ? *host : *port).location(), host ? "debug.gdb.host" : "debug.gdb.port",
          std::string("debug.gdb has both a unix socket path and a TCP ") + (host ? "host" : "port"),
          "give either path (unix socket) or host/port (TCP)"));
  }
  const Node* backends = document.is_map() ? document.find("backends") : nullptr;
  if (!backends || !backends->is_map()) return out;
  for (const Node::Entry& kind : backends->entries()) {
    if (!kind.value.is_map()) continue;
    for (const Node::Entry& backend : kind.value.entries()) {
      const Node& options = backend.value;
      if (!options.is_map()) continue;
      const std::string path = join_path(join_path("backends", kind.key), backend.key);
      const Node* driver = options.find("driver");
      const std::string name = driver && driver->is_string() ? driver->as_string() : "";

      if (name == "socket") {
        const Node* unix_path = options.find("path");
        const Node* host = options.find("host");
        const Node* port = options.find("port");
        if (unix_path && (host || port)) {
          const Node& tcp = host ? *host : *port;
          out.push_back(Diagnostic::error(tcp.location(), join_path(path, host ? "host" : "port"),
                                          "backend \"" + backend.key +
                                              "\" has both a unix socket path and a TCP " +
                                              (host ? "host" : "port"),
                                          "give either path (unix socket) or host/port (TCP)"));
        }
      }

      if (kind.key == "net" && name == "user") {
        const Node* rules = options.find("hostfwd");
        if (!rules || !rules->is_list()) continue;
        for (size_t i = 0; i < rules->items().size(); ++i) {
          const Node& rule = rules->items()[i];
          if (!rule.is_string()) continue;
          HostForward parsed;
          std::string why;
          if (!parse_hostfwd(rule.as_string(), parsed, why))
            out.push_back(Diagnostic::error(rule.location(), join_path(join_path(path, "hostfwd"), i), why));
        }
      }
    }
  }
  return out;
}

}  // namespace config
