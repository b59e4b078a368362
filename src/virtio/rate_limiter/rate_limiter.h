// A device's rate limiter (Firecracker's RateLimiter): a bandwidth bucket (bytes) and an ops
// bucket (requests or frames), either or both absent (= unlimited), and one timer.
//
// A device asks Consume(bytes, ops) before it serves a request. When a bucket is short, nothing
// is taken, the limiter becomes blocked and arms its timer for the moment the refill covers the
// request (at least kMinWait, so a throttled queue wakes at most ~1000 times a second); the
// device leaves the request on its ring and stops. The VMM event loop watches timer_fd(); on
// EPOLLIN the device calls OnTimer() and processes its queue again. Nothing ever busy-waits.
//
// Oversized requests (more than a bucket's size) pass and block the limiter until the borrowed
// excess is paid back (see token_bucket.h), so every request passes eventually and the
// configured rate holds over time.
//
// The timer fd exists for the limiter's whole life, limited or not, so that Update() (PATCH
// after boot) can turn limiting on without a new fd for the event loop (and without a syscall
// the seccomp policy would have to allow on the VMM thread later).
//
// Single-threaded: the VMM thread owns it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/result.h"
#include "config/vm_resources.h"
#include "virtio/rate_limiter/timer.h"
#include "virtio/rate_limiter/token_bucket.h"

namespace hearth {

// What a snapshot keeps of a limiter: its buckets and how long it stays blocked.
struct RateLimiterState {
  std::optional<TokenBucketState> bandwidth;
  std::optional<TokenBucketState> ops;
  uint64_t blocked_ns = 0;  // Time left until the timer fires; 0 when not blocked.
  bool operator==(const RateLimiterState&) const = default;
};

class RateLimiter {
 public:
  static constexpr uint64_t kMinWaitNs = 1'000'000;

  // With a CLOCK_MONOTONIC timerfd.
  static Result<RateLimiter> Create(const std::optional<RateLimiterConfig>& config);
  // With any timer (tests, benchmarks).
  static RateLimiter Create(const std::optional<RateLimiterConfig>& config,
                            std::unique_ptr<MonotonicTimer> timer);

  // Whether a request of `bytes` and `ops` may be served now. True: its tokens are taken (a zero
  // count skips that bucket). False: throttled, nothing taken, the timer armed; keep the request
  // and try again after OnTimer(). Always false while blocked.
  bool Consume(uint64_t bytes, uint64_t ops = 1);
  bool blocked() const { return blocked_; }
  // Whether any bucket limits.
  bool limited() const { return bandwidth_.has_value() || ops_.has_value(); }

  int timer_fd() const { return timer_->fd(); }
  // The timer fd was readable: acknowledges it and unblocks. False for a spurious wake-up (the
  // limiter was not blocked).
  bool OnTimer();

  // PATCH semantics (Firecracker's BucketUpdate): nothing changes without a config or for an
  // absent bucket; a bucket with size 0 or refill_time 0 stops limiting; any other bucket
  // replaces the old one, starting full. A blocked limiter re-checks at once (its timer fires
  // now), so a lifted limit resumes the queue without waiting out the old one.
  void Update(const std::optional<RateLimiterConfig>& update);
  // The buckets in force (absent = unlimited), with their configured one_time_burst.
  RateLimiterConfig config() const;
  const std::optional<TokenBucket>& bandwidth() const { return bandwidth_; }
  const std::optional<TokenBucket>& ops() const { return ops_; }

  RateLimiterState Save() const;
  // Replaces the buckets and re-arms the timer for what was left of a block. Checks every field;
  // on error nothing changes.
  Status Restore(const RateLimiterState& state);

 private:
  explicit RateLimiter(std::unique_ptr<MonotonicTimer> timer) : timer_(std::move(timer)) {}
  // Blocks until `delay_ns` from `now_ns` (at least kMinWaitNs). False when the timer could not
  // be armed: the limiter then stays unblocked rather than stall the device.
  bool BlockFor(uint64_t delay_ns, uint64_t now_ns);

  std::unique_ptr<MonotonicTimer> timer_;
  std::optional<TokenBucket> bandwidth_;
  std::optional<TokenBucket> ops_;
  bool blocked_ = false;
  uint64_t blocked_until_ns_ = 0;
};

}  // namespace hearth
