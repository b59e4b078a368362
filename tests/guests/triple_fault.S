/* triple_fault: PVH guest. Prints "faulting", loads an empty IDT and
 * executes ud2: #UD -> #GP -> #DF -> triple fault. */
#include "guest.h"

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  PUTS "faulting\n"
  lidt empty_idt
  ud2
  PUTS "survived ud2\n"
  jmp panic_exit

  .section .rodata
  .balign 8
empty_idt:
  .word 0
  .long 0

  .text
  GUEST_LIB
