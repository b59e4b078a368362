// Runs the tiny guests virtio_blk and virtio_hostile (tests/guests) in the
// hearth binary with `drives` configured, and checks what the guests' own
// virtio-mmio drivers saw, hearth's exit code and stderr, and the image files
// on the host. Also bad drive configurations (exit 153).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/hearth_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/vm_config.h"

namespace hearth::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kBadConfig = 153;
constexpr size_t kImageBytes = 64 * 1024;    // 128 sectors.
constexpr size_t kPatternOffset = 8 * 512;   // virtio_blk: sector 8.
constexpr size_t kHostileOffset = 16 * 512;  // virtio_hostile: sector 16.
// A guest run is a few seconds at most; more means something is wrong.
constexpr double kMaxGuestSeconds = 30.0;
// hearth's stderr during a hostile run: a few warnings, never a flood.
constexpr size_t kMaxStderrLines = 60;

// The guests' 4 KiB pattern: dword k is 0xc0de0000 + k, little-endian.
std::string Pattern() {
  std::string p(4096, '\0');
  for (uint32_t k = 0; k < 1024; ++k) {
    uint32_t v = 0xc0de0000u + k;
    for (int b = 0; b < 4; ++b) p[k * 4 + b] = static_cast<char>(v >> (8 * b));
  }
  return p;
}

// The 32-bit sum of the little-endian dwords of `bytes`, as the guest prints
// it ("sum=0x%08x").
std::string DwordSum(const std::string& bytes) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    uint32_t v = 0;
    for (int b = 0; b < 4; ++b)
      v |= uint32_t{static_cast<uint8_t>(bytes[i + b])} << (8 * b);
    sum += v;
  }
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", sum);
  return text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Bytes that differ from the fill byte of the rest of the image, so a write
// to the wrong place shows.
std::string NumberedImage(size_t size) {
  std::string image(size, '\0');
  for (size_t i = 0; i < size; ++i)
    image[i] = static_cast<char>((i * 13 + i / 512) & 0xff);
  return image;
}

struct Drive {
  std::string id;
  std::string path;
  bool root = false;
  bool read_only = false;
  std::string cache = "Unsafe";
  std::string engine = "Sync";
  std::string rate_limiter = "";  // JSON object, or empty for none.

  std::string Json() const {
    return "{\"drive_id\": \"" + id + "\", \"path_on_host\": \"" + path +
           "\", \"is_root_device\": " + (root ? "true" : "false") +
           ", \"is_read_only\": " + (read_only ? "true" : "false") +
           ", \"cache_type\": \"" + cache + "\", \"io_engine\": \"" + engine +
           "\"" +
           (rate_limiter.empty() ? "" : ", \"rate_limiter\": " + rate_limiter) +
           "}";
  }
};

std::string DrivesJson(const std::vector<Drive>& drives) {
  std::string json = "[";
  for (size_t i = 0; i < drives.size(); ++i)
    json += (i ? ", " : "") + drives[i].Json();
  return json + "]";
}

ProcessResult RunGuest(const TempDir& dir, const char* guest,
                       const std::vector<Drive>& drives,
                       const std::string& boot_args = "console=ttyS0") {
  VmConfigJson config(guest);
  config.BootArgs(boot_args).MemMib(128).SetRaw("", "drives",
                                                DrivesJson(drives));
  ProcessResult r = RunHearth(dir, config);
  std::printf("[   time   ] %s: %.2f s\n", guest, r.seconds);
  ::testing::Test::RecordProperty("guest_seconds", std::to_string(r.seconds));
  return r;
}

