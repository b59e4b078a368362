// MicroVm's snapshot side: pause/resume, SaveSnapshot, RestoreFromSnapshot. Kept apart from
// microvm.cc (the boot path); both build the same devices through the same helpers.
#include <fcntl.h>
#include <sys/stat.h>

#include "base/atomic_file.h"
#include "base/clock.h"
#include "base/log.h"
#include "boot/layout.h"
#include "memory/memory_file.h"
#include "snapshot/state_file.h"
#include "vmm/microvm.h"
#include "vmm/snapshot_state.h"
#include "vmm/uffd_backend.h"
#include "virtio/vsock/vsock.h"
#include "vstate/vcpu_state.h"
#include "vstate/vm_state.h"

namespace hearth {

Status MicroVm::PauseVcpus() {
  for (auto& vcpu : vcpus_) RETURN_IF_ERROR(vcpu->Pause());
  return Ok();
}

void MicroVm::ResumeVcpus() {
  for (auto& vcpu : vcpus_) vcpu->Resume();
}

bool MicroVm::vcpus_paused() const {
  if (vcpus_.empty()) return false;
  for (const auto& vcpu : vcpus_) {
    if (!vcpu->paused()) return false;
  }
  return true;
}

Status MicroVm::SaveSnapshot(const CreateSnapshot& params) {
  if (!vcpus_paused()) return Error("the VM must be paused to create a snapshot");
  if (params.snapshot_path.empty()) return Error("snapshot_path: empty");
  if (params.mem_file_path.empty()) return Error("mem_file_path: empty");
  if (params.snapshot_path == params.mem_file_path) {
    return Error("snapshot_path and mem_file_path name the same file");
  }
  const uint64_t start = MonotonicMicros();
  // Devices finish what they took from their rings (disk I/O in flight) first: the used
  // elements, guest memory and the interrupt they raise are then part of the saved state.
  for (const auto& a : virtio_->attached()) {
    Status s = a.transport->With([](MmioTransport& t) { return t.device().PrepareForSnapshot(); });
    if (!s.ok()) return s.error().Wrap("virtio device " + a.id);
  }
  // vsock connections do not survive a snapshot (their host sockets cannot be saved): drop
  // them and queue VIRTIO_VSOCK_EVENT_TRANSPORT_RESET before any state is taken, so the
  // guest sees the event (now, or from the saved flag once it has an event buffer) when it
  // runs again. Guest listeners survive.
  for (const auto& a : virtio_->attached()) {
    a.transport->With([](MmioTransport& t) {
      if (t.device().device_type() == kVirtioIdVsock) static_cast<Vsock&>(t.device()).TransportReset();
    });
  }
  MicroVmState state;
  state.machine = resources_.machine;
  if (resources_.boot_source) state.kernel_image_path = resources_.boot_source->kernel_image_path;
  state.cmdline = cmdline_;
  state.drives = resources_.drives;
  state.network_interfaces = resources_.network_interfaces;
  state.vsock = resources_.vsock;
  for (const auto& region : vm_->memory().regions()) {
    state.memory_regions.push_back(GuestRegionSpec{region.guest_addr, region.size()});
  }

  // KVM state first: it is what fails on an unusual host, before any file is written.
  ASSIGN_OR_RETURN(state.vm, SaveVmState(vm_->kvm_vm()));
  ASSIGN_OR_RETURN(Kvm kvm, Kvm::Open(options_.kvm_path));
  ASSIGN_OR_RETURN(std::vector<uint32_t> msrs, SavableMsrs(kvm, vcpus_.front()->kvm_vcpu()));
  ASSIGN_OR_RETURN(size_t xsave_size, XsaveSize(vm_->kvm_vm()));
  for (auto& vcpu : vcpus_) {
    ASSIGN_OR_RETURN(VcpuState vs, SaveVcpuState(vcpu->kvm_vcpu(), msrs, xsave_size));
    state.vcpus.push_back(std::move(vs));
  }
  state.serial = serial_->With([](Serial& s) { return s.Save(); });
  state.i8042 = i8042_->With([](I8042& d) { return d.Save(); });
  for (const auto& a : virtio_->attached()) {
    VirtioDeviceSnapshot d;
    d.id = a.id;
    d.mmio_addr = a.slot.addr;
    d.irq = a.slot.irq;
    a.transport->With([&](MmioTransport& t) {
      d.device_type = t.device().device_type();
      d.transport = t.Save();
      d.device_state = t.device().SaveState();
    });
    state.virtio.push_back(std::move(d));
  }
  const uint64_t state_done = MonotonicMicros();

  {
    ASSIGN_OR_RETURN(AtomicFile mem_file, AtomicFile::Create(params.mem_file_path));
    if (params.type == SnapshotType::kDiff) {
      auto dirty = vm_->TakeDirtyBitmaps();
      if (!dirty.ok()) return dirty.error().Wrap("Diff snapshot");
      RETURN_IF_ERROR(SaveDirtyMemory(vm_->memory(), mem_file.fd(), *dirty, params.mem_file_path));
    } else {
      RETURN_IF_ERROR(SaveFullMemory(vm_->memory(), mem_file.fd(), params.mem_file_path));
      // The next Diff holds what changed since this Full snapshot.
      if (vm_->tracks_dirty_pages()) RETURN_IF_ERROR(vm_->TakeDirtyBitmaps());
    }
    RETURN_IF_ERROR(mem_file.Commit());
  }
  const uint64_t mem_done = MonotonicMicros();
  RETURN_IF_ERROR(WriteStateFile(params.snapshot_path, EncodeMicroVmState(state)));
  LOG_INFO("snapshot " << params.snapshot_path << " ("
                       << (params.type == SnapshotType::kDiff ? "Diff" : "Full")
                       << "): state " << state_done - start << " us, memory " << mem_done - state_done
                       << " us, state file " << MonotonicMicros() - mem_done << " us");
  return Ok();
}

Result<std::unique_ptr<MicroVm>> MicroVm::RestoreFromSnapshot(const LoadSnapshot& params,
                                                              const MicroVmOptions& options) {
  const uint64_t start = MonotonicMicros();
  // Restore timeline at Debug level: where the restore latency goes.
  auto milestone = [start](const char* what) {
    LOG_DEBUG("restore: " << what << " at " << MonotonicMicros() - start << " us");
  };
  ASSIGN_OR_RETURN(std::vector<uint8_t> payload, ReadStateFile(params.snapshot_path));
  auto decoded = DecodeMicroVmState(payload);
  if (!decoded.ok()) return decoded.error().Wrap(params.snapshot_path);
  MicroVmState state = std::move(decoded).value();
  milestone("state file read and decoded");

  if (params.backend_path.empty()) return Error("mem_backend.backend_path: empty");
  if (params.vsock_uds_path && !state.vsock) {
    return Error("vsock_override: the snapshot has no vsock device");
  }
  if (params.clock_realtime && !(state.vm.clock.flags & KVM_CLOCK_REALTIME)) {
    return Error("clock_realtime: the snapshot's kvm-clock has no realtime base (its host's clock "
                 "source was not TSC-based), so the time spent saved cannot be added");
  }

  std::unique_ptr<MicroVm> vm(new MicroVm());
  vm->options_ = options;
  vm->resources_.machine = state.machine;
  vm->resources_.machine.track_dirty_pages = params.track_dirty_pages;
  if (!state.kernel_image_path.empty()) {
    vm->resources_.boot_source = BootSourceConfig{state.kernel_image_path, state.cmdline, std::nullopt};
  }
  vm->resources_.drives = state.drives;
  vm->resources_.network_interfaces = state.network_interfaces;
  for (const auto& o : params.network_overrides) {
    bool found = false;
    for (auto& iface : vm->resources_.network_interfaces) {
      if (iface.iface_id == o.iface_id) {
        iface.host_dev_name = o.host_dev_name;
        found = true;
      }
    }
    if (!found) return Error("network_overrides: the snapshot has no interface " + o.iface_id);
  }
  vm->resources_.vsock = state.vsock;
  if (params.vsock_uds_path) vm->resources_.vsock->uds_path = *params.vsock_uds_path;
  if (vm->resources_.vsock) {
    // The device binds its socket again: the path must be free (the original VM gone, or
    // an override for a clone).
    VsockConfig& v = *vm->resources_.vsock;
    if (auto st = ValidateVsockConfig(v); !st.ok()) return st.error().Wrap("vsock_override");
    struct stat existing {};
    if (::lstat(v.uds_path.c_str(), &existing) == 0) {
      return Error("vsock: uds_path " + v.uds_path +
                   " already exists (another VM's socket?): remove it or give vsock_override.uds_path");
    }
  }
  vm->cmdline_ = state.cmdline;

  ASSIGN_OR_RETURN(Kvm kvm, Kvm::Open(options.kvm_path));
  Result<GuestMemory> memory = Error("no memory backend");
  if (params.backend_type == MemBackendType::kUffd) {
    // Anonymous memory whose pages the handler fills on first touch.
    memory = GuestMemory::Create(state.memory_regions);
    if (!memory.ok()) return memory.error().Wrap("mem_backend");
    ASSIGN_OR_RETURN(UffdConnection conn, ConnectUffdHandler(params.backend_path, *memory));
    vm->uffd_ = std::move(conn.uffd);
    vm->uffd_socket_ = std::move(conn.socket);
  } else {
    ASSIGN_OR_RETURN(Fd mem_fd, Fd::Open(params.backend_path, O_RDONLY));
    memory = GuestMemory::CreateFromFile(state.memory_regions, mem_fd.get(), params.backend_path);
    if (!memory.ok()) return memory.error().Wrap("mem_backend");
    // The mappings keep the file; the fd can go.
  }
  ASSIGN_OR_RETURN(vm->vm_, Vm::Create(kvm, std::move(memory).value(), params.track_dirty_pages));
  ASSIGN_OR_RETURN(vm->exit_, ExitRequest::Create());
  milestone("memory mapped, KVM VM created");

  // Devices, built from the saved configuration exactly as at boot, then given their state.
  Cmdline scratch(layout::kCmdlineMaxSize);
  BuildStage stage = BuildStage::kConfiguration;
  RETURN_IF_ERROR(vm->BuildVirtioDevices(vm->resources_, scratch, &stage));
  const auto& attached = vm->virtio_->attached();
  if (attached.size() != state.virtio.size()) {
    return Error("the snapshot has " + std::to_string(state.virtio.size()) +
                 " virtio devices, its configuration builds " + std::to_string(attached.size()));
  }
  for (size_t i = 0; i < attached.size(); ++i) {
    const VirtioDeviceSnapshot& saved = state.virtio[i];
    const auto& a = attached[i];
    if (a.id != saved.id || a.slot.addr != saved.mmio_addr || a.slot.irq != saved.irq) {
      return Error("virtio device " + saved.id + ": the snapshot's placement does not match the rebuilt device " + a.id);
    }
    Status restored = a.transport->With([&](MmioTransport& t) -> Status {
      if (t.device().device_type() != saved.device_type) {
        return Error("device type " + std::to_string(t.device().device_type()) + ", the snapshot has " +
                     std::to_string(saved.device_type));
      }
      RETURN_IF_ERROR(t.device().RestoreState(saved.device_state));
      return t.Restore(saved.transport);
    });
    if (!restored.ok()) return restored.error().Wrap("virtio device " + saved.id);
  }
  RETURN_IF_ERROR(vm->BuildDevices());
  RETURN_IF_ERROR(vm->serial_->With([&](Serial& s) { return s.Restore(state.serial); }));
  RETURN_IF_ERROR(vm->i8042_->With([&](I8042& d) { return d.Restore(state.i8042); }));

  milestone("devices rebuilt and restored");
  RETURN_IF_ERROR(RestoreVmState(vm->vm_->kvm_vm(), state.vm, params.clock_realtime));
  milestone("VM state restored");
  VcpuContext ctx{&vm->pio_, &vm->mmio_, &vm->vm_->memory(), vm->exit_,
                  std::make_shared<UnhandledAccessLog>(), vm->options_.on_vcpu_thread_start};
  for (const VcpuState& vs : state.vcpus) {
    ASSIGN_OR_RETURN(KvmVcpu kvm_vcpu, vm->vm_->kvm_vm().CreateVcpu(vs.id));
    RETURN_IF_ERROR(RestoreVcpuState(kvm_vcpu, vs));
    vm->vcpus_.push_back(std::make_unique<Vcpu>(std::move(kvm_vcpu), ctx));
  }
  milestone("vCPUs created and restored");
  for (const auto& a : vm->virtio_->attached()) {
    a.transport->With([](MmioTransport& t) { t.RefirePendingInterrupt(); });
  }
  vm->start_paused_ = !params.resume_vm;
  LOG_INFO("restored " << params.snapshot_path << " in " << MonotonicMicros() - start << " us ("
                       << state.machine.vcpu_count << " vCPUs, " << state.machine.mem_size_mib
                       << " MiB from " << params.backend_path << ")");
  return vm;
}

}  // namespace hearth
