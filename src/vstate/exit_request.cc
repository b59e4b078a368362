#include "vstate/exit_request.h"

namespace hearth {

const char* ExitKindName(ExitKind kind) {
  switch (kind) {
    case ExitKind::kPowerOff: return "power-off";
    case ExitKind::kReset: return "reset";
    case ExitKind::kTripleFault: return "triple-fault";
    case ExitKind::kGuestPanic: return "guest-panic";
    case ExitKind::kEmulationFailure: return "emulation-failure";
    case ExitKind::kVmmError: return "vmm-error";
    case ExitKind::kSignal: return "signal";
  }
  return "unknown";
}

Result<std::shared_ptr<ExitRequest>> ExitRequest::Create() {
  ASSIGN_OR_RETURN(EventFd event, EventFd::Create());
  return std::shared_ptr<ExitRequest>(new ExitRequest(std::move(event)));
}

void ExitRequest::Request(ExitKind kind, std::string message) {
  {
    std::lock_guard lock(mu_);
    if (requested_.load(std::memory_order_relaxed)) return;
    kind_ = kind;
    message_ = std::move(message);
    requested_.store(true, std::memory_order_release);
  }
  (void)event_.Signal();
}

ExitKind ExitRequest::kind() const {
  std::lock_guard lock(mu_);
  return kind_;
}

std::string ExitRequest::message() const {
  std::lock_guard lock(mu_);
  return message_;
}

}  // namespace hearth
