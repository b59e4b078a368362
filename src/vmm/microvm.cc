#include "vmm/microvm.h"

#include <sys/epoll.h>
#include <unistd.h>

#include "arch/x86_64/boot_state.h"
#include "arch/x86_64/cpuid.h"
#include "base/clock.h"
#include "base/log.h"
#include "boot/boot_info.h"
#include "boot/cmdline.h"
#include "boot/layout.h"
#include "boot/mptable.h"
#include "devices/guest_signals.h"
#include "virtio/block/block.h"
#include "virtio/net/net.h"
#include "virtio/vsock/vsock.h"
#include "vmm/console.h"

namespace hearth {
namespace {

constexpr uint16_t kSerialPort = 0x3f8;
constexpr uint32_t kSerialIrq = 4;
constexpr uint16_t kI8042Port = 0x60;
constexpr uint32_t kKeyboardIrq = 1;

// Signals an eventfd: how the UART tells the VMM thread that its input FIFO has room again.
class EventFdTrigger : public Trigger {
 public:
  explicit EventFdTrigger(const EventFd* event) : event_(event) {}
  void Fire() override { (void)event_->Signal(); }

 private:
  const EventFd* event_;
};

void LogBootTime() {
  uint64_t us = MonotonicMicros() - ProcessStartMicros();
  uint64_t cpu_us = ProcessCpuMicros();
  LOG_INFO("Guest-boot-time = " << us << " us " << us / 1000 << " ms, " << cpu_us << " CPU us "
                                << cpu_us / 1000 << " CPU ms");
}

}  // namespace

std::unique_ptr<MicroVm> MicroVm::Create(const VmResources& resources,
                                         const MicroVmOptions& options, BuildError* error) {
  auto fail = [&](BuildStage stage, const Error& e) {
    *error = BuildError{stage, e};
    return nullptr;
  };
  // Start-up timeline at Debug level: where the launch floor goes.
  auto milestone = [](const char* what) {
    LOG_DEBUG("start-up: " << what << " at " << MonotonicMicros() - ProcessStartMicros() << " us");
  };
  const auto config = BuildStage::kConfiguration;
  const auto host = BuildStage::kHost;
  if (!resources.boot_source) return fail(config, Error("boot-source: missing"));
  const BootSourceConfig& boot = *resources.boot_source;
  const MachineConfig& machine = resources.machine;
  if (auto s = ValidateMachineConfig(machine); !s.ok()) return fail(config, s.error());

  std::unique_ptr<MicroVm> vm(new MicroVm());
  vm->options_ = options;
  vm->resources_ = resources;

  // /dev/kvm missing or inaccessible is a configuration problem of this host: say so plainly.
  auto kvm = Kvm::Open(options.kvm_path);
  if (!kvm.ok()) return fail(config, kvm.error());
  milestone("KVM opened");

  const uint64_t mem_bytes = machine.mem_size_mib << 20;
  auto memory = GuestMemory::Create(layout::RamRegions(mem_bytes));
  if (!memory.ok()) {
    return fail(config, memory.error().Wrap("machine-config.mem_size_mib " +
                                            std::to_string(machine.mem_size_mib) +
                                            ": cannot allocate guest memory"));
  }
  auto created = Vm::Create(*kvm, std::move(memory).value(), machine.track_dirty_pages);
  if (!created.ok()) return fail(host, created.error());
  vm->vm_ = std::move(created).value();
  GuestMemory& mem = vm->vm_->memory();
  milestone("VM and memory created");

  auto kernel = LoadKernel(mem, boot.kernel_image_path);
  if (!kernel.ok()) return fail(config, kernel.error().Wrap("boot-source.kernel_image_path"));
  vm->kernel_ = std::move(kernel).value();
  milestone("kernel loaded");

  Cmdline cmdline(vm->kernel_.cmdline_capacity);
  if (auto s = cmdline.Append(boot.boot_args.value_or(std::string(kDefaultBootArgs))); !s.ok()) {
    return fail(config, s.error().Wrap("boot-source.boot_args"));
  }
  if (auto s = AddHostKernelParams(options.host_kind, cmdline); !s.ok()) {
    return fail(config, s.error().Wrap("boot-source.boot_args (with the PVM host's additions)"));
  }
  auto exit = ExitRequest::Create();
  if (!exit.ok()) return fail(host, exit.error());
  vm->exit_ = std::move(exit).value();
  BuildStage stage = config;
  if (auto s = vm->BuildVirtioDevices(resources, cmdline, &stage); !s.ok()) return fail(stage, s.error());
  vm->cmdline_ = cmdline.str();

  BootInfo info;
  info.cmdline = vm->cmdline_;
  info.e820 = BuildE820Map(mem);
  if (boot.initrd_path) {
    auto initrd = LoadInitrd(mem, *boot.initrd_path, vm->kernel_.end, vm->kernel_.initrd_addr_max);
    if (!initrd.ok()) return fail(config, initrd.error().Wrap("boot-source.initrd_path"));
    info.initrd = *initrd;
  }
  if (auto s = WriteBootInfo(mem, vm->kernel_, info); !s.ok()) return fail(config, s.error());
  if (auto s = WriteMpTable(mem, machine.vcpu_count); !s.ok()) return fail(config, s.error());

  milestone("boot data written");
  if (auto s = vm->BuildDevices(); !s.ok()) return fail(host, s.error());
  if (auto s = vm->BuildVcpus(*kvm, machine.vcpu_count, machine.smt); !s.ok()) {
    return fail(host, s.error());
  }
  milestone("vCPUs configured");
  LOG_INFO("kernel " << boot.kernel_image_path << " ("
                     << (vm->kernel_.mode == EntryMode::kPvh ? "PVH entry" : "64-bit entry")
                     << "), " << machine.vcpu_count << " vCPUs, " << machine.mem_size_mib
                     << " MiB, host " << HostKindName(options.host_kind));
  LOG_INFO("kernel command line: " << vm->cmdline_);
  return vm;
}

MicroVm::~MicroVm() {
  // vCPU threads use the buses and memory: stop them before anything else goes.
  for (auto& vcpu : vcpus_) vcpu->StopAndJoin();
}

Status MicroVm::BuildDevices() {
  ASSIGN_OR_RETURN(EventFd rx_space, EventFd::Create());
  serial_rx_space_ = std::make_unique<EventFd>(std::move(rx_space));
  ASSIGN_OR_RETURN(auto serial_irq, vm_->CreateIrqLine(kSerialIrq));
  serial_ = std::make_shared<LockedDevice<Serial>>(
      serial_irq, std::make_shared<FdByteSink>(options_.console_out),
      std::make_shared<EventFdTrigger>(serial_rx_space_.get()));
  RETURN_IF_ERROR(pio_.Insert(serial_, kSerialPort, Serial::kRegisterCount));

  ASSIGN_OR_RETURN(auto kbd_irq, vm_->CreateIrqLine(kKeyboardIrq));
  std::shared_ptr<ExitRequest> exit = exit_;
  i8042_ = std::make_shared<LockedDevice<I8042>>(
      kbd_irq, [exit] { exit->Request(ExitKind::kReset, "the guest reset the CPU through the i8042"); });
  RETURN_IF_ERROR(pio_.Insert(i8042_, kI8042Port, I8042::kRangeLength));

  auto boot_signal = boot_signal_us_;
  const bool log_boot = options_.boot_timer;
  std::function<void()> on_boot = [boot_signal, log_boot] {
    uint64_t expected = 0;
    boot_signal->compare_exchange_strong(expected, MonotonicMicros());
    if (log_boot) LogBootTime();
  };
  RETURN_IF_ERROR(pio_.Insert(std::make_shared<LockedDevice<BootTimer>>(on_boot), kBootTimerPort, 1));
  RETURN_IF_ERROR(pio_.Insert(
      std::make_shared<LockedDevice<PowerPort>>(
          [exit] { exit->Request(ExitKind::kPowerOff, "the guest powered off"); },
          [exit] { exit->Request(ExitKind::kGuestPanic, "the guest kernel panicked"); }),
      kPowerPort, 1));
  return Ok();
}

Status MicroVm::BuildVirtioDevices(const VmResources& resources, Cmdline& cmdline,
                                  BuildStage* stage) {
  virtio_ = std::make_unique<MmioDevices>(layout::kMmioHoleStart);
  // The root device is the first drive (the configuration keeps it first): /dev/vda.
  if (!resources.drives.empty() && resources.drives.front().is_root_device &&
      !cmdline.HasParam("root")) {
    const DriveConfig& root = resources.drives.front();
    std::string param = root.partuuid ? "root=PARTUUID=" + *root.partuuid : "root=/dev/vda";
    param += root.is_read_only ? " ro" : " rw";
    if (auto s = cmdline.Append(param); !s.ok()) return s.error().Wrap("boot-source.boot_args");
  }
  if (resources.vsock) {
    VsockOptions options;
    options.guest_cid = resources.vsock->guest_cid;
    options.uds_path = resources.vsock->uds_path;
    *stage = BuildStage::kConfiguration;
    auto vsock = Vsock::Create(options);
    if (!vsock.ok()) return vsock.error();
    *stage = BuildStage::kHost;
    const std::string id = resources.vsock->vsock_id.value_or("vsock");
    if (auto s = virtio_->Attach(id, std::move(vsock).value(), *vm_, mmio_, cmdline); !s.ok()) {
      return s.error().Wrap("vsock");
    }
  }
  for (size_t i = 0; i < resources.drives.size(); ++i) {
    const DriveConfig& drive = resources.drives[i];
    const std::string where = "drives[" + std::to_string(i) + "] (" + drive.drive_id + ")";
    BlockOptions options;
    options.drive_id = drive.drive_id;
    options.path = drive.path_on_host;
    options.read_only = drive.is_read_only;
    options.cache = drive.cache_type == CacheType::kWriteback ? BlockOptions::kWriteback : BlockOptions::kUnsafe;
    options.engine = drive.io_engine == IoEngine::kAsync ? BlockOptions::kAsync : BlockOptions::kSync;
    options.rate_limiter = drive.rate_limiter;
    *stage = BuildStage::kConfiguration;
    auto block = Block::Create(options);
    if (!block.ok()) return block.error().Wrap(where + ".path_on_host");
    *stage = BuildStage::kHost;
    if (auto s = virtio_->Attach(drive.drive_id, std::move(block).value(), *vm_, mmio_, cmdline); !s.ok()) {
      return s.error().Wrap(where);
    }
  }
  for (size_t i = 0; i < resources.network_interfaces.size(); ++i) {
    const NetworkInterfaceConfig& iface = resources.network_interfaces[i];
    const std::string where = "network-interfaces[" + std::to_string(i) + "] (" + iface.iface_id + ")";
    NetOptions options;
    options.iface_id = iface.iface_id;
    options.host_dev_name = iface.host_dev_name;
    options.guest_mac = iface.guest_mac;
    options.rx_rate_limiter = iface.rx_rate_limiter;
    options.tx_rate_limiter = iface.tx_rate_limiter;
    *stage = BuildStage::kConfiguration;
    auto net = Net::Create(options);
    if (!net.ok()) return net.error().Wrap(where + ".host_dev_name");
    *stage = BuildStage::kHost;
    if (auto s = virtio_->Attach(iface.iface_id, std::move(net).value(), *vm_, mmio_, cmdline); !s.ok()) {
      return s.error().Wrap(where);
    }
  }
  *stage = BuildStage::kConfiguration;
  return Ok();
}

Status MicroVm::BuildVcpus(const Kvm& kvm, uint32_t count, bool smt) {
  ASSIGN_OR_RETURN(auto supported, kvm.GetSupportedCpuid());
  VcpuContext ctx{&pio_, &mmio_, &vm_->memory(), exit_, std::make_shared<UnhandledAccessLog>(),
                  options_.on_vcpu_thread_start};
  for (uint32_t id = 0; id < count; ++id) {
    ASSIGN_OR_RETURN(KvmVcpu kvm_vcpu, vm_->kvm_vm().CreateVcpu(id));
    CpuidOptions cpuid{id, count, smt, options_.host_kind == HostKind::kPvm};
    RETURN_IF_ERROR(kvm_vcpu.SetCpuid2(FilterCpuid(supported, cpuid)));
    RETURN_IF_ERROR(ConfigureBootVcpu(kvm_vcpu, vm_->memory(), kernel_));
    vcpus_.push_back(std::make_unique<Vcpu>(std::move(kvm_vcpu), ctx));
  }
  return Ok();
}

Status MicroVm::WatchConsoleInput(EventLoop& loop) {
  if (options_.console_in < 0 || console_eof_) return Ok();
  auto added = loop.Add(options_.console_in, EPOLLIN, [this, &loop](uint32_t) { OnConsoleInput(loop); });
  if (!added.ok()) {
    // A regular file or similar cannot be polled: the guest just gets no input.
    LOG_DEBUG("console input is not pollable: " << added.error().message());
    console_eof_ = true;
  }
  return Ok();
}

void MicroVm::OnConsoleInput(EventLoop& loop) {
  size_t space = serial_->With([](Serial& s) { return s.rx_space(); });
  if (space == 0) {
    // The guest is not reading: stop polling until the UART says it has room again.
    (void)loop.Remove(options_.console_in);
    return;
  }
  uint8_t buf[Serial::kRxFifoCapacity];
  ssize_t n = ::read(options_.console_in, buf, std::min(space, sizeof(buf)));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    console_eof_ = true;
    (void)loop.Remove(options_.console_in);
    return;
  }
  serial_->With([&](Serial& s) { s.EnqueueInput(std::span(buf, static_cast<size_t>(n))); });
}

