// What a device may signal: an interrupt line, or a notification to the VMM thread. Backed by an
// eventfd (irqfd for interrupts) in the VMM and by a counter in tests.
#pragma once

namespace hearth {

class Trigger {
 public:
  virtual ~Trigger() = default;
  virtual void Fire() = 0;
};

}  // namespace hearth
