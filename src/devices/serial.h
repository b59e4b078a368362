// A 16550A UART (the guest's console). No bus, no KVM: registers in, bytes out to a sink, an
// interrupt Trigger. Host input is queued in a bounded FIFO; when the guest drains a full FIFO
// the `rx_space` trigger tells the VMM to resume reading its input.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "bus/bus.h"
#include "devices/trigger.h"

namespace hearth {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void Write(std::span<const uint8_t> bytes) = 0;
};

// Everything a snapshot needs to resume the UART exactly.
struct SerialState {
  uint8_t ier = 0;
  uint8_t lcr = 0;
  uint8_t mcr = 0;
  uint8_t lsr = 0;
  uint8_t msr = 0;
  uint8_t scr = 0;
  uint8_t dll = 0;
  uint8_t dlm = 0;
  bool fifo_enabled = false;
  bool thr_empty_pending = false;
  std::vector<uint8_t> rx_fifo;
};

class Serial : public BusDevice {
 public:
  static constexpr size_t kRxFifoCapacity = 64;
  static constexpr uint64_t kRegisterCount = 8;

  Serial(std::shared_ptr<Trigger> irq, std::shared_ptr<ByteSink> out,
         std::shared_ptr<Trigger> rx_space = nullptr);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues host input for the guest; returns how many bytes fit (the rest must wait).
  size_t EnqueueInput(std::span<const uint8_t> bytes);
  size_t rx_space() const { return kRxFifoCapacity - rx_fifo_.size(); }

  SerialState Save() const;
  Status Restore(const SerialState& state);

 private:
  uint8_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint8_t value);
  void PushRx(uint8_t byte);
  uint8_t InterruptId() const;
  void UpdateInterrupt();
  bool dlab() const;
  bool loop() const;

  std::shared_ptr<Trigger> irq_;
  std::shared_ptr<ByteSink> out_;
  std::shared_ptr<Trigger> rx_space_;

  uint8_t ier_ = 0;
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t lsr_;
  uint8_t msr_;
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0c;  // 9600 baud, as firmware would leave it.
  uint8_t dlm_ = 0;
  bool fifo_enabled_ = false;
  bool thr_empty_pending_ = false;
  std::deque<uint8_t> rx_fifo_;
};

}  // namespace hearth
