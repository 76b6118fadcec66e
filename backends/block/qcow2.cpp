#include "backends/block/qcow2.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "backends/block/image_lock.h"
#include "backends/block/raw.h"

namespace backends::block {

using namespace qcow2;

template <typename T>
T* Qcow2Backend::Cache<T>::find(uint64_t key) {
  auto it = entries.find(key);
  if (it == entries.end()) return nullptr;
  order.splice(order.begin(), order, it->second.second);
  return &it->second.first;
}

template <typename T>
T* Qcow2Backend::Cache<T>::insert(uint64_t key, T value) {
  erase(key);
  if (entries.size() >= capacity) {
    entries.erase(order.back());
    order.pop_back();
  }
  order.push_front(key);
  auto [it, inserted] = entries.emplace(key, std::make_pair(std::move(value), order.begin()));
  return &it->second.first;
}

template <typename T>
void Qcow2Backend::Cache<T>::erase(uint64_t key) {
  auto it = entries.find(key);
  if (it == entries.end()) return;
  order.erase(it->second.second);
  entries.erase(it);
}

Qcow2Backend::Qcow2Backend(int fd, std::string path, Header header, bool read_only)
    : m_fd(fd), m_path(std::move(path)), m_header(std::move(header)), m_read_only(read_only) {}

Qcow2Backend::~Qcow2Backend() {
  close(m_fd);
}

base::ErrorOr<std::unique_ptr<Qcow2Backend>> Qcow2Backend::open(const std::string& path, Options options) {
  int fd = ::open(path.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + std::strerror(errno)));
  if (auto locked = lock_image(fd, path, !options.read_only); !locked) {
    close(fd);
    return base::fail(locked.error());
  }
  struct stat st;
  fstat(fd, &st);
  // The header cluster is at most 2 MiB (cluster_bits <= 21); read what the file has of it.
  std::vector<uint8_t> first(std::min<uint64_t>(static_cast<uint64_t>(st.st_size), 2u << 20));
  if (auto r = pread_all(fd, 0, first); !r) {
    close(fd);
    return base::fail(r.error().with_context(path));
  }
  auto header = parse_header(first);
  if (!header) {
    close(fd);
    return base::fail(header.error().with_context(path));
  }
  Header& h = *header;
  first.resize(std::min<uint64_t>(first.size(), h.cluster_size()));
  std::string refusal;
  if (h.incompatible & kIncompatCorrupt)
    refusal = "image is marked corrupt (inspect and repair with 'qemu-img check -r all')";
  else if (h.incompatible & kIncompatDirty)
    refusal =
        "image was not closed cleanly and has lazy refcounts (dirty bit): repair with 'qemu-img check -r "
        "all'";
  else if (h.nb_snapshots)
    refusal = "image has internal snapshots, which vmlaunch only reads";
  if (!refusal.empty() && !options.read_only) {
    close(fd);
    return base::fail(
        base::Error(path + ": cannot open for writing: " + refusal + "; or attach it read-only"));
  }
  std::unique_ptr<Qcow2Backend> image(new Qcow2Backend(fd, path, h, options.read_only));
  image->m_file_size = static_cast<uint64_t>(st.st_size);
  TRY(image->load_tables());
  if (!h.backing_file.empty()) {
    if (!options.open_backing)
      return base::fail(
          base::Error(path + ": has backing file " + h.backing_file + " but no way to open it"));
    std::filesystem::path backing(h.backing_file);
    if (backing.is_relative()) backing = std::filesystem::path(path).parent_path() / backing;
    auto opened = options.open_backing(backing.string(), h.backing_format);
    if (!opened) return base::fail(opened.error().with_context(path + ": backing file"));
    image->m_backing = std::move(opened).value();
  }
  if (!options.read_only && h.version == 3 && h.autoclear) {
    // Autoclear features (e.g. persistent bitmaps) describe data we are about to change without
    // maintaining them: clearing the bits tells the next reader they are stale (spec, "autoclear").
    uint8_t zero[8] = {};
    TRY(image->pwrite_meta(88, zero));
    image->m_header.autoclear = 0;
  }
  return image;
}

