#include "base/fd_io.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("write_all delivers a buffer larger than a pipe holds, across short writes") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  // 1 MiB through a 64 KiB pipe: write() returns short counts until the reader drains it.
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + (i >> 9));
  std::vector<uint8_t> got;
  std::thread reader([&] {
    uint8_t buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) got.insert(got.end(), buf, buf + n);
  });
  CHECK(base::write_all(fds[1], std::span<const uint8_t>(data)));
  close(fds[1]);
  reader.join();
  close(fds[0]);
  CHECK(got == data);
}

TEST_CASE("write_fully reports how much went out when the reader is gone") {
  std::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  close(fds[0]);
  std::string text = "nobody reads this";
  CHECK(base::write_fully(fds[1], std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()),
                                                           text.size())) == 0);
  CHECK_FALSE(base::write_all(fds[1], text));
  close(fds[1]);
}

TEST_CASE("write_all of nothing succeeds without writing") {
  CHECK(base::write_all(-1, std::string_view()));
}
