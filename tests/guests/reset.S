/* reset: PVH guest. Prints "resetting", asks the i8042 for a CPU reset and
 * halts; it must never get past the reset. */
#include "guest.h"

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  PUTS "resetting\n"
  OUTB I8042_COMMAND, I8042_RESET
1:
  cli
  hlt
  jmp 1b

  GUEST_LIB
