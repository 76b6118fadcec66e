#include "config/machine.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/paths.h"
#include "config/test_util.h"

using namespace config;
using config::testing::dump;
using config::testing::find_message;
using config::testing::yaml;

namespace {

namespace fs = std::filesystem;

// A fresh directory under the test's temp dir, with files written relative to it.
struct TempTree {
  fs::path root;
  explicit TempTree(const std::string& name) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    root = fs::path(tmp ? tmp : "/tmp") / ("config-machine-test-" + name);
    fs::remove_all(root);
    fs::create_directories(root);
  }
  std::string write(const std::string& relative, const std::string& text) {
    fs::path path = root / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }
};

const char* kBase =
    "name: base\n"
    "machine: {arch: riscv64, type: virt, memory: 512MiB}\n"
    "boot: {firmware: opensbi, kernel: guests/Image}\n"
    "backends: {chardev: {con0: {driver: stdio}}}\n"
    "devices:\n  - {driver: ns16550, id: serial0, chardev: con0}\n";

}  // namespace

TEST_CASE("load_machine: every example is valid") {
  Environment env = Environment::fixed({{"HOME", "/home/u"}});
  int checked = 0;
  for (const auto& entry : fs::directory_iterator("examples")) {
    LoadResult result = load_machine(entry.path().string(), env);
    CHECK_MESSAGE(result.ok(), (entry.path().string() + "\n" + dump(result.diagnostics)));
    CHECK_FALSE(has_errors(result.diagnostics));
    ++checked;
  }
  CHECK(checked >= 6);
}

TEST_CASE("load_machine: the YAML and TOML hello-riscv examples are the same machine") {
  Environment env = Environment::fixed({{"HOME", "/home/u"}});
  LoadResult from_yaml = load_machine("examples/hello-riscv.yaml", env);
  LoadResult from_toml = load_machine("examples/hello-riscv.toml", env);
  REQUIRE(from_yaml.ok());
  REQUIRE(from_toml.ok());
  CHECK(from_yaml.document == from_toml.document);
  CHECK(from_toml.document.find("devices")->items()[2].find("drive")->location().file ==
        "examples/hello-riscv.toml");
}

TEST_CASE("load_machine: the default example resolves ${HOME} and keeps firmware names") {
  LoadResult result = load_machine("examples/riscv64-linux.yaml", Environment::fixed({{"HOME", "/home/u"}}));
  REQUIRE(result.ok());
  const Node* boot = result.document.find("boot");
  CHECK(boot->find("kernel")->as_string() == "/home/u/.cache/vmlaunch/guests/riscv64/Image");
  CHECK(boot->find("firmware")->as_string() == "opensbi");
  CHECK(result.files == std::vector<std::string>{"examples/riscv64-linux.yaml"});
}

TEST_CASE("load_machine: extends merges the base under the child, paths stay relative to their file") {
  TempTree tree("extends");
  tree.write("bases/base.yaml", kBase);
  std::string child = tree.write("vm.yaml",
                                 "extends: [bases/base.yaml]\nname: child\nmachine: {memory: 1G}\n"
                                 "backends: {block: {d: {driver: raw, file: disk.img}}}\n"
                                 "devices:\n  - {driver: virtio-blk-mmio, id: vda, drive: d}\n");
  LoadResult result = load_machine(child, Environment::fixed({}));
  REQUIRE_MESSAGE(result.ok(), dump(result.diagnostics));
  const Node& doc = result.document;
  CHECK(doc.find("extends") == nullptr);
  CHECK(doc.find("name")->as_string() == "child");
  CHECK(doc.find("machine")->find("memory")->as_string() == "1G");
  CHECK(doc.find("machine")->find("arch")->as_string() == "riscv64");
  CHECK(doc.find("devices")->size() == 2);
  CHECK(doc.find("boot")->find("kernel")->as_string() == (tree.root / "bases/guests/Image").string());
  CHECK(doc.find("backends")->find("block")->find("d")->find("file")->as_string() ==
        (tree.root / "disk.img").string());
  CHECK(result.files.size() == 2);
}

