// Lock files: inferred addresses survive edits; entries that no longer fit are reported.
#include "graph/lock.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/graph/resolve_helpers.h"

using namespace graph_test;

namespace {

std::string where(const graph::ResolveResult& r, const std::string& id) {
  const graph::Device* d = r.graph.find_device(id);
  REQUIRE_MESSAGE(d != nullptr, id);
  return d->bus + "/" + d->address.to_string();
}

// The lock as `plan --lock` writes it, read back the way `plan`/`up` read it (with locations).
graph::Lock round_trip(const graph::Graph& g) {
  std::string text = graph::lock_to_json(graph::lock_from_graph(g));
  config::Node doc = parse(text, "m.yaml.lock");
  config::Diagnostics diagnostics;
  graph::Lock lock = graph::lock_from_document(doc, diagnostics);
  REQUIRE_MESSAGE(diagnostics.empty(), diagnostics.front().to_string());
  return lock;
}

std::vector<std::string> warnings(const graph::ResolveResult& r) {
  std::vector<std::string> out;
  for (const config::Diagnostic& d : r.diagnostics)
    if (!d.is_error()) out.push_back(d.to_string());
  return out;
}

const std::string kHead = std::string(kRiscv) + kBackends + "devices:\n";

}  // namespace

TEST_CASE("the lock lists exactly the inferred addresses and reads back identically") {
  auto r = resolve_yaml(kHead +
                        "  - {driver: virtio-net-pci, id: n0, netdev: net0}\n"
                        "  - {driver: virtio-blk-pci, id: vda, drive: disk0, bus: pcie.0, addr: 5}\n"
                        "  - {driver: virtio-rng-mmio}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  graph::Lock lock = graph::lock_from_graph(r.graph);
  CHECK(lock.machine == "riscv64/virt");
  REQUIRE(lock.entries.size() == 2);
  CHECK(lock.entries[0].id == "n0");
  CHECK(lock.entries[0].bus == "pcie.0");
  CHECK(lock.entries[0].addr == "01.0");
  CHECK(lock.entries[1].id == "virtio-rng-mmio.0");
  CHECK(lock.entries[1].addr == "0");
  CHECK(graph::lock_to_json(lock) ==
        "{\n  \"vmlaunch-lock\": 1,\n  \"machine\": \"riscv64/virt\",\n  \"devices\": [\n"
        "    {\"id\": \"n0\", \"driver\": \"virtio-net-pci\", \"bus\": \"pcie.0\", \"addr\": \"01.0\"},\n"
        "    {\"id\": \"virtio-rng-mmio.0\", \"driver\": \"virtio-rng-mmio\", \"bus\": \"virtio-mmio\", "
        "\"addr\": \"0\"}\n"
        "  ]\n}\n");
  graph::Lock back = round_trip(r.graph);
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[1].location.to_string() == "m.yaml.lock:6:5");
  CHECK(graph::lock_path_for("dir/m.yaml") == "dir/m.yaml.lock");
}

TEST_CASE("removing a device never moves the others when a lock exists") {
  auto before = resolve_yaml(kHead +
                             "  - {driver: virtio-net-pci, id: n0, netdev: net0}\n"
                             "  - {driver: virtio-net-pci, id: n1, netdev: net1}\n"
                             "  - {driver: virtio-blk-pci, id: vda, drive: disk0}\n");
  REQUIRE(before.ok());
  CHECK(where(before, "vda") == "pcie.0/03.0");
  graph::Lock lock = round_trip(before.graph);

  std::string edited = kHead +
                       "  - {driver: virtio-net-pci, id: n1, netdev: net1}\n"
                       "  - {driver: virtio-blk-pci, id: vda, drive: disk0}\n";
  auto unlocked = resolve_yaml(edited);
  CHECK(where(unlocked, "vda") == "pcie.0/02.0");  // without the lock it would move
  auto locked = resolve_yaml(edited, &lock);
  REQUIRE_MESSAGE(locked.ok(), diagnostics_text(locked));
  CHECK(where(locked, "n1") == "pcie.0/02.0");
  CHECK(where(locked, "vda") == "pcie.0/03.0");
  CHECK(locked.graph.find_device("vda")->address_locked);
  // The removed device's entry is reported where the lock file says it, not dropped silently.
  CHECK(warnings(locked) ==
        std::vector<std::string>{
            "m.yaml.lock:5:5: warning: stale lock entry for \"n0\": no device with this id in the "
            "config any more (`vmlaunch plan --lock` rewrites the lock file)"});
}

