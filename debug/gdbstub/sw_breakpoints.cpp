#include "debug/gdbstub/sw_breakpoints.h"

#include <cstdio>
#include <string>

namespace gdbstub {
namespace {

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
  return text;
}

}  // namespace

base::ErrorOr<void> SoftwareBreakpoints::insert(Memory& memory, uint64_t va) {
  if (m_va_to_gpa.count(va)) return {};
  m_forgotten.erase(va);
  auto gpa = memory.translate(va);
  if (!gpa.ok()) return base::fail(base::Error("breakpoint at " + hex(va) + ": " + gpa.error().message));
  auto it = m_by_gpa.find(*gpa);
  if (it != m_by_gpa.end()) {  // another virtual address of the same byte: it is planted already
    it->second.vas.insert(va);
    m_va_to_gpa[va] = *gpa;
    return {};
  }
  if (m_by_gpa.size() >= kMax)
    return base::fail(
        base::Error("breakpoint at " + hex(va) + ": " + std::to_string(kMax) + " are set already"));
  uint8_t* byte = memory.ram(*gpa);
  if (!byte)
    return base::fail(base::Error("breakpoint at " + hex(va) + ": " + hex(*gpa) + " is not guest RAM"));
  Planted planted;
  planted.original = *byte;
  planted.vas.insert(va);
  *byte = kInt3;
  memory.written(*gpa);
  m_by_gpa.emplace(*gpa, std::move(planted));
  m_va_to_gpa[va] = *gpa;
  return {};
}

void SoftwareBreakpoints::restore(Memory& memory, uint64_t gpa, const Planted& planted) {
  if (planted.lifted) return;
  uint8_t* byte = memory.ram(gpa);
  // The guest may have rewritten that byte itself (self-modifying code, a loader): its byte stays.
  if (!byte || *byte != kInt3) return;
  *byte = planted.original;
  memory.written(gpa);
}

void SoftwareBreakpoints::remove(Memory& memory, uint64_t va) {
  m_forgotten.erase(va);
  auto at = m_va_to_gpa.find(va);
  if (at == m_va_to_gpa.end()) return;
  const uint64_t gpa = at->second;
  m_va_to_gpa.erase(at);
  auto it = m_by_gpa.find(gpa);
  if (it == m_by_gpa.end()) return;
  it->second.vas.erase(va);
  if (!it->second.vas.empty()) return;
  restore(memory, gpa, it->second);
  m_by_gpa.erase(it);
}

void SoftwareBreakpoints::remove_all(Memory& memory) {
  for (const auto& [gpa, planted] : m_by_gpa) restore(memory, gpa, planted);
  m_by_gpa.clear();
  m_va_to_gpa.clear();
  m_forgotten.clear();
}

void SoftwareBreakpoints::forget() {
  for (const auto& [va, gpa] : m_va_to_gpa) m_forgotten.insert(va);
  m_by_gpa.clear();
  m_va_to_gpa.clear();
}

void SoftwareBreakpoints::lift(Memory& memory) {
  for (auto& [gpa, planted] : m_by_gpa) {
    restore(memory, gpa, planted);
    planted.lifted = true;
  }
}

void SoftwareBreakpoints::replant(Memory& memory) {
  for (auto it = m_by_gpa.begin(); it != m_by_gpa.end();) {
    Planted& planted = it->second;
    uint8_t* byte = planted.lifted ? memory.ram(it->first) : nullptr;
    if (planted.lifted && !byte) {  // no longer RAM: drop it
      for (uint64_t va : planted.vas) m_va_to_gpa.erase(va);
      it = m_by_gpa.erase(it);
      continue;
    }
    if (planted.lifted) {
      planted.original = *byte;
      planted.lifted = false;
      *byte = kInt3;
      memory.written(it->first);
    }
    ++it;
  }
  const std::set<uint64_t> forgotten = std::move(m_forgotten);
  m_forgotten.clear();
  for (uint64_t va : forgotten) (void)insert(memory, va);  // one that no longer translates is dropped
}

std::vector<uint64_t> SoftwareBreakpoints::addresses() const {
  std::vector<uint64_t> out;
  out.reserve(m_va_to_gpa.size());
  for (const auto& [va, gpa] : m_va_to_gpa) out.push_back(va);
  return out;
}

void SoftwareBreakpoints::mask(uint64_t gpa, std::span<uint8_t> bytes) const {
  if (bytes.empty() || gpa + bytes.size() < gpa) return;
  for (auto it = m_by_gpa.lower_bound(gpa); it != m_by_gpa.end() && it->first - gpa < bytes.size(); ++it)
    if (!it->second.lifted && bytes[it->first - gpa] == kInt3) bytes[it->first - gpa] = it->second.original;
}

void SoftwareBreakpoints::rewritten(uint64_t gpa, std::span<uint8_t> ram) {
  if (ram.empty() || gpa + ram.size() < gpa) return;
  for (auto it = m_by_gpa.lower_bound(gpa); it != m_by_gpa.end() && it->first - gpa < ram.size(); ++it) {
    if (it->second.lifted) continue;
    it->second.original = ram[it->first - gpa];
    ram[it->first - gpa] = kInt3;
  }
}

}  // namespace gdbstub
