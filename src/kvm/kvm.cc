#include "kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cstring>
#include <memory>

namespace hearth {
namespace {

constexpr int kKvmApiVersion = 12;

// The one function in Hearth that issues ioctl(2) on KVM fds.
template <typename Arg>
Result<int> Ioctl(int fd, unsigned long request, Arg arg, const char* name) {
  int ret;
  do {
    ret = ::ioctl(fd, request, arg);
  } while (ret < 0 && errno == EINTR && request != KVM_RUN);
  if (ret < 0) return ErrnoError(name);
  return ret;
}

#define KVM_IOCTL(fd, req, arg) Ioctl(fd, req, arg, #req)

struct RequiredCap {
  long cap;
  const char* name;
};
constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
};

}  // namespace

Result<Kvm> Kvm::Open(const std::string& path) {
  auto fd = Fd::Open(path, O_RDWR);
  if (!fd.ok()) {
    return Error(fd.error().message() + " (KVM is needed: is the kvm module loaded and " + path +
                 " accessible to this user?)");
  }
  auto version = KVM_IOCTL(fd->get(), KVM_GET_API_VERSION, 0);
  if (!version.ok()) return version.error().Wrap(path);
  if (*version != kKvmApiVersion) {
    return Error(path + ": KVM API version " + std::to_string(*version) + ", expected 12");
  }
  for (const auto& rc : kRequiredCaps) {
    auto has = KVM_IOCTL(fd->get(), KVM_CHECK_EXTENSION, rc.cap);
    if (!has.ok() || *has <= 0) return Error(path + ": KVM lacks " + rc.name);
  }
  auto run_size = KVM_IOCTL(fd->get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (!run_size.ok()) return run_size.error();
  return Kvm(std::move(fd).value(), path, static_cast<size_t>(*run_size));
}

Result<int> Kvm::CheckExtension(long capability) const {
  return KVM_IOCTL(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::GetSupportedCpuid() const {
  // Grow the buffer until KVM stops answering E2BIG.
  // 256 (KVM_MAX_CPUID_ENTRIES) fits every KVM we know of in one call.
  for (uint32_t n = 256; n <= 4096; n *= 2) {
    size_t bytes = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
    auto buf = std::make_unique<uint64_t[]>((bytes + 7) / 8);
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.get());
    cpuid->nent = n;
    int ret = ::ioctl(fd_.get(), KVM_GET_SUPPORTED_CPUID, cpuid);
    if (ret < 0 && errno == E2BIG) continue;
    if (ret < 0) return ErrnoError("KVM_GET_SUPPORTED_CPUID");
    return std::vector<kvm_cpuid_entry2>(cpuid->entries, cpuid->entries + cpuid->nent);
  }
  return Error("KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<std::vector<uint32_t>> Kvm::GetMsrIndexList() const {
  for (uint32_t n = 256; n <= 16384; n *= 2) {
    std::vector<uint32_t> buf(n + 1);
    auto* list = reinterpret_cast<kvm_msr_list*>(buf.data());
    list->nmsrs = n;
    int ret = ::ioctl(fd_.get(), KVM_GET_MSR_INDEX_LIST, list);
    if (ret < 0 && errno == E2BIG) continue;
    if (ret < 0) return ErrnoError("KVM_GET_MSR_INDEX_LIST");
    return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + list->nmsrs);
  }
  return Error("KVM_GET_MSR_INDEX_LIST: too many MSRs");
}

Result<KvmVm> Kvm::CreateVm() const {
  int fd;
  // KVM_CREATE_VM fails with EINTR under signal pressure; retry as the kernel docs advise.
  do {
    fd = ::ioctl(fd_.get(), KVM_CREATE_VM, 0);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoError("KVM_CREATE_VM");
  return KvmVm(Fd(fd), run_size_);
}

Status KvmVm::SetUserMemoryRegion(uint32_t slot, uint64_t guest_addr, uint64_t size,
                                  void* host_addr, uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = guest_addr;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host_addr);
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region));
  return Ok();
}

Result<std::vector<uint64_t>> KvmVm::GetDirtyLog(uint32_t slot, uint64_t pages) {
  // KVM writes the bitmap in longs, rounded up to 64 pages.
  std::vector<uint64_t> bitmap((pages + 63) / 64, 0);
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap.data();
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_DIRTY_LOG, &log));
  return bitmap;
}

Result<kvm_irqchip> KvmVm::GetIrqchip(uint32_t chip_id) const {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_IRQCHIP, &chip));
  return chip;
}

Status KvmVm::SetIrqchip(const kvm_irqchip& chip) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_IRQCHIP, &chip));
  return Ok();
}

Result<kvm_pit_state2> KvmVm::GetPit2() const {
  kvm_pit_state2 pit{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_PIT2, &pit));
  return pit;
}

