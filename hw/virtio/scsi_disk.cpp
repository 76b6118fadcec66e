#include "hw/virtio/scsi_disk.h"

#include <algorithm>
#include <cstring>

namespace hw::scsi {

namespace {

constexpr uint32_t kDiskBlock = 512;
constexpr uint32_t kCdBlock = 2048;

uint16_t be16(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint16_t>(b[at] << 8 | b[at + 1]);
}
uint32_t be24(std::span<const uint8_t> b, size_t at) {
  return uint32_t(b[at]) << 16 | uint32_t(be16(b, at + 1));
}
uint32_t be32(std::span<const uint8_t> b, size_t at) {
  return uint32_t(be16(b, at)) << 16 | be16(b, at + 2);
}
uint64_t be64(std::span<const uint8_t> b, size_t at) {
  return uint64_t(be32(b, at)) << 32 | be32(b, at + 4);
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}
// Space-padded ASCII field (INQUIRY vendor/product/revision).
void put_ascii(uint8_t* p, size_t width, std::string_view text) {
  std::memset(p, ' ', width);
  std::memcpy(p, text.data(), std::min(width, text.size()));
}

// CDB length by the opcode's group code (SPC-4 4.2.5.1); 0 for groups we do not decode.
size_t cdb_length(uint8_t opcode) {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}

// Copies `data` to the start of the data-in buffers; returns the bytes copied.
uint64_t copy_in(const DataBuffers& buffers, std::span<const uint8_t> data) {
  uint64_t done = 0;
  for (std::span<uint8_t> piece : buffers.in) {
    if (done == data.size()) break;
    size_t n = std::min<uint64_t>(piece.size(), data.size() - done);
    std::memcpy(piece.data(), data.data() + done, n);
    done += n;
  }
  return done;
}

Outcome overrun() {
  Outcome o;
  o.overrun = true;
  return o;
}

}  // namespace

uint64_t DataBuffers::in_size() const {
  uint64_t n = 0;
  for (auto& s : in) n += s.size();
  return n;
}

uint64_t DataBuffers::out_size() const {
  uint64_t n = 0;
  for (auto& s : out) n += s.size();
  return n;
}

size_t Outcome::write_sense(std::span<uint8_t> out) const {
  uint8_t fixed[kFixedSenseSize] = {};
  fixed[0] = 0x70;  // current error, fixed format
  fixed[2] = sense.key;
  fixed[7] = kFixedSenseSize - 8;  // additional sense length
  fixed[12] = sense.asc;
  fixed[13] = sense.ascq;
  size_t n = std::min(out.size(), sizeof(fixed));
  std::memcpy(out.data(), fixed, n);
  return n;
}

Disk::Disk(std::shared_ptr<backends::BlockBackend> backend, Options options)
    : m_backend(std::move(backend)), m_options(std::move(options)) {
  m_block_size = m_options.kind == Kind::Cd ? kCdBlock : kDiskBlock;
  m_blocks = m_backend->size() / m_block_size;
  m_read_only = m_options.kind == Kind::Cd || m_options.read_only || m_backend->read_only();
}

Outcome Disk::fail(Sense sense) {
  m_rejected++;
  Outcome o;
  o.status = kStatusCheckCondition;
  o.sense = sense;
  return o;
}

// A data-in command with an allocation length: the guest gets min(allocation, data) bytes. As
// QEMU does, an allocation length larger than the buffers (or data-out buffers) is an overrun.
Outcome Disk::reply(const DataBuffers& buffers, std::span<const uint8_t> data, uint64_t allocation) {
  if (allocation > buffers.in_size() || buffers.out_size() != 0) return overrun();
  Outcome o;
  o.data_in = copy_in(buffers, data.first(std::min<uint64_t>(data.size(), allocation)));
  return o;
}

Outcome Disk::execute(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  if (cdb.empty()) return fail(kSenseInvalidOpcode);
  const uint8_t opcode = cdb[0];
  const size_t length = cdb_length(opcode);
  if (length == 0) return fail(kSenseInvalidOpcode);
  if (cdb.size() < length) return fail(kSenseInvalidField);
  cdb = cdb.first(length);
  const bool cd = m_options.kind == Kind::Cd;
  const bool no_data = buffers.in_size() == 0 && buffers.out_size() == 0;

  switch (opcode) {
    case 0x00:  // TEST UNIT READY
    case 0x1e:  // PREVENT ALLOW MEDIUM REMOVAL
    case 0x1b:  // START STOP UNIT (nothing to spin or eject)
      return no_data ? Outcome{} : overrun();
    case 0x03: {  // REQUEST SENSE: sense goes back with each command (autosense), nothing is pending
      Outcome none;
      uint8_t data[kFixedSenseSize];
      none.write_sense(data);
      return reply(buffers, data, cdb[4]);
    }
    case 0x12:  // INQUIRY
      return inquiry(cdb, buffers);
    case 0xa0: {  // REPORT LUNS of a lone disk: LUN 0 (virtio-scsi answers for a whole target)
      uint32_t allocation = be32(cdb, 6);
      if (allocation < 16 || cdb[2] > 2) return fail(kSenseInvalidField);
      uint8_t data[16] = {};
      put32(data, 8);  // LUN list length: one entry, LUN 0
      return reply(buffers, data, allocation);
    }
    case 0x25: {  // READ CAPACITY(10)
      uint8_t data[8];
      uint64_t last = m_blocks ? m_blocks - 1 : 0;
      put32(data, last > 0xfffffffe ? 0xffffffff : static_cast<uint32_t>(last));  // 0xffffffff: ask (16)
      put32(data + 4, m_block_size);
      return reply(buffers, data, sizeof(data));
    }
    case 0x9e: {                                                     // SERVICE ACTION IN(16)
      if ((cdb[1] & 0x1f) != 0x10) return fail(kSenseInvalidField);  // only READ CAPACITY(16)
      uint8_t data[32] = {};
      put64(data, m_blocks ? m_blocks - 1 : 0);
      put32(data + 8, m_block_size);
      return reply(buffers, data, be32(cdb, 10));
    }
    case 0x1a:  // MODE SENSE(6)
    case 0x5a:  // MODE SENSE(10)
      return mode_sense(cdb, buffers);
    case 0x08: {  // READ(6): a transfer length of 0 means 256 blocks
      uint32_t count = cdb[4] ? cdb[4] : 256;
      return read(buffers, be24(cdb, 1) & 0x1fffff, count);
    }
    case 0x28:  // READ(10)
      return read(buffers, be32(cdb, 2), be16(cdb, 7));
    case 0xa8:  // READ(12)
      return read(buffers, be32(cdb, 2), be32(cdb, 6));
    case 0x88:  // READ(16)
      return read(buffers, be64(cdb, 2), be32(cdb, 10));
    case 0x0a: {  // WRITE(6)
      uint32_t count = cdb[4] ? cdb[4] : 256;
      return write(buffers, be24(cdb, 1) & 0x1fffff, count, false);
    }
    case 0x2a:  // WRITE(10)
    case 0x2e:  // WRITE AND VERIFY(10): the backend's data is what was written
      return write(buffers, be32(cdb, 2), be16(cdb, 7), cdb[1] & 0x08);
    case 0xaa:  // WRITE(12)
      return write(buffers, be32(cdb, 2), be32(cdb, 6), cdb[1] & 0x08);
    case 0x8a:  // WRITE(16)
    case 0x8e:  // WRITE AND VERIFY(16)
      return write(buffers, be64(cdb, 2), be32(cdb, 10), cdb[1] & 0x08);
    case 0x2f:                         // VERIFY(10)
      if (!no_data) return overrun();  // BYTCHK data comparison is not offered
      return verify(be32(cdb, 2), be16(cdb, 7));
    case 0x8f:  // VERIFY(16)
      if (!no_data) return overrun();
      return verify(be64(cdb, 2), be32(cdb, 10));
    case 0x35:  // SYNCHRONIZE CACHE(10)
    case 0x91:  // SYNCHRONIZE CACHE(16)
      if (!no_data) return overrun();
      if (m_read_only) return Outcome{};
      if (!m_backend->flush()) return fail(kSenseWriteError);
      return Outcome{};
    default:
      break;
  }
  if (cd) {
    switch (opcode) {
      case 0x43:  // READ TOC/PMA/ATIP
        return read_toc(cdb, buffers);
      case 0x46:  // GET CONFIGURATION
        return get_configuration(cdb, buffers);
      case 0x4a:  // GET EVENT STATUS NOTIFICATION
        return event_status(cdb, buffers);
      case 0x51: {  // READ DISC INFORMATION (standard disc information only)
        if (cdb[1] & 0x07) return fail(kSenseInvalidField);
        uint8_t data[34] = {};
        put16(data, sizeof(data) - 2);
        data[2] = 0x0e;  // last session complete, disc finalized
        data[3] = 1;     // first track on disc
        data[4] = 1;     // sessions
        data[5] = 1;     // first track in last session
        data[6] = 1;     // last track in last session
        data[7] = 0x20;  // unrestricted use
        return reply(buffers, data, be16(cdb, 7));
      }
      case 0xbd: {  // MECHANISM STATUS: no changer, tray closed, no error
        uint8_t data[8] = {};
        return reply(buffers, data, be16(cdb, 8));
      }
      case 0xbb:  // SET CD SPEED: we go as fast as the backend
        return no_data ? Outcome{} : overrun();
      default:
        break;
    }
  }
  return fail(kSenseInvalidOpcode);
}

Outcome Disk::read(const DataBuffers& buffers, uint64_t lba, uint64_t count) {
  if (buffers.out_size() != 0) return overrun();
  if (!in_range(lba, count)) return fail(kSenseLbaOutOfRange);
  uint64_t bytes = count * m_block_size;  // count < 2^32 and the block size < 2^12: no overflow
  if (bytes > buffers.in_size()) return overrun();
  uint64_t offset = lba * m_block_size;
  uint64_t left = bytes;
  Outcome o;
  // Straight into the request's buffers (guest memory), one backend call per piece.
  for (std::span<uint8_t> piece : buffers.in) {
    if (left == 0) break;
    size_t n = std::min<uint64_t>(piece.size(), left);
    if (!m_backend->read(offset, piece.first(n))) {
      Outcome error = fail(kSenseReadError);
      error.data_in = o.data_in;
      return error;
    }
    offset += n;
    left -= n;
    o.data_in += n;
  }
  return o;
}

Outcome Disk::write(const DataBuffers& buffers, uint64_t lba, uint64_t count, bool fua) {
  if (buffers.in_size() != 0) return overrun();
  if (m_read_only) return fail(kSenseWriteProtected);
  if (!in_range(lba, count)) return fail(kSenseLbaOutOfRange);
  uint64_t bytes = count * m_block_size;
  if (bytes > buffers.out_size()) return overrun();
  uint64_t offset = lba * m_block_size;
  uint64_t left = bytes;
  Outcome o;
  for (std::span<const uint8_t> piece : buffers.out) {
    if (left == 0) break;
    size_t n = std::min<uint64_t>(piece.size(), left);
    if (!m_backend->write(offset, piece.first(n))) return fail(kSenseWriteError);
    offset += n;
    left -= n;
    o.data_out += n;
  }
  if (fua && !m_backend->flush()) return fail(kSenseWriteError);
  return o;
}

Outcome Disk::verify(uint64_t lba, uint64_t count) {
  if (!in_range(lba, count)) return fail(kSenseLbaOutOfRange);
  return Outcome{};
}

Outcome Disk::inquiry(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  const bool evpd = cdb[1] & 0x01;
  const uint8_t page = cdb[2];
  const uint16_t allocation = be16(cdb, 3);
  const uint8_t type = m_options.kind == Kind::Cd ? 0x05 : 0x00;  // CD/DVD device : direct access block
  if ((cdb[1] & 0x02) || (!evpd && page != 0)) return fail(kSenseInvalidField);  // CmdDt is obsolete
  std::vector<uint8_t> data;
  if (!evpd) {
    data.assign(36, 0);
    data[0] = type;
    data[1] = m_options.kind == Kind::Cd ? 0x80 : 0x00;  // removable medium
    data[2] = 0x05;                                      // SPC-3
    data[3] = 0x12;                                      // HiSup, response data format 2
    data[4] = static_cast<uint8_t>(data.size() - 5);
    data[7] = 0x02;  // CmdQue: tagged commands (the HBA queues many)
    put_ascii(&data[8], 8, "VMLAUNCH");
    put_ascii(&data[16], 16, m_options.kind == Kind::Cd ? "VMLAUNCH CD-ROM" : "VMLAUNCH DISK");
    put_ascii(&data[32], 4, "1.0");
    return reply(buffers, data, allocation);
  }
  data = {type, page, 0, 0};
  switch (page) {
    case 0x00:  // supported pages
      data.push_back(0x00);
      if (!m_options.serial.empty()) data.push_back(0x80);
      data.push_back(0x83);
      break;
    case 0x80:  // unit serial number
      if (m_options.serial.empty()) return fail(kSenseInvalidField);
      data.insert(data.end(), m_options.serial.begin(),
                  m_options.serial.begin() + std::min<size_t>(m_options.serial.size(), 250));
      break;
    case 0x83: {  // device identification: one T10 vendor id designator, "VMLAUNCH" + our id
      std::string id = m_options.device_id.substr(0, 200);
      data.push_back(0x02);  // code set ASCII
      data.push_back(0x01);  // association: logical unit, type T10 vendor id
      data.push_back(0x00);
      data.push_back(static_cast<uint8_t>(8 + id.size()));
      uint8_t vendor[8];
      put_ascii(vendor, 8, "VMLAUNCH");
      data.insert(data.end(), vendor, vendor + 8);
      data.insert(data.end(), id.begin(), id.end());
      break;
    }
    default:
      return fail(kSenseInvalidField);
  }
  put16(&data[2], static_cast<uint16_t>(data.size() - 4));
  return reply(buffers, data, allocation);
}

Outcome Disk::mode_sense(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  const bool ten = cdb[0] == 0x5a;
  const bool cd = m_options.kind == Kind::Cd;
  const bool dbd = (cdb[1] & 0x08) || cd;  // no block descriptors for MMC devices
  const uint8_t control = cdb[2] >> 6;     // 0 current, 1 changeable, 2 default, 3 saved
  const uint8_t page = cdb[2] & 0x3f;
  const uint8_t subpage = cdb[3];
  const uint64_t allocation = ten ? be16(cdb, 7) : cdb[4];
  if (control == 3) return fail(kSenseSavingNotSupported);
  if (subpage != 0 && !(page == 0x3f && subpage == 0xff)) return fail(kSenseInvalidField);

  // Pages in ascending order; a changeable-values request gets them with every field zero (none is).
  std::vector<uint8_t> pages;
  auto add = [&](std::vector<uint8_t> body) {
    if (control == 1) std::fill(body.begin() + 2, body.end(), 0);
    pages.insert(pages.end(), body.begin(), body.end());
  };
  bool known = false;
  if (!cd && (page == 0x08 || page == 0x3f)) {  // caching: write cache enabled (we do flush on request)
    std::vector<uint8_t> caching(20, 0);
    caching[0] = 0x08;
    caching[1] = 18;
    caching[2] = 0x04;  // WCE
    add(caching);
    known = true;
  }
  if (page == 0x0a || page == 0x3f) {  // control
    std::vector<uint8_t> control_page(12, 0);
    control_page[0] = 0x0a;
    control_page[1] = 10;
    add(control_page);
    known = true;
  }
  if (cd && (page == 0x2a || page == 0x3f)) {  // MM capabilities: reads CD and DVD, writes nothing
    std::vector<uint8_t> caps(22, 0);
    caps[0] = 0x2a;
    caps[1] = 20;
    caps[2] = 0x3b;         // reads CD-R, CD-RW, method 2, DVD-ROM
    caps[4] = 0x71;         // audio play, mode 2 form 1/2, multisession
    caps[6] = 0x29;         // tray, eject, lock
    put16(&caps[8], 706);   // maximum read speed, kB/s (4x)
    put16(&caps[10], 0);    // volume levels
    put16(&caps[12], 512);  // buffer size, KiB
    put16(&caps[14], 706);  // current read speed
    add(caps);
    known = true;
  }
  if (!known) return fail(kSenseInvalidField);

  std::vector<uint8_t> data(ten ? 8 : 4, 0);
  const uint8_t device_specific = m_read_only ? 0x80 : 0x10;  // WP, or DPOFUA for a writable disk
  std::vector<uint8_t> descriptor;
  if (!dbd) {
    descriptor.assign(8, 0);
    uint64_t blocks = std::min<uint64_t>(m_blocks, 0xffffff);
    descriptor[1] = static_cast<uint8_t>(blocks >> 16);
    descriptor[2] = static_cast<uint8_t>(blocks >> 8);
    descriptor[3] = static_cast<uint8_t>(blocks);
    descriptor[5] = static_cast<uint8_t>(m_block_size >> 16);
    descriptor[6] = static_cast<uint8_t>(m_block_size >> 8);
    descriptor[7] = static_cast<uint8_t>(m_block_size);
  }
  data.insert(data.end(), descriptor.begin(), descriptor.end());
  data.insert(data.end(), pages.begin(), pages.end());
  if (ten) {
    put16(&data[0], static_cast<uint16_t>(data.size() - 2));
    data[3] = device_specific;
    put16(&data[6], static_cast<uint16_t>(descriptor.size()));
  } else {
    data[0] = static_cast<uint8_t>(std::min<size_t>(data.size() - 1, 255));
    data[2] = device_specific;
    data[3] = static_cast<uint8_t>(descriptor.size());
  }
  return reply(buffers, data, allocation);
}

Outcome Disk::read_toc(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  const bool msf = cdb[1] & 0x02;
  const uint8_t format = cdb[2] & 0x0f;
  const uint8_t track = cdb[6];
  const uint16_t allocation = be16(cdb, 7);
  // An address as LBA, or as minute/second/frame (75 frames a second, 2 s of lead-in).
  auto address = [&](uint8_t* p, uint64_t lba) {
    if (!msf) {
      put32(p, static_cast<uint32_t>(std::min<uint64_t>(lba, 0xffffffff)));
      return;
    }
    uint64_t frames = lba + 150;
    p[0] = 0;
    p[1] = static_cast<uint8_t>(std::min<uint64_t>(frames / (60 * 75), 255));
    p[2] = static_cast<uint8_t>(frames / 75 % 60);
    p[3] = static_cast<uint8_t>(frames % 75);
  };
  std::vector<uint8_t> data(4, 0);
  data[2] = 1;        // first track (format 0) or session (format 1)
  data[3] = 1;        // last one
  if (format == 0) {  // TOC: one data track, then the lead-out
    if (track > 1 && track != 0xaa) return fail(kSenseInvalidField);
    if (track <= 1) {
      uint8_t entry[8] = {0, 0x14, 1, 0};  // ADR 1, data track
      address(entry + 4, 0);
      data.insert(data.end(), entry, entry + 8);
    }
    uint8_t leadout[8] = {0, 0x14, 0xaa, 0};
    address(leadout + 4, m_blocks);
    data.insert(data.end(), leadout, leadout + 8);
  } else if (format == 1) {  // session information: the first track of the last session
    uint8_t entry[8] = {0, 0x14, 1, 0};
    address(entry + 4, 0);
    data.insert(data.end(), entry, entry + 8);
  } else {
    return fail(kSenseInvalidField);
  }
  put16(&data[0], static_cast<uint16_t>(data.size() - 2));
  return reply(buffers, data, allocation);
}

Outcome Disk::get_configuration(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  const uint8_t request_type = cdb[1] & 0x03;
  const uint16_t start = be16(cdb, 2);
  if (request_type == 3) return fail(kSenseInvalidField);
  // A DVD-ROM profile for media larger than a CD can hold, else CD-ROM (what sr and udev look at).
  const uint16_t profile = m_blocks * m_block_size > 800ull * 1024 * 1024 ? 0x0010 : 0x0008;
  std::vector<uint8_t> data(8, 0);
  put16(&data[6], profile);
  if (start == 0) {                         // feature 0: the profile list
    uint8_t feature[12] = {0, 0, 0x03, 8};  // persistent + current, two profile descriptors
    put16(feature + 4, 0x0010);
    feature[6] = profile == 0x0010;
    put16(feature + 8, 0x0008);
    feature[10] = profile == 0x0008;
    data.insert(data.end(), feature, feature + sizeof(feature));
  }
  put32(&data[0], static_cast<uint32_t>(data.size() - 4));
  return reply(buffers, data, be16(cdb, 7));
}

Outcome Disk::event_status(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  if (!(cdb[1] & 0x01)) return fail(kSenseInvalidField);  // only polled operation
  const uint8_t classes = cdb[4];
  std::vector<uint8_t> data(4, 0);
  data[3] = 0x10;  // supported: media class
  if (classes & 0x10) {
    data[2] = 0x04;                      // media class event
    uint8_t media[4] = {0, 0x02, 0, 0};  // no change, media present
    data.insert(data.end(), media, media + 4);
  } else {
    data[2] = 0x80;  // no event available
  }
  put16(&data[0], static_cast<uint16_t>(data.size() - 2));
  return reply(buffers, data, be16(cdb, 7));
}

Outcome report_luns(std::span<const uint8_t> cdb, const DataBuffers& buffers,
                    std::span<const uint16_t> luns) {
  Outcome o;
  if (cdb.size() < 12 || be32(cdb, 6) < 16 || cdb[2] > 2) {
    o.status = kStatusCheckCondition;
    o.sense = kSenseInvalidField;
    return o;
  }
  const uint64_t allocation = be32(cdb, 6);
  if (allocation > buffers.in_size() || buffers.out_size() != 0) return overrun();
  std::vector<uint8_t> data(8 + 8 * luns.size(), 0);
  put32(data.data(), static_cast<uint32_t>(8 * luns.size()));
  for (size_t i = 0; i < luns.size(); ++i) {
    // Peripheral device addressing below 256, flat space addressing (01b) above: as Linux encodes.
    data[8 + 8 * i] = static_cast<uint8_t>(luns[i] < 256 ? 0 : 0x40 | (luns[i] >> 8));
    data[8 + 8 * i + 1] = static_cast<uint8_t>(luns[i] & 0xff);
  }
  o.data_in =
      copy_in(buffers, std::span<const uint8_t>(data).first(std::min<uint64_t>(data.size(), allocation)));
  return o;
}

Outcome no_such_lun(std::span<const uint8_t> cdb, const DataBuffers& buffers) {
  Outcome o;
  if (cdb.size() >= 6 && cdb[0] == 0x12) {  // INQUIRY
    const uint64_t allocation = be16(cdb, 3);
    if (allocation > buffers.in_size() || buffers.out_size() != 0) return overrun();
    uint8_t data[36] = {};
    data[0] = 0x7f;  // peripheral qualifier 3, device type 1Fh: no logical unit can be here
    data[2] = 0x05;  // SPC-3
    data[3] = 0x12;  // HiSup, response data format 2
    data[4] = sizeof(data) - 5;
    o.data_in =
        copy_in(buffers, std::span<const uint8_t>(data, std::min<uint64_t>(sizeof(data), allocation)));
    return o;
  }
  o.status = kStatusCheckCondition;
  o.sense = kSenseLunNotSupported;
  return o;
}

}  // namespace hw::scsi
