#include "virtio/rate_limiter/token_bucket.h"

#include <gtest/gtest.h>

#include <limits>

namespace hearth {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1000 * kMs;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kStart = 5 * kSec;

TokenBucket Make(uint64_t size, uint64_t burst, uint64_t refill_ms, uint64_t now = kStart) {
  auto b = TokenBucket::Create({size, burst, refill_ms}, now);
  EXPECT_TRUE(b.has_value());
  return *b;
}

TEST(TokenBucket, SizeOrRefillTimeZeroDoesNotLimit) {
  EXPECT_FALSE(TokenBucket::Create({0, 100, 1000}, kStart).has_value());
  EXPECT_FALSE(TokenBucket::Create({1000, 100, 0}, kStart).has_value());
  EXPECT_FALSE(TokenBucket::Create({0, 0, 0}, kStart).has_value());
  EXPECT_TRUE(TokenBucket::Create({1, 0, 1}, kStart).has_value());
}

TEST(TokenBucket, StartsFullAndRefillsLinearlyUpToItsSize) {
  TokenBucket b = Make(1000, 0, 1000);
  EXPECT_EQ(b.budget(), 1000u);
  EXPECT_EQ(b.Check(1000), TokenBucket::Verdict::kAffordable);
  EXPECT_EQ(b.Take(1000, kStart), 0u);
  EXPECT_EQ(b.budget(), 0u);
  EXPECT_EQ(b.Check(1), TokenBucket::Verdict::kShort);

  b.Refill(kStart + 250 * kMs);
  EXPECT_EQ(b.budget(), 250u);
  b.Refill(kStart + 500 * kMs);
  EXPECT_EQ(b.budget(), 500u);
  b.Refill(kStart + 500 * kMs);  // No time passed: nothing more.
  EXPECT_EQ(b.budget(), 500u);
  b.Refill(kStart + 100 * kSec);
  EXPECT_EQ(b.budget(), 1000u);  // Never above the size.
}

TEST(TokenBucket, CarriesFractionsOfATokenOver) {
  // 3 tokens per 10 ms: one every 3.33 ms. Refilling in small steps loses nothing.
  TokenBucket b = Make(3, 0, 10);
  ASSERT_EQ(b.Take(3, kStart), 0u);
  b.Refill(kStart + 5 * kMs);
  EXPECT_EQ(b.budget(), 1u);  // 1.5 tokens' worth of time: one whole token.
  b.Refill(kStart + 7 * kMs);
  EXPECT_EQ(b.budget(), 2u);  // 2.1 tokens' worth in total.
  ASSERT_EQ(b.Take(2, kStart + 7 * kMs), 0u);

  // Many 1-microsecond steps add up to exactly what one big step gives.
  TokenBucket fine = Make(1'000'000, 0, 1000);  // One token per microsecond.
  ASSERT_EQ(fine.Take(1'000'000, kStart), 0u);
  uint64_t now = kStart;
  for (int i = 0; i < 1000; ++i) {
    now += 1333;  // 1.333 tokens per step.
    fine.Refill(now);
  }
  EXPECT_EQ(fine.budget(), 1333u);
}

TEST(TokenBucket, OneTimeBurstIsSpentFirstAndNeverRefills) {
  TokenBucket b = Make(100, 50, 100);
  EXPECT_EQ(b.one_time_burst(), 50u);
  EXPECT_EQ(b.Check(150), TokenBucket::Verdict::kAffordable);
  EXPECT_EQ(b.Take(30, kStart), 0u);  // All from the burst.
  EXPECT_EQ(b.one_time_burst(), 20u);
  EXPECT_EQ(b.budget(), 100u);
  EXPECT_EQ(b.Take(70, kStart), 0u);  // 20 from the burst, 50 from the budget.
  EXPECT_EQ(b.one_time_burst(), 0u);
  EXPECT_EQ(b.budget(), 50u);
  b.Refill(kStart + 10 * kSec);
  EXPECT_EQ(b.budget(), 100u);
  EXPECT_EQ(b.one_time_burst(), 0u);
  EXPECT_EQ(b.config().one_time_burst, 50u);  // The configuration still says what was set.
}

TEST(TokenBucket, AShortRequestTakesNothing) {
  TokenBucket b = Make(100, 10, 100);
  ASSERT_EQ(b.Take(100, kStart), 0u);  // Burst 10, budget 90 -> 10 left.
  EXPECT_EQ(b.Check(50), TokenBucket::Verdict::kShort);
  EXPECT_EQ(b.budget(), 10u);
  EXPECT_EQ(b.one_time_burst(), 0u);
}

TEST(TokenBucket, WaitForIsTheExactRefillTime) {
  TokenBucket b = Make(1000, 0, 1000);  // One token per millisecond.
  ASSERT_EQ(b.Take(1000, kStart), 0u);
  EXPECT_EQ(b.WaitFor(300, kStart), 300 * kMs);
  b.Refill(kStart + 300 * kMs - 1);
  EXPECT_EQ(b.Check(300), TokenBucket::Verdict::kShort);
  EXPECT_EQ(b.WaitFor(300, kStart + 300 * kMs - 1), 1u);
  b.Refill(kStart + 300 * kMs);
  EXPECT_EQ(b.Check(300), TokenBucket::Verdict::kAffordable);

  // With budget and a fraction already accrued, only the rest is waited for.
  TokenBucket c = Make(3, 0, 10);
  ASSERT_EQ(c.Take(3, kStart), 0u);
  c.Refill(kStart + 5 * kMs);  // 1 token, and 1.67 ms towards the next.
  ASSERT_EQ(c.budget(), 1u);
  const uint64_t wait = c.WaitFor(2, kStart + 5 * kMs);
  EXPECT_EQ(wait, 1'666'668u);  // The 2nd token: 3.333334 ms after the 1st (ns rounded up).
  c.Refill(kStart + 5 * kMs + wait);
  EXPECT_EQ(c.budget(), 2u);
}

TEST(TokenBucket, AnOversizedRequestPassesAndBorrowsFromTheFuture) {
  TokenBucket b = Make(1000, 0, 1000);
  ASSERT_EQ(b.Take(400, kStart), 0u);  // 600 left.
  EXPECT_EQ(b.Check(2600), TokenBucket::Verdict::kOversized);
  // 600 from the budget, 2000 borrowed: two full refills before tokens accrue again.
  EXPECT_EQ(b.Take(2600, kStart), 2 * kSec);
  EXPECT_EQ(b.budget(), 0u);
  b.Refill(kStart + 2 * kSec - 1);
  EXPECT_EQ(b.budget(), 0u);  // Nothing accrues while the debt is paid back.
  b.Refill(kStart + 2 * kSec + 500 * kMs);
  EXPECT_EQ(b.budget(), 500u);
}

TEST(TokenBucket, OversizedMeansLargerThanTheBucketAfterTheBurst) {
  TokenBucket b = Make(100, 1000, 100);
  EXPECT_EQ(b.Check(1100), TokenBucket::Verdict::kAffordable);  // Burst + budget cover it.
  EXPECT_EQ(b.Check(1101), TokenBucket::Verdict::kOversized);
  ASSERT_EQ(b.Take(1050, kStart), 0u);  // 1000 burst + 50 budget.
  EXPECT_EQ(b.Check(51), TokenBucket::Verdict::kShort);
  EXPECT_EQ(b.Check(101), TokenBucket::Verdict::kOversized);
}

TEST(TokenBucket, HugeValuesNeitherOverflowNorWrap) {
  // The largest everything.
  TokenBucket huge = Make(kMax, kMax, kMax, kMax - 10);
  EXPECT_EQ(huge.Check(kMax), TokenBucket::Verdict::kAffordable);
  EXPECT_EQ(huge.Take(kMax, kMax - 10), 0u);  // From the burst.
  EXPECT_EQ(huge.Take(kMax, kMax - 10), 0u);  // From the budget.
  EXPECT_EQ(huge.budget(), 0u);
  huge.Refill(kMax);
  EXPECT_EQ(huge.budget(), 0u);  // 10 ns of a 584-million-year refill: no token yet.
  // Saturated waits are "forever", never "at once".
  EXPECT_EQ(huge.WaitFor(kMax, kMax), kMax);
  EXPECT_EQ(huge.WaitFor(1, kMax), kMax);

  // A huge bucket refilling fast: 2^64-1 tokens per millisecond.
  TokenBucket fast = Make(kMax, 0, 1, kStart);
  ASSERT_EQ(fast.Take(kMax, kStart), 0u);
  fast.Refill(kStart + 1);
  EXPECT_EQ(fast.budget(), kMax / 1'000'000);
  fast.Refill(kStart + 2 * kMs);
  EXPECT_EQ(fast.budget(), kMax);

  // A one-token bucket refilled once in 2^64-1 ms: an oversized request's debt saturates
  // at "forever" instead of wrapping into the past.
  TokenBucket slow = Make(1, 0, kMax, kStart);
  EXPECT_EQ(slow.Check(kMax), TokenBucket::Verdict::kOversized);
  EXPECT_EQ(slow.Take(kMax, kStart), kMax - kStart);
  slow.Refill(kMax);
  EXPECT_EQ(slow.budget(), 0u);
  EXPECT_EQ(slow.WaitFor(1, kStart), kMax - kStart);

  // Borrowing on top of a debt near the end of time saturates too.
  TokenBucket edge = Make(10, 0, 1000, kMax - kSec);
  EXPECT_EQ(edge.Take(kMax, kMax - kSec), kSec);  // Clamped at the end of the clock.
  EXPECT_EQ(edge.Take(kMax, kMax - kSec), kSec);
}

TEST(TokenBucket, SavesAndRestoresWithoutAbsoluteTimes) {
  TokenBucket b = Make(1000, 300, 1000);
  ASSERT_EQ(b.Take(800, kStart), 0u);  // Burst 0, budget 500.
  b.Refill(kStart + 100 * kMs + 500'000);  // +100 tokens, 0.5 ms towards the next.
  const TokenBucketState s = b.Save(kStart + 100 * kMs + 500'000);
  EXPECT_EQ(s.size, 1000u);
  EXPECT_EQ(s.one_time_burst, 0u);
  EXPECT_EQ(s.refill_time_ms, 1000u);
  EXPECT_EQ(s.budget, 600u);
  EXPECT_EQ(s.refill_elapsed_ns, 500'000u);
  EXPECT_EQ(s.borrowed_ns, 0u);

  // In another process, at another time: the same bucket.
  const uint64_t later = 77 * kSec;
  auto r = TokenBucket::Restore(s, later);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->Save(later), s);
  r->Refill(later + 500'000);
  EXPECT_EQ(r->budget(), 601u);

  // A debt survives as well.
  TokenBucket d = Make(1000, 0, 1000);
  ASSERT_EQ(d.Take(3000, kStart), 2 * kSec);
  const TokenBucketState ds = d.Save(kStart + kSec);
  EXPECT_EQ(ds.borrowed_ns, kSec);
  EXPECT_EQ(ds.refill_elapsed_ns, 0u);
  auto dr = TokenBucket::Restore(ds, later);
  ASSERT_TRUE(dr.ok());
  dr->Refill(later + kSec);
  EXPECT_EQ(dr->budget(), 0u);
  dr->Refill(later + kSec + 100 * kMs);
  EXPECT_EQ(dr->budget(), 100u);
}

TEST(TokenBucket, RestoreRejectsImpossibleState) {
  auto zero = TokenBucket::Restore({0, 0, 1000, 0, 0, 0}, kStart);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message(),
            "token bucket state: size 0 and refill time 1000 ms must both be non-zero");
  auto over = TokenBucket::Restore({100, 0, 1000, 101, 0, 0}, kStart);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message(),
            "token bucket state: budget 101 is larger than the bucket size 100");
  auto both = TokenBucket::Restore({100, 0, 1000, 1, 5, 5}, kStart);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message(),
            "token bucket state: both refill_elapsed_ns and borrowed_ns are set");
  // Elapsed time longer than the clock has run is clamped, not wrapped.
  auto early = TokenBucket::Restore({100, 0, 1000, 0, kMax, 0}, 10);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->Save(10).refill_elapsed_ns, 10u);
}

}  // namespace
}  // namespace hearth
