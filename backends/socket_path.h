// Unix socket paths for the listening side of the socket backends (chardev and net).
// A server socket replaces a stale socket file left by an earlier run, and nothing else: the
// `path:` of a config that names an existing regular file, directory or symlink must not delete it.
#pragma once

#include <sys/un.h>

#include <string>

#include "base/result.h"

namespace backends {

// The address for `path`, or an error when it does not fit sun_path (108 bytes with the NUL).
base::ErrorOr<sockaddr_un> unix_address(const std::string& path);

// Makes `path` free for bind(): nothing there is fine, a socket is removed, anything else is an
// error that says what is there. The check uses lstat, so a symlink is refused, not followed.
base::ErrorOr<void> clear_stale_socket(const std::string& path);

}  // namespace backends
