// virtio-blk with a rate limiter on a fake clock, and the PATCH /drives operations: the queue
// stops when throttled, the limiter's timer (one of event_sources()) resumes it, throttling is
// counted; the backing file can be swapped under a running driver.
#include <sys/stat.h>

#include <fstream>

#include "tests/virtio/block/block_test_util.h"
#include "snapshot/state_codec.h"
#include "tests/virtio_support/fake_timer.h"
#include "virtio/mmio_transport.h"
#include "virtio/rate_limiter/rate_limiter_codec.h"

namespace hearth::testing {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kImageSize = 256 * 1024;

std::string EngineName(const ::testing::TestParamInfo<BlockOptions::IoEngine>& info) {
  return info.param == BlockOptions::kAsync ? "Async" : "Sync";
}

RateLimiterConfig Bandwidth(uint64_t size, uint64_t refill_ms) {
  RateLimiterConfig c;
  c.bandwidth = TokenBucketConfig{size, 0, refill_ms};
  return c;
}

class VirtioBlockRateLimit : public ::testing::TestWithParam<BlockOptions::IoEngine> {
 protected:
  bool Start(std::optional<RateLimiterConfig> limit, bool read_only = false) {
    auto timer = std::make_unique<FakeTimer>();
    timer_ = timer.get();
    BlockOptions options{"rootfs", image_.path(), read_only, BlockOptions::kUnsafe, GetParam(),
                         std::move(limit)};
    return h_.Start(options, /*event_idx=*/false, /*indirect=*/true, std::move(timer));
  }
  int TimerFd() { return h_.device().rate_limiter().timer_fd(); }
  // The event loop's part: the timer fd is readable, the device handles it.
  void FireTimer() {
    timer_->AdvanceToDeadline();
    ASSERT_TRUE(timer_->readable());
    h_.device().OnEvent(TimerFd(), EPOLLIN);
    h_.WaitIdle();
  }

  TempImage image_{kImageSize};
  BlockHarness h_;
  FakeTimer* timer_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlockRateLimit,
                         ::testing::Values(BlockOptions::kSync, BlockOptions::kAsync), EngineName);

TEST_P(VirtioBlockRateLimit, TheTimerIsAnEventSourceLimitedOrNot) {
  ASSERT_TRUE(Start(std::nullopt));
  const auto sources = h_.device().event_sources();
  ASSERT_FALSE(sources.empty());
  EXPECT_EQ(sources[0].fd, TimerFd());
  EXPECT_EQ(sources[0].events, static_cast<uint32_t>(EPOLLIN));
  EXPECT_FALSE(h_.device().rate_limiter().limited());
}

TEST_P(VirtioBlockRateLimit, AThrottledQueueStopsAndTheTimerResumesIt) {
  ASSERT_TRUE(Start(Bandwidth(8192, 100)));  // 8 KiB per 100 ms.
  Request a = h_.Add(VIRTIO_BLK_T_IN, 0, 8192);
  Request b = h_.Add(VIRTIO_BLK_T_IN, 16, 4096);
  Request c = h_.Add(VIRTIO_BLK_T_IN, 24, 4096);
  h_.Kick();
  // The first request takes the whole bucket; the second stays on the ring.
  EXPECT_EQ(h_.driver().used_idx(), 1);
  EXPECT_EQ(h_.Status(a), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(b), 0xff);
  EXPECT_EQ(h_.queue().state().next_avail, 1);  // Put back, not held by the device.
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 1u);
  EXPECT_EQ(h_.device().metrics().read_requests, 1u);
  EXPECT_EQ(timer_->last_delay(), 50 * kMs);
  EXPECT_EQ(h_.interrupt().used(), 1);

