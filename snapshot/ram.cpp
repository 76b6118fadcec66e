#include "snapshot/ram.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/fd_io.h"
#include "security/thread_role.h"
#include "snapshot/state_file.h"

namespace snapshot {
namespace {

constexpr int kZstdLevel = 1;  // RAM is mostly code and zeros: level 1 is within a few % of 3, far faster

struct ChunkPlan {
  uint8_t* host = nullptr;
  uint64_t gpa = 0;
  uint64_t pages = 0;
};

std::vector<ChunkPlan> plan_chunks(const base::GuestMemory& memory) {
  std::vector<ChunkPlan> chunks;
  for (const auto& region : memory.regions())
    for (uint64_t at = 0; at < region.size; at += kChunkPages * kPageSize) {
      uint64_t bytes = std::min(region.size - at, kChunkPages * kPageSize);
      chunks.push_back({region.host + at, region.guest_base + at, (bytes + kPageSize - 1) / kPageSize});
    }
  return chunks;
}

bool page_is_zero(const uint8_t* page, uint64_t size) {
  // Guest RAM is page aligned; word-sized reads of it are safe.
  const uint64_t* words = reinterpret_cast<const uint64_t*>(page);
  for (uint64_t i = 0; i < size / 8; ++i)
    if (words[i]) return false;
  for (uint64_t i = size / 8 * 8; i < size; ++i)
    if (page[i]) return false;
  return true;
}

// Which pages of guest RAM were ever touched, from /proc/self/pagemap (bit 63 present, bit 62
// swapped): a private anonymous page that is neither has never been written and reads as zero. Reading
// such a page to find that out costs a page fault each, which on a 256 MiB guest that used 16 MiB
// was most of a snapshot's time (and of a restore's). Not used for shareable (memfd) RAM, whose
// pages another process may have written; when pagemap cannot be read every page counts as touched.
class TouchedPages {
 public:
  explicit TouchedPages(bool usable) {
    if (usable) m_fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  }
  ~TouchedPages() {
    if (m_fd >= 0) ::close(m_fd);
  }
  TouchedPages(const TouchedPages&) = delete;
  TouchedPages& operator=(const TouchedPages&) = delete;

  // One flag per page of [host, host + pages * kPageSize): false = never touched (zero).
  std::vector<bool> of(const uint8_t* host, uint64_t pages) const {
    std::vector<bool> touched(pages, true);
    if (m_fd < 0) return touched;
    std::vector<uint64_t> entries(pages);
    const off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(host) / kPageSize * 8);
    const size_t want = pages * 8;
    ssize_t n = ::pread(m_fd, entries.data(), want, at);
    if (n != static_cast<ssize_t>(want)) return touched;
    for (uint64_t p = 0; p < pages; ++p) touched[p] = (entries[p] >> 62) != 0;
    return touched;
  }

 private:
  int m_fd = -1;
};

std::string errno_text(const std::string& what, const std::filesystem::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

// Runs `work(i)` for i in [0, count) on `threads` threads of role snapshot; stops early once a
// call returns false.
template <typename Work>
void parallel_for(size_t count, unsigned threads, Work&& work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max<size_t>(count, 1))));
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      security::ThreadRole role(security::Role::Snapshot);
      for (size_t i; !failed.load() && (i = next.fetch_add(1)) < count;)
        if (!work(i)) failed.store(true);
    });
  for (std::thread& thread : pool) thread.join();
}

}  // namespace

nlohmann::json ram_layout(const base::GuestMemory& memory) {
  nlohmann::json regions = nlohmann::json::array();
  for (const auto& region : memory.regions())
    regions.push_back({{"base", region.guest_base}, {"size", region.size}});
  return regions;
}

