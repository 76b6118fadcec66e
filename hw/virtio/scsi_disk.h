// SCSI target emulation for scsi-hd (SBC disk, 512-byte blocks) and scsi-cd (MMC CD/DVD-ROM,
// 2048-byte blocks, read-only) on an injected BlockBackend: the commands Linux's sd and sr drivers
// send while probing and doing I/O. Everything else gets CHECK CONDITION with ILLEGAL REQUEST /
// INVALID COMMAND OPERATION CODE, as a real device answers.
//
// Independent of virtio: an HBA (virtio-scsi) hands over the CDB and the request's data buffers as
// spans (pieces of guest memory) and gets back the SCSI status, sense and how much was transferred.
// The CDB and every length and block address in it are guest input: commands shorter than their
// group's length, transfers past the end of the medium, allocation or transfer lengths larger than
// the buffers, and writes to a read-only medium are answered with the proper sense (or an overrun
// for the HBA to report) and never touch memory outside the spans.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/block.h"

namespace hw::scsi {

constexpr uint8_t kStatusGood = 0x00;
constexpr uint8_t kStatusCheckCondition = 0x02;

// Sense keys (SPC-4 4.5.6).
constexpr uint8_t kNoSense = 0x0, kNotReady = 0x2, kMediumError = 0x3, kIllegalRequest = 0x5,
                  kDataProtect = 0x7;

struct Sense {
  uint8_t key = kNoSense;
  uint8_t asc = 0;
  uint8_t ascq = 0;
};

// Additional sense codes we report.
constexpr Sense kSenseInvalidOpcode{kIllegalRequest, 0x20, 0x00};
constexpr Sense kSenseLbaOutOfRange{kIllegalRequest, 0x21, 0x00};
constexpr Sense kSenseInvalidField{kIllegalRequest, 0x24, 0x00};
constexpr Sense kSenseLunNotSupported{kIllegalRequest, 0x25, 0x00};
constexpr Sense kSenseSavingNotSupported{kIllegalRequest, 0x39, 0x00};
constexpr Sense kSenseWriteProtected{kDataProtect, 0x27, 0x00};
constexpr Sense kSenseReadError{kMediumError, 0x11, 0x00};
constexpr Sense kSenseWriteError{kMediumError, 0x0c, 0x00};

// Fixed-format sense data (SPC-4 4.5.3) is this long.
constexpr size_t kFixedSenseSize = 18;

// A request's data: where data-in goes and where data-out comes from, in order.
struct DataBuffers {
  std::vector<std::span<uint8_t>> in;
  std::vector<std::span<const uint8_t>> out;
  uint64_t in_size() const;
  uint64_t out_size() const;
};

struct Outcome {
  uint8_t status = kStatusGood;
  Sense sense;            // with kStatusCheckCondition
  uint64_t data_in = 0;   // bytes written to the start of DataBuffers::in
  uint64_t data_out = 0;  // bytes consumed from the start of DataBuffers::out
  // The CDB asks to move more data than the buffers hold, or in the other direction: nothing was
  // transferred and the HBA reports an overrun (virtio-scsi: VIRTIO_SCSI_S_OVERRUN).
  bool overrun = false;

  // Writes fixed-format sense data (up to out.size() bytes); returns the bytes written.
  size_t write_sense(std::span<uint8_t> out) const;
};

class Disk {
 public:
  enum class Kind { Hd, Cd };
  struct Options {
    Kind kind = Kind::Hd;
    std::string serial;      // VPD page 0x80; empty = no serial page
    std::string device_id;   // VPD page 0x83 (T10 vendor id designator); unique per machine
    bool read_only = false;  // in addition to the backend's own read_only(); a cd always is
  };

  Disk(std::shared_ptr<backends::BlockBackend> backend, Options options);

  // Runs one command. Thread-safe as far as the backend is (several request queues may call it).
  Outcome execute(std::span<const uint8_t> cdb, const DataBuffers& buffers);

  uint32_t block_size() const { return m_block_size; }
  uint64_t blocks() const { return m_blocks; }
  bool read_only() const { return m_read_only; }
  Kind kind() const { return m_options.kind; }
  // Commands answered with CHECK CONDITION because of the guest (bad CDB, range, opcode).
  uint64_t rejected() const { return m_rejected.load(); }

 private:
  Outcome fail(Sense sense);
  Outcome reply(const DataBuffers& buffers, std::span<const uint8_t> data, uint64_t allocation);
  Outcome read(const DataBuffers& buffers, uint64_t lba, uint64_t count);
  Outcome write(const DataBuffers& buffers, uint64_t lba, uint64_t count, bool fua);
  Outcome verify(uint64_t lba, uint64_t count);
  Outcome inquiry(std::span<const uint8_t> cdb, const DataBuffers& buffers);
  Outcome mode_sense(std::span<const uint8_t> cdb, const DataBuffers& buffers);
  Outcome read_toc(std::span<const uint8_t> cdb, const DataBuffers& buffers);
  Outcome get_configuration(std::span<const uint8_t> cdb, const DataBuffers& buffers);
  Outcome event_status(std::span<const uint8_t> cdb, const DataBuffers& buffers);
  bool in_range(uint64_t lba, uint64_t count) const { return lba <= m_blocks && count <= m_blocks - lba; }

  std::shared_ptr<backends::BlockBackend> m_backend;
  Options m_options;
  uint32_t m_block_size;
  uint64_t m_blocks;
  bool m_read_only;
  std::atomic<uint64_t> m_rejected{0};
};

// What a target answers for itself rather than for one of its logical units (SPC-4, SAM-5), so
// a target may have several LUNs and gaps between them, as Linux's scan expects:
//   report_luns: REPORT LUNS, whichever LUN it was sent to, lists `luns` (single-level numbers).
//   no_such_lun: a command to a LUN the target does not have. INQUIRY gets standard data with
//                peripheral qualifier 3 (nothing can be at this LUN), everything else CHECK
//                CONDITION / LOGICAL UNIT NOT SUPPORTED.
Outcome report_luns(std::span<const uint8_t> cdb, const DataBuffers& buffers, std::span<const uint16_t> luns);
Outcome no_such_lun(std::span<const uint8_t> cdb, const DataBuffers& buffers);

}  // namespace hw::scsi