  // Kicks while throttled do nothing (and count no new throttling).
  h_.Kick();
  h_.Kick();
  EXPECT_EQ(h_.driver().used_idx(), 1);
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 1u);

  // 50 ms later the timer fires: b goes, c is throttled again.
  FireTimer();
  EXPECT_EQ(h_.driver().used_idx(), 2);
  EXPECT_EQ(h_.Status(b), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(b, 4096), Pattern(4096, 16 * 512));
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 2u);
  FireTimer();
  EXPECT_EQ(h_.driver().used_idx(), 3);
  EXPECT_EQ(h_.Status(c), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(c, 4096), Pattern(4096, 24 * 512));
  EXPECT_EQ(h_.device().metrics().read_bytes, 16384u);
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 2u);
  EXPECT_EQ(h_.interrupt().used(), 3);

  // A spurious timer event is harmless.
  h_.device().OnEvent(TimerFd(), EPOLLIN);
  EXPECT_EQ(h_.driver().used_idx(), 3);
}

TEST_P(VirtioBlockRateLimit, OpsCountEveryValidRequestAndBytesOnlyData) {
  RateLimiterConfig ops;
  ops.ops = TokenBucketConfig{2, 0, 1000};
  ASSERT_TRUE(Start(ops));
  Request id = h_.Add(VIRTIO_BLK_T_GET_ID, 0, 20);
  Request flush = h_.Add(VIRTIO_BLK_T_FLUSH, 0, 0);
  Request read = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.driver().used_idx(), 2);
  EXPECT_EQ(h_.Status(id), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(flush), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(read), 0xff);
  EXPECT_EQ(timer_->last_delay(), 500 * kMs);
  FireTimer();
  EXPECT_EQ(h_.Status(read), VIRTIO_BLK_S_OK);

  // Malformed requests are answered at once and cost nothing: the bucket is empty now.
  Request bad = h_.Add(VIRTIO_BLK_T_IN, kImageSize / 512, 512);  // Past the end.
  h_.Kick();
  EXPECT_EQ(h_.Status(bad), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 1u);
}

TEST_P(VirtioBlockRateLimit, AnOversizedRequestPassesAndHoldsBackTheNext) {
  ASSERT_TRUE(Start(Bandwidth(1024, 100)));
  Request big = h_.Add(VIRTIO_BLK_T_OUT, 0, 8192, Pattern(8192, 99));
  Request next = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(big), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(next), 0xff);
  EXPECT_EQ(timer_->last_delay(), 700 * kMs);  // 7 KiB borrowed at 1 KiB per 100 ms.
  // Let through, but the queue stopped: one throttling event.
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 1u);
  FireTimer();
  // Debt paid, budget still empty: the read waits its own 50 ms.
  EXPECT_EQ(h_.Status(next), 0xff);
  EXPECT_EQ(timer_->last_delay(), 50 * kMs);
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 2u);
  FireTimer();
  EXPECT_EQ(h_.Status(next), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(next, 512), Pattern(512, 99));
}

TEST_P(VirtioBlockRateLimit, PatchingTheLimitResumesAThrottledQueue) {
  ASSERT_TRUE(Start(Bandwidth(4096, 1000)));
  std::vector<Request> rs;
  for (int i = 0; i < 8; ++i) rs.push_back(h_.Add(VIRTIO_BLK_T_IN, i * 8, 4096));
  h_.Kick();
  EXPECT_EQ(h_.driver().used_idx(), 1);

  ASSERT_TRUE(h_.device().UpdateRateLimiter(std::nullopt).ok());  // No change.
  EXPECT_EQ(h_.device().rate_limiter().config(), Bandwidth(4096, 1000));

  RateLimiterConfig lifted;
  lifted.bandwidth = TokenBucketConfig{};  // Size 0: no bandwidth limit.
  ASSERT_TRUE(h_.device().UpdateRateLimiter(lifted).ok());
  EXPECT_FALSE(h_.device().rate_limiter().limited());
  FireTimer();  // Fires at once (1 ns), not after the old 1 s wait.
  EXPECT_EQ(timer_->last_delay(), 1u);
  EXPECT_EQ(h_.driver().used_idx(), 8);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(h_.Status(rs[i]), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h_.Data(rs[i], 4096), Pattern(4096, i * 4096));
  }

  // And a limit can be set on a drive that had none.
  ASSERT_TRUE(h_.device().UpdateRateLimiter(Bandwidth(512, 1000)).ok());
  Request x = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  Request y = h_.Add(VIRTIO_BLK_T_IN, 1, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(x), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(y), 0xff);
  EXPECT_EQ(h_.device().metrics().rate_limiter_throttled_events, 2u);
}

