#include "hw/boot/image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "hw/boot/elf.h"

namespace hw::boot {

base::ErrorOr<std::vector<uint8_t>> read_file(const std::string& path, uint64_t max_size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return base::fail(base::Error(path + ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return base::fail(base::Error(path + ": file is too large (" + std::to_string(st.st_size) + " bytes)"));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = errno;
      ::close(fd);
      return base::fail(
          base::Error("read " + path + ": " + (n == 0 ? "unexpected end of file" : std::strerror(saved))));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return bytes;
}

base::ErrorOr<LoadedImage> load_image(std::span<const uint8_t> bytes, uint64_t raw_address,
                                      const PhysWriter& writer, std::string_view what) {
  auto where = [&](uint64_t gpa, uint64_t size) {
    char text[96];
    std::snprintf(text, sizeof text, "[0x%llx, 0x%llx)", (unsigned long long)gpa,
                  (unsigned long long)(gpa + size));
    return std::string(what) + " does not fit in guest RAM at " + text;
  };
  LoadedImage loaded;
  if (ElfFile::looks_like_elf(bytes)) {
    auto elf = ElfFile::parse(bytes);
    if (!elf.ok()) return base::fail(elf.error().with_context(std::string(what)));
    loaded.elf = true;
    loaded.entry = elf->entry();
    loaded.start = UINT64_MAX;
    static const std::vector<uint8_t> zeros(64 * 1024, 0);
    for (const ElfSegment& segment : elf->segments()) {
      if (!writer(segment.paddr, elf->segment_bytes(segment)))
        return base::fail(base::Error(where(segment.paddr, segment.mem_size)));
      for (uint64_t done = segment.file_size; done < segment.mem_size;) {
        uint64_t chunk = std::min<uint64_t>(zeros.size(), segment.mem_size - done);
        if (!writer(segment.paddr + done, {zeros.data(), chunk}))
          return base::fail(base::Error(where(segment.paddr, segment.mem_size)));
        done += chunk;
      }
      loaded.start = std::min(loaded.start, segment.paddr);
      loaded.end = std::max(loaded.end, segment.paddr + segment.mem_size);
    }
    return loaded;
  }
  if (bytes.empty()) return base::fail(base::Error(std::string(what) + " is empty"));
  if (!writer(raw_address, bytes)) return base::fail(base::Error(where(raw_address, bytes.size())));
  loaded.entry = raw_address;
  loaded.start = raw_address;
  loaded.end = raw_address + bytes.size();
  return loaded;
}

namespace {

base::ErrorOr<std::string> existing(std::string path, std::string_view package) {
  if (::access(path.c_str(), R_OK) != 0)
    return base::fail(base::Error(path + ": " + std::strerror(errno) + " (install Debian's " +
                                  std::string(package) + " package)"));
  return path;
}

bool ends_with_dynamic(std::string_view path) {
  auto slash = path.rfind('/');
  std::string_view file = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return file.rfind("fw_dynamic", 0) == 0;
}

}  // namespace

base::ErrorOr<Firmware> resolve_firmware(std::string_view spec) {
  Firmware firmware;
  if (spec.empty() || spec == "none") return firmware;
  if (spec == "opensbi") {
    firmware.kind = Firmware::Kind::Jump;
    firmware.path = TRY(existing(std::string(kOpensbiDir) + "/fw_jump.bin", "opensbi"));
    return firmware;
  }
  if (spec == "opensbi-dynamic") {
    firmware.kind = Firmware::Kind::Dynamic;
    firmware.path = TRY(existing(std::string(kOpensbiDir) + "/fw_dynamic.bin", "opensbi"));
    return firmware;
  }
  if (spec == "u-boot") {
    firmware.kind = Firmware::Kind::Jump;
    firmware.path = TRY(existing(std::string(kOpensbiDir) + "/fw_jump.bin", "opensbi"));
    firmware.payload_path = TRY(existing(kUbootSmode, "u-boot-qemu"));
    return firmware;
  }
  if (spec == "seabios")
    return base::fail(base::Error("firmware \"seabios\" is for x86 machines, not riscv64"));
  firmware.kind = ends_with_dynamic(spec) ? Firmware::Kind::Dynamic : Firmware::Kind::Jump;
  firmware.path = TRY(existing(std::string(spec), "the firmware's"));
  return firmware;
}

std::vector<uint8_t> fw_dynamic_info(uint64_t next_addr, uint64_t boot_hart) {
  // magic "OSBI", version 2, next_addr, next_mode (1 = S-mode), options, boot_hart.
  const uint64_t words[6] = {0x4942534f, 2, next_addr, 1, 0, boot_hart};
  std::vector<uint8_t> bytes(sizeof words);
  std::memcpy(bytes.data(), words, sizeof words);
  return bytes;
}

}  // namespace hw::boot
