#include "hw/boot/elf.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

template <typename T>
void put(std::vector<uint8_t>& b, size_t off, T v) {
  if (b.size() < off + sizeof v) b.resize(off + sizeof v);
  std::memcpy(b.data() + off, &v, sizeof v);
}

// A minimal RISC-V ELF64: one PT_LOAD of `code` at `paddr` with `bss` extra bytes, and a .symtab
// with `tohost` at paddr+0x1000.
std::vector<uint8_t> make_elf(uint64_t paddr, std::vector<uint8_t> code, uint64_t bss = 0) {
  std::vector<uint8_t> b(64, 0);
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 2, b[5] = 1, b[6] = 1;
  put<uint16_t>(b, 16, 2);    // ET_EXEC
  put<uint16_t>(b, 18, 243);  // EM_RISCV
  put<uint64_t>(b, 24, paddr + 4);
  put<uint64_t>(b, 32, 64);  // phoff
  put<uint16_t>(b, 54, 56);
  put<uint16_t>(b, 56, 1);
  // program header at 64
  size_t code_off = 64 + 56;
  put<uint32_t>(b, 64, 1);
  put<uint64_t>(b, 64 + 8, code_off);
  put<uint64_t>(b, 64 + 16, paddr);
  put<uint64_t>(b, 64 + 24, paddr);
  put<uint64_t>(b, 64 + 32, code.size());
  put<uint64_t>(b, 64 + 40, code.size() + bss);
  b.resize(code_off);
  b.insert(b.end(), code.begin(), code.end());
  // strtab
  size_t str_off = b.size();
  std::string strtab("\0tohost\0fromhost\0", 17);
  b.insert(b.end(), strtab.begin(), strtab.end());
  // symtab: null symbol + tohost + fromhost
  size_t sym_off = b.size();
  b.resize(sym_off + 24 * 3, 0);
  put<uint32_t>(b, sym_off + 24, 1);
  put<uint64_t>(b, sym_off + 24 + 8, paddr + 0x1000);
  put<uint32_t>(b, sym_off + 48, 8);
  put<uint64_t>(b, sym_off + 48 + 8, paddr + 0x1040);
  // section headers: null, symtab (link 2), strtab
  size_t sh_off = b.size();
  b.resize(sh_off + 64 * 3, 0);
  put<uint32_t>(b, sh_off + 64 + 4, 2);
  put<uint64_t>(b, sh_off + 64 + 24, sym_off);
  put<uint64_t>(b, sh_off + 64 + 32, 24 * 3);
  put<uint32_t>(b, sh_off + 64 + 40, 2);
  put<uint64_t>(b, sh_off + 64 + 56, 24);
  put<uint32_t>(b, sh_off + 128 + 4, 3);
  put<uint64_t>(b, sh_off + 128 + 24, str_off);
  put<uint64_t>(b, sh_off + 128 + 32, strtab.size());
  put<uint64_t>(b, 40, sh_off);
  put<uint16_t>(b, 58, 64);
  put<uint16_t>(b, 60, 3);
  return b;
}

}  // namespace

TEST_CASE("elf: parses entry, PT_LOAD segments and symbols") {
  auto bytes = make_elf(0x80000000, {0x13, 0, 0, 0, 0x6f, 0, 0, 0}, 16);
  auto elf = hw::boot::ElfFile::parse(bytes);
  REQUIRE(elf.ok());
  CHECK(elf->entry() == 0x80000004);
  REQUIRE(elf->segments().size() == 1);
  CHECK(elf->segments()[0].paddr == 0x80000000);
  CHECK(elf->segments()[0].file_size == 8);
  CHECK(elf->segments()[0].mem_size == 24);
  CHECK(elf->segment_bytes(elf->segments()[0])[4] == 0x6f);
  CHECK(elf->symbol("tohost") == 0x80001000);
  CHECK(elf->symbol("fromhost") == 0x80001040);
  CHECK_FALSE(elf->symbol("nothere").has_value());
}

TEST_CASE("elf: rejects other classes, machines and truncated files") {
  auto bytes = make_elf(0x80000000, {1, 2, 3, 4});
  CHECK_FALSE(hw::boot::ElfFile::parse(std::span(bytes).first(40)).ok());
  auto wrong_machine = bytes;
  put<uint16_t>(wrong_machine, 18, 62);
  auto e = hw::boot::ElfFile::parse(wrong_machine);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message.find("RISC-V") != std::string::npos);
  auto elf32 = bytes;
  elf32[4] = 1;
  CHECK_FALSE(hw::boot::ElfFile::parse(elf32).ok());
  CHECK_FALSE(hw::boot::ElfFile::parse(std::vector<uint8_t>{1, 2, 3}).ok());
}

TEST_CASE("elf: hostile segment and section fields are errors or ignored, never out-of-bounds reads") {
  auto bytes = make_elf(0x80000000, {1, 2, 3, 4});
  auto past_end = bytes;
  put<uint64_t>(past_end, 64 + 8, 1u << 30);  // segment offset beyond the file
  CHECK_FALSE(hw::boot::ElfFile::parse(past_end).ok());
  auto bigger_file = bytes;
  put<uint64_t>(bigger_file, 64 + 32, 1u << 20);  // filesz > memsz
  CHECK_FALSE(hw::boot::ElfFile::parse(bigger_file).ok());
  auto wraps = bytes;
  put<uint64_t>(wraps, 64 + 24, ~0ull - 1);
  CHECK_FALSE(hw::boot::ElfFile::parse(wraps).ok());
  auto phdrs = bytes;
  put<uint16_t>(phdrs, 56, 0xffff);
  CHECK_FALSE(hw::boot::ElfFile::parse(phdrs).ok());
  auto bad_symtab = bytes;
  put<uint64_t>(bad_symtab, 40, 1ull << 40);  // section headers outside: symbols unavailable
  auto elf = hw::boot::ElfFile::parse(bad_symtab);
  REQUIRE(elf.ok());
  CHECK_FALSE(elf->symbol("tohost").has_value());
}