TEST_CASE("load_machine: extends cycles are reported at the entry that closes them") {
  TempTree tree("cycle");
  tree.write("a.yaml", "extends: b.yaml\nname: a\n");
  tree.write("b.yaml", "extends: [a.yaml]\nname: b\n");
  LoadResult result = load_machine((tree.root / "a.yaml").string(), Environment::fixed({}));
  const Diagnostic* cycle = find_message(result.diagnostics, "extends cycle");
  REQUIRE(cycle);
  CHECK(cycle->message == "extends cycle: a.yaml -> b.yaml -> a.yaml");
  CHECK(cycle->location.file == (tree.root / "b.yaml").string());
  CHECK(cycle->location.line == 1);
  CHECK(result.readable);

  TempTree self("self");
  std::string path = self.write("s.yaml", "extends: s.yaml\n");
  CHECK(find_message(load_machine(path, Environment::fixed({})).diagnostics,
                     "extends cycle: s.yaml -> s.yaml"));
}

// 15 files each extending the next four: once 4^14 loads (over 30 s); each file is now read once.
TEST_CASE("load_machine: extends fan-out loads each file once and bounds the merged size") {
  TempTree tree("fan-out");
  auto name = [](int i) { return "f" + std::to_string(i) + ".yaml"; };
  for (int i = 0; i < 15; ++i) {
    std::string extends;
    for (int k = i + 1; k <= i + 4 && k < 15; ++k) extends += (extends.empty() ? "" : ", ") + name(k);
    tree.write(name(i), (extends.empty() ? "" : "extends: [" + extends + "]\n") + "labels: {l" +
                            std::to_string(i) + ": x}\n");
  }
  // No timed assertion (a loaded CI machine makes it flaky): the count of loads is what proves it,
  // and the 4^14 loads of old would run into the test's timeout.
  LoadResult result = load_machine((tree.root / name(0)).string(), Environment::fixed({}));
  CHECK(result.files.size() == 15);
  CHECK(find_message(result.diagnostics, "extends cycle") == nullptr);

  // 20 such files with a list of maps without ids in each: appended at every level, the merged
  // list would have millions of items; it is refused once past the value bound.
  TempTree lists("fan-out-lists");
  for (int i = 0; i < 20; ++i) {
    std::string extends;
    for (int k = i + 1; k <= i + 4 && k < 20; ++k) extends += (extends.empty() ? "" : ", ") + name(k);
    lists.write(name(i), (extends.empty() ? "" : "extends: [" + extends + "]\n") +
                             "devices: [{a: 1}, {a: 2}, {a: 3}]\n");
  }
  result = load_machine((lists.root / name(0)).string(), Environment::fixed({}));
  CHECK(find_message(result.diagnostics, "expand to more than 100000 values"));
}

