// libslirp, loaded with dlopen when the first `user` net backend is created. Linking it directly
// would make every vmlaunch process map libslirp and what it pulls in (glib, pcre2): ~1 MiB of
// resident memory for VMs that have no user network (issue 5's memory goal, docs/benchmarks.md).
// Only the entry points SlirpBackend calls are resolved; the types come from <slirp/libslirp.h>
// (libslirp-dev), so a signature change there is a compile error here.
#pragma once

#include <slirp/libslirp.h>

#include <memory>

#include "base/result.h"

namespace backends::net {

struct SlirpLibrary {
  decltype(&::slirp_new) slirp_new;
  decltype(&::slirp_cleanup) slirp_cleanup;
  decltype(&::slirp_input) slirp_input;
  decltype(&::slirp_pollfds_fill) slirp_pollfds_fill;
  decltype(&::slirp_pollfds_poll) slirp_pollfds_poll;
  decltype(&::slirp_add_hostfwd) slirp_add_hostfwd;
  decltype(&::slirp_version_string) slirp_version_string;
  decltype(&::slirp_state_save) slirp_state_save;
  decltype(&::slirp_state_load) slirp_state_load;
  decltype(&::slirp_state_version) slirp_state_version;
};

// The soname Debian's libslirp0 installs (the ABI SlirpLibrary's types describe).
inline constexpr const char* kSlirpSoname = "libslirp.so.0";

// The process-wide libslirp, loaded on first use and never unloaded (slirp instances and their
// callbacks may outlive any one backend). Thread-safe. The error names the Debian package.
base::ErrorOr<const SlirpLibrary*> slirp_library();

// Loads `file` (a soname or a path) and resolves every entry point; the handle stays open.
// slirp_library() uses it with kSlirpSoname; tests use it to see the errors.
base::ErrorOr<std::unique_ptr<SlirpLibrary>> load_slirp_library(const char* file);

}  // namespace backends::net