base::ErrorOr<void> Qcow2Backend::load_tables() {
  const Header& h = m_header;
  m_l1.resize(h.l1_size);
  if (h.l1_size) {
    std::vector<uint8_t> raw(uint64_t(h.l1_size) * 8);
    TRY(pread_all(m_fd, h.l1_table_offset, raw));
    for (uint32_t i = 0; i < h.l1_size; ++i) m_l1[i] = load_be64(&raw[i * 8]);
  }
  std::vector<uint8_t> raw(uint64_t(h.refcount_table_clusters) * h.cluster_size());
  TRY(pread_all(m_fd, h.refcount_table_offset, raw));
  m_refcount_table.resize(raw.size() / 8);
  for (size_t i = 0; i < m_refcount_table.size(); ++i) m_refcount_table[i] = load_be64(&raw[i * 8]);
  return {};
}

base::Error Qcow2Backend::corrupt(const std::string& why) {
  if (!m_read_only && !m_marked_corrupt) {
    // Like QEMU: stop further writes from making it worse and tell the next opener.
    m_marked_corrupt = true;
    uint8_t bits[8];
    store_be64(bits, m_header.incompatible | kIncompatCorrupt);
    if (m_header.version == 3) (void)pwrite_all(m_fd, 72, bits);
  }
  return base::Error(m_path + ": image is corrupt: " + why);
}

base::ErrorOr<void> Qcow2Backend::writable() const {
  if (m_read_only) return base::fail(base::Error(m_path + ": read-only"));
  if (m_marked_corrupt) return base::fail(base::Error(m_path + ": image was found corrupt; refusing writes"));
  return {};
}

base::ErrorOr<void> Qcow2Backend::pwrite_meta(uint64_t offset, std::span<const uint8_t> bytes) {
  auto r = pwrite_all(m_fd, offset, bytes);
  if (!r) return base::fail(r.error().with_context(m_path));
  m_file_size = std::max(m_file_size, offset + bytes.size());
  return {};
}

// ---- lookup and reads ----

base::ErrorOr<std::vector<uint64_t>*> Qcow2Backend::l2_table(uint64_t l2_offset) {
  if (auto* cached = m_l2_cache.find(l2_offset)) return cached;
  std::vector<uint8_t> raw(m_header.cluster_size());
  TRY(pread_all(m_fd, l2_offset, raw));
  std::vector<uint64_t> table(m_header.l2_entries());
  for (size_t i = 0; i < table.size(); ++i) table[i] = load_be64(&raw[i * 8]);
  return m_l2_cache.insert(l2_offset, std::move(table));
}

base::ErrorOr<Qcow2Backend::Mapping> Qcow2Backend::lookup(uint64_t guest_offset) {
  uint64_t cluster_index = guest_offset >> m_header.cluster_bits;
  uint64_t l1_index = cluster_index / m_header.l2_entries();
  uint64_t l2_index = cluster_index % m_header.l2_entries();
  if (l1_index >= m_l1.size()) return base::fail(corrupt("guest offset beyond the L1 table"));
  uint64_t l1e = m_l1[l1_index];
  if (l1e & kL1Reserved)
    return base::fail(corrupt("reserved bits set in L1 entry " + std::to_string(l1_index)));
  uint64_t l2_offset = l1e & kOffsetMask;
  if (l2_offset == 0) return Mapping{};
  if (l2_offset % m_header.cluster_size()) return base::fail(corrupt("L2 table offset not cluster aligned"));
  auto* table = TRY(l2_table(l2_offset));
  uint64_t l2e = (*table)[l2_index];
  Mapping m;
  m.entry = l2e;
  if (l2e & kCompressed) {
    m.kind = Mapping::Kind::Compressed;
    return m;
  }
  if (l2e & kL2Reserved) return base::fail(corrupt("reserved bits set in L2 entry"));
  m.host = l2e & kOffsetMask;
  if (m.host % m_header.cluster_size()) return base::fail(corrupt("data cluster offset not cluster aligned"));
  if (l2e & kZero) {
    if (m_header.version < 3) return base::fail(corrupt("zero flag in a version 2 image"));
    m.kind = Mapping::Kind::Zero;
  } else {
    m.kind = m.host ? Mapping::Kind::Normal : Mapping::Kind::Unallocated;
  }
  return m;
}

