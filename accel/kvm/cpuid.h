// CPUID for kvm vCPUs: the `host` model (what KVM_GET_SUPPORTED_CPUID offers), the config's feature
// edits ("+x2apic", "-cx16") and the topology leaves (0x1, 0x4, 0xB, AMD 0x80000008/0x8000001E) with
// the APIC ids the MP table and MADT must repeat. Pure functions over a table, so they are tested
// without /dev/kvm.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace accel::kvm {

struct CpuidEntry {
  uint32_t function = 0;
  uint32_t index = 0;
  uint32_t flags = 0;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX when `index` matters
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
using CpuidTable = std::vector<CpuidEntry>;

enum class CpuidReg { Eax, Ebx, Ecx, Edx };

// A named feature bit, as Linux's /proc/cpuinfo flags and QEMU's -cpu options name them.
struct CpuFeature {
  std::string_view name;
  uint32_t function;
  uint32_t index;
  CpuidReg reg;
  unsigned bit;
};
const std::vector<CpuFeature>& cpu_features();
const CpuFeature* find_cpu_feature(std::string_view name);  // accepts '_' or '-' and any case
// Why a `cpu.features` entry ("+avx2", "-x2apic") is not something kvm can edit, or empty; the
// check `validate` runs without the host (whether the host's KVM offers it is `up`'s question).
std::string cpu_feature_problem(const std::string& edit);

CpuidEntry* find_entry(CpuidTable& table, uint32_t function, uint32_t index = 0);
const CpuidEntry* find_entry(const CpuidTable& table, uint32_t function, uint32_t index = 0);
bool feature_bit(const CpuidTable& table, const CpuFeature& feature);

// Applies "+name" / "-name" edits in order. `+` of a bit the host's supported table lacks, an
// unknown name, or a malformed edit is an error naming the feature.
base::Result<void, base::Error> apply_cpu_features(CpuidTable& table, const CpuidTable& supported,
                                                   const std::vector<std::string>& edits);

// What QEMU adds to KVM_GET_SUPPORTED_CPUID for every KVM guest: leaf 1 ECX bit 31 ("hypervisor")
// and the KVM signature leaf 0x40000000 ("KVMKVMKVM", highest leaf 0x40000001). Without the bit Linux
// never looks at the KVM leaves, so it runs without kvm-clock and, on machines without HPET or ACPI
// PM timer (microvm), cannot calibrate its TSC. KVM's own 0x40000001 (paravirt features) is kept.
void add_hypervisor_leaves(CpuidTable& table);

struct CpuTopology {
  unsigned sockets = 1, cores = 1, threads = 1;
};
// The x2APIC id of vCPU `index`: socket | core | thread packed with power-of-two field widths
// (what Linux derives from leaf 0xB), so the ids may have gaps when cores/threads are not powers of 2.
uint32_t apic_id(const CpuTopology& topology, unsigned index);

// Writes the per-vCPU topology leaves into `table` (a copy of the VM's table for one vCPU).
void apply_topology(CpuidTable& table, const CpuTopology& topology, unsigned index);

}  // namespace accel::kvm
