// The virtio-mmio register interface driven like a guest driver would, against a fake device.
#include "virtio/mmio_transport.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/virtio_support/virtio_driver.h"

namespace hearth {
namespace {

class CountingTrigger : public Trigger {
 public:
  void Fire() override { ++fired; }
  int fired = 0;
};

class FakeDevice : public VirtioDevice {
 public:
  uint32_t device_type() const override { return kVirtioIdBlock; }
  uint64_t device_features() const override { return kVirtioFRingEventIdx | (1ull << 5); }
  std::vector<uint16_t> queue_max_sizes() const override { return {16, 8}; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) const override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < 8 ? config[offset + i] : 0;
  }
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < 8; ++i) config[offset + i] = data[i];
  }
  Status Activate(VirtioActivation a) override {
    if (fail_activate) return Error("backend broken");
    activation = a;
    active = true;
    return Ok();
  }
  void Reset() override {
    active = false;
    ++resets;
  }
  void ProcessQueue(uint16_t index) override { kicks.push_back(index); }
  bool activated() const override { return active; }

  uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  bool fail_activate = false;
  bool active = false;
  int resets = 0;
  std::vector<uint16_t> kicks;
  VirtioActivation activation;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  MmioTransportTest()
      : memory_(std::move(GuestMemory::Create({{0, 1 << 20}})).value()),
        device_(std::make_shared<FakeDevice>()),
        irq_(std::make_shared<CountingTrigger>()),
        transport_(device_, &memory_, irq_) {}

  uint32_t Read(uint64_t offset) {
    uint32_t v = 0xdeadbeef;
    transport_.Read(offset, std::span(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  void Write(uint64_t offset, uint32_t v) {
    transport_.Write(offset, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  void Negotiate(uint64_t features) {
    Write(mmio::kStatus, kStatusAcknowledge);
    Write(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    Write(mmio::kDriverFeaturesSel, 0);
    Write(mmio::kDriverFeatures, static_cast<uint32_t>(features));
    Write(mmio::kDriverFeaturesSel, 1);
    Write(mmio::kDriverFeatures, static_cast<uint32_t>(features >> 32));
    Write(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }
  void SetupQueue(uint32_t index, const testing::VirtioDriver& d) {
    Write(mmio::kQueueSel, index);
    Write(mmio::kQueueNum, d.size());
    Write(mmio::kQueueDescLow, static_cast<uint32_t>(d.desc_table()));
    Write(mmio::kQueueDescHigh, 0);
    Write(mmio::kQueueDriverLow, static_cast<uint32_t>(d.avail_ring()));
    Write(mmio::kQueueDriverHigh, 0);
    Write(mmio::kQueueDeviceLow, static_cast<uint32_t>(d.used_ring()));
    Write(mmio::kQueueDeviceHigh, 0);
    Write(mmio::kQueueReady, 1);
  }
  static constexpr uint32_t kDriverOkStatus =
      kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;

  GuestMemory memory_;
  std::shared_ptr<FakeDevice> device_;
  std::shared_ptr<CountingTrigger> irq_;
  MmioTransport transport_;
};

TEST_F(MmioTransportTest, IdentifiesAsVirtioMmioVersion2) {
  EXPECT_EQ(Read(mmio::kMagic), 0x74726976u);
  EXPECT_EQ(Read(mmio::kVersion), 2u);
  EXPECT_EQ(Read(mmio::kDeviceId), kVirtioIdBlock);
  EXPECT_EQ(Read(mmio::kVendorId), mmio::kVendor);
}

TEST_F(MmioTransportTest, OffersDeviceFeaturesPlusVersion1) {
  Write(mmio::kDeviceFeaturesSel, 0);
  EXPECT_EQ(Read(mmio::kDeviceFeatures), static_cast<uint32_t>(kVirtioFRingEventIdx | (1u << 5)));
  Write(mmio::kDeviceFeaturesSel, 1);
  EXPECT_EQ(Read(mmio::kDeviceFeatures), 1u);  // VERSION_1 is bit 32.
  Write(mmio::kDeviceFeaturesSel, 7);
  EXPECT_EQ(Read(mmio::kDeviceFeatures), 0u);
}

TEST_F(MmioTransportTest, FullInitialisationActivatesDevice) {
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  Negotiate(kVirtioFVersion1 | kVirtioFRingEventIdx);
  EXPECT_EQ(Read(mmio::kStatus), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  EXPECT_EQ(Read(mmio::kStatus), kDriverOkStatus);
  ASSERT_TRUE(device_->active);
  EXPECT_EQ(device_->activation.acked_features, kVirtioFVersion1 | kVirtioFRingEventIdx);
  ASSERT_EQ(device_->activation.queues->size(), 2u);
  EXPECT_TRUE((*device_->activation.queues)[0].ready());
  EXPECT_TRUE((*device_->activation.queues)[0].state().event_idx);
  EXPECT_EQ((*device_->activation.queues)[0].desc_table(), q0.desc_table());
}

TEST_F(MmioTransportTest, FeaturesOkRefusedWithoutVersion1) {
  Negotiate(kVirtioFRingEventIdx);
  EXPECT_EQ(Read(mmio::kStatus), kStatusAcknowledge | kStatusDriver);
}

TEST_F(MmioTransportTest, FeaturesOkRefusedForUnofferedFeature) {
  Negotiate(kVirtioFVersion1 | (1ull << 40));
  EXPECT_EQ(Read(mmio::kStatus) & kStatusFeaturesOk, 0u);
}

TEST_F(MmioTransportTest, StatusStepsCannotBeSkipped) {
  Write(mmio::kStatus, kStatusAcknowledge | kStatusDriver);  // Two steps at once.
  EXPECT_EQ(Read(mmio::kStatus), 0u);
  Write(mmio::kStatus, kStatusAcknowledge);
  Write(mmio::kStatus, kStatusAcknowledge | kStatusDriverOk);
  EXPECT_EQ(Read(mmio::kStatus), kStatusAcknowledge);
  EXPECT_FALSE(device_->active);
}

TEST_F(MmioTransportTest, StatusCannotClearBits) {
  Negotiate(kVirtioFVersion1);
  Write(mmio::kStatus, kStatusAcknowledge);
  EXPECT_EQ(Read(mmio::kStatus), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
}

TEST_F(MmioTransportTest, FeaturesCannotChangeAfterFeaturesOk) {
  Negotiate(kVirtioFVersion1);
  Write(mmio::kDriverFeaturesSel, 0);
  Write(mmio::kDriverFeatures, static_cast<uint32_t>(kVirtioFRingEventIdx));
  EXPECT_EQ(transport_.acked_features(), kVirtioFVersion1);
}

TEST_F(MmioTransportTest, QueueCannotBeConfiguredBeforeFeaturesOk) {
  Write(mmio::kStatus, kStatusAcknowledge);
  Write(mmio::kQueueSel, 0);
  Write(mmio::kQueueDescLow, 0x1000);
  EXPECT_EQ(transport_.queues()[0].desc_table(), 0u);
}

TEST_F(MmioTransportTest, QueueCannotBeReconfiguredAfterDriverOk) {
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  Write(mmio::kQueueSel, 0);
  Write(mmio::kQueueDescLow, 0x8000);
  EXPECT_EQ(transport_.queues()[0].desc_table(), q0.desc_table());
}

TEST_F(MmioTransportTest, QueueNumMaxPerQueueAndZeroBeyond) {
  Write(mmio::kQueueSel, 0);
  EXPECT_EQ(Read(mmio::kQueueNumMax), 16u);
  Write(mmio::kQueueSel, 1);
  EXPECT_EQ(Read(mmio::kQueueNumMax), 8u);
  Write(mmio::kQueueSel, 2);
  EXPECT_EQ(Read(mmio::kQueueNumMax), 0u);
  Write(mmio::kQueueNotify, 2);  // A queue that does not exist: ignored.
}

TEST_F(MmioTransportTest, BadQueueAddressMeansNeedsResetNotActivation) {
  Negotiate(kVirtioFVersion1);
  Write(mmio::kQueueSel, 0);
  Write(mmio::kQueueNum, 16);
  Write(mmio::kQueueDescLow, 0xfff00000);  // Outside the 1 MiB of guest memory.
  Write(mmio::kQueueReady, 1);
  Write(mmio::kStatus, kDriverOkStatus);
  EXPECT_FALSE(device_->active);
  EXPECT_EQ(Read(mmio::kStatus) & kStatusNeedsReset, kStatusNeedsReset);
  EXPECT_EQ(Read(mmio::kInterruptStatus) & kVirtioIntConfigChange, kVirtioIntConfigChange);
  EXPECT_GE(irq_->fired, 1);
}

TEST_F(MmioTransportTest, FailedActivationMeansNeedsReset) {
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  device_->fail_activate = true;
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  EXPECT_EQ(Read(mmio::kStatus) & kStatusNeedsReset, kStatusNeedsReset);
}

TEST_F(MmioTransportTest, ResetReturnsToInitialStateAndDeviceRecovers) {
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  ASSERT_TRUE(device_->active);
  Write(mmio::kStatus, 0);
  EXPECT_EQ(Read(mmio::kStatus), 0u);
  EXPECT_FALSE(device_->active);
  EXPECT_EQ(device_->resets, 1);
  EXPECT_FALSE(transport_.queues()[0].ready());
  EXPECT_EQ(transport_.acked_features(), 0u);
  // And it comes up again.
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  EXPECT_TRUE(device_->active);
}

TEST_F(MmioTransportTest, NotifyReachesDeviceOnlyWhenActive) {
  Write(mmio::kQueueNotify, 0);
  EXPECT_TRUE(device_->kicks.empty());
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  Write(mmio::kQueueNotify, 1);
  transport_.Notify(0);
  EXPECT_EQ(device_->kicks, (std::vector<uint16_t>{1, 0}));
}

TEST_F(MmioTransportTest, InterruptStatusAndAck) {
  transport_.SignalConfigChange();
  EXPECT_EQ(Read(mmio::kInterruptStatus), kVirtioIntConfigChange);
  EXPECT_EQ(Read(mmio::kConfigGeneration), 1u);
  Write(mmio::kInterruptAck, kVirtioIntConfigChange);
  EXPECT_EQ(Read(mmio::kInterruptStatus), 0u);
}

TEST_F(MmioTransportTest, DeviceSignalsAConfigChangeThroughItsInterrupt) {
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  ASSERT_TRUE(device_->active);
  const int fired = irq_->fired;
  EXPECT_EQ(Read(mmio::kConfigGeneration), 0u);
  // What a drive does after its backing file changed size.
  device_->activation.interrupt->SignalConfigChange();
  EXPECT_EQ(Read(mmio::kConfigGeneration), 1u);
  EXPECT_EQ(Read(mmio::kInterruptStatus), kVirtioIntConfigChange);
  EXPECT_EQ(irq_->fired, fired + 1);
  EXPECT_EQ(transport_.Save().config_generation, 1u);
  // The generation only ever moves forward, across resets too.
  Write(mmio::kStatus, 0);
  EXPECT_EQ(Read(mmio::kConfigGeneration), 1u);
}

TEST_F(MmioTransportTest, ConfigSpaceWindow) {
  uint8_t bytes[4] = {};
  transport_.Read(mmio::kConfig + 2, std::span(bytes, 4));
  EXPECT_EQ(bytes[0], 3);
  EXPECT_EQ(bytes[3], 6);
  uint8_t b = 0x55;
  transport_.Write(mmio::kConfig + 1, std::span(&b, 1));
  EXPECT_EQ(device_->config[1], 0x55);
}

TEST_F(MmioTransportTest, NarrowOrUnalignedRegisterAccessIsIgnored) {
  uint8_t byte = 0x77;
  transport_.Write(mmio::kStatus, std::span(&byte, 1));
  EXPECT_EQ(Read(mmio::kStatus), 0u);
  uint16_t half = 0xffff;
  transport_.Read(mmio::kMagic, std::span(reinterpret_cast<uint8_t*>(&half), 2));
  EXPECT_EQ(half, 0u);
  EXPECT_EQ(Read(mmio::kMagic + 1), 0u);
}

TEST_F(MmioTransportTest, FailedStatusIsSticky) {
  Write(mmio::kStatus, kStatusAcknowledge);
  Write(mmio::kStatus, kStatusFailed);
  EXPECT_EQ(Read(mmio::kStatus) & kStatusFailed, kStatusFailed);
}

TEST_F(MmioTransportTest, SaveCapturesQueuesAndStatus) {
  testing::VirtioDriver q0(memory_, 0x1000, 16, 0x10000);
  Negotiate(kVirtioFVersion1);
  SetupQueue(0, q0);
  Write(mmio::kStatus, kDriverOkStatus);
  MmioTransportState s = transport_.Save();
  EXPECT_EQ(s.status, kDriverOkStatus);
  ASSERT_EQ(s.queues.size(), 2u);
  EXPECT_EQ(s.queues[0].used_ring, q0.used_ring());
  EXPECT_EQ(s.acked_features, kVirtioFVersion1);
}

}  // namespace
}  // namespace hearth
