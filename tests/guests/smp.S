/* smp: PVH guest. The BSP enables its LAPIC, copies a real-mode trampoline to
 * 0x10000 and sends INIT, SIPI, SIPI (vector 0x10) to all but itself. Each AP
 * increments a counter with a locked add and halts. The BSP waits until the
 * count reaches "expect_cpus=N" from the command line (if given), or has not
 * changed for 2 s, or 15 s have passed, then prints "cpus=N" (itself
 * included) and powers off. Time comes from the LAPIC timer. */
#include "guest.h"

#define TRAMPOLINE 0x10000
#define SIPI_VECTOR (TRAMPOLINE >> 12)
#define AP_COUNTER (TRAMPOLINE + (tramp_counter - tramp_start))
#define ICR_ALL_BUT_SELF 0xc0000
#define ICR_ASSERT 0x4000
#define ICR_INIT 0x500
#define ICR_STARTUP 0x600
#define ICR_BUSY 0x1000
#define STABLE_TICKS (2 * TIMER_TICKS_PER_SECOND)
#define GIVE_UP_TICKS (15 * TIMER_TICKS_PER_SECOND)

/* Sends an IPI with low ICR word \low and waits (bounded) for delivery. */
.macro SEND_IPI low
  mov $LAPIC_BASE, %edx
  movl $0, LAPIC_ICR_HIGH(%edx)
  movl $\low, LAPIC_ICR_LOW(%edx)
  mov $1000, %ecx
7:
  testl $ICR_BUSY, LAPIC_ICR_LOW(%edx)
  jz 8f
  dec %ecx
  jnz 7b
8:
.endm

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  call parse_expected
  call timer_start

  mov $tramp_start, %esi
  mov $TRAMPOLINE, %edi
  mov $(tramp_end - tramp_start), %ecx
  cld
  rep movsb

  SEND_IPI (ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT)
  SEND_IPI (ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | SIPI_VECTOR)
  SEND_IPI (ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | SIPI_VECTOR)

  /* %esi = last count, %edi = time of the last change. */
  xor %esi, %esi
  xor %edi, %edi
wait_loop:
  pause
  mov (AP_COUNTER), %ebx
  lea 1(%ebx), %eax
  mov expected, %ecx
  test %ecx, %ecx
  jz 1f
  cmp %ecx, %eax
  jae done
1:
  call timer_elapsed
  cmp %esi, %ebx
  je 2f
  mov %ebx, %esi
  mov %eax, %edi
2:
  cmp $GIVE_UP_TICKS, %eax
  jae done
  sub %edi, %eax
  cmp $STABLE_TICKS, %eax
  jb wait_loop
done:
  PUTS "cpus="
  mov (AP_COUNTER), %eax
  inc %eax
  call putdec
  PUTS "\n"
  jmp poweroff

/* Sets `expected` from "expect_cpus=<decimal>" in the PVH command line. */
parse_expected:
  cmpl $PVH_START_MAGIC, (%ebx)
  jne 9f
  mov PVH_CMDLINE(%ebx), %edx
  test %edx, %edx
  jz 9f
1:
  cmpb $0, (%edx)
  je 9f
  mov %edx, %esi
  mov $key, %edi
  mov $(key_end - key), %ecx
  repe cmpsb
  je 2f
  inc %edx
  jmp 1b
2:
  xor %eax, %eax
3:
  movzbl (%esi), %ecx
  sub $'0', %ecx
  cmp $9, %ecx
  ja 4f
  imul $10, %eax
  add %ecx, %eax
  inc %esi
  jmp 3b
4:
  mov %eax, expected
9:
  ret

/* Real-mode AP entry, copied to TRAMPOLINE (CS = 0x1000, IP = 0). */
  .code16
tramp_start:
  lock incl %cs:(tramp_counter - tramp_start)
1:
  cli
  hlt
  jmp 1b
  .balign 4
tramp_counter:
  .long 0
tramp_end:
  .code32

  .section .rodata
key: .ascii "expect_cpus="
key_end:

  .bss
  .balign 4
expected: .long 0

  .text
  GUEST_LIB
