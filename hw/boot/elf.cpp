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
constexpr uint32_t kPtNote = 4;
constexpr uint32_t kShtSymtab = 2;

}  // namespace

bool ElfFile::looks_like_elf(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
}

base::ErrorOr<ElfFile> ElfFile::parse(std::span<const uint8_t> bytes, uint16_t machine, uint16_t machine32) {
  if (!looks_like_elf(bytes)) return base::fail(base::Error("not an ELF file"));
  if (bytes.size() < 52) return base::fail(base::Error("ELF header truncated"));
  // ELF32 only where the caller names a 32-bit machine (x86's PVH kernels); everything else is ELF64.
  const bool is64 = bytes[4] == 2;
  if (bytes[4] != 2 && !(bytes[4] == 1 && machine32 != 0))
    return base::fail(
        base::Error(bytes[4] == 1 ? "not a 64-bit ELF file (a 32-bit one)" : "not a 64-bit ELF file"));
  if (is64 && bytes.size() < 64) return base::fail(base::Error("ELF header truncated"));
  if (bytes[5] != 1) return base::fail(base::Error("not a little-endian ELF file"));
  uint16_t type = get<uint16_t>(bytes, 16);
  if (type != 2 && type != 3) return base::fail(base::Error("ELF file is not an executable"));
  uint16_t e_machine = get<uint16_t>(bytes, 18);
  const uint16_t wanted = is64 ? machine : machine32;
  if (wanted != 0 && e_machine != wanted)
    return base::fail(base::Error(std::string(is64 ? "ELF64" : "ELF32") + " file is for machine " +
                                  std::to_string(e_machine) + ", not " + std::to_string(wanted) +
                                  (wanted == 243  ? " (RISC-V)"
                                   : wanted == 62 ? " (x86-64)"
                                   : wanted == 3  ? " (i386)"
                                                  : "")));
  // Field offsets and minimum entry sizes differ between the classes; the layout is otherwise the same.
  auto word = [&](uint64_t offset) -> uint64_t {  // an address/offset-sized field
    return is64 ? get<uint64_t>(bytes, offset) : get<uint32_t>(bytes, offset);
  };
  ElfFile elf;
  elf.m_bytes = bytes;
  elf.m_is64 = is64;
  elf.m_entry = word(24);
  uint64_t phoff = word(is64 ? 32 : 28);
  uint64_t shoff = word(is64 ? 40 : 32);
  uint16_t phentsize = get<uint16_t>(bytes, is64 ? 54 : 42);
  uint16_t phnum = get<uint16_t>(bytes, is64 ? 56 : 44);
  uint16_t shentsize = get<uint16_t>(bytes, is64 ? 58 : 46);
  uint16_t shnum = get<uint16_t>(bytes, is64 ? 60 : 48);
  const uint16_t min_phent = is64 ? 56 : 32, min_shent = is64 ? 64 : 40;

  if (phnum > 0 && (phentsize < min_phent || !in_range(bytes, phoff, uint64_t{phentsize} * phnum)))
    return base::fail(base::Error("ELF program headers lie outside the file"));
  for (uint16_t i = 0; i < phnum; ++i) {
    uint64_t ph = phoff + uint64_t{i} * phentsize;
    uint32_t p_type = get<uint32_t>(bytes, ph);
    if (p_type != kPtLoad && p_type != kPtNote) continue;
    ElfSegment segment;
    segment.file_offset = is64 ? get<uint64_t>(bytes, ph + 8) : get<uint32_t>(bytes, ph + 4);
    segment.paddr = is64 ? get<uint64_t>(bytes, ph + 24) : get<uint32_t>(bytes, ph + 12);
    segment.file_size = is64 ? get<uint64_t>(bytes, ph + 32) : get<uint32_t>(bytes, ph + 16);
    segment.mem_size = is64 ? get<uint64_t>(bytes, ph + 40) : get<uint32_t>(bytes, ph + 20);
    if (p_type == kPtNote) {
      // Notes are only read (find_note); one lying outside the file is ignored, not followed.
      if (in_range(bytes, segment.file_offset, segment.file_size)) elf.m_notes.push_back(segment);
      continue;
    }
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
  if (shnum > 0 && shentsize >= min_shent && in_range(bytes, shoff, uint64_t{shentsize} * shnum)) {
    for (uint16_t i = 0; i < shnum; ++i) {
      uint64_t sh = shoff + uint64_t{i} * shentsize;
      if (get<uint32_t>(bytes, sh + 4) != kShtSymtab) continue;
      uint64_t offset = word(sh + (is64 ? 24 : 16));
      uint64_t size = word(sh + (is64 ? 32 : 20));
      uint32_t link = get<uint32_t>(bytes, sh + (is64 ? 40 : 24));
      uint64_t entsize = word(sh + (is64 ? 56 : 36));
      if (entsize < (is64 ? 24u : 16u) || !in_range(bytes, offset, size) || link >= shnum) break;
      uint64_t strsh = shoff + uint64_t{link} * shentsize;
      uint64_t stroff = word(strsh + (is64 ? 24 : 16));
      uint64_t strsize = word(strsh + (is64 ? 32 : 20));
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

std::optional<std::span<const uint8_t>> ElfFile::find_note(std::string_view name, uint32_t type) const {
  for (const auto& note : m_notes) {
    // Each entry: namesz, descsz, type, then name and desc, each padded to 4 bytes (both classes).
    uint64_t at = note.file_offset, end = note.file_offset + note.file_size;
    while (end - at >= 12) {
      uint32_t namesz = get<uint32_t>(m_bytes, at), descsz = get<uint32_t>(m_bytes, at + 4),
               note_type = get<uint32_t>(m_bytes, at + 8);
      uint64_t name_at = at + 12;
      uint64_t desc_at = name_at + ((uint64_t{namesz} + 3) & ~3ull);
      uint64_t next = desc_at + ((uint64_t{descsz} + 3) & ~3ull);
      if (next > end) break;  // truncated: stop at this segment's end, never read past it
      // The name includes its NUL terminator ("Xen\0": namesz 4).
      if (note_type == type && namesz == name.size() + 1 &&
          std::memcmp(m_bytes.data() + name_at, name.data(), name.size()) == 0 &&
          m_bytes[name_at + name.size()] == 0)
        return m_bytes.subspan(desc_at, descsz);
      at = next;
    }
  }
  return std::nullopt;
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
    if (std::string_view(text, len) == name)
      return m_is64 ? get<uint64_t>(m_bytes, sym + 8) : uint64_t{get<uint32_t>(m_bytes, sym + 4)};
  }
  return std::nullopt;
}

}  // namespace hw::boot
