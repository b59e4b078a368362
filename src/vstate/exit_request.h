// Why the VM stops, decided once: the first request wins (a guest power-off racing a triple
// fault on another vCPU reports whichever came first). Any thread may request; the VMM
// thread watches the eventfd and tears the VM down.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/fd.h"
#include "base/result.h"

namespace hearth {

enum class ExitKind {
  kPowerOff,           // The guest powered off.
  kReset,              // The guest reset (reboot): a micro-VM ends instead of rebooting.
  kTripleFault,        // KVM_EXIT_SHUTDOWN.
  kGuestPanic,         // The guest said it panicked.
  kEmulationFailure,   // The guest ran an instruction this host cannot emulate.
  kVmmError,           // KVM or the VMM failed.
  kSignal,             // SIGTERM / SIGINT / SIGHUP to the VMM.
};

const char* ExitKindName(ExitKind kind);

class ExitRequest {
 public:
  static Result<std::shared_ptr<ExitRequest>> Create();

  // Records the first request and wakes the VMM thread; later requests are ignored.
  void Request(ExitKind kind, std::string message);
  bool requested() const { return requested_.load(std::memory_order_acquire); }
  // Valid once requested().
  ExitKind kind() const;
  std::string message() const;
  int fd() const { return event_.get(); }

 private:
  explicit ExitRequest(EventFd event) : event_(std::move(event)) {}
  EventFd event_;
  std::atomic<bool> requested_{false};
  mutable std::mutex mu_;
  ExitKind kind_ = ExitKind::kVmmError;
  std::string message_;
};

}  // namespace hearth
