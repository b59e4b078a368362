// A minimal i8042 keyboard controller: enough for Linux to probe it, for `reboot=k` (the CPU
// reset pulse) to end the VM, and for Ctrl-Alt-Del to be sent to the guest. Ports 0x60 (data)
// and 0x64 (status/command) are offsets 0 and 4 of one 5-port range.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "bus/bus.h"
#include "devices/trigger.h"

namespace hearth {

struct I8042State {
  uint8_t status = 0;
  uint8_t control = 0;
  uint8_t output_port = 0;
  uint8_t pending_command = 0;  // A command waiting for its data byte, or 0.
  std::vector<uint8_t> output;
};

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kDataOffset = 0;
  static constexpr uint64_t kCommandOffset = 4;
  static constexpr uint64_t kRangeLength = 5;
  static constexpr size_t kOutputCapacity = 16;

  I8042(std::shared_ptr<Trigger> irq, std::function<void()> on_reset);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues the scan codes of Ctrl-Alt-Del (set 2), as a keyboard would send them.
  void SendCtrlAltDel();

  I8042State Save() const;
  Status Restore(const I8042State& state);

 private:
  void Command(uint8_t command);
  void Data(uint8_t value);
  void Push(uint8_t byte);
  void UpdateStatus();

  std::shared_ptr<Trigger> irq_;
  std::function<void()> on_reset_;
  uint8_t status_;
  uint8_t control_;
  uint8_t output_port_;
  uint8_t pending_command_ = 0;
  std::deque<uint8_t> output_;
};

}  // namespace hearth
