#include "graph/resolve.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include "accel/catalogue.h"
#include "base/field_use.h"
#include "config/did_you_mean.h"
#include "config/size.h"
#include "graph/mounts.h"
#include "hw/catalogue/catalogue.h"

// Settings resolution itself turns into the graph every builder walks.
VML_CONSUMES("machine.arch");
VML_CONSUMES("accel[].type");  // an object entry names its accelerator here
VML_CONSUMES("machine.type");
VML_CONSUMES("name");  // the machine's name, stable MAC addresses
VML_CONSUMES("devices[].id");
VML_CONSUMES("devices[].bus");
VML_CONSUMES("devices[].addr");
VML_CONSUMES("devices[].multifunction");

namespace graph {

namespace {

namespace cat = hw::catalogue;
using config::Diagnostic;
using config::Location;
using config::Node;

constexpr int32_t kFree = -1;
constexpr size_t kBusKinds = static_cast<size_t>(BusKind::Acpi) + 1;  // the last kind

std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

// What `addr:` said, before it is checked against a bus.
struct ParsedAddr {
  bool present = false;
  bool valid = false;
  bool is_string = false;
  int64_t number = 0;  // integer form (slot, or a slot's base address on fixed-resource buses)
  uint32_t slot = 0;   // string form "S" or "S.F", hexadecimal as QEMU writes it
  uint32_t function = 0;
  bool has_function = false;
  Location at;
  std::string text;  // as written, for messages
};

// Logical units per SCSI target (addr "target.lun"); single-level LUNs as Linux numbers them.
constexpr uint32_t kScsiLuns = 256;

ParsedAddr parse_addr(const Node* node) {
  ParsedAddr addr;
  if (!node) return addr;
  addr.present = true;
  addr.at = node->location();
  if (node->is_int()) {
    addr.number = node->as_int();
    addr.text = std::to_string(addr.number);
    addr.valid = addr.number >= 0;
    return addr;
  }
  if (!node->is_string()) return addr;
  addr.is_string = true;
  addr.text = node->as_string();
  const std::string& s = addr.text;
  if (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0) {
    // A number written as a hex string: an I/O port or MMIO base on fixed-resource buses.
    char* end = nullptr;
    unsigned long long v = std::strtoull(s.c_str() + 2, &end, 16);
    addr.valid = s.size() > 2 && end && *end == '\0';
    addr.is_string = false;
    addr.number = static_cast<int64_t>(v);
    return addr;
  }
  size_t dot = s.find('.');
  std::string slot_text = s.substr(0, dot);
  auto all_hex = [](const std::string& t) {
    return !t.empty() && t.size() <= 2 &&
           std::all_of(t.begin(), t.end(), [](char c) { return std::isxdigit(c); });
  };
  if (!all_hex(slot_text)) return addr;
  addr.slot = static_cast<uint32_t>(std::stoul(slot_text, nullptr, 16));
  if (dot != std::string::npos) {
    std::string fn = s.substr(dot + 1);
    if (fn.size() != 1 || fn[0] < '0' || fn[0] > '7') return addr;
    addr.function = static_cast<uint32_t>(fn[0] - '0');
    addr.has_function = true;
  }
  addr.valid = true;
  return addr;
}

// 52:54:00 (QEMU's locally administered prefix) + 24 bits of FNV-1a over "<machine>/<device id>":
// stable across runs and edits, different per machine and device.
std::string derived_mac(const std::string& machine_name, const std::string& id) {
  uint32_t hash = 2166136261u;
  for (char c : machine_name + "/" + id) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 16777619u;
  }
  char text[32];
  std::snprintf(text, sizeof text, "52:54:00:%02x:%02x:%02x", (hash >> 16) & 0xff, (hash >> 8) & 0xff,
                hash & 0xff);
  return text;
}

bool is_mac(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i % 3 == 2) {
      if (s[i] != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

struct BusState {
  uint32_t functions = 1;         // 8 on PCI buses
  std::vector<int32_t> occupant;  // ((slot - first) * functions + function) -> device index
  std::vector<bool> reserved;     // per slot, from first
  uint32_t cursor = 0;            // inference: no free unreserved slot below this (relative)
  int32_t provider = -1;          // device index; -1 for root buses
  bool rooted = false;            // reachable from a root bus through placed providers
  std::vector<size_t> placed;     // devices placed on it, in placement order
};

struct DeviceState {
  const Node* node = nullptr;
  const cat::DeviceType* type = nullptr;
  std::string path;  // "devices[3]"
  const Node* bus_node = nullptr;
  int32_t requested_bus = -1;  // explicit `bus:` resolved to a bus index
  ParsedAddr addr;
  bool placed = false;
  bool failed = false;  // an error was reported; do not report follow-on problems
  int32_t bus = -1;
  std::vector<size_t> provided;  // bus indices
};

class Resolver {
 public:
  Resolver(const Node& document, const ResolveOptions& options) : m_doc(document), m_options(options) {}

  ResolveResult run() {
    if (!m_doc.is_map()) {
      error(m_doc.location(), "", "a machine file must be a map of settings");
      return finish();
    }
    if (!resolve_machine()) return finish();
    resolve_cpu();
    resolve_boot();
    resolve_backends();
    add_builtins();
    collect_devices();
    resolve_requested_buses();
    place_explicit();
    place_locked();
    root_buses();
    place_inferred();
    check_cycles();
    check_multifunction();
    assign_irqs();
    build_lists();
    choose_accelerator();
    return finish();
  }

 private:
  // ---- diagnostics ----
  void error(const Location& at, std::string path, std::string message, std::string hint = {}) {
    m_result.diagnostics.push_back(
        Diagnostic::error(at, std::move(path), std::move(message), std::move(hint)));
  }
  void warning(const Location& at, std::string path, std::string message, std::string hint = {}) {
    m_result.diagnostics.push_back(
        Diagnostic::warning(at, std::move(path), std::move(message), std::move(hint)));
  }
  ResolveResult finish() { return std::move(m_result); }

  Graph& graph() { return m_result.graph; }

  const Node* get(const Node& map, std::string_view key) const {
    return map.is_map() ? map.find(key) : nullptr;
  }

  std::string string_at(const Node& map, std::string_view key) const {
    const Node* n = get(map, key);
    return n && n->is_string() ? n->as_string() : std::string();
  }

  // ---- machine, cpu, boot ----
  bool resolve_machine() {
    graph().machine.name = string_at(m_doc, "name");
    const Node* machine = get(m_doc, "machine");
    if (!machine || !machine->is_map()) {
      error(m_doc.location(), "machine", "missing machine: {arch, type, memory}");
      return false;
    }
    std::string arch = string_at(*machine, "arch");
    std::string type = string_at(*machine, "type");
    m_machine = cat::find_machine_type(arch, type);
    if (!m_machine) {
      std::vector<std::string> known;
      for (const cat::MachineType& m : cat::machine_types()) known.push_back(m.arch + "/" + m.name);
      const Node* at = get(*machine, "type") ? get(*machine, "type") : machine;
      error(at->location(), "machine", "unknown machine type " + quoted(arch + "/" + type),
            config::suggestion_hint(arch + "/" + type, known));
      return false;
    }
    graph().machine.arch = arch;
    graph().machine.type = type;
    graph().machine.ram_base = m_machine->ram_base;
    graph().interrupt_controller = m_machine->interrupt_controller;
    if (const Node* memory = get(*machine, "memory")) {
      if (auto size = config::size_value(*memory)) {
        graph().machine.ram_size = *size;
        check_ram_size(*memory, *size);
      } else {
        error(memory->location(), "machine.memory", "invalid size",
              "write bytes or a number with a unit, like 512MiB");
      }
    } else {
      error(machine->location(), "machine.memory", "missing memory size", "for example memory: 512MiB");
    }
    resolve_pit(*machine);
    return true;
  }

  // What the file alone can tell about the RAM size: a guest needs whole pages and room for its
  // firmware and device tree; the end must be addressable (2^48 bytes: what both architectures'
  // guests and a host process can map) and must not wrap. The host's own limit is `up`'s business.
  void check_ram_size(const Node& memory, uint64_t size) {
    constexpr uint64_t kMin = 1ull << 20, kPage = 4096, kLimit = 1ull << 48;
    const std::string type = m_machine->arch + "/" + m_machine->name;
    if (size == 0) return;  // check_sizes reports a zero size
    if (size < kMin)
      error(memory.location(), "machine.memory",
            "memory " + std::to_string(size) + " bytes is too small for " + type,
            "give at least 1MiB; Linux guests want 64MiB or more");
    else if (size % kPage)
      error(memory.location(), "machine.memory",
            "memory " + std::to_string(size) + " bytes is not a whole number of 4KiB pages",
            "round it to a multiple of 4KiB, like 512MiB");
    else if (size > kLimit - m_machine->ram_base)
      error(memory.location(), "machine.memory",
            "memory " + std::to_string(size) + " bytes starting at " + hex(m_machine->ram_base) +
                " ends beyond the 2^48-byte guest physical address space",
            "use at most " + std::to_string((kLimit - m_machine->ram_base) >> 30) + "GiB");
  }

  void resolve_pit(const Node& machine) {
    using Pit = cat::MachineType::Pit;
    const std::string type = graph().machine.arch + "/" + graph().machine.type;
    graph().machine.pit = m_machine->pit == Pit::Present;
    const Node* pit = get(machine, "pit");
    if (!pit || !pit->is_bool()) return;  // the schema reports a non-boolean
    if (m_machine->pit == Pit::Absent)
      error(pit->location(), "machine.pit", type + " has no PIT (it is an x86 PC device)",
            "remove machine.pit");
    else if (m_machine->pit == Pit::Present && !pit->as_bool())
      error(pit->location(), "machine.pit", type + " always has its PIT and PIC pair",
            "remove machine.pit, or use x86_64/microvm for a machine without them");
    else if (m_machine->pit == Pit::Optional)
      graph().machine.pit = pit->as_bool();
  }

  void resolve_cpu() {
    Machine::Cpu& cpu = graph().machine.cpu;
    cpu.model = m_machine->cpu_models.empty() ? std::string() : m_machine->cpu_models.front();
    const Node* node = get(m_doc, "cpu");
    bool count_given = false;
    if (node && node->is_map()) {
      if (const Node* n = get(*node, "count"); n && n->is_int() && n->as_int() > 0) {
        cpu.count = static_cast<unsigned>(n->as_int());
        count_given = true;
      }
      if (const Node* n = get(*node, "model"); n && n->is_string()) {
        cpu.model = n->as_string();
        const std::vector<std::string>& known = m_machine->cpu_models;
        if (std::find(known.begin(), known.end(), cpu.model) == known.end())
          error(n->location(), "cpu.model",
                "unknown cpu model " + quoted(cpu.model) + " for " + m_machine->arch + "/" + m_machine->name,
                config::suggestion_hint(cpu.model, known));
      }
      if (const Node* n = get(*node, "features"); n && n->is_list())
        for (const Node& f : n->items())
          if (f.is_string() && !f.as_string().empty())
            // The schema lets "name" mean "+name"; the accelerators read signed entries only.
            cpu.features.push_back(f.as_string()[0] == '+' || f.as_string()[0] == '-' ? f.as_string()
                                                                                      : "+" + f.as_string());
    }
    // Without a topology: one socket of cpu.count cores, as QEMU (6.2 and later) reads -smp N.
    cpu.cores = cpu.count;
    const Node* topology = node ? get(*node, "topology") : nullptr;
    if (topology && topology->is_map()) {
      auto field = [&](const char* key) {
        const Node* n = get(*topology, key);
        return n && n->is_int() && n->as_int() > 0 ? static_cast<unsigned>(n->as_int()) : 1u;
      };
      cpu.sockets = field("sockets");
      cpu.cores = field("cores");
      cpu.threads = field("threads");
      // A topology without a count means that many CPUs, as QEMU's -smp sockets=2,cores=2 does.
      if (!count_given) cpu.count = cpu.sockets * cpu.cores * cpu.threads;
      if (cpu.sockets * cpu.cores * cpu.threads < cpu.count)
        error(topology->location(), "cpu.topology",
              "topology has room for " + std::to_string(cpu.sockets * cpu.cores * cpu.threads) +
                  " CPUs, count is " + std::to_string(cpu.count),
              "sockets * cores * threads must be at least cpu.count");
    }
    if (cpu.count > m_machine->max_cpus) {
      const Node* at = node ? node : &m_doc;
      error(at->location(), "cpu.count",
            m_machine->arch + "/" + m_machine->name + " supports at most " +
                std::to_string(m_machine->max_cpus) + " CPUs, asked for " + std::to_string(cpu.count));
    }
  }

  void resolve_boot() {
    const Node* boot = get(m_doc, "boot");
    if (!boot) return;
    graph().boot.firmware = string_at(*boot, "firmware");
    graph().boot.kernel = string_at(*boot, "kernel");
    graph().boot.initrd = string_at(*boot, "initrd");
    graph().boot.cmdline = string_at(*boot, "cmdline");
    graph().boot.dtb = string_at(*boot, "dtb");
    const std::string& arch = graph().machine.arch;
    // SeaBIOS needs the PC's PCI host bridge, CMOS and fw_cfg: pc only (hw/x86/seabios.h).
    if (arch == "x86_64" && graph().boot.firmware == "seabios" && graph().machine.type != "pc")
      error(get(*boot, "firmware")->location(), "boot.firmware",
            "firmware \"seabios\" needs machine type \"pc\"", "use machine {arch: x86_64, type: pc}");
    if (arch == "x86_64" && graph().boot.firmware == "seabios" && !graph().boot.kernel.empty())
      error(get(*boot, "kernel")->location(), "boot.kernel",
            "firmware \"seabios\" boots from the disks (bootindex); it takes no boot.kernel yet",
            "remove boot.kernel, or boot.firmware for a direct kernel boot");
    if (arch != "riscv64" && !graph().boot.dtb.empty())
      error(get(*boot, "dtb")->location(), "boot.dtb", arch + " machines take no device tree",
            "remove boot.dtb");
    if (arch != "riscv64" && (graph().boot.firmware == "opensbi" || graph().boot.firmware == "u-boot"))
      error(get(*boot, "firmware")->location(), "boot.firmware",
            "firmware " + quoted(graph().boot.firmware) + " is riscv64 firmware", "remove boot.firmware");
    if (arch == "riscv64" && graph().boot.firmware == "seabios")
      error(get(*boot, "firmware")->location(), "boot.firmware", "firmware \"seabios\" is x86 firmware",
            "use opensbi, u-boot or none");
  }

  // ---- backends ----
  void add_backends(const Node& map, BackendKind kind) {
    if (!map.is_map()) return;
    for (const Node::Entry& entry : map.entries()) {
      Backend backend;
      backend.name = entry.key;
      backend.kind = kind;
      backend.driver = string_at(entry.value, "driver");
      backend.options = entry.value;
      backend.location = entry.key_location.known() ? entry.key_location : entry.value.location();
      m_backend_index[backend.name] = graph().backends.size();
      graph().backends.push_back(std::move(backend));
    }
  }

  void resolve_backends() {
    if (const Node* backends = get(m_doc, "backends"); backends && backends->is_map()) {
      for (BackendKind kind :
           {BackendKind::Chardev, BackendKind::Block, BackendKind::Net, BackendKind::Rng, BackendKind::Fs})
        if (const Node* map = get(*backends, backend_kind_name(kind))) add_backends(*map, kind);
    }
    if (const Node* passthrough = get(m_doc, "passthrough"))
      add_backends(*passthrough, BackendKind::Passthrough);
  }

  // ---- buses ----
  size_t add_bus(Bus bus, int32_t provider) {
    BusState state;
    // PCI slots have 8 functions; a SCSI target has logical units (addr "target.lun").
    state.functions = bus.kind == BusKind::Pci ? 8 : bus.kind == BusKind::Scsi ? kScsiLuns : 1;
    uint32_t slots = bus.last_slot - bus.first_slot + 1;
    state.occupant.assign(static_cast<size_t>(slots) * state.functions, kFree);
    state.reserved.assign(slots, false);
    for (uint32_t r : bus.reserved_slots)
      if (r >= bus.first_slot && r <= bus.last_slot) state.reserved[r - bus.first_slot] = true;
    state.provider = provider;
    size_t index = graph().buses.size();
    m_bus_index[bus.name] = index;
    graph().buses.push_back(std::move(bus));
    m_buses.push_back(std::move(state));
    return index;
  }

  int32_t& occupant(size_t bus, uint32_t slot, uint32_t function) {
    BusState& s = m_buses[bus];
    return s.occupant[static_cast<size_t>(slot - graph().buses[bus].first_slot) * s.functions + function];
  }

  bool slot_free(size_t bus, uint32_t slot) {
    for (uint32_t f = 0; f < m_buses[bus].functions; ++f)
      if (occupant(bus, slot, f) != kFree) return false;
    return true;
  }

  void occupy(size_t device, size_t bus, uint32_t slot, uint32_t function) {
    occupant(bus, slot, function) = static_cast<int32_t>(device);
    Device& d = graph().devices[device];
    const Bus& b = graph().buses[bus];
    d.bus = b.name;
    d.address.kind = b.kind == BusKind::Pci ? Address::Kind::Pci : Address::Kind::Slot;
    d.address.slot = slot;
    d.address.function = function;
    if (!b.slot_resources.empty()) d.address.resource = b.slot_resources[slot - b.first_slot];
    m_buses[bus].placed.push_back(device);
    if (device >= m_first_config_device) {
      DeviceState& state = m_devices[device - m_first_config_device];
      state.placed = true;
      state.bus = static_cast<int32_t>(bus);
    }
  }

  std::vector<std::string> bus_names() const {
    std::vector<std::string> names;
    for (const Bus& b : graph_const().buses) names.push_back(b.name);
    return names;
  }
  const Graph& graph_const() const { return m_result.graph; }

  std::string describe_occupant(int32_t device) const {
    const Device& d = graph_const().devices[static_cast<size_t>(device)];
    if (d.builtin) return "the machine's " + d.id + " (" + d.driver + ")";
    std::string text = quoted(d.id);
    if (d.location.known()) text += " (" + d.location.to_string() + ")";
    return text;
  }

  // ---- devices ----
  void add_builtins() {
    m_first_config_device = m_machine->fixed_devices.size();
    for (const Bus& bus : m_machine->buses) add_bus(bus, -1);
    for (const cat::FixedDevice& fixed : m_machine->fixed_devices) {
      Device d;
      d.id = fixed.id;
      d.driver = fixed.driver;
      d.builtin = true;
      d.region = fixed.region;
      d.irq = fixed.irq;
      size_t index = graph().devices.size();
      graph().devices.push_back(std::move(d));
      m_device_index[fixed.id] = index;
      if (!fixed.bus.empty()) {
        auto it = m_bus_index.find(fixed.bus);
        if (it != m_bus_index.end()) occupy(index, it->second, fixed.slot, 0);
      }
    }
  }

  void collect_devices() {
    const Node* devices = get(m_doc, "devices");
    if (!devices || !devices->is_list()) return;
    std::map<std::string, unsigned> unnamed_count;
    std::set<std::string> explicit_ids;
    for (const Node& item : devices->items())
      if (const Node* id = get(item, "id"); id && id->is_string()) explicit_ids.insert(id->as_string());

    std::vector<std::string> known_types = cat::device_type_names();
    for (size_t i = 0; i < devices->items().size(); ++i) {
      const Node& item = devices->items()[i];
      DeviceState state;
      state.node = &item;
      state.path = "devices[" + std::to_string(i) + "]";
      Device d;
      d.location = item.location();
      d.config_index = i;
      d.driver = string_at(item, "driver");
      state.type = cat::find_device_type(d.driver);
      if (!state.type) {
        const Node* at = get(item, "driver") ? get(item, "driver") : &item;
        error(at->location(), state.path + ".driver",
              d.driver.empty() ? "missing driver" : "unknown device type " + quoted(d.driver),
              config::suggestion_hint(d.driver, known_types));
        state.failed = true;
      }
      if (const Node* id = get(item, "id"); id && id->is_string()) {
        d.id = id->as_string();
        if (m_device_index.count(d.id)) {
          error(id->location(), state.path + ".id", "duplicate device id " + quoted(d.id),
                "already used by " + describe_occupant(static_cast<int32_t>(m_device_index[d.id])));
          state.failed = true;
        }
      } else {
        // Unnamed devices are numbered per driver in declaration order, skipping ids the file uses.
        unsigned& n = unnamed_count[d.driver];
        do {
          d.id = d.driver + "." + std::to_string(n++);
        } while (explicit_ids.count(d.id));
        d.id_generated = true;
      }
      size_t index = graph().devices.size();
      m_device_index.emplace(d.id, index);
      graph().devices.push_back(std::move(d));
      m_devices.push_back(std::move(state));
      if (!m_devices.back().failed) resolve_device_settings(index);
    }
  }

  void resolve_device_settings(size_t index) {
    DeviceState& state = m_devices[index - m_first_config_device];
    Device& d = graph().devices[index];
    const cat::DeviceType& type = *state.type;
    const Node& item = *state.node;

    std::vector<std::string> known_keys = {"driver", "id", "bus", "addr"};
    for (const cat::BackendSpec& b : type.backends) {
      known_keys.push_back(b.property);
      for (const std::string& alias : b.aliases) known_keys.push_back(alias);
    }
    for (const cat::PropertySpec& p : type.properties) known_keys.push_back(p.name);

    std::vector<const Node::Entry*> given(type.properties.size(), nullptr);
    std::vector<const Node::Entry*> given_backend(type.backends.size(), nullptr);
    for (const Node::Entry& entry : item.entries()) {
      if (entry.key == "driver" || entry.key == "id" || entry.key == "bus" || entry.key == "addr") continue;
      if (const cat::PropertySpec* p = type.find_property(entry.key)) {
        given[static_cast<size_t>(p - type.properties.data())] = &entry;
      } else if (const cat::BackendSpec* b = type.find_backend(entry.key)) {
        given_backend[static_cast<size_t>(b - type.backends.data())] = &entry;
      } else {
        error(entry.key_location.known() ? entry.key_location : entry.value.location(),
              state.path + "." + entry.key, d.driver + " has no property " + quoted(entry.key),
              config::suggestion_hint(entry.key, known_keys));
      }
    }

    for (size_t p = 0; p < type.properties.size(); ++p) {
      const cat::PropertySpec& spec = type.properties[p];
      Property property{spec.name, spec.default_value, true, {}};
      if (given[p]) {
        if (auto value = typed_value(spec, given[p]->value, state.path + "." + spec.name)) {
          property.value = *value;
          property.is_default = false;
          property.location =
              given[p]->key_location.known() ? given[p]->key_location : given[p]->value.location();
        }
      }
      if (spec.type == cat::PropertyType::Mac && std::get<std::string>(property.value).empty())
        property.value = derived_mac(graph().machine.name, d.id);
      d.properties.push_back(std::move(property));
    }

    for (size_t b = 0; b < type.backends.size(); ++b) {
      const cat::BackendSpec& spec = type.backends[b];
      const Node::Entry* entry = given_backend[b];
      if (!entry) {
        if (spec.required)
          error(item.location(), state.path,
                d.driver + " needs a " + std::string(backend_kind_name(spec.kind)) + " backend",
                "add " + spec.property + ": <name of a " + std::string(backend_kind_name(spec.kind)) +
                    " backend>");
        continue;
      }
      attach_backend(index, spec, *entry, state.path + "." + entry->key);
    }

    for (const cat::ProvidedBus& provided : type.provides) {
      Bus bus;
      bus.name = d.id + provided.suffix;
      bus.kind = provided.kind;
      bus.provided_by = d.id;
      bus.first_slot = provided.first_slot;
      bus.last_slot = provided.last_slot;
      bus.reserved_slots = provided.reserved_slots;
      if (auto it = m_bus_index.find(bus.name); it != m_bus_index.end()) {
        const Node* at = get(item, "id") ? get(item, "id") : &item;
        const Bus& other = graph().buses[it->second];
        error(at->location(), state.path + ".id",
              "bus name " + quoted(bus.name) + " is already taken by " +
                  (other.provided_by.empty() ? "the machine" : quoted(other.provided_by)),
              "choose another id");
        continue;
      }
      d.provides.push_back(bus.name);
      state.provided.push_back(add_bus(std::move(bus), static_cast<int32_t>(index)));
    }
  }

  std::optional<Value> typed_value(const cat::PropertySpec& spec, const Node& node, const std::string& path) {
    auto expect = [&](const char* what) {
      error(node.location(), path,
            spec.name + " must be " + what + ", got " + std::string(Node::kind_name(node.kind())));
      return std::nullopt;
    };
    switch (spec.type) {
      case cat::PropertyType::Bool:
        if (!node.is_bool()) return expect("true or false");
        return Value(node.as_bool());
      case cat::PropertyType::Int:
      case cat::PropertyType::Size: {
        int64_t v = 0;
        if (spec.type == cat::PropertyType::Size) {
          auto size = config::size_value(node);
          if (!size || *size > static_cast<uint64_t>(INT64_MAX)) {
            error(node.location(), path, "invalid size", "write bytes or a number with a unit, like 64KiB");
            return std::nullopt;
          }
          v = static_cast<int64_t>(*size);
        } else if (node.is_int()) {
          v = node.as_int();
        } else {
          return expect("an integer");
        }
        if (v < spec.min || v > spec.max) {
          error(node.location(), path,
                spec.name + " " + std::to_string(v) + " is out of range " + std::to_string(spec.min) + ".." +
                    std::to_string(spec.max));
          return std::nullopt;
        }
        return Value(v);
      }
      case cat::PropertyType::String:
        if (!node.is_string()) return expect("a string");
        return Value(node.as_string());
      case cat::PropertyType::Mac:
        if (!node.is_string()) return expect("a MAC address string");
        if (!is_mac(node.as_string())) {
          error(node.location(), path, quoted(node.as_string()) + " is not a MAC address",
                "write 52:54:00:12:34:56");
          return std::nullopt;
        }
        return Value(node.as_string());
    }
    return std::nullopt;
  }

  void attach_backend(size_t device, const cat::BackendSpec& spec, const Node::Entry& entry,
                      const std::string& path) {
    Device& d = graph().devices[device];
    const Location& at = entry.value.location();
    std::string kind(backend_kind_name(spec.kind));
    if (!entry.value.is_string()) {
      error(at, path, entry.key + " must name a " + kind + " backend");
      return;
    }
    const std::string& name = entry.value.as_string();
    auto it = m_backend_index.find(name);
    if (it == m_backend_index.end()) {
      std::vector<std::string> same_kind;
      for (const Backend& b : graph().backends)
        if (b.kind == spec.kind) same_kind.push_back(b.name);
      std::string where = spec.kind == BackendKind::Passthrough ? "passthrough:" : "backends." + kind + ":";
      std::string hint = config::suggestion_hint(name, same_kind);
      error(at, path, "unknown " + kind + " backend " + quoted(name),
            hint.empty() ? "declare it under " + where : hint);
      return;
    }
    Backend& backend = graph().backends[it->second];
    if (backend.kind != spec.kind) {
      error(at, path,
            quoted(name) + " is a " + std::string(backend_kind_name(backend.kind)) + " backend, but " +
                entry.key + " needs a " + kind + " backend");
      return;
    }
    if (spec.exclusive && !backend.used_by.empty()) {
      error(at, path,
            kind + " backend " + quoted(name) + " is already used by " + quoted(backend.used_by.front()),
            "a " + kind + " backend serves one device; declare another one");
      return;
    }
    backend.used_by.push_back(d.id);
    d.backends.push_back({spec.property, spec.kind, name, backend.driver, backend.options});
  }

  // ---- placement ----
  bool fits(const cat::DeviceType& type, BusKind kind) const {
    return std::find(type.bus_kinds.begin(), type.bus_kinds.end(), kind) != type.bus_kinds.end();
  }

  std::string plugs_into(const cat::DeviceType& type) const {
    std::vector<std::string> kinds;
    for (BusKind k : type.bus_kinds) kinds.emplace_back(bus_kind_name(k));
    return join(kinds, " or ");
  }

  void resolve_requested_buses() {
    for (DeviceState& state : m_devices) {
      if (state.failed) continue;
      state.addr = parse_addr(get(*state.node, "addr"));
      const Node* bus = get(*state.node, "bus");
      if (!bus) continue;
      state.bus_node = bus;
      if (!bus->is_string()) {
        error(bus->location(), state.path + ".bus", "bus must be a bus name");
        state.failed = true;
        continue;
      }
      const std::string& name = bus->as_string();
      auto it = m_bus_index.find(name);
      if (it == m_bus_index.end()) {
        // `bus: scsi0` for the only bus device scsi0 provides, as a convenience.
        auto dev = m_device_index.find(name);
        if (dev != m_device_index.end() && graph().devices[dev->second].provides.size() == 1)
          it = m_bus_index.find(graph().devices[dev->second].provides[0]);
      }
      if (it == m_bus_index.end()) {
        std::vector<std::string> names = bus_names();
        std::string hint = "known: " + join(names);
        if (auto close = config::closest_match(name, names))
          hint = "did you mean " + quoted(*close) + "? " + hint;
        error(bus->location(), state.path + ".bus", "unknown bus " + quoted(name), hint);
        state.failed = true;
        continue;
      }
      const Bus& b = graph().buses[it->second];
      if (!fits(*state.type, b.kind)) {
        error(bus->location(), state.path + ".bus",
              state.type->name + " plugs into a " + plugs_into(*state.type) + " bus, but " + quoted(b.name) +
                  " is a " + std::string(bus_kind_name(b.kind)) + " bus",
              suggest_bus(*state.type));
        state.failed = true;
        continue;
      }
      state.requested_bus = static_cast<int32_t>(it->second);
    }
  }

  std::string suggest_bus(const cat::DeviceType& type) const {
    std::vector<std::string> names;
    for (const Bus& b : graph_const().buses)
      if (fits(type, b.kind)) names.push_back(b.name);
    if (names.empty()) return {};
    return "buses that fit: " + join(names);
  }

  // The bus a device with an address but no `bus:` goes on: the first root bus it fits.
  int32_t default_bus(const cat::DeviceType& type) const {
    for (size_t i = 0; i < graph_const().buses.size(); ++i)
      if (m_buses[i].provider < 0 && fits(type, graph_const().buses[i].kind)) return static_cast<int32_t>(i);
    return -1;
  }

  std::string slot_range(const Bus& b) const {
    return std::to_string(b.first_slot) + "-" + std::to_string(b.last_slot);
  }

  // Checks an explicit (or locked) address against bus `bus`; returns slot/function when usable.
  // Reports problems unless `quiet` (lock entries explain themselves differently).
  std::optional<std::pair<uint32_t, uint32_t>> check_addr(const ParsedAddr& addr, size_t bus,
                                                          const std::string& path,
                                                          std::string* why = nullptr) {
    const Bus& b = graph().buses[bus];
    auto fail = [&](std::string message,
                    std::string hint = {}) -> std::optional<std::pair<uint32_t, uint32_t>> {
      if (why) {
        *why = message;
      } else {
        error(addr.at, path, std::move(message), std::move(hint));
      }
      return std::nullopt;
    };
    uint32_t slot = 0, function = 0;
    if (b.kind == BusKind::Scsi && addr.is_string && addr.text.find('.') != std::string::npos) {
      // "target.lun", decimal like Linux's H:C:T:L (an unquoted number is the target, LUN 0).
      unsigned target = 0, lun = 0;
      int used = 0;
      const bool digits_and_dot = std::all_of(addr.text.begin(), addr.text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
      });
      if (!digits_and_dot || std::sscanf(addr.text.c_str(), "%3u.%3u%n", &target, &lun, &used) != 2 ||
          used != static_cast<int>(addr.text.size()))
        return fail("invalid address " + quoted(addr.text),
                    "write a target number, or \"target.lun\" like \"1.2\"");
      if (lun >= kScsiLuns)
        return fail("LUN " + std::to_string(lun) + " is out of range for " + quoted(b.name) + " (0-" +
                    std::to_string(kScsiLuns - 1) + ")");
      slot = target;
      function = lun;
    } else if (!addr.valid) {
      return fail("invalid address " + quoted(addr.text),
                  b.kind == BusKind::Pci    ? "write a slot number or \"slot.function\" in hex, like \"1f.2\""
                  : b.kind == BusKind::Scsi ? "write a target number, or \"target.lun\" like \"1.2\""
                                            : "write a slot number");
    } else if (b.kind == BusKind::Pci) {
      if (addr.is_string) {
        slot = addr.slot;
        function = addr.function;
      } else if (addr.number > 0xff) {
        return fail("address " + addr.text + " is out of range for " + quoted(b.name) + " (slots " +
                    slot_range(b) + ")");
      } else {
        slot = static_cast<uint32_t>(addr.number);
      }
    } else {
      if (addr.is_string && addr.has_function)
        return fail(quoted(b.name) + " is a " + std::string(bus_kind_name(b.kind)) +
                    " bus: functions are PCI only");
      int64_t n = addr.is_string ? addr.slot : addr.number;
      if (addr.is_string) {
        // Plain strings are decimal slot numbers off PCI ("3").
        char* end = nullptr;
        n = std::strtoll(addr.text.c_str(), &end, 10);
        if (!end || *end) return fail("invalid address " + quoted(addr.text), "write a slot number");
      }
      // On fixed-resource buses the register base (0x2f8, 0x10001000) names the slot too.
      bool matched = false;
      for (size_t i = 0; i < b.slot_resources.size(); ++i) {
        if (static_cast<uint64_t>(n) == b.slot_resources[i].base && n > static_cast<int64_t>(b.last_slot)) {
          slot = b.first_slot + static_cast<uint32_t>(i);
          matched = true;
        }
      }
      if (!matched) {
        if (n < 0 || n > 0xffffffffLL)
          return fail("address " + addr.text + " is out of range for " + quoted(b.name) + " (slots " +
                      slot_range(b) + ")");
        slot = static_cast<uint32_t>(n);
      }
    }
    if (slot < b.first_slot || slot > b.last_slot) {
      std::string hint;
      // A quoted PCI address is hex ("1f.2"), so "20" is slot 32: say so rather than look wrong.
      if (b.kind == BusKind::Pci && addr.is_string && slot > 9) {
        std::string fix = "quoted PCI addresses are hex, \"slot.function\"";
        const std::string digits = addr.text.substr(0, addr.text.find('.'));
        if (!digits.empty() && digits.size() <= 3 &&
            digits.find_first_not_of("0123456789") == std::string::npos) {
          char wanted[8];
          std::snprintf(wanted, sizeof wanted, "%lx", std::strtoul(digits.c_str(), nullptr, 10));
          const size_t dot = addr.text.find('.');
          fix +=
              "; for slot " + digits +
              (dot == std::string::npos ? " write addr: " + digits + " (a number) or \"" + wanted + "\""
                                        : " write \"" + std::string(wanted) + addr.text.substr(dot) + "\"");
        }
        return fail("address " + quoted(addr.text) + " is read as hex (slot " + hex(slot) + " = " +
                        std::to_string(slot) + "), out of range for " + quoted(b.name) + " (slots " +
                        slot_range(b) + ")",
                    fix);
      }
      if (!b.slot_resources.empty()) {
        std::vector<std::string> bases;
        for (const SlotResource& r : b.slot_resources) bases.push_back(hex(r.base));
        hint = "slot bases: " + join(bases);
      }
      return fail("address " + addr.text + " is out of range for " + quoted(b.name) + " (slots " +
                      slot_range(b) + ")",
                  hint);
    }
    int32_t taken = occupant(bus, slot, function);
    if (taken != kFree) {
      Address shown;
      shown.kind = b.kind == BusKind::Pci ? Address::Kind::Pci : Address::Kind::Slot;
      shown.slot = slot;
      shown.function = function;
      return fail(
          quoted(b.name) + " " + shown.to_string() + " is already taken by " + describe_occupant(taken),
          free_slots_hint(bus));
    }
    return std::make_pair(slot, function);
  }

  std::string free_slots_hint(size_t bus) {
    const Bus& b = graph().buses[bus];
    std::vector<std::string> free;
    for (uint32_t s = b.first_slot; s <= b.last_slot && free.size() < 8; ++s)
      if (slot_free(bus, s) && !m_buses[bus].reserved[s - b.first_slot]) free.push_back(std::to_string(s));
    if (free.empty()) return "the bus is full; add a bridge";
    return "free slots: " + join(free) + (free.size() == 8 ? ", ..." : "") + "; or leave out addr";
  }

  void place_explicit() {
    for (size_t i = 0; i < m_devices.size(); ++i) {
      DeviceState& state = m_devices[i];
      if (state.failed || !state.addr.present) continue;
      int32_t bus = state.requested_bus;
      size_t index = m_first_config_device + i;
      if (bus < 0) {
        bus = default_bus(*state.type);
        if (bus < 0) {
          report_no_bus(index);
          continue;
        }
        graph().devices[index].address_inferred = true;  // the bus was chosen, the address was not
      }
      auto slot = check_addr(state.addr, static_cast<size_t>(bus), state.path + ".addr");
      if (!slot) {
        state.failed = true;
        continue;
      }
      occupy(index, static_cast<size_t>(bus), slot->first, slot->second);
    }
  }

  void report_no_bus(size_t index) {
    DeviceState& state = m_devices[index - m_first_config_device];
    state.failed = true;
    std::string machine = m_machine->arch + "/" + m_machine->name;
    std::string hint;
    const std::string& driver = state.type->name;
    auto swap_suffix = [&](const std::string& from, const std::string& to) {
      if (driver.size() > from.size() &&
          driver.compare(driver.size() - from.size(), from.size(), from) == 0) {
        std::string other = driver.substr(0, driver.size() - from.size()) + to;
        if (const cat::DeviceType* t = cat::find_device_type(other))
          for (BusKind k : t->bus_kinds)
            for (const Bus& b : graph().buses)
              if (b.kind == k && hint.empty()) hint = "use " + other + " on " + machine;
      }
    };
    swap_suffix("-pci", "-mmio");
    swap_suffix("-mmio", "-pci");
    if (hint.empty() && fits(*state.type, BusKind::Acpi))
      hint = "a guest finds " + driver +
             " only through ACPI, which riscv64 virt does not have (Linux 6.1 reads "
             "no VMGenID from a device tree); use an x86_64 machine (pc or microvm)";
    error(state.node->location(), state.path,
          machine + " has no " + plugs_into(*state.type) + " bus for " + driver, hint);
  }

  void place_locked() {
    if (!m_options.lock) return;
    std::string machine = m_machine->arch + "/" + m_machine->name;
    if (!m_options.lock->machine.empty() && m_options.lock->machine != machine) {
      warning(m_options.lock->location, "machine",
              "the lock file was written for " + m_options.lock->machine + ", this is " + machine +
                  "; none of its addresses apply",
              "`vmlaunch plan --lock` rewrites the lock file");
      return;
    }
    std::set<std::string> seen;
    for (const LockEntry& entry : m_options.lock->entries) {
      auto stale = [&](std::string why) {
        warning(entry.location, "", "stale lock entry for " + quoted(entry.id) + ": " + why,
                "`vmlaunch plan --lock` rewrites the lock file");
      };
      if (!seen.insert(entry.id).second) {
        stale("listed twice; the first entry wins");
        continue;
      }
      auto it = m_device_index.find(entry.id);
      if (it == m_device_index.end() || it->second < m_first_config_device) {
        stale("no device with this id in the config any more");
        continue;
      }
      size_t index = it->second;
      DeviceState& state = m_devices[index - m_first_config_device];
      Device& d = graph().devices[index];
      if (state.failed) continue;
      if (d.driver != entry.driver) {
        stale("the device is now a " + d.driver + ", the lock has a " + entry.driver +
              "; its address is inferred again");
        continue;
      }
      if (state.addr.present) continue;  // the config says where it goes now: nothing to honour
      auto bus = m_bus_index.find(entry.bus);
      if (bus == m_bus_index.end()) {
        stale("bus " + quoted(entry.bus) + " no longer exists; its address is inferred again");
        continue;
      }
      if (state.requested_bus >= 0 && static_cast<size_t>(state.requested_bus) != bus->second) {
        stale("the config now puts it on " + quoted(graph().buses[state.requested_bus].name) + ", not " +
              quoted(entry.bus));
        continue;
      }
      if (!fits(*state.type, graph().buses[bus->second].kind)) {
        stale("bus " + quoted(entry.bus) + " no longer fits a " + d.driver);
        continue;
      }
      Node addr_node = Node::string(entry.addr, entry.location);
      ParsedAddr addr = parse_addr(&addr_node);
      std::string why;
      auto slot = check_addr(addr, bus->second, "", &why);
      if (!slot) {
        stale(why + "; its address is inferred again");
        continue;
      }
      occupy(index, bus->second, slot->first, slot->second);
      d.address_inferred = true;
      d.address_locked = true;
    }
  }

  // Marks `bus` and everything already hanging below it as reachable from the machine's root buses.
  void mark_rooted(size_t bus) {
    std::vector<size_t> stack{bus};
    while (!stack.empty()) {
      size_t b = stack.back();
      stack.pop_back();
      if (m_buses[b].rooted) continue;
      m_buses[b].rooted = true;
      m_open[static_cast<size_t>(graph().buses[b].kind)].insert(b);
      for (size_t device : m_buses[b].placed) {
        if (device < m_first_config_device) continue;
        for (size_t provided : m_devices[device - m_first_config_device].provided) stack.push_back(provided);
      }
    }
  }

  void root_buses() {
    for (size_t i = 0; i < m_buses.size(); ++i)
      if (m_buses[i].provider < 0) mark_rooted(i);
  }

  // Lowest free, unreserved slot at or after the bus's cursor.
  std::optional<uint32_t> free_slot(size_t bus) {
    const Bus& b = graph().buses[bus];
    BusState& s = m_buses[bus];
    uint32_t slots = b.last_slot - b.first_slot + 1;
    for (; s.cursor < slots; ++s.cursor) {
      uint32_t slot = b.first_slot + s.cursor;
      if (!s.reserved[s.cursor] && slot_free(bus, slot)) return slot;
    }
    return std::nullopt;
  }

  void place_inferred() {
    for (size_t i = 0; i < m_devices.size(); ++i) {
      DeviceState& state = m_devices[i];
      if (state.failed || state.placed) continue;
      size_t index = m_first_config_device + i;
      Device& d = graph().devices[index];
      if (state.requested_bus >= 0) {
        size_t bus = static_cast<size_t>(state.requested_bus);
        auto slot = free_slot(bus);
        if (!slot) {
          error(state.bus_node->location(), state.path + ".bus",
                "no free slot left on " + quoted(graph().buses[bus].name),
                graph().buses[bus].kind == BusKind::Pci ? "put a pci-bridge on another bus and use its bus"
                                                        : "");
          state.failed = true;
          continue;
        }
        occupy(index, bus, *slot, 0);
        d.address_inferred = true;
      } else {
        std::optional<std::pair<size_t, uint32_t>> choice;
        for (BusKind kind : state.type->bus_kinds) {
          auto& open = m_open[static_cast<size_t>(kind)];
          while (!open.empty()) {
            size_t bus = *open.begin();
            if (choice && choice->first < bus) break;
            if (auto slot = free_slot(bus)) {
              if (!choice || bus < choice->first) choice = std::make_pair(bus, *slot);
              break;
            }
            open.erase(open.begin());  // full: it never gets a slot back during resolution
          }
        }
        if (!choice) {
          bool any = false;
          for (const Bus& b : graph().buses) any = any || fits(*state.type, b.kind);
          if (!any) {
            report_no_bus(index);
          } else {
            error(state.node->location(), state.path,
                  "no free slot on any " + plugs_into(*state.type) + " bus for " + state.type->name,
                  state.type->bus_kinds.front() == BusKind::Pci ? "add a pci-bridge" : "");
            state.failed = true;
          }
          continue;
        }
        occupy(index, choice->first, choice->second, 0);
        d.address_inferred = true;
      }
      if (m_buses[static_cast<size_t>(state.bus)].rooted)
        for (size_t provided : state.provided) mark_rooted(provided);
    }
  }

  // A placed device whose bus never became rooted hangs below a cycle (or below a device that failed).
  void check_cycles() {
    std::vector<uint8_t> color(m_devices.size(), 0);  // 0 unvisited, 1 on the current walk, 2 done
    for (size_t i = 0; i < m_devices.size(); ++i) {
      if (!m_devices[i].placed || m_buses[static_cast<size_t>(m_devices[i].bus)].rooted || color[i]) continue;
      std::vector<size_t> walk;
      size_t cur = i;
      while (true) {
        if (color[cur] == 2) break;
        if (color[cur] == 1) {
          // The walk from `cur` onwards is the cycle.
          auto start = std::find(walk.begin(), walk.end(), cur);
          std::vector<std::string> names;
          for (auto it = start; it != walk.end(); ++it)
            names.push_back(graph().devices[m_first_config_device + *it].id);
          names.push_back(graph().devices[m_first_config_device + cur].id);
          const DeviceState& first = m_devices[*start];
          error(first.bus_node ? first.bus_node->location() : first.node->location(), first.path + ".bus",
                "bus cycle: " + join(names, " -> ") + " (each sits on a bus the next provides)",
                "put one of them on a bus of the machine");
          for (auto it = start; it != walk.end(); ++it) m_devices[*it].failed = true;
          break;
        }
        color[cur] = 1;
        walk.push_back(cur);
        const DeviceState& s = m_devices[cur];
        if (!s.placed) break;  // an unplaced provider already has its own error
        int32_t provider = m_buses[static_cast<size_t>(s.bus)].provider;
        if (provider < 0 || static_cast<size_t>(provider) < m_first_config_device) break;
        cur = static_cast<size_t>(provider) - m_first_config_device;
      }
      for (size_t w : walk) color[w] = 2;
    }
  }

  void check_multifunction() {
    for (size_t i = 0; i < m_devices.size(); ++i) {
      const DeviceState& state = m_devices[i];
      const Device& d = graph().devices[m_first_config_device + i];
      if (!state.placed || d.address.kind != Address::Kind::Pci || d.address.function == 0) continue;
      size_t bus = static_cast<size_t>(state.bus);
      int32_t f0 = occupant(bus, d.address.slot, 0);
      Address slot0 = d.address;
      slot0.function = 0;
      if (f0 == kFree) {
        error(state.addr.at, state.path + ".addr",
              "function " + std::to_string(d.address.function) + " needs a device at function 0 of slot " +
                  slot0.to_string() + " on " + quoted(d.bus),
              "put a device with multifunction: true at " + slot0.to_string());
      } else if (!graph().devices[static_cast<size_t>(f0)].bool_property("multifunction")) {
        error(state.addr.at, state.path + ".addr",
              "function " + std::to_string(d.address.function) + " needs function 0 (" +
                  describe_occupant(f0) + ") to be multifunction",
              "set multifunction: true on " + quoted(graph().devices[static_cast<size_t>(f0)].id));
      }
    }
  }

  // ---- interrupts, lists, memory map ----
  void assign_irqs() {
    for (Device& d : graph().devices)
      if (d.address.resource && d.address.resource->irq) d.irq = d.address.resource->irq;
    // PCI INTx: pin A of slot s on a bus reaches pci_irqs[s % 4]; a bridge rotates its bus's lines by
    // its own slot (the standard swizzle), so walk providers before the buses they provide.
    for (size_t b = 0; b < graph().buses.size(); ++b) {
      if (m_buses[b].provider >= 0 || graph().buses[b].kind != BusKind::Pci) continue;
      std::vector<size_t> stack{b};
      while (!stack.empty()) {
        size_t bus = stack.back();
        stack.pop_back();
        const std::vector<uint32_t> irqs = graph().buses[bus].pci_irqs;
        for (size_t device : m_buses[bus].placed) {
          Device& d = graph().devices[device];
          if (d.builtin || irqs.size() != 4) continue;
          d.irq = irqs[d.address.slot % 4];
          for (size_t provided : m_devices[device - m_first_config_device].provided) {
            Bus& child = graph().buses[provided];
            if (child.kind != BusKind::Pci) continue;
            child.pci_irqs.clear();
            for (uint32_t k = 0; k < 4; ++k) child.pci_irqs.push_back(irqs[(d.address.slot + k) % 4]);
            stack.push_back(provided);
          }
        }
      }
    }
  }

  void build_lists() {
    Graph& g = graph();
    // PCI bus numbers are 8 bits: the root is bus 0, so at most 255 bridges can each get a bus.
    size_t pci_bridges = 0;
    for (size_t b = 0; b < g.buses.size(); ++b) {
      if (g.buses[b].kind != BusKind::Pci || m_buses[b].provider < 0) continue;
      if (++pci_bridges == 256) {
        const auto provider = static_cast<size_t>(m_buses[b].provider);
        const Device& bridge = g.devices[provider];
        error(
            bridge.location, "devices[" + std::to_string(provider - m_first_config_device) + "]",
            "bridge " + quoted(bridge.id) + " would be PCI bus 256: a PCI tree has at most 256 buses (0-255)",
            "use fewer bridges");
      }
    }
    for (size_t b = 0; b < g.buses.size(); ++b) {
      std::vector<size_t> devices = m_buses[b].placed;
      std::sort(devices.begin(), devices.end(), [&](size_t x, size_t y) {
        const Address& a = g.devices[x].address;
        const Address& c = g.devices[y].address;
        return std::tie(a.slot, a.function) < std::tie(c.slot, c.function);
      });
      g.buses[b].devices = std::move(devices);
    }

    // RAM (split around x86's PCI hole), the machine's fixed regions, then MMIO slots in use.
    uint64_t ram = g.machine.ram_size;
    if (m_machine->low_ram_limit && ram > m_machine->low_ram_limit) {
      g.memory_map.push_back(
          {"ram-low", m_machine->ram_base, m_machine->low_ram_limit, MemoryRegion::Kind::Ram, ""});
      g.memory_map.push_back({"ram-high", m_machine->high_ram_base, ram - m_machine->low_ram_limit,
                              MemoryRegion::Kind::Ram, ""});
    } else if (ram) {
      g.memory_map.push_back({"ram", m_machine->ram_base, ram, MemoryRegion::Kind::Ram, ""});
    }
    for (const MemoryRegion& r : m_machine->memory_map) g.memory_map.push_back(r);
    for (const Device& d : g.devices)
      // A slot without a range (acpi: an interrupt only) decodes no addresses.
      if (!d.builtin && d.address.resource && !d.address.resource->port_io && d.address.resource->size)
        g.memory_map.push_back(
            {d.id, d.address.resource->base, d.address.resource->size, MemoryRegion::Kind::Mmio, d.id});
    std::stable_sort(g.memory_map.begin(), g.memory_map.end(),
                     [](const MemoryRegion& a, const MemoryRegion& b) { return a.base < b.base; });
    for (size_t i = 1; i < g.memory_map.size(); ++i) {
      const MemoryRegion& a = g.memory_map[i - 1];
      const MemoryRegion& b = g.memory_map[i];
      if (a.base + a.size > b.base) {
        const Node* machine = get(m_doc, "machine");
        error(machine ? machine->location() : m_doc.location(), "machine.memory",
              "memory region " + a.name + " [" + hex(a.base) + ", " + hex(a.base + a.size) + ") overlaps " +
                  b.name + " at " + hex(b.base),
              a.kind == MemoryRegion::Kind::Ram ? "use less memory" : "");
      }
    }

    std::map<uint32_t, IrqLine> lines;
    for (const Device& d : g.devices) {
      if (!d.irq) continue;
      IrqLine& line = lines[*d.irq];
      line.number = *d.irq;
      line.controller = g.interrupt_controller;
      line.devices.push_back(d.id);
    }
    for (auto& [number, line] : lines) g.irqs.push_back(std::move(line));
  }

  // The file's preference, narrowed to what can run this architecture at all. Nothing here asks the
  // host: `up` tries the candidates on the host in order (accel/registry.h).
  void choose_accelerator() {
    std::vector<std::string> preference;
    const Node* accel = get(m_doc, "accel");
    AccelChoice& choice = graph().accel;
    if (accel && accel->is_list()) {
      for (size_t i = 0; i < accel->items().size(); ++i) {
        const Node& item = accel->items()[i];
        // Two string entries of one name are the schema's "listed twice"; a name and an object of
        // the same accelerator are caught here.
        if (item.is_string()) {
          if (choice.settings.count(item.as_string()))
            error(item.location(), "accel[" + std::to_string(i) + "]",
                  "\"" + item.as_string() + "\" is listed twice", "one entry per accelerator");
          else
            preference.push_back(item.as_string());
        }
        const Node* type = item.is_map() ? item.find("type") : nullptr;
        if (!type || !type->is_string()) continue;
        if (std::find(preference.begin(), preference.end(), type->as_string()) != preference.end()) {
          error(type->location(), "accel[" + std::to_string(i) + "].type",
                "\"" + type->as_string() + "\" is listed twice", "one entry per accelerator");
          continue;
        }
        preference.push_back(type->as_string());
        auto& settings = choice.settings[type->as_string()];
        for (const Node::Entry& entry : item.entries()) {
          if (entry.key == "type") continue;
          // Every setting the schema knows belongs to the jit accelerator's tiers.
          if (type->as_string() != "jit") {
            error(entry.key_location, "accel[" + std::to_string(i) + "]." + entry.key,
                  "\"" + entry.key + "\" is a setting of the jit accelerator, not of " + type->as_string());
            continue;
          }
          settings.emplace_back(entry.key, entry.value.is_int()      ? std::to_string(entry.value.as_int())
                                           : entry.value.is_string() ? entry.value.as_string()
                                           : entry.value.is_bool()
                                               ? (entry.value.as_bool() ? "true" : "false")
                                               : std::string());
        }
      }
    }
    accel::Preference chosen = accel::prefer(preference, graph().machine.arch);
    choice.candidates = chosen.candidates;
    if (chosen.ok) choice.name = chosen.preferred();
    choice.reason = chosen.reason;
    for (const auto& r : chosen.rejected) choice.rejected.push_back({r.name, r.reason});
    if (!chosen.ok) error(accel ? accel->location() : m_doc.location(), "accel", chosen.error);
  }

  const Node& m_doc;
  const ResolveOptions& m_options;
  ResolveResult m_result;
  const cat::MachineType* m_machine = nullptr;
  std::vector<BusState> m_buses;       // parallel to graph().buses
  std::vector<DeviceState> m_devices;  // config devices: graph().devices[m_first_config_device + i]
  size_t m_first_config_device = 0;
  std::unordered_map<std::string, size_t> m_bus_index;
  std::unordered_map<std::string, size_t> m_device_index;
  std::unordered_map<std::string, size_t> m_backend_index;
  std::array<std::set<size_t>, kBusKinds> m_open;  // rooted buses that may have a free slot, by kind
};

}  // namespace

ResolveResult resolve(const config::Node& document, const ResolveOptions& options) {
  if (!has_mounts(document)) return Resolver(document, options).run();
  // Mounts are a shorthand for a device and a backend each: resolve the document they stand for
  // (the graph keeps copies of the nodes it needs, so the expanded document may go).
  config::Node expanded = document;
  config::Diagnostics diagnostics;
  expand_mounts(expanded, diagnostics);
  ResolveResult result = Resolver(expanded, options).run();
  result.diagnostics.insert(result.diagnostics.begin(), diagnostics.begin(), diagnostics.end());
  return result;
}

}  // namespace graph
