#include "vstate/vm_state.h"

namespace hearth {

Result<VmState> SaveVmState(const KvmVm& vm) {
  VmState s;
  ASSIGN_OR_RETURN(s.pic_master, vm.GetIrqchip(KVM_IRQCHIP_PIC_MASTER));
  ASSIGN_OR_RETURN(s.pic_slave, vm.GetIrqchip(KVM_IRQCHIP_PIC_SLAVE));
  ASSIGN_OR_RETURN(s.ioapic, vm.GetIrqchip(KVM_IRQCHIP_IOAPIC));
  ASSIGN_OR_RETURN(s.pit, vm.GetPit2());
  ASSIGN_OR_RETURN(s.clock, vm.GetClock());
  return s;
}

Status RestoreVmState(KvmVm& vm, const VmState& s, bool clock_realtime) {
  if (s.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || s.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
      s.ioapic.chip_id != KVM_IRQCHIP_IOAPIC) {
    return Error("VM state: interrupt controller ids do not match (PIC master, PIC slave, IOAPIC)");
  }
  RETURN_IF_ERROR(vm.SetPit2(s.pit));
  RETURN_IF_ERROR(vm.SetClock(s.clock, clock_realtime));
  RETURN_IF_ERROR(vm.SetIrqchip(s.pic_master));
  RETURN_IF_ERROR(vm.SetIrqchip(s.pic_slave));
  RETURN_IF_ERROR(vm.SetIrqchip(s.ioapic));
  return Ok();
}

}  // namespace hearth