// The first stdout line that starts with `prefix`, or "" (with a failure).
std::string LineStartingWith(const ProcessResult& r,
                             const std::string& prefix) {
  for (const std::string& line : SplitLines(r.out)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  ADD_FAILURE() << "no line starts with \"" << prefix << "\"\n" << r.Describe();
  return "";
}

// ---- virtio_blk: the normal path ------------------------------------------

class VirtioBlkGuest
    : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(VirtioBlkGuest, WritesReadsBackAndFlushes) {
  const auto [engine, cache] = GetParam();
  TempDir dir;
  const std::string before = NumberedImage(kImageBytes);
  Drive disk{"disk0", dir.Write("disk0.img", before)};
  disk.engine = engine;
  disk.cache = cache;
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_LT(r.seconds, kMaxGuestSeconds);
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "virtio-blk: base=0xd0000000 magic=0x74726976 version=2 device=2\n"));
  EXPECT_THAT(LineStartingWith(r, "virtio-blk: features="),
              HasSubstr(" status=0x0f"));
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: OUT"),
            "virtio-blk: OUT answered=yes status=0 used_len=1 isr=0x1");
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: IN"),
            "virtio-blk: IN answered=yes status=0 used_len=4097 isr=0x1");
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: GET_ID"),
            "virtio-blk: GET_ID answered=yes status=0 used_len=21 isr=0x1");
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: FLUSH"),
            "virtio-blk: FLUSH answered=yes status=0 used_len=1 isr=0x1");
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: sector 8 sum="),
            "virtio-blk: sector 8 sum=" + DwordSum(Pattern()));
  EXPECT_THAT(r.out,
              HasSubstr("virtio-blk: capacity=128 id=disk0 roundtrip=ok\n"));

  std::string expected = before;
  expected.replace(kPatternOffset, 4096, Pattern());
  const std::string after = ReadFile(disk.path);
  ASSERT_EQ(after.size(), before.size());
  EXPECT_TRUE(after == expected)
      << "the image differs outside or inside sector 8..15";
}

// ---- virtio_blk with a rate limiter ---------------------------------------

// The guest writes 4 KiB (OUT) and reads it back (IN), then GET_ID and FLUSH,
// one request at a time, each waited for up to 5 s. A 4 KiB bandwidth bucket
// refilled over 600 ms lets the OUT through and makes the IN wait for the
// refill, so the run takes at least 0.6 s; every request is still answered:
// the limiter's timerfd resumed the queue from the VMM's event loop.
class VirtioBlkGuestRateLimit : public ::testing::TestWithParam<const char*> {};

TEST_P(VirtioBlkGuestRateLimit, BandwidthLimitHoldsAndThrottledRequestsComplete) {
  TempDir dir;
  Drive disk{"disk0", dir.Write("disk0.img", NumberedImage(kImageBytes))};
  disk.engine = GetParam();
  disk.rate_limiter = R"({"bandwidth": {"size": 4096, "refill_time": 600}})";
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: IN"),
            "virtio-blk: IN answered=yes status=0 used_len=4097 isr=0x1");
  EXPECT_THAT(r.out,
              HasSubstr("virtio-blk: capacity=128 id=disk0 roundtrip=ok\n"));
  EXPECT_GE(r.seconds, 0.6) << "8 KiB through a 4 KiB per 600 ms limit";
  EXPECT_LT(r.seconds, kMaxGuestSeconds);
}

// An ops bucket of one request per 400 ms: OUT at once, then IN, GET_ID and
// FLUSH each wait for a refill, at least 1.2 s in all.
TEST_P(VirtioBlkGuestRateLimit, OpsLimitHoldsAndThrottledRequestsComplete) {
  TempDir dir;
  Drive disk{"disk0", dir.Write("disk0.img", NumberedImage(kImageBytes))};
  disk.engine = GetParam();
  disk.rate_limiter =
      R"({"ops": {"size": 1, "refill_time": 400}, "bandwidth": {"size": 1048576, "refill_time": 1000}})";
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: FLUSH"),
            "virtio-blk: FLUSH answered=yes status=0 used_len=1 isr=0x1");
  EXPECT_THAT(r.out,
              HasSubstr("virtio-blk: capacity=128 id=disk0 roundtrip=ok\n"));
  EXPECT_GE(r.seconds, 1.2) << "4 requests through a 1 per 400 ms limit";
  EXPECT_LT(r.seconds, kMaxGuestSeconds);
}

INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlkGuestRateLimit,
                         ::testing::Values("Sync", "Async"));

INSTANTIATE_TEST_SUITE_P(
    EnginesAndCaches, VirtioBlkGuest,
    ::testing::Combine(::testing::Values("Sync", "Async"),
                       ::testing::Values("Unsafe", "Writeback")),
    [](const ::testing::TestParamInfo<VirtioBlkGuest::ParamType>& param_info) {
      return std::string(std::get<0>(param_info.param)) +
             std::get<1>(param_info.param);
    });

