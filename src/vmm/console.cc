#include "vmm/console.h"

#include <unistd.h>

#include "base/fd.h"

namespace hearth {

void FdByteSink::Write(std::span<const uint8_t> bytes) {
  // A closed or broken stdout must not stop the guest; the bytes are counted and dropped.
  if (!WriteAll(fd_, bytes.data(), bytes.size(), "console").ok()) dropped_ += bytes.size();
}

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  // Raw input (no echo, no line editing, no signals from ^C: they belong to the guest), but
  // keep output post-processing so the host terminal still renders newlines.
  raw.c_iflag &= ~static_cast<tcflag_t>(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  raw.c_cflag |= CS8;
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
}

RawTerminal::~RawTerminal() {
  if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
}

}  // namespace hearth
