#include "virtio/block/block.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <limits>

#include "tests/virtio/block/block_test_util.h"
#include "virtio/mmio_transport.h"

namespace hearth::testing {
namespace {

constexpr uint64_t kImageSize = 64 * 1024;  // 128 sectors.

BlockOptions Options(const std::string& path, BlockOptions::IoEngine engine,
                     BlockOptions::CacheType cache = BlockOptions::kUnsafe,
                     bool read_only = false) {
  return BlockOptions{"rootfs", path, read_only, cache, engine, {}};
}

std::string EngineName(const ::testing::TestParamInfo<BlockOptions::IoEngine>& info) {
  return info.param == BlockOptions::kAsync ? "Async" : "Sync";
}

// ---------------------------------------------------------------------------------------------
// Create, features and config space (engine-independent).

TEST(VirtioBlock, CreateNamesAMissingPath) {
  auto device = Block::Create(Options("/nonexistent/disk.img", BlockOptions::kSync));
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.error().message(),
            "drive rootfs: open /nonexistent/disk.img: No such file or directory");
}

TEST(VirtioBlock, CreateRefusesADirectory) {
  TempImage image(512);
  auto device = Block::Create(Options(image.dir(), BlockOptions::kSync));
  ASSERT_FALSE(device.ok());
  // Opening a directory O_RDWR fails already; read-only it opens and fails the file check.
  EXPECT_NE(device.error().message().find(image.dir()), std::string::npos)
      << device.error().message();
  auto ro = Block::Create(Options(image.dir(), BlockOptions::kSync, BlockOptions::kUnsafe, true));
  ASSERT_FALSE(ro.ok());
  EXPECT_EQ(ro.error().message(), "drive rootfs: " + image.dir() + ": not a regular file");
}

TEST(VirtioBlock, OffersFeaturesByOptions) {
  TempImage image(kImageSize);
  auto unsafe = Block::Create(Options(image.path(), BlockOptions::kSync));
  ASSERT_TRUE(unsafe.ok());
  const uint64_t f = (*unsafe)->device_features();
  EXPECT_TRUE(f & kVirtioFRingEventIdx);
  EXPECT_TRUE(f & kVirtioFRingIndirectDesc);
  EXPECT_TRUE(f & kVirtioBlkFSegMax);
  EXPECT_TRUE(f & kVirtioBlkFBlkSize);
  EXPECT_FALSE(f & kVirtioBlkFFlush);
  EXPECT_FALSE(f & kVirtioBlkFRo);
  EXPECT_EQ((*unsafe)->device_type(), kVirtioIdBlock);
  EXPECT_EQ((*unsafe)->queue_max_sizes(), std::vector<uint16_t>{256});

  auto wb_ro =
      Block::Create(Options(image.path(), BlockOptions::kSync, BlockOptions::kWriteback, true));
  ASSERT_TRUE(wb_ro.ok());
  EXPECT_TRUE((*wb_ro)->device_features() & kVirtioBlkFFlush);
  EXPECT_TRUE((*wb_ro)->device_features() & kVirtioBlkFRo);
}

TEST(VirtioBlock, ConfigSpaceDescribesTheDisk) {
  TempImage image(kImageSize + 100);  // The 100-byte tail is not a whole sector.
  auto device = Block::Create(Options(image.path(), BlockOptions::kSync));
  ASSERT_TRUE(device.ok());
  EXPECT_EQ((*device)->capacity_sectors(), kImageSize / 512);
  virtio_blk_config config{};
  (*device)->ReadConfig(0, std::span(reinterpret_cast<uint8_t*>(&config), sizeof(config)));
  EXPECT_EQ(config.capacity, kImageSize / 512);
  EXPECT_EQ(config.seg_max, Block::kSegMax);
  EXPECT_EQ(config.blk_size, 512u);

  uint8_t part[4];  // An unaligned read inside the struct.
  (*device)->ReadConfig(1, part);
  EXPECT_EQ(part[0], static_cast<uint8_t>((kImageSize / 512) >> 8));
  uint8_t beyond[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  (*device)->ReadConfig(sizeof(config) - 2, beyond);
  EXPECT_EQ(std::vector<uint8_t>(beyond, beyond + 8), std::vector<uint8_t>(8, 0));
  // Writes are ignored.
  uint8_t ones[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  (*device)->WriteConfig(0, ones);
  (*device)->ReadConfig(0, std::span(reinterpret_cast<uint8_t*>(&config), sizeof(config)));
  EXPECT_EQ(config.capacity, kImageSize / 512);
}

TEST(VirtioBlock, ActivateNeedsAReadyQueue) {
  TempImage image(kImageSize);
  auto device = Block::Create(Options(image.path(), BlockOptions::kSync));
  ASSERT_TRUE(device.ok());
  auto memory = GuestMemory::Create({{0, 1 << 20}});
  ASSERT_TRUE(memory.ok());
  std::vector<Queue> queues;
  queues.emplace_back(256);
  auto s = (*device)->Activate({&*memory, &queues, std::make_shared<CountingInterrupt>(), 0});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "virtio-blk: the request queue is not ready");
  EXPECT_FALSE((*device)->activated());
}

// In a child process where io_uring_setup fails with ENOSYS (a seccomp filter, as on a host
// that has io_uring disabled), an Async drive still comes up, on the Sync engine.
TEST(VirtioBlockDeathTest, FallsBackToSyncWithoutIoUring) {
  TempImage image(kImageSize);
  auto child = [&] {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) std::_Exit(2);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) std::_Exit(3);
    BlockHarness h;
    if (!h.Start(Options(image.path(), BlockOptions::kAsync))) std::_Exit(4);
    // Only the rate limiter's timer: no io_uring eventfd.
    if (h.device().engine() != BlockOptions::kSync || h.device().event_sources().size() != 1)
      std::_Exit(5);
    Request r = h.Add(VIRTIO_BLK_T_IN, 1, 512);
    h.Kick();
    std::_Exit(h.Status(r) == VIRTIO_BLK_S_OK && h.Data(r, 512) == Pattern(512, 512) ? 0 : 6);
  };
  EXPECT_EXIT(child(), ::testing::ExitedWithCode(0),
              "io_uring_queue_init: Function not implemented; using the Sync engine instead");
}