TEST_CASE("adding a device never moves the others when a lock exists") {
  auto before = resolve_yaml(kHead +
                             "  - {driver: virtio-net-pci, id: n0, netdev: net0}\n"
                             "  - {driver: virtio-blk-pci, id: vda, drive: disk0}\n"
                             "  - {driver: virtio-rng-mmio, id: rng}\n");
  REQUIRE(before.ok());
  graph::Lock lock = round_trip(before.graph);
  std::string edited = kHead +
                       "  - {driver: virtio-net-pci, id: new, netdev: net1}\n"
                       "  - {driver: virtio-rng-mmio, id: rng2}\n"
                       "  - {driver: virtio-net-pci, id: n0, netdev: net0}\n"
                       "  - {driver: virtio-blk-pci, id: vda, drive: disk0}\n"
                       "  - {driver: virtio-rng-mmio, id: rng}\n";
  auto unlocked = resolve_yaml(edited);
  CHECK(where(unlocked, "n0") == "pcie.0/02.0");
  auto locked = resolve_yaml(edited, &lock);
  REQUIRE_MESSAGE(locked.ok(), diagnostics_text(locked));
  CHECK(warnings(locked).empty());
  CHECK(where(locked, "n0") == where(before, "n0"));
  CHECK(where(locked, "vda") == where(before, "vda"));
  CHECK(where(locked, "rng") == where(before, "rng"));
  CHECK(where(locked, "new") == "pcie.0/03.0");  // the lowest slot nobody holds
  CHECK(where(locked, "rng2") == "virtio-mmio/1");
  CHECK_FALSE(locked.graph.find_device("new")->address_locked);
}

TEST_CASE("stale lock entries: bus gone, slot now explicit elsewhere, driver changed, listed twice") {
  auto before = resolve_yaml(kHead +
                             "  - {driver: pci-bridge, id: br1, addr: 9}\n"
                             "  - {driver: virtio-net-pci, id: n0, netdev: net0, bus: br1}\n"
                             "  - {driver: virtio-net-pci, id: n1, netdev: net1}\n"
                             "  - {driver: virtio-rng-pci, id: r0}\n");
  REQUIRE(before.ok());
  CHECK(where(before, "n1") == "pcie.0/01.0");
  graph::Lock lock = round_trip(before.graph);
  lock.entries.push_back(lock.entries.back());  // r0 twice

  auto after = resolve_yaml(kHead +
                                "  - {driver: virtio-net-pci, id: n0, netdev: net0}\n"
                                "  - {driver: virtio-blk-pci, id: vda, drive: disk0, addr: 1}\n"
                                "  - {driver: virtio-net-pci, id: n1, netdev: net1}\n"
                                "  - {driver: virtio-blk-pci, id: r0, drive: disk1}\n",
                            &lock);
  REQUIRE_MESSAGE(after.ok(), diagnostics_text(after));
  auto w = warnings(after);
  REQUIRE_MESSAGE(w.size() == 5, diagnostics_text(after));
  // br1 had an address but no bus, so the lock held it too.
  CHECK(w[0].find("stale lock entry for \"br1\": no device with this id") != std::string::npos);
  w.erase(w.begin());
  CHECK(w[0].find("stale lock entry for \"n0\": bus \"br1\" no longer exists") != std::string::npos);
  CHECK(w[1].find("stale lock entry for \"n1\": \"pcie.0\" 01.0 is already taken by \"vda\"") !=
        std::string::npos);
  CHECK(
      w[2].find(
          "stale lock entry for \"r0\": the device is now a virtio-blk-pci, the lock has a virtio-rng-pci") !=
      std::string::npos);
  CHECK(w[3].find("stale lock entry for \"r0\": listed twice") != std::string::npos);
  CHECK(w[0].rfind("m.yaml.lock:", 0) == 0);
  // Stale devices are placed again by the normal rules.
  CHECK(where(after, "n0") == "pcie.0/02.0");
  CHECK(where(after, "n1") == "pcie.0/03.0");
}

