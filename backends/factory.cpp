#include "backends/factory.h"

#include <cstdio>
#include <map>
#include <type_traits>

#include "backends/block/image.h"
#include "backends/block/snapshot.h"
#include "backends/chardev/pty.h"
#include "backends/chardev/simple.h"
#include "backends/chardev/socket.h"
#include "backends/chardev/stdio.h"
#include "backends/fs/p9_server.h"
#include "backends/fs/virtiofsd.h"
#include "backends/net_factory.h"
#include "backends/options.h"
#include "backends/rng/random.h"
#include "base/field_use.h"
#include "passthrough/usb_host.h"
#include "passthrough/vfio.h"

// Each backend's driver and options, checked by the driver's maker (unknown options are errors).
VML_CONSUMES("backends.chardev.*");
VML_CONSUMES("backends.block.*");
VML_CONSUMES("backends.rng.*");
VML_CONSUMES("backends.fs.*");

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
  o.signal = TRY(options.boolean("signal")).value_or(false);
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
  if (path && path->rfind("tcp:", 0) == 0) {
    // "tcp:HOST:PORT" (HOST may be empty for localhost): the schema's one-string form.
    auto colon = path->rfind(':');
    std::string host_part = path->substr(4, colon - 4);
    std::string port_part = path->substr(colon + 1);
    // The length bound comes first: std::stoul throws out_of_range on a long run of digits.
    if (colon <= 3 || port_part.empty() || port_part.size() > 5 ||
        port_part.find_first_not_of("0123456789") != std::string::npos || std::stoul(port_part) > 65535)
      return base::fail(options.error("path", "expected tcp:HOST:PORT, got '" + *path + "'"));
    o.host = host_part.empty() ? "127.0.0.1" : host_part;
    o.port = static_cast<uint16_t>(std::stoul(port_part));
    path.reset();
    host.reset();
    port.reset();
  } else if (path) {
    o.path = resolve_path(*path, context);
  }
  if (host) o.host = *host;
  if (port) o.port = static_cast<uint16_t>(*port);
  auto socket = chardev::SocketBackend::open(o);
  if (!socket) return base::fail(options.error(path ? "path" : "port", socket.error().message));
  // Port 0 asks the kernel for a free port: the user can only connect if we say which one.
  if (o.server && o.path.empty() && o.port == 0)
    std::fprintf(stderr, "vmlaunch: %s: listening on %s:%u\n", options.what().c_str(), o.host.c_str(),
                 static_cast<unsigned>((*socket)->port()));
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

// ---- block ----

using BlockMaker = base::ErrorOr<std::shared_ptr<BlockBackend>> (*)(Options&, const FactoryContext&,
                                                                    std::string_view driver);

base::ErrorOr<std::shared_ptr<BlockBackend>> make_image(Options& options, const FactoryContext& context,
                                                        std::string_view driver) {
  // `file` is the schema's name; `path` is accepted as a synonym (the other kinds use it).
  auto file = TRY(options.string("file"));
  auto path = TRY(options.string("path"));
  if (!file && !path) return base::fail(options.error("file", "missing (the image file to use)"));
  if (file && path) return base::fail(options.error("path", "give file or path, not both"));
  bool read_only = TRY(options.boolean("readonly")).value_or(false);
  if (auto alias = TRY(options.boolean("read-only"))) read_only = *alias;
  bool direct = TRY(options.boolean("direct")).value_or(false);
  bool snapshot = TRY(options.boolean("snapshot")).value_or(false);
  TRY(options.finish());
  const char* key = file ? "file" : "path";
  if (direct && driver != "raw")
    return base::fail(options.error("direct", "only the raw driver supports direct"));
  if (driver == "zstd" && !read_only && !snapshot)
    return base::fail(
        options.error(key, "zstd images are read-only: set readonly: true (or snapshot: true)"));
  block::ImageOptions image_options{std::string(driver), read_only || snapshot, direct};
  auto image = block::open_image(resolve_path(file ? *file : *path, context), image_options);
  if (!image) return base::fail(options.error(key, image.error().message));
  if (!snapshot) return std::move(image).value();
  auto overlay = block::SnapshotBackend::create(std::move(image).value());
  if (!overlay) return base::fail(options.error("snapshot", overlay.error().message));
  return std::shared_ptr<BlockBackend>(std::move(overlay).value());
}

