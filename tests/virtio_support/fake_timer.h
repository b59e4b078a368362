// A MonotonicTimer on a fake clock, for rate limiter and device tests: time moves only when the
// test calls Advance(), and the fd (an eventfd) becomes readable when an armed deadline passes,
// so a test can drive a throttled device through its event_sources()/OnEvent path without
// sleeping.
#pragma once

#include <poll.h>

#include <cstdint>
#include <limits>

#include "base/fd.h"
#include "virtio/rate_limiter/timer.h"

namespace hearth::testing {

class FakeTimer : public MonotonicTimer {
 public:
  explicit FakeTimer(uint64_t start_ns = 1'000'000'000)
      : now_(start_ns), event_(std::move(EventFd::Create()).value()) {}

  uint64_t NowNs() const override { return now_; }
  Status ArmAfter(uint64_t delay_ns) override {
    if (fail_arm_) return Error("timerfd_settime: injected failure");
    ++arm_count_;
    last_delay_ = delay_ns;
    armed_ = true;
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    deadline_ = now_ > max - delay_ns ? max : now_ + delay_ns;
    Fire();
    return Ok();
  }
  Status Disarm() override {
    armed_ = false;
    return Ok();
  }
  int fd() const override { return event_.get(); }
  void Acknowledge() override { (void)event_.Consume(); }

  // Moves the clock on; the fd becomes readable if the armed deadline has passed.
  void Advance(uint64_t ns) {
    now_ += ns;
    Fire();
  }
  // Moves the clock to the armed deadline (the moment the timer fires).
  void AdvanceToDeadline() {
    if (armed_ && deadline_ > now_) now_ = deadline_;
    Fire();
  }
  bool readable() const {
    pollfd p{event_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  bool armed() const { return armed_; }
  uint64_t deadline() const { return deadline_; }
  uint64_t last_delay() const { return last_delay_; }
  int arm_count() const { return arm_count_; }
  void set_fail_arm(bool fail) { fail_arm_ = fail; }

 private:
  void Fire() {
    if (armed_ && now_ >= deadline_) {
      armed_ = false;
      (void)event_.Signal();
    }
  }

  uint64_t now_;
  EventFd event_;
  bool armed_ = false;
  uint64_t deadline_ = 0;
  uint64_t last_delay_ = 0;
  int arm_count_ = 0;
  bool fail_arm_ = false;
};

}  // namespace hearth::testing
