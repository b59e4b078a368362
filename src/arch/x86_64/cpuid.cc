#include "arch/x86_64/cpuid.h"

#include <bit>

namespace hearth {
namespace {

constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafCacheParams = 0x4;
constexpr uint32_t kLeafExtendedFeatures = 0x7;
constexpr uint32_t kLeafPerfMon = 0xa;
constexpr uint32_t kLeafTopology = 0xb;

// Leaf 1.
constexpr uint32_t kEcxCx16 = 1u << 13;
constexpr uint32_t kEcxPopcnt = 1u << 23;
constexpr uint32_t kEcxXsave = 1u << 26;
constexpr uint32_t kEcxOsxsave = 1u << 27;
constexpr uint32_t kEcxAvx = 1u << 28;
constexpr uint32_t kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;
// Leaf 7, subleaf 0.
constexpr uint32_t kEbxAvx2 = 1u << 5;
constexpr uint32_t kEbxSmap = 1u << 20;

uint32_t CeilLog2(uint32_t v) { return v <= 1 ? 0 : 32 - static_cast<uint32_t>(std::countl_zero(v - 1)); }

}  // namespace

std::vector<kvm_cpuid_entry2> FilterCpuid(std::vector<kvm_cpuid_entry2> entries,
                                          const CpuidOptions& o) {
  // A single vCPU is one thread of one core, whatever smt says.
  const uint32_t threads_per_core = (o.smt && o.vcpu_count > 1) ? 2 : 1;
  for (auto& e : entries) {
    switch (e.function) {
      case kLeafFeatures:
        // EBX: APIC ID in 31:24, logical processors per package in 23:16.
        e.ebx = (e.ebx & 0xffff) | (o.vcpu_id << 24) | ((o.vcpu_count & 0xff) << 16);
        e.ecx |= kEcxHypervisor;
        if (o.vcpu_count > 1) {
          e.edx |= kEdxHtt;
        } else {
          e.edx &= ~kEdxHtt;
        }
        if (o.hide_unemulated) e.ecx &= ~(kEcxCx16 | kEcxPopcnt | kEcxXsave | kEcxOsxsave | kEcxAvx);
        break;
      case kLeafCacheParams: {
        if ((e.eax & 0x1f) == 0) break;  // No cache at this subleaf.
        uint32_t level = (e.eax >> 5) & 0x7;
        uint32_t sharing = level <= 2 ? threads_per_core : o.vcpu_count;
        uint32_t cores = o.vcpu_count / threads_per_core;
        e.eax = (e.eax & 0x3fff) | ((sharing - 1) << 14) | ((cores - 1) << 26);
        break;
      }
      case kLeafExtendedFeatures:
        if (e.index == 0 && o.hide_unemulated) e.ebx &= ~(kEbxSmap | kEbxAvx2);
        break;
      case kLeafPerfMon:
        e.eax = e.ebx = e.ecx = e.edx = 0;  // No PMU for guests.
        break;
      case kLeafTopology:
        if (e.index == 0) {
          e.eax = CeilLog2(threads_per_core);
          e.ebx = threads_per_core;
          e.ecx = (1u << 8) | e.index;  // Level type 1: SMT.
        } else if (e.index == 1) {
          e.eax = CeilLog2(o.vcpu_count);
          e.ebx = o.vcpu_count;
          e.ecx = (2u << 8) | e.index;  // Level type 2: core.
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;
        }
        e.edx = o.vcpu_id;  // x2APIC ID.
        break;
      default:
        break;
    }
  }
  return entries;
}

}  // namespace hearth
