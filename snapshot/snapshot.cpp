#include "snapshot/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>

#include "backends/block/qcow2_format.h"
#include "base/fd_io.h"
#include "hw/device_state.h"

namespace snapshot {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kRiscvVcpuVersion = 2;  // 2: debug triggers (tselect, tdata1, tdata2)

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string errno_text(const std::string& what, const fs::path& path) {
  return what + " " + path.string() + ": " + std::strerror(errno);
}

// Writes `bytes` to DIR/NAME through a temporary file and a rename, synced.
base::ErrorOr<void> write_file(const fs::path& dir, const std::string& name, std::span<const uint8_t> bytes) {
  const fs::path tmp = dir / (name + ".tmp"), path = dir / name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return base::fail(base::Error(errno_text("creating", tmp)));
  if (!base::write_all(fd, bytes)) {
    std::string why = errno_text("writing", tmp);
    ::close(fd);
    return base::fail(base::Error(why));
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return base::fail(base::Error(errno_text("syncing", tmp)));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return base::fail(base::Error(errno_text("renaming", tmp)));
  return {};
}

base::ErrorOr<std::vector<uint8_t>> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::fail(base::Error(errno_text("opening", path)));
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void save_vcpu(const accel::RiscvVcpuState& s, hw::StateWriter& out) {
  for (uint64_t x : s.x) out.u64(x);
  out.u64(s.pc);
  for (uint64_t f : s.f) out.u64(f);
  out.u32(s.fflags);
  out.u32(s.frm);
  out.u8(s.priv);
  for (uint64_t v :
       {s.instret,  s.cycle, s.mstatus,    s.medeleg,    s.mideleg,       s.mie,     s.mip,     s.mtvec,
        s.stvec,    s.mepc,  s.sepc,       s.mcause,     s.scause,        s.mtval,   s.stval,   s.mscratch,
        s.sscratch, s.satp,  s.mcounteren, s.scounteren, s.mcountinhibit, s.menvcfg, s.senvcfg, s.stimecmp})
    out.u64(v);
  for (uint8_t c : s.pmpcfg) out.u8(c);
  for (uint64_t a : s.pmpaddr) out.u64(a);
  out.boolean(s.reservation_valid);
  out.u64(s.tselect);
  for (unsigned i = 0; i < accel::RiscvVcpuState::kTriggers; ++i) {
    out.u64(s.tdata1[i]);
    out.u64(s.tdata2[i]);
  }
}

base::ErrorOr<accel::RiscvVcpuState> load_vcpu(hw::StateReader& in) {
  accel::RiscvVcpuState s;
  for (uint64_t& x : s.x) x = in.u64();
  s.pc = in.u64();
  for (uint64_t& f : s.f) f = in.u64();
  s.fflags = in.u32();
  s.frm = in.u32();
  s.priv = in.u8();
  for (uint64_t* v : {&s.instret,    &s.cycle,      &s.mstatus,       &s.medeleg,  &s.mideleg,  &s.mie,
                      &s.mip,        &s.mtvec,      &s.stvec,         &s.mepc,     &s.sepc,     &s.mcause,
                      &s.scause,     &s.mtval,      &s.stval,         &s.mscratch, &s.sscratch, &s.satp,
                      &s.mcounteren, &s.scounteren, &s.mcountinhibit, &s.menvcfg,  &s.senvcfg,  &s.stimecmp})
    *v = in.u64();
  for (uint8_t& c : s.pmpcfg) c = in.u8();
  for (uint64_t& a : s.pmpaddr) a = in.u64();
  // An LR's reservation is not restored: the SC after it fails and the guest's LR/SC loop retries,
  // which the ISA allows at any time (a reservation may be lost spuriously).
  s.reservation_valid = in.boolean() && false;
  s.tselect = in.u64();
  for (unsigned i = 0; i < accel::RiscvVcpuState::kTriggers; ++i) {
    s.tdata1[i] = in.u64();
    s.tdata2[i] = in.u64();
  }
  TRY(in.finish("vCPU state"));
  return s;
}

constexpr uint32_t kX86VcpuVersion = 2;

void save_segment(const accel::X86Segment& g, hw::StateWriter& out) {
  out.u64(g.base);
  out.u32(g.limit);
  out.u16(g.selector);
  for (uint8_t b : {g.type, g.present, g.dpl, g.db, g.s, g.l, g.g, g.avl, g.unusable}) out.u8(b);
}
accel::X86Segment load_segment(hw::StateReader& in) {
  accel::X86Segment g;
  g.base = in.u64();
  g.limit = in.u32();
  g.selector = in.u16();
  for (uint8_t* b : {&g.type, &g.present, &g.dpl, &g.db, &g.s, &g.l, &g.g, &g.avl, &g.unusable}) *b = in.u8();
  return g;
}

// Limits for the accelerator's byte strings: a damaged length is refused, never allocated.
constexpr size_t kMaxXsave = 1 << 20, kMaxKvmStruct = 4096, kMaxMsrs = 1024;

void save_vcpu(const accel::X86VcpuState& s, hw::StateWriter& out) {
  for (uint64_t r : s.gpr) out.u64(r);
  out.u64(s.rip);
  out.u64(s.rflags);
  for (const accel::X86Segment* g : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt})
    save_segment(*g, out);
  out.u64(s.gdt_base);
  out.u16(s.gdt_limit);
  out.u64(s.idt_base);
  out.u16(s.idt_limit);
  for (uint64_t v : {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apic_base}) out.u64(v);
  for (uint64_t v : s.interrupt_bitmap) out.u64(v);
  out.u64(s.xcr0);
  for (uint64_t v : s.dr) out.u64(v);
  out.u64(s.dr6);
  out.u64(s.dr7);
  out.u32(s.mp_state);
  out.u32(static_cast<uint32_t>(s.msrs.size()));
  for (const auto& [index, value] : s.msrs) {
    out.u32(index);
    out.u64(value);
  }
  out.bytes(s.xsave);
  out.bytes(s.lapic);
  out.bytes(s.events);
  out.u32(s.tsc_khz);
}

base::ErrorOr<accel::X86VcpuState> load_x86_vcpu(hw::StateReader& in) {
  accel::X86VcpuState s;
  for (uint64_t& r : s.gpr) r = in.u64();
  s.rip = in.u64();
  s.rflags = in.u64();
  for (accel::X86Segment* g : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt})
    *g = load_segment(in);
  s.gdt_base = in.u64();
  s.gdt_limit = in.u16();
  s.idt_base = in.u64();
  s.idt_limit = in.u16();
  for (uint64_t* v : {&s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.efer, &s.apic_base}) *v = in.u64();
  for (uint64_t& v : s.interrupt_bitmap) v = in.u64();
  s.xcr0 = in.u64();
  for (uint64_t& v : s.dr) v = in.u64();
  s.dr6 = in.u64();
  s.dr7 = in.u64();
  s.mp_state = in.u32();
  const uint32_t msrs = in.u32();
  if (msrs > kMaxMsrs) in.fail();
  for (uint32_t i = 0; in.ok() && i < msrs; ++i) {
    const uint32_t index = in.u32();
    s.msrs.emplace_back(index, in.u64());
  }
  s.xsave = in.bytes(kMaxXsave);
  s.lapic = in.bytes(kMaxKvmStruct);
  s.events = in.bytes(kMaxKvmStruct);
  s.tsc_khz = in.u32();
  TRY(in.finish("vCPU state"));
  return s;
}

