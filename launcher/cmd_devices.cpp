// `vmlaunch devices [NAME]`: the device catalogue, as QEMU's `-device help` and `-device NAME,help`.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "config/did_you_mean.h"
#include "hw/catalogue/catalogue.h"
#include "launcher/command.h"

namespace launcher {
namespace {

namespace cat = hw::catalogue;

std::string default_text(const cat::PropertySpec& p) {
  if (std::holds_alternative<std::string>(p.default_value)) {
    const std::string& s = std::get<std::string>(p.default_value);
    return s.empty() ? "(none)" : "\"" + s + "\"";
  }
  return graph::value_to_string(p.default_value);
}

std::string type_text(const cat::PropertySpec& p) {
  std::string text(cat::property_type_name(p.type));
  if ((p.type == cat::PropertyType::Int || p.type == cat::PropertyType::Size) && p.max != INT64_MAX)
    text += " " + std::to_string(p.min) + ".." + std::to_string(p.max);
  return text;
}

int list_devices() {
  for (graph::BusKind kind :
       {graph::BusKind::System, graph::BusKind::Isa, graph::BusKind::VirtioMmio, graph::BusKind::Pci,
        graph::BusKind::Scsi, graph::BusKind::VirtioSerial, graph::BusKind::Usb, graph::BusKind::Acpi}) {
    bool header = false;
    for (const cat::DeviceType& t : cat::device_types()) {
      bool fits = false;
      for (graph::BusKind k : t.bus_kinds) fits = fits || k == kind;
      if (!fits) continue;
      if (!header)
        std::printf("%s%s devices:\n", header ? "" : "", std::string(graph::bus_kind_name(kind)).c_str());
      header = true;
      std::printf("  %-22s %s\n", t.name.c_str(), t.help.c_str());
    }
    if (header) std::printf("\n");
  }
  std::printf("machine types:\n");
  for (const cat::MachineType& m : cat::machine_types())
    std::printf("  %-22s %s\n", (m.arch + "/" + m.name).c_str(), m.help.c_str());
  std::printf("\n`vmlaunch devices NAME` lists a device's properties.\n");
  return kExitOk;
}

int describe_device(const std::string& name) {
  const cat::DeviceType* t = cat::find_device_type(name);
  if (!t) {
    std::string hint = config::suggestion_hint(name, cat::device_type_names());
    std::fprintf(stderr, "vmlaunch: unknown device type \"%s\"%s\n", name.c_str(),
                 hint.empty() ? "" : (" (" + hint + ")").c_str());
    return kExitBadInput;
  }
  std::printf("%s: %s\n", t->name.c_str(), t->help.c_str());
  std::string kinds;
  for (graph::BusKind k : t->bus_kinds)
    kinds += (kinds.empty() ? "" : " or ") + std::string(graph::bus_kind_name(k));
  std::printf("plugs into: %s bus\n", kinds.c_str());
  if (!t->backends.empty()) {
    std::printf("backends:\n");
    for (const cat::BackendSpec& b : t->backends) {
      std::string key = b.property + "=<" + std::string(graph::backend_kind_name(b.kind)) + ">";
      std::string flags =
          std::string(b.required ? "required" : "optional") + (b.exclusive ? ", exclusive" : ", shared");
      std::printf("  %-28s %s (%s)", key.c_str(), b.help.c_str(), flags.c_str());
      for (const std::string& alias : b.aliases) std::printf("; also as %s", alias.c_str());
      std::printf("\n");
    }
  }
  if (!t->properties.empty()) {
    std::printf("properties:\n");
    for (const cat::PropertySpec& p : t->properties) {
      std::string key = p.name + "=<" + type_text(p) + ">";
      std::printf("  %-28s %s (default: %s)\n", key.c_str(), p.help.c_str(), default_text(p).c_str());
    }
  }
  for (const cat::ProvidedBus& b : t->provides)
    std::printf("provides: bus <id>%s (%s, slots %u-%u)\n", b.suffix.c_str(),
                std::string(graph::bus_kind_name(b.kind)).c_str(), b.first_slot, b.last_slot);
  std::printf("common keys: id, bus, addr\n");
  return kExitOk;
}

}  // namespace

void register_devices(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand(
      "devices",
      "List device types by the bus they plug into; with NAME, that device's properties and backends");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Device type to describe (e.g. virtio-blk-pci)");
  cmd->callback([&action, name] {
    action = [name] { return name->empty() ? list_devices() : describe_device(*name); };
  });
}

}  // namespace launcher
