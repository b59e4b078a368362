// The kernel command line builder: user boot_args and the VMM's additions appended under a
// capacity the kernel image states.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "boot/cmdline.h"

using hearth::Cmdline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Cmdline cmdline(in.ConsumeIntegralInRange<size_t>(0, 4096));
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
      case 1: {
        const std::string before = cmdline.str();
        std::string words = in.ConsumeRandomLengthString(512);
        if (!cmdline.Append(words).ok() && cmdline.str() != before) {
          std::fprintf(stderr, "a failed Append changed the command line\n");
          std::abort();
        }
        break;
      }
      case 2:
        (void)cmdline.HasParam(in.ConsumeRandomLengthString(32));
        break;
      case 3:
        cmdline.set_capacity(in.ConsumeIntegralInRange<size_t>(0, 4096));
        (void)cmdline.CheckLength();
        break;
    }
    // Whatever was accepted has no control byte, and fits when the capacity check passes.
    for (char c : cmdline.str()) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f) {
        std::fprintf(stderr, "control byte 0x%02x in the command line\n", c & 0xff);
        std::abort();
      }
    }
    if (cmdline.CheckLength().ok() && cmdline.str().size() + 1 > cmdline.capacity()) {
      std::fprintf(stderr, "CheckLength passed a command line longer than its capacity\n");
      std::abort();
    }
  }
  return 0;
}
