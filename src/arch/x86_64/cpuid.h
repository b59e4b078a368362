// The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC ID and topology filled in,
// the hypervisor bit set and the PMU hidden. On hosts that cannot emulate some instructions,
// the features that would use them are cleared too (where KVM lets us).
#pragma once

#include "kvm/kvm_uapi.h"

#include <cstdint>
#include <vector>

namespace hearth {

struct CpuidOptions {
  uint32_t vcpu_id = 0;
  uint32_t vcpu_count = 1;
  bool smt = false;
  // Clear CX16, POPCNT, XSAVE/AVX and SMAP: instructions the host's emulator cannot run.
  bool hide_unemulated = false;
};

std::vector<kvm_cpuid_entry2> FilterCpuid(std::vector<kvm_cpuid_entry2> entries,
                                          const CpuidOptions& options);

}  // namespace hearth
