#include "accel/kvm/cpuid.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <string>

using namespace accel::kvm;

namespace {
// A small host table: leaf 1 with cx16 and x2apic, leaf 7 without avx512f, AMD 0x80000008.
CpuidTable host_table() {
  return {
      {0, 0, 0, 0x1c, 0, 0, 0},    {1, 0, 0, 0x00a10f11, 0x00000800, (1u << 13) | (1u << 21), 1u << 9},
      {4, 0, 1, 0x121, 0, 0, 0},   {4, 1, 1, 0x163, 0, 0, 0},
      {7, 0, 1, 0, 1u << 5, 0, 0}, {0x80000008, 0, 0, 0x3030, 0, 0, 0},
  };
}
}  // namespace

TEST_CASE("feature edits clear and set bits the host supports") {
  CpuidTable host = host_table();
  CpuidTable table = host;
  table[1].ecx &= ~(1u << 21);  // pretend x2apic was off
  REQUIRE(apply_cpu_features(table, host, {"-cx16", "+x2apic"}).ok());
  CHECK_FALSE(feature_bit(table, *find_cpu_feature("cx16")));
  CHECK(feature_bit(table, *find_cpu_feature("x2apic")));
  CHECK(feature_bit(table, *find_cpu_feature("AVX2")));  // untouched, any case
}

TEST_CASE("an unknown feature name is an error naming it") {
  CpuidTable host = host_table(), table = host;
  auto result = apply_cpu_features(table, host, {"+warp-drive"});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("warp-drive") != std::string::npos);
}

TEST_CASE("a feature the host lacks cannot be added") {
  CpuidTable host = host_table(), table = host;
  auto result = apply_cpu_features(table, host, {"+avx512f"});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("not supported by this host") != std::string::npos);
  // Removing a feature the host lacks is harmless.
  CHECK(apply_cpu_features(table, host, {"-avx512f"}).ok());
}

TEST_CASE("edits must be signed") {
  CpuidTable host = host_table(), table = host;
  CHECK_FALSE(apply_cpu_features(table, host, {"cx16"}).ok());
}

TEST_CASE("APIC ids pack socket, core and thread with power-of-two widths") {
  CpuTopology t{2, 3, 2};  // 2 threads: 1 bit; 3 cores: 2 bits
  CHECK(apic_id(t, 0) == 0);
  CHECK(apic_id(t, 1) == 1);
  CHECK(apic_id(t, 2) == 2);  // core 1 thread 0
  CHECK(apic_id(t, 5) == 5);  // core 2 thread 1
  CHECK(apic_id(t, 6) == 8);  // socket 1
  CHECK(apic_id({1, 1, 1}, 3) == 3);
}

TEST_CASE("topology shows in leaves 1, 4, 0xB and 0x80000008") {
  CpuidTable table = host_table();
  apply_topology(table, {1, 2, 2}, 3);
  const CpuidEntry* leaf1 = find_entry(table, 1);
  CHECK((leaf1->ebx >> 24) == 3);
  CHECK(((leaf1->ebx >> 16) & 0xff) == 4);
  CHECK(((leaf1->edx >> 28) & 1) == 1);
  const CpuidEntry* l1d = find_entry(table, 4, 0);
  CHECK((l1d->eax >> 26) == 1);            // 2 cores per package
  CHECK(((l1d->eax >> 14) & 0xfff) == 1);  // L1 shared by 2 threads
  const CpuidEntry* l3 = find_entry(table, 4, 1);
  CHECK(((l3->eax >> 14) & 0xfff) == 3);
  const CpuidEntry* smt = find_entry(table, 0xb, 0);
  const CpuidEntry* core = find_entry(table, 0xb, 1);
  REQUIRE(smt);
  REQUIRE(core);
  CHECK(smt->eax == 1);
  CHECK(smt->ebx == 2);
  CHECK(core->eax == 2);
  CHECK(core->ebx == 4);
  CHECK(core->edx == 3);
  CHECK((find_entry(table, 0x80000008)->ecx & 0xff) == 3);
}

TEST_CASE("the hypervisor bit and the KVM signature leaf are added; -hypervisor takes the bit away") {
  CpuidTable supported = host_table();
  supported.push_back({0x40000001, 0, 0, 1u << 3, 0, 0, 0});  // KVM_FEATURE_CLOCKSOURCE2
  add_hypervisor_leaves(supported);
  CHECK(feature_bit(supported, *find_cpu_feature("hypervisor")));
  const CpuidEntry* signature = find_entry(supported, 0x40000000);
  REQUIRE(signature);
  char vendor[13] = {};
  std::memcpy(vendor, &signature->ebx, 4);
  std::memcpy(vendor + 4, &signature->ecx, 4);
  std::memcpy(vendor + 8, &signature->edx, 4);
  CHECK(std::string(vendor) == "KVMKVMKVM");
  CHECK(signature->eax == 0x40000001);
  CHECK(find_entry(supported, 0x40000001)->eax == 1u << 3);  // KVM's paravirt features untouched
  CpuidTable table = supported;
  REQUIRE(apply_cpu_features(table, supported, {"-hypervisor"}).ok());
  CHECK_FALSE(feature_bit(table, *find_cpu_feature("hypervisor")));
  // Twice is the same as once (no second signature leaf).
  add_hypervisor_leaves(supported);
  CHECK(std::count_if(supported.begin(), supported.end(),
                      [](const CpuidEntry& e) { return e.function == 0x40000000; }) == 1);
}
