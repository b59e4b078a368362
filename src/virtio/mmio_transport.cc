#include "virtio/mmio_transport.h"

#include <cstring>

#include "base/log.h"

namespace hearth {

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, GuestMemory* memory,
                             std::shared_ptr<Trigger> irq)
    : device_(std::move(device)),
      memory_(memory),
      interrupt_(std::make_shared<MmioInterrupt>(std::move(irq))) {
  for (uint16_t max : device_->queue_max_sizes()) queues_.emplace_back(max);
}

void MmioTransport::Read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= mmio::kConfig) {
    device_->ReadConfig(offset - mmio::kConfig, data);
    return;
  }
  // Registers are 32 bits wide and must be read whole.
  if (data.size() != 4 || offset % 4 != 0) {
    LOG_DEBUG("virtio-mmio: ignoring a " << data.size() << "-byte read at 0x" << std::hex << offset);
    return;
  }
  uint32_t value = ReadRegister(offset);
  std::memcpy(data.data(), &value, 4);
}

void MmioTransport::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= mmio::kConfig) {
    device_->WriteConfig(offset - mmio::kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    LOG_DEBUG("virtio-mmio: ignoring a " << data.size() << "-byte write at 0x" << std::hex << offset);
    return;
  }
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  WriteRegister(offset, value);
}

Queue* MmioTransport::SelectedQueue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

bool MmioTransport::CanConfigureFeatures() const {
  return (status_ & kStatusDriver) && !(status_ & (kStatusFeaturesOk | kStatusFailed));
}

bool MmioTransport::CanConfigureQueues() const {
  return (status_ & kStatusFeaturesOk) && !(status_ & (kStatusDriverOk | kStatusFailed));
}

uint32_t MmioTransport::ReadRegister(uint64_t offset) {
  switch (offset) {
    case mmio::kMagic: return mmio::kMagicValue;
    case mmio::kVersion: return 2;
    case mmio::kDeviceId: return device_->device_type();
    case mmio::kVendorId: return mmio::kVendor;
    case mmio::kDeviceFeatures: {
      uint64_t features = device_->device_features() | kVirtioFVersion1;
      if (device_features_sel_ == 0) return static_cast<uint32_t>(features);
      if (device_features_sel_ == 1) return static_cast<uint32_t>(features >> 32);
      return 0;
    }
    case mmio::kQueueNumMax: {
      Queue* q = SelectedQueue();
      return q ? q->max_size() : 0;
    }
    case mmio::kQueueReady: {
      Queue* q = SelectedQueue();
      return q && q->ready() ? 1 : 0;
    }
    case mmio::kInterruptStatus: return interrupt_->status();
    case mmio::kStatus: return status();
    case mmio::kConfigGeneration: return interrupt_->config_generation();
    default:
      LOG_DEBUG("virtio-mmio: read of write-only or unknown register 0x" << std::hex << offset);
      return 0;
  }
}

void MmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  auto set_low = [](uint64_t& field, uint32_t v) { field = (field & ~0xffffffffull) | v; };
  auto set_high = [](uint64_t& field, uint32_t v) { field = (field & 0xffffffffull) | (uint64_t{v} << 32); };
  Queue* q = SelectedQueue();
  switch (offset) {
    case mmio::kDeviceFeaturesSel: device_features_sel_ = value; return;
    case mmio::kDriverFeaturesSel: driver_features_sel_ = value; return;
    case mmio::kDriverFeatures:
      if (!CanConfigureFeatures() || driver_features_sel_ > 1) {
        LOG_DEBUG("virtio-mmio: ignoring a feature write in status " << status_);
        return;
      }
      if (driver_features_sel_ == 0) set_low(acked_features_, value);
      else set_high(acked_features_, value);
      return;
    case mmio::kQueueSel: queue_sel_ = value; return;
    case mmio::kQueueNotify: Notify(value); return;
    case mmio::kInterruptAck: interrupt_->Ack(value); return;
    case mmio::kStatus: SetStatus(value); return;
    default: break;
  }
  // What remains configures the selected queue, allowed only before DRIVER_OK.
  if (q == nullptr || !CanConfigureQueues()) {
    LOG_DEBUG("virtio-mmio: ignoring queue register 0x" << std::hex << offset << " write");
    return;
  }
  QueueState s = q->state();
  switch (offset) {
    case mmio::kQueueNum: q->set_size(static_cast<uint16_t>(value > 0xffff ? 0 : value)); return;
    case mmio::kQueueReady: q->set_ready(value == 1); return;
    case mmio::kQueueDescLow: set_low(s.desc_table, value); q->set_desc_table(s.desc_table); return;
    case mmio::kQueueDescHigh: set_high(s.desc_table, value); q->set_desc_table(s.desc_table); return;
    case mmio::kQueueDriverLow: set_low(s.avail_ring, value); q->set_avail_ring(s.avail_ring); return;
    case mmio::kQueueDriverHigh: set_high(s.avail_ring, value); q->set_avail_ring(s.avail_ring); return;
    case mmio::kQueueDeviceLow: set_low(s.used_ring, value); q->set_used_ring(s.used_ring); return;
    case mmio::kQueueDeviceHigh: set_high(s.used_ring, value); q->set_used_ring(s.used_ring); return;
    default:
      LOG_DEBUG("virtio-mmio: write to read-only or unknown register 0x" << std::hex << offset);
      return;
  }
}

