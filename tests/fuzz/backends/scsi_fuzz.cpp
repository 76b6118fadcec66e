// libFuzzer target: the SCSI disk emulation (hw/virtio/scsi_disk) against hostile CDBs and buffer
// shapes, as virtio-scsi hands them over. Input: byte 0 picks scsi-hd or scsi-cd and read-only;
// bytes 1-2 the data-in room, 3-4 the data-out size (each split into up to 3 pieces by byte 5);
// byte 6 the CDB length; then the CDB, then data-out bytes. Every outcome must stay within the
// buffers it was given, and sense data within its room.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/block.h"
#include "hw/virtio/scsi_disk.h"
#include "tests/fuzz/backends/memory_disk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 7) return 0;
  using hw::scsi::Disk;
  const bool cd = data[0] & 1, read_only = data[0] & 2;
  static auto hd_rw = std::make_shared<fuzzing::MemoryDisk>(false);
  static auto hd_ro = std::make_shared<fuzzing::MemoryDisk>(true);
  Disk disk(read_only || cd ? hd_ro : hd_rw,
            {cd ? Disk::Kind::Cd : Disk::Kind::Hd, "FUZZSERIAL", "fuzz-device", read_only});
  size_t in_room = (data[1] | data[2] << 8) % (64 * 1024 + 1);
  size_t out_size = (data[3] | data[4] << 8) % (64 * 1024 + 1);
  int pieces = 1 + data[5] % 3;
  size_t cdb_length = data[6] % 33;
  size_t at = 7;
  if (size - at < cdb_length) return 0;
  std::span<const uint8_t> cdb(data + at, cdb_length);
  at += cdb_length;
  std::vector<uint8_t> out_bytes(out_size, 0);
  std::copy_n(data + at, std::min(out_size, size - at), out_bytes.begin());
  std::vector<uint8_t> in_bytes(in_room);
  hw::scsi::DataBuffers buffers;
  for (int i = 0; i < pieces; ++i) {
    size_t in_from = in_room * i / pieces, in_to = in_room * (i + 1) / pieces;
    size_t out_from = out_size * i / pieces, out_to = out_size * (i + 1) / pieces;
    buffers.in.emplace_back(in_bytes.data() + in_from, in_to - in_from);
    buffers.out.emplace_back(out_bytes.data() + out_from, out_to - out_from);
  }
  hw::scsi::Outcome outcomes[3] = {disk.execute(cdb, buffers)};
  const uint16_t luns[] = {0, 1, 5};
  outcomes[1] = hw::scsi::report_luns(cdb, buffers, luns);
  outcomes[2] = hw::scsi::no_such_lun(cdb, buffers);
  for (const auto& outcome : outcomes) {
    if (outcome.data_in > buffers.in_size() || outcome.data_out > buffers.out_size()) std::abort();
    uint8_t sense[hw::scsi::kFixedSenseSize + 8];
    if (outcome.write_sense({sense, data[0] % sizeof(sense)}) > data[0] % sizeof(sense)) std::abort();
  }
  return 0;
}
