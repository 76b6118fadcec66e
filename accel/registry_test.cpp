#include "accel/registry.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

using namespace accel;

namespace {

Registry fake_registry(bool kvm_usable) {
  Registry r;
  r.add({"kvm", "fake kvm", {"x86_64"}, [kvm_usable] {
           return kvm_usable ? Availability{true, "fake ok"}
                             : Availability{false, "/dev/kvm: Permission denied"};
         }});
  r.add({"jit", "fake jit", {"riscv64"}, [] { return Availability{true, "interpreter"}; }});
  r.add({"hvf", "fake hvf", {"x86_64"}, [] { return Availability{false, "macOS only"}; }});
  return r;
}

}  // namespace

TEST_CASE("the builtin registry knows the six accelerators in a fixed order") {
  CHECK(Registry::builtin().names() == std::vector<std::string>{"kvm", "jit", "xen", "hvf", "whpx", "nvmm"});
  for (const char* name : {"xen", "hvf", "whpx", "nvmm"}) {
    Availability a = Registry::builtin().find(name)->probe();
    CHECK_FALSE(a.usable);
    CHECK(a.detail.find("not available on a Linux host") != std::string::npos);
  }
}

TEST_CASE("jit reports the LLVM version it was built against and runs riscv64") {
  Availability a = probe_jit();
  CHECK(a.usable);
  CHECK(llvm_version().rfind("19.", 0) == 0);
  CHECK(a.detail.find("LLVM " + llvm_version()) != std::string::npos);
  CHECK(Registry::builtin().find("jit")->guest_arches == std::vector<std::string>{"riscv64"});
}

TEST_CASE("kvm probe says exactly what failed for a missing device") {
  Availability a = probe_kvm("/nonexistent/kvm");
  CHECK_FALSE(a.usable);
  CHECK(a.detail == "/nonexistent/kvm: No such file or directory");
}

TEST_CASE("kvm probe on a file that is not /dev/kvm reports the failing ioctl") {
  Availability a = probe_kvm("/dev/null");
  CHECK_FALSE(a.usable);
  CHECK(a.detail.rfind("KVM_GET_API_VERSION on /dev/null: ", 0) == 0);
}

TEST_CASE("kvm probe agrees with the host's /dev/kvm") {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    Availability a = probe_kvm();
    CHECK_FALSE(a.usable);
    CHECK(a.detail == std::string("/dev/kvm: ") + std::strerror(errno));
    return;
  }
  ::close(fd);
  Availability a = probe_kvm();
  CHECK(a.usable);
  CHECK(a.detail == "KVM API 12 on /dev/kvm");
}

TEST_CASE("selection takes the first usable accelerator that runs the arch") {
  Registry r = fake_registry(true);
  Selection s = r.select({"kvm", "jit"}, "riscv64");
  REQUIRE(s.ok);
  CHECK(s.name == "jit");
  REQUIRE(s.rejected.size() == 1);
  CHECK(s.rejected[0].name == "kvm");
  CHECK(s.rejected[0].reason == "does not run riscv64 guests (only x86_64)");
  CHECK(s.reason == "first usable of [kvm, jit] for riscv64: interpreter");

  Selection x = r.select({"kvm", "jit"}, "x86_64");
  REQUIRE(x.ok);
  CHECK(x.name == "kvm");
  CHECK(x.rejected.empty());
}

TEST_CASE("selection without a usable candidate names every candidate's reason") {
  Registry r = fake_registry(false);
  Selection s = r.select({"hvf", "kvm", "jit", "qemu"}, "x86_64");
  CHECK_FALSE(s.ok);
  CHECK(s.rejected.size() == 4);
  CHECK(s.error ==
        "no usable accelerator for x86_64 guests: hvf: macOS only; kvm: /dev/kvm: Permission denied; "
        "jit: does not run x86_64 guests (only riscv64); qemu: unknown accelerator (known: kvm, jit, hvf)");
}

TEST_CASE("an empty preference tries every known accelerator in order") {
  Selection s = fake_registry(false).select({}, "riscv64");
  REQUIRE(s.ok);
  CHECK(s.name == "jit");
  CHECK(s.rejected.size() == 1);
}

namespace {
struct NullAccelerator : Accelerator {
  std::string_view name() const override { return "null"; }
  std::vector<std::string> guest_arches() const override { return {"riscv64"}; }
  Availability probe() const override { return {true, "always"}; }
  AccelResult<std::unique_ptr<Vm>> create_vm(const VmSpec&, const base::GuestMemory&, VmOps&) override {
    return base::fail(AccelError("not a real accelerator"));
  }
};
}  // namespace

TEST_CASE("implementations plug in through factories") {
  Registry r = fake_registry(true);
  CHECK_FALSE(r.has_factory("jit"));
  CHECK(r.create("jit") == nullptr);
  r.set_factory("jit", [] { return std::make_unique<NullAccelerator>(); });
  CHECK(r.has_factory("jit"));
  auto created = r.create("jit");
  REQUIRE(created);
  CHECK(created->name() == "null");
}