TEST(VirtioBlock, SavesItsState) {
  TempImage image(kImageSize);
  BlockHarness h;
  ASSERT_TRUE(h.Start(Options(image.path(), BlockOptions::kAsync, BlockOptions::kWriteback, true),
                      /*event_idx=*/true));
  BlockState s = h.device().Save();
  EXPECT_EQ(s.drive_id, "rootfs");
  EXPECT_EQ(s.path, image.path());
  EXPECT_TRUE(s.read_only);
  EXPECT_EQ(s.cache, BlockOptions::kWriteback);
  EXPECT_EQ(s.engine, BlockOptions::kAsync);
  EXPECT_EQ(s.capacity_sectors, kImageSize / 512);
  EXPECT_EQ(s.acked_features, kVirtioFVersion1 | h.device().device_features());
  EXPECT_TRUE(s.activated);
  h.device().Reset();
  EXPECT_FALSE(h.device().Save().activated);
  EXPECT_EQ(h.device().Save().acked_features, 0u);
}

// ---------------------------------------------------------------------------------------------
// Requests, for both engines.

class VirtioBlockEngine : public ::testing::TestWithParam<BlockOptions::IoEngine> {
 protected:
  BlockOptions::IoEngine engine() const { return GetParam(); }
  bool Start(BlockOptions::CacheType cache = BlockOptions::kUnsafe, bool read_only = false,
             bool event_idx = false) {
    return h_.Start(Options(image_.path(), engine(), cache, read_only), event_idx);
  }

  TempImage image_{kImageSize};
  BlockHarness h_;  // Declared after the image: the device closes its fd first.
};

INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlockEngine,
                         ::testing::Values(BlockOptions::kSync, BlockOptions::kAsync), EngineName);

TEST_P(VirtioBlockEngine, UsesTheRequestedEngine) {
  ASSERT_TRUE(Start());
  if (engine() == BlockOptions::kAsync && h_.device().engine() != BlockOptions::kAsync) {
    GTEST_SKIP() << "io_uring is unavailable on this host; the device fell back to Sync";
  }
  EXPECT_EQ(h_.device().engine(), engine());
  // The rate limiter's timer always; io_uring's eventfd with the async engine.
  EXPECT_EQ(h_.device().event_sources().size(), engine() == BlockOptions::kAsync ? 2u : 1u);
}

TEST_P(VirtioBlockEngine, ReadsSectors) {
  ASSERT_TRUE(Start());
  Request r = h_.Add(VIRTIO_BLK_T_IN, 3, 2048);
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(r, 2048), Pattern(2048, 3 * 512));
  EXPECT_EQ(h_.driver().used_idx(), 1);
  EXPECT_EQ(h_.Used(0).id, r.head);
  EXPECT_EQ(h_.Used(0).len, 2049u);
  EXPECT_EQ(h_.interrupt().used(), 1);
  EXPECT_EQ(h_.device().metrics().read_requests, 1u);
  EXPECT_EQ(h_.device().metrics().read_bytes, 2048u);
}

