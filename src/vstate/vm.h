// A KVM VM with its guest memory registered, the in-kernel interrupt controllers (PIC, IOAPIC,
// LAPICs) and PIT, and interrupt lines backed by irqfd.
#pragma once

#include <cstdint>
#include <memory>

#include "base/fd.h"
#include "base/result.h"
#include "devices/trigger.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"

namespace hearth {

// An interrupt line: firing it writes the eventfd that KVM routes to a GSI.
class IrqLine : public Trigger {
 public:
  explicit IrqLine(EventFd event) : event_(std::move(event)) {}
  void Fire() override { (void)event_.Signal(); }
  int fd() const { return event_.get(); }

 private:
  EventFd event_;
};

class Vm {
 public:
  static Result<std::unique_ptr<Vm>> Create(const Kvm& kvm, GuestMemory memory);

  GuestMemory& memory() { return memory_; }
  KvmVm& kvm_vm() { return kvm_vm_; }
  Result<std::shared_ptr<IrqLine>> CreateIrqLine(uint32_t gsi);

 private:
  Vm(KvmVm kvm_vm, GuestMemory memory) : kvm_vm_(std::move(kvm_vm)), memory_(std::move(memory)) {}
  KvmVm kvm_vm_;
  GuestMemory memory_;
};

}  // namespace hearth
