#include "backends/socket_path.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backends {

base::ErrorOr<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty()) return base::fail(base::Error("unix socket path is empty"));
  if (path.size() >= sizeof(address.sun_path))
    return base::fail(base::Error("unix socket path is " + std::to_string(path.size()) + " bytes, over the " +
                                  std::to_string(sizeof(address.sun_path) - 1) +
                                  "-byte limit of the system (use a shorter path)"));
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

base::ErrorOr<void> clear_stale_socket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return base::fail(base::Error(path + ": " + std::strerror(errno)));
  }
  const char* what = S_ISREG(st.st_mode)    ? "a regular file"
                     : S_ISDIR(st.st_mode)  ? "a directory"
                     : S_ISLNK(st.st_mode)  ? "a symbolic link"
                     : S_ISSOCK(st.st_mode) ? nullptr
                                            : "a special file";
  if (what)
    return base::fail(base::Error(path + " exists and is " + what +
                                  ", not a socket; not removing it (choose another path)"));
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return base::fail(base::Error("removing the old socket " + path + ": " + std::strerror(errno)));
  return {};
}

}  // namespace backends
