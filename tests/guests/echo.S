/* echo: PVH guest. Reads serial input up to '\n' (at most 200 bytes), prints
 * it back upper-cased as "echo: ...", and powers off. Gives up after ~20 s
 * without a complete line ("echo: timeout", panic exit). */
#include "guest.h"

#define ECHO_MAX 200
#define ECHO_TIMEOUT_TICKS (20 * TIMER_TICKS_PER_SECOND)

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  call timer_start
  mov $line, %edi
read_byte:
  mov $COM1_LSR, %dx
  in %dx, %al
  test $LSR_DATA_READY, %al
  jnz 1f
  call timer_elapsed
  cmp $ECHO_TIMEOUT_TICKS, %eax
  jb read_byte
  PUTS "echo: timeout\n"
  jmp panic_exit
1:
  mov $COM1_DATA, %dx
  in %dx, %al
  cmp $'\n', %al
  je print_line
  cmp $'a', %al
  jb 2f
  cmp $'z', %al
  ja 2f
  sub $('a' - 'A'), %al
2:
  mov %al, (%edi)
  inc %edi
  cmp $(line + ECHO_MAX), %edi
  jb read_byte
print_line:
  movb $0, (%edi)
  PUTS "echo: "
  mov $line, %esi
  call puts
  PUTS "\n"
  jmp poweroff

  .bss
line: .skip ECHO_MAX + 1

  .text
  GUEST_LIB
