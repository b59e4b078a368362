#include "virtio/rate_limiter/token_bucket.h"

#include <algorithm>
#include <limits>
#include <string>

namespace hearth {
namespace {

using u128 = unsigned __int128;
constexpr uint64_t kForever = std::numeric_limits<uint64_t>::max();
constexpr u128 kU128Max = ~u128{0};
constexpr uint64_t kNsPerMs = 1'000'000;

uint64_t Saturate(u128 v) { return v > kForever ? kForever : static_cast<uint64_t>(v); }
uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > kForever - b ? kForever : a + b; }

// ceil(a * b / c) for c > 0, saturated to uint64_t. Exact whenever a * b fits in 128 bits, which
// covers every refill time below 2^64 ns (584 years); beyond that, long double is close enough.
uint64_t MulDivCeil(uint64_t a, u128 b, uint64_t c) {
  if (a == 0 || b == 0) return 0;
  if (b <= kU128Max / a) {
    const u128 product = static_cast<u128>(a) * b;
    return Saturate(product / c + (product % c != 0 ? 1 : 0));
  }
  const long double approx = static_cast<long double>(a) * static_cast<long double>(b) / c;
  return approx >= 18446744073709551615.0L ? kForever : static_cast<uint64_t>(approx) + 1;
}

}  // namespace

TokenBucket::TokenBucket(uint64_t size, uint64_t one_time_burst, uint64_t refill_time_ms,
                         uint64_t now_ns)
    : size_(size),
      initial_one_time_burst_(one_time_burst),
      one_time_burst_(one_time_burst),
      refill_time_ms_(refill_time_ms),
      refill_ns_(static_cast<u128>(refill_time_ms) * kNsPerMs),
      budget_(size),
      last_refill_ns_(now_ns) {}

std::optional<TokenBucket> TokenBucket::Create(const TokenBucketConfig& config, uint64_t now_ns) {
  if (config.size == 0 || config.refill_time_ms == 0) return std::nullopt;
  return TokenBucket(config.size, config.one_time_burst, config.refill_time_ms, now_ns);
}

Result<TokenBucket> TokenBucket::Restore(const TokenBucketState& state, uint64_t now_ns) {
  if (state.size == 0 || state.refill_time_ms == 0) {
    return Error("token bucket state: size " + std::to_string(state.size) + " and refill time " +
                 std::to_string(state.refill_time_ms) + " ms must both be non-zero");
  }
  if (state.budget > state.size) {
    return Error("token bucket state: budget " + std::to_string(state.budget) +
                 " is larger than the bucket size " + std::to_string(state.size));
  }
  if (state.refill_elapsed_ns != 0 && state.borrowed_ns != 0) {
    return Error("token bucket state: both refill_elapsed_ns and borrowed_ns are set");
  }
  TokenBucket bucket(state.size, state.one_time_burst, state.refill_time_ms, now_ns);
  bucket.budget_ = state.budget;
  if (state.borrowed_ns != 0) {
    bucket.last_refill_ns_ = SaturatingAdd(now_ns, state.borrowed_ns);
  } else {
    bucket.last_refill_ns_ = now_ns - std::min(now_ns, state.refill_elapsed_ns);
  }
  return bucket;
}

TokenBucketState TokenBucket::Save(uint64_t now_ns) const {
  TokenBucketState s;
  s.size = size_;
  s.one_time_burst = one_time_burst_;
  s.refill_time_ms = refill_time_ms_;
  s.budget = budget_;
  if (last_refill_ns_ > now_ns) {
    s.borrowed_ns = last_refill_ns_ - now_ns;
  } else {
    s.refill_elapsed_ns = now_ns - last_refill_ns_;
  }
  return s;
}

uint64_t TokenBucket::TimeForTokens(uint64_t tokens) const {
  return MulDivCeil(tokens, refill_ns_, size_);
}

void TokenBucket::Refill(uint64_t now_ns) {
  if (now_ns <= last_refill_ns_) return;  // No time passed, or a debt is still being paid.
  if (budget_ >= size_) {
    // Full: nothing accrues, and no fraction of a token is banked for later.
    last_refill_ns_ = now_ns;
    return;
  }
  const u128 elapsed = now_ns - last_refill_ns_;
  if (elapsed >= refill_ns_) {
    budget_ = size_;
    last_refill_ns_ = now_ns;
    return;
  }
  // elapsed < 2^64 and size < 2^64: the product fits in 128 bits.
  const u128 tokens = elapsed * size_ / refill_ns_;
  if (tokens == 0) return;
  if (tokens >= size_ - budget_) {
    budget_ = size_;
    last_refill_ns_ = now_ns;
    return;
  }
  budget_ += static_cast<uint64_t>(tokens);
  // Advance by the time those whole tokens took (rounded up, so no time is counted twice); the
  // remainder carries a fraction of a token over to the next refill. tokens * refill_ns <=
  // elapsed * size, so this fits too, and it is at most `elapsed`.
  const u128 used = (tokens * refill_ns_ + size_ - 1) / size_;
  last_refill_ns_ += static_cast<uint64_t>(used);
}

TokenBucket::Verdict TokenBucket::Check(uint64_t tokens) const {
  if (tokens <= one_time_burst_) return Verdict::kAffordable;
  const uint64_t rest = tokens - one_time_burst_;
  if (rest <= budget_) return Verdict::kAffordable;
  if (rest > size_) return Verdict::kOversized;
  return Verdict::kShort;
}

uint64_t TokenBucket::WaitFor(uint64_t tokens, uint64_t now_ns) const {
  const uint64_t rest = tokens > one_time_burst_ ? tokens - one_time_burst_ : 0;
  if (rest <= budget_) return 1;
  const uint64_t ready_at = SaturatingAdd(last_refill_ns_, TimeForTokens(rest - budget_));
  if (ready_at > now_ns) return ready_at - now_ns;
  return ready_at == kForever ? kForever : 1;  // Saturated: never, rather than at once.
}

uint64_t TokenBucket::Take(uint64_t tokens, uint64_t now_ns) {
  const uint64_t from_burst = std::min(one_time_burst_, tokens);
  one_time_burst_ -= from_burst;
  const uint64_t rest = tokens - from_burst;
  if (rest <= budget_) {
    budget_ -= rest;
    return 0;
  }
  // Oversized: empty the bucket and borrow the excess from the refill to come.
  const uint64_t excess = rest - budget_;
  budget_ = 0;
  last_refill_ns_ = SaturatingAdd(std::max(now_ns, last_refill_ns_), TimeForTokens(excess));
  return last_refill_ns_ > now_ns ? last_refill_ns_ - now_ns : 1;
}

}  // namespace hearth
