#include "accel/catalogue.h"

#include <doctest/doctest.h>

using namespace accel;

TEST_CASE("the catalogue knows the six accelerators in a fixed order") {
  CHECK(known_names() == std::vector<std::string>{"kvm", "jit", "xen", "hvf", "whpx", "nvmm"});
  CHECK(find_known("jit")->guest_arches == std::vector<std::string>{"riscv64"});
  CHECK(find_known("kvm")->guest_arches == std::vector<std::string>{"x86_64"});
  CHECK(find_known("qemu") == nullptr);
}

TEST_CASE("preference keeps the file's order and drops what cannot run the arch") {
  Preference p = prefer({"kvm", "jit"}, "riscv64");
  REQUIRE(p.ok);
  CHECK(p.preferred() == "jit");
  CHECK(p.candidates == std::vector<std::string>{"jit"});
  REQUIRE(p.rejected.size() == 1);
  CHECK(p.rejected[0].name == "kvm");
  CHECK(p.rejected[0].reason == "runs only x86_64 guests");
  CHECK(p.reason == "first of [kvm, jit] that runs riscv64 guests");

  Preference x = prefer({"hvf", "kvm"}, "x86_64");
  REQUIRE(x.ok);
  CHECK(x.candidates == std::vector<std::string>{"hvf", "kvm"});
  CHECK(x.rejected.empty());
}

TEST_CASE("preference without a candidate names every reason") {
  Preference p = prefer({"jit", "qemu"}, "x86_64");
  CHECK_FALSE(p.ok);
  CHECK(p.error ==
        "no accelerator in [jit, qemu] runs x86_64 guests: jit: runs only riscv64 guests; qemu: unknown "
        "accelerator (known: kvm, jit, xen, hvf, whpx, nvmm)");
}

TEST_CASE("an empty preference means every known accelerator, in catalogue order") {
  Preference p = prefer({}, "x86_64");
  REQUIRE(p.ok);
  CHECK(p.candidates == std::vector<std::string>{"kvm", "xen", "hvf", "whpx", "nvmm"});
  CHECK(p.reason == "first known accelerator that runs x86_64 guests");
}
