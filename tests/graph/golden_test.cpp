// Golden `plan` output for every example: load exactly as `vmlaunch plan` does (fixed environment and
// a fixed accelerator registry, so the host does not leak in), resolve, render text and JSON, compare
// with tests/graph/golden/<example>.plan. To accept a deliberate change, run the test binary with
// VML_UPDATE_GOLDEN=<checkout>/tests/graph/golden from the runfiles directory and review the diff.
#include <dirent.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/machine.h"
#include "graph/render.h"
#include "tests/graph/resolve_helpers.h"

namespace {

std::vector<std::string> examples() {
  std::vector<std::string> files;
  if (DIR* dir = opendir("examples")) {
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      for (const char* ext : {".yaml", ".toml", ".json"})
        if (name.size() > 5 &&
            name.compare(name.size() - std::string(ext).size(), std::string::npos, ext) == 0)
          files.push_back(name);
    }
    closedir(dir);
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string plan_of(const std::string& example) {
  config::Environment env = config::Environment::fixed({{"HOME", "/home/user"}});
  config::LoadResult loaded = config::load_machine("examples/" + example, env);
  std::string out;
  for (const config::Diagnostic& d : loaded.diagnostics) out += "diagnostic: " + d.to_string() + "\n";
  if (!loaded.ok()) return out;
  graph::ResolveOptions options;
  graph::ResolveResult resolved = graph::resolve(loaded.document, options);
  for (const config::Diagnostic& d : resolved.diagnostics) out += "diagnostic: " + d.to_string() + "\n";
  if (!resolved.ok()) return out;
  // JSON must parse and carry the same devices; the text form is what the golden file pins down.
  nlohmann::json j = nlohmann::json::parse(graph::render_json(resolved.graph));
  CHECK(j["devices"].size() == resolved.graph.devices.size());
  // Paths are absolute (resolved once against the file's directory); the goldens show them relative
  // to the checkout so they hold wherever it is.
  std::string text = out + graph::render_text(resolved.graph);
  const std::string checkout = std::filesystem::current_path().string() + "/";
  for (size_t at = text.find(checkout); at != std::string::npos; at = text.find(checkout, at))
    text.erase(at, checkout.size());
  return text;
}

}  // namespace

TEST_CASE("golden plan output for every example") {
  std::vector<std::string> files = examples();
  REQUIRE_MESSAGE(!files.empty(), "no examples in the runfiles");
  const char* update = std::getenv("VML_UPDATE_GOLDEN");
  for (const std::string& example : files) {
    CAPTURE(example);
    std::string actual = plan_of(example);
    bool valid = actual.find("diagnostic: ") == std::string::npos;
    CHECK_MESSAGE(valid, "examples load and resolve without diagnostics:\n" << actual);
    if (update) {
      std::ofstream(std::string(update) + "/" + example + ".plan") << actual;
      continue;
    }
    std::string golden_path = "tests/graph/golden/" + example + ".plan";
    std::string golden = read(golden_path);
    REQUIRE_MESSAGE(!golden.empty(), "missing " << golden_path << "; create it with VML_UPDATE_GOLDEN");
    CHECK_MESSAGE(actual == golden,
                  "plan of " << example << " differs from " << golden_path
                             << " (if the example changed on purpose, regenerate: cd "
                                "<bazel-bin>/tests/graph/golden_test.runfiles/vmlaunch && "
                                "VML_UPDATE_GOLDEN=<checkout>/tests/graph/golden ../../golden_test):\n"
                             << actual);
  }
}

TEST_CASE("the YAML and TOML forms of the same machine plan identically") {
  std::vector<std::string> files = examples();
  for (const std::string& example : files) {
    if (example.size() < 5 || example.compare(example.size() - 5, 5, ".toml") != 0) continue;
    std::string yaml = example.substr(0, example.size() - 5) + ".yaml";
    if (std::find(files.begin(), files.end(), yaml) == files.end()) continue;
    CAPTURE(example);
    std::string a = plan_of(example), b = plan_of(yaml);
    // Locations differ (file names, columns); the graph does not.
    CHECK(a == b);
  }
}

TEST_CASE("the QEMU documentation example resolves (as a file, through the loader and schema)") {
  std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp";
  std::string path = dir + "/qemu-doc.yaml";
  std::ofstream(path) << "machine: {arch: x86_64, type: pc, memory: 1G}\n"
                         "backends: {block: {disk0: {driver: raw, file: disk.img}}}\n"
                         "devices:\n"
                         "  - {driver: virtio-scsi-pci, bus: pci.0, addr: 2, id: foo}\n"
                         "  - {driver: scsi-hd, bus: foo.0, addr: 1, id: baz, drive: disk0}\n";
  config::LoadResult loaded = config::load_machine(path, config::Environment::fixed({}));
  REQUIRE_MESSAGE(loaded.ok(), (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].to_string()));
  graph::ResolveResult r = graph::resolve(loaded.document, {});
  REQUIRE(r.ok());
  const graph::Device* baz = r.graph.find_device("baz");
  REQUIRE(baz);
  CHECK(baz->bus == "foo.0");
  CHECK(baz->address.slot == 1);
  CHECK(r.graph.find_bus("foo.0")->provided_by == "foo");
}