// The backend paths the machine depends on: disk images (checked unchanged) and boot images.
struct DiskFile {
  std::string backend;
  fs::path path;
};
std::vector<DiskFile> disk_files(const graph::Graph& graph, const fs::path& base_dir) {
  std::vector<DiskFile> files;
  for (const graph::Backend& backend : graph.backends) {
    if (backend.kind != graph::BackendKind::Block) continue;
    for (const char* key : {"file", "path"})
      if (const config::Node* node = backend.options.find(key); node && node->is_string()) {
        fs::path p = node->as_string();
        if (p.is_relative() && !base_dir.empty()) p = base_dir / p;
        files.push_back({backend.name, p});
      }
  }
  return files;
}

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
  return text;
}

// A qcow2 image's header cluster: its checksum and the fields that say where the image's data lives.
// nullopt for a file that is not qcow2 (no magic); an unreadable or invalid header still gets its
// checksum, so any change to it is seen.
std::optional<nlohmann::json> qcow2_identity(const fs::path& path) {
  namespace qcow2 = backends::block::qcow2;
  // Read-only with O_CLOEXEC and pread: what the snapshot thread's seccomp list allows.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;      // stat() worked: size and mtime still say whether it changed
  std::vector<uint8_t> head(2u << 20);  // the largest cluster (cluster_bits 21) holds every header
  size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  head.resize(got);
  if (head.size() < 4 || qcow2::load_be32(head.data()) != qcow2::kMagic) return std::nullopt;
  nlohmann::json identity = nlohmann::json::object();
  auto header = qcow2::parse_header(head);
  if (!header.ok()) {
    identity["header_crc"] =
        crc32c(std::span<const uint8_t>(head).first(std::min<size_t>(head.size(), 4096)));
    identity["invalid"] = header.error().message;
    return identity;
  }
  const qcow2::Header& h = header.value();
  identity["header_crc"] =
      crc32c(std::span<const uint8_t>(head).first(std::min<size_t>(head.size(), h.cluster_size())));
  identity["virtual_size"] = h.size;
  identity["l1_table"] = hex(h.l1_table_offset);
  identity["l1_size"] = h.l1_size;
  identity["refcount_table"] = hex(h.refcount_table_offset);
  identity["snapshots"] = h.nb_snapshots;
  identity["backing_file"] = h.backing_file;
  identity["backing_format"] = h.backing_format;
  return identity;
}

