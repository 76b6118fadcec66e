// `mounts:` resolve into a virtio-9p device and an fs backend each, chosen from the file alone.
#include "graph/mounts.h"

#include <doctest/doctest.h>

#include "tests/graph/resolve_helpers.h"

using namespace graph_test;

namespace {

const graph::Device* device(const graph::ResolveResult& r, const std::string& id) {
  return r.graph.find_device(id);
}

bool readonly_of(const graph::Backend& b) {
  const config::Node* n = b.options.find("readonly");
  return n && n->is_bool() && n->as_bool();
}

}  // namespace

TEST_CASE("mounts become virtio-9p-pci devices with fs backends on a machine with PCI") {
  auto r = resolve_yaml(std::string(kRiscv) +
                        "mounts:\n"
                        "  - {location: /srv/src, tag: src, writable: true}\n"
                        "  - {location: /srv/docs, tag: docs, type: 9p}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  const graph::Device* src = device(r, "mount-src");
  REQUIRE(src);
  CHECK(src->driver == "virtio-9p-pci");
  CHECK(src->bus == "pcie.0");
  CHECK(src->string_property("mount_tag") == "src");
  REQUIRE(src->backend("fsdev"));
  CHECK(src->backend("fsdev")->name == "mount-src");
  CHECK(src->location.line == 5);  // the mount entry, for every later message about it
  const graph::Backend* b = r.graph.find_backend("mount-src");
  REQUIRE(b);
  CHECK(b->kind == graph::BackendKind::Fs);
  CHECK(b->driver == "local");
  CHECK(b->options.find("path")->as_string() == "/srv/src");
  CHECK_FALSE(readonly_of(*b));
  REQUIRE(r.graph.find_backend("mount-docs"));
  CHECK(readonly_of(*r.graph.find_backend("mount-docs")));  // read-only unless writable: true
  CHECK(device(r, "mount-docs")->address.slot != src->address.slot);
}

TEST_CASE("mounts use virtio-mmio on a machine without PCI") {
  auto r = resolve_yaml(std::string(kMicrovm) + "mounts:\n  - {location: /srv, tag: srv}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  REQUIRE(device(r, "mount-srv"));
  CHECK(device(r, "mount-srv")->driver == "virtio-9p-mmio");
}

TEST_CASE("virtiofs mounts become vhost-user-fs devices with a virtiofsd backend") {
  auto r = resolve_yaml(std::string(kRiscv) +
                        "mounts:\n  - {location: /srv, tag: srv, type: virtiofs, writable: true}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  const auto* d = device(r, "mount-srv");
  REQUIRE(d);
  CHECK(d->driver == "vhost-user-fs-pci");
  const auto* b = r.graph.find_backend("mount-srv");
  REQUIRE(b);
  CHECK(b->driver == "virtiofsd");
  CHECK_FALSE(readonly_of(*b));
  auto mmio =
      resolve_yaml(std::string(kMicrovm) + "mounts:\n  - {location: /srv, tag: srv, type: virtiofs}\n");
  REQUIRE_MESSAGE(mmio.ok(), diagnostics_text(mmio));
  CHECK(device(mmio, "mount-srv")->driver == "vhost-user-fs-mmio");
  CHECK(readonly_of(*mmio.graph.find_backend("mount-srv")));
}

TEST_CASE("mount entries that cannot take effect are errors at their place") {
  auto r = resolve_yaml(std::string(kRiscv) +
                        "mounts:\n"
                        "  - {location: /a, tag: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, type: virtiofs}\n"
                        "  - {location: /b, tag: b}\n"
                        "  - {location: /c, tag: b}\n");
  std::string text = diagnostics_text(r);
  CHECK_FALSE(r.ok());
  CHECK(text.find("m.yaml:5:25: mounts[0].tag: a virtiofs tag is at most 36 bytes") != std::string::npos);
  CHECK(text.find("m.yaml:7:25: mounts[2].tag: duplicate mount tag \"b\"") != std::string::npos);
  CHECK(device(r, "mount-b"));
  CHECK_FALSE(device(r, "mount-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

TEST_CASE("a mount's generated names clash with the file's own") {
  auto taken = resolve_yaml(std::string(kRiscv) +
                            "backends: {fs: {mount-x: {driver: local, path: /x}}}\n"
                            "mounts:\n  - {location: /y, tag: x}\n");
  CHECK_FALSE(taken.ok());
  CHECK(diagnostics_text(taken).find("which backends.fs already uses") != std::string::npos);
  auto id = resolve_yaml(std::string(kRiscv) +
                         "backends: {fs: {share: {driver: local, path: /x}}}\n"
                         "devices:\n  - {driver: virtio-9p-pci, id: mount-y, fsdev: share, mount_tag: t}\n"
                         "mounts:\n  - {location: /y, tag: y}\n");
  CHECK_FALSE(id.ok());
  CHECK(diagnostics_text(id).find("duplicate device id \"mount-y\"") != std::string::npos);
}

TEST_CASE("virtio-9p written as a device and an fs backend, as QEMU users write it") {
  auto r = resolve_yaml(std::string(kRiscv) +
                        "backends: {fs: {share: {driver: local, path: /x, readonly: true}}}\n"
                        "devices:\n  - {driver: virtio-9p-mmio, id: p9, fsdev: share, mount_tag: host}\n");
  REQUIRE_MESSAGE(r.ok(), diagnostics_text(r));
  CHECK(device(r, "p9")->bus == "virtio-mmio");
  CHECK(r.graph.find_backend("share")->used_by == std::vector<std::string>{"p9"});
}