// `extends: /etc/shadow` echoed each line back as an "unknown key" error.
TEST_CASE("load_machine: a file that is not a machine file is not quoted back") {
  TempTree tree("not-config");
  tree.write("shadow", "root:$6$salt$secrethash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
  std::string path = tree.write("vm.yaml", "extends: shadow\nname: x\n");
  LoadResult result = load_machine(path, Environment::fixed({}));
  const Diagnostic* odd = find_message(result.diagnostics, "not a vmlaunch machine file");
  REQUIRE(odd);
  CHECK(odd->location.file == (tree.root / "shadow").string());
  CHECK(odd->location.line == 1);
  CHECK(odd->hint == "check the extends entry at " + path + ":1:10");
  for (const Diagnostic& d : result.diagnostics) CHECK(d.to_string().find("secrethash") == std::string::npos);
  for (const Diagnostic& d : result.diagnostics) CHECK(d.to_string().find("daemon") == std::string::npos);
  // A typo in a real key is still an unknown key with its did-you-mean.
  std::string typo = tree.write("typo.yaml", "extends: vm.yaml\nmachin e: {}\n");
  CHECK(find_message(load_machine(typo, Environment::fixed({})).diagnostics, "unknown key"));
}

// extends entries were taken literally: "${DIR}/base.yaml" and "~/base.yaml" named no file.
TEST_CASE("load_machine: extends entries expand ${VAR} and ~/ like every other path") {
  TempTree tree("extends-vars");
  tree.write("base.yaml", "name: from-base\n");
  std::string dir = tree.root.string();
  Environment env = Environment::fixed({{"HOME", dir}, {"DIR", dir}, {"EMPTY", ""}});
  for (std::string entry : {"${DIR}/base.yaml", "~/base.yaml", "${NOPE:-base.yaml}", "${EMPTY:-base.yaml}"}) {
    CAPTURE(entry);
    std::string path = tree.write("vm.yaml", "extends: [\"" + entry + "\"]\n");
    LoadResult result = load_machine(path, env);
    CHECK(find_message(result.diagnostics, "cannot read") == nullptr);
    REQUIRE(result.document.find("name"));
    CHECK(result.document.find("name")->as_string() == "from-base");
  }
  std::string unset = tree.write("unset.yaml", "extends: [\"${NOPE}/base.yaml\"]\n");
  const Diagnostic* error = find_message(load_machine(unset, env).diagnostics, "NOPE");
  REQUIRE(error);
  CHECK(error->path == "extends");
  CHECK(error->location.line == 1);
  std::string empty = tree.write("empty.yaml", "extends: [\"${EMPTY}\"]\n");
  CHECK(find_message(load_machine(empty, env).diagnostics, "empty file name"));
}

TEST_CASE("load_machine: a missing base is an error at the extends entry, not an unreadable file") {
  TempTree tree("missing-base");
  std::string path =
      tree.write("vm.yaml", "extends: [nope.yaml]\nmachine: {arch: riscv64, type: virt, memory: 1G}\n");
  LoadResult result = load_machine(path, Environment::fixed({}));
  CHECK(result.readable);
  CHECK_FALSE(result.ok());
  const Diagnostic* missing = find_message(result.diagnostics, "cannot read");
  REQUIRE(missing);
  CHECK(missing->location.line == 1);
  CHECK(missing->location.column == 11);
}

TEST_CASE("load_machine: an unreadable machine file is not 'readable'") {
  LoadResult result = load_machine("/nonexistent/vm.yaml", Environment::fixed({}));
  CHECK_FALSE(result.readable);
  CHECK_FALSE(result.ok());
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].to_string() ==
        "/nonexistent/vm.yaml: cannot read file: No such file or directory");
}

TEST_CASE("load_machine: all problems in one run, sorted by location") {
  TempTree tree("many");
  std::string path =
      tree.write("vm.yaml",
                 "machine: {arch: riscv64, type: virt, memory: 1XB}\n"
                 "boot: {kernel: \"${NOPE}/Image\"}\n"
                 "devices:\n  - {driver: virtio-blk-pci, id: a, drive: d0}\n  - {driver: ns1655, id: a}\n");
  LoadResult result = load_machine(path, Environment::fixed({}));
  std::vector<uint32_t> lines;
  for (const Diagnostic& d : result.diagnostics) lines.push_back(d.location.line);
  CHECK(std::is_sorted(lines.begin(), lines.end()));
  CHECK(find_message(result.diagnostics, "invalid size"));
  CHECK(find_message(result.diagnostics, "NOPE is not set"));
  CHECK(find_message(result.diagnostics, "unknown block backend"));
  CHECK(find_message(result.diagnostics, "unknown driver \"ns1655\""));
  CHECK(find_message(result.diagnostics, "duplicate device id"));
}

TEST_CASE("process_document: works on documents parsed from strings") {
  Node doc = yaml(kBase, "dir/m.yaml");
  Diagnostics diagnostics = process_document(doc, Environment::fixed({}));
  CHECK_MESSAGE(diagnostics.empty(), dump(diagnostics));
  CHECK(doc.find("boot")->find("kernel")->as_string() ==
        (std::filesystem::current_path() / "dir/guests/Image").string());
}

TEST_CASE("resolve_path: absolute, home-relative and file-relative") {
  Environment env = Environment::fixed({{"HOME", "/home/u"}});
  CHECK(resolve_path("/abs/Image", "x/m.yaml", env) == "/abs/Image");
  CHECK(resolve_path("~/Image", "x/m.yaml", env) == "/home/u/Image");
  // Relative files are taken from the current directory: the result is absolute, resolved once.
  const std::string cwd = std::filesystem::current_path().string();
  CHECK(resolve_path("../Image", "x/y/m.yaml", env) == cwd + "/x/Image");
  CHECK(resolve_path("Image", "m.yaml", env) == cwd + "/Image");
  CHECK(resolve_path("../Image", "/a/b/m.yaml", env) == "/a/Image");
  CHECK(resolve_path("~/Image", "m.yaml", Environment::fixed({})) == "~/Image");
}
