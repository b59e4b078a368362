#include "vstate/vcpu.h"

#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <iomanip>
#include <sstream>

#include "base/clock.h"
#include "base/log.h"

namespace hearth {
namespace {

constexpr uint8_t kInt3Opcode = 0xcc;
constexpr uint8_t kFwaitOpcode = 0x9b;
constexpr uint8_t kBreakpointVector = 3;

void KickHandler(int) {}

std::string HexBytes(const uint8_t* bytes, size_t n) {
  std::ostringstream s;
  for (size_t i = 0; i < n; ++i) {
    s << (i ? " " : "") << std::hex << std::setw(2) << std::setfill('0') << int{bytes[i]};
  }
  return s.str();
}

}  // namespace

int Vcpu::KickSignal() { return SIGRTMIN; }

void Vcpu::InstallKickHandler() {
  struct sigaction sa {};
  sa.sa_handler = KickHandler;  // Only there to make KVM_RUN return EINTR.
  sigemptyset(&sa.sa_mask);
  sigaction(KickSignal(), &sa, nullptr);
}

void Vcpu::Start() {
  thread_ = std::thread([this] { RunLoop(); });
}

void Vcpu::StartPaused() {
  pause_requested_.store(true, std::memory_order_release);
  // The first KVM_RUN returns at once (immediate_exit) and the thread parks before any guest
  // instruction runs.
  kvm_vcpu_.SetImmediateExit(true);
  Start();
}

void Vcpu::Kick() {
  {
    // Under park_mu_: ParkWhilePaused() checks stop_ and clears immediate_exit under it, so
    // this store lands either before that check (the vCPU sees it and ends) or after the
    // clear (immediate_exit below is set after it). A store outside the lock could fall
    // between the waiter's predicate check and its sleep, and that wake-up would be lost.
    std::lock_guard lock(park_mu_);
    stop_.store(true, std::memory_order_release);
  }
  park_cv_.notify_all();
  // immediate_exit covers the window between the stop check and entering KVM_RUN; the signal
  // covers a vCPU already inside it.
  kvm_vcpu_.SetImmediateExit(true);
  if (thread_.joinable()) pthread_kill(thread_.native_handle(), KickSignal());
}

void Vcpu::StopAndJoin() {
  if (!thread_.joinable()) return;
  Kick();
  thread_.join();
}

Status Vcpu::Pause() {
  const std::string who = "vCPU " + std::to_string(kvm_vcpu_.id());
  std::unique_lock lock(park_mu_);
  if (!thread_.joinable() || finished_) return Error(who + ": not running, cannot pause");
  if (parked_) return Ok();
  pause_requested_.store(true, std::memory_order_release);
  // As in Kick(): immediate_exit for the window before KVM_RUN, the signal for inside it.
  kvm_vcpu_.SetImmediateExit(true);
  pthread_kill(thread_.native_handle(), KickSignal());
  park_cv_.wait(lock, [this] { return parked_ || finished_; });
  if (!parked_) return Error(who + ": the vCPU stopped while being paused");
  return Ok();
}

void Vcpu::Resume() {
  {
    std::lock_guard lock(park_mu_);
    pause_requested_.store(false, std::memory_order_release);
  }
  park_cv_.notify_all();
}

bool Vcpu::paused() const {
  std::lock_guard lock(park_mu_);
  return parked_;
}

bool Vcpu::ParkWhilePaused() {
  std::unique_lock lock(park_mu_);
  parked_ = true;
  park_cv_.notify_all();
  park_cv_.wait(lock, [this] {
    return !pause_requested_.load(std::memory_order_acquire) || stop_.load(std::memory_order_acquire);
  });
  parked_ = false;
  if (stop_.load(std::memory_order_acquire)) return false;
  kvm_vcpu_.SetImmediateExit(false);
  return true;
}

void Vcpu::CountExit(uint32_t reason) {
  auto bump = [](std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); };
  switch (reason) {
    case KVM_EXIT_IO: bump(exit_counts_.io); break;
    case KVM_EXIT_MMIO: bump(exit_counts_.mmio); break;
    case KVM_EXIT_HLT: bump(exit_counts_.hlt); break;
    case KVM_EXIT_SHUTDOWN: bump(exit_counts_.shutdown); break;
    case KVM_EXIT_SYSTEM_EVENT: bump(exit_counts_.system_event); break;
    case KVM_EXIT_INTERNAL_ERROR: bump(exit_counts_.internal_error); break;
    case KVM_EXIT_INTR: bump(exit_counts_.interrupted); break;
    default: bump(exit_counts_.other); break;
  }
}