TEST_P(VirtioBlockRateLimit, SavesTheLimiterState) {
  ASSERT_TRUE(Start(Bandwidth(4096, 1000)));
  h_.Add(VIRTIO_BLK_T_IN, 0, 4096);
  h_.Add(VIRTIO_BLK_T_IN, 8, 1024);
  h_.Kick();
  const BlockState s = h_.device().Save();
  ASSERT_TRUE(s.rate_limiter.bandwidth.has_value());
  EXPECT_EQ(s.rate_limiter.bandwidth->size, 4096u);
  EXPECT_EQ(s.rate_limiter.bandwidth->budget, 0u);
  EXPECT_EQ(s.rate_limiter.blocked_ns, 250 * kMs);
  EXPECT_FALSE(s.rate_limiter.ops.has_value());
}

// ---------------------------------------------------------------------------------------------
// Snapshots: the limiter's buckets in SaveState/RestoreState; I/O in flight finished first.

#define ASSERT_STATUS_OK(expr)                              \
  do {                                                      \
    auto status_ = (expr);                                  \
    ASSERT_TRUE(status_.ok()) << status_.error().message(); \
  } while (0)

void ExpectErrorContains(const Status& s, const std::string& fragment) {
  ASSERT_FALSE(s.ok()) << "expected an error with: " << fragment;
  EXPECT_NE(s.error().message().find(fragment), std::string::npos) << s.error().message();
}

RateLimiterConfig BandwidthAndOps(uint64_t bytes, uint64_t burst, uint64_t ops) {
  RateLimiterConfig c;
  c.bandwidth = TokenBucketConfig{bytes, burst, 1000};
  c.ops = TokenBucketConfig{ops, 0, 1000};
  return c;
}

// A second device as a restore builds it: same options, not activated, its own fake clock at
// the same time as the first one's.
std::unique_ptr<Block> Rebuilt(const std::string& path, std::optional<RateLimiterConfig> limit) {
  auto device = Block::Create(BlockOptions{"rootfs", path, false, BlockOptions::kUnsafe,
                                           BlockOptions::kSync, std::move(limit)},
                              std::make_unique<FakeTimer>());
  EXPECT_TRUE(device.ok());
  return device.ok() ? std::move(device).value() : nullptr;
}

std::vector<uint8_t> EncodedLimiter(const RateLimiterState& limiter, uint8_t version = 1) {
  StateWriter w;
  w.U8(version);
  PutRateLimiterState(w, limiter);
  return w.Take();
}

TEST_P(VirtioBlockRateLimit, SnapshotStateRoundTripsBudgetBurstAndBlock) {
  ASSERT_TRUE(Start(BandwidthAndOps(4096, 8192, 2)));
  // The bytes come out of the one-time burst; the third request is short of ops and blocks.
  h_.Add(VIRTIO_BLK_T_IN, 0, 1024);
  h_.Add(VIRTIO_BLK_T_IN, 2, 4096);
  Request blocked = h_.Add(VIRTIO_BLK_T_IN, 10, 2048);
  h_.Kick();
  EXPECT_EQ(h_.Status(blocked), 0xff);
  const RateLimiterState saved = h_.device().rate_limiter().Save();
  ASSERT_TRUE(saved.bandwidth && saved.ops);
  EXPECT_EQ(saved.bandwidth->one_time_burst, 8192u - 5120u);
  EXPECT_EQ(saved.bandwidth->budget, 4096u);
  EXPECT_EQ(saved.ops->budget, 0u);
  EXPECT_GT(saved.blocked_ns, 0u);

  auto restored = Rebuilt(image_.path(), BandwidthAndOps(4096, 8192, 2));
  ASSERT_NE(restored, nullptr);
  EXPECT_NE(restored->rate_limiter().Save(), saved);  // Full buckets, not blocked.
  ASSERT_STATUS_OK(restored->RestoreState(h_.device().SaveState()));
  EXPECT_EQ(restored->rate_limiter().Save(), saved);
  EXPECT_TRUE(restored->rate_limiter().blocked());
  EXPECT_EQ(restored->SaveState(), h_.device().SaveState());
}