Result<RunOutcome> MicroVm::Run() {
  ASSIGN_OR_RETURN(EventLoop loop, EventLoop::Create());
  if (options_.stop_event_fd >= 0) {
    RETURN_IF_ERROR(loop.Add(options_.stop_event_fd, EPOLLIN, [this](uint32_t) {
      exit_->Request(ExitKind::kSignal, "the VMM was asked to stop by a signal");
    }));
  }
  if (auto s = Start(loop, [&loop] { loop.Stop(); }); !s.ok()) {
    Stop();
    return s.error();
  }
  Status ran = loop.Run();
  RunOutcome outcome = Stop();
  if (!ran.ok()) return ran.error();
  return outcome;
}

Status MicroVm::Start(EventLoop& loop, std::function<void()> on_stop) {
  loop_ = &loop;
  RETURN_IF_ERROR(loop.Add(exit_->fd(), EPOLLIN, [on_stop = std::move(on_stop)](uint32_t) { on_stop(); }));
  RETURN_IF_ERROR(loop.Add(serial_rx_space_->get(), EPOLLIN, [this](uint32_t) {
    (void)serial_rx_space_->Consume();
    if (!paused_ && !loop_->Watching(options_.console_in)) (void)WatchConsoleInput(*loop_);
  }));
  start_micros_ = MonotonicMicros();
  if (start_paused_) {
    // Restored without resume_vm: parked as after Pause(); Resume() watches the devices and
    // lets the vCPUs go.
    paused_ = true;
    for (auto& vcpu : vcpus_) vcpu->StartPaused();
  } else {
    RETURN_IF_ERROR(WatchConsoleInput(loop));
    RETURN_IF_ERROR(virtio_->Watch(loop));
    for (auto& vcpu : vcpus_) vcpu->Start();
  }
  // The VMM thread's filter, now that the vCPU threads exist (they must not inherit it).
  if (options_.on_event_loop_start) {
    RETURN_IF_ERROR(options_.on_event_loop_start());
  }
  return Ok();
}

