#include "vstate/vcpu_state.h"

#include <algorithm>

#include "base/hex.h"
#include "base/log.h"

namespace hearth {
namespace {

// kvm-clock and TSC MSRs Linux guests depend on: a snapshot without them cannot keep time.
constexpr uint32_t kMsrIa32Tsc = 0x10;
constexpr uint32_t kMsrKvmSystemTimeNew = 0x4b564d01;
constexpr uint32_t kMsrKvmWallClockNew = 0x4b564d00;
constexpr uint32_t kMsrIa32TscDeadline = 0x6e0;

}  // namespace

Result<std::vector<uint32_t>> SavableMsrs(const Kvm& kvm, const KvmVcpu& probe) {
  ASSIGN_OR_RETURN(std::vector<uint32_t> listed, kvm.GetMsrIndexList());
  for (uint32_t must : {kMsrIa32Tsc, kMsrKvmSystemTimeNew, kMsrKvmWallClockNew}) {
    if (std::find(listed.begin(), listed.end(), must) == listed.end()) listed.push_back(must);
  }
  std::vector<uint32_t> savable;
  savable.reserve(listed.size());
  // One KVM_GET_MSRS per MSR is a few hundred ioctls, once per snapshot: simple and exact
  // about which ones this host refuses.
  std::string refused;
  for (uint32_t index : listed) {
    if (probe.GetMsrs({index}).ok()) {
      savable.push_back(index);
    } else {
      refused += " " + Hex(index);
    }
  }
  LOG_DEBUG("snapshot: " << savable.size() << " of " << listed.size()
                         << " listed MSRs are savable on this host; refused:" << refused);
  return savable;
}

Result<size_t> XsaveSize(const KvmVm& vm) {
  ASSIGN_OR_RETURN(int has_xsave, vm.CheckExtension(KVM_CAP_XSAVE));
  if (has_xsave <= 0) return size_t{0};
  auto size2 = vm.CheckExtension(KVM_CAP_XSAVE2);
  if (size2.ok() && *size2 > static_cast<int>(sizeof(kvm_xsave))) return static_cast<size_t>(*size2);
  return sizeof(kvm_xsave);
}

Result<VcpuState> SaveVcpuState(const KvmVcpu& vcpu, const std::vector<uint32_t>& msrs,
                                size_t xsave_size) {
  const std::string who = "vCPU " + std::to_string(vcpu.id());
  VcpuState s;
  s.id = vcpu.id();
  auto wrap = [&](const Error& e) { return e.Wrap(who); };
  auto cpuid = vcpu.GetCpuid2();
  if (!cpuid.ok()) return wrap(cpuid.error());
  s.cpuid = std::move(cpuid).value();
  auto m = vcpu.GetMsrs(msrs);
  if (!m.ok()) return wrap(m.error());
  s.msrs = std::move(m).value();
#define HEARTH_SAVE(field, call)       \
  do {                                 \
    auto r = (call);                   \
    if (!r.ok()) return wrap(r.error()); \
    s.field = std::move(r).value();    \
  } while (0)
  HEARTH_SAVE(regs, vcpu.GetRegs());
  HEARTH_SAVE(sregs, vcpu.GetSregs());
  HEARTH_SAVE(fpu, vcpu.GetFpu());
  if (xsave_size > 0) {
    HEARTH_SAVE(xsave, vcpu.GetXsave(xsave_size));
    auto xcrs = vcpu.GetXcrs();
    if (xcrs.ok()) {
      s.has_xcrs = true;
      s.xcrs = *xcrs;
    }
  }
  HEARTH_SAVE(debugregs, vcpu.GetDebugRegs());
  HEARTH_SAVE(lapic, vcpu.GetLapic());
  HEARTH_SAVE(mp_state, vcpu.GetMpState());
  HEARTH_SAVE(events, vcpu.GetVcpuEvents());
#undef HEARTH_SAVE
  return s;
}

Status RestoreVcpuState(KvmVcpu& vcpu, const VcpuState& s) {
  const std::string who = "vCPU " + std::to_string(vcpu.id());
  if (s.id != vcpu.id()) {
    return Error(who + ": the snapshot's state is for vCPU " + std::to_string(s.id));
  }
  if (s.cpuid.empty()) return Error(who + ": the snapshot has no CPUID");
  if (s.mp_state > KVM_MP_STATE_AP_RESET_HOLD) {
    return Error(who + ": invalid MP state " + std::to_string(s.mp_state));
  }
  auto step = [&](Status st) -> Status {
    if (!st.ok()) return st.error().Wrap(who);
    return Ok();
  };
  RETURN_IF_ERROR(step(vcpu.SetCpuid2(s.cpuid)));
  RETURN_IF_ERROR(step(vcpu.SetMsrs(s.msrs)));
  RETURN_IF_ERROR(step(vcpu.SetRegs(s.regs)));
  RETURN_IF_ERROR(step(vcpu.SetSregs(s.sregs)));
  if (!s.xsave.empty()) {
    RETURN_IF_ERROR(step(vcpu.SetXsave(s.xsave)));
  } else {
    RETURN_IF_ERROR(step(vcpu.SetFpu(s.fpu)));
  }
  if (s.has_xcrs) {
    RETURN_IF_ERROR(step(vcpu.SetXcrs(s.xcrs)));
  }
  RETURN_IF_ERROR(step(vcpu.SetDebugRegs(s.debugregs)));
  RETURN_IF_ERROR(step(vcpu.SetLapic(s.lapic)));
  // KVM_SET_LAPIC re-arms the LAPIC timer from scratch and drops a TSC-deadline timer set
  // before it: write the deadline again now that the LAPIC is in TSC-deadline mode (as QEMU
  // does), or a guest sleeping on its timer never wakes.
  for (const auto& [index, value] : s.msrs) {
    if (index == kMsrIa32TscDeadline && value != 0) {
      RETURN_IF_ERROR(step(vcpu.SetMsrs({{index, value}})));
    }
  }
  RETURN_IF_ERROR(step(vcpu.SetMpState(s.mp_state)));
  RETURN_IF_ERROR(step(vcpu.SetVcpuEvents(s.events)));
  return Ok();
}

}  // namespace hearth
