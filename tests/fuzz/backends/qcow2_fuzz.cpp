// libFuzzer target: the qcow2 parser and image code on arbitrary file contents. The input is the
// image file (in a memfd); we parse the header, open it read-only and read across the disk, then
// open a writable copy and write, zero and discard. Corrupt images must fail cleanly.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/block/qcow2.h"
#include "backends/block/qcow2_format.h"

using backends::block::Qcow2Backend;

namespace {
std::string memfd_with(const uint8_t* data, size_t size, int& fd) {
  fd = memfd_create("qcow2-fuzz", MFD_CLOEXEC);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return "/proc/self/fd/" + std::to_string(fd);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)backends::block::qcow2::parse_header({data, size});
  int fd;
  std::string path = memfd_with(data, size, fd);
  std::vector<uint8_t> buffer(70000);
  {
    auto image = Qcow2Backend::open(path, {true, nullptr});
    if (image) {
      uint64_t disk = (*image)->size();
      for (uint64_t at : {uint64_t(0), disk / 3, disk > buffer.size() ? disk - buffer.size() : 0}) {
        uint64_t n = std::min<uint64_t>(buffer.size(), disk - std::min(disk, at));
        (void)(*image)->read(at, std::span<uint8_t>(buffer.data(), n));
      }
    }
  }
  {
    auto image = Qcow2Backend::open(path, {false, nullptr});
    if (image && (*image)->size() >= 200000) {
      (void)(*image)->write(1000, std::span<const uint8_t>(buffer.data(), 5000));
      (void)(*image)->write_zeroes(65536, 65536);
      (void)(*image)->discard(0, 131072);
      (void)(*image)->read(0, std::span<uint8_t>(buffer.data(), 70000));
    }
  }
  close(fd);
  return 0;
}
