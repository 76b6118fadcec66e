#include "hw/x86/fw_cfg.h"

#include <algorithm>

namespace hw::x86 {
namespace {

constexpr uint32_t kIdTraditional = 1;  // bit 1 (DMA) clear: SeaBIOS reads bytes from the data port

void put_be(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

}  // namespace

std::vector<uint8_t> FwCfg::le32(uint32_t v) {
  return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
}
std::vector<uint8_t> FwCfg::le64(uint64_t v) {
  std::vector<uint8_t> out = le32(static_cast<uint32_t>(v));
  std::vector<uint8_t> high = le32(static_cast<uint32_t>(v >> 32));
  out.insert(out.end(), high.begin(), high.end());
  return out;
}

FwCfg::FwCfg() {
  m_items[kSignature] = {'Q', 'E', 'M', 'U'};
  m_items[kId] = le32(kIdTraditional);
  rebuild_directory();
}

base::ErrorOr<void> FwCfg::add_item(uint16_t key, std::vector<uint8_t> bytes) {
  if (key == kFileDir || (key >= kFileFirst && key < kFileFirst + kMaxFiles))
    return base::fail(base::Error("fw_cfg key " + std::to_string(key) + " belongs to the file directory"));
  std::lock_guard guard(m_lock);
  m_items[key] = std::move(bytes);
  return {};
}

base::ErrorOr<uint16_t> FwCfg::add_file(const std::string& name, std::vector<uint8_t> bytes) {
  if (name.empty() || name.size() >= kNameSize)
    return base::fail(base::Error("fw_cfg file name \"" + name + "\" must be 1 to " +
                                  std::to_string(kNameSize - 1) + " bytes"));
  if (bytes.size() > UINT32_MAX) return base::fail(base::Error("fw_cfg file \"" + name + "\" is too large"));
  std::lock_guard guard(m_lock);
  if (m_files.count(name)) return base::fail(base::Error("fw_cfg file \"" + name + "\" is already there"));
  if (m_files.size() >= kMaxFiles) return base::fail(base::Error("fw_cfg has no room for \"" + name + "\""));
  const uint16_t key = static_cast<uint16_t>(kFileFirst + m_files.size());
  m_files[name] = key;
  m_items[key] = std::move(bytes);
  rebuild_directory();
  return key;
}

void FwCfg::rebuild_directory() {
  std::vector<uint8_t> dir;
  put_be(dir, m_files.size(), 4);
  for (const auto& [name, key] : m_files) {  // std::map: sorted by name, as QEMU keeps them
    put_be(dir, m_items[key].size(), 4);
    put_be(dir, key, 2);
    put_be(dir, 0, 2);
    std::string padded = name;
    padded.resize(kNameSize, '\0');
    dir.insert(dir.end(), padded.begin(), padded.end());
  }
  m_items[kFileDir] = std::move(dir);
}

void FwCfg::read(uint64_t offset, std::span<uint8_t> data) {
  // Any read is a data read (QEMU's combined port does the same): byte after byte of the selection.
  (void)offset;
  std::lock_guard guard(m_lock);
  auto item = m_items.find(m_selector);
  for (uint8_t& byte : data) {
    if (item != m_items.end() && m_cursor < item->second.size())
      byte = item->second[m_cursor++];
    else
      byte = 0;
  }
}

void FwCfg::write(uint64_t offset, std::span<const uint8_t> data) {
  // A 16-bit write to the selector port selects; byte writes (the old data write) are ignored.
  if (offset != 0 || data.size() != 2) return;
  std::lock_guard guard(m_lock);
  m_selector = static_cast<uint16_t>(data[0] | (data[1] << 8));
  m_cursor = 0;
}

}  // namespace hw::x86