TEST_P(VirtioBlockRateLimit, SnapshotStateWithoutALimiterRoundTrips) {
  ASSERT_TRUE(Start(std::nullopt));
  auto restored = Rebuilt(image_.path(), std::nullopt);
  ASSERT_NE(restored, nullptr);
  ASSERT_STATUS_OK(restored->RestoreState(h_.device().SaveState()));
  EXPECT_FALSE(restored->rate_limiter().limited());
  // The default (no device state) is refused: every virtio-blk snapshot carries its state.
  ExpectErrorContains(restored->RestoreState({}), "virtio-blk rootfs state");
}

TEST_P(VirtioBlockRateLimit, SnapshotStateIsCheckedBeforeAnythingChanges) {
  ASSERT_TRUE(Start(BandwidthAndOps(4096, 2048, 100)));
  h_.Add(VIRTIO_BLK_T_IN, 0, 4096);
  h_.Kick();
  const RateLimiterState good = h_.device().rate_limiter().Save();
  auto restored = Rebuilt(image_.path(), BandwidthAndOps(4096, 2048, 100));
  ASSERT_NE(restored, nullptr);
  const RateLimiterState before = restored->rate_limiter().Save();
  auto refused = [&](std::vector<uint8_t> bytes, const std::string& message) {
    auto s = restored->RestoreState(bytes);
    ASSERT_FALSE(s.ok()) << message;
    EXPECT_NE(s.error().message().find(message), std::string::npos) << s.error().message();
    EXPECT_EQ(restored->rate_limiter().Save(), before) << message;
  };
  const std::vector<uint8_t> bytes = EncodedLimiter(good);
  refused(EncodedLimiter(good, 2), "virtio-blk rootfs state: version 2, this Hearth reads 1");
  refused(std::vector<uint8_t>(bytes.begin(), bytes.end() - 3), "virtio-blk rootfs state");
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  refused(longer, "virtio-blk rootfs state");
  RateLimiterState s = good;
  s.bandwidth->budget = s.bandwidth->size + 1;
  refused(EncodedLimiter(s), "budget 4097 is larger than the bucket size 4096");
  s = good;
  s.bandwidth->size = 8192;
  refused(EncodedLimiter(s), "bandwidth bucket: the state's size 8192 / refill 1000 ms differ");
  s = good;
  s.bandwidth->one_time_burst = 4096;
  refused(EncodedLimiter(s), "one_time_burst left 4096 is more than the configured 2048");
  s = good;
  s.ops.reset();
  refused(EncodedLimiter(s), "ops bucket: the state has none, the configuration has one");
  s = good;
  s.blocked_ns = 3'600'000 * kMs;
  refused(EncodedLimiter(s), "blocked for 3600000000000 ns, more than a bucket's refill or debt");
  s = good;
  s.ops->refill_elapsed_ns = 5;
  s.ops->borrowed_ns = 5;
  refused(EncodedLimiter(s), "both refill_elapsed_ns and borrowed_ns are set");
  // An active device takes no state.
  ExpectErrorContains(h_.device().RestoreState(bytes), "the device is already active");
  // And the good bytes do restore.
  ASSERT_STATUS_OK(restored->RestoreState(bytes));
  EXPECT_EQ(restored->rate_limiter().Save(), good);
}

