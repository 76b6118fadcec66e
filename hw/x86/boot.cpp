#include "hw/x86/boot.h"

#include <algorithm>
#include <cstring>

#include "hw/boot/elf.h"

namespace hw::x86 {
namespace {

constexpr uint64_t kPage = 0x1000;
constexpr uint16_t kElfMachineX86_64 = 62;
constexpr uint16_t kElfMachine386 = 3;  // 32-bit PVH kernels (entered in 32-bit mode anyway)
constexpr uint32_t kPvhNoteType = 18;   // XEN_ELFNOTE_PHYS32_ENTRY
constexpr uint32_t kStartInfoMagic = 0x336ec578;

template <typename T>
T get(std::span<const uint8_t> bytes, size_t offset) {
  T value{};
  if (offset + sizeof(T) <= bytes.size()) std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}
template <typename T>
void put(std::vector<uint8_t>& bytes, size_t offset, T value) {
  if (offset + sizeof(T) <= bytes.size()) std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

uint64_t low_ram_end(const base::GuestMemory& memory) {
  for (const auto& region : memory.regions())
    if (region.guest_base == 0) return region.size;
  return 0;
}

base::Error write_error(const char* what, uint64_t address) {
  char text[128];
  std::snprintf(text, sizeof text, "%s at 0x%llx does not fit in guest RAM", what,
                (unsigned long long)address);
  return base::Error(text);
}

}  // namespace

std::vector<E820Entry> e820_map(const base::GuestMemory& memory) {
  std::vector<E820Entry> map;
  for (const auto& region : memory.regions()) {
    if (region.guest_base == 0) {
      map.push_back({0, std::min<uint64_t>(region.size, kEbdaStart), 1});
      map.push_back(
          {kEbdaStart, kHighMemory - kEbdaStart, 2});  // EBDA, VGA hole, BIOS area: tables live here
      if (region.size > kHighMemory) map.push_back({kHighMemory, region.size - kHighMemory, 1});
    } else {
      map.push_back({region.guest_base, region.size, 1});
    }
  }
  std::sort(map.begin(), map.end(),
            [](const E820Entry& a, const E820Entry& b) { return a.address < b.address; });
  return map;
}

bool write_gdt(const base::GuestMemory& memory, bool long_mode) {
  const uint64_t code = long_mode ? 0x00af9b000000ffffull : 0x00cf9b000000ffffull;
  const uint64_t data = 0x00cf93000000ffffull;
  const uint64_t gdt[4] = {0, 0, code, data};
  return memory.write(kGdtAddress, {reinterpret_cast<const uint8_t*>(gdt), sizeof gdt});
}

bool write_identity_page_tables(const base::GuestMemory& memory) {
  // PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages: the whole 32-bit space,
  // so the kernel, boot data, initrd and the IOAPIC/LAPIC windows are all reachable at entry.
  const uint64_t pdpt = kPml4Address + 0x1000, directories = kPml4Address + 0x2000;
  bool ok = memory.write_le<uint64_t>(kPml4Address, pdpt | 3);
  for (uint64_t g = 0; g < 4 && ok; ++g)
    ok = memory.write_le<uint64_t>(pdpt + 8 * g, (directories + 0x1000 * g) | 3);
  for (uint64_t i = 0; i < 4 * 512 && ok; ++i)
    ok = memory.write_le<uint64_t>(directories + 8 * i, (i << 21) | 0x83);  // present, RW, 2 MiB
  return ok;
}

std::optional<uint64_t> find_pvh_entry(const hw::boot::ElfFile& elf) {
  auto desc = elf.find_note("Xen", kPvhNoteType);
  if (!desc) return std::nullopt;
  if (desc->size() == 4) return get<uint32_t>(*desc, 0);
  if (desc->size() == 8) return get<uint64_t>(*desc, 0);
  return std::nullopt;
}

std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> bytes) {
  auto elf = hw::boot::ElfFile::parse(bytes, kElfMachineX86_64, kElfMachine386);
  if (!elf.ok()) return std::nullopt;
  return find_pvh_entry(*elf);
}

base::ErrorOr<KernelImage> load_kernel(const base::GuestMemory& memory, std::span<const uint8_t> bytes) {
  KernelImage image;
  if (hw::boot::ElfFile::looks_like_elf(bytes)) {
    auto elf = TRY(hw::boot::ElfFile::parse(bytes, kElfMachineX86_64, kElfMachine386));
    auto pvh = find_pvh_entry(elf);
    // A 32-bit ELF has no Linux 64-bit entry: only its PVH note says how to enter it (as QEMU does).
    if (!elf.is_64bit() && !pvh)
      return base::fail(base::Error(
          "a 32-bit ELF kernel needs a Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY) to say where to enter it; "
          "this one has none"));
    for (const auto& segment : elf.segments()) {
      // Safety of the copy: ElfFile checked the file range; GuestMemory checks the guest range.
      if (!memory.write(segment.paddr, elf.segment_bytes(segment)))
        return base::fail(write_error("an ELF segment", segment.paddr));
      std::vector<uint8_t> zeros(segment.mem_size - segment.file_size);
      if (!zeros.empty() && !memory.write(segment.paddr + segment.file_size, zeros))
        return base::fail(write_error("an ELF segment's .bss", segment.paddr));
      image.end = std::max(image.end, segment.paddr + segment.mem_size);
    }
    if (pvh) {
      image.kind = KernelImage::Kind::Pvh;
      image.entry = *pvh;
    } else {
      image.kind = KernelImage::Kind::Vmlinux;
      image.entry = elf.entry() & 0x7fffffffull;  // vmlinux's entry may be the virtual alias
    }
    return image;
  }
  if (bytes.size() < 0x264 || get<uint32_t>(bytes, 0x202) != 0x53726448)  // "HdrS"
    return base::fail(
        base::Error("not an x86 kernel: neither an ELF file nor a bzImage (no HdrS setup header)"));
  uint16_t version = get<uint16_t>(bytes, 0x206);
  uint16_t xloadflags = get<uint16_t>(bytes, 0x236);
  if (version < 0x20c || !(xloadflags & 1))
    return base::fail(base::Error("bzImage has no 64-bit entry point (boot protocol " +
                                  std::to_string(version >> 8) + "." + std::to_string(version & 0xff) +
                                  "; 2.12 with XLF_KERNEL_64 is needed)"));
  if (!(bytes[0x211] & 1)) return base::fail(base::Error("bzImage is not a high-loaded kernel"));
  uint64_t setup_sects = bytes[0x1f1] ? bytes[0x1f1] : 4;
  uint64_t offset = (setup_sects + 1) * 512;
  if (offset >= bytes.size()) return base::fail(base::Error("bzImage is truncated (setup only)"));
  uint64_t load = bytes[0x234] ? kHighMemory : get<uint64_t>(bytes, 0x258);  // relocatable: 1 MiB
  uint32_t init_size = get<uint32_t>(bytes, 0x260);
  if (!memory.write(load, bytes.subspan(offset))) return base::fail(write_error("the kernel", load));
  if (!memory.slice(load, std::max<uint64_t>(init_size, bytes.size() - offset)))
    return base::fail(base::Error("guest RAM is too small for the kernel's init_size"));
  image.kind = KernelImage::Kind::BzImage;
  image.entry = load + 0x200;
  image.end = load + std::max<uint64_t>(init_size, bytes.size() - offset);
  return image;
}

base::ErrorOr<uint64_t> place_initrd(const base::GuestMemory& memory, const KernelImage& kernel,
                                     uint64_t size) {
  uint64_t top = std::min<uint64_t>(low_ram_end(memory), 0x38000000);  // initrd_addr_max of every kernel
  if (size > top) return base::fail(base::Error("the initrd is larger than low RAM"));
  uint64_t address = (top - size) & ~(kPage - 1);
  if (address < ((kernel.end + kPage - 1) & ~(kPage - 1)))
    return base::fail(base::Error("kernel and initrd do not fit in RAM together"));
  return address;
}

base::ErrorOr<accel::X86BootState> prepare_boot(const base::GuestMemory& memory, const BootInputs& inputs) {
  const KernelImage& kernel = *inputs.kernel;
  if (inputs.cmdline.size() + 1 > kCmdlineMax) return base::fail(base::Error("boot.cmdline is too long"));
  std::vector<uint8_t> cmdline(inputs.cmdline.begin(), inputs.cmdline.end());
  cmdline.push_back(0);
  if (!memory.write(kCmdlineAddress, cmdline))
    return base::fail(write_error("the command line", kCmdlineAddress));
  std::vector<E820Entry> e820 = e820_map(memory);
  accel::X86BootState state;
  state.gdt_base = kGdtAddress;
  state.rsp = kStackTop;

  if (kernel.kind == KernelImage::Kind::Pvh) {
    // hvm_start_info (version 1), then the memory map, then one module (the initrd).
    const uint64_t memmap = kStartInfoAddress + 0x100, modlist = kStartInfoAddress + 0xc00;
    std::vector<uint8_t> info(56);
    put<uint32_t>(info, 0, kStartInfoMagic);
    put<uint32_t>(info, 4, 1);
    put<uint32_t>(info, 12, inputs.initrd_size ? 1 : 0);
    put<uint64_t>(info, 16, inputs.initrd_size ? modlist : 0);
    put<uint64_t>(info, 24, kCmdlineAddress);
    put<uint64_t>(info, 32, inputs.rsdp_address);
    put<uint64_t>(info, 40, memmap);
    put<uint32_t>(info, 48, static_cast<uint32_t>(e820.size()));
    std::vector<uint8_t> table(24 * e820.size());
    for (size_t i = 0; i < e820.size(); ++i) {
      put<uint64_t>(table, 24 * i, e820[i].address);
      put<uint64_t>(table, 24 * i + 8, e820[i].size);
      put<uint32_t>(table, 24 * i + 16, e820[i].type);
    }
    if (table.size() > modlist - memmap)
      return base::fail(base::Error("too many memory regions for the PVH map"));
    std::vector<uint8_t> module(32);
    put<uint64_t>(module, 0, inputs.initrd_address);
    put<uint64_t>(module, 8, inputs.initrd_size);
    if (!memory.write(kStartInfoAddress, info) || !memory.write(memmap, table) ||
        !memory.write(modlist, module))
      return base::fail(write_error("hvm_start_info", kStartInfoAddress));
    if (!write_gdt(memory, false)) return base::fail(write_error("the GDT", kGdtAddress));
    state.mode = accel::X86BootState::Mode::Pvh32;
    state.rip = kernel.entry;
    state.rbx = kStartInfoAddress;
    return state;
  }

  // Linux boot protocol: the zero page, with the bzImage's setup header copied in.
  std::vector<uint8_t> params(4096);
  if (kernel.kind == KernelImage::Kind::BzImage) {
    size_t header_end = 0x202 + inputs.bzimage[0x201];
    if (header_end > inputs.bzimage.size() || header_end > params.size())
      return base::fail(base::Error("bzImage setup header is truncated"));
    std::memcpy(params.data() + 0x1f1, inputs.bzimage.data() + 0x1f1, header_end - 0x1f1);
    uint32_t cmdline_size = get<uint32_t>(inputs.bzimage, 0x238);
    if (cmdline_size && inputs.cmdline.size() > cmdline_size)
      return base::fail(base::Error("boot.cmdline is longer than this kernel accepts (" +
                                    std::to_string(cmdline_size) + " bytes)"));
  } else {
    put<uint16_t>(params, 0x1fe, 0xaa55);
    put<uint32_t>(params, 0x202, 0x53726448);
    put<uint16_t>(params, 0x206, 0x020f);
    put<uint32_t>(params, 0x230, 0x1000000);  // kernel_alignment
  }
  params[0x210] = 0xff;                  // type_of_loader: undefined
  params[0x211] |= 0x80 | 0x01;          // CAN_USE_HEAP, LOADED_HIGH
  put<uint16_t>(params, 0x224, 0xfe00);  // heap_end_ptr
  put<uint32_t>(params, 0x228, static_cast<uint32_t>(kCmdlineAddress));
  put<uint32_t>(params, 0x218, static_cast<uint32_t>(inputs.initrd_address));
  put<uint32_t>(params, 0x21c, static_cast<uint32_t>(inputs.initrd_size));
  if (inputs.rsdp_address) put<uint64_t>(params, 0x070, inputs.rsdp_address);  // acpi_rsdp_addr
  size_t entries = std::min<size_t>(e820.size(), 128);
  params[0x1e8] = static_cast<uint8_t>(entries);
  for (size_t i = 0; i < entries; ++i) {
    put<uint64_t>(params, 0x2d0 + 20 * i, e820[i].address);
    put<uint64_t>(params, 0x2d0 + 20 * i + 8, e820[i].size);
    put<uint32_t>(params, 0x2d0 + 20 * i + 16, e820[i].type);
  }
  if (!memory.write(kBootParamsAddress, params))
    return base::fail(write_error("boot_params", kBootParamsAddress));
  if (!write_gdt(memory, true)) return base::fail(write_error("the GDT", kGdtAddress));
  if (!write_identity_page_tables(memory)) return base::fail(write_error("the page tables", kPml4Address));
  state.mode = accel::X86BootState::Mode::Linux64;
  state.rip = kernel.entry;
  state.rsi = kBootParamsAddress;
  state.cr3 = kPml4Address;
  return state;
}

}  // namespace hw::x86