// Each device as "driver bus:address irq N": a device at another address or interrupt would get
// state its guest driver did not set up (a lock file may place devices other than inference does).
nlohmann::json device_set(const graph::Graph& graph) {
  nlohmann::json set = nlohmann::json::object();
  for (const graph::Device& device : graph.devices) {
    std::string where = device.driver;
    if (!device.bus.empty()) where += " " + device.bus + ":" + device.address.to_string();
    if (device.irq) where += " irq " + std::to_string(*device.irq);
    set[device.id] = where;
  }
  return set;
}

}  // namespace

nlohmann::json disk_identity(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return nullptr;
  nlohmann::json identity = {
      {"size", static_cast<uint64_t>(st.st_size)},
      {"mtime_ns", static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec}};
  if (auto qcow2 = qcow2_identity(path)) identity["qcow2"] = std::move(*qcow2);
  return identity;
}

std::vector<nlohmann::json> disk_chain(const std::string& backend, const fs::path& path) {
  std::vector<nlohmann::json> chain;
  fs::path at = path;
  // Bounded: a backing chain that loops (a -> b -> a) ends here rather than never.
  for (int depth = 0; depth < 16; ++depth) {
    nlohmann::json identity = disk_identity(at);
    identity["backend"] = depth == 0 ? backend : backend + " backing file " + std::to_string(depth);
    identity["path"] = at.string();
    const bool missing = !identity.contains("size");
    std::string backing = missing ? "" : identity.value("/qcow2/backing_file"_json_pointer, std::string());
    chain.push_back(std::move(identity));
    if (backing.empty()) break;
    fs::path next(backing);
    if (next.is_relative()) next = at.parent_path() / next;  // as the qcow2 backend opens it
    at = next;
  }
  return chain;
}