base::ErrorOr<void> Qcow2Backend::read_backing(uint64_t guest_offset, std::span<uint8_t> out) {
  if (!m_backing) {
    std::memset(out.data(), 0, out.size());
    return {};
  }
  // A backing file shorter than the overlay reads as zeros past its end.
  uint64_t backing_size = m_backing->size();
  uint64_t available =
      guest_offset >= backing_size ? 0 : std::min<uint64_t>(out.size(), backing_size - guest_offset);
  if (available) TRY(m_backing->read(guest_offset, out.first(available)));
  std::memset(out.data() + available, 0, out.size() - available);
  return {};
}

base::ErrorOr<void> Qcow2Backend::read_compressed(uint64_t entry, std::span<uint8_t> cluster) {
  uint32_t x = 62 - (m_header.cluster_bits - 8);
  uint64_t host = entry & ((1ull << x) - 1);
  uint64_t sectors = ((entry & ~kCompressed) >> x) + 1;
  uint64_t length = sectors * 512 - (host & 511);
  if (length > 2 * m_header.cluster_size() + 512) return base::fail(corrupt("compressed cluster too long"));
  std::vector<uint8_t> packed(length);
  TRY(pread_all(m_fd, host, packed));
  if (m_header.compression_type == 0) {
    z_stream z{};
    if (inflateInit2(&z, -12) != Z_OK) return base::fail(base::Error("zlib init failed"));
    z.next_in = packed.data();
    z.avail_in = static_cast<uInt>(packed.size());
    z.next_out = cluster.data();
    z.avail_out = static_cast<uInt>(cluster.size());
    int rc = inflate(&z, Z_FINISH);
    bool full = z.avail_out == 0;
    inflateEnd(&z);
    if ((rc != Z_STREAM_END && rc != Z_BUF_ERROR) || !full)
      return base::fail(corrupt("bad zlib compressed cluster"));
    return {};
  }
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  ZSTD_inBuffer in{packed.data(), packed.size(), 0};
  ZSTD_outBuffer out{cluster.data(), cluster.size(), 0};
  while (out.pos < out.size && in.pos < in.size) {
    size_t rc = ZSTD_decompressStream(dctx, &out, &in);
    if (ZSTD_isError(rc)) break;
    if (rc == 0) break;
  }
  ZSTD_freeDCtx(dctx);
  if (out.pos != out.size) return base::fail(corrupt("bad zstd compressed cluster"));
  return {};
}

base::ErrorOr<void> Qcow2Backend::read_cluster_part(const Mapping& m, uint64_t guest_offset,
                                                    std::span<uint8_t> out) {
  uint64_t in_cluster = guest_offset & (m_header.cluster_size() - 1);
  switch (m.kind) {
    case Mapping::Kind::Unallocated:
      return read_backing(guest_offset, out);
    case Mapping::Kind::Zero:
      std::memset(out.data(), 0, out.size());
      return {};
    case Mapping::Kind::Normal: {
      auto r = pread_all(m_fd, m.host + in_cluster, out);
      if (!r) return base::fail(r.error().with_context(m_path));
      return {};
    }
    case Mapping::Kind::Compressed: {
      std::vector<uint8_t> cluster(m_header.cluster_size());
      TRY(read_compressed(m.entry, cluster));
      std::memcpy(out.data(), cluster.data() + in_cluster, out.size());
      return {};
    }
  }
  return {};
}

base::ErrorOr<void> Qcow2Backend::read(uint64_t offset, std::span<uint8_t> out) {
  if (offset > size() || out.size() > size() - offset)
    return base::fail(base::Error(m_path + ": read beyond the end of the image"));
  std::lock_guard lock(m_lock);
  uint64_t cluster = m_header.cluster_size();
  while (!out.empty()) {
    uint64_t n = std::min<uint64_t>(out.size(), cluster - (offset & (cluster - 1)));
    Mapping m = TRY(lookup(offset));
    // Coalesce: consecutive guest clusters that are contiguous on the host become one pread.
    while (m.kind == Mapping::Kind::Normal && n < out.size()) {
      auto next = TRY(lookup(offset + n));
      if (next.kind != Mapping::Kind::Normal || next.host != m.host + ((offset & (cluster - 1)) + n)) break;
      n += std::min<uint64_t>(out.size() - n, cluster);
    }
    TRY(read_cluster_part(m, offset, out.first(n)));
    offset += n;
    out = out.subspan(n);
  }
  return {};
}

