// `qcow2` block backend: read and write with backing-file chains, cluster allocation and
// refcounts kept consistent on every write.
//
// Crash safety: metadata is written through (no dirty metadata cache) in an order that only ever
// leaks clusters when the process dies between steps:
//   new cluster:  refcount := 1  ->  cluster contents  ->  L2 entry (or L1 entry for an L2 table)
//   freed cluster: L2 entry cleared  ->  refcount := 0
// so `kill -9` leaves at most leaked clusters, which `qemu-img check` reports as leaks, not errors.
// The lazy-refcounts feature is never used, so the dirty bit is never set by us.
//
// Honoured header bits: an image marked corrupt or dirty opens read-only only (run
// `qemu-img check -r all`); unknown incompatible features, external data files, extended L2 and
// encryption are refused; unknown autoclear bits are cleared on a writable open. Metadata found
// inconsistent while writing marks the image corrupt (like QEMU) and fails the request.
// Images with internal snapshots open read-only. Compressed clusters can be read (zlib and zstd) and
// are rewritten uncompressed on write.
#pragma once

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/block.h"
#include "backends/block/qcow2_format.h"
#include "base/result.h"

namespace backends::block {

class Qcow2Backend : public BlockBackend {
 public:
  // Opens the backing file named in the header: (path already resolved, format hint or "").
  using BackingOpener = std::function<base::ErrorOr<std::shared_ptr<BlockBackend>>(
      const std::string& path, const std::string& format)>;
  struct Options {
    bool read_only = false;
    BackingOpener open_backing;  // required when the image has a backing file
  };
  static base::ErrorOr<std::unique_ptr<Qcow2Backend>> open(const std::string& path, Options options);
  ~Qcow2Backend() override;

  uint64_t size() const override { return m_header.size; }
  bool read_only() const override { return m_read_only; }
  base::ErrorOr<void> read(uint64_t offset, std::span<uint8_t> out) override;
  base::ErrorOr<void> write(uint64_t offset, std::span<const uint8_t> in) override;
  base::ErrorOr<void> flush() override;
  base::ErrorOr<void> discard(uint64_t offset, uint64_t length) override;
  base::ErrorOr<void> write_zeroes(uint64_t offset, uint64_t length) override;

  const qcow2::Header& header() const { return m_header; }
  const BlockBackend* backing() const { return m_backing.get(); }

 private:
  Qcow2Backend(int fd, std::string path, qcow2::Header header, bool read_only);
  base::ErrorOr<void> load_tables();

  // One guest cluster: where its data is.
  struct Mapping {
    enum class Kind { Unallocated, Zero, Normal, Compressed } kind = Kind::Unallocated;
    uint64_t host = 0;   // Normal: cluster offset; Zero: preallocated offset or 0
    uint64_t entry = 0;  // the raw L2 entry (Compressed decodes from it)
  };
  base::ErrorOr<Mapping> lookup(uint64_t guest_offset);
  base::ErrorOr<std::vector<uint64_t>*> l2_table(uint64_t l2_offset);
  base::ErrorOr<void> read_cluster_part(const Mapping& mapping, uint64_t guest_offset,
                                        std::span<uint8_t> out);
  base::ErrorOr<void> read_compressed(uint64_t entry, std::span<uint8_t> cluster);
  base::ErrorOr<void> read_backing(uint64_t guest_offset, std::span<uint8_t> out);
  base::ErrorOr<void> write_cluster_part(uint64_t guest_offset, std::span<const uint8_t> in);
  // Points the guest cluster at `entry` (allocating the L2 table if needed).
  base::ErrorOr<void> set_l2_entry(uint64_t guest_offset, uint64_t entry);
  base::ErrorOr<void> zero_or_discard_cluster(uint64_t guest_offset, bool zero);
  base::ErrorOr<void> release(const Mapping& old);

  // Refcounts.
  base::ErrorOr<std::vector<uint8_t>*> refcount_block(uint64_t block_offset);
  base::ErrorOr<uint64_t> refcount(uint64_t cluster_index);
  base::ErrorOr<void> set_refcount(uint64_t cluster_index, uint64_t value);
  base::ErrorOr<uint64_t> alloc_cluster();
  base::ErrorOr<void> grow_refcount_table(uint64_t needed_block);

  base::Error corrupt(const std::string& why);
  base::ErrorOr<void> writable() const;
  base::ErrorOr<void> pwrite_meta(uint64_t offset, std::span<const uint8_t> bytes);

  int m_fd;
  std::string m_path;
  qcow2::Header m_header;
  bool m_read_only;
  bool m_marked_corrupt = false;
  std::shared_ptr<BlockBackend> m_backing;
  uint64_t m_file_size = 0;
  std::vector<uint64_t> m_l1;
  std::vector<uint64_t> m_refcount_table;
  uint64_t m_free_hint = 0;

  // Bounded LRU caches of metadata (write-through, so eviction never writes).
  template <typename T>
  struct Cache {
    size_t capacity;
    std::list<uint64_t> order;  // most recent first
    std::map<uint64_t, std::pair<T, std::list<uint64_t>::iterator>> entries;
    T* find(uint64_t key);
    T* insert(uint64_t key, T value);
    void erase(uint64_t key);
  };
  Cache<std::vector<uint64_t>> m_l2_cache{64, {}, {}};
  Cache<std::vector<uint8_t>> m_refcount_cache{32, {}, {}};

  std::mutex m_lock;
};

}  // namespace backends::block