base::ErrorOr<void> check_disk_unchanged(const nlohmann::json& saved) {
  const std::string backend = saved.value("backend", ""), path = saved.value("path", "");
  errno = 0;
  nlohmann::json now = disk_identity(path);
  if (now.is_null())
    return base::fail(base::Error("disk " + backend + " (" + path + ") is missing: " + std::strerror(errno)));
  const std::string what = "disk " + backend + " (" + path + ") changed since the snapshot";
  const std::string why = ": restoring would not match the guest's view";
  const nlohmann::json size = saved.value("size", nlohmann::json());
  if (now["size"] != size)
    return base::fail(base::Error(what + " (size " + size.dump() + " -> " + now["size"].dump() + ")" + why));
  if (now["mtime_ns"] != saved.value("mtime_ns", nlohmann::json()))
    return base::fail(base::Error(what + " (modification time)" + why));
  const nlohmann::json was = saved.value("qcow2", nlohmann::json()),
                       is = now.value("qcow2", nlohmann::json());
  if (was != is) {
    if (!was.is_object() || is.is_null())
      return base::fail(
          base::Error(what + " (" + (is.is_null() ? "no longer" : "now") + " a qcow2 image)" + why));
    std::string fields;
    for (auto& [key, value] : is.items())
      if (key != "header_crc" && (!was.contains(key) || was[key] != value))
        fields += (fields.empty() ? "" : ", ") + key + " " + (was.contains(key) ? was[key].dump() : "-") +
                  " -> " + value.dump();
    return base::fail(
        base::Error(what + " (qcow2 header" + (fields.empty() ? "" : ": " + fields) + ")" + why));
  }
  return {};
}

std::string describe(const nlohmann::json& header) {
  return header.value("arch", "?") + "/" + header.value("machine_type", "?") + " " +
         header.value("/cpu/model"_json_pointer, std::string("?")) + " x" +
         std::to_string(header.value("/cpu/count"_json_pointer, 0u)) + ", saved by vmlaunch " +
         header.value("vmlaunch", "?");
}

base::ErrorOr<SaveResult> save(hw::Machine& machine, const SaveRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  auto access = machine.snapshot_access();
  if (!access || !request.graph)
    return base::fail(base::Error("this machine type cannot be snapshotted yet"));
  const graph::Graph& graph = *request.graph;
  // Refuse before touching anything: every part must be able to save itself.
  for (const hw::Machine::SnapshotPart& part : access->parts) {
    if (!part.state)
      return base::fail(
          base::Error("device " + part.id + " (" + part.driver + ") has state that cannot be saved yet"));
    if (auto why = part.state->cannot_save())
      return base::fail(base::Error("device " + part.id + " (" + part.driver + "): " + *why));
  }
  if (!access->timebase && !access->vm)
    return base::fail(base::Error("this machine has no guest clock to save"));

  std::error_code ec;
  fs::create_directories(request.dir, ec);
  if (ec) return base::fail(base::Error("creating " + request.dir.string() + ": " + ec.message()));
  // A directory that held an older snapshot is incomplete from here until state.vmls is renamed in.
  fs::remove(request.dir / kStateFile, ec);

  for (const auto& part : access->parts) part.state->quiesce();
  struct Unquiesce {
    hw::Machine::SnapshotAccess& access;
    bool keep_quiet;
    ~Unquiesce() {
      if (keep_quiet) return;
      for (const auto& part : access.parts) part.state->unquiesce();
    }
  } unquiesce{*access, false};

  StateFile file;
  nlohmann::json& h = file.header;
  h["format_version"] = kFormatVersion;
  h["vmlaunch"] = request.vmlaunch_version;
  h["arch"] = graph.machine.arch;
  h["machine_type"] = graph.machine.type;
  h["accelerator"] = request.accelerator;
  h["cpu"] = {{"model", graph.machine.cpu.model},
              {"features", graph.machine.cpu.features},
              {"count", graph.machine.cpu.count}};
  h["memory"] = graph.machine.ram_size;
  h["base_dir"] = request.base_dir.string();
  h["saved_at"] = wall_seconds();
  // riscv64: the machine's mtime; x86_64 on kvm: the guest clock is part of the VM's state below.
  if (access->timebase) {
    h["mtime"] = access->timebase->now();
    h["timebase_hz"] = access->timebase->frequency_hz();
  }
  h["device_set"] = device_set(graph);

  hw::StateWriter blob;
  auto append = [&](const std::vector<uint8_t>& bytes) {
    nlohmann::json where = {{"offset", blob.data().size()}, {"length", bytes.size()}};
    for (uint8_t b : bytes) blob.u8(b);
    return where;
  };
  h["vcpus"] = nlohmann::json::array();
  for (size_t i = 0; i < access->vcpus.size(); ++i) {
    auto state = access->vcpus[i]->get_state();
    if (!state.ok())
      return base::fail(base::Error("vCPU " + std::to_string(i) + ": " + state.error().message));
    hw::StateWriter out;
    uint32_t version = 0;
    if (const auto* riscv = std::get_if<accel::RiscvVcpuState>(&state.value())) {
      save_vcpu(*riscv, out);
      version = kRiscvVcpuVersion;
    } else if (const auto* x86 = std::get_if<accel::X86VcpuState>(&state.value())) {
      save_vcpu(*x86, out);
      version = kX86VcpuVersion;
    }
    nlohmann::json where = append(out.data());
    where["version"] = version;
    h["vcpus"].push_back(where);
  }
  if (access->vm) {
    auto vm_state = access->vm->save_vm_state();
    if (!vm_state.ok()) return base::fail(base::Error("the VM's state: " + vm_state.error().message));
    h["vm_state"] = append(vm_state.value());
  }
  h["parts"] = nlohmann::json::array();
  for (const auto& part : access->parts) {
    hw::StateWriter out;
    part.state->save_state(out);
    nlohmann::json where = append(out.data());
    where["id"] = part.id;
    where["driver"] = part.driver;
    where["version"] = part.state->state_version();
    h["parts"].push_back(where);
  }
  h["disks"] = nlohmann::json::array();
  for (const DiskFile& disk : disk_files(graph, request.base_dir))
    for (nlohmann::json& identity : disk_chain(disk.backend, disk.path)) {
      if (!identity.contains("size"))
        return base::fail(base::Error("disk " + identity.value("backend", "") + " (" +
                                      identity.value("path", "") + ") cannot be read"));
      h["disks"].push_back(std::move(identity));
    }
  h["files"] = nlohmann::json::array();
  for (const std::string& boot : {graph.boot.kernel, graph.boot.initrd, graph.boot.dtb})
    if (!boot.empty()) h["files"].push_back(boot);

  SaveResult result;
  h["ram"] = TRY(save_ram(*access->memory, request.dir / kRamFile, request.threads, &result.ram));
  file.blob = blob.take();
  const std::string config = request.config.dump(2) + "\n";
  TRY(write_file(request.dir, kConfigFile, {reinterpret_cast<const uint8_t*>(config.data()), config.size()}));
  std::vector<uint8_t> encoded = encode(file);
  TRY(write_file(request.dir, kStateFile, encoded));
  result.state_bytes = encoded.size();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  unquiesce.keep_quiet = request.stop_after;
  return result;
}

