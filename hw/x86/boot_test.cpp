#include "hw/x86/boot.h"

#include <doctest/doctest.h>

#include <cstring>

using namespace hw::x86;

namespace {
template <typename T>
void put(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
// A synthetic bzImage: 1 setup sector after the boot sector, protocol 2.15, 64-bit entry.
std::vector<uint8_t> bzimage() {
  std::vector<uint8_t> b(3 * 512 + 64, 0);
  b[0x1f1] = 2;
  put<uint16_t>(b, 0x1fe, 0xaa55);
  b[0x201] = 0x62;  // jump: setup header ends at 0x264
  put<uint32_t>(b, 0x202, 0x53726448);
  put<uint16_t>(b, 0x206, 0x020f);
  b[0x211] = 1;  // LOADED_HIGH
  b[0x234] = 1;  // relocatable
  put<uint16_t>(b, 0x236, 1);
  put<uint32_t>(b, 0x238, 2048);
  put<uint32_t>(b, 0x260, 0x10000);
  b[3 * 512] = 0xf4;
  return b;
}
}  // namespace

TEST_CASE("bzImage: kernel at 1 MiB, 64-bit entry, boot_params with cmdline, initrd and e820") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 64 << 20).ok());
  auto image = bzimage();
  auto kernel = load_kernel(memory, image);
  REQUIRE(kernel.ok());
  CHECK(kernel->kind == KernelImage::Kind::BzImage);
  CHECK(kernel->entry == 0x100200);
  CHECK(*memory.read_le<uint8_t>(0x100000) == 0xf4);
  auto initrd = place_initrd(memory, *kernel, 4096);
  REQUIRE(initrd.ok());
  CHECK(*initrd == (64 << 20) - 4096);
  BootInputs inputs{&kernel.value(), image, "console=ttyS0", *initrd, 4096, 0xe0000};
  auto state = prepare_boot(memory, inputs);
  REQUIRE(state.ok());
  CHECK(state->mode == accel::X86BootState::Mode::Linux64);
  CHECK(state->rsi == kBootParamsAddress);
  CHECK(*memory.read_le<uint32_t>(kBootParamsAddress + 0x202) == 0x53726448);
  CHECK(*memory.read_le<uint8_t>(kBootParamsAddress + 0x210) == 0xff);
  CHECK(*memory.read_le<uint32_t>(kBootParamsAddress + 0x228) == kCmdlineAddress);
  CHECK(*memory.read_le<uint32_t>(kBootParamsAddress + 0x218) == *initrd);
  CHECK(*memory.read_le<uint8_t>(kBootParamsAddress + 0x1e8) == 3);  // low RAM, reserved, high RAM
  CHECK(*memory.read_le<uint64_t>(kBootParamsAddress + 0x2d0 + 40 + 8) == (64 << 20) - 0x100000);
  char cmdline[14] = {};
  REQUIRE(memory.read(kCmdlineAddress, {reinterpret_cast<uint8_t*>(cmdline), 13}));
  CHECK(std::string(cmdline) == "console=ttyS0");
  CHECK(*memory.read_le<uint64_t>(kPml4Address) == ((kPml4Address + 0x1000) | 3));
}

TEST_CASE("old or 32-bit-only bzImages and non-kernels are refused with a reason") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 16 << 20).ok());
  auto image = bzimage();
  put<uint16_t>(image, 0x236, 0);
  auto kernel = load_kernel(memory, image);
  REQUIRE_FALSE(kernel.ok());
  CHECK(kernel.error().message.find("64-bit entry") != std::string::npos);
  std::vector<uint8_t> junk(1024, 0x90);
  CHECK_FALSE(load_kernel(memory, junk).ok());
}

TEST_CASE("PVH: the Xen note's entry and an hvm_start_info with memory map and cmdline") {
  // A minimal ELF64 with one PT_LOAD (4 bytes at 0x100000) and a PT_NOTE carrying the PVH entry.
  std::vector<uint8_t> elf(0x200, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  elf[4] = 2;
  elf[5] = 1;
  elf[6] = 1;
  put<uint16_t>(elf, 0x10, 2);
  put<uint16_t>(elf, 0x12, 62);
  put<uint32_t>(elf, 0x14, 1);
  put<uint64_t>(elf, 0x18, 0x100000);
  put<uint64_t>(elf, 0x20, 0x40);
  put<uint16_t>(elf, 0x34, 64);
  put<uint16_t>(elf, 0x36, 56);
  put<uint16_t>(elf, 0x38, 2);
  // PT_LOAD
  put<uint32_t>(elf, 0x40, 1);
  put<uint64_t>(elf, 0x40 + 8, 0x180);
  put<uint64_t>(elf, 0x40 + 16, 0x100000);
  put<uint64_t>(elf, 0x40 + 24, 0x100000);
  put<uint64_t>(elf, 0x40 + 32, 4);
  put<uint64_t>(elf, 0x40 + 40, 4);
  // PT_NOTE
  put<uint32_t>(elf, 0x78, 4);
  put<uint64_t>(elf, 0x78 + 8, 0x100);
  put<uint64_t>(elf, 0x78 + 32, 20);
  put<uint32_t>(elf, 0x100, 4);
  put<uint32_t>(elf, 0x104, 4);
  put<uint32_t>(elf, 0x108, 18);
  std::memcpy(elf.data() + 0x10c, "Xen", 4);
  put<uint32_t>(elf, 0x110, 0x100010);
  put<uint32_t>(elf, 0x180, 0xf4f4f4f4);
  CHECK(find_pvh_entry(elf) == 0x100010u);

  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 16 << 20).ok());
  auto kernel = load_kernel(memory, elf);
  REQUIRE(kernel.ok());
  CHECK(kernel->kind == KernelImage::Kind::Pvh);
  BootInputs inputs{&kernel.value(), {}, "hello", 0, 0, 0};
  auto state = prepare_boot(memory, inputs);
  REQUIRE(state.ok());
  CHECK(state->mode == accel::X86BootState::Mode::Pvh32);
  CHECK(state->rip == 0x100010);
  CHECK(state->rbx == kStartInfoAddress);
  CHECK(*memory.read_le<uint32_t>(kStartInfoAddress) == 0x336ec578u);
  CHECK(*memory.read_le<uint64_t>(kStartInfoAddress + 24) == kCmdlineAddress);
  CHECK(*memory.read_le<uint32_t>(kStartInfoAddress + 48) == 3);

  // A truncated note section is not followed past the file.
  put<uint64_t>(elf, 0x78 + 32, 0x10000);
  CHECK_FALSE(find_pvh_entry(elf).has_value());
}