const std::map<std::string, BlockMaker, std::less<>>& block_makers() {
  static const std::map<std::string, BlockMaker, std::less<>> makers = {
      {"raw", make_image}, {"qcow2", make_image}, {"zstd", make_image}};
  return makers;
}

// ---- rng ----

using RngMaker = base::ErrorOr<std::shared_ptr<RngBackend>> (*)(Options&, const FactoryContext&);

base::ErrorOr<std::shared_ptr<RngBackend>> make_random(Options& options, const FactoryContext& context) {
  auto file = TRY(options.string("file"));
  TRY(options.finish());
  auto rng = rng::FileRng::open(file ? resolve_path(*file, context) : "/dev/urandom");
  if (!rng) return base::fail(options.error("file", rng.error().message));
  return std::shared_ptr<RngBackend>(std::move(rng).value());
}

base::ErrorOr<std::shared_ptr<RngBackend>> make_builtin(Options& options, const FactoryContext&) {
  TRY(options.finish());
  return std::shared_ptr<RngBackend>(std::make_shared<rng::GetrandomRng>());
}

const std::map<std::string, RngMaker, std::less<>>& rng_makers() {
  static const std::map<std::string, RngMaker, std::less<>> makers = {{"random", make_random},
                                                                      {"builtin", make_builtin}};
  return makers;
}

// ---- fs ----
using FsMaker = base::ErrorOr<std::shared_ptr<FsBackend>> (*)(Options&, const FactoryContext&);

// A host directory served by vmlaunch's own 9P2000.L server (QEMU's `-fsdev local`).
base::ErrorOr<std::shared_ptr<FsBackend>> make_local(Options& options, const FactoryContext& context) {
  std::string path = TRY(options.required_string("path"));
  bool read_only = TRY(options.boolean("readonly")).value_or(false);
  if (auto alias = TRY(options.boolean("read-only"))) read_only = *alias;
  TRY(options.finish());
  auto server = fs::P9Server::open(resolve_path(path, context), read_only);
  if (!server) return base::fail(options.error("path", server.error().message));
  return std::shared_ptr<FsBackend>(std::move(server).value());
}

// A host directory served over virtio-fs by virtiofsd, which this starts (for vhost-user-fs devices).
base::ErrorOr<std::shared_ptr<FsBackend>> make_virtiofsd(Options& options, const FactoryContext& context) {
  std::string path = TRY(options.required_string("path"));
  bool read_only = TRY(options.boolean("readonly")).value_or(false);
  TRY(options.finish());
  auto daemon = fs::Virtiofsd::start(resolve_path(path, context), read_only);
  if (!daemon) return base::fail(options.error("", daemon.error().message));
  return std::shared_ptr<FsBackend>(std::move(daemon).value());
}

const std::map<std::string, FsMaker, std::less<>>& fs_makers() {
  static const std::map<std::string, FsMaker, std::less<>> makers = {{"local", make_local},
                                                                     {"virtiofsd", make_virtiofsd}};
  return makers;
}

template <typename Map>
std::vector<std::string> keys(const Map& map) {
  std::vector<std::string> out;
  for (const auto& entry : map) out.push_back(entry.first);
  return out;
}

