// The host side of the guest console: serial output to stdout, and the terminal in raw mode
// while the VM runs (restored when this object goes away) so keystrokes reach the guest as-is.
#pragma once

#include <termios.h>

#include <atomic>
#include <cstdint>
#include <span>

#include "devices/serial.h"

namespace hearth {

class FdByteSink : public ByteSink {
 public:
  explicit FdByteSink(int fd) : fd_(fd) {}
  void Write(std::span<const uint8_t> bytes) override;
  uint64_t dropped() const { return dropped_.load(); }

 private:
  int fd_;  // Not owned (stdout).
  std::atomic<uint64_t> dropped_{0};
};

class RawTerminal {
 public:
  // Puts `fd` in raw mode when it is a terminal; does nothing otherwise.
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace hearth
