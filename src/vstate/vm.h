// A KVM VM with its guest memory registered, the in-kernel interrupt controllers (PIC, IOAPIC,
// LAPICs) and PIT, and interrupt lines backed by irqfd.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

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
  // With `track_dirty_pages`, KVM logs guest writes per page (for Diff snapshots).
  static Result<std::unique_ptr<Vm>> Create(const Kvm& kvm, GuestMemory memory,
                                            bool track_dirty_pages = false);

  GuestMemory& memory() { return memory_; }
  KvmVm& kvm_vm() { return kvm_vm_; }
  Result<std::shared_ptr<IrqLine>> CreateIrqLine(uint32_t gsi);
  bool tracks_dirty_pages() const { return track_dirty_pages_; }
  // One bitmap per memory region (slot = region index) of the pages the vCPUs wrote since the
  // last call (or since the VM was created); resets the log.
  Result<std::vector<std::vector<uint64_t>>> TakeDirtyBitmaps();

 private:
  Vm(KvmVm kvm_vm, GuestMemory memory, bool track_dirty_pages)
      : kvm_vm_(std::move(kvm_vm)), memory_(std::move(memory)), track_dirty_pages_(track_dirty_pages) {}
  KvmVm kvm_vm_;
  GuestMemory memory_;
  bool track_dirty_pages_;
};

}  // namespace hearth