// Finds `driver` among one kind's makers and runs it on the entry's options; an unknown driver is
// an error that lists the known ones. Every kind but net (its drivers load on demand) comes here.
template <typename Map, typename... Extra>
auto make_backend(const Map& makers, std::string_view kind, std::string_view name, std::string_view driver,
                  const config::Node& options, const FactoryContext& context, Extra... extra)
    -> std::invoke_result_t<typename Map::mapped_type, Options&, const FactoryContext&, Extra...> {
  Options checked(options, describe(kind, name, driver));
  auto maker = makers.find(driver);
  if (maker == makers.end())
    return base::fail(checked.error("", "unknown " + std::string(kind) + " driver '" + std::string(driver) +
                                            "' (known: " + join(keys(makers)) + ")"));
  skip_identity_keys(checked);
  return maker->second(checked, context, extra...);
}

}  // namespace

std::vector<std::string> known_kinds() {
  return {"block", "chardev", "fs", "net", "rng"};
}

std::vector<std::string> known_drivers(std::string_view kind) {
  if (kind == "chardev") return keys(chardev_makers());
  if (kind == "block") return keys(block_makers());
  if (kind == "rng") return keys(rng_makers());
  if (kind == "fs") return keys(fs_makers());
  if (kind == "net") return net_drivers();
  return {};
}

base::ErrorOr<std::shared_ptr<CharBackend>> create_chardev(std::string_view name, std::string_view driver,
                                                           const config::Node& options,
                                                           const FactoryContext& context) {
  return make_backend(chardev_makers(), "chardev", name, driver, options, context);
}

base::ErrorOr<std::shared_ptr<BlockBackend>> create_block(std::string_view name, std::string_view driver,
                                                          const config::Node& options,
                                                          const FactoryContext& context) {
  return make_backend(block_makers(), "block", name, driver, options, context, driver);
}

base::ErrorOr<std::shared_ptr<RngBackend>> create_rng(std::string_view name, std::string_view driver,
                                                      const config::Node& options,
                                                      const FactoryContext& context) {
  return make_backend(rng_makers(), "rng", name, driver, options, context);
}

base::ErrorOr<std::shared_ptr<FsBackend>> create_fs(std::string_view name, std::string_view driver,
                                                    const config::Node& options,
                                                    const FactoryContext& context) {
  return make_backend(fs_makers(), "fs", name, driver, options, context);
}

base::ErrorOr<std::shared_ptr<NetBackend>> create_net(std::string_view name, std::string_view driver,
                                                      const config::Node& options,
                                                      const FactoryContext& context) {
  Options checked(options, describe("net", name, driver));
  skip_identity_keys(checked);
  return make_net(checked, context, driver);
}

base::ErrorOr<AnyBackend> create_backend(std::string_view kind, std::string_view name,
                                         std::string_view driver, const config::Node& options,
                                         const FactoryContext& context) {
  AnyBackend out;
  out.kind = std::string(kind);
  out.name = std::string(name);
  out.driver = std::string(driver);
  if (kind == "chardev") {
    out.chardev = TRY(create_chardev(name, driver, options, context));
  } else if (kind == "block") {
    out.block = TRY(create_block(name, driver, options, context));
  } else if (kind == "rng") {
    out.rng = TRY(create_rng(name, driver, options, context));
  } else if (kind == "net") {
    out.net = TRY(create_net(name, driver, options, context));
  } else if (kind == "fs") {
    out.fs = TRY(create_fs(name, driver, options, context));
  } else if (kind == "passthrough" && driver == "vfio-pci") {
    // Opened now, before the VMM is confined: the VFIO group and device descriptors serve every
    // machine built from this file (guest resets), one at a time.
    const config::Node* host = options.is_map() ? options.find("host") : nullptr;
    if (!host || !host->is_string())
      return base::fail(base::Error("passthrough " + std::string(name) + ": no host"));
    auto opened = passthrough::VfioDevice::open(host->as_string());
    if (!opened.ok())
      return base::fail(base::Error(host->location().to_string() + ": passthrough." + std::string(name) +
                                    ".host: " + opened.error().message));
    out.vfio = std::move(opened.value());
  } else if (kind == "passthrough" && driver == "usb-host") {
    // Opened now too: the usbfs node, libusb on it, the host's drivers detached; kept across rebuilds.
    const config::Node* host = options.is_map() ? options.find("host") : nullptr;
    if (!host || !host->is_string())
      return base::fail(base::Error("passthrough " + std::string(name) + ": no host"));
    const config::Node* serial = options.find("serial");
    auto opened = passthrough::UsbHostDevice::open(host->as_string(),
                                                   serial && serial->is_string() ? serial->as_string() : "");
    if (!opened.ok())
      return base::fail(base::Error(host->location().to_string() + ": passthrough." + std::string(name) +
                                    ".host: " + opened.error().message));
    out.usb = std::move(opened.value());
  } else {
    Options checked(options, describe(kind, name, driver));
    return base::fail(checked.error(
        "", "unknown backend kind '" + std::string(kind) + "' (known: " + join(known_kinds()) + ")"));
  }
  return out;
}