TEST(VirtioBlkGuestReadOnly, WriteAnswersIoErrAndFileStaysUnchanged) {
  TempDir dir;
  const std::string before = NumberedImage(kImageBytes);
  Drive disk{"ro_disk", dir.Write("ro.img", before, 0444)};
  disk.read_only = true;
  ProcessResult r =
      RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk}, "console=ttyS0 vblk.ro");
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: OUT"),
            "virtio-blk: OUT answered=yes status=1 used_len=1 isr=0x1");
  EXPECT_EQ(LineStartingWith(r, "virtio-blk: sector 8 sum="),
            "virtio-blk: sector 8 sum=" +
                DwordSum(before.substr(kPatternOffset, 4096)));
  EXPECT_THAT(r.out,
              HasSubstr("virtio-blk: capacity=128 id=ro_disk readonly=ok\n"));
  // VIRTIO_BLK_F_RO (bit 5) is offered.
  const std::string features = LineStartingWith(r, "virtio-blk: features=");
  ASSERT_GE(features.size(), 40u) << features;
  const unsigned long low =
      std::stoul(features.substr(
                     std::string("virtio-blk: features=0x00000001:").size(), 8),
                 nullptr, 16);
  EXPECT_NE(low & (1u << 5), 0u) << features;
  EXPECT_TRUE(ReadFile(disk.path) == before) << "a read-only image changed";
}

TEST(VirtioBlkGuestReadOnly, WritableDiskDoesNotOfferRo) {
  TempDir dir;
  Drive disk{"disk0", dir.Write("disk0.img", NumberedImage(kImageBytes))};
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  const std::string features = LineStartingWith(r, "virtio-blk: features=");
  EXPECT_THAT(features, HasSubstr("features=0x00000001:"))
      << "VIRTIO_F_VERSION_1 only in the high word";
  const unsigned long low =
      std::stoul(features.substr(
                     std::string("virtio-blk: features=0x00000001:").size(), 8),
                 nullptr, 16);
  EXPECT_EQ(low & (1u << 5), 0u) << features;
}

TEST(VirtioBlkGuestId, TwentyCharacterIdIsReturnedWhole) {
  TempDir dir;
  Drive disk{"abcdefghij0123456789",
             dir.Write("d.img", NumberedImage(kImageBytes))};
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr(" id=abcdefghij0123456789 roundtrip=ok\n"));
}

TEST(VirtioBlkGuestId, LongerIdIsCutAtTwentyBytes) {
  TempDir dir;
  Drive disk{"abcdefghij0123456789_and_more",
             dir.Write("d.img", NumberedImage(kImageBytes))};
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr(" id=abcdefghij0123456789 roundtrip=ok\n"));
}

// The root device is the first virtio-mmio device (0xd0000000, /dev/vda) even
// when it comes second in the configuration; the other drive is the next one.
TEST(VirtioBlkGuestLayout, RootDeviceIsFirstAndOthersFollow) {
  for (int vdev : {0, 1}) {
    SCOPED_TRACE("vdev=" + std::to_string(vdev));
    TempDir dir;
    const std::string image = NumberedImage(kImageBytes);
    Drive data{"data", dir.Write("data.img", image)};
    Drive root{"rootfs", dir.Write("root.img", image), /*root=*/true};
    ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {data, root},
                               "console=ttyS0 vdev=" + std::to_string(vdev));
    ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
    const Drive& used = vdev == 0 ? root : data;
    const Drive& untouched = vdev == 0 ? data : root;
    EXPECT_THAT(r.out, HasSubstr(vdev == 0 ? "virtio-blk: base=0xd0000000 "
                                           : "virtio-blk: base=0xd0001000 "));
    EXPECT_THAT(r.out, HasSubstr(" id=" + used.id + " roundtrip=ok\n"));
    EXPECT_EQ(ReadFile(used.path).substr(kPatternOffset, 4096), Pattern());
    EXPECT_TRUE(ReadFile(untouched.path) == image)
        << untouched.id << " changed";
  }
}

TEST(VirtioBlkGuestLayout, ImageSizeNotAMultipleOf512IsRoundedDown) {
  TempDir dir;
  const std::string before = NumberedImage(kImageBytes + 100);
  Drive disk{"disk0", dir.Write("odd.img", before)};
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {disk});
  ASSERT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_THAT(r.out,
              HasSubstr("virtio-blk: capacity=128 id=disk0 roundtrip=ok\n"));
  EXPECT_EQ(ReadFile(disk.path).size(), before.size());
}

// ---- virtio_hostile --------------------------------------------------------

// What the hostile guest must print, line by line (each line must start with
// the first string and contain the second).
struct Expect {
  const char* prefix;
  const char* contains;
};