void Vcpu::RunLoop() {
  if (ctx_.on_thread_start) {
    if (auto s = ctx_.on_thread_start(); !s.ok()) {
      ctx_.exit->Request(ExitKind::kVmmError, "vCPU " + std::to_string(kvm_vcpu_.id()) + ": " + s.error().message());
      return;
    }
  }
  SetThreadName("fc_vcpu " + std::to_string(kvm_vcpu_.id()));
  LOG_DEBUG("start-up: vCPU " << kvm_vcpu_.id() << " entering the guest at "
                              << MonotonicMicros() - ProcessStartMicros() << " us");
  struct FinishedMark {
    Vcpu* vcpu;
    ~FinishedMark() {
      std::lock_guard lock(vcpu->park_mu_);
      vcpu->finished_ = true;
      vcpu->park_cv_.notify_all();
    }
  } finished_mark{this};
  while (!stop_.load(std::memory_order_acquire)) {
    auto ran = kvm_vcpu_.Run();
    if (!ran.ok()) {
      ctx_.exit->Request(ExitKind::kVmmError,
                         "vCPU " + std::to_string(kvm_vcpu_.id()) + ": " + ran.error().message());
      return;
    }
    if (!*ran) {
      // Interrupted. A pause parks only here: this KVM_RUN (entered with immediate_exit) has
      // completed any port or MMIO access the previous exit left pending.
      exit_counts_.interrupted.fetch_add(1, std::memory_order_relaxed);
      if (pause_requested_.load(std::memory_order_acquire) && !stop_.load(std::memory_order_acquire)) {
        if (!ParkWhilePaused()) return;
      }
      continue;
    }
    exits_.fetch_add(1, std::memory_order_relaxed);
    CountExit(kvm_vcpu_.run_page()->exit_reason);
    if (!HandleExit()) return;
  }
}

bool Vcpu::HandleExit() {
  kvm_run* run = kvm_vcpu_.run_page();
  const std::string who = "vCPU " + std::to_string(kvm_vcpu_.id());
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      return HandleIo(run);
    case KVM_EXIT_MMIO:
      HandleMmio(run);
      return true;
    case KVM_EXIT_HLT:
      ctx_.exit->Request(ExitKind::kPowerOff, who + " halted");
      return false;
    case KVM_EXIT_SHUTDOWN:
      ctx_.exit->Request(ExitKind::kTripleFault, who + ": guest triple fault (KVM_EXIT_SHUTDOWN)");
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          ctx_.exit->Request(ExitKind::kPowerOff, who + ": guest shutdown");
          return false;
        case KVM_SYSTEM_EVENT_RESET:
          ctx_.exit->Request(ExitKind::kReset, who + ": guest reset");
          return false;
        case KVM_SYSTEM_EVENT_CRASH:
          ctx_.exit->Request(ExitKind::kGuestPanic, who + ": guest crashed");
          return false;
        default:
          ctx_.exit->Request(ExitKind::kVmmError, who + ": unknown system event " +
                                                      std::to_string(run->system_event.type));
          return false;
      }
    case KVM_EXIT_FAIL_ENTRY:
      ctx_.exit->Request(ExitKind::kVmmError,
                         who + ": KVM_EXIT_FAIL_ENTRY, reason " +
                             std::to_string(run->fail_entry.hardware_entry_failure_reason));
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      return HandleEmulationFailure(run);
    case KVM_EXIT_INTR:
      return true;
    default:
      ctx_.exit->Request(ExitKind::kVmmError,
                         who + ": unexpected KVM exit reason " + std::to_string(run->exit_reason));
      return false;
  }
}

