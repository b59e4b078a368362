// The VM-wide KVM state: the in-kernel PICs and IOAPIC, the PIT, and kvm-clock.
#pragma once

#include "base/result.h"
#include "kvm/kvm.h"

namespace hearth {

struct VmState {
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

Result<VmState> SaveVmState(const KvmVm& vm);
// Re-checks the chip ids; sets kvm-clock to the saved value, so guest time continues from the
// snapshot with no jump backwards (the time the VM spent saved does not pass for the guest),
// or, with `clock_realtime`, advances it by the host wall-clock time since the save
// (Firecracker's `clock_realtime`).
Status RestoreVmState(KvmVm& vm, const VmState& state, bool clock_realtime = false);

}  // namespace hearth
