// The virtiofsd backend: a missing daemon names the package, a daemon that dies early is quoted, and
// the real /usr/lib/qemu/virtiofsd is started, answers a vhost-user GET_FEATURES on the socket we
// are handed, and is gone (with its private directory) once the backend is destroyed.
#include "backends/fs/virtiofsd.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace {

struct Dir {
  std::filesystem::path path;
  Dir() {
    char tmpl[] = "/tmp/virtiofsd-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

struct Env {
  explicit Env(const std::string& value) { setenv("VMLAUNCH_VIRTIOFSD", value.c_str(), 1); }
  ~Env() { unsetenv("VMLAUNCH_VIRTIOFSD"); }
};

}  // namespace

TEST_CASE("a missing virtiofsd names the package to install") {
  Dir share;
  Env env((share.path / "no-such-virtiofsd").string());
  auto daemon = backends::fs::Virtiofsd::start(share.path.string(), false);
  REQUIRE_FALSE(daemon.ok());
  CHECK(daemon.error().message.find("qemu-system-common") != std::string::npos);
}

TEST_CASE("a virtiofsd that exits before listening is reported with its last words") {
  Dir share;
  std::filesystem::path fake = share.path / "fake-virtiofsd";
  std::ofstream(fake) << "#!/bin/sh\necho 'fuse: bad option' >&2\nexit 3\n";
  chmod(fake.c_str(), 0755);
  Env env(fake.string());
  auto daemon = backends::fs::Virtiofsd::start(share.path.string(), false);
  REQUIRE_FALSE(daemon.ok());
  CHECK(daemon.error().message.find("exit status 3") != std::string::npos);
  CHECK(daemon.error().message.find("fuse: bad option") != std::string::npos);
}

TEST_CASE("a shared path that is not a directory is refused before anything starts") {
  Dir share;
  std::ofstream(share.path / "file") << "x";
  CHECK_FALSE(backends::fs::Virtiofsd::start((share.path / "file").string(), false).ok());
  CHECK_FALSE(backends::fs::Virtiofsd::start((share.path / "missing").string(), false).ok());
}

TEST_CASE("the real virtiofsd starts, speaks vhost-user on our socket and stops with the backend") {
  if (access(backends::fs::kVirtiofsdPath, X_OK) != 0 || geteuid() != 0) {
    MESSAGE("skipped: needs root and /usr/lib/qemu/virtiofsd (qemu-system-common)");
    return;
  }
  Dir share;
  auto daemon = backends::fs::Virtiofsd::start(share.path.string(), true);
  REQUIRE_MESSAGE(daemon.ok(), daemon.error().message);
  pid_t pid = daemon.value()->pid();
  CHECK(daemon.value()->vhost_user());
  int socket = daemon.value()->take_vhost_user_socket();
  REQUIRE(socket >= 0);
  CHECK(daemon.value()->take_vhost_user_socket() == -1);  // handed over once
  // GET_FEATURES (1), version 1, no payload; the reply carries VIRTIO_F_VERSION_1.
  const uint32_t request[3] = {1, 1, 0};
  REQUIRE(write(socket, request, sizeof request) == sizeof request);
  uint8_t reply[20];
  size_t got = 0;
  while (got < sizeof reply) {
    ssize_t n = read(socket, reply + got, sizeof reply - got);
    REQUIRE(n > 0);
    got += size_t(n);
  }
  uint32_t header[3];
  uint64_t features;
  std::memcpy(header, reply, 12);
  std::memcpy(&features, reply + 12, 8);
  CHECK(header[0] == 1);
  CHECK((header[1] & 4) != 0);
  CHECK(header[2] == 8);
  CHECK((features & (1ull << 32)) != 0);
  close(socket);
  daemon.value().reset();
  CHECK(kill(pid, 0) != 0);  // reaped: no such process
}
