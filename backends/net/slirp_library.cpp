#include "backends/net/slirp_library.h"

#include <dlfcn.h>

#include <string>

namespace backends::net {

namespace {

constexpr const char* kPackageHint = "install Debian's libslirp0 (apt-get install libslirp0)";

template <typename Fn>
bool resolve(void* handle, const char* name, Fn& out) {
  // dlsym returns the entry point as void*; the declared type comes from libslirp.h.
  out = reinterpret_cast<Fn>(dlsym(handle, name));
  return out != nullptr;
}

}  // namespace

base::ErrorOr<std::unique_ptr<SlirpLibrary>> load_slirp_library(const char* file) {
  // RTLD_LOCAL: glib and libslirp stay out of the global symbol namespace.
  void* handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return base::fail(base::Error("user network needs " + std::string(file) + ", which cannot be loaded (" +
                                  (why ? why : "unknown error") + "); " + kPackageHint));
  }
  auto lib = std::make_unique<SlirpLibrary>();
  const char* missing = nullptr;
  auto need = [&](const char* name, auto& fn) {
    if (!missing && !resolve(handle, name, fn)) missing = name;
  };
  need("slirp_new", lib->slirp_new);
  need("slirp_cleanup", lib->slirp_cleanup);
  need("slirp_input", lib->slirp_input);
  need("slirp_pollfds_fill", lib->slirp_pollfds_fill);
  need("slirp_pollfds_poll", lib->slirp_pollfds_poll);
  need("slirp_add_hostfwd", lib->slirp_add_hostfwd);
  need("slirp_version_string", lib->slirp_version_string);
  need("slirp_state_save", lib->slirp_state_save);
  need("slirp_state_load", lib->slirp_state_load);
  need("slirp_state_version", lib->slirp_state_version);
  if (missing) {
    dlclose(handle);
    return base::fail(base::Error("user network: " + std::string(file) + " has no " + missing +
                                  " (not libslirp 4.x?); " + kPackageHint));
  }
  return lib;
}

base::ErrorOr<const SlirpLibrary*> slirp_library() {
  // Loaded once; a failure is remembered too (the library will not appear mid-run).
  static const base::ErrorOr<std::unique_ptr<SlirpLibrary>> loaded = load_slirp_library(kSlirpSoname);
  if (!loaded.ok()) return base::fail(loaded.error());
  return static_cast<const SlirpLibrary*>(loaded.value().get());
}

}  // namespace backends::net
