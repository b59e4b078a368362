#include "devices/i8042.h"

namespace hearth {
namespace {
// Status register bits.
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusCommand = 0x08;  // The last write was to the command port.
constexpr uint8_t kStatusUnlocked = 0x10;

// Control ("command byte") bits.
constexpr uint8_t kControlKbdInterrupt = 0x01;
constexpr uint8_t kControlSystemFlag = 0x04;
constexpr uint8_t kControlKbdDisabled = 0x10;
constexpr uint8_t kControlTranslate = 0x40;

// Controller commands.
constexpr uint8_t kCmdReadControl = 0x20;
constexpr uint8_t kCmdWriteControl = 0x60;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKbdInterfaceTest = 0xab;
constexpr uint8_t kCmdDisableKbd = 0xad;
constexpr uint8_t kCmdEnableKbd = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdPulseFirst = 0xf0;  // 0xf0..0xff pulse output lines; bit 0 = reset.

// Keyboard commands and replies.
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdGetId = 0xf2;
constexpr uint8_t kKbdSelfTestPassed = 0xaa;

constexpr uint8_t kOutputPortResetLine = 0x01;  // Active low: clearing it resets the CPU.
}  // namespace

I8042::I8042(std::shared_ptr<Trigger> irq, std::function<void()> on_reset)
    : irq_(std::move(irq)),
      on_reset_(std::move(on_reset)),
      status_(kStatusSystemFlag | kStatusUnlocked),
      control_(kControlKbdInterrupt | kControlSystemFlag | kControlTranslate),
      output_port_(kOutputPortResetLine | 0x02) {}

void I8042::Push(uint8_t byte) {
  if (output_.size() < kOutputCapacity) output_.push_back(byte);
  UpdateStatus();
  if ((control_ & kControlKbdInterrupt) && irq_) irq_->Fire();
}

void I8042::UpdateStatus() {
  if (output_.empty()) {
    status_ &= static_cast<uint8_t>(~kStatusOutputFull);
  } else {
    status_ |= kStatusOutputFull;
  }
}

void I8042::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  for (auto& b : data) b = 0xff;
  if (offset == kCommandOffset) {
    data[0] = status_;
  } else if (offset == kDataOffset) {
    uint8_t value = 0;
    if (!output_.empty()) {
      value = output_.front();
      output_.pop_front();
    }
    UpdateStatus();
    data[0] = value;
  }
}

void I8042::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (offset == kCommandOffset) {
    status_ |= kStatusCommand;
    Command(data[0]);
  } else if (offset == kDataOffset) {
    status_ &= static_cast<uint8_t>(~kStatusCommand);
    Data(data[0]);
  }
}

void I8042::Command(uint8_t command) {
  pending_command_ = 0;
  switch (command) {
    case kCmdReadControl:
      Push(control_);
      return;
    case kCmdWriteControl:
    case kCmdWriteOutputPort:
      pending_command_ = command;
      return;
    case kCmdSelfTest:
      Push(0x55);
      return;
    case kCmdKbdInterfaceTest:
      Push(0x00);
      return;
    case kCmdDisableKbd:
      control_ |= kControlKbdDisabled;
      return;
    case kCmdEnableKbd:
      control_ &= static_cast<uint8_t>(~kControlKbdDisabled);
      return;
    case kCmdReadOutputPort:
      Push(output_port_);
      return;
    default:
      if (command >= kCmdPulseFirst && (command & 0x01) == 0) {
        if (on_reset_) on_reset_();
      }
      return;  // Other commands (aux port, password, ...) are not modelled.
  }
}

void I8042::Data(uint8_t value) {
  uint8_t command = pending_command_;
  pending_command_ = 0;
  switch (command) {
    case kCmdWriteControl:
      control_ = value;
      if (control_ & kControlSystemFlag) {
        status_ |= kStatusSystemFlag;
      } else {
        status_ &= static_cast<uint8_t>(~kStatusSystemFlag);
      }
      return;
    case kCmdWriteOutputPort:
      output_port_ = value;
      if ((value & kOutputPortResetLine) == 0 && on_reset_) on_reset_();
      return;
    default:
      break;
  }
  // A byte for the keyboard itself: acknowledge it like an AT keyboard would.
  Push(kKbdAck);
  if (value == kKbdReset) {
    Push(kKbdSelfTestPassed);
  } else if (value == kKbdGetId) {
    Push(0xab);
    Push(0x83);
  }
}

void I8042::SendCtrlAltDel() {
  // Set-2 make/break codes (the controller translates): Ctrl, Alt, Del (extended).
  for (uint8_t b : {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14}) Push(b);
}

I8042State I8042::Save() const {
  return I8042State{status_, control_, output_port_, pending_command_,
                    std::vector<uint8_t>(output_.begin(), output_.end())};
}

Status I8042::Restore(const I8042State& s) {
  if (s.output.size() > kOutputCapacity) return Error("i8042 state: output buffer overflows");
  if (s.pending_command != 0 && s.pending_command != kCmdWriteControl &&
      s.pending_command != kCmdWriteOutputPort) {
    return Error("i8042 state: invalid pending command");
  }
  status_ = s.status;
  control_ = s.control;
  output_port_ = s.output_port;
  pending_command_ = s.pending_command;
  output_.assign(s.output.begin(), s.output.end());
  UpdateStatus();
  return Ok();
}

}  // namespace hearth