base::ErrorOr<Opened> open(const fs::path& dir) {
  Opened opened;
  opened.dir = dir;
  const fs::path state_path = dir / kStateFile;
  std::error_code ec;
  if (!fs::exists(state_path, ec))
    return base::fail(base::Error(dir.string() + " holds no snapshot (no " + kStateFile + ")"));
  std::vector<uint8_t> bytes = TRY(read_file(state_path));
  auto decoded = decode(bytes);
  if (!decoded.ok()) return base::fail(decoded.error().with_context(state_path.string()));
  opened.state = std::move(decoded.value());
  const nlohmann::json& h = opened.state.header;
  if (h.value("format_version", 0u) != kFormatVersion)
    return base::fail(base::Error(state_path.string() + ": header says format version " +
                                  std::to_string(h.value("format_version", 0u))));
  std::vector<uint8_t> config_bytes = TRY(read_file(dir / kConfigFile));
  opened.config = nlohmann::json::parse(config_bytes.begin(), config_bytes.end(), nullptr, false);
  if (opened.config.is_discarded() || !opened.config.is_object())
    return base::fail(base::Error((dir / kConfigFile).string() + " is not a JSON object"));
  opened.base_dir = h.value("base_dir", std::string());

  // The RAM file: its size against the index (chunk checksums are checked as it loads).
  const nlohmann::json ram = h.value("ram", nlohmann::json::object());
  struct stat st {};
  const fs::path ram_path = dir / kRamFile;
  if (::stat(ram_path.c_str(), &st) != 0)
    return base::fail(base::Error(errno_text("snapshot RAM", ram_path)));
  if (static_cast<uint64_t>(st.st_size) != ram.value("file_size", uint64_t{0}))
    return base::fail(
        base::Error(ram_path.string() + " is " + std::to_string(st.st_size) + " bytes, the snapshot wrote " +
                    std::to_string(ram.value("file_size", uint64_t{0})) + " (truncated or replaced)"));

  for (const nlohmann::json& disk : h.value("disks", nlohmann::json::array()))
    if (disk.is_object()) TRY(check_disk_unchanged(disk));
  for (const nlohmann::json& file : h.value("files", nlohmann::json::array()))
    if (file.is_string() && !fs::exists(file.get<std::string>(), ec))
      return base::fail(base::Error("file " + file.get<std::string>() + " the machine needs is missing"));
  return opened;
}

