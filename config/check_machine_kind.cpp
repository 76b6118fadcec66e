#include <algorithm>
#include <map>
#include <vector>

#include "config/checks.h"
#include "config/did_you_mean.h"

namespace config {

Diagnostics check_machine_kind(const Node& document) {
  Diagnostics out;
  if (!document.is_map()) return out;
  // Which machine types each architecture has. hw/ builds these; the schema lists both sets.
  static const std::map<std::string, std::vector<std::string>> kTypes = {
      {"riscv64", {"virt"}},
      {"x86_64", {"microvm", "pc"}},
  };
  if (const Node* machine = document.find("machine"); machine && machine->is_map()) {
    const Node* arch = machine->find("arch");
    const Node* type = machine->find("type");
    if (arch && type && arch->is_string() && type->is_string()) {
      auto known = kTypes.find(arch->as_string());
      if (known != kTypes.end() &&
          std::find(known->second.begin(), known->second.end(), type->as_string()) == known->second.end()) {
        std::string hint = "use " + known->second[0];
        for (size_t i = 1; i < known->second.size(); ++i) hint += " or " + known->second[i];
        out.push_back(Diagnostic::error(
            type->location(), "machine.type",
            "machine type \"" + type->as_string() + "\" is not available for " + arch->as_string(), hint));
      }
    }
  }
  if (const Node* cpu = document.find("cpu"); cpu && cpu->is_map()) {
    const Node* count = cpu->find("count");
    const Node* topology = cpu->find("topology");
    if (count && count->is_int() && topology && topology->is_map()) {
      int64_t product = 1;
      std::string formula;
      for (const char* part : {"sockets", "cores", "threads"}) {
        const Node* value = topology->find(part);
        if (value && !value->is_int()) return out;
        int64_t n = value ? value->as_int() : 1;
        if (n < 1 || n > 256) return out;  // the schema reports the range
        product *= n;
        formula += (formula.empty() ? "" : " * ") + std::to_string(n);
      }
      if (product != count->as_int())
        out.push_back(Diagnostic::error(count->location(), "cpu.count",
                                        "cpu.count is " + std::to_string(count->as_int()) +
                                            " but the topology has " + formula + " = " +
                                            std::to_string(product) + " cpus",
                                        "make them agree, or leave out cpu.count"));
    }
  }
  return out;
}

}  // namespace config