bool Vcpu::HandleIo(kvm_run* run) {
  auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const size_t size = run->io.size;
  // String I/O (rep ins/outs) arrives as `count` consecutive items.
  for (uint32_t i = 0; i < run->io.count; ++i) {
    std::span<uint8_t> item(base + i * size, size);
    if (run->io.direction == KVM_EXIT_IO_OUT) {
      if (!ctx_.pio->Write(run->io.port, item)) ctx_.unhandled->Note(false, run->io.port, true);
    } else if (!ctx_.pio->Read(run->io.port, item)) {
      std::memset(item.data(), 0xff, item.size());
      ctx_.unhandled->Note(false, run->io.port, false);
    }
  }
  return true;
}

void Vcpu::HandleMmio(kvm_run* run) {
  size_t len = std::min<size_t>(run->mmio.len, sizeof(run->mmio.data));
  std::span<uint8_t> data(run->mmio.data, len);
  if (run->mmio.is_write) {
    if (!ctx_.mmio->Write(run->mmio.phys_addr, data)) {
      ctx_.unhandled->Note(true, run->mmio.phys_addr, true);
    }
  } else if (!ctx_.mmio->Read(run->mmio.phys_addr, data)) {
    std::memset(data.data(), 0xff, data.size());
    ctx_.unhandled->Note(true, run->mmio.phys_addr, false);
  }
}

bool Vcpu::HandleEmulationFailure(kvm_run* run) {
  const std::string who = "vCPU " + std::to_string(kvm_vcpu_.id());
  if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
    ctx_.exit->Request(ExitKind::kVmmError, who + ": KVM internal error, suberror " +
                                                std::to_string(run->internal.suberror));
    return false;
  }
  // Find the bytes of the instruction KVM could not emulate: KVM gives them when it can,
  // otherwise translate RIP and read guest memory.
  uint8_t insn[16] = {};
  size_t insn_len = 0;
  auto regs = kvm_vcpu_.GetRegs();
  auto sregs = kvm_vcpu_.GetSregs();
  if (!regs.ok() || !sregs.ok()) {
    ctx_.exit->Request(ExitKind::kVmmError, who + ": cannot read registers after an emulation failure");
    return false;
  }
  if ((run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
      run->emulation_failure.insn_size > 0) {
    insn_len = std::min<size_t>(run->emulation_failure.insn_size, sizeof(insn));
    std::memcpy(insn, run->emulation_failure.insn_bytes, insn_len);
  } else {
    auto tr = kvm_vcpu_.Translate(sregs->cs.base + regs->rip);
    if (tr.ok() && tr->valid) {
      for (; insn_len < 15; ++insn_len) {
        auto byte = ctx_.memory->ReadObj<uint8_t>(tr->physical_address + insn_len);
        if (!byte.ok()) break;
        insn[insn_len] = *byte;
      }
    }
  }
  if (insn_len > 0 && insn[0] == kInt3Opcode) {
    // An int3 in the guest kernel (Linux runs one as a self-test): do what the CPU would,
    // step past it and raise #BP, so the guest's handler runs and returns normally.
    kvm_regs next = *regs;
    next.rip += 1;
    auto events = kvm_vcpu_.GetVcpuEvents();
    if (events.ok()) {
      kvm_vcpu_events ev = *events;
      ev.exception.injected = 1;
      ev.exception.nr = kBreakpointVector;
      ev.exception.has_error_code = 0;
      ev.exception.error_code = 0;
      if (kvm_vcpu_.SetRegs(next).ok() && kvm_vcpu_.SetVcpuEvents(ev).ok()) {
        LOG_DEBUG(who << ": emulated int3 at 0x" << std::hex << regs->rip);
        return true;
      }
    }
  }
  if (insn_len > 0 && insn[0] == kFwaitOpcode) {
    // fwait only raises #MF when an unmasked x87 exception is pending, which kernel code never
    // leaves behind; Linux executes one when it first restores a task's FPU state.
    kvm_regs next = *regs;
    next.rip += 1;
    if (kvm_vcpu_.SetRegs(next).ok()) return true;
  }
  std::ostringstream msg;
  msg << who << ": the guest ran an instruction this host cannot emulate at rip 0x" << std::hex
      << regs->rip << " (bytes: " << (insn_len ? HexBytes(insn, insn_len) : "unknown") << ")";
  ctx_.exit->Request(ExitKind::kEmulationFailure, msg.str());
  return false;
}

}  // namespace hearth