base::ErrorOr<void> check_compatible(const nlohmann::json& h, const graph::Graph& graph,
                                     std::string_view accelerator) {
  auto differs = [](const std::string& what, const std::string& saved, const std::string& now) {
    return base::fail(base::Error("the snapshot is of another " + what + " (snapshot: " + saved +
                                  ", this machine: " + now + ")"));
  };
  if (h.value("arch", "") != graph.machine.arch)
    return differs("architecture", h.value("arch", ""), graph.machine.arch);
  if (h.value("machine_type", "") != graph.machine.type)
    return differs("machine type", h.value("machine_type", ""), graph.machine.type);
  if (h.value("accelerator", "") != accelerator)
    return differs("accelerator", h.value("accelerator", ""), std::string(accelerator));
  const nlohmann::json cpu = h.value("cpu", nlohmann::json::object());
  if (cpu.value("model", "") != graph.machine.cpu.model)
    return differs("CPU model", cpu.value("model", ""), graph.machine.cpu.model);
  if (cpu.value("features", std::vector<std::string>{}) != graph.machine.cpu.features)
    return differs("CPU feature set", cpu.value("features", nlohmann::json::array()).dump(),
                   nlohmann::json(graph.machine.cpu.features).dump());
  if (cpu.value("count", 0u) != graph.machine.cpu.count)
    return differs("CPU count", std::to_string(cpu.value("count", 0u)),
                   std::to_string(graph.machine.cpu.count));
  if (h.value("memory", uint64_t{0}) != graph.machine.ram_size)
    return differs("RAM size", std::to_string(h.value("memory", uint64_t{0})),
                   std::to_string(graph.machine.ram_size));
  const nlohmann::json saved = h.value("device_set", nlohmann::json::object()), now = device_set(graph);
  if (saved != now) {
    std::string diff;
    for (auto& [id, driver] : saved.items())
      if (!now.contains(id) || now[id] != driver)
        diff += (diff.empty() ? "" : ", ") + ("-" + id + " (" + driver.get<std::string>() + ")");
    for (auto& [id, driver] : now.items())
      if (!saved.contains(id) || saved[id] != driver)
        diff += (diff.empty() ? "" : ", ") + ("+" + id + " (" + driver.get<std::string>() + ")");
    return base::fail(base::Error("the snapshot has another set of devices (" + diff + ")"));
  }
  return {};
}