// ---- refcounts and allocation ----

base::ErrorOr<std::vector<uint8_t>*> Qcow2Backend::refcount_block(uint64_t block_offset) {
  if (auto* cached = m_refcount_cache.find(block_offset)) return cached;
  std::vector<uint8_t> raw(m_header.cluster_size());
  TRY(pread_all(m_fd, block_offset, raw));
  return m_refcount_cache.insert(block_offset, std::move(raw));
}

namespace {
// Entry `index` of a refcount block of width 2^order bits (big-endian for >= 8 bits; sub-byte
// widths pack from the least significant bit, as QEMU does).
uint64_t get_entry(const std::vector<uint8_t>& block, uint64_t index, uint32_t order) {
  uint32_t bits = 1u << order;
  if (bits < 8) {
    uint32_t per_byte = 8 / bits;
    return (block[index / per_byte] >> ((index % per_byte) * bits)) & ((1u << bits) - 1);
  }
  uint32_t bytes = bits / 8;
  uint64_t v = 0;
  for (uint32_t i = 0; i < bytes; ++i) v = (v << 8) | block[index * bytes + i];
  return v;
}
// Sets the entry; returns the byte range that changed (for a minimal write).
std::pair<uint64_t, uint64_t> set_entry(std::vector<uint8_t>& block, uint64_t index, uint32_t order,
                                        uint64_t value) {
  uint32_t bits = 1u << order;
  if (bits < 8) {
    uint32_t per_byte = 8 / bits;
    uint32_t shift = (index % per_byte) * bits;
    uint8_t mask = static_cast<uint8_t>(((1u << bits) - 1) << shift);
    uint8_t& byte = block[index / per_byte];
    byte = static_cast<uint8_t>((byte & ~mask) | ((value << shift) & mask));
    return {index / per_byte, 1};
  }
  uint32_t bytes = bits / 8;
  for (uint32_t i = 0; i < bytes; ++i)
    block[index * bytes + i] = static_cast<uint8_t>(value >> (8 * (bytes - 1 - i)));
  return {index * bytes, bytes};
}
}  // namespace

base::ErrorOr<uint64_t> Qcow2Backend::refcount(uint64_t cluster_index) {
  uint64_t per_block = m_header.refcounts_per_block();
  uint64_t block_index = cluster_index / per_block;
  if (block_index >= m_refcount_table.size()) return uint64_t(0);
  uint64_t block_offset = m_refcount_table[block_index] & kOffsetMask;
  if (block_offset == 0) return uint64_t(0);
  if (block_offset % m_header.cluster_size())
    return base::fail(corrupt("refcount block not cluster aligned"));
  auto* block = TRY(refcount_block(block_offset));
  return get_entry(*block, cluster_index % per_block, m_header.refcount_order);
}

base::ErrorOr<void> Qcow2Backend::set_refcount(uint64_t cluster_index, uint64_t value) {
  uint64_t per_block = m_header.refcounts_per_block();
  uint64_t block_index = cluster_index / per_block;
  if (block_index >= m_refcount_table.size() || (m_refcount_table[block_index] & kOffsetMask) == 0)
    return base::fail(
        corrupt("refcount of cluster " + std::to_string(cluster_index) + " has no refcount block"));
  uint64_t block_offset = m_refcount_table[block_index] & kOffsetMask;
  auto* block = TRY(refcount_block(block_offset));
  auto [at, length] = set_entry(*block, cluster_index % per_block, m_header.refcount_order, value);
  return pwrite_meta(block_offset + at, std::span<const uint8_t>(block->data() + at, length));
}