base::ErrorOr<nlohmann::json> save_ram(const base::GuestMemory& memory, const std::filesystem::path& path,
                                       unsigned threads, RamStats* stats) {
  const std::vector<ChunkPlan> chunks = plan_chunks(memory);
  const TouchedPages touched_pages(!memory.shareable());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(base::Error(errno_text("creating", path)));

  // Workers compress chunks in any order; this thread writes them in order as they become ready,
  // with at most `window` chunks held in memory.
  struct Slot {
    bool done = false;
    std::vector<uint8_t> bytes;  // bitmap + frame; empty for an all-zero chunk
    uint64_t pages = 0;
    std::string error;
  };
  std::vector<Slot> slots(chunks.size());
  std::mutex lock;
  std::condition_variable changed;
  size_t written_upto = 0;  // chunks handed to the file
  const size_t window = std::max<size_t>(2, size_t{threads} * 2);
  bool abort = false;

  std::thread pool_owner([&] {
    security::ThreadRole role(security::Role::Snapshot);
    parallel_for(chunks.size(), threads, [&](size_t i) {
      {
        std::unique_lock guard(lock);
        changed.wait(guard, [&] { return abort || i < written_upto + window; });
        if (abort) return false;
      }
      const ChunkPlan& chunk = chunks[i];
      Slot slot;
      std::vector<uint8_t> bitmap((chunk.pages + 7) / 8, 0);
      std::vector<uint8_t> pages;
      const std::vector<bool> touched = touched_pages.of(chunk.host, chunk.pages);
      for (uint64_t p = 0; p < chunk.pages; ++p) {
        const uint8_t* page = chunk.host + p * kPageSize;
        if (!touched[p] || page_is_zero(page, kPageSize)) continue;
        bitmap[p / 8] |= static_cast<uint8_t>(1u << (p % 8));
        pages.insert(pages.end(), page, page + kPageSize);
        slot.pages++;
      }
      if (slot.pages > 0) {
        slot.bytes = std::move(bitmap);
        const size_t head = slot.bytes.size();
        slot.bytes.resize(head + ZSTD_compressBound(pages.size()));
        ZSTD_CCtx* cctx = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, kZstdLevel);
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
        size_t n = ZSTD_compress2(cctx, slot.bytes.data() + head, slot.bytes.size() - head, pages.data(),
                                  pages.size());
        ZSTD_freeCCtx(cctx);
        if (ZSTD_isError(n)) {
          slot.error = std::string("zstd: ") + ZSTD_getErrorName(n);
        } else {
          slot.bytes.resize(head + n);
        }
      }
      slot.done = true;
      std::lock_guard guard(lock);
      slots[i] = std::move(slot);
      changed.notify_all();
      return slots[i].error.empty();
    });
  });

  nlohmann::json list = nlohmann::json::array();
  uint64_t offset = 0, nonzero = 0;
  std::string error;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Slot slot;
    {
      std::unique_lock guard(lock);
      changed.wait(guard, [&] { return slots[i].done; });
      slot = std::move(slots[i]);
      slots[i].bytes.clear();
    }
    if (!slot.error.empty()) {
      error = slot.error;
    } else if (!slot.bytes.empty() && !base::write_all(fd, std::span<const uint8_t>(slot.bytes))) {
      error = errno_text("writing", path);
    }
    if (!error.empty()) {
      std::lock_guard guard(lock);
      abort = true;
      changed.notify_all();
      // Workers waiting on slots past this one are released by `abort`; the ones running finish.
      break;
    }
    if (!slot.bytes.empty())
      list.push_back({{"gpa", chunks[i].gpa},
                      {"pages", chunks[i].pages},
                      {"offset", offset},
                      {"length", slot.bytes.size()},
                      {"crc", crc32c(slot.bytes)}});
    offset += slot.bytes.size();
    nonzero += slot.pages;
    std::lock_guard guard(lock);
    written_upto = i + 1;
    changed.notify_all();
  }
  pool_owner.join();
  if (error.empty() && ::fsync(fd) != 0) error = errno_text("syncing", path);
  ::close(fd);
  if (!error.empty()) return base::fail(base::Error(error));
  if (stats) {
    stats->ram_bytes = 0;
    for (const auto& region : memory.regions()) stats->ram_bytes += region.size;
    stats->nonzero_pages = nonzero;
    stats->stored_bytes = offset;
  }
  return nlohmann::json{{"file", kRamFile},    {"page_size", kPageSize},        {"chunk_pages", kChunkPages},
                        {"file_size", offset}, {"regions", ram_layout(memory)}, {"chunks", list}};
}

