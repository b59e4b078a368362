// MmioTransport::Restore: a driver-configured, activated transport saved and restored onto a
// fresh one (round trip), and every invariant a hostile state file could break.
#include <gtest/gtest.h>

#include "test_util.h"
#include "tests/virtio_support/virtio_driver.h"
#include "virtio/mmio_transport.h"

namespace hearth {
namespace {

class FakeDevice : public VirtioDevice {
 public:
  uint32_t device_type() const override { return kVirtioIdBlock; }
  uint64_t device_features() const override { return kVirtioFRingEventIdx | (1ull << 5); }
  std::vector<uint16_t> queue_max_sizes() const override { return {16, 8}; }
  void ReadConfig(uint64_t, std::span<uint8_t>) const override {}
  void WriteConfig(uint64_t, std::span<const uint8_t>) override {}
  Status Activate(VirtioActivation a) override {
    activation = a;
    active = true;
    return Ok();
  }
  void Reset() override { active = false; }
  void ProcessQueue(uint16_t index) override { kicks.push_back(index); }
  bool activated() const override { return active; }
  bool active = false;
  std::vector<uint16_t> kicks;
  VirtioActivation activation;
};

constexpr uint32_t kDriverOk = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;

class TransportRestoreTest : public ::testing::Test {
 protected:
  TransportRestoreTest()
      : memory_(std::move(GuestMemory::Create({{0, 1 << 20}})).value()),
        driver0_(memory_, 0x1000, 16, 0x40000),
        driver1_(memory_, 0x8000, 8, 0x80000) {}

  void Write(MmioTransport& t, uint64_t offset, uint32_t v) {
    t.Write(offset, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  void Queue(MmioTransport& t, uint32_t index, const testing::VirtioDriver& d) {
    Write(t, mmio::kQueueSel, index);
    Write(t, mmio::kQueueNum, d.size());
    Write(t, mmio::kQueueDescLow, static_cast<uint32_t>(d.desc_table()));
    Write(t, mmio::kQueueDriverLow, static_cast<uint32_t>(d.avail_ring()));
    Write(t, mmio::kQueueDeviceLow, static_cast<uint32_t>(d.used_ring()));
    Write(t, mmio::kQueueReady, 1);
  }
  // Drives `t` through negotiation to DRIVER_OK with both queues and one chain consumed.
  MmioTransportState ActiveState() {
    MmioTransport t(std::make_shared<FakeDevice>(), &memory_, nullptr);
    Write(t, mmio::kStatus, kStatusAcknowledge);
    Write(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    Write(t, mmio::kDriverFeaturesSel, 0);
    Write(t, mmio::kDriverFeatures, static_cast<uint32_t>(kVirtioFRingEventIdx));
    Write(t, mmio::kDriverFeaturesSel, 1);
    Write(t, mmio::kDriverFeatures, 1);
    Write(t, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    Queue(t, 0, driver0_);
    Queue(t, 1, driver1_);
    Write(t, mmio::kStatus, kDriverOk);
    EXPECT_EQ(t.status(), kDriverOk);
    driver0_.AddChain({{driver0_.Alloc(64), 64}});
    auto popped = t.queues()[0].Pop(memory_);
    EXPECT_TRUE(popped.chain.has_value());
    EXPECT_TRUE(t.queues()[0].AddUsed(memory_, popped.chain->head, 0).ok());
    return t.Save();
  }

  GuestMemory memory_;
  testing::VirtioDriver driver0_;
  testing::VirtioDriver driver1_;
};

TEST_F(TransportRestoreTest, RoundTripReactivatesWithQueuePositions) {
  MmioTransportState saved = ActiveState();
  auto device = std::make_shared<FakeDevice>();
  MmioTransport restored(device, &memory_, nullptr);
  ASSERT_OK(restored.Restore(saved));
  EXPECT_TRUE(device->active);
  EXPECT_EQ(device->activation.acked_features, kVirtioFRingEventIdx | kVirtioFVersion1);
  EXPECT_EQ(restored.status(), kDriverOk);
  EXPECT_EQ(restored.queues()[0].state().next_avail, 1);
  EXPECT_EQ(restored.queues()[0].state().next_used, 1);
  EXPECT_TRUE(restored.queues()[0].state().event_idx);
  MmioTransportState again = restored.Save();
  EXPECT_EQ(again.acked_features, saved.acked_features);
  EXPECT_EQ(again.queues.size(), 2u);
  EXPECT_EQ(again.queues[1].desc_table, saved.queues[1].desc_table);
  // The restored queue goes on: the next chain the driver adds is the next one popped.
  driver0_.AddChain({{driver0_.Alloc(32), 32}});
  auto popped = restored.queues()[0].Pop(memory_);
  ASSERT_TRUE(popped.chain.has_value());
  EXPECT_EQ(popped.chain->readable_bytes, 32u);
}

TEST_F(TransportRestoreTest, RefusesRingOutsideGuestMemory) {
  MmioTransportState saved = ActiveState();
  saved.queues[1].used_ring = (1 << 20) - 8;
  auto device = std::make_shared<FakeDevice>();
  MmioTransport restored(device, &memory_, nullptr);
  EXPECT_ERROR_CONTAINS(restored.Restore(saved), "queue 1: queue state: used ring at 0xffff8 is outside guest memory");
  EXPECT_FALSE(device->active);
  EXPECT_EQ(restored.status(), 0u);
}

TEST_F(TransportRestoreTest, RefusesBadQueueSize) {
  MmioTransportState saved = ActiveState();
  saved.queues[0].size = 12;
  MmioTransport restored(std::make_shared<FakeDevice>(), &memory_, nullptr);
  EXPECT_ERROR_CONTAINS(restored.Restore(saved), "not a power of two");
  saved.queues[0].size = 16;
  saved.queues[0].max_size = 256;
  MmioTransport restored2(std::make_shared<FakeDevice>(), &memory_, nullptr);
  EXPECT_ERROR_CONTAINS(restored2.Restore(saved), "max size 256 does not match");
}

TEST_F(TransportRestoreTest, RefusesFeaturesTheDeviceDoesNotOffer) {
  MmioTransportState saved = ActiveState();
  saved.acked_features |= 1ull << 40;
  MmioTransport restored(std::make_shared<FakeDevice>(), &memory_, nullptr);
  EXPECT_ERROR_CONTAINS(restored.Restore(saved), "are not a subset of the offered");
}

TEST_F(TransportRestoreTest, RefusesQueueCountMismatch) {
  MmioTransportState saved = ActiveState();
  saved.queues.pop_back();
  MmioTransport restored(std::make_shared<FakeDevice>(), &memory_, nullptr);
  EXPECT_ERROR_CONTAINS(restored.Restore(saved), "the snapshot has 1 queues, the device has 2");
}

TEST_F(TransportRestoreTest, RefusesUnreachableStatus) {
  MmioTransportState saved = ActiveState();
  saved.status = kStatusDriverOk | kStatusAcknowledge;
  MmioTransport restored(std::make_shared<FakeDevice>(), &memory_, nullptr);
  EXPECT_ERROR_CONTAINS(restored.Restore(saved), "cannot be reached by a driver");
  saved.status = 0x200;
  EXPECT_ERROR_CONTAINS(restored.Restore(saved), "unknown status bits");
}

TEST_F(TransportRestoreTest, DeviceWithoutStateRefusesStateBytes) {
  FakeDevice device;
  EXPECT_OK(device.RestoreState({}));
  const uint8_t junk[] = {1};
  EXPECT_ERROR_CONTAINS(device.RestoreState(junk), "device state this device does not know");
}

}  // namespace
}  // namespace hearth
