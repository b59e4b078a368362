// The virtio-mmio transport (version 2 register layout): the driver-facing side of a virtio
// device. Feature negotiation, the device status state machine (invalid transitions are
// ignored, a failed activation reports DEVICE_NEEDS_RESET), queue configuration, the config
// space window, interrupt status and acknowledge, and reset.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bus/bus.h"
#include "devices/trigger.h"
#include "virtio/virtio_device.h"

namespace hearth {

// Device status bits.
constexpr uint32_t kStatusAcknowledge = 1;
constexpr uint32_t kStatusDriver = 2;
constexpr uint32_t kStatusDriverOk = 4;
constexpr uint32_t kStatusFeaturesOk = 8;
constexpr uint32_t kStatusNeedsReset = 64;
constexpr uint32_t kStatusFailed = 128;

// Register offsets.
namespace mmio {
constexpr uint64_t kMagic = 0x000;
constexpr uint64_t kVersion = 0x004;
constexpr uint64_t kDeviceId = 0x008;
constexpr uint64_t kVendorId = 0x00c;
constexpr uint64_t kDeviceFeatures = 0x010;
constexpr uint64_t kDeviceFeaturesSel = 0x014;
constexpr uint64_t kDriverFeatures = 0x020;
constexpr uint64_t kDriverFeaturesSel = 0x024;
constexpr uint64_t kQueueSel = 0x030;
constexpr uint64_t kQueueNumMax = 0x034;
constexpr uint64_t kQueueNum = 0x038;
constexpr uint64_t kQueueReady = 0x044;
constexpr uint64_t kQueueNotify = 0x050;
constexpr uint64_t kInterruptStatus = 0x060;
constexpr uint64_t kInterruptAck = 0x064;
constexpr uint64_t kStatus = 0x070;
constexpr uint64_t kQueueDescLow = 0x080;
constexpr uint64_t kQueueDescHigh = 0x084;
constexpr uint64_t kQueueDriverLow = 0x090;
constexpr uint64_t kQueueDriverHigh = 0x094;
constexpr uint64_t kQueueDeviceLow = 0x0a0;
constexpr uint64_t kQueueDeviceHigh = 0x0a4;
constexpr uint64_t kConfigGeneration = 0x0fc;
constexpr uint64_t kConfig = 0x100;
constexpr uint64_t kWindowSize = 0x1000;
constexpr uint32_t kMagicValue = 0x74726976;  // "virt"
constexpr uint32_t kVendor = 0x48525448;      // "HRTH"
}  // namespace mmio

// The transport's interrupt: the status register plus the line. Shared with the device.
class MmioInterrupt : public VirtioInterrupt {
 public:
  explicit MmioInterrupt(std::shared_ptr<Trigger> irq) : irq_(std::move(irq)) {}
  void Raise(uint32_t cause) override {
    status_.fetch_or(cause, std::memory_order_acq_rel);
    if (irq_) irq_->Fire();
  }
  void SetNeedsReset() override {
    needs_reset_.store(true, std::memory_order_release);
    Raise(kVirtioIntConfigChange);
  }
  void SignalConfigChange() override {
    config_generation_.fetch_add(1, std::memory_order_acq_rel);
    Raise(kVirtioIntConfigChange);
  }
  uint32_t config_generation() const { return config_generation_.load(std::memory_order_acquire); }
  uint32_t status() const { return status_.load(std::memory_order_acquire); }
  bool needs_reset() const { return needs_reset_.load(std::memory_order_acquire); }
  void Ack(uint32_t bits) { status_.fetch_and(~bits, std::memory_order_acq_rel); }
  void Clear() {
    status_.store(0, std::memory_order_release);
    needs_reset_.store(false, std::memory_order_release);
  }

 private:
  std::shared_ptr<Trigger> irq_;
  std::atomic<uint32_t> status_{0};
  std::atomic<bool> needs_reset_{false};
  // Lives here, not in the transport, so that a device can bump it (SignalConfigChange).
  std::atomic<uint32_t> config_generation_{0};
};

struct MmioTransportState {
  uint32_t status = 0;
  uint32_t device_features_sel = 0;
  uint32_t driver_features_sel = 0;
  uint64_t acked_features = 0;
  uint32_t queue_sel = 0;
  uint32_t interrupt_status = 0;
  uint32_t config_generation = 0;
  std::vector<QueueState> queues;
};

class MmioTransport : public BusDevice {
 public:
  // `notify` is called for QueueNotify writes that reach user space (when no ioeventfd is
  // registered for the queue, e.g. in tests). `memory` must outlive the transport.
  MmioTransport(std::shared_ptr<VirtioDevice> device, GuestMemory* memory,
                std::shared_ptr<Trigger> irq);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // A kick for queue `index` from its ioeventfd (VMM thread).
  void Notify(uint32_t index);
  // Tells the driver the config space changed (e.g. a drive was swapped).
  void SignalConfigChange();

  VirtioDevice& device() { return *device_; }
  uint32_t status() const { return status_ | (interrupt_->needs_reset() ? kStatusNeedsReset : 0); }
  uint64_t acked_features() const { return acked_features_; }
  std::vector<Queue>& queues() { return queues_; }
  uint32_t interrupt_status() const { return interrupt_->status(); }

  MmioTransportState Save() const;

 private:
  uint32_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint32_t value);
  void SetStatus(uint32_t value);
  void ResetDevice();
  Queue* SelectedQueue();
  // Queue and feature registers may change only in the phase the spec allows.
  bool CanConfigureFeatures() const;
  bool CanConfigureQueues() const;

  std::shared_ptr<VirtioDevice> device_;
  GuestMemory* memory_;
  std::shared_ptr<MmioInterrupt> interrupt_;
  std::vector<Queue> queues_;
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t acked_features_ = 0;
  uint32_t queue_sel_ = 0;
};

}  // namespace hearth