base::ErrorOr<void> load_ram(const base::GuestMemory& memory, const std::filesystem::path& path,
                             const nlohmann::json& index, unsigned threads) {
  auto bad = [](const std::string& why) { return base::fail(base::Error("RAM index: " + why)); };
  if (!index.is_object() || index.value("page_size", uint64_t{0}) != kPageSize || !index.contains("chunks") ||
      !index["chunks"].is_array() || !index.contains("file_size"))
    return bad("missing or of another layout");
  if (index.value("regions", nlohmann::json()) != ram_layout(memory))
    return base::fail(base::Error("the snapshot's RAM layout " +
                                  index.value("regions", nlohmann::json()).dump() +
                                  " differs from this machine's " + ram_layout(memory).dump()));
  const uint64_t file_size = index["file_size"].get<uint64_t>();
  // Every chunk of this machine's RAM; those the index does not list were all zeros.
  struct Chunk {
    uint8_t* host = nullptr;
    uint64_t pages = 0, offset = 0, length = 0;
    uint32_t crc = 0;
    bool stored = false;
  };
  std::vector<Chunk> chunks;
  std::vector<uint64_t> gpas;
  for (const ChunkPlan& plan : plan_chunks(memory)) {
    chunks.push_back({plan.host, plan.pages, 0, 0, 0, false});
    gpas.push_back(plan.gpa);
  }
  for (const nlohmann::json& entry : index["chunks"]) {
    if (!entry.is_object()) return bad("a chunk entry is not an object");
    const uint64_t gpa = entry.value("gpa", uint64_t{0});
    auto at = std::lower_bound(gpas.begin(), gpas.end(), gpa);
    if (at == gpas.end() || *at != gpa)
      return bad("a chunk at " + std::to_string(gpa) + " is not one of this RAM's");
    Chunk& chunk = chunks[static_cast<size_t>(at - gpas.begin())];
    if (chunk.stored) return bad("the chunk at " + std::to_string(gpa) + " is listed twice");
    if (entry.value("pages", uint64_t{0}) != chunk.pages)
      return bad("the chunk at " + std::to_string(gpa) + " has another size");
    chunk.offset = entry.value("offset", uint64_t{0});
    chunk.length = entry.value("length", uint64_t{0});
    chunk.crc = entry.value("crc", uint32_t{0});
    chunk.stored = true;
    if (chunk.offset > file_size || chunk.length > file_size - chunk.offset ||
        chunk.length < (chunk.pages + 7) / 8)
      return bad("a chunk lies outside the RAM file");
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error(errno_text("opening", path)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != file_size) {
    ::close(fd);
    return base::fail(base::Error(path.filename().string() + " is " + std::to_string(st.st_size) +
                                  " bytes, the snapshot wrote " + std::to_string(file_size) +
                                  " (truncated or replaced)"));
  }
  std::mutex error_lock;
  std::string error;
  const TouchedPages touched_pages(!memory.shareable());
  parallel_for(chunks.size(), threads, [&](size_t i) {
    const Chunk& chunk = chunks[i];
    const std::vector<bool> touched = touched_pages.of(chunk.host, chunk.pages);
    // The machine was built with its boot images in RAM: pages that were zero at the snapshot are
    // zeroed here (reading an untouched page maps the shared zero page; only dirty ones are written).
    auto zero_page = [&](uint64_t p) {
      uint8_t* page = chunk.host + p * kPageSize;
      if (touched[p] && !page_is_zero(page, kPageSize)) std::memset(page, 0, kPageSize);
    };
    if (!chunk.stored) {
      for (uint64_t p = 0; p < chunk.pages; ++p) zero_page(p);
      return true;
    }
    auto fail = [&](const std::string& why) {
      std::lock_guard guard(error_lock);
      if (error.empty()) error = path.filename().string() + ": chunk " + std::to_string(i) + ": " + why;
      return false;
    };
    std::vector<uint8_t> stored(chunk.length);
    size_t got = 0;
    while (got < stored.size()) {
      ssize_t n =
          ::pread(fd, stored.data() + got, stored.size() - got, static_cast<off_t>(chunk.offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail("short read");
      got += static_cast<size_t>(n);
    }
    if (crc32c(stored) != chunk.crc) return fail("corrupted (checksum mismatch)");
    const size_t bitmap_size = (chunk.pages + 7) / 8;
    uint64_t nonzero = 0;
    for (uint64_t p = 0; p < chunk.pages; ++p) nonzero += (stored[p / 8] >> (p % 8)) & 1;
    std::vector<uint8_t> pages(nonzero * kPageSize);
    size_t n =
        ZSTD_decompress(pages.data(), pages.size(), stored.data() + bitmap_size, stored.size() - bitmap_size);
    if (ZSTD_isError(n)) return fail(std::string("zstd: ") + ZSTD_getErrorName(n));
    if (n != pages.size())
      return fail("holds " + std::to_string(n) + " bytes, its bitmap says " + std::to_string(pages.size()));
    const uint8_t* from = pages.data();
    for (uint64_t p = 0; p < chunk.pages; ++p) {
      if (!((stored[p / 8] >> (p % 8)) & 1)) {
        zero_page(p);
        continue;
      }
      std::memcpy(chunk.host + p * kPageSize, from, kPageSize);
      from += kPageSize;
    }
    return true;
  });
  ::close(fd);
  if (!error.empty()) return base::fail(base::Error(error));
  return {};
}

}  // namespace snapshot
