// ElfFile: a bounds-checked view of a 64-bit little-endian ELF executable (bare-metal test programs,
// OpenSBI's .elf, vmlinux). Only what loading needs: the entry point, PT_LOAD segments and symbol
// lookup (HTIF's tohost/fromhost). Every offset and size in the file is checked against the buffer
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
  // `bytes` must outlive the ElfFile. `machine`: required e_machine (243 = RISC-V), 0 = any.
  static base::ErrorOr<ElfFile> parse(std::span<const uint8_t> bytes, uint16_t machine = 243);

  uint64_t entry() const { return m_entry; }
  const std::vector<ElfSegment>& segments() const { return m_segments; }
  std::span<const uint8_t> segment_bytes(const ElfSegment& segment) const {
    return m_bytes.subspan(segment.file_offset, segment.file_size);
  }
  // The value of a symbol in .symtab, if present.
  std::optional<uint64_t> symbol(std::string_view name) const;

 private:
  std::span<const uint8_t> m_bytes;
  uint64_t m_entry = 0;
  std::vector<ElfSegment> m_segments;
  // .symtab and its string table, as file ranges (already bounds-checked); empty when stripped.
  uint64_t m_symtab_offset = 0, m_symtab_size = 0, m_symtab_entsize = 0;
  uint64_t m_strtab_offset = 0, m_strtab_size = 0;
};

}  // namespace hw::boot