void MmioTransport::SetStatus(uint32_t value) {
  if (value == 0) {
    ResetDevice();
    return;
  }
  if (value & kStatusFailed) {
    status_ |= kStatusFailed;
    return;
  }
  // The driver only ever adds bits (one step at a time), except through reset.
  if ((value & status_) != status_) {
    LOG_DEBUG("virtio-mmio: status 0x" << std::hex << value << " would clear bits of 0x" << status_);
    return;
  }
  uint32_t added = value & ~status_;
  if (added == kStatusAcknowledge && status_ == 0) {
    status_ = value;
  } else if (added == kStatusDriver && (status_ & kStatusAcknowledge)) {
    status_ = value;
  } else if (added == kStatusFeaturesOk && (status_ & kStatusDriver)) {
    uint64_t offered = device_->device_features() | kVirtioFVersion1;
    // FEATURES_OK only sticks for an acceptable subset; the driver reads it back to know.
    if ((acked_features_ & ~offered) == 0 && (acked_features_ & kVirtioFVersion1)) {
      status_ = value;
    } else {
      LOG_WARN("virtio-mmio: driver acked unsupported features 0x" << std::hex << acked_features_);
    }
  } else if (added == kStatusDriverOk && (status_ & kStatusFeaturesOk)) {
    status_ = value;
    bool event_idx = acked_features_ & kVirtioFRingEventIdx;
    bool indirect = acked_features_ & kVirtioFRingIndirectDesc;
    Status ok = Ok();
    for (auto& queue : queues_) {
      queue.set_features(event_idx, indirect);
      if (queue.ready() && ok.ok()) ok = queue.Validate(*memory_);
    }
    if (ok.ok()) ok = device_->Activate({memory_, &queues_, interrupt_, acked_features_});
    if (!ok.ok()) {
      LOG_WARN("virtio-mmio: " << ok.error().message() << ": device needs reset");
      interrupt_->SetNeedsReset();
    }
  } else {
    LOG_DEBUG("virtio-mmio: invalid status transition 0x" << std::hex << status_ << " -> 0x" << value);
  }
}

void MmioTransport::ResetDevice() {
  if (device_->activated()) device_->Reset();
  for (auto& queue : queues_) queue.Reset();
  status_ = 0;
  acked_features_ = 0;
  device_features_sel_ = 0;
  driver_features_sel_ = 0;
  queue_sel_ = 0;
  interrupt_->Clear();
}

void MmioTransport::Notify(uint32_t index) {
  if (!(status_ & kStatusDriverOk) || interrupt_->needs_reset() || !device_->activated()) return;
  if (index >= queues_.size()) {
    LOG_DEBUG("virtio-mmio: notify for queue " << index << " that does not exist");
    return;
  }
  device_->ProcessQueue(static_cast<uint16_t>(index));
}

void MmioTransport::SignalConfigChange() { interrupt_->SignalConfigChange(); }

MmioTransportState MmioTransport::Save() const {
  MmioTransportState s{status(), device_features_sel_, driver_features_sel_, acked_features_,
                       queue_sel_, interrupt_->status(), interrupt_->config_generation(), {}};
  for (const auto& q : queues_) s.queues.push_back(q.state());
  return s;
}

}  // namespace hearth
