// Test helpers: a MicroVm running on its own thread (as the VMM thread runs it) with its
// console in a file, and console parsing.
#pragma once

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "vmm/microvm.h"

namespace hearth {

using namespace std::chrono_literals;

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The "count N" values of complete lines, in order.
inline std::vector<long> Counts(const std::string& text) {
  std::vector<long> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // Last line without '\n': incomplete.
    if (line.rfind("count ", 0) == 0) out.push_back(std::stol(line.substr(6)));
  }
  return out;
}

inline size_t Occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// A MicroVm running on its own thread (as the VMM thread would run it), its console in a file.
class RunningVm {
 public:
  RunningVm(std::unique_ptr<MicroVm> vm, std::string console, Fd console_fd, EventFd stop)
      : vm_(std::move(vm)), console_(std::move(console)), console_fd_(std::move(console_fd)),
        stop_(std::move(stop)) {
    thread_ = std::thread([this] {
      outcome_ = std::make_unique<Result<RunOutcome>>(vm_->Run());
      done_.store(true);
    });
  }
  ~RunningVm() { Stop(); }
  MicroVm& vm() { return *vm_; }
  std::string Console() const { return ReadAll(console_); }
  // Waits until the console holds at least `n` complete count lines.
  bool WaitForCounts(size_t n, std::chrono::seconds timeout = 60s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Counts(Console()).size() >= n) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // Pauses once the vCPU thread is up (Run() starts it asynchronously).
  Status Pause() {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    Status s = vm_->PauseVcpus();
    while (!s.ok() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
      s = vm_->PauseVcpus();
    }
    return s;
  }
  // Waits for Run() to return on its own (the guest powered off...).
  bool WaitForExit(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done_.load()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(50ms);
    }
    thread_.join();
    return true;
  }
  // Why Run() returned (after Stop or WaitForExit).
  std::string OutcomeText() const {
    if (!outcome_) return "still running";
    if (!outcome_->ok()) return "error: " + outcome_->error().message();
    return std::string(ExitKindName((*outcome_)->kind)) + ": " + (*outcome_)->message;
  }
  bool PoweredOff() const { return outcome_ && outcome_->ok() && (*outcome_)->kind == ExitKind::kPowerOff; }
  void Stop() {
    if (!thread_.joinable()) return;
    (void)stop_.Signal();
    thread_.join();
  }

 private:
  std::unique_ptr<MicroVm> vm_;
  std::string console_;
  Fd console_fd_;
  EventFd stop_;
  std::thread thread_;
  std::unique_ptr<Result<RunOutcome>> outcome_;
  std::atomic<bool> done_{false};
};

}  // namespace hearth
