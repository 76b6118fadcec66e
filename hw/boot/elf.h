// ElfFile: a bounds-checked view of a little-endian ELF executable (bare-metal test programs,
// OpenSBI's .elf, vmlinux, x86 PVH kernels), ELF64 and, where the caller asks for it, ELF32. Only what
// loading needs: the entry point, PT_LOAD segments, notes (x86's PVH entry) and symbol lookup (HTIF's
// tohost/fromhost). Every offset and size in the file is checked against the buffer
// before use; a malformed file is an error, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hw::boot {

struct ElfSegment {
  uint64_t paddr = 0;
  uint64_t file_offset = 0;
  uint64_t file_size = 0;
  uint64_t mem_size = 0;  // >= file_size; the rest is zero-filled (.bss)
};

class ElfFile {
 public:
  static bool looks_like_elf(std::span<const uint8_t> bytes);
  // `bytes` must outlive the ElfFile. `machine`: required e_machine of an ELF64 file (243 = RISC-V),
  // 0 = any. `machine32`: the e_machine an ELF32 file may have (3 = i386); 0 refuses ELF32 files.
  static base::ErrorOr<ElfFile> parse(std::span<const uint8_t> bytes, uint16_t machine = 243,
                                      uint16_t machine32 = 0);

  bool is_64bit() const { return m_is64; }
  uint64_t entry() const { return m_entry; }
  const std::vector<ElfSegment>& segments() const { return m_segments; }
  std::span<const uint8_t> segment_bytes(const ElfSegment& segment) const {
    return m_bytes.subspan(segment.file_offset, segment.file_size);
  }
  // The descriptor of the first note called `name` with type `type` in a PT_NOTE segment; notes that
  // run past their segment end the search there.
  std::optional<std::span<const uint8_t>> find_note(std::string_view name, uint32_t type) const;
  // The value of a symbol in .symtab, if present.
  std::optional<uint64_t> symbol(std::string_view name) const;

 private:
  std::span<const uint8_t> m_bytes;
  bool m_is64 = true;
  uint64_t m_entry = 0;
  std::vector<ElfSegment> m_segments;
  std::vector<ElfSegment> m_notes;  // PT_NOTE segments inside the file (file ranges only)
  // .symtab and its string table, as file ranges (already bounds-checked); empty when stripped.
  uint64_t m_symtab_offset = 0, m_symtab_size = 0, m_symtab_entsize = 0;
  uint64_t m_strtab_offset = 0, m_strtab_size = 0;
};

}  // namespace hw::boot
