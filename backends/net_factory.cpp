#include "backends/net_factory.h"

namespace backends {

std::vector<std::string> net_drivers() {
  return {};
}

base::ErrorOr<std::shared_ptr<NetBackend>> make_net(Options& options, const FactoryContext&,
                                                    std::string_view driver) {
  return base::fail(options.error("", "unknown net driver '" + std::string(driver) + "' (none built yet)"));
}

}  // namespace backends