TEST_CASE("a lock written for another machine type is reported and ignored") {
  auto before = resolve_yaml(std::string(kPc) + "devices:\n  - {driver: virtio-rng-pci, id: r}\n");
  REQUIRE(before.ok());
  graph::Lock lock = round_trip(before.graph);
  auto after = resolve_yaml(kHead + "  - {driver: virtio-rng-pci, id: r}\n", &lock);
  REQUIRE_MESSAGE(after.ok(), diagnostics_text(after));
  CHECK(warnings(after) ==
        std::vector<std::string>{
            "m.yaml.lock:1:1: machine: warning: the lock file was written for x86_64/pc, this is "
            "riscv64/virt; none of its addresses apply (`vmlaunch plan --lock` rewrites the lock "
            "file)"});
  CHECK_FALSE(after.graph.find_device("r")->address_locked);
}

TEST_CASE("a malformed lock file is an error that says how to recover") {
  config::Diagnostics diagnostics;
  graph::lock_from_document(parse("{\"vmlaunch-lock\": 7, \"devices\": []}", "x.lock"), diagnostics);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].to_string() ==
        "x.lock:1:19: vmlaunch-lock: unsupported lock file version (delete the lock file and run `vmlaunch "
        "plan "
        "--lock` again)");
  diagnostics.clear();
  graph::Lock lock = graph::lock_from_document(
      parse(
          "{\"vmlaunch-lock\": 1, \"devices\": [{\"id\": \"a\"}, {\"id\": \"b\", \"driver\": \"d\", \"bus\": "
          "\"pci.0\", \"addr\": \"01.0\"}]}",
          "x.lock"),
      diagnostics);
  CHECK(diagnostics.size() == 1);
  CHECK(lock.entries.size() == 1);
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

// `plan --lock /dev/stdin` wrote /dev/stdin.lock, and a symlinked lock file was written through.
TEST_CASE("lock files are written atomically, only as regular files next to a regular config") {
  namespace fs = std::filesystem;
  const char* tmp = getenv("TEST_TMPDIR");
  fs::path dir = fs::path(tmp ? tmp : "/tmp") / ("lock-write-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string config = (dir / "m.yaml").string();
  std::ofstream(config) << "name: m\n";

  auto written = graph::write_lock_file(config, "{\"vmlaunch-lock\": 1}\n");
  REQUIRE(written.ok());
  CHECK(*written == config + ".lock");
  CHECK(slurp(*written) == "{\"vmlaunch-lock\": 1}\n");
  CHECK((fs::status(*written).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read));
  // Rewriting replaces it and leaves no temporary files behind.
  REQUIRE(graph::write_lock_file(config, "second\n").ok());
  CHECK(slurp(*written) == "second\n");
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 2);

  // Not next to stdin or a device.
  auto from_stdin = graph::write_lock_file("-", "x");
  REQUIRE_FALSE(from_stdin.ok());
  CHECK(from_stdin.error().message == "a machine file read from stdin has no lock file");
  auto device = graph::write_lock_file("/dev/null", "x");
  REQUIRE_FALSE(device.ok());
  CHECK(device.error().message.find("/dev/null is not a regular file") == 0);
  CHECK_FALSE(fs::exists("/dev/null.lock"));
  if (fs::is_regular_file("/dev/stdin")) {  // stdin redirected from a file: still not next to it
    auto in_dev = graph::write_lock_file("/dev/stdin", "x");
    REQUIRE_FALSE(in_dev.ok());
    CHECK(in_dev.error().message.find("is not a machine file in a directory") != std::string::npos);
  }
  {
    // The same through /proc: a regular file by stat, but in /proc/self/fd.
    int fd = ::open(config.c_str(), O_RDONLY);
    std::string via_proc = "/proc/self/fd/" + std::to_string(fd);
    auto in_proc = graph::write_lock_file(via_proc, "x");
    ::close(fd);
    REQUIRE_FALSE(in_proc.ok());
    CHECK(in_proc.error().message.find("is not a machine file in a directory") != std::string::npos);
  }

  // Not through a symlink: the link's target keeps its content.
  std::string target = (dir / "elsewhere.txt").string();
  std::ofstream(target) << "keep";
  std::string linked = (dir / "l.yaml").string();
  std::ofstream(linked) << "name: l\n";
  fs::create_symlink(target, linked + ".lock");
  auto through = graph::write_lock_file(linked, "x");
  REQUIRE_FALSE(through.ok());
  CHECK(through.error().message.find("exists and is not a regular file") != std::string::npos);
  CHECK(slurp(target) == "keep");
  fs::remove_all(dir);
}