namespace {
// A minimal i386 ELF32 (as `gcc -m32` links a PVH guest): one PT_LOAD (4 bytes at 0x100000) and,
// when `note`, a PT_NOTE with XEN_ELFNOTE_PHYS32_ENTRY = 0x100002.
std::vector<uint8_t> elf32(bool note) {
  std::vector<uint8_t> elf(0x100, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  elf[4] = 1;
  elf[5] = 1;
  elf[6] = 1;
  put<uint16_t>(elf, 16, 2);
  put<uint16_t>(elf, 18, 3);
  put<uint32_t>(elf, 24, 0x100000);
  put<uint32_t>(elf, 28, 52);
  put<uint16_t>(elf, 42, 32);
  put<uint16_t>(elf, 44, note ? 2 : 1);
  put<uint32_t>(elf, 52, 1);  // PT_LOAD
  put<uint32_t>(elf, 52 + 4, 0xc0);
  put<uint32_t>(elf, 52 + 12, 0x100000);
  put<uint32_t>(elf, 52 + 16, 4);
  put<uint32_t>(elf, 52 + 20, 0x1000);
  put<uint32_t>(elf, 84, 4);  // PT_NOTE
  put<uint32_t>(elf, 84 + 4, 0xa0);
  put<uint32_t>(elf, 84 + 16, 20);
  put<uint32_t>(elf, 0xa0, 4);
  put<uint32_t>(elf, 0xa4, 4);
  put<uint32_t>(elf, 0xa8, 18);
  std::memcpy(elf.data() + 0xac, "Xen", 4);
  put<uint32_t>(elf, 0xb0, 0x100002);
  put<uint32_t>(elf, 0xc0, 0xf4f4f4f4);
  return elf;
}
}  // namespace

TEST_CASE("PVH: a 32-bit ELF with the Xen note loads and is entered through PVH, as under QEMU") {
  auto elf = elf32(true);
  CHECK(find_pvh_entry(elf) == 0x100002u);
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 16 << 20).ok());
  REQUIRE(memory.write_le<uint32_t>(0x100004, 0x12345678));  // .bss must come back zeroed
  auto kernel = load_kernel(memory, elf);
  REQUIRE(kernel.ok());
  CHECK(kernel->kind == KernelImage::Kind::Pvh);
  CHECK(kernel->entry == 0x100002);
  CHECK(kernel->end == 0x101000);
  CHECK(*memory.read_le<uint32_t>(0x100000) == 0xf4f4f4f4u);
  CHECK(*memory.read_le<uint32_t>(0x100004) == 0u);
  BootInputs inputs{&kernel.value(), {}, "exit=0", 0, 0, 0};
  auto state = prepare_boot(memory, inputs);
  REQUIRE(state.ok());
  CHECK(state->mode == accel::X86BootState::Mode::Pvh32);
  CHECK(state->rip == 0x100002);
  CHECK(state->rbx == kStartInfoAddress);
}

TEST_CASE("PVH: a 32-bit ELF without the note, or for another machine, is refused with a reason") {
  base::GuestMemory memory;
  REQUIRE(memory.add_region(0, 16 << 20).ok());
  auto bare = load_kernel(memory, elf32(false));
  REQUIRE_FALSE(bare.ok());
  CHECK(bare.error().message.find("32-bit ELF kernel needs a Xen PVH note") != std::string::npos);
  auto arm = elf32(true);
  put<uint16_t>(arm, 18, 40);  // EM_ARM
  auto other = load_kernel(memory, arm);
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().message.find("machine 40") != std::string::npos);
  CHECK_FALSE(find_pvh_entry(arm).has_value());
  auto note_in_segment_past_end = elf32(true);
  put<uint32_t>(note_in_segment_past_end, 0xa4, 0x1000);  // descsz past the segment
  CHECK_FALSE(find_pvh_entry(note_in_segment_past_end).has_value());
}
