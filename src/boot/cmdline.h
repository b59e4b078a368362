// The kernel command line Hearth builds: the user's boot_args plus what the VMM adds (device
// announcements, host workarounds). Its length is bounded by what the boot protocol allows.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hearth {

class Cmdline {
 public:
  // Linux/x86's COMMAND_LINE_SIZE, the limit when the kernel does not state its own.
  static constexpr size_t kDefaultCapacity = 2048;

  // `capacity` counts the terminating NUL, as the boot protocol's cmdline_size does (+1).
  explicit Cmdline(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  // Appends space-separated words; rejects NUL and non-printable bytes, and overflow.
  Status Append(std::string_view words);
  // True when a parameter named `key` (as `key` or `key=...`) is present.
  bool HasParam(std::string_view key) const;

  const std::string& str() const { return text_; }
  size_t capacity() const { return capacity_; }
  void set_capacity(size_t capacity) { capacity_ = capacity; }
  // Re-checks the length against the capacity (after the kernel's limit became known).
  Status CheckLength() const;

 private:
  size_t capacity_;
  std::string text_;
};

}  // namespace hearth
