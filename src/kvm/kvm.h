// Typed wrappers for every KVM ioctl Hearth uses: one class per fd level (system, VM, vCPU),
// one method per ioctl, each error naming the ioctl. Nothing outside src/kvm calls ioctl on a
// KVM fd.
#pragma once

#include "kvm/kvm_uapi.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/mmap.h"
#include "base/result.h"

namespace hearth {

class KvmVm;
class KvmVcpu;

class Kvm {
 public:
  static constexpr const char* kDefaultPath = "/dev/kvm";

  // Opens the device and checks the API version and every capability Hearth relies on.
  static Result<Kvm> Open(const std::string& path = kDefaultPath);

  Result<int> CheckExtension(long capability) const;
  Result<std::vector<kvm_cpuid_entry2>> GetSupportedCpuid() const;
  // The MSRs KVM can save and restore for a vCPU (KVM_GET_MSR_INDEX_LIST).
  Result<std::vector<uint32_t>> GetMsrIndexList() const;
  Result<KvmVm> CreateVm() const;
  const std::string& path() const { return path_; }

 private:
  Kvm(Fd fd, std::string path, size_t run_size) : fd_(std::move(fd)), path_(std::move(path)), run_size_(run_size) {}
  Fd fd_;
  std::string path_;
  size_t run_size_;
};

class KvmVm {
 public:
  // `flags`: KVM_MEM_LOG_DIRTY_PAGES to track writes for Diff snapshots.
  Status SetUserMemoryRegion(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host_addr,
                             uint32_t flags = 0);
  // The pages of `slot` written since the last call, one bit per page, `pages` bits
  // (KVM_GET_DIRTY_LOG; clears the log).
  Result<std::vector<uint64_t>> GetDirtyLog(uint32_t slot, uint64_t pages);
  // KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE or KVM_IRQCHIP_IOAPIC.
  Result<kvm_irqchip> GetIrqchip(uint32_t chip_id) const;
  Status SetIrqchip(const kvm_irqchip& chip);
  Result<kvm_pit_state2> GetPit2() const;
  Status SetPit2(const kvm_pit_state2& pit);
  Result<kvm_clock_data> GetClock() const;
  // Sets kvm-clock to `clock.clock`. With `advance_by_realtime`, KVM also adds the host
  // wall-clock time passed since `clock.realtime` (KVM_CLOCK_REALTIME; the saved clock must
  // carry that flag, i.e. it was read on a host with a TSC-based clock source).
  Status SetClock(const kvm_clock_data& clock, bool advance_by_realtime = false);
  Result<int> CheckExtension(long capability) const;
  Status SetTssAddr(uint64_t addr);
  Status SetIdentityMapAddr(uint64_t addr);
  Status CreateIrqchip();
  Status CreatePit2();
  // Routes eventfd `fd` to interrupt line `gsi` (KVM_IRQFD).
  Status AssignIrqfd(int fd, uint32_t gsi);
  // Makes a guest write of `len` bytes at MMIO address `addr` (equal to `datamatch`) signal
  // eventfd `fd` in the kernel, without an exit to user space (KVM_IOEVENTFD).
  Status AssignIoeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch);
  Result<KvmVcpu> CreateVcpu(uint32_t id);

 private:
  friend class Kvm;
  KvmVm(Fd fd, size_t run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  Fd fd_;
  size_t run_size_;
};

class KvmVcpu {
 public:
  // Enters the guest until the next exit. Returns false when interrupted by a signal (EINTR)
  // or by immediate_exit, true when kvm_run holds an exit to handle.
  Result<bool> Run();
  kvm_run* run_page() const { return reinterpret_cast<kvm_run*>(run_.data()); }
  void SetImmediateExit(bool on) { run_page()->immediate_exit = on ? 1 : 0; }
  uint32_t id() const { return id_; }

  Result<kvm_regs> GetRegs() const;
  Status SetRegs(const kvm_regs& regs);
  Result<kvm_sregs> GetSregs() const;
  Status SetSregs(const kvm_sregs& sregs);
  Result<kvm_fpu> GetFpu() const;
  Status SetFpu(const kvm_fpu& fpu);
  // XSAVE area: `size` bytes (KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2), at least 4096). Uses
  // KVM_GET_XSAVE2 when size > 4096, KVM_GET_XSAVE otherwise.
  Result<std::vector<uint8_t>> GetXsave(size_t size) const;
  Status SetXsave(const std::vector<uint8_t>& area);
  Result<kvm_xcrs> GetXcrs() const;
  Status SetXcrs(const kvm_xcrs& xcrs);
  Result<kvm_debugregs> GetDebugRegs() const;
  Status SetDebugRegs(const kvm_debugregs& regs);
  // Reads the given MSRs; fails naming the first one KVM refuses.
  Result<std::vector<std::pair<uint32_t, uint64_t>>> GetMsrs(const std::vector<uint32_t>& indices) const;
  Status SetMsrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs);
  Result<std::vector<kvm_cpuid_entry2>> GetCpuid2() const;
  Status SetCpuid2(const std::vector<kvm_cpuid_entry2>& entries);
  Result<uint32_t> GetMpState() const;
  Result<kvm_lapic_state> GetLapic() const;
  Status SetLapic(const kvm_lapic_state& lapic);
  Result<kvm_vcpu_events> GetVcpuEvents() const;
  Status SetVcpuEvents(const kvm_vcpu_events& events);
  // Guest linear address to guest physical, through the vCPU's current page tables.
  Result<kvm_translation> Translate(uint64_t linear) const;
  Status SetMpState(uint32_t state);

 private:
  friend class KvmVm;
  KvmVcpu(Fd fd, MmapRegion run, uint32_t id) : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}
  Fd fd_;
  MmapRegion run_;
  uint32_t id_;
};

}  // namespace hearth
