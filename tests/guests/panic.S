/* panic: PVH guest. Prints "panicking" and signals a guest panic (port 0x3f4
 * <- 1). */
#include "guest.h"

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  PUTS "panicking\n"
  jmp panic_exit

  GUEST_LIB
