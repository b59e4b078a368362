#include "vstate/vm.h"

#include "boot/layout.h"

namespace hearth {

Result<std::unique_ptr<Vm>> Vm::Create(const Kvm& kvm, GuestMemory memory, bool track_dirty_pages) {
  ASSIGN_OR_RETURN(KvmVm kvm_vm, kvm.CreateVm());
  // KVM logs what the vCPUs write; the VMM's own writes (devices) are logged by GuestMemory.
  if (track_dirty_pages) memory.EnableWriteTracking();
  uint32_t slot = 0;
  const uint32_t flags = track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
  for (const auto& region : memory.regions()) {
    RETURN_IF_ERROR(kvm_vm.SetUserMemoryRegion(slot++, region.guest_addr, region.size(),
                                               region.mapping.data(), flags));
  }
  RETURN_IF_ERROR(kvm_vm.SetIdentityMapAddr(layout::kIdentityMapAddr));
  RETURN_IF_ERROR(kvm_vm.SetTssAddr(layout::kTssAddr));
  RETURN_IF_ERROR(kvm_vm.CreateIrqchip());
  RETURN_IF_ERROR(kvm_vm.CreatePit2());
  return std::unique_ptr<Vm>(new Vm(std::move(kvm_vm), std::move(memory), track_dirty_pages));
}

Result<std::vector<std::vector<uint64_t>>> Vm::TakeDirtyBitmaps() {
  if (!track_dirty_pages_) {
    return Error("dirty page tracking is off (enable track_dirty_pages to take Diff snapshots)");
  }
  std::vector<std::vector<uint64_t>> bitmaps = memory_.TakeWrittenBitmaps();
  uint32_t slot = 0;
  for (const auto& region : memory_.regions()) {
    ASSIGN_OR_RETURN(auto bitmap, kvm_vm_.GetDirtyLog(slot, region.size() / 4096));
    std::vector<uint64_t>& merged = bitmaps[slot];
    for (size_t w = 0; w < merged.size() && w < bitmap.size(); ++w) merged[w] |= bitmap[w];
    ++slot;
  }
  return bitmaps;
}

Result<std::shared_ptr<IrqLine>> Vm::CreateIrqLine(uint32_t gsi) {
  ASSIGN_OR_RETURN(EventFd event, EventFd::Create());
  RETURN_IF_ERROR(kvm_vm_.AssignIrqfd(event.get(), gsi));
  return std::make_shared<IrqLine>(std::move(event));
}

}  // namespace hearth
