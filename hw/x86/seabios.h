// Booting x86_64/pc through SeaBIOS (`boot: {firmware: seabios}`), Debian's build of it, as QEMU's pc
// does: the image at the top of 4 GiB with its last 128 KiB also at 0xE0000-0xFFFFF, the vCPU left at
// its reset vector, and what the firmware reads about the machine in fw_cfg (hw/x86/fw_cfg.h) and the
// CMOS (hw/x86/cmos.h). SeaBIOS then enumerates PCI itself, builds its own tables and boots the
// devices in the graph's `bootindex` order (the fw_cfg file "bootorder", written as QEMU writes it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/guest_memory.h"
#include "base/result.h"
#include "graph/graph.h"
#include "hw/x86/fw_cfg.h"

namespace hw::x86 {

// Debian's image: bios-256k.bin (the one QEMU's pc loads), else bios.bin.
inline constexpr const char* kSeabiosPaths[] = {"/usr/share/seabios/bios-256k.bin",
                                                "/usr/share/seabios/bios.bin"};
base::ErrorOr<std::string> find_seabios();

// Checks `image` (64 KiB to 16 MiB, a multiple of 64 KiB), adds a region for it just below 4 GiB
// and copies it there and its last 128 KiB to 0xE0000 (which must be RAM). Before the memory is
// handed to the accelerator. The shadow copy is plain RAM: SeaBIOS's PAM writes to the host bridge
// change nothing, which leaves it the writable shadow it asks for.
base::ErrorOr<void> place_seabios(base::GuestMemory& memory, const std::vector<uint8_t>& image);

// The "bootorder" file: one line per device with bootindex >= 0, lowest index first, each an Open
// Firmware path as QEMU writes them ("/pci@i0cf8/scsi@3/disk@0,0"). Refuses a boot device SeaBIOS
// could not be pointed at this way (one not on a PCI bus).
base::ErrorOr<std::string> seabios_bootorder(const graph::Graph& graph);

// fw_cfg with the items SeaBIOS reads on QEMU's pc: CPU counts, RAM size, "etc/e820" and "bootorder".
base::ErrorOr<std::shared_ptr<FwCfg>> seabios_fw_cfg(const graph::Graph& graph, uint64_t ram_below_4g,
                                                     uint64_t ram_above_4g);

}  // namespace hw::x86
