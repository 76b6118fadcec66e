#include "hw/boot/elf.h"

#include <cstring>

namespace hw::boot {
namespace {

template <typename T>
T get(std::span<const uint8_t> bytes, uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));  // caller checked the range
  return value;
}

bool in_range(std::span<const uint8_t> bytes, uint64_t offset, uint64_t size) {
  return offset <= bytes.size() && size <= bytes.size() - offset;
}

constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kShtSymtab = 2;

}  // namespace

bool ElfFile::looks_like_elf(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
}

base::ErrorOr<ElfFile> ElfFile::parse(std::span<const uint8_t> bytes, uint16_t machine) {
  if (!looks_like_elf(bytes)) return base::fail(base::Error("not an ELF file"));
  if (bytes.size() < 64) return base::fail(base::Error("ELF header truncated"));
  if (bytes[4] != 2) return base::fail(base::Error("not a 64-bit ELF file"));
  if (bytes[5] != 1) return base::fail(base::Error("not a little-endian ELF file"));
  uint16_t type = get<uint16_t>(bytes, 16);
  if (type != 2 && type != 3) return base::fail(base::Error("ELF file is not an executable"));
  uint16_t e_machine = get<uint16_t>(bytes, 18);
  if (machine != 0 && e_machine != machine)
    return base::fail(base::Error("ELF file is for machine " + std::to_string(e_machine) + ", not " +
                                  std::to_string(machine) + " (RISC-V)"));
  ElfFile elf;
  elf.m_bytes = bytes;
  elf.m_entry = get<uint64_t>(bytes, 24);
  uint64_t phoff = get<uint64_t>(bytes, 32);
  uint64_t shoff = get<uint64_t>(bytes, 40);
  uint16_t phentsize = get<uint16_t>(bytes, 54);
  uint16_t phnum = get<uint16_t>(bytes, 56);
  uint16_t shentsize = get<uint16_t>(bytes, 58);
  uint16_t shnum = get<uint16_t>(bytes, 60);

  if (phnum > 0 && (phentsize < 56 || !in_range(bytes, phoff, uint64_t{phentsize} * phnum)))
    return base::fail(base::Error("ELF program headers lie outside the file"));
  for (uint16_t i = 0; i < phnum; ++i) {
    uint64_t ph = phoff + uint64_t{i} * phentsize;
    if (get<uint32_t>(bytes, ph) != kPtLoad) continue;
    ElfSegment segment;
    segment.file_offset = get<uint64_t>(bytes, ph + 8);
    segment.paddr = get<uint64_t>(bytes, ph + 24);
    segment.file_size = get<uint64_t>(bytes, ph + 32);
    segment.mem_size = get<uint64_t>(bytes, ph + 40);
    if (segment.file_size > segment.mem_size)
      return base::fail(base::Error("ELF segment " + std::to_string(i) + " has file size > memory size"));
    if (!in_range(bytes, segment.file_offset, segment.file_size))
      return base::fail(base::Error("ELF segment " + std::to_string(i) + " lies outside the file"));
    if (segment.paddr + segment.mem_size < segment.paddr)
      return base::fail(base::Error("ELF segment " + std::to_string(i) + " wraps the address space"));
    if (segment.mem_size > 0) elf.m_segments.push_back(segment);
  }
  if (elf.m_segments.empty()) return base::fail(base::Error("ELF file has no loadable segments"));

  // Section headers are optional (only symbols need them); ignore them if they look broken.
  if (shnum > 0 && shentsize >= 64 && in_range(bytes, shoff, uint64_t{shentsize} * shnum)) {
    for (uint16_t i = 0; i < shnum; ++i) {
      uint64_t sh = shoff + uint64_t{i} * shentsize;
      if (get<uint32_t>(bytes, sh + 4) != kShtSymtab) continue;
      uint64_t offset = get<uint64_t>(bytes, sh + 24);
      uint64_t size = get<uint64_t>(bytes, sh + 32);
      uint32_t link = get<uint32_t>(bytes, sh + 40);
      uint64_t entsize = get<uint64_t>(bytes, sh + 56);
      if (entsize < 24 || !in_range(bytes, offset, size) || link >= shnum) break;
      uint64_t strsh = shoff + uint64_t{link} * shentsize;
      uint64_t stroff = get<uint64_t>(bytes, strsh + 24);
      uint64_t strsize = get<uint64_t>(bytes, strsh + 32);
      if (!in_range(bytes, stroff, strsize)) break;
      elf.m_symtab_offset = offset;
      elf.m_symtab_size = size;
      elf.m_symtab_entsize = entsize;
      elf.m_strtab_offset = stroff;
      elf.m_strtab_size = strsize;
      break;
    }
  }
  return elf;
}

std::optional<uint64_t> ElfFile::symbol(std::string_view name) const {
  if (m_symtab_entsize == 0) return std::nullopt;
  for (uint64_t sym = m_symtab_offset; sym + m_symtab_entsize <= m_symtab_offset + m_symtab_size;
       sym += m_symtab_entsize) {
    uint32_t name_offset = get<uint32_t>(m_bytes, sym);
    if (name_offset >= m_strtab_size) continue;
    const char* text = reinterpret_cast<const char*>(m_bytes.data() + m_strtab_offset + name_offset);
    size_t max_len = m_strtab_size - name_offset;
    size_t len = strnlen(text, max_len);
    if (len == max_len) continue;  // unterminated
    if (std::string_view(text, len) == name) return get<uint64_t>(m_bytes, sym + 8);
  }
  return std::nullopt;
}

}  // namespace hw::boot
