// The net part of the backend factory (kept apart so the factory builds before every net driver
// exists). Internal to //backends:factory.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/factory.h"
#include "backends/options.h"

namespace backends {

std::vector<std::string> net_drivers();
base::ErrorOr<std::shared_ptr<NetBackend>> make_net(Options& options, const FactoryContext& context,
                                                    std::string_view driver);

}  // namespace backends
