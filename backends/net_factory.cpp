#include "backends/net_factory.h"

#include <cstdio>

#include "backends/net/slirp.h"
#include "backends/net/slirp_library.h"
#include "backends/net/stream.h"
#include "backends/net/tap.h"
#include "base/field_use.h"

VML_CONSUMES("backends.net.*");

namespace backends {

std::vector<std::string> net_drivers() {
  return {"socket", "tap", "user"};
}

namespace {

base::ErrorOr<std::shared_ptr<NetBackend>> make_user(Options& options, const FactoryContext& context) {
  net::SlirpBackend::Options o;
  for (const std::string& rule : TRY(options.string_list("hostfwd"))) {
    auto parsed = net::parse_hostfwd(rule);
    if (!parsed) return base::fail(options.error("hostfwd", parsed.error().message));
    o.forwards.push_back(*parsed);
  }
  o.restricted = TRY(options.boolean("restrict")).value_or(false);
  o.hostname = TRY(options.string("hostname")).value_or(context.machine_name);
  TRY(options.finish());
  // A missing libslirp is about the driver the file chose, not about any of its options.
  if (auto library = net::slirp_library(); !library)
    return base::fail(options.error("driver", library.error().message));
  auto slirp = net::SlirpBackend::create(o);
  if (!slirp) return base::fail(options.error(o.forwards.empty() ? "" : "hostfwd", slirp.error().message));
  return std::shared_ptr<NetBackend>(std::move(slirp).value());
}

base::ErrorOr<std::shared_ptr<NetBackend>> make_tap(Options& options, const FactoryContext&) {
  std::string ifname = TRY(options.required_string("ifname"));
  TRY(options.finish());
  auto tap = net::TapBackend::open(ifname);
  if (!tap) return base::fail(options.error("ifname", tap.error().message));
  return std::shared_ptr<NetBackend>(std::move(tap).value());
}

base::ErrorOr<std::shared_ptr<NetBackend>> make_stream(Options& options, const FactoryContext& context) {
  net::StreamBackend::Options o;
  auto path = TRY(options.string("path"));
  auto host = TRY(options.string("host"));
  auto port = TRY(options.integer("port", 0, 65535));
  o.server = TRY(options.boolean("server")).value_or(false);
  TRY(options.finish());
  if (path && (host || port))
    return base::fail(options.error("path", "give either path (unix) or host/port (tcp)"));
  if (!path && !port)
    return base::fail(options.error("port", "missing (give path for a unix socket or port for tcp)"));
  if (path) {
    std::filesystem::path p(*path);
    if (p.is_relative() && !context.base_dir.empty()) p = context.base_dir / p;
    o.path = p.string();
  }
  if (host) o.host = *host;
  if (port) o.port = static_cast<uint16_t>(*port);
  auto stream = net::StreamBackend::open(o);
  if (!stream) return base::fail(options.error(path ? "path" : "port", stream.error().message));
  // Port 0 asks the kernel for a free port: the peer can only connect if we say which one.
  if (o.server && o.path.empty() && o.port == 0)
    std::fprintf(stderr, "vmlaunch: %s: listening on %s:%u\n", options.what().c_str(), o.host.c_str(),
                 static_cast<unsigned>((*stream)->port()));
  return std::shared_ptr<NetBackend>(std::move(stream).value());
}

}  // namespace

base::ErrorOr<std::shared_ptr<NetBackend>> make_net(Options& options, const FactoryContext& context,
                                                    std::string_view driver) {
  if (driver == "user") return make_user(options, context);
  if (driver == "tap") return make_tap(options, context);
  if (driver == "socket") return make_stream(options, context);
  return base::fail(
      options.error("", "unknown net driver '" + std::string(driver) + "' (known: socket, tap, user)"));
}

}  // namespace backends
