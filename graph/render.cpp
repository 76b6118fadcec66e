#include "graph/render.h"

#include <cstdio>
#include <functional>

#include "graph/json_text.h"

namespace graph {

namespace {

std::string hex(uint64_t value, int width = 0) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%0*llx", width, static_cast<unsigned long long>(value));
  return text;
}

std::string plural(uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string describe_resource(const SlotResource& r) {
  std::string text = r.port_io ? "io " + hex(r.base) + "-" + hex(r.base + r.size - 1)
                               : "mmio " + hex(r.base) + "-" + hex(r.base + r.size - 1);
  return text;
}

std::string describe_address(const Device& d) {
  std::string text =
      d.address.kind == Address::Kind::Pci ? d.address.to_string() : "slot " + d.address.to_string();
  // A slot without a range (acpi: only an interrupt) shows none.
  if (d.address.resource && d.address.resource->size) text += ", " + describe_resource(*d.address.resource);
  return text;
}

std::string property_text(const Property& p) {
  if (std::holds_alternative<std::string>(p.value))
    return p.name + "=" + json_string(std::get<std::string>(p.value));
  return p.name + "=" + value_to_string(p.value);
}

}  // namespace

std::string format_size(uint64_t bytes) {
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024 || bytes % 1024) return plural(bytes, "byte");
  int unit = -1;
  while (bytes >= 1024 && bytes % 1024 == 0 && unit < 3) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + " " + units[unit];
}