TEST_P(VirtioBlockEngine, WritesSectors) {
  ASSERT_TRUE(Start());
  std::vector<uint8_t> data(1536);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i ^ 0x5a);
  Request r = h_.Add(VIRTIO_BLK_T_OUT, 10, 1536, data);
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Used(0).len, 1u);
  auto file =
      h_.device().metrics().write_bytes == 1536u ? image_.Contents() : std::vector<uint8_t>{};
  ASSERT_EQ(file.size(), kImageSize);
  EXPECT_EQ(std::vector<uint8_t>(file.begin() + 10 * 512, file.begin() + 10 * 512 + 1536), data);
  // Neighbours untouched.
  EXPECT_EQ(std::vector<uint8_t>(file.begin(), file.begin() + 10 * 512), Pattern(10 * 512));
  EXPECT_EQ(std::vector<uint8_t>(file.begin() + 13 * 512, file.end()),
            Pattern(kImageSize - 13 * 512, 13 * 512));

  // And reading it back through the device.
  Request back = h_.Add(VIRTIO_BLK_T_IN, 10, 1536);
  h_.Kick();
  EXPECT_EQ(h_.Status(back), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(back, 1536), data);
}

TEST_P(VirtioBlockEngine, ServesAnyDescriptorFraming) {
  ASSERT_TRUE(Start());
  VirtioDriver& d = h_.driver();
  // Header split 5 + 11 over two descriptors, data in 512 + 1024, data's tail and the status
  // sharing a descriptor.
  auto header = HeaderBytes(VIRTIO_BLK_T_IN, 1);
  uint64_t h1 = d.AllocWith(std::span(header).first(5));
  uint64_t h2 = d.AllocWith(std::span(header).subspan(5));
  uint64_t a = d.Alloc(512), b = d.Alloc(1024), tail = d.Alloc(512 + 1);
  uint16_t head =
      d.AddChain({{h1, 5}, {h2, 11}, {a, 512, true}, {b, 1024, true}, {tail, 513, true}});
  h_.Kick();
  ASSERT_EQ(d.used_idx(), 1);
  EXPECT_EQ(h_.Used(0).id, head);
  EXPECT_EQ(h_.Used(0).len, 2049u);
  EXPECT_EQ(d.ReadBytes(tail + 512, 1)[0], VIRTIO_BLK_S_OK);
  EXPECT_EQ(d.ReadBytes(a, 512), Pattern(512, 512));
  EXPECT_EQ(d.ReadBytes(b, 1024), Pattern(1024, 1024));
  EXPECT_EQ(d.ReadBytes(tail, 512), Pattern(512, 2048));

  // A write whose data shares the header's descriptor.
  std::vector<uint8_t> combined = HeaderBytes(VIRTIO_BLK_T_OUT, 20);
  std::vector<uint8_t> payload(1024, 0xab);
  combined.insert(combined.end(), payload.begin(), payload.begin() + 512);
  uint64_t first = d.AllocWith(combined);
  uint64_t second = d.AllocWith(std::span(payload).subspan(512));
  uint64_t status = d.AllocWith(std::vector<uint8_t>{0xff});
  d.AddChain({{first, 16 + 512}, {second, 512}, {status, 1, true}});
  h_.Kick();
  EXPECT_EQ(d.ReadBytes(status, 1)[0], VIRTIO_BLK_S_OK);
  auto file = image_.Contents();
  EXPECT_EQ(std::vector<uint8_t>(file.begin() + 20 * 512, file.begin() + 22 * 512), payload);
}

TEST_P(VirtioBlockEngine, ServesIndirectChains) {
  ASSERT_TRUE(Start());
  std::vector<uint8_t> data(512, 0x3c);
  Request w = h_.Add(VIRTIO_BLK_T_OUT, 7, 512, data, /*indirect=*/true);
  h_.Kick();  // Requests in flight together are unordered: read back after the write is done.
  Request r = h_.Add(VIRTIO_BLK_T_IN, 7, 1024, {}, /*indirect=*/true);
  h_.Kick();
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  auto got = h_.Data(r, 1024);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + 512), data);
  EXPECT_EQ(std::vector<uint8_t>(got.begin() + 512, got.end()), Pattern(512, 8 * 512));
  EXPECT_EQ(h_.UsedLen(w), 1u);
  EXPECT_EQ(h_.UsedLen(r), 1025u);
}

