#include "accel/kvm/cpuid.h"

#include <algorithm>
#include <cctype>

#include "accel/accelerator.h"

namespace accel::kvm {
namespace {

constexpr uint32_t kSignificantIndex = 1;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX

uint32_t& reg_of(CpuidEntry& entry, CpuidReg reg) {
  switch (reg) {
    case CpuidReg::Eax:
      return entry.eax;
    case CpuidReg::Ebx:
      return entry.ebx;
    case CpuidReg::Ecx:
      return entry.ecx;
    case CpuidReg::Edx:
      break;
  }
  return entry.edx;
}

unsigned bits_for(unsigned count) {
  unsigned bits = 0;
  while ((1u << bits) < count) ++bits;
  return bits;
}

std::string normalise(std::string_view name) {
  std::string out;
  for (char c : name) out += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const std::vector<CpuFeature>& cpu_features() {
  using R = CpuidReg;
  static const std::vector<CpuFeature> features = {
      // Leaf 1 EDX
      {"fpu", 1, 0, R::Edx, 0},
      {"vme", 1, 0, R::Edx, 1},
      {"de", 1, 0, R::Edx, 2},
      {"pse", 1, 0, R::Edx, 3},
      {"tsc", 1, 0, R::Edx, 4},
      {"msr", 1, 0, R::Edx, 5},
      {"pae", 1, 0, R::Edx, 6},
      {"mce", 1, 0, R::Edx, 7},
      {"cx8", 1, 0, R::Edx, 8},
      {"apic", 1, 0, R::Edx, 9},
      {"sep", 1, 0, R::Edx, 11},
      {"mtrr", 1, 0, R::Edx, 12},
      {"pge", 1, 0, R::Edx, 13},
      {"mca", 1, 0, R::Edx, 14},
      {"cmov", 1, 0, R::Edx, 15},
      {"pat", 1, 0, R::Edx, 16},
      {"pse36", 1, 0, R::Edx, 17},
      {"clflush", 1, 0, R::Edx, 19},
      {"mmx", 1, 0, R::Edx, 23},
      {"fxsr", 1, 0, R::Edx, 24},
      {"sse", 1, 0, R::Edx, 25},
      {"sse2", 1, 0, R::Edx, 26},
      {"ss", 1, 0, R::Edx, 27},
      {"ht", 1, 0, R::Edx, 28},
      // Leaf 1 ECX
      {"pni", 1, 0, R::Ecx, 0},
      {"sse3", 1, 0, R::Ecx, 0},
      {"pclmulqdq", 1, 0, R::Ecx, 1},
      {"monitor", 1, 0, R::Ecx, 3},
      {"vmx", 1, 0, R::Ecx, 5},
      {"ssse3", 1, 0, R::Ecx, 9},
      {"fma", 1, 0, R::Ecx, 12},
      {"cx16", 1, 0, R::Ecx, 13},
      {"pdcm", 1, 0, R::Ecx, 15},
      {"pcid", 1, 0, R::Ecx, 17},
      {"sse4_1", 1, 0, R::Ecx, 19},
      {"sse4_2", 1, 0, R::Ecx, 20},
      {"x2apic", 1, 0, R::Ecx, 21},
      {"movbe", 1, 0, R::Ecx, 22},
      {"popcnt", 1, 0, R::Ecx, 23},
      {"tsc_deadline_timer", 1, 0, R::Ecx, 24},
      {"aes", 1, 0, R::Ecx, 25},
      {"xsave", 1, 0, R::Ecx, 26},
      {"avx", 1, 0, R::Ecx, 28},
      {"f16c", 1, 0, R::Ecx, 29},
      {"rdrand", 1, 0, R::Ecx, 30},
      {"hypervisor", 1, 0, R::Ecx, 31},
      // Leaf 7.0 EBX / ECX / EDX
      {"fsgsbase", 7, 0, R::Ebx, 0},
      {"bmi1", 7, 0, R::Ebx, 3},
      {"hle", 7, 0, R::Ebx, 4},
      {"avx2", 7, 0, R::Ebx, 5},
      {"smep", 7, 0, R::Ebx, 7},
      {"bmi2", 7, 0, R::Ebx, 8},
      {"erms", 7, 0, R::Ebx, 9},
      {"invpcid", 7, 0, R::Ebx, 10},
      {"rtm", 7, 0, R::Ebx, 11},
      {"avx512f", 7, 0, R::Ebx, 16},
      {"avx512dq", 7, 0, R::Ebx, 17},
      {"rdseed", 7, 0, R::Ebx, 18},
      {"adx", 7, 0, R::Ebx, 19},
      {"smap", 7, 0, R::Ebx, 20},
      {"clflushopt", 7, 0, R::Ebx, 23},
      {"clwb", 7, 0, R::Ebx, 24},
      {"avx512cd", 7, 0, R::Ebx, 28},
      {"sha_ni", 7, 0, R::Ebx, 29},
      {"avx512bw", 7, 0, R::Ebx, 30},
      {"avx512vl", 7, 0, R::Ebx, 31},
      {"umip", 7, 0, R::Ecx, 2},
      {"pku", 7, 0, R::Ecx, 3},
      {"vaes", 7, 0, R::Ecx, 9},
      {"vpclmulqdq", 7, 0, R::Ecx, 10},
      {"rdpid", 7, 0, R::Ecx, 22},
      {"fsrm", 7, 0, R::Edx, 4},
      {"md_clear", 7, 0, R::Edx, 10},
      {"spec_ctrl", 7, 0, R::Edx, 26},
      {"arch_capabilities", 7, 0, R::Edx, 29},
      // Extended leaf 0x80000001 ECX / EDX
      {"lahf_lm", 0x80000001, 0, R::Ecx, 0},
      {"svm", 0x80000001, 0, R::Ecx, 2},
      {"abm", 0x80000001, 0, R::Ecx, 5},
      {"sse4a", 0x80000001, 0, R::Ecx, 6},
      {"misalignsse", 0x80000001, 0, R::Ecx, 7},
      {"3dnowprefetch", 0x80000001, 0, R::Ecx, 8},
      {"xop", 0x80000001, 0, R::Ecx, 11},
      {"fma4", 0x80000001, 0, R::Ecx, 16},
      {"tbm", 0x80000001, 0, R::Ecx, 21},
      {"topoext", 0x80000001, 0, R::Ecx, 22},
      {"syscall", 0x80000001, 0, R::Edx, 11},
      {"nx", 0x80000001, 0, R::Edx, 20},
      {"mmxext", 0x80000001, 0, R::Edx, 22},
      {"pdpe1gb", 0x80000001, 0, R::Edx, 26},
      {"rdtscp", 0x80000001, 0, R::Edx, 27},
      {"lm", 0x80000001, 0, R::Edx, 29},
  };
  return features;
}

const CpuFeature* find_cpu_feature(std::string_view name) {
  std::string wanted = normalise(name);
  for (const CpuFeature& feature : cpu_features())
    if (feature.name == wanted) return &feature;
  return nullptr;
}

CpuidEntry* find_entry(CpuidTable& table, uint32_t function, uint32_t index) {
  for (CpuidEntry& entry : table)
    if (entry.function == function && (entry.index == index || !(entry.flags & kSignificantIndex)))
      return &entry;
  return nullptr;
}

const CpuidEntry* find_entry(const CpuidTable& table, uint32_t function, uint32_t index) {
  return find_entry(const_cast<CpuidTable&>(table), function, index);
}

bool feature_bit(const CpuidTable& table, const CpuFeature& feature) {
  const CpuidEntry* entry = find_entry(table, feature.function, feature.index);
  if (!entry) return false;
  return (reg_of(const_cast<CpuidEntry&>(*entry), feature.reg) >> feature.bit) & 1;
}

std::string cpu_feature_problem(const std::string& edit) {
  if (edit.size() < 2 || (edit[0] != '+' && edit[0] != '-'))
    return "cpu feature \"" + edit + "\" must start with + or - (e.g. -cx16)";
  if (!find_cpu_feature(std::string_view(edit).substr(1)))
    return "cpu feature \"" + edit.substr(1) +
           "\" is not an x86 feature kvm knows (names as in /proc/cpuinfo: cx16, x2apic, avx2, ...)";
  return {};
}

base::Result<void, base::Error> apply_cpu_features(CpuidTable& table, const CpuidTable& supported,
                                                   const std::vector<std::string>& edits) {
  for (const std::string& edit : edits) {
    if (std::string problem = cpu_feature_problem(edit); !problem.empty())
      return base::fail(base::Error(problem));
    const CpuFeature* feature = find_cpu_feature(std::string_view(edit).substr(1));
    CpuidEntry* entry = find_entry(table, feature->function, feature->index);
    if (edit[0] == '+') {
      if (!feature_bit(supported, *feature))
        return base::fail(
            base::Error("cpu feature \"" + std::string(feature->name) +
                        "\" is not supported by this host's KVM (not in KVM_GET_SUPPORTED_CPUID)"));
      if (!entry)
        return base::fail(base::Error("cpu feature \"" + std::string(feature->name) + "\": no CPUID leaf"));
      reg_of(*entry, feature->reg) |= 1u << feature->bit;
    } else if (entry) {
      reg_of(*entry, feature->reg) &= ~(1u << feature->bit);
    }
  }
  return {};
}

void add_hypervisor_leaves(CpuidTable& table) {
  if (CpuidEntry* leaf1 = find_entry(table, 1)) leaf1->ecx |= 1u << 31;
  constexpr uint32_t kSignature = 0x40000000, kFeatures = 0x40000001;
  // "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
  constexpr uint32_t kKvmK = 0x4b4d564b, kVmKv = 0x564b4d56, kM = 0x0000004d;
  const bool has_features = find_entry(table, kFeatures) != nullptr;
  CpuidEntry* signature = find_entry(table, kSignature);
  if (!signature) {
    table.push_back({kSignature, 0, 0, 0, 0, 0, 0});
    signature = &table.back();
  }
  signature->eax = has_features ? kFeatures : kSignature;
  signature->ebx = kKvmK;
  signature->ecx = kVmKv;
  signature->edx = kM;
}

uint32_t apic_id(const CpuTopology& topology, unsigned index) {
  return accel::x86_apic_id({topology.sockets, topology.cores, topology.threads}, index);
}

void apply_topology(CpuidTable& table, const CpuTopology& topology, unsigned index) {
  const unsigned threads = std::max(1u, topology.threads), cores = std::max(1u, topology.cores);
  const unsigned thread_bits = bits_for(threads), core_bits = bits_for(cores);
  const uint32_t id = apic_id(topology, index);
  const unsigned per_package = threads * cores;

  if (CpuidEntry* leaf1 = find_entry(table, 1)) {
    leaf1->ebx = (leaf1->ebx & 0x0000ffff) | ((id & 0xff) << 24) | (std::min(per_package, 255u) << 16);
    if (per_package > 1)
      leaf1->edx |= 1u << 28;  // HTT: leaf 1 EBX[23:16] is valid
    else
      leaf1->edx &= ~(1u << 28);
  }
  // Deterministic cache parameters (Intel): cores per package and threads sharing each cache.
  for (CpuidEntry& entry : table) {
    if (entry.function != 4 || (entry.eax & 0x1f) == 0) continue;
    unsigned level = (entry.eax >> 5) & 7;
    unsigned sharing = level >= 3 ? (1u << (thread_bits + core_bits)) : (1u << thread_bits);
    entry.eax = (entry.eax & 0x3fff) | ((sharing - 1) << 14) | (((1u << core_bits) - 1) << 26);
  }
  // Extended topology: SMT level then core level, each with its x2APIC id shift.
  table.erase(
      std::remove_if(table.begin(), table.end(), [](const CpuidEntry& e) { return e.function == 0xb; }),
      table.end());
  table.push_back({0xb, 0, kSignificantIndex, thread_bits, threads, (1u << 8) | 0, id});
  table.push_back({0xb, 1, kSignificantIndex, thread_bits + core_bits, per_package, (2u << 8) | 1, id});
  table.push_back({0xb, 2, kSignificantIndex, 0, 0, 2, id});
  // AMD: core count and APIC id size, and the extended APIC id leaf.
  if (CpuidEntry* leaf = find_entry(table, 0x80000008))
    leaf->ecx = (leaf->ecx & ~0xf0ffu) | ((thread_bits + core_bits) << 12) | ((per_package - 1) & 0xff);
  if (CpuidEntry* leaf = find_entry(table, 0x8000001e)) {
    unsigned core = (index / threads) % cores, socket = index / (threads * cores);
    leaf->eax = id;
    leaf->ebx = ((threads - 1) << 8) | (core & 0xff);
    leaf->ecx = socket & 0xff;
  }
}

}  // namespace accel::kvm