Status KvmVm::SetPit2(const kvm_pit_state2& pit) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_PIT2, &pit));
  return Ok();
}

Result<kvm_clock_data> KvmVm::GetClock() const {
  kvm_clock_data clock{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_CLOCK, &clock));
  return clock;
}

Status KvmVm::SetClock(const kvm_clock_data& clock, bool advance_by_realtime) {
  // Only the clock value (and the realtime base when asked) is set: KVM_SET_CLOCK rejects flags
  // it does not accept as input (KVM_CLOCK_TSC_STABLE and KVM_CLOCK_HOST_TSC are output only).
  kvm_clock_data in{};
  in.clock = clock.clock;
  if (advance_by_realtime) {
    if (!(clock.flags & KVM_CLOCK_REALTIME)) {
      return Error("kvm-clock: the saved clock has no realtime base (KVM_CLOCK_REALTIME)");
    }
    in.flags = KVM_CLOCK_REALTIME;
    in.realtime = clock.realtime;
  }
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_CLOCK, &in));
  return Ok();
}

Result<int> KvmVm::CheckExtension(long capability) const {
  return KVM_IOCTL(fd_.get(), KVM_CHECK_EXTENSION, capability);
}

Status KvmVm::SetTssAddr(uint64_t addr) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)));
  return Ok();
}

Status KvmVm::SetIdentityMapAddr(uint64_t addr) {
  uint64_t a = addr;
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &a));
  return Ok();
}

Status KvmVm::CreateIrqchip() {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_CREATE_IRQCHIP, 0));
  return Ok();
}

Status KvmVm::CreatePit2() {
  kvm_pit_config config{};
  // The dummy speaker port (0x61) lets Linux calibrate with the PIT without exits to us.
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_CREATE_PIT2, &config));
  return Ok();
}

Status KvmVm::AssignIrqfd(int fd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(fd);
  irqfd.gsi = gsi;
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_IRQFD, &irqfd));
  return Ok();
}

Status KvmVm::AssignIoeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch) {
  kvm_ioeventfd ioeventfd{};
  ioeventfd.datamatch = datamatch;
  ioeventfd.addr = addr;
  ioeventfd.len = len;
  ioeventfd.fd = fd;
  ioeventfd.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_IOEVENTFD, &ioeventfd));
  return Ok();
}

Result<KvmVcpu> KvmVm::CreateVcpu(uint32_t id) {
  auto fd = KVM_IOCTL(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  if (!fd.ok()) return fd.error();
  Fd vcpu_fd(*fd);
  auto run = MmapRegion::SharedFile(vcpu_fd.get(), run_size_, "kvm_run");
  if (!run.ok()) return run.error();
  return KvmVcpu(std::move(vcpu_fd), std::move(run).value(), id);
}

Result<bool> KvmVcpu::Run() {
  int ret = ::ioctl(fd_.get(), KVM_RUN, 0);
  if (ret == 0) return true;
  if (errno == EINTR || errno == EAGAIN) return false;
  return ErrnoError("KVM_RUN");
}

Result<kvm_regs> KvmVcpu::GetRegs() const {
  kvm_regs regs{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_REGS, &regs));
  return regs;
}

Status KvmVcpu::SetRegs(const kvm_regs& regs) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_REGS, &regs));
  return Ok();
}

Result<kvm_sregs> KvmVcpu::GetSregs() const {
  kvm_sregs sregs{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_SREGS, &sregs));
  return sregs;
}

Status KvmVcpu::SetSregs(const kvm_sregs& sregs) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_SREGS, &sregs));
  return Ok();
}

Result<kvm_fpu> KvmVcpu::GetFpu() const {
  kvm_fpu fpu{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_FPU, &fpu));
  return fpu;
}

Result<std::vector<uint8_t>> KvmVcpu::GetXsave(size_t size) const {
  if (size < sizeof(kvm_xsave)) size = sizeof(kvm_xsave);
  std::vector<uint8_t> area(size, 0);
  if (size > sizeof(kvm_xsave)) {
    RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_XSAVE2, area.data()));
  } else {
    RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_XSAVE, area.data()));
  }
  return area;
}

Status KvmVcpu::SetXsave(const std::vector<uint8_t>& area) {
  if (area.size() < sizeof(kvm_xsave)) {
    return Error("KVM_SET_XSAVE: area of " + std::to_string(area.size()) + " bytes is too small");
  }
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_XSAVE, area.data()));
  return Ok();
}

Result<kvm_xcrs> KvmVcpu::GetXcrs() const {
  kvm_xcrs xcrs{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_XCRS, &xcrs));
  return xcrs;
}