TEST_P(VirtioBlockEngine, AnswersGetId) {
  ASSERT_TRUE(Start());
  Request r = h_.Add(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  std::vector<uint8_t> want(VIRTIO_BLK_ID_BYTES, 0);
  std::memcpy(want.data(), "rootfs", 6);
  EXPECT_EQ(h_.Data(r, VIRTIO_BLK_ID_BYTES), want);
  EXPECT_EQ(h_.Used(0).len, VIRTIO_BLK_ID_BYTES + 1u);
}

TEST(VirtioBlock, GetIdTruncatesALongDriveId) {
  TempImage image(kImageSize);
  BlockHarness h;
  ASSERT_TRUE(h.Start({"a-drive-id-longer-than-twenty-bytes", image.path(), false,
                       BlockOptions::kUnsafe, BlockOptions::kSync, {}}));
  Request r = h.Add(VIRTIO_BLK_T_GET_ID, 0, 32);  // A larger buffer gets 20 bytes.
  h.Kick();
  EXPECT_EQ(h.Status(r), VIRTIO_BLK_S_OK);
  auto got = h.Data(r, 32);
  EXPECT_EQ(std::string(got.begin(), got.begin() + 20), "a-drive-id-longer-th");
  EXPECT_EQ(got[20], 0xee);  // Untouched.
  EXPECT_EQ(h.Used(0).len, 21u);
}

TEST_P(VirtioBlockEngine, FlushesWithWritebackCache) {
  ASSERT_TRUE(Start(BlockOptions::kWriteback));
  std::vector<uint8_t> data(512, 0x77);
  Request w = h_.Add(VIRTIO_BLK_T_OUT, 0, 512, data);
  Request f = h_.Add(VIRTIO_BLK_T_FLUSH, 0, 0);
  h_.Kick();
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(f), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.device().metrics().flush_requests, 1u);
  EXPECT_EQ(h_.driver().used_idx(), 2);
  EXPECT_EQ(h_.UsedLen(f), 1u);
}

TEST_P(VirtioBlockEngine, FlushIsANoOpWithUnsafeCache) {
  ASSERT_TRUE(Start(BlockOptions::kUnsafe));
  Request f = h_.Add(VIRTIO_BLK_T_FLUSH, 0, 0);
  h_.Kick();
  EXPECT_EQ(h_.Status(f), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.device().in_flight(), 0u);
  EXPECT_EQ(h_.Used(0).len, 1u);
}

TEST_P(VirtioBlockEngine, ReadOnlyDiskRefusesWrites) {
  ASSERT_TRUE(Start(BlockOptions::kUnsafe, /*read_only=*/true));
  EXPECT_TRUE(h_.device().device_features() & kVirtioBlkFRo);
  std::vector<uint8_t> data(512, 0);
  Request w = h_.Add(VIRTIO_BLK_T_OUT, 0, 512, data);
  Request r = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.UsedLen(w), 1u);
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Data(r, 512), Pattern(512));
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));
  EXPECT_EQ(h_.device().metrics().invalid_requests, 1u);
}

TEST_P(VirtioBlockEngine, RefusesRequestsBeyondTheEnd) {
  ASSERT_TRUE(Start());
  const uint64_t sectors = kImageSize / 512;
  Request last = h_.Add(VIRTIO_BLK_T_IN, sectors - 1, 512);  // The last sector: fine.
  Request past = h_.Add(VIRTIO_BLK_T_IN, sectors, 512);      // One past.
  Request straddle = h_.Add(VIRTIO_BLK_T_IN, sectors - 1, 1024);
  Request far = h_.Add(VIRTIO_BLK_T_OUT, 1ull << 40, 512, std::vector<uint8_t>(512, 1));
  h_.Kick();
  EXPECT_EQ(h_.Status(last), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(past), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Status(straddle), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Status(far), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Data(straddle, 1024), std::vector<uint8_t>(1024, 0xee));  // Nothing read.
  EXPECT_EQ(h_.driver().used_idx(), 4);
  EXPECT_EQ(h_.device().metrics().invalid_requests, 3u);
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));
}

TEST_P(VirtioBlockEngine, RefusesASectorWhoseOffsetOverflows) {
  ASSERT_TRUE(Start());
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  Request a = h_.Add(VIRTIO_BLK_T_IN, max, 512);
  Request b = h_.Add(VIRTIO_BLK_T_IN, (max >> 9) + 1, 512);  // * 512 wraps to 0.
  Request c =
      h_.Add(VIRTIO_BLK_T_OUT, max >> 9, 512, std::vector<uint8_t>(512, 9));  // + len wraps.
  h_.Kick();
  EXPECT_EQ(h_.Status(a), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Status(b), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Status(c), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));
}