TEST_P(VirtioBlockRateLimit, PrepareForSnapshotFinishesRequestsInFlight) {
  ASSERT_TRUE(Start(std::nullopt));
  const bool async = h_.device().engine() == BlockOptions::kAsync;
  // io_uring may complete page-cache I/O inline at submission (the device then reaps it before
  // ProcessQueue returns): the image's pages are dropped from the page cache before each round,
  // and rounds are kicked until one leaves requests in flight.
  const Fd image(::open(image_.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(image.valid());
  uint16_t used = 0;
  bool caught_in_flight = false;
  for (int round = 0; round < 40 && !caught_in_flight; ++round) {
    ::fdatasync(image.get());
    (void)::posix_fadvise(image.get(), 0, 0, POSIX_FADV_DONTNEED);
    std::vector<Request> reads;
    for (int i = 0; i < 16; ++i) reads.push_back(h_.Add(VIRTIO_BLK_T_IN, i * 8, 4096, {}, /*indirect=*/true));
    const std::vector<uint8_t> written(8192, static_cast<uint8_t>(round + 1));
    Request write = h_.Add(VIRTIO_BLK_T_OUT, 200, 8192, written, /*indirect=*/true);
    h_.device().ProcessQueue(0);  // Submitted; completions not waited for.
    used = static_cast<uint16_t>(used + 17);
    caught_in_flight = h_.device().in_flight() > 0;
    if (async && !caught_in_flight) {
      ASSERT_EQ(h_.driver().used_idx(), used);  // All done inline: another round.
      continue;
    }
    ASSERT_STATUS_OK(h_.device().PrepareForSnapshot());
    // Everything is back in the used ring with its data and status, and the guest was told:
    // what a snapshot taken now saves is complete.
    EXPECT_EQ(h_.device().in_flight(), 0u);
    EXPECT_EQ(h_.driver().used_idx(), used);
    EXPECT_GE(h_.interrupt().used(), 1);
    std::map<uint16_t, uint32_t> this_round;  // head -> used length
    for (const auto& e : h_.driver().UsedSince(static_cast<uint16_t>(used - 17))) {
      this_round[static_cast<uint16_t>(e.id)] = e.len;
    }
    EXPECT_EQ(this_round.size(), 17u);
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(h_.Status(reads[i]), VIRTIO_BLK_S_OK) << i;
      EXPECT_EQ(h_.Data(reads[i], 4096), Pattern(4096, i * 4096)) << i;
      EXPECT_EQ(this_round[reads[i].head], 4097u) << i;
    }
    EXPECT_EQ(this_round[write.head], 1u);
    EXPECT_EQ(h_.Status(write), VIRTIO_BLK_S_OK);
    const std::vector<uint8_t> contents = image_.Contents();
    EXPECT_TRUE(std::equal(written.begin(), written.end(), contents.begin() + 200 * 512));
    break;
  }
  if (async) {
    EXPECT_TRUE(caught_in_flight) << "io_uring completed every round inline";
  }
  // Nothing in flight: a no-op.
  ASSERT_STATUS_OK(h_.device().PrepareForSnapshot());
  EXPECT_EQ(h_.driver().used_idx(), used);
}

TEST_P(VirtioBlockRateLimit, ADeviceResetWhileThrottledIgnoresTheTimer) {
  ASSERT_TRUE(Start(Bandwidth(512, 1000)));
  h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Add(VIRTIO_BLK_T_IN, 1, 512);
  h_.Kick();
  h_.device().Reset();
  timer_->AdvanceToDeadline();
  h_.device().OnEvent(TimerFd(), EPOLLIN);  // No queue to touch: nothing happens.
  EXPECT_EQ(h_.driver().used_idx(), 1);
  EXPECT_FALSE(h_.device().rate_limiter().blocked());
}

// ---------------------------------------------------------------------------------------------
// PATCH /drives/{id} path_on_host.

// A second image with different bytes.
std::string WriteImage(const TempImage& dir, const std::string& name, uint64_t size,
                       uint64_t pattern_start) {
  const std::string path = dir.dir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  auto bytes = Pattern(size, pattern_start);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(size));
  return path;
}

uint64_t ConfigCapacity(const Block& device) {
  virtio_blk_config config{};
  device.ReadConfig(0, std::span(reinterpret_cast<uint8_t*>(&config), sizeof(config)));
  return config.capacity;
}