namespace {

// A unix socket we listen on is created at start: its directory must be there and writable. One
// we connect to must exist: the socket file itself is enough.
void add_socket_path(const std::string& path, bool server, HostNeeds& needs) {
  if (server)
    needs.paths.push_back({std::filesystem::path(path).parent_path().string(), true, true});
  else
    needs.paths.push_back({path, true, false});
}

}  // namespace

base::ErrorOr<void> add_host_needs(std::string_view kind, std::string_view name, std::string_view driver,
                                   const config::Node& options, const FactoryContext& context,
                                   HostNeeds& needs) {
  Options checked(options, describe(kind, name, driver));
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto value = checked.string(key);
    return value.ok() ? value.value() : std::nullopt;
  };
  auto flag = [&](const char* key) {
    auto value = checked.boolean(key);
    return value.ok() && value.value().value_or(false);
  };
  if (kind == "chardev") {
    if (driver == "file") {
      if (auto path = text("path")) needs.paths.push_back({resolve_path(*path, context), true, false});
    } else if (driver == "pty") {
      needs.pty = true;
    } else if (driver == "socket") {
      auto path = text("path");
      if (!path || path->rfind("tcp:", 0) == 0)
        needs.network = true;
      else
        add_socket_path(resolve_path(*path, context), flag("server"), needs);
    }
  } else if (kind == "block") {
    auto file = text("file");
    if (!file) file = text("path");
    if (!file) return {};
    bool read_only = flag("readonly") || flag("read-only") || flag("snapshot");
    std::string image = resolve_path(*file, context);
    auto chain = TRY(block::image_chain_files(image, std::string(driver)));
    for (size_t i = 0; i < chain.size(); ++i) needs.paths.push_back({chain[i], i == 0 && !read_only, false});
  } else if (kind == "rng") {
    if (driver == "random") {
      auto file = text("file");
      needs.paths.push_back({file ? resolve_path(*file, context) : "/dev/urandom", false, false});
    }
  } else if (kind == "fs") {
    if (driver == "virtiofsd")
      return base::fail(checked.error("",
                                      "virtiofsd shares are not available in the jail yet (security.jail): "
                                      "use a 9p share (type: 9p) or turn the jail off"));
    if (auto path = text("path"))
      needs.paths.push_back({resolve_path(*path, context), !(flag("readonly") || flag("read-only")), true});
  } else if (kind == "passthrough") {
    // The VFIO group is found through sysfs and opened with the backends, which in a jail happens
    // inside it (no /sys, no /dev/vfio): not yet.
    return base::fail(checked.error("",
                                    "passthrough devices are not available in the jail yet (security.jail): "
                                    "turn the jail off for this machine"));
  } else if (kind == "net") {
    if (driver == "tap") {
      needs.devices.push_back("/dev/net/tun");
      needs.network = true;
    } else if (driver == "socket") {
      auto path = text("path");
      if (!path || path->rfind("tcp:", 0) == 0)
        needs.network = true;
      else
        add_socket_path(resolve_path(*path, context), flag("server"), needs);
    } else {
      needs.network = true;  // user networking: slirp's sockets are the host's
    }
  }
  return {};
}

}  // namespace backends
