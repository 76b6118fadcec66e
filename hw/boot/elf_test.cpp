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

namespace {
// A minimal i386 ELF32: one PT_LOAD of `code` at `paddr`, a PT_NOTE holding `note` (already laid out:
// namesz, descsz, type, name, desc), and a .symtab with `start` at paddr+0x10.
std::vector<uint8_t> make_elf32(uint32_t paddr, std::vector<uint8_t> code, std::vector<uint8_t> note) {
  std::vector<uint8_t> b(52, 0);
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 1, b[5] = 1, b[6] = 1;
  put<uint16_t>(b, 16, 2);  // ET_EXEC
  put<uint16_t>(b, 18, 3);  // EM_386
  put<uint32_t>(b, 24, paddr);
  put<uint32_t>(b, 28, 52);  // phoff
  put<uint16_t>(b, 42, 32);
  put<uint16_t>(b, 44, 2);
  size_t code_off = 52 + 2 * 32, note_off = code_off + code.size();
  put<uint32_t>(b, 52, 1);  // PT_LOAD
  put<uint32_t>(b, 52 + 4, code_off);
  put<uint32_t>(b, 52 + 12, paddr);
  put<uint32_t>(b, 52 + 16, code.size());
  put<uint32_t>(b, 52 + 20, code.size() + 32);
  put<uint32_t>(b, 84, 4);  // PT_NOTE
  put<uint32_t>(b, 84 + 4, note_off);
  put<uint32_t>(b, 84 + 16, note.size());
  b.resize(code_off);
  b.insert(b.end(), code.begin(), code.end());
  b.insert(b.end(), note.begin(), note.end());
  size_t str_off = b.size();
  std::string strtab("\0start\0", 7);
  b.insert(b.end(), strtab.begin(), strtab.end());
  size_t sym_off = b.size();
  b.resize(sym_off + 16 * 2, 0);
  put<uint32_t>(b, sym_off + 16, 1);
  put<uint32_t>(b, sym_off + 16 + 4, paddr + 0x10);
  size_t sh_off = b.size();
  b.resize(sh_off + 40 * 3, 0);
  put<uint32_t>(b, sh_off + 40 + 4, 2);  // SHT_SYMTAB
  put<uint32_t>(b, sh_off + 40 + 16, sym_off);
  put<uint32_t>(b, sh_off + 40 + 20, 32);
  put<uint32_t>(b, sh_off + 40 + 24, 2);
  put<uint32_t>(b, sh_off + 40 + 36, 16);
  put<uint32_t>(b, sh_off + 80 + 4, 3);
  put<uint32_t>(b, sh_off + 80 + 16, str_off);
  put<uint32_t>(b, sh_off + 80 + 20, strtab.size());
  put<uint32_t>(b, 32, sh_off);
  put<uint16_t>(b, 46, 40);
  put<uint16_t>(b, 48, 3);
  return b;
}

std::vector<uint8_t> xen_note(uint32_t type, uint32_t value) {
  std::vector<uint8_t> n(20, 0);
  put<uint32_t>(n, 0, 4);
  put<uint32_t>(n, 4, 4);
  put<uint32_t>(n, 8, type);
  std::memcpy(n.data() + 12, "Xen", 4);
  put<uint32_t>(n, 16, value);
  return n;
}
}  // namespace

TEST_CASE("elf: an ELF32 file is read only where the caller names its machine") {
  // An unrelated note first, then the one looked for: the walk steps over the first.
  auto note = xen_note(17, 0xdead);
  auto pvh = xen_note(18, 0x100010);
  note.insert(note.end(), pvh.begin(), pvh.end());
  auto bytes = make_elf32(0x100000, {0xf4, 0xf4, 0xf4, 0xf4}, note);

  auto refused = hw::boot::ElfFile::parse(bytes);  // RISC-V callers: ELF64 only
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("32-bit") != std::string::npos);
  auto wrong_machine = hw::boot::ElfFile::parse(bytes, 62, 243);
  REQUIRE_FALSE(wrong_machine.ok());
  CHECK(wrong_machine.error().message.find("ELF32 file is for machine 3") != std::string::npos);

  auto elf = hw::boot::ElfFile::parse(bytes, 62, 3);
  REQUIRE(elf.ok());
  CHECK_FALSE(elf->is_64bit());
  CHECK(elf->entry() == 0x100000);
  REQUIRE(elf->segments().size() == 1);
  CHECK(elf->segments()[0].paddr == 0x100000);
  CHECK(elf->segments()[0].file_size == 4);
  CHECK(elf->segments()[0].mem_size == 36);
  CHECK(elf->symbol("start") == 0x100010);
  auto desc = elf->find_note("Xen", 18);
  REQUIRE(desc.has_value());
  REQUIRE(desc->size() == 4);
  CHECK((*desc)[0] == 0x10);
  CHECK((*desc)[2] == 0x10);
  CHECK_FALSE(elf->find_note("Xen", 19).has_value());
  CHECK_FALSE(elf->find_note("Xe", 18).has_value());
}

TEST_CASE("elf: hostile ELF32 notes and headers are errors or ignored, never out-of-bounds reads") {
  auto bytes = make_elf32(0x100000, {0xf4, 0xf4, 0xf4, 0xf4}, xen_note(18, 0x100000));
  const size_t note_off = 52 + 64 + 4;
  auto huge_desc = bytes;
  put<uint32_t>(huge_desc, note_off + 4, 0xfffffff0);  // descsz runs far past the segment
  auto elf = hw::boot::ElfFile::parse(huge_desc, 62, 3);
  REQUIRE(elf.ok());
  CHECK_FALSE(elf->find_note("Xen", 18).has_value());
  auto huge_name = bytes;
  put<uint32_t>(huge_name, note_off, 0xffffffff);  // namesz + padding would wrap 32 bits
  elf = hw::boot::ElfFile::parse(huge_name, 62, 3);
  REQUIRE(elf.ok());
  CHECK_FALSE(elf->find_note("Xen", 18).has_value());
  auto note_outside = bytes;
  put<uint32_t>(note_outside, 84 + 4, 0xfffffff0);  // the PT_NOTE segment lies outside the file
  elf = hw::boot::ElfFile::parse(note_outside, 62, 3);
  REQUIRE(elf.ok());
  CHECK_FALSE(elf->find_note("Xen", 18).has_value());
  auto segment_outside = bytes;
  put<uint32_t>(segment_outside, 52 + 16, 0x10000);  // filesz past the end of the file
  put<uint32_t>(segment_outside, 52 + 20, 0x10000);
  CHECK_FALSE(hw::boot::ElfFile::parse(segment_outside, 62, 3).ok());
  auto small_phent = bytes;
  put<uint16_t>(small_phent, 42, 31);
  CHECK_FALSE(hw::boot::ElfFile::parse(small_phent, 62, 3).ok());
  CHECK_FALSE(hw::boot::ElfFile::parse(std::span(bytes).first(51), 62, 3).ok());
  auto bad_symtab = bytes;
  put<uint32_t>(bad_symtab, 32, 0xfffffff0);
  elf = hw::boot::ElfFile::parse(bad_symtab, 62, 3);
  REQUIRE(elf.ok());
  CHECK_FALSE(elf->symbol("start").has_value());
}