TEST_P(VirtioBlockRateLimit, UpdateBackingFileSwapsTheDiskAndTellsTheGuest) {
  ASSERT_TRUE(Start(std::nullopt));
  EXPECT_EQ(ConfigCapacity(h_.device()), kImageSize / 512);
  const std::string bigger = WriteImage(image_, "bigger.img", 2 * kImageSize + 100, 1'000'000);

  ASSERT_TRUE(h_.device().UpdateBackingFile(bigger).ok());
  EXPECT_EQ(h_.interrupt().config(), 1);
  EXPECT_EQ(ConfigCapacity(h_.device()), 2 * kImageSize / 512);  // Whole sectors only.
  EXPECT_EQ(h_.device().capacity_sectors(), 2 * kImageSize / 512);
  EXPECT_EQ(h_.device().options().path, bigger);
  EXPECT_EQ(h_.device().Save().path, bigger);

  // Reads come from the new file, including sectors the old one did not have.
  Request low = h_.Add(VIRTIO_BLK_T_IN, 0, 1024);
  Request high = h_.Add(VIRTIO_BLK_T_IN, kImageSize / 512 + 10, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(low), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(low, 1024), Pattern(1024, 1'000'000));
  EXPECT_EQ(h_.Status(high), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(high, 512), Pattern(512, 1'000'000 + kImageSize + 10 * 512));
  // Writes go there too; the old image is untouched.
  Request w = h_.Add(VIRTIO_BLK_T_OUT, 1, 512, std::vector<uint8_t>(512, 0x5a));
  h_.Kick();
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_OK);
  std::ifstream in(bigger, std::ios::binary);
  std::vector<uint8_t> sector(512);
  in.seekg(512);
  in.read(reinterpret_cast<char*>(sector.data()), 512);
  EXPECT_EQ(sector, std::vector<uint8_t>(512, 0x5a));
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));

  // A smaller file shrinks the disk: requests past the new end fail.
  const std::string smaller = WriteImage(image_, "smaller.img", 4096, 7);
  ASSERT_TRUE(h_.device().UpdateBackingFile(smaller).ok());
  EXPECT_EQ(h_.interrupt().config(), 2);
  EXPECT_EQ(ConfigCapacity(h_.device()), 8u);
  Request past = h_.Add(VIRTIO_BLK_T_IN, 8, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(past), VIRTIO_BLK_S_IOERR);
}

TEST_P(VirtioBlockRateLimit, UpdateBackingFileFinishesInFlightRequestsOnTheOldFile) {
  ASSERT_TRUE(Start(std::nullopt));
  std::vector<Request> rs;
  for (int i = 0; i < 16; ++i) rs.push_back(h_.Add(VIRTIO_BLK_T_IN, i * 8, 4096));
  h_.device().ProcessQueue(0);  // Async: submitted, not yet reaped.
  const std::string other = WriteImage(image_, "other.img", kImageSize, 555);
  ASSERT_TRUE(h_.device().UpdateBackingFile(other).ok());
  EXPECT_EQ(h_.device().in_flight(), 0u);
  EXPECT_EQ(h_.driver().used_idx(), 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(h_.Status(rs[i]), VIRTIO_BLK_S_OK);
    EXPECT_EQ(h_.Data(rs[i], 4096), Pattern(4096, i * 4096)) << i;
  }
  Request after = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.Data(after, 512), Pattern(512, 555));
}

TEST_P(VirtioBlockRateLimit, UpdateBackingFileErrorsKeepTheOldFile) {
  ASSERT_TRUE(Start(std::nullopt));
  auto missing = h_.device().UpdateBackingFile(image_.dir() + "/nope.img");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(),
            "drive rootfs: open " + image_.dir() + "/nope.img: No such file or directory");
  auto empty = h_.device().UpdateBackingFile("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message(), "drive rootfs: no image path");
  // A directory: O_RDWR refuses it.
  auto dir = h_.device().UpdateBackingFile(image_.dir());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message().find(image_.dir()), std::string::npos);

  EXPECT_EQ(h_.interrupt().config(), 0);
  EXPECT_EQ(h_.device().options().path, image_.path());
  EXPECT_EQ(ConfigCapacity(h_.device()), kImageSize / 512);
  Request r = h_.Add(VIRTIO_BLK_T_IN, 2, 512);
  h_.Kick();
  EXPECT_EQ(h_.Data(r, 512), Pattern(512, 1024));
}