base::ErrorOr<void> restore(hw::Machine& machine, const Opened& opened, unsigned threads) {
  auto access = machine.snapshot_access();
  if (!access) return base::fail(base::Error("this machine type cannot be restored from a snapshot yet"));
  const nlohmann::json& h = opened.state.header;

  // Parts by id, both ways: the built machine must have exactly the saved parts.
  const nlohmann::json parts = h.value("parts", nlohmann::json::array());
  std::set<std::string> saved_ids;
  for (const nlohmann::json& part : parts) saved_ids.insert(part.value("id", ""));
  for (const auto& part : access->parts) {
    if (!saved_ids.count(part.id))
      return base::fail(base::Error("device " + part.id + " has no state in the snapshot"));
    if (!part.state)
      return base::fail(base::Error("device " + part.id + " (" + part.driver + ") cannot load state yet"));
  }
  if (saved_ids.size() != access->parts.size() || parts.size() != access->parts.size())
    return base::fail(base::Error("the snapshot saved " + std::to_string(parts.size()) +
                                  " parts, this machine has " + std::to_string(access->parts.size())));
  const nlohmann::json vcpus = h.value("vcpus", nlohmann::json::array());
  if (vcpus.size() != access->vcpus.size())
    return base::fail(base::Error("the snapshot has " + std::to_string(vcpus.size()) +
                                  " vCPUs, this machine " + std::to_string(access->vcpus.size())));

  // RAM first: the virtio transports map their rings from it.
  auto ram =
      load_ram(*access->memory, opened.dir / kRamFile, h.value("ram", nlohmann::json::object()), threads);
  if (!ram.ok()) return base::fail(ram.error().with_context("restoring RAM"));
  if (access->vm)
    for (const auto& region : access->memory->regions())
      access->vm->note_memory_written(region.guest_base, region.size);

  // The clock before the devices: the CLINT recomputes its timer lines from it. Stepped forward by
  // the time the snapshot spent on disk, so the guest's time of day is right again.
  const double away = std::max(0.0, wall_seconds() - h.value("saved_at", 0.0));
  const uint64_t hz = h.value("timebase_hz", uint64_t{0});
  if (access->timebase) {
    if (hz != access->timebase->frequency_hz())
      return base::fail(base::Error("the snapshot's timebase runs at " + std::to_string(hz) +
                                    " Hz, this machine's at " +
                                    std::to_string(access->timebase->frequency_hz())));
    access->timebase->set_now(h.value("mtime", uint64_t{0}) +
                              static_cast<uint64_t>(away * static_cast<double>(hz)));
  } else if (hz != 0) {
    return base::fail(base::Error("the snapshot has a timebase, this machine has none"));
  }
  // The accelerator's VM state (kvm: the guest clock, stepped forward likewise, and the in-kernel
  // interrupt controllers) before the vCPUs, whose LAPICs route through it.
  if (access->vm) {
    std::span<const uint8_t> vm_state;
    if (h.contains("vm_state")) vm_state = TRY(blob_range(opened.state, h["vm_state"]));
    auto loaded = access->vm->load_vm_state(vm_state, static_cast<uint64_t>(away * 1e9));
    if (!loaded.ok()) return base::fail(base::Error("the VM's state: " + loaded.error().message));
  }

  const bool x86 = h.value("arch", "") == "x86_64";
  const uint32_t vcpu_version = x86 ? kX86VcpuVersion : kRiscvVcpuVersion;
  for (size_t i = 0; i < vcpus.size(); ++i) {
    if (vcpus[i].value("version", 0u) != vcpu_version)
      return base::fail(base::Error("vCPU " + std::to_string(i) + ": saved state version " +
                                    std::to_string(vcpus[i].value("version", 0u)) +
                                    " is not one this vmlaunch reads"));
    hw::StateReader in(TRY(blob_range(opened.state, vcpus[i])));
    std::optional<accel::VcpuState> state;
    if (x86) {
      auto loaded = load_x86_vcpu(in);
      if (!loaded.ok()) return base::fail(loaded.error().with_context("vCPU " + std::to_string(i)));
      state = accel::VcpuState{std::move(loaded.value())};
    } else {
      auto loaded = load_vcpu(in);
      if (!loaded.ok()) return base::fail(loaded.error().with_context("vCPU " + std::to_string(i)));
      state = accel::VcpuState{loaded.value()};
    }
    auto set = access->vcpus[i]->set_state(*state);
    if (!set.ok()) return base::fail(base::Error("vCPU " + std::to_string(i) + ": " + set.error().message));
  }
  for (const nlohmann::json& saved : parts) {
    const std::string id = saved.value("id", "");
    for (const auto& part : access->parts) {
      if (part.id != id) continue;
      if (saved.value("driver", "") != part.driver)
        return base::fail(
            base::Error("device " + id + " was a " + saved.value("driver", "") + ", now a " + part.driver));
      hw::StateReader in(TRY(blob_range(opened.state, saved)));
      auto loaded = part.state->load_state(in, saved.value("version", 0u));
      if (!loaded.ok()) return base::fail(loaded.error().with_context("device " + id));
    }
  }
  return {};
}

}  // namespace snapshot
