#include "devices/guest_signals.h"

namespace hearth {

void BootTimer::Read(uint64_t, std::span<uint8_t> data) {
  for (auto& b : data) b = 0xff;
}

void BootTimer::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 0 && data.size() == 1 && data[0] == kBootCompleteValue && on_boot_complete_) {
    on_boot_complete_();
  }
}

void PowerPort::Read(uint64_t, std::span<uint8_t> data) {
  for (auto& b : data) b = 0xff;
}

void PowerPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.size() != 1) return;
  if (data[0] == kPowerOffValue && on_power_off_) on_power_off_();
  if (data[0] == kPanicValue && on_panic_) on_panic_();
}

}  // namespace hearth
