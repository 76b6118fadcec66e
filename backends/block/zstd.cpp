#include "backends/block/zstd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "backends/block/raw.h"

namespace backends::block {

namespace {
constexpr uint64_t kMaxIndexedFrame = 64ull << 20;  // bigger frames would make each read too costly
constexpr size_t kCachedFrames = 8;
std::string errno_text() {
  return std::strerror(errno);
}
}  // namespace

base::ErrorOr<std::unique_ptr<ZstdBackend>> ZstdBackend::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return base::fail(base::Error("open " + path + ": " + errno_text()));
  struct stat st;
  fstat(fd, &st);
  std::unique_ptr<ZstdBackend> image(new ZstdBackend());
  image->m_path = path;
  image->m_map_size = static_cast<uint64_t>(st.st_size);
  if (image->m_map_size == 0) {
    close(fd);
    return base::fail(base::Error(path + ": empty file is not a zstd image"));
  }
  // Read-only private mapping of a file we opened read-only; nothing writes through it. (A file
  // truncated under us would fault, as for any image changed behind the VMM's back.)
  void* map = mmap(nullptr, image->m_map_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return base::fail(base::Error("mmap " + path + ": " + errno_text()));
  image->m_map = static_cast<const uint8_t*>(map);

  // Index the frames.
  uint64_t at = 0;
  bool all_known = true;
  uint64_t largest = 0;
  while (at < image->m_map_size) {
    size_t compressed = ZSTD_findFrameCompressedSize(image->m_map + at, image->m_map_size - at);
    if (ZSTD_isError(compressed))
      return base::fail(base::Error(path + ": not a zstd image at byte " + std::to_string(at) + ": " +
                                    ZSTD_getErrorName(compressed)));
    unsigned long long content = ZSTD_getFrameContentSize(image->m_map + at, image->m_map_size - at);
    // Skippable frames (magic 0x184D2A50..5F) carry no image data.
    bool skippable = image->m_map_size - at >= 4 && (image->m_map[at] & 0xf0) == 0x50 &&
                     image->m_map[at + 1] == 0x2a && image->m_map[at + 2] == 0x4d &&
                     image->m_map[at + 3] == 0x18;
    if (!skippable) {
      if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR) {
        all_known = false;
        content = 0;
      }
      image->m_frames.push_back({at, compressed, image->m_size, content});
      image->m_size += content;
      largest = std::max<uint64_t>(largest, content);
    }
    at += compressed;
  }
  if (image->m_frames.empty()) return base::fail(base::Error(path + ": zstd file without data frames"));
  if (image->m_frames.size() > 1 && all_known && largest <= kMaxIndexedFrame) return image;

  // Single frame (or unknown sizes): decompress once into a sparse unlinked temporary file.
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp && *tmp ? tmp : "/var/tmp";
  int cache = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (cache < 0) return base::fail(base::Error("temporary file in " + dir + ": " + errno_text()));
  image->m_cache_fd = cache;
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::vector<uint8_t> out(ZSTD_DStreamOutSize() * 8);
  ZSTD_inBuffer in{image->m_map, image->m_map_size, 0};
  uint64_t written = 0;
  static const uint8_t zeros[4096] = {};
  while (in.pos < in.size) {
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    size_t rc = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(rc)) {
      ZSTD_freeDCtx(dctx);
      return base::fail(base::Error(path + ": corrupt zstd data: " + ZSTD_getErrorName(rc)));
    }
    // Skip all-zero 4 KiB pieces: they stay holes in the temporary file.
    for (size_t off = 0; off < o.pos; off += 4096) {
      size_t n = std::min<size_t>(4096, o.pos - off);
      if (n == 4096 && std::memcmp(out.data() + off, zeros, 4096) == 0) continue;
      if (auto r = pwrite_all(cache, written + off, {out.data() + off, n}); !r) {
        ZSTD_freeDCtx(dctx);
        return base::fail(r.error().with_context("decompressing " + path));
      }
    }
    written += o.pos;
    if (rc == 0 && in.pos == in.size) break;
  }
  ZSTD_freeDCtx(dctx);
  image->m_size = written;
  if (ftruncate(cache, static_cast<off_t>(written)) != 0)
    return base::fail(base::Error("temporary file: " + errno_text()));
  return image;
}