const Expect kHostileLines[] = {
    // Invalid status transitions are ignored.
    {"hostile: driver_ok before features_ok", "status=0x03"},
    {"hostile: features_ok without version_1", "status=0x03"},
    {"hostile: features_ok from reset", "status=0x00"},
    // A queue size that is not a power of two fails activation: NEEDS_RESET.
    {"hostile: queue size 6", "status=0x4f"},
    {"hostile: request on size 6", "answered=no"},
    // Narrow register accesses are ignored (reads 0); config space is bytewise.
    {"hostile: narrow", "magic8=0x00 status16=0x0000 config8=0x80 status=0x0f"},
    {"hostile: capacity", "capacity=0x00000080"},
    {"hostile: queue 7", "num_max=0x0000 queue 0 ready=0x1"},
    // Queue and feature writes after DRIVER_OK are ignored: the rings stay.
    {"hostile: queue regs after driver_ok read",
     "answered=yes used_len=4097 status_byte=0x00 dev_status=0x0f"},
    // Malformed chains come back with length 0 and no status byte; the device
    // goes on.
    {"hostile: loop ",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: loop 1-2-1",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: beyond ram",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: straddle ram end",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: overflow",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: status beyond ram",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: next out of range",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: readable after writable",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: indirect not negotiated",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    // Well-formed chains with bad requests get a status byte.
    {"hostile: unknown type",
     "answered=yes used_len=1 status_byte=0x02 dev_status=0x0f isr=0x1"},
    {"hostile: odd length",
     "answered=yes used_len=1 status_byte=0x01 dev_status=0x0f isr=0x1"},
    {"hostile: past end of disk",
     "answered=yes used_len=1 status_byte=0x01 dev_status=0x0f isr=0x1"},
    {"hostile: sector overflow",
     "answered=yes used_len=1 status_byte=0x01 dev_status=0x0f isr=0x1"},
    {"hostile: short header",
     "answered=yes used_len=1 status_byte=0x01 dev_status=0x0f isr=0x1"},
    {"hostile: no status byte",
     "answered=yes used_len=0 status_byte=0xee dev_status=0x0f isr=0x1"},
    {"hostile: read after bad chains",
     "answered=yes used_len=4097 status_byte=0x00 dev_status=0x0f"},
    // A broken ring: no answer, DEVICE_NEEDS_RESET and a config-change
    // interrupt,
    // and nothing more until the driver resets the device.
    {"hostile: head out of range",
     "answered=no used_len=4294967295 status_byte=0xee dev_status=0x4f "
     "isr=0x2"},
    {"hostile: read while broken", "answered=no"},
    {"hostile: reset", "status=0x00 isr=0x0"},
    {"hostile: avail idx +1000",
     "answered=no used_len=4294967295 status_byte=0xee dev_status=0x4f "
     "isr=0x2"},
    // Recovery after a reset.
    {"hostile: recovery write",
     "answered=yes used_len=1 status_byte=0x00 dev_status=0x0f isr=0x1"},
    {"hostile: recovery read",
     "answered=yes used_len=4097 status_byte=0x00 dev_status=0x0f isr=0x1"},
    {"hostile: survived", "recovered=yes"},
};

class VirtioHostileGuest : public ::testing::TestWithParam<const char*> {};

TEST_P(VirtioHostileGuest, DeviceSurvivesGarbageAndRecoversAfterReset) {
  TempDir dir;
  const std::string before = NumberedImage(kImageBytes);
  Drive disk{"disk0", dir.Write("disk0.img", before)};
  disk.engine = GetParam();
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_HOSTILE, {disk});
  EXPECT_TRUE(r.ExitedWith(0)) << r.Describe();
  EXPECT_LT(r.seconds, kMaxGuestSeconds);
  for (const Expect& e : kHostileLines) {
    EXPECT_THAT(LineStartingWith(r, e.prefix), HasSubstr(e.contains))
        << "probe: " << e.prefix;
  }
  EXPECT_LE(SplitLines(r.err).size(), kMaxStderrLines) << r.err;

  // Only the final round trip wrote: sectors 16..23 hold the pattern.
  std::string expected = before;
  expected.replace(kHostileOffset, 4096, Pattern());
  const std::string after = ReadFile(disk.path);
  ASSERT_EQ(after.size(), before.size()) << "the image changed size";
  EXPECT_TRUE(after.substr(0, kHostileOffset) ==
              before.substr(0, kHostileOffset))
      << "garbage requests wrote sectors 0..15";
  EXPECT_TRUE(after == expected)
      << "the image differs outside the round trip's sectors";
}

