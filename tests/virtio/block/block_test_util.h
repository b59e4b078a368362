// Shared fixtures for the virtio-blk tests: temp images, a counting interrupt, and a driver that
// builds block requests in plain guest memory.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/virtio_support/virtio_driver.h"
#include "virtio/block/block.h"

namespace hearth::testing {

inline uint8_t PatternByte(uint64_t i) { return static_cast<uint8_t>(i * 7 + (i >> 9) * 13 + 1); }

inline std::vector<uint8_t> Pattern(uint64_t size, uint64_t start = 0) {
  std::vector<uint8_t> v(size);
  for (uint64_t i = 0; i < size; ++i) v[i] = PatternByte(start + i);
  return v;
}

// A directory under $TMPDIR (or /tmp) with one image file, removed on destruction.
class TempImage {
 public:
  explicit TempImage(uint64_t size, bool fill = true) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/hearth-blk-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
    path_ = dir_ + "/disk.img";
    std::ofstream out(path_, std::ios::binary);
    auto bytes = fill ? Pattern(size) : std::vector<uint8_t>(size);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  ~TempImage() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }
  std::vector<uint8_t> Contents() const {
    std::ifstream in(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  std::string dir_, path_;
};

class CountingInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t cause) override { ++raised[cause]; }
  void SetNeedsReset() override { ++needs_reset; }
  int used() const { return Count(kVirtioIntUsedBuffer); }
  int config() const { return Count(kVirtioIntConfigChange); }
  int Count(uint32_t cause) const {
    auto it = raised.find(cause);
    return it == raised.end() ? 0 : it->second;
  }
  std::map<uint32_t, int> raised;
  int needs_reset = 0;
};

// Where a request's pieces live, to check them after the device answered.
struct Request {
  uint16_t head;
  uint64_t header;
  uint64_t data;
  uint64_t status;
};

inline std::vector<uint8_t> HeaderBytes(uint32_t type, uint64_t sector) {
  BlockRequestHeader h{type, 0, sector};
  std::vector<uint8_t> v(sizeof(h));
  std::memcpy(v.data(), &h, sizeof(h));
  return v;
}

// Guest memory, one queue laid out by VirtioDriver, and an activated Block.
class BlockHarness {
 public:
  static constexpr uint64_t kMemSize = 8 << 20;
  static constexpr uint64_t kRingBase = 0x1000;
  static constexpr uint64_t kDataBase = 0x10000;

  explicit BlockHarness(uint64_t mem_size = kMemSize)
      : memory_(
            std::make_unique<GuestMemory>(std::move(GuestMemory::Create({{0, mem_size}})).value())),
        driver_(*memory_, kRingBase, Block::kQueueSize, kDataBase),
        interrupt_(std::make_shared<CountingInterrupt>()) {
    queues_.emplace_back(Block::kQueueSize);
  }
  ~BlockHarness() { device_.reset(); }  // In-flight I/O ends before guest memory goes.

  // Creates and activates the device; false (with a test failure) when Create fails.
  // The rate limiter runs on `limiter_timer` when given (a testing::FakeTimer).
  bool Start(const BlockOptions& options, bool event_idx = false, bool indirect = true,
             std::unique_ptr<MonotonicTimer> limiter_timer = nullptr) {
    auto device = Block::Create(options, std::move(limiter_timer));
    EXPECT_TRUE(device.ok()) << (device.ok() ? "" : device.error().message());
    if (!device.ok()) return false;
    device_ = std::move(device).value();
    driver_.Configure(queues_[0], event_idx, indirect);
    uint64_t features = kVirtioFVersion1 | device_->device_features();
    if (!event_idx) features &= ~kVirtioFRingEventIdx;
    auto s = device_->Activate({memory_.get(), &queues_, interrupt_, features});
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message());
    return s.ok();
  }

  // Kicks the queue and, for the async engine, waits for every submitted request to finish.
  void Kick() {
    device_->ProcessQueue(0);
    WaitIdle();
  }
  void WaitIdle() {
    for (int i = 0; i < 1000 && device_->in_flight() > 0; ++i) {
      auto sources = device_->event_sources();  // The limiter's timer, then io_uring's eventfd.
      ASSERT_EQ(sources.size(), 2u);
      pollfd p{sources[1].fd, POLLIN, 0};
      ASSERT_GE(::poll(&p, 1, 5000), 0);
      device_->OnEvent(sources[1].fd, EPOLLIN);
    }
    ASSERT_EQ(device_->in_flight(), 0u);
  }

  // Adds header | data (if len > 0) | status as separate descriptors. The data buffer is
  // device-writable for IN and GET_ID and holds `out` for OUT.
  Request Add(uint32_t type, uint64_t sector, uint32_t len, std::span<const uint8_t> out = {},
              bool indirect = false) {
    Request r{};
    r.header = driver_.AllocWith(HeaderBytes(type, sector));
    r.data = driver_.Alloc(len == 0 ? 1 : len);
    if (!out.empty())
      driver_.WriteBytes(r.data, out);
    else
      (void)memory_->Fill(r.data, 0xee, len);
    r.status = driver_.AllocWith(std::vector<uint8_t>{0xff});
    const bool device_writes = type != VIRTIO_BLK_T_OUT;
    std::vector<BufferSpec> chain{{r.header, 16, false}};
    if (len > 0) chain.push_back({r.data, len, device_writes});
    chain.push_back({r.status, 1, true});
    r.head = indirect ? driver_.AddIndirectChain(chain) : driver_.AddChain(chain);
    return r;
  }

  uint8_t Status(const Request& r) const { return driver_.ReadBytes(r.status, 1)[0]; }
  std::vector<uint8_t> Data(const Request& r, uint64_t len) const {
    return driver_.ReadBytes(r.data, len);
  }
  // The used element for the n-th request returned (0-based).
  VirtqUsedElem Used(uint16_t n) const { return driver_.used_elem(n); }
  // The used length reported for `head` (the async engine completes out of order); fails the
  // test and returns ~0 when the head was not returned.
  uint32_t UsedLen(uint16_t head) const {
    for (const auto& e : driver_.UsedSince(0)) {
      if (e.id == head) return e.len;
    }
    ADD_FAILURE() << "chain " << head << " was not returned";
    return ~0u;
  }
  uint32_t UsedLen(const Request& r) const { return UsedLen(r.head); }

  GuestMemory& memory() { return *memory_; }
  VirtioDriver& driver() { return driver_; }
  Block& device() { return *device_; }
  Queue& queue() { return queues_[0]; }
  CountingInterrupt& interrupt() { return *interrupt_; }

 private:
  std::unique_ptr<GuestMemory> memory_;
  std::vector<Queue> queues_;
  VirtioDriver driver_;
  std::shared_ptr<CountingInterrupt> interrupt_;
  std::unique_ptr<Block> device_;
};

}  // namespace hearth::testing