Status KvmVcpu::SetXcrs(const kvm_xcrs& xcrs) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_XCRS, &xcrs));
  return Ok();
}

Result<kvm_debugregs> KvmVcpu::GetDebugRegs() const {
  kvm_debugregs regs{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_DEBUGREGS, &regs));
  return regs;
}

Status KvmVcpu::SetDebugRegs(const kvm_debugregs& regs) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_DEBUGREGS, &regs));
  return Ok();
}

Result<std::vector<std::pair<uint32_t, uint64_t>>> KvmVcpu::GetMsrs(
    const std::vector<uint32_t>& indices) const {
  size_t bytes = sizeof(kvm_msrs) + indices.size() * sizeof(kvm_msr_entry);
  auto buf = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* list = reinterpret_cast<kvm_msrs*>(buf.get());
  std::memset(list, 0, bytes);
  list->nmsrs = static_cast<uint32_t>(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) list->entries[i].index = indices[i];
  ASSIGN_OR_RETURN(int got, KVM_IOCTL(fd_.get(), KVM_GET_MSRS, list));
  if (static_cast<size_t>(got) != indices.size()) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "%#x", indices[static_cast<size_t>(got)]);
    return Error(std::string("KVM_GET_MSRS: MSR ") + hex + " was refused");
  }
  std::vector<std::pair<uint32_t, uint64_t>> out;
  out.reserve(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) out.emplace_back(indices[i], list->entries[i].data);
  return out;
}

Result<std::vector<kvm_cpuid_entry2>> KvmVcpu::GetCpuid2() const {
  for (uint32_t n = 256; n <= 4096; n *= 2) {
    size_t bytes = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
    auto buf = std::make_unique<uint64_t[]>((bytes + 7) / 8);
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.get());
    cpuid->nent = n;
    int ret = ::ioctl(fd_.get(), KVM_GET_CPUID2, cpuid);
    if (ret < 0 && errno == E2BIG) continue;
    if (ret < 0) return ErrnoError("KVM_GET_CPUID2");
    return std::vector<kvm_cpuid_entry2>(cpuid->entries, cpuid->entries + cpuid->nent);
  }
  return Error("KVM_GET_CPUID2: too many entries");
}

Result<uint32_t> KvmVcpu::GetMpState() const {
  kvm_mp_state mp{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_MP_STATE, &mp));
  return mp.mp_state;
}

Status KvmVcpu::SetFpu(const kvm_fpu& fpu) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_FPU, &fpu));
  return Ok();
}

Status KvmVcpu::SetMsrs(const std::vector<std::pair<uint32_t, uint64_t>>& msrs) {
  size_t bytes = sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry);
  auto buf = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* list = reinterpret_cast<kvm_msrs*>(buf.get());
  list->nmsrs = static_cast<uint32_t>(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    list->entries[i].index = msrs[i].first;
    list->entries[i].data = msrs[i].second;
  }
  ASSIGN_OR_RETURN(int set, KVM_IOCTL(fd_.get(), KVM_SET_MSRS, list));
  if (static_cast<size_t>(set) != msrs.size()) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "%#x", msrs[static_cast<size_t>(set)].first);
    return Error(std::string("KVM_SET_MSRS: MSR ") + hex + " was refused");
  }
  return Ok();
}

Status KvmVcpu::SetCpuid2(const std::vector<kvm_cpuid_entry2>& entries) {
  size_t bytes = sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2);
  auto buf = std::make_unique<uint64_t[]>((bytes + 7) / 8);
  auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.get());
  cpuid->nent = static_cast<uint32_t>(entries.size());
  std::memcpy(cpuid->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_CPUID2, cpuid));
  return Ok();
}

Result<kvm_lapic_state> KvmVcpu::GetLapic() const {
  kvm_lapic_state lapic{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_LAPIC, &lapic));
  return lapic;
}

Status KvmVcpu::SetLapic(const kvm_lapic_state& lapic) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_LAPIC, &lapic));
  return Ok();
}

Result<kvm_vcpu_events> KvmVcpu::GetVcpuEvents() const {
  kvm_vcpu_events events{};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_GET_VCPU_EVENTS, &events));
  return events;
}

Status KvmVcpu::SetVcpuEvents(const kvm_vcpu_events& events) {
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_VCPU_EVENTS, &events));
  return Ok();
}

Result<kvm_translation> KvmVcpu::Translate(uint64_t linear) const {
  kvm_translation tr{};
  tr.linear_address = linear;
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_TRANSLATE, &tr));
  return tr;
}

Status KvmVcpu::SetMpState(uint32_t state) {
  kvm_mp_state mp{state};
  RETURN_IF_ERROR(KVM_IOCTL(fd_.get(), KVM_SET_MP_STATE, &mp));
  return Ok();
}

}  // namespace hearth