base::ErrorOr<uint64_t> Qcow2Backend::alloc_cluster() {
  uint64_t per_block = m_header.refcounts_per_block();
  uint64_t cluster = m_header.cluster_size();
  // Clusters beyond every bound we could ever address are a sign of a corrupt refcount table.
  uint64_t limit = kOffsetMask / cluster;
  for (uint64_t i = std::max<uint64_t>(m_free_hint, 1); i < limit; ++i) {
    if (TRY(refcount(i)) != 0) {
      // Past the end of the file every cluster must be free; refcounts saying otherwise are
      // corrupt, and trusting them would scan (nearly) forever.
      if (i * cluster > m_file_size + 64 * cluster)
        return base::fail(corrupt("refcounts claim clusters past the end of the file"));
      continue;
    }
    uint64_t block_index = i / per_block;
    if (block_index >= m_refcount_table.size()) {
      TRY(grow_refcount_table(block_index));
      --i;  // look at the same cluster again: the new table and blocks may have taken it
      continue;
    }
    if ((m_refcount_table[block_index] & kOffsetMask) == 0) {
      // No refcount block covers i yet: put the new block in cluster i itself, counting itself.
      std::vector<uint8_t> block(cluster, 0);
      set_entry(block, i % per_block, m_header.refcount_order, 1);
      TRY(pwrite_meta(i * cluster, block));
      uint8_t entry[8];
      store_be64(entry, i * cluster);
      TRY(pwrite_meta(m_header.refcount_table_offset + block_index * 8, entry));
      m_refcount_table[block_index] = i * cluster;
      m_refcount_cache.insert(i * cluster, std::move(block));
      continue;
    }
    TRY(set_refcount(i, 1));
    m_free_hint = i + 1;
    return i * cluster;
  }
  return base::fail(base::Error(m_path + ": image is full"));
}

base::ErrorOr<void> Qcow2Backend::grow_refcount_table(uint64_t needed_block) {
  uint64_t cluster = m_header.cluster_size();
  uint64_t per_block = m_header.refcounts_per_block();
  uint64_t old_entries = m_refcount_table.size();
  // Place the new table and the blocks that count it past everything the old table covers and
  // past the end of the file, so nothing there can be in use.
  uint64_t start = std::max((m_file_size + cluster - 1) / cluster, old_entries * per_block);
  uint64_t entries = std::max<uint64_t>(needed_block + 1, old_entries * 2);
  uint64_t table_clusters = 0, first_block = start / per_block, blocks = 0;
  for (int round = 0; round < 8; ++round) {
    uint64_t end = start + table_clusters + blocks;  // one past the last new cluster
    uint64_t last_block = (std::max(end, start + 1) - 1) / per_block;
    entries = std::max(entries, last_block + 1);
    uint64_t new_table_clusters = (entries * 8 + cluster - 1) / cluster;
    uint64_t new_blocks = last_block - first_block + 1;
    if (new_table_clusters == table_clusters && new_blocks == blocks) break;
    table_clusters = new_table_clusters;
    blocks = new_blocks;
  }
  if (table_clusters * cluster > kMaxRefcountTableBytes)
    return base::fail(base::Error(m_path + ": refcount table would exceed 8 MiB"));
  entries = table_clusters * cluster / 8;
  uint64_t table_at = start * cluster;
  uint64_t blocks_at = (start + table_clusters) * cluster;
  // New blocks: refcount 1 for every new cluster (table + blocks).
  std::vector<uint64_t> table(m_refcount_table);
  table.resize(entries, 0);
  for (uint64_t b = 0; b < blocks; ++b) {
    std::vector<uint8_t> block(cluster, 0);
    for (uint64_t c = start; c < start + table_clusters + blocks; ++c)
      if (c / per_block == first_block + b) set_entry(block, c % per_block, m_header.refcount_order, 1);
    TRY(pwrite_meta(blocks_at + b * cluster, block));
    table[first_block + b] = blocks_at + b * cluster;
    m_refcount_cache.insert(blocks_at + b * cluster, std::move(block));
  }
  std::vector<uint8_t> raw(table_clusters * cluster, 0);
  for (uint64_t i = 0; i < entries; ++i) store_be64(&raw[i * 8], table[i]);
  TRY(pwrite_meta(table_at, raw));
  // The new table must be on disk before the header points at it.
  if (fdatasync(m_fd) != 0) return base::fail(base::Error(m_path + ": fdatasync: " + std::strerror(errno)));
  uint8_t header_fields[12];
  store_be64(header_fields, table_at);
  store_be32(header_fields + 8, static_cast<uint32_t>(table_clusters));
  TRY(pwrite_meta(48, header_fields));
  uint64_t old_at = m_header.refcount_table_offset;
  uint64_t old_clusters = m_header.refcount_table_clusters;
  m_header.refcount_table_offset = table_at;
  m_header.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
  m_refcount_table = std::move(table);
  for (uint64_t c = 0; c < old_clusters; ++c) TRY(set_refcount(old_at / cluster + c, 0));
  m_free_hint = std::min(m_free_hint, old_at / cluster);
  return {};
}

