// The virtqueue walker against a hostile driver: descriptor tables, indirect tables and ring
// indices decoded from the input, popped and returned as a device would.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz/guest_ring.h"
#include "virtio/queue.h"

using namespace hearth;
using namespace hearth::fuzz;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  GuestMemory* memory = &FreshGuestMemory();
  const uint16_t max_size = 256;
  const uint16_t qsize = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(0, 8));
  const bool event_idx = in.ConsumeBool();
  const bool indirect = in.ConsumeBool();
  FuzzRing ring(*memory, 0x1000, qsize);
  Queue queue(max_size);
  ring.Configure(queue, event_idx, indirect);
  if (!queue.Validate(*memory).ok()) Die("a well-formed queue failed validation");

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:
      case 1:
      case 2:
        ring.Step(in);
        break;
      case 3:
      case 4: {  // The device pops what is available and returns it.
        int budget = in.ConsumeIntegralInRange<int>(1, 8);
        while (budget-- > 0) {
          Queue::PopResult pop = queue.Pop(*memory);
          if (pop.error) {
            if (pop.error->needs_reset) break;
            (void)queue.AddUsed(*memory, pop.error->head, 0);
            continue;
          }
          if (!pop.chain) break;
          CheckChain(*memory, *pop.chain, qsize);
          (void)queue.AddUsed(*memory, pop.chain->head,
                              static_cast<uint32_t>(pop.chain->writable_bytes));
        }
        break;
      }
      case 5:
        (void)queue.NeedsInterrupt(*memory);
        break;
      case 6:
        if (in.ConsumeBool()) {
          (void)queue.EnableNotification(*memory);
        } else {
          queue.DisableNotification(*memory);
        }
        break;
      case 7: {  // A snapshot restore with hostile fields: accepted only if it is usable.
        QueueState s = queue.state();
        s.size = in.ConsumeIntegral<uint16_t>();
        s.desc_table = ConsumeAddr(in);
        s.avail_ring = ConsumeAddr(in);
        s.used_ring = ConsumeAddr(in);
        s.next_avail = in.ConsumeIntegral<uint16_t>();
        s.next_used = in.ConsumeIntegral<uint16_t>();
        Queue restored(max_size);
        if (restored.Restore(s, *memory).ok() && restored.ready()) {
          if (!restored.Validate(*memory).ok()) Die("Restore accepted an invalid queue");
          for (int i = 0; i < 4; ++i) {
            auto pop = restored.Pop(*memory);
            if (pop.chain) CheckChain(*memory, *pop.chain, restored.size());
            if (!pop.chain) break;
          }
        }
        break;
      }
    }
  }
  return 0;
}