TEST_P(VirtioBlockRateLimit, UpdateBackingFileKeepsAReadOnlyDriveReadOnly) {
  ASSERT_TRUE(Start(std::nullopt, /*read_only=*/true));
  const std::string other = WriteImage(image_, "ro.img", kImageSize, 3);
  ASSERT_EQ(::chmod(other.c_str(), 0444), 0);
  ASSERT_TRUE(h_.device().UpdateBackingFile(other).ok());
  Request w = h_.Add(VIRTIO_BLK_T_OUT, 0, 512, std::vector<uint8_t>(512, 1));
  h_.Kick();
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_IOERR);
  EXPECT_TRUE(h_.device().device_features() & kVirtioBlkFRo);
  // A directory opens O_RDONLY and fails the regular-file check.
  auto dir = h_.device().UpdateBackingFile(image_.dir());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().message(), "drive rootfs: " + image_.dir() + ": not a regular file");
}

TEST(VirtioBlockBackingFile, BeforeActivationNoInterruptIsRaised) {
  TempImage image(4096);
  auto device = Block::Create(BlockOptions{"d", image.path(), false, BlockOptions::kUnsafe,
                                           BlockOptions::kSync, {}});
  ASSERT_TRUE(device.ok());
  const std::string other = WriteImage(image, "o.img", 8192, 1);
  ASSERT_TRUE((*device)->UpdateBackingFile(other).ok());
  EXPECT_EQ((*device)->capacity_sectors(), 16u);
}

// Through the transport: the guest sees a config-change interrupt and a new generation.
TEST(VirtioBlockBackingFile, TheTransportBumpsTheConfigGeneration) {
  TempImage image(4096);
  auto created = Block::Create(BlockOptions{"d", image.path(), false, BlockOptions::kUnsafe,
                                            BlockOptions::kSync, {}});
  ASSERT_TRUE(created.ok());
  std::shared_ptr<Block> device = std::move(created).value();
  auto memory = GuestMemory::Create({{0, 1 << 20}});
  ASSERT_TRUE(memory.ok());
  MmioTransport transport(device, &*memory, nullptr);
  auto read = [&](uint64_t offset) {
    uint32_t v = 0;
    transport.Read(offset, std::span(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  };
  auto write = [&](uint64_t offset, uint32_t v) {
    transport.Write(offset, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  VirtioDriver driver(*memory, 0x1000, 16, 0x10000);
  write(mmio::kStatus, kStatusAcknowledge);
  write(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  write(mmio::kDriverFeaturesSel, 1);
  write(mmio::kDriverFeatures, 1);  // VERSION_1
  write(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  write(mmio::kQueueSel, 0);
  write(mmio::kQueueNum, 16);
  write(mmio::kQueueDescLow, static_cast<uint32_t>(driver.desc_table()));
  write(mmio::kQueueDriverLow, static_cast<uint32_t>(driver.avail_ring()));
  write(mmio::kQueueDeviceLow, static_cast<uint32_t>(driver.used_ring()));
  write(mmio::kQueueReady, 1);
  write(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  ASSERT_TRUE(device->activated());
  EXPECT_EQ(read(mmio::kConfigGeneration), 0u);

  const std::string other = WriteImage(image, "o.img", 1 << 20, 1);
  ASSERT_TRUE(device->UpdateBackingFile(other).ok());
  EXPECT_EQ(read(mmio::kConfigGeneration), 1u);
  EXPECT_EQ(read(mmio::kInterruptStatus), kVirtioIntConfigChange);
  EXPECT_EQ(read(mmio::kConfig), (1u << 20) / 512);  // capacity, low word
}

}  // namespace
}  // namespace hearth::testing