// Drops the reference an L2 entry held (after the entry itself was changed on disk).
base::ErrorOr<void> Qcow2Backend::release(const Mapping& old) {
  uint64_t cluster = m_header.cluster_size();
  std::vector<uint64_t> clusters;
  if ((old.kind == Mapping::Kind::Normal || old.kind == Mapping::Kind::Zero) && old.host) {
    clusters.push_back(old.host / cluster);
  } else if (old.kind == Mapping::Kind::Compressed) {
    uint32_t x = 62 - (m_header.cluster_bits - 8);
    uint64_t host = old.entry & ((1ull << x) - 1);
    uint64_t sectors = ((old.entry & ~kCompressed) >> x) + 1;
    uint64_t end = (host & ~511ull) + sectors * 512;
    for (uint64_t c = host / cluster; c * cluster < end; ++c) clusters.push_back(c);
  }
  for (uint64_t c : clusters) {
    uint64_t count = TRY(refcount(c));
    if (count == 0) return base::fail(corrupt("freeing cluster " + std::to_string(c) + " with refcount 0"));
    TRY(set_refcount(c, count - 1));
    if (count == 1) {
      m_free_hint = std::min(m_free_hint, c);
      // Give the space back to the host filesystem; failure only costs space.
      fallocate(m_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(c * cluster),
                static_cast<off_t>(cluster));
    }
  }
  return {};
}

// ---- writes ----

base::ErrorOr<void> Qcow2Backend::set_l2_entry(uint64_t guest_offset, uint64_t entry) {
  uint64_t cluster_index = guest_offset >> m_header.cluster_bits;
  uint64_t l1_index = cluster_index / m_header.l2_entries();
  uint64_t l2_index = cluster_index % m_header.l2_entries();
  uint64_t l2_offset = m_l1[l1_index] & kOffsetMask;
  if (l2_offset == 0) {
    l2_offset = TRY(alloc_cluster());
    std::vector<uint8_t> zeros(m_header.cluster_size(), 0);
    TRY(pwrite_meta(l2_offset, zeros));
    uint8_t raw[8];
    store_be64(raw, l2_offset | kCopied);
    TRY(pwrite_meta(m_header.l1_table_offset + l1_index * 8, raw));
    m_l1[l1_index] = l2_offset | kCopied;
    m_l2_cache.insert(l2_offset, std::vector<uint64_t>(m_header.l2_entries(), 0));
  }
  auto* table = TRY(l2_table(l2_offset));
  uint8_t raw[8];
  store_be64(raw, entry);
  TRY(pwrite_meta(l2_offset + l2_index * 8, raw));
  (*table)[l2_index] = entry;
  return {};
}

base::ErrorOr<void> Qcow2Backend::write_cluster_part(uint64_t guest_offset, std::span<const uint8_t> in) {
  uint64_t cluster = m_header.cluster_size();
  uint64_t in_cluster = guest_offset & (cluster - 1);
  Mapping m = TRY(lookup(guest_offset));
  if (m.kind == Mapping::Kind::Normal) {
    auto r = pwrite_all(m_fd, m.host + in_cluster, in);
    if (!r) return base::fail(r.error().with_context(m_path));
    return {};
  }
  // Copy-on-write into a fresh cluster: the old contents (backing, zeros, compressed) around the
  // written part, then the new bytes.
  uint64_t cluster_start = guest_offset - in_cluster;
  std::vector<uint8_t> data(cluster);
  if (in.size() < cluster) {
    uint64_t tail = std::min<uint64_t>(cluster, size() - cluster_start);  // the last cluster may be partial
    TRY(read_cluster_part(m, cluster_start, std::span<uint8_t>(data.data(), tail)));
  }
  std::memcpy(data.data() + in_cluster, in.data(), in.size());
  uint64_t host;
  if (m.kind == Mapping::Kind::Zero && m.host) {
    host = m.host;  // preallocated zero cluster: reuse its space
  } else {
    host = TRY(alloc_cluster());
  }
  TRY(pwrite_meta(host, data));
  TRY(set_l2_entry(guest_offset, host | kCopied));
  if (m.kind == Mapping::Kind::Compressed) TRY(release(m));
  return {};
}

