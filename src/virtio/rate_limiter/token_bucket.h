// One token bucket with Firecracker's semantics: `size` tokens (bytes or operations) that refill
// continuously, from empty to full in `refill_time_ms`, plus a `one_time_burst` of extra tokens
// that is spent first and never refills. The bucket starts full.
//
// A request for more tokens than the bucket can ever hold (more than `size` once the burst is
// spent) still goes through, as in Firecracker, by borrowing from the future: the bucket is
// emptied and the excess becomes a debt that the refill pays back before any token accrues again;
// Take() returns how long that takes, and the rate limiter blocks for that time. (Firecracker
// blocks for the same time but lets the bucket refill meanwhile, so a stream of oversized
// requests gets up to one bucket more per request than the limit; here the limit holds.)
//
// The bucket holds no clock: every call takes `now_ns` (monotonic nanoseconds). All arithmetic is
// overflow-safe for any uint64_t configuration: 128-bit intermediates, saturating at "forever".
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"
#include "config/vm_resources.h"

namespace hearth {

// What a snapshot keeps of a bucket (no absolute times: they mean nothing in another process).
struct TokenBucketState {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;  // What is left of it.
  uint64_t refill_time_ms = 0;
  uint64_t budget = 0;
  uint64_t refill_elapsed_ns = 0;  // Time since the last refill not yet turned into tokens.
  uint64_t borrowed_ns = 0;        // Time until a borrowed excess is paid back (then 0 elapsed).
  bool operator==(const TokenBucketState&) const = default;
};

class TokenBucket {
 public:
  // Nothing for a bucket that does not limit (size 0 or refill_time_ms 0).
  static std::optional<TokenBucket> Create(const TokenBucketConfig& config, uint64_t now_ns);
  // Re-checks every field (snapshot files are input like any other).
  static Result<TokenBucket> Restore(const TokenBucketState& state, uint64_t now_ns);

  // Adds the tokens accrued since the last refill, never above `size`.
  void Refill(uint64_t now_ns);

  enum class Verdict {
    kAffordable,  // The burst and budget cover the request.
    kOversized,   // Larger than the bucket can hold: passes, borrowing the excess.
    kShort,       // Must wait for the refill.
  };
  // After Refill(now).
  Verdict Check(uint64_t tokens) const;
  // For a kShort request: nanoseconds from `now_ns` until the refill covers it (at least 1).
  uint64_t WaitFor(uint64_t tokens, uint64_t now_ns) const;
  // Takes `tokens` (Check said kAffordable or kOversized). Returns 0, or for an oversized request
  // the nanoseconds until its debt is paid back.
  uint64_t Take(uint64_t tokens, uint64_t now_ns);

  uint64_t size() const { return size_; }
  uint64_t one_time_burst() const { return one_time_burst_; }
  uint64_t refill_time_ms() const { return refill_time_ms_; }
  uint64_t budget() const { return budget_; }
  TokenBucketConfig config() const { return {size_, initial_one_time_burst_, refill_time_ms_}; }

  TokenBucketState Save(uint64_t now_ns) const;

 private:
  TokenBucket(uint64_t size, uint64_t one_time_burst, uint64_t refill_time_ms, uint64_t now_ns);
  // ceil(tokens * refill_ns / size): the time the refill takes to produce `tokens`, saturated.
  uint64_t TimeForTokens(uint64_t tokens) const;

  uint64_t size_;
  uint64_t initial_one_time_burst_;
  uint64_t one_time_burst_;
  uint64_t refill_time_ms_;
  unsigned __int128 refill_ns_;
  uint64_t budget_;
  // Tokens accrue from this moment on; in the future while a borrowed excess is being paid back.
  uint64_t last_refill_ns_;
};

}  // namespace hearth
