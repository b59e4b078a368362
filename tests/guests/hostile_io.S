/* hostile_io: PVH guest. Hammers ports and MMIO that no device backs, prints
 * the values read (all bits set expected) and "survived", and powers off.
 * Expects 128 MiB of RAM: 0x3f000000 is then beyond RAM, below the MMIO hole. */
#include "guest.h"

#define PORT_LOOPS 2000
#define MMIO_LOOPS 500
#define MMIO_A 0xd0000000
#define MMIO_B 0xe0001000
#define MMIO_C 0x3f000000

/* Reads a byte from \port, counts it in %ebp unless 0xff, writes it back. */
.macro HAMMER_PORT_B port
  mov $\port, %dx
  in %dx, %al
  cmp $0xff, %al
  je 8f
  inc %ebp
8:
  out %al, %dx
.endm

.macro HAMMER_PORT_L port
  mov $\port, %dx
  in %dx, %eax
  cmp $0xffffffff, %eax
  je 8f
  inc %ebp
8:
  out %eax, %dx
.endm

.macro HAMMER_MMIO_L addr
  mov $\addr, %ebx
  mov (%ebx), %eax
  cmp $0xffffffff, %eax
  je 8f
  inc %ebp
8:
  movl $0x12345678, (%ebx)
.endm

.macro HAMMER_MMIO_B addr
  mov $\addr, %ebx
  movb (%ebx), %al
  cmp $0xff, %al
  je 8f
  inc %ebp
8:
  movb $0x5a, 1(%ebx)
.endm

/* Prints "<label>: <hex>\n" for a value in %eax with \digits digits. */
.macro SHOW label, digits
  mov %eax, shown
  PUTS "\label: "
  mov shown, %eax
  mov $\digits, %ebx
  call puthex
  PUTS "\n"
.endm

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  xor %ebp, %ebp
  mov $PORT_LOOPS, %edi
1:
  HAMMER_PORT_B 0x1234
  HAMMER_PORT_B 0x2f8
  HAMMER_PORT_L 0xcf8
  dec %edi
  jnz 1b
  mov $MMIO_LOOPS, %edi
2:
  HAMMER_MMIO_L MMIO_A
  HAMMER_MMIO_B MMIO_B
  HAMMER_MMIO_L MMIO_C
  dec %edi
  jnz 2b
  mov %ebp, unexpected

  mov $0x1234, %dx
  in %dx, %al
  movzbl %al, %eax
  SHOW "port 0x1234", 2
  mov $0x2f8, %dx
  in %dx, %al
  movzbl %al, %eax
  SHOW "port 0x2f8", 2
  mov $0xcf8, %dx
  in %dx, %eax
  SHOW "port 0xcf8", 8
  mov (MMIO_A), %eax
  SHOW "mmio 0xd0000000", 8
  movzbl (MMIO_B), %eax
  SHOW "mmio 0xe0001000", 2
  mov (MMIO_C), %eax
  SHOW "mmio 0x3f000000", 8
  PUTS "unexpected reads: "
  mov unexpected, %eax
  call putdec
  PUTS "\nsurvived\n"
  jmp poweroff

  .bss
  .balign 4
shown: .long 0
unexpected: .long 0

  .text
  GUEST_LIB