base::ErrorOr<void> Qcow2Backend::write(uint64_t offset, std::span<const uint8_t> in) {
  TRY(writable());
  if (offset > size() || in.size() > size() - offset)
    return base::fail(base::Error(m_path + ": write beyond the end of the image"));
  std::lock_guard lock(m_lock);
  uint64_t cluster = m_header.cluster_size();
  while (!in.empty()) {
    uint64_t n = std::min<uint64_t>(in.size(), cluster - (offset & (cluster - 1)));
    TRY(write_cluster_part(offset, in.first(n)));
    offset += n;
    in = in.subspan(n);
  }
  return {};
}

base::ErrorOr<void> Qcow2Backend::flush() {
  if (m_read_only) return {};
  if (fdatasync(m_fd) != 0) return base::fail(base::Error(m_path + ": fdatasync: " + std::strerror(errno)));
  return {};
}

// Makes one whole guest cluster read as zeros (zero) or as "whatever is below" (discard).
base::ErrorOr<void> Qcow2Backend::zero_or_discard_cluster(uint64_t guest_offset, bool zero) {
  Mapping m = TRY(lookup(guest_offset));
  uint64_t entry;
  if (m_header.version >= 3 && (zero || m_backing)) {
    // Zero flag: reads as zeros without consulting the backing file. (Discard with a backing file
    // must not expose the backing's old data either: zeros are the safe answer.)
    entry = kZero;
  } else if (!m_backing) {
    entry = 0;  // unallocated without backing reads as zeros
  } else if (zero) {
    // Version 2 with a backing file has no zero flag: write real zeros.
    std::vector<uint8_t> zeros(m_header.cluster_size(), 0);
    return write_cluster_part(guest_offset, zeros);
  } else {
    return {};  // discard is only a hint
  }
  if (m.kind == Mapping::Kind::Unallocated && entry == 0) return {};
  if (m.kind == Mapping::Kind::Zero && m.host == 0 && entry == kZero) return {};
  TRY(set_l2_entry(guest_offset, entry));
  return release(m);
}

base::ErrorOr<void> Qcow2Backend::write_zeroes(uint64_t offset, uint64_t length) {
  TRY(writable());
  if (offset > size() || length > size() - offset)
    return base::fail(base::Error(m_path + ": write beyond the end of the image"));
  uint64_t cluster = m_header.cluster_size();
  std::vector<uint8_t> zeros;
  while (length > 0) {
    uint64_t in_cluster = offset & (cluster - 1);
    uint64_t n = std::min<uint64_t>(length, cluster - in_cluster);
    std::lock_guard lock(m_lock);
    if (n == cluster) {
      TRY(zero_or_discard_cluster(offset, true));
    } else {
      zeros.assign(n, 0);
      TRY(write_cluster_part(offset, zeros));
    }
    offset += n;
    length -= n;
  }
  return {};
}

base::ErrorOr<void> Qcow2Backend::discard(uint64_t offset, uint64_t length) {
  TRY(writable());
  if (offset > size() || length > size() - offset)
    return base::fail(base::Error(m_path + ": discard beyond the end of the image"));
  uint64_t cluster = m_header.cluster_size();
  // Only whole clusters can be given back; partial ones are left alone (discard is a hint).
  uint64_t first = (offset + cluster - 1) / cluster * cluster;
  uint64_t end = (offset + length) / cluster * cluster;
  std::lock_guard lock(m_lock);
  for (uint64_t at = first; at < end; at += cluster) TRY(zero_or_discard_cluster(at, false));
  return {};
}

}  // namespace backends::block
