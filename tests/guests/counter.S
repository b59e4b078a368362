/* counter: PVH guest that counts for ever, printing "count N" lines with a short pause
 * between them. Pause/resume and snapshot tests check that the count stops while the VM is
 * paused and goes on from where it was afterwards (no reboot: "counter start" appears once). */
#include "guest.h"

/* About 10 ms per line on an interpreting host (each CPL-0 instruction is emulated). */
#define DELAY_ITERATIONS 4000

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  OUTB BOOT_TIMER_PORT, BOOT_TIMER_MAGIC
  PUTS "counter start\n"
  movl $0, count
1:
  PUTS "count "
  mov count, %eax
  call putdec
  mov $'\n', %al
  call putc
  incl count
  mov $DELAY_ITERATIONS, %ecx
2:
  dec %ecx
  jnz 2b
  jmp 1b

  .bss
  .balign 4
count: .long 0

  .text
  GUEST_LIB
