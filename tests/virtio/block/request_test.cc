#include "virtio/block/request.h"

#include <gtest/gtest.h>

#include <limits>

#include "tests/virtio/block/block_test_util.h"

namespace hearth::testing {
namespace {

class ParseRequestTest : public ::testing::Test {
 protected:
  ParseRequestTest() : memory_(std::move(GuestMemory::Create({{0, 1 << 20}})).value()) {}

  uint64_t Put(std::span<const uint8_t> bytes) {
    uint64_t addr = next_;
    EXPECT_TRUE(memory_.Write(addr, bytes).ok());
    next_ += (bytes.size() + 15) & ~uint64_t{15};
    return addr;
  }
  uint64_t Space(uint32_t len) {
    uint64_t addr = next_;
    next_ += (len + 15) & ~uint64_t{15};
    return addr;
  }
  static DescriptorChain Chain(std::vector<GuestBuffer> readable,
                               std::vector<GuestBuffer> writable) {
    DescriptorChain c;
    c.head = 7;
    for (auto& b : readable) c.readable_bytes += b.len;
    for (auto& b : writable) c.writable_bytes += b.len;
    c.readable = std::move(readable);
    c.writable = std::move(writable);
    return c;
  }

  GuestMemory memory_;
  uint64_t next_ = 0x1000;
  BlockGeometry disk_{64 * 1024, false};
};

TEST_F(ParseRequestTest, ParsesAReadIntoItsSegments) {
  uint64_t hdr = Put(HeaderBytes(VIRTIO_BLK_T_IN, 3));
  uint64_t a = Space(512), b = Space(1025);
  BlockRequest r = ParseRequest(memory_, Chain({{hdr, 16}}, {{a, 512}, {b, 1025}}), disk_);
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK) << r.error;
  EXPECT_EQ(r.head, 7);
  EXPECT_EQ(r.type, VIRTIO_BLK_T_IN);
  EXPECT_EQ(r.offset, 3u * 512);
  EXPECT_EQ(r.length, 1536u);
  ASSERT_EQ(r.data.size(), 2u);
  EXPECT_EQ(r.data[1].addr, b);
  EXPECT_EQ(r.data[1].len, 1024u);
  EXPECT_EQ(r.status_addr, b + 1024);
}

TEST_F(ParseRequestTest, SkipsEmptyTrailingWritableBuffers) {
  uint64_t hdr = Put(HeaderBytes(VIRTIO_BLK_T_FLUSH, 0));
  uint64_t s = Space(1);
  BlockRequest r = ParseRequest(memory_, Chain({{hdr, 16}}, {{s, 1}, {s + 16, 0}}), disk_);
  EXPECT_EQ(r.status, VIRTIO_BLK_S_OK);
  EXPECT_EQ(r.status_addr, s);
}

TEST_F(ParseRequestTest, RejectsWithoutStatusByte) {
  uint64_t hdr = Put(HeaderBytes(VIRTIO_BLK_T_FLUSH, 0));
  BlockRequest r = ParseRequest(memory_, Chain({{hdr, 16}}, {{hdr + 64, 0}}), disk_);
  EXPECT_EQ(r.status, VIRTIO_BLK_S_IOERR);
  EXPECT_FALSE(r.status_addr.has_value());
  EXPECT_EQ(r.error, "no status byte");
}

TEST_F(ParseRequestTest, NamesWhyARequestFails) {
  uint64_t s = Space(1);
  auto parse = [&](uint32_t type, uint64_t sector, uint32_t len) {
    uint64_t hdr = Put(HeaderBytes(type, sector));
    uint64_t data = Space(len);
    return ParseRequest(memory_, Chain({{hdr, 16}}, {{data, len}, {s, 1}}), disk_);
  };
  EXPECT_EQ(parse(VIRTIO_BLK_T_IN, 0, 100).error, "data length 100 is not a multiple of 512");
  EXPECT_EQ(parse(VIRTIO_BLK_T_IN, 128, 512).error,
            "sector 128 + 512 bytes is beyond the end of the disk");
  EXPECT_EQ(parse(VIRTIO_BLK_T_IN, std::numeric_limits<uint64_t>::max(), 512).error,
            "sector 18446744073709551615 overflows a byte offset");
  EXPECT_EQ(parse(99, 0, 512).error, "request type 99 is not supported");
  EXPECT_EQ(parse(99, 0, 512).status, VIRTIO_BLK_S_UNSUPP);
  disk_.read_only = true;
  uint64_t hdr = Put(HeaderBytes(VIRTIO_BLK_T_OUT, 0));
  BlockRequest w = ParseRequest(memory_, Chain({{hdr, 16}, {s, 512}}, {{s, 1}}), disk_);
  EXPECT_EQ(w.error, "write to a read-only disk");
  BlockRequest shortie = ParseRequest(memory_, Chain({{hdr, 15}}, {{s, 1}}), disk_);
  EXPECT_EQ(shortie.error, "request header is 15 bytes, not 16");
}

TEST_F(ParseRequestTest, RefusesTooManySegments) {
  uint64_t hdr = Put(HeaderBytes(VIRTIO_BLK_T_IN, 0));
  uint64_t data = Space(512);
  std::vector<GuestBuffer> writable(kMaxRequestSegments + 1, GuestBuffer{data, 0});
  writable[0].len = 512;
  // Empty buffers are dropped; only non-empty segments count.
  writable.push_back({data, 1});
  BlockRequest ok = ParseRequest(memory_, Chain({{hdr, 16}}, writable), disk_);
  EXPECT_EQ(ok.status, VIRTIO_BLK_S_OK) << ok.error;
  std::vector<GuestBuffer> many(kMaxRequestSegments + 1, GuestBuffer{data, 512});
  many.push_back({data, 1});
  BlockRequest bad = ParseRequest(memory_, Chain({{hdr, 16}}, many), BlockGeometry{1 << 30, false});
  EXPECT_EQ(bad.status, VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(bad.error, "1025 data segments are too many");
}

}  // namespace
}  // namespace hearth::testing
