// Everything KVM holds for one x86_64 vCPU, as a plain struct: what a snapshot saves and
// restores. Read with the vCPU paused (Vcpu::Pause), from any thread.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "base/result.h"
#include "kvm/kvm.h"

namespace hearth {

struct VcpuState {
  uint32_t id = 0;
  std::vector<kvm_cpuid_entry2> cpuid;
  std::vector<std::pair<uint32_t, uint64_t>> msrs;
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  std::vector<uint8_t> xsave;  // Empty when the host has no XSAVE.
  bool has_xcrs = false;
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  kvm_lapic_state lapic{};
  uint32_t mp_state = 0;
  kvm_vcpu_events events{};
};

// Which MSRs a vCPU of this host can save: KVM_GET_MSR_INDEX_LIST minus those KVM_GET_MSRS
// refuses on `probe` (nested hosts such as kvm_pvm list some they cannot read). Computed once
// per snapshot.
Result<std::vector<uint32_t>> SavableMsrs(const Kvm& kvm, const KvmVcpu& probe);

// How KVM sizes the XSAVE area (KVM_CAP_XSAVE2), 0 without KVM_CAP_XSAVE.
Result<size_t> XsaveSize(const KvmVm& vm);

Result<VcpuState> SaveVcpuState(const KvmVcpu& vcpu, const std::vector<uint32_t>& msrs,
                                size_t xsave_size);
// In the order KVM needs: CPUID first (it shapes what the MSRs and XSAVE accept), MSRs,
// registers, XSAVE/XCRs, debug registers, LAPIC, MP state, and events last (they may refer to
// the state before them).
Status RestoreVcpuState(KvmVcpu& vcpu, const VcpuState& state);

}  // namespace hearth