std::string render_text(const Graph& g) {
  std::string out;
  const Machine& m = g.machine;
  out += "machine " + m.arch + "/" + m.type + (m.name.empty() ? "" : " \"" + m.name + "\"") + ": " +
         format_size(m.ram_size) + " RAM, " + plural(m.cpu.count, "CPU") + " (" + m.cpu.model;
  for (const std::string& f : m.cpu.features) out += " " + f;
  out += "; " + plural(m.cpu.sockets, "socket") + " x " + plural(m.cpu.cores, "core") + " x " +
         plural(m.cpu.threads, "thread") + ")\n";
  if (m.arch == "x86_64")
    out += std::string("legacy PC devices: ") +
           (m.pit ? "8254 PIT, 8259 PIC pair" : "none (no PIT, no PIC)") + "\n";
  if (!g.accel.name.empty() || !g.accel.rejected.empty()) {
    out += "accelerator: " + (g.accel.name.empty() ? std::string("none") : g.accel.name) +
           (g.accel.reason.empty() ? "" : " (" + g.accel.reason + ")") + "\n";
    if (g.accel.candidates.size() > 1) {
      out += "  then:";
      for (size_t i = 1; i < g.accel.candidates.size(); ++i) out += " " + g.accel.candidates[i];
      out += "\n";
    }
    for (const AccelChoice::Rejected& r : g.accel.rejected) out += "  not " + r.name + ": " + r.reason + "\n";
  }
  const Boot& b = g.boot;
  std::vector<std::string> boot;
  if (!b.firmware.empty()) boot.push_back("firmware " + b.firmware);
  if (!b.kernel.empty()) boot.push_back("kernel " + b.kernel);
  if (!b.initrd.empty()) boot.push_back("initrd " + b.initrd);
  if (!b.dtb.empty()) boot.push_back("dtb " + b.dtb);
  if (!b.cmdline.empty()) boot.push_back("cmdline " + json_string(b.cmdline));
  for (size_t i = 0; i < boot.size(); ++i)
    out += (i ? ", " : "boot: ") + boot[i] + (i + 1 == boot.size() ? "\n" : "");

  out += "\nbuses and devices (* = address chosen by vmlaunch, L = from the lock file):\n";
  std::function<void(const Bus&, int)> print_bus = [&](const Bus& bus, int depth) {
    std::string pad(static_cast<size_t>(depth) * 2, ' ');
    out += pad + "bus " + bus.name + " (" + std::string(bus_kind_name(bus.kind)) + ", slots " +
           std::to_string(bus.first_slot) + "-" + std::to_string(bus.last_slot) + ")\n";
    for (size_t index : bus.devices) {
      const Device& d = g.devices[index];
      std::string mark = d.address_locked ? "L " : d.address_inferred ? "* " : "  ";
      out += pad + mark + "dev " + d.id + ": " + d.driver + " @ " + describe_address(d);
      if (d.irq) out += ", irq " + std::to_string(*d.irq);
      if (d.builtin) out += " (builtin)";
      out += "\n";
      for (const BackendRef& ref : d.backends)
        out += pad + "      " + ref.property + " -> " + std::string(backend_kind_name(ref.kind)) + " " +
               ref.name + " (" + ref.driver + ")\n";
      if (!d.properties.empty()) {
        out += pad + "     ";
        for (const Property& p : d.properties) out += " " + property_text(p);
        out += "\n";
      }
      for (const std::string& provided : d.provides)
        if (const Bus* child = g.find_bus(provided)) print_bus(*child, depth + 2);
    }
  };
  for (const Bus& bus : g.buses)
    if (bus.provided_by.empty()) print_bus(bus, 1);

  bool any_builtin = false;
  for (const Device& d : g.devices) {
    if (!d.builtin || !d.bus.empty()) continue;
    if (!any_builtin) out += "\nmachine devices:\n";
    any_builtin = true;
    out += "  " + d.id + ": " + d.driver;
    if (d.region) out += " @ " + describe_resource(*d.region);
    if (d.irq) out += ", irq " + std::to_string(*d.irq);
    out += "\n";
  }

  if (!g.backends.empty()) {
    out += "\nbackends:\n";
    for (const Backend& backend : g.backends) {
      out += "  " + std::string(backend_kind_name(backend.kind)) + " " + backend.name + ": " + backend.driver;
      if (backend.kind == BackendKind::Fs) {
        // What a shared folder exposes is the point of reviewing its plan: the directory and access.
        const config::Node* path = backend.options.find("path");
        const config::Node* readonly = backend.options.find("readonly");
        if (path && path->is_string()) out += " " + path->as_string();
        out += readonly && readonly->is_bool() && readonly->as_bool() ? ", read-only" : ", read-write";
      }
      out += backend.used_by.empty() ? ", unused" : ", used by ";
      for (size_t i = 0; i < backend.used_by.size(); ++i) out += (i ? ", " : "") + backend.used_by[i];
      out += "\n";
    }
  }

  out += "\nmemory map:\n";
  for (const MemoryRegion& r : g.memory_map) {
    char line[160];
    std::snprintf(line, sizeof line, "  %s-%s  %-10s  %-16s %s\n", hex(r.base, 16).c_str(),
                  hex(r.base + r.size - 1, 16).c_str(), std::string(memory_kind_name(r.kind)).c_str(),
                  r.name.c_str(), format_size(r.size).c_str());
    out += line;
  }

  if (!g.irqs.empty()) {
    out += "\nirq lines (" + g.interrupt_controller + "):\n";
    for (const IrqLine& line : g.irqs) {
      out += "  " + std::to_string(line.number) + ":";
      for (const std::string& d : line.devices) out += " " + d;
      out += "\n";
    }
  }
  return out;
}

namespace {

std::string json_value(const Value& v) {
  if (std::holds_alternative<std::string>(v)) return json_string(std::get<std::string>(v));
  return value_to_string(v);
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
  return out + "]";
}

std::string json_resource(const SlotResource& r) {
  return "{\"base\": " + std::to_string(r.base) + ", \"size\": " + std::to_string(r.size) +
         ", \"space\": " + (r.port_io ? "\"io\"" : "\"mmio\"") +
         (r.irq ? ", \"irq\": " + std::to_string(*r.irq) : std::string()) + "}";
}

}  // namespace