TEST_P(VirtioBlockEngine, RefusesALengthNotAMultipleOf512) {
  ASSERT_TRUE(Start());
  Request r = h_.Add(VIRTIO_BLK_T_IN, 0, 100);
  Request w = h_.Add(VIRTIO_BLK_T_OUT, 0, 513, std::vector<uint8_t>(513, 4));
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.UsedLen(r), 1u);
  EXPECT_EQ(h_.UsedLen(w), 1u);
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));
}

TEST_P(VirtioBlockEngine, RefusesAShortHeader) {
  ASSERT_TRUE(Start());
  VirtioDriver& d = h_.driver();
  auto header = HeaderBytes(VIRTIO_BLK_T_IN, 0);
  uint64_t hdr = d.AllocWith(std::span(header).first(8));
  uint64_t data = d.Alloc(512), status = d.AllocWith(std::vector<uint8_t>{0xff});
  uint16_t head = d.AddChain({{hdr, 8}, {data, 512, true}, {status, 1, true}});
  h_.Kick();
  EXPECT_EQ(d.ReadBytes(status, 1)[0], VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.Used(0).id, head);
  EXPECT_EQ(h_.Used(0).len, 1u);
}

TEST_P(VirtioBlockEngine, RejectsWriteOnlyHeader) {
  ASSERT_TRUE(Start());
  VirtioDriver& d = h_.driver();
  uint64_t hdr = d.AllocWith(HeaderBytes(VIRTIO_BLK_T_IN, 0));
  uint64_t data = d.Alloc(512), status = d.AllocWith(std::vector<uint8_t>{0xff});
  d.AddChain({{hdr, 16, true}, {data, 512, true}, {status, 1, true}});
  h_.Kick();
  EXPECT_EQ(d.ReadBytes(status, 1)[0], VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(d.ReadBytes(hdr, 16), HeaderBytes(VIRTIO_BLK_T_IN, 0));  // Not overwritten.
  EXPECT_EQ(h_.device().metrics().read_requests, 0u);
}

TEST_P(VirtioBlockEngine, ReturnsAChainWithoutStatusUnanswered) {
  ASSERT_TRUE(Start());
  VirtioDriver& d = h_.driver();
  uint64_t hdr = d.AllocWith(HeaderBytes(VIRTIO_BLK_T_OUT, 0));
  uint64_t data = d.AllocWith(std::vector<uint8_t>(512, 1));
  uint16_t head = d.AddChain({{hdr, 16}, {data, 512}});
  Request next = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  ASSERT_EQ(d.used_idx(), 2);
  EXPECT_EQ(h_.Used(0).id, head);
  EXPECT_EQ(h_.Used(0).len, 0u);
  EXPECT_EQ(h_.Status(next), VIRTIO_BLK_S_OK);  // The device carries on.
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));
  EXPECT_EQ(h_.device().metrics().invalid_requests, 1u);
}

TEST_P(VirtioBlockEngine, CompletesZeroLengthTransfers) {
  ASSERT_TRUE(Start());
  Request r = h_.Add(VIRTIO_BLK_T_IN, 5, 0);
  Request w = h_.Add(VIRTIO_BLK_T_OUT, kImageSize / 512, 0);  // At the very end: still in range.
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.UsedLen(r), 1u);
  EXPECT_EQ(h_.UsedLen(w), 1u);
}