INSTANTIATE_TEST_SUITE_P(
    Engines, VirtioHostileGuest, ::testing::Values("Sync", "Async"),
    [](const ::testing::TestParamInfo<VirtioHostileGuest::ParamType>&
           param_info) { return std::string(param_info.param); });

// ---- bad drive configurations ----------------------------------------------

void ExpectConfigError(const ProcessResult& r,
                       const std::vector<std::string>& names) {
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_LT(r.seconds, 10.0) << r.Describe();
  EXPECT_TRUE(r.ExitedWith(kBadConfig)) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("hearth: error: "));
  bool named = false;
  for (const std::string& n : names)
    named = named || r.err.find(n) != std::string::npos;
  EXPECT_TRUE(named) << "stderr names none of: "
                     << ::testing::PrintToString(names) << "\n"
                     << r.err;
  EXPECT_EQ(r.out, "") << "the guest ran";
}

TEST(VirtioBadDrive, MissingImageIsConfigError) {
  TempDir dir;
  const std::string path = dir.Path("no-such.img");
  ProcessResult r =
      RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {Drive{"disk0", path}});
  ExpectConfigError(r, {"drives[0].path_on_host", path});
}

TEST(VirtioBadDrive, DirectoryAsImageIsConfigError) {
  TempDir dir;
  ProcessResult r =
      RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {Drive{"disk0", dir.path()}});
  ExpectConfigError(r, {"drives[0]", "path_on_host"});
}

TEST(VirtioBadDrive, WritableDriveOnReadOnlyFileIsConfigError) {
  TempDir dir;
  const std::string path =
      dir.Write("ro.img", NumberedImage(kImageBytes), 0444);
  // Root ignores the mode bits; an immutable file refuses even root's O_RDWR open.
  const bool immutable =
      geteuid() == 0 &&
      RunProcess({"chattr", "+i", path}, std::chrono::seconds(10)).ExitedWith(0);
  if (geteuid() == 0 && !immutable) {
    GTEST_SKIP() << "running as root and chattr +i is not supported on " << path;
  }
  ProcessResult r =
      RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {Drive{"disk0", path}});
  if (immutable) RunProcess({"chattr", "-i", path}, std::chrono::seconds(10));
  ExpectConfigError(r, {"drives[0].path_on_host", path});
}

TEST(VirtioBadDrive, SecondMissingImageNamesItsIndex) {
  TempDir dir;
  const std::string good = dir.Write("good.img", NumberedImage(kImageBytes));
  const std::string path = dir.Path("missing.img");
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK,
                             {Drive{"disk0", good}, Drive{"disk1", path}});
  ExpectConfigError(r, {"drives[1]"});
  EXPECT_THAT(r.err, HasSubstr(path));
}

TEST(VirtioBadDrive, TwoRootDevicesIsConfigError) {
  TempDir dir;
  const std::string a = dir.Write("a.img", NumberedImage(kImageBytes));
  const std::string b = dir.Write("b.img", NumberedImage(kImageBytes));
  ProcessResult r =
      RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK,
               {Drive{"root_a", a, true}, Drive{"root_b", b, true}});
  ExpectConfigError(r, {"drives[1]", "root device"});
}

TEST(VirtioBadDrive, DashInDriveIdIsConfigError) {
  TempDir dir;
  const std::string a = dir.Write("a.img", NumberedImage(kImageBytes));
  ProcessResult r =
      RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {Drive{"disk-0", a}});
  ExpectConfigError(r, {"drives[0].drive_id", "disk-0"});
}

TEST(VirtioBadDrive, EmptyDriveIdIsConfigError) {
  TempDir dir;
  const std::string a = dir.Write("a.img", NumberedImage(kImageBytes));
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {Drive{"", a}});
  ExpectConfigError(r, {"drives[0].drive_id"});
}

TEST(VirtioBadDrive, UnknownIoEngineIsConfigError) {
  TempDir dir;
  Drive d{"disk0", dir.Write("a.img", NumberedImage(kImageBytes))};
  d.engine = "Turbo";
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {d});
  ExpectConfigError(r, {"drives[0].io_engine"});
}

TEST(VirtioBadDrive, UnknownCacheTypeIsConfigError) {
  TempDir dir;
  Drive d{"disk0", dir.Write("a.img", NumberedImage(kImageBytes))};
  d.cache = "Fast";
  ProcessResult r = RunGuest(dir, HEARTH_GUEST_VIRTIO_BLK, {d});
  ExpectConfigError(r, {"drives[0].cache_type"});
}

}  // namespace
}  // namespace hearth::testing