ZstdBackend::~ZstdBackend() {
  if (m_map) munmap(const_cast<uint8_t*>(m_map), m_map_size);
  if (m_cache_fd >= 0) close(m_cache_fd);
}

base::ErrorOr<const std::vector<uint8_t>*> ZstdBackend::frame_data(size_t index) {
  auto it = m_decoded.find(index);
  if (it != m_decoded.end()) {
    m_lru.splice(m_lru.begin(), m_lru, it->second.second);
    return &it->second.first;
  }
  const Frame& f = m_frames[index];
  std::vector<uint8_t> data(f.size);
  size_t rc = ZSTD_decompress(data.data(), data.size(), m_map + f.compressed_offset, f.compressed_size);
  if (ZSTD_isError(rc) || rc != f.size)
    return base::fail(base::Error(m_path + ": corrupt zstd frame " + std::to_string(index)));
  if (m_decoded.size() >= kCachedFrames) {
    m_decoded.erase(m_lru.back());
    m_lru.pop_back();
  }
  m_lru.push_front(index);
  auto [inserted, ok] = m_decoded.emplace(index, std::make_pair(std::move(data), m_lru.begin()));
  return &inserted->second.first;
}

base::ErrorOr<void> ZstdBackend::read(uint64_t offset, std::span<uint8_t> out) {
  if (offset > m_size || out.size() > m_size - offset)
    return base::fail(base::Error(m_path + ": read beyond the end of the image"));
  if (m_cache_fd >= 0) return pread_all(m_cache_fd, offset, out);
  std::lock_guard lock(m_lock);
  // Frames are sorted by offset: binary search the first one containing `offset`.
  size_t lo = 0, hi = m_frames.size();
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    (m_frames[mid].offset <= offset ? lo : hi) = mid;
  }
  for (size_t i = lo; !out.empty() && i < m_frames.size(); ++i) {
    const Frame& f = m_frames[i];
    if (f.size == 0 || offset >= f.offset + f.size) continue;
    auto* data = TRY(frame_data(i));
    uint64_t in_frame = offset - f.offset;
    uint64_t n = std::min<uint64_t>(out.size(), f.size - in_frame);
    std::memcpy(out.data(), data->data() + in_frame, n);
    out = out.subspan(n);
    offset += n;
  }
  return {};
}

base::ErrorOr<void> zstd_compress_frames(const std::string& raw, const std::string& out, uint64_t frame_size,
                                         int level) {
  int in_fd = ::open(raw.c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) return base::fail(base::Error("open " + raw + ": " + errno_text()));
  int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    close(in_fd);
    return base::fail(base::Error("create " + out + ": " + errno_text()));
  }
  std::vector<uint8_t> chunk(frame_size), packed(ZSTD_compressBound(frame_size));
  uint64_t offset = 0, out_offset = 0;
  base::ErrorOr<void> result;
  while (true) {
    ssize_t n = pread(in_fd, chunk.data(), chunk.size(), static_cast<off_t>(offset));
    if (n < 0) {
      result = base::fail(base::Error("read " + raw + ": " + errno_text()));
      break;
    }
    if (n == 0) break;
    // ZSTD_compress records the content size in the frame header, which the index needs.
    size_t c = ZSTD_compress(packed.data(), packed.size(), chunk.data(), static_cast<size_t>(n), level);
    if (ZSTD_isError(c)) {
      result = base::fail(base::Error(std::string("zstd: ") + ZSTD_getErrorName(c)));
      break;
    }
    if (auto w = pwrite_all(out_fd, out_offset, {packed.data(), c}); !w) {
      result = base::fail(w.error().with_context(out));
      break;
    }
    out_offset += c;
    offset += static_cast<uint64_t>(n);
  }
  close(in_fd);
  close(out_fd);
  return result;
}

}  // namespace backends::block