RunOutcome MicroVm::Stop() {
  for (auto& vcpu : vcpus_) vcpu->StopAndJoin();
  if (loop_) {
    (void)loop_->Remove(exit_->fd());
    (void)loop_->Remove(serial_rx_space_->get());
    if (options_.console_in >= 0) (void)loop_->Remove(options_.console_in);
    virtio_->Unwatch(*loop_);
  }
  if (!exit_->requested()) return RunOutcome{ExitKind::kVmmError, "the VM was stopped before it ran"};
  return RunOutcome{exit_->kind(), exit_->message()};
}

Status MicroVm::Pause() {
  if (paused_) return Ok();
  for (auto& vcpu : vcpus_) {
    if (auto s = vcpu->Pause(); !s.ok()) {
      for (auto& v : vcpus_) v->Resume();
      return s.error().Wrap("pause");
    }
  }
  // Devices stop too: queue kicks and backend events wait in their eventfds until resume.
  if (loop_) {
    virtio_->Unwatch(*loop_);
    if (options_.console_in >= 0) (void)loop_->Remove(options_.console_in);
  }
  paused_ = true;
  return Ok();
}

Status MicroVm::Resume() {
  if (!paused_) return Ok();
  if (loop_) {
    RETURN_IF_ERROR(virtio_->Watch(*loop_));
    RETURN_IF_ERROR(WatchConsoleInput(*loop_));
  }
  paused_ = false;
  for (auto& vcpu : vcpus_) vcpu->Resume();
  return Ok();
}

void MicroVm::SendCtrlAltDel() { i8042_->With([](I8042& k) { k.SendCtrlAltDel(); }); }

}  // namespace hearth