std::string render_json(const Graph& g) {
  std::string out = "{\n";
  const Machine& m = g.machine;
  out += "  \"machine\": {\"name\": " + json_string(m.name) + ", \"arch\": " + json_string(m.arch) +
         ", \"type\": " + json_string(m.type) + ", \"ram_size\": " + std::to_string(m.ram_size) +
         ", \"ram_base\": " + std::to_string(m.ram_base) + ", \"pit\": " + (m.pit ? "true" : "false") +
         ",\n    \"cpu\": {\"count\": " + std::to_string(m.cpu.count) +
         ", \"model\": " + json_string(m.cpu.model) + ", \"features\": " + json_list(m.cpu.features) +
         ", \"sockets\": " + std::to_string(m.cpu.sockets) + ", \"cores\": " + std::to_string(m.cpu.cores) +
         ", \"threads\": " + std::to_string(m.cpu.threads) + "}},\n";
  out += "  \"accel\": {\"name\": " + json_string(g.accel.name) +
         ", \"candidates\": " + json_list(g.accel.candidates) +
         ", \"reason\": " + json_string(g.accel.reason) + ", \"rejected\": [";
  for (size_t i = 0; i < g.accel.rejected.size(); ++i)
    out += std::string(i ? ", " : "") + "{\"name\": " + json_string(g.accel.rejected[i].name) +
           ", \"reason\": " + json_string(g.accel.rejected[i].reason) + "}";
  out += "]},\n";
  out += "  \"boot\": {\"firmware\": " + json_string(g.boot.firmware) +
         ", \"kernel\": " + json_string(g.boot.kernel) + ", \"initrd\": " + json_string(g.boot.initrd) +
         ", \"dtb\": " + json_string(g.boot.dtb) + ", \"cmdline\": " + json_string(g.boot.cmdline) + "},\n";
  out += "  \"interrupt_controller\": " + json_string(g.interrupt_controller) + ",\n";

  out += "  \"buses\": [";
  for (size_t i = 0; i < g.buses.size(); ++i) {
    const Bus& b = g.buses[i];
    std::vector<std::string> devices;
    for (size_t index : b.devices) devices.push_back(g.devices[index].id);
    std::string reserved = "[";
    for (size_t r = 0; r < b.reserved_slots.size(); ++r)
      reserved += (r ? ", " : "") + std::to_string(b.reserved_slots[r]);
    reserved += "]";
    out += std::string(i ? "," : "") + "\n    {\"name\": " + json_string(b.name) +
           ", \"kind\": " + json_string(bus_kind_name(b.kind)) +
           ", \"provided_by\": " + json_string(b.provided_by) +
           ", \"first_slot\": " + std::to_string(b.first_slot) +
           ", \"last_slot\": " + std::to_string(b.last_slot) + ", \"reserved_slots\": " + reserved +
           ", \"devices\": " + json_list(devices) + "}";
  }
  out += "\n  ],\n";

  out += "  \"devices\": [";
  for (size_t i = 0; i < g.devices.size(); ++i) {
    const Device& d = g.devices[i];
    out += std::string(i ? "," : "") + "\n    {\"id\": " + json_string(d.id) +
           ", \"driver\": " + json_string(d.driver) + ", \"builtin\": " + (d.builtin ? "true" : "false") +
           ", \"bus\": " + json_string(d.bus);
    if (d.address.kind != Address::Kind::None) {
      out += ", \"addr\": " + json_string(d.address.to_string()) +
             ", \"slot\": " + std::to_string(d.address.slot);
      if (d.address.kind == Address::Kind::Pci)
        out += ", \"function\": " + std::to_string(d.address.function);
      if (d.address.resource) out += ", \"resource\": " + json_resource(*d.address.resource);
    }
    if (d.region) out += ", \"region\": " + json_resource(*d.region);
    out += std::string(", \"inferred\": ") + (d.address_inferred ? "true" : "false") +
           ", \"locked\": " + (d.address_locked ? "true" : "false");
    if (d.irq) out += ", \"irq\": " + std::to_string(*d.irq);
    out += ", \"properties\": {";
    for (size_t p = 0; p < d.properties.size(); ++p)
      out += std::string(p ? ", " : "") + json_string(d.properties[p].name) + ": " +
             json_value(d.properties[p].value);
    out += "}, \"backends\": [";
    for (size_t r = 0; r < d.backends.size(); ++r) {
      const BackendRef& ref = d.backends[r];
      out += std::string(r ? ", " : "") + "{\"property\": " + json_string(ref.property) +
             ", \"kind\": " + json_string(backend_kind_name(ref.kind)) +
             ", \"name\": " + json_string(ref.name) + ", \"driver\": " + json_string(ref.driver) + "}";
    }
    out += "], \"provides\": " + json_list(d.provides);
    if (d.location.known()) out += ", \"location\": " + json_string(d.location.to_string());
    out += "}";
  }
  out += "\n  ],\n";

  out += "  \"backends\": [";
  for (size_t i = 0; i < g.backends.size(); ++i) {
    const Backend& b = g.backends[i];
    out += std::string(i ? "," : "") + "\n    {\"name\": " + json_string(b.name) +
           ", \"kind\": " + json_string(backend_kind_name(b.kind)) +
           ", \"driver\": " + json_string(b.driver) + ", \"used_by\": " + json_list(b.used_by) + "}";
  }
  out += g.backends.empty() ? "],\n" : "\n  ],\n";

  out += "  \"memory_map\": [";
  for (size_t i = 0; i < g.memory_map.size(); ++i) {
    const MemoryRegion& r = g.memory_map[i];
    out += std::string(i ? "," : "") + "\n    {\"name\": " + json_string(r.name) +
           ", \"base\": " + std::to_string(r.base) + ", \"size\": " + std::to_string(r.size) +
           ", \"kind\": " + json_string(memory_kind_name(r.kind)) + ", \"device\": " + json_string(r.device) +
           "}";
  }
  out += "\n  ],\n";

  out += "  \"irqs\": [";
  for (size_t i = 0; i < g.irqs.size(); ++i)
    out += std::string(i ? "," : "") + "\n    {\"number\": " + std::to_string(g.irqs[i].number) +
           ", \"controller\": " + json_string(g.irqs[i].controller) +
           ", \"devices\": " + json_list(g.irqs[i].devices) + "}";
  out += g.irqs.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

// DOT strings: quotes escaped, backslashes kept (labels use \n for line breaks).
std::string dot_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string render_dot(const Graph& g) {
  // Node names are quoted ids with a prefix per kind, so a bus and a device may share a name (br1).
  auto bus_node = [](const std::string& name) { return dot_string("bus:" + name); };
  auto dev_node = [](const std::string& id) { return dot_string("dev:" + id); };
  auto backend_node = [](const std::string& name) { return dot_string("backend:" + name); };
  std::string out = "digraph vmlaunch {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
  out += "  label=" +
         dot_string(g.machine.arch + "/" + g.machine.type +
                    (g.machine.name.empty() ? "" : " " + g.machine.name)) +
         ";\n";
  for (const Bus& b : g.buses)
    out += "  " + bus_node(b.name) + " [shape=box, style=filled, fillcolor=lightgrey, label=" +
           dot_string(b.name + "\\n" + std::string(bus_kind_name(b.kind))) + "];\n";
  for (const Device& d : g.devices) {
    if (d.bus.empty()) continue;  // builtins outside any bus are listed by `plan`, not drawn
    std::string label =
        d.id + "\\n" + d.driver + "\\n" + d.address.to_string() + (d.address_inferred ? " *" : "");
    out += "  " + dev_node(d.id) + " [shape=ellipse" + (d.builtin ? ", style=dashed" : "") +
           ", label=" + dot_string(label) + "];\n";
    out += "  " + bus_node(d.bus) + " -> " + dev_node(d.id) + ";\n";
    for (const std::string& provided : d.provides)
      out += "  " + dev_node(d.id) + " -> " + bus_node(provided) + ";\n";
    for (const BackendRef& ref : d.backends)
      out += "  " + dev_node(d.id) + " -> " + backend_node(ref.name) +
             " [style=dashed, label=" + dot_string(ref.property) + "];\n";
  }
  for (const Backend& b : g.backends)
    out += "  " + backend_node(b.name) + " [shape=note, label=" +
           dot_string(std::string(backend_kind_name(b.kind)) + " " + b.name + "\\n" + b.driver) + "];\n";
  out += "}\n";
  return out;
}

}  // namespace graph
