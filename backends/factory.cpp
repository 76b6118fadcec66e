#include "backends/factory.h"

#include <cstdio>
#include <map>

#include "backends/chardev/pty.h"
#include "backends/chardev/simple.h"
#include "backends/chardev/socket.h"
#include "backends/chardev/stdio.h"
#include "backends/options.h"

namespace backends {

namespace {

std::string resolve_path(const std::string& path, const FactoryContext& context) {
  std::filesystem::path p(path);
  if (p.is_relative() && !context.base_dir.empty()) p = context.base_dir / p;
  return p.string();
}

// Keys that describe the backend itself rather than configure the driver: a caller may hand us
// the whole backend entry.
void skip_identity_keys(Options& options) {
  (void)options.string("driver");
  (void)options.string("kind");
  (void)options.string("name");
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

using ChardevMaker = base::ErrorOr<std::shared_ptr<CharBackend>> (*)(Options&, const FactoryContext&);

base::ErrorOr<std::shared_ptr<CharBackend>> make_stdio(Options& options, const FactoryContext& context) {
  chardev::StdioBackend::Options o;
  o.escape = TRY(options.boolean("escape")).value_or(true);
  o.raw = TRY(options.boolean("raw")).value_or(true);
  o.quit = context.quit;
  TRY(options.finish());
  return std::shared_ptr<CharBackend>(std::make_shared<chardev::StdioBackend>(std::move(o)));
}

base::ErrorOr<std::shared_ptr<CharBackend>> make_null(Options& options, const FactoryContext&) {
  TRY(options.finish());
  return std::shared_ptr<CharBackend>(std::make_shared<chardev::NullBackend>());
}

base::ErrorOr<std::shared_ptr<CharBackend>> make_file(Options& options, const FactoryContext& context) {
  std::string path = TRY(options.required_string("path"));
  TRY(options.finish());
  auto file = chardev::FileBackend::open(resolve_path(path, context));
  if (!file) return base::fail(options.error("path", file.error().message));
  return std::shared_ptr<CharBackend>(std::move(file).value());
}

base::ErrorOr<std::shared_ptr<CharBackend>> make_ringbuf(Options& options, const FactoryContext&) {
  int64_t size = TRY(options.integer("size", 1, int64_t(1) << 30)).value_or(64 * 1024);
  TRY(options.finish());
  return std::shared_ptr<CharBackend>(std::make_shared<chardev::RingbufBackend>(static_cast<size_t>(size)));
}

base::ErrorOr<std::shared_ptr<CharBackend>> make_pty(Options& options, const FactoryContext&) {
  TRY(options.finish());
  auto pty = TRY(chardev::PtyBackend::open());
  // The user needs the path to attach a terminal program; nothing else would tell them.
  std::fprintf(stderr, "vmlaunch: %s: pty at %s\n", options.what().c_str(), pty->path().c_str());
  return std::shared_ptr<CharBackend>(std::move(pty));
}

base::ErrorOr<std::shared_ptr<CharBackend>> make_socket(Options& options, const FactoryContext& context) {
  chardev::SocketBackend::Options o;
  auto path = TRY(options.string("path"));
  auto host = TRY(options.string("host"));
  auto port = TRY(options.integer("port", 0, 65535));
  o.server = TRY(options.boolean("server")).value_or(false);
  o.wait = TRY(options.boolean("wait")).value_or(false);
  o.reconnect_seconds = static_cast<unsigned>(TRY(options.integer("reconnect", 0, 3600)).value_or(0));
  TRY(options.finish());
  if (path && (host || port))
    return base::fail(options.error("path", "give either path (unix) or host/port (tcp)"));
  if (!path && !port)
    return base::fail(options.error("port", "missing (give path for a unix socket or port for tcp)"));
  if (path) o.path = resolve_path(*path, context);
  if (host) o.host = *host;
  if (port) o.port = static_cast<uint16_t>(*port);
  auto socket = chardev::SocketBackend::open(o);
  if (!socket) return base::fail(options.error(path ? "path" : "port", socket.error().message));
  return std::shared_ptr<CharBackend>(std::move(socket).value());
}

const std::map<std::string, ChardevMaker, std::less<>>& chardev_makers() {
  static const std::map<std::string, ChardevMaker, std::less<>> makers = {
      {"stdio", make_stdio},     {"null", make_null}, {"file", make_file},
      {"ringbuf", make_ringbuf}, {"pty", make_pty},   {"socket", make_socket}};
  return makers;
}

std::string describe(std::string_view kind, std::string_view name, std::string_view driver) {
  return "backend '" + std::string(name) + "' (" + std::string(kind) + " " + std::string(driver) + ")";
}

}  // namespace

std::vector<std::string> known_kinds() {
  return {"chardev"};
}

std::vector<std::string> known_drivers(std::string_view kind) {
  std::vector<std::string> out;
  if (kind == "chardev")
    for (const auto& [driver, maker] : chardev_makers()) out.push_back(driver);
  return out;
}

base::ErrorOr<std::shared_ptr<CharBackend>> create_chardev(std::string_view name, std::string_view driver,
                                                           const config::Node& options,
                                                           const FactoryContext& context) {
  Options checked(options, describe("chardev", name, driver));
  auto maker = chardev_makers().find(driver);
  if (maker == chardev_makers().end())
    return base::fail(checked.error("", "unknown chardev driver '" + std::string(driver) +
                                            "' (known: " + join(known_drivers("chardev")) + ")"));
  skip_identity_keys(checked);
  return maker->second(checked, context);
}

base::ErrorOr<AnyBackend> create_backend(std::string_view kind, std::string_view name,
                                         std::string_view driver, const config::Node& options,
                                         const FactoryContext& context) {
  AnyBackend out{std::string(kind), std::string(name), std::string(driver), {}, {}, {}, {}};
  if (kind == "chardev") {
    out.chardev = TRY(create_chardev(name, driver, options, context));
    return out;
  }
  Options checked(options, describe(kind, name, driver));
  return base::fail(checked.error(
      "", "unknown backend kind '" + std::string(kind) + "' (known: " + join(known_kinds()) + ")"));
}

}  // namespace backends