TEST_P(VirtioBlockEngine, AnswersUnknownTypesUnsupported) {
  ASSERT_TRUE(Start());
  Request discard = h_.Add(VIRTIO_BLK_T_DISCARD, 0, 16, std::vector<uint8_t>(16, 0));
  Request odd = h_.Add(0x1234, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(discard), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(h_.Status(odd), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(h_.UsedLen(odd), 1u);
  EXPECT_EQ(h_.device().metrics().unsupported_requests, 2u);
  EXPECT_EQ(image_.Contents(), Pattern(kImageSize));
}

TEST_P(VirtioBlockEngine, SurvivesALoopingChain) {
  ASSERT_TRUE(Start());
  VirtioDriver& d = h_.driver();
  uint64_t buf = d.AllocWith(HeaderBytes(VIRTIO_BLK_T_IN, 0));
  // Descriptors 0 -> 1 -> 0 -> ...
  d.WriteDescriptor(0, VirtqDesc{buf, 16, kVirtqDescNext, 1});
  d.WriteDescriptor(1, VirtqDesc{buf, 16, kVirtqDescNext, 0});
  d.PublishHead(0);
  h_.Kick();
  ASSERT_EQ(d.used_idx(), 1);
  EXPECT_EQ(h_.Used(0).id, 0u);
  EXPECT_EQ(h_.Used(0).len, 0u);
  EXPECT_EQ(h_.device().metrics().chain_errors, 1u);
  EXPECT_FALSE(h_.device().needs_reset());

  // Next chain starts after the looping ones.
  uint64_t hdr = d.AllocWith(HeaderBytes(VIRTIO_BLK_T_IN, 1));
  uint64_t data = d.Alloc(512), status = d.AllocWith(std::vector<uint8_t>{0xff});
  d.WriteDescriptor(2, VirtqDesc{hdr, 16, kVirtqDescNext, 3});
  d.WriteDescriptor(3, VirtqDesc{data, 512, kVirtqDescNext | kVirtqDescWrite, 4});
  d.WriteDescriptor(4, VirtqDesc{status, 1, kVirtqDescWrite, 0});
  d.PublishHead(2);
  h_.Kick();
  EXPECT_EQ(d.ReadBytes(status, 1)[0], VIRTIO_BLK_S_OK);
  EXPECT_EQ(d.ReadBytes(data, 512), Pattern(512, 512));
}

TEST_P(VirtioBlockEngine, ReportsABrokenRing) {
  ASSERT_TRUE(Start());
  h_.driver().SetAvailIdx(1000);  // More entries than the queue holds.
  h_.Kick();
  EXPECT_TRUE(h_.device().needs_reset());
  EXPECT_EQ(h_.interrupt().needs_reset, 1);
  EXPECT_EQ(h_.driver().used_idx(), 0);
  h_.Kick();  // Stays stopped.
  EXPECT_EQ(h_.interrupt().needs_reset, 1);
  h_.device().Reset();
  EXPECT_FALSE(h_.device().needs_reset());
  EXPECT_FALSE(h_.device().activated());
}

TEST_P(VirtioBlockEngine, ReportsAHostWriteErrorAndKeepsWorking) {
  // A sealed memfd refuses writes with EPERM, like a disk that fails them.
  int memfd = ::memfd_create("hearth-blk", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(memfd, 0);
  Fd owner(memfd);
  auto bytes = Pattern(kImageSize);
  ASSERT_EQ(::pwrite(memfd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  ASSERT_TRUE(h_.Start(Options("/proc/self/fd/" + std::to_string(memfd), engine())));
  ASSERT_EQ(::fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE), 0);

  Request w = h_.Add(VIRTIO_BLK_T_OUT, 4, 1024, std::vector<uint8_t>(1024, 0x11));
  Request r = h_.Add(VIRTIO_BLK_T_IN, 4, 1024);
  h_.Kick();
  EXPECT_EQ(h_.Status(w), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.UsedLen(w), 1u);
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.UsedLen(r), 1025u);
  EXPECT_EQ(h_.Data(r, 1024), Pattern(1024, 4 * 512));
  EXPECT_EQ(h_.device().metrics().io_errors, 1u);
  EXPECT_GE(h_.interrupt().used(), 1);  // Async: once per reap that returned something.
}

TEST_P(VirtioBlockEngine, ReportsAReadPastAShrunkImage) {
  ASSERT_TRUE(Start());
  ASSERT_EQ(::truncate(image_.path().c_str(), 4096), 0);  // The image shrinks under the device.
  Request r = h_.Add(VIRTIO_BLK_T_IN, 6, 2048);           // Bytes 3072..5119: half of it is gone.
  Request ok = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(h_.UsedLen(r), 1u);
  EXPECT_EQ(h_.Status(ok), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.UsedLen(ok), 513u);
  EXPECT_EQ(h_.device().metrics().io_errors, 1u);
}

TEST_P(VirtioBlockEngine, RaisesOneInterruptPerBatch) {
  ASSERT_TRUE(Start());
  for (int i = 0; i < 8; ++i) h_.Add(VIRTIO_BLK_T_IN, i, 512);
  h_.Kick();
  EXPECT_EQ(h_.driver().used_idx(), 8);
  // Sync: one batch. Async: completions may arrive over several reaps, never more than one each.
  if (h_.device().engine() == BlockOptions::kSync) {
    EXPECT_EQ(h_.interrupt().used(), 1);
  }
  EXPECT_GE(h_.interrupt().used(), 1);
  EXPECT_LE(h_.interrupt().used(), 8);
}

TEST_P(VirtioBlockEngine, HonoursNoInterruptFlag) {
  ASSERT_TRUE(Start());
  h_.driver().SetAvailFlags(kVirtqAvailNoInterrupt);
  Request r = h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.Status(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(h_.interrupt().used(), 0);
}

TEST_P(VirtioBlockEngine, SuppressesInterruptsWithEventIdx) {
  ASSERT_TRUE(Start(BlockOptions::kUnsafe, false, /*event_idx=*/true));
  // The first completion always interrupts (nothing signalled yet).
  h_.Add(VIRTIO_BLK_T_IN, 0, 512);
  h_.Kick();
  EXPECT_EQ(h_.interrupt().used(), 1);
  // After the driver says "wake me at used index 3", indexes 2 and 3 stay quiet...
  h_.driver().SetUsedEvent(3);
  h_.Add(VIRTIO_BLK_T_IN, 1, 512);
  h_.Kick();
  h_.Add(VIRTIO_BLK_T_IN, 2, 512);
  h_.Kick();
  EXPECT_EQ(h_.driver().used_idx(), 3);
  EXPECT_EQ(h_.interrupt().used(), 1);
  // ... and the fourth used element (idx moving 3 -> 4) crosses it.
  h_.Add(VIRTIO_BLK_T_IN, 3, 512);
  h_.Kick();
  EXPECT_EQ(h_.interrupt().used(), 2);
  // The device asked for a kick at the next available index (no lost wakeups).
  EXPECT_EQ(h_.driver().avail_event(), 4);
}

TEST_P(VirtioBlockEngine, WrapsAroundTheRing) {
  ASSERT_TRUE(Start());
  // 4 rounds of 80 three-descriptor requests (240 of 256 descriptors in flight at once): the
  // ring indexes and the descriptor table wrap.
  for (int round = 0; round < 4; ++round) {
    std::vector<Request> reqs;
    for (int i = 0; i < 80; ++i) {
      reqs.push_back(h_.Add(VIRTIO_BLK_T_IN, (round * 80 + i) % 128, 512));
    }
    h_.Kick();
    for (int i = 0; i < 80; ++i) {
      ASSERT_EQ(h_.Status(reqs[i]), VIRTIO_BLK_S_OK) << round << " " << i;
      ASSERT_EQ(h_.Data(reqs[i], 512), Pattern(512, ((round * 80 + i) % 128) * 512ull));
    }
  }
  EXPECT_EQ(h_.driver().used_idx(), 320);
  EXPECT_EQ(h_.device().metrics().read_requests, 320u);
}

TEST_P(VirtioBlockEngine, ResetWaitsForInFlightRequests) {
  ASSERT_TRUE(Start());
  for (int i = 0; i < 32; ++i) h_.Add(VIRTIO_BLK_T_IN, i, 4096 - 512 * (i % 8 == 0));
  h_.device().ProcessQueue(0);  // No reaping: requests may still be in flight.
  h_.device().Reset();
  EXPECT_EQ(h_.device().in_flight(), 0u);
  EXPECT_FALSE(h_.device().activated());
}

// ---------------------------------------------------------------------------------------------
// The whole path, through the virtio-mmio registers as a driver programs them.

class CountingTrigger : public Trigger {
 public:
  void Fire() override { ++fired; }
  int fired = 0;
};

class MmioDriver {
 public:
  explicit MmioDriver(MmioTransport& t) : t_(t) {}
  uint32_t Read(uint64_t offset) {
    uint8_t b[4];
    t_.Read(offset, b);
    uint32_t v;
    std::memcpy(&v, b, 4);
    return v;
  }
  void Write(uint64_t offset, uint32_t value) {
    uint8_t b[4];
    std::memcpy(b, &value, 4);
    t_.Write(offset, b);
  }
  void Write64(uint64_t low, uint64_t value) {
    Write(low, static_cast<uint32_t>(value));
    Write(low + 4, static_cast<uint32_t>(value >> 32));
  }

 private:
  MmioTransport& t_;
};

TEST_P(VirtioBlockEngine, WorksThroughTheMmioTransport) {
  auto memory = GuestMemory::Create({{0, 4 << 20}});
  ASSERT_TRUE(memory.ok());
  VirtioDriver ring(*memory, 0x1000, 128, 0x10000);
  auto created = Block::Create(Options(image_.path(), engine(), BlockOptions::kWriteback));
  ASSERT_TRUE(created.ok());
  std::shared_ptr<Block> block = std::move(created).value();
  auto irq = std::make_shared<CountingTrigger>();
  {
    MmioTransport transport(block, &*memory, irq);
    MmioDriver m(transport);
    ASSERT_EQ(m.Read(mmio::kMagic), mmio::kMagicValue);
    ASSERT_EQ(m.Read(mmio::kDeviceId), kVirtioIdBlock);
    m.Write(mmio::kStatus, kStatusAcknowledge);
    m.Write(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    m.Write(mmio::kDeviceFeaturesSel, 0);
    uint64_t features = m.Read(mmio::kDeviceFeatures);
    m.Write(mmio::kDeviceFeaturesSel, 1);
    features |= uint64_t{m.Read(mmio::kDeviceFeatures)} << 32;
    EXPECT_TRUE(features & kVirtioFVersion1);
    EXPECT_TRUE(features & kVirtioBlkFFlush);
    m.Write(mmio::kDriverFeaturesSel, 0);
    m.Write(mmio::kDriverFeatures, static_cast<uint32_t>(features));
    m.Write(mmio::kDriverFeaturesSel, 1);
    m.Write(mmio::kDriverFeatures, static_cast<uint32_t>(features >> 32));
    const uint32_t features_ok = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
    m.Write(mmio::kStatus, features_ok);
    ASSERT_EQ(m.Read(mmio::kStatus), features_ok);
    // Config space: capacity.
    uint64_t capacity = m.Read(mmio::kConfig) | (uint64_t{m.Read(mmio::kConfig + 4)} << 32);
    EXPECT_EQ(capacity, kImageSize / 512);

    m.Write(mmio::kQueueSel, 0);
    ASSERT_EQ(m.Read(mmio::kQueueNumMax), 256u);
    m.Write(mmio::kQueueNum, ring.size());
    m.Write64(mmio::kQueueDescLow, ring.desc_table());
    m.Write64(mmio::kQueueDriverLow, ring.avail_ring());
    m.Write64(mmio::kQueueDeviceLow, ring.used_ring());
    m.Write(mmio::kQueueReady, 1);
    m.Write(mmio::kStatus, features_ok | kStatusDriverOk);
    ASSERT_EQ(m.Read(mmio::kStatus), features_ok | kStatusDriverOk);
    ASSERT_TRUE(block->activated());

    // A write, a flush and a read back, in one kick.
    std::vector<uint8_t> data(4096, 0xc3);
    uint64_t w_hdr = ring.AllocWith(HeaderBytes(VIRTIO_BLK_T_OUT, 64));
    uint64_t w_data = ring.AllocWith(data);
    uint64_t w_status = ring.AllocWith(std::vector<uint8_t>{0xff});
    ring.AddChain({{w_hdr, 16}, {w_data, 4096}, {w_status, 1, true}});
    uint64_t f_hdr = ring.AllocWith(HeaderBytes(VIRTIO_BLK_T_FLUSH, 0));
    uint64_t f_status = ring.AllocWith(std::vector<uint8_t>{0xff});
    ring.AddChain({{f_hdr, 16}, {f_status, 1, true}});
    m.Write(mmio::kQueueNotify, 0);
    // Bounded to ~10 s in all: a lost completion fails the test instead of hanging it.
    for (int i = 0; i < 200 && block->in_flight() > 0; ++i) {
      auto sources = block->event_sources();
      pollfd p{sources.back().fd, POLLIN, 0};  // io_uring's eventfd comes last.
      ASSERT_GE(::poll(&p, 1, 50), 0);
      block->OnEvent(sources.back().fd, EPOLLIN);
    }
    ASSERT_EQ(block->in_flight(), 0u) << "requests never completed";
    EXPECT_EQ(ring.ReadBytes(w_status, 1)[0], VIRTIO_BLK_S_OK);
    EXPECT_EQ(ring.ReadBytes(f_status, 1)[0], VIRTIO_BLK_S_OK);
    EXPECT_EQ(ring.used_idx(), 2);
    EXPECT_TRUE(m.Read(mmio::kInterruptStatus) & kVirtioIntUsedBuffer);
    EXPECT_GE(irq->fired, 1);
    m.Write(mmio::kInterruptAck, kVirtioIntUsedBuffer);
    EXPECT_EQ(m.Read(mmio::kInterruptStatus), 0u);
    auto file = image_.Contents();
    EXPECT_EQ(std::vector<uint8_t>(file.begin() + 64 * 512, file.begin() + 72 * 512), data);

    // A broken ring: the transport reports DEVICE_NEEDS_RESET with a config-change interrupt.
    ring.SetAvailIdx(static_cast<uint16_t>(ring.avail_idx() + 1000));
    m.Write(mmio::kQueueNotify, 0);
    EXPECT_TRUE(m.Read(mmio::kStatus) & kStatusNeedsReset);
    EXPECT_TRUE(m.Read(mmio::kInterruptStatus) & kVirtioIntConfigChange);
    EXPECT_EQ(ring.used_idx(), 2);

    // Reset through the status register.
    m.Write(mmio::kStatus, 0);
    EXPECT_FALSE(block->activated());
    EXPECT_FALSE(block->needs_reset());
    EXPECT_EQ(m.Read(mmio::kStatus), 0u);
  }
}

}  // namespace
}  // namespace hearth::testing
