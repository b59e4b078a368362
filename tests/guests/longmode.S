/* longmode: ELF64 guest without a PVH note, entered by the Linux 64-bit boot
 * protocol (long mode, %rsi = zero page). Checks EFER.LMA, prints
 * "long mode ok", the zero page's command line and e820 entry count. */
#include "guest.h"

#define MSR_EFER 0xc0000080
#define EFER_LMA (1 << 10)

  .section .text.entry, "ax"
  .code64
  .globl _start
_start:
  mov $guest_stack_top, %esp
  mov %esi, zero_page
  mov $MSR_EFER, %ecx
  rdmsr
  test $EFER_LMA, %eax
  jnz 1f
  PUTS "EFER.LMA clear\n"
  jmp panic_exit
1:
  PUTS "long mode ok\n"
  mov zero_page, %ebx
  cmpl $0x53726448, ZP_HDRS(%ebx) /* "HdrS" */
  je 2f
  PUTS "zero page without HdrS\n"
2:
  PUTS "cmdline: "
  mov zero_page, %ebx
  mov ZP_CMD_LINE_PTR(%ebx), %esi
  call puts
  PUTS "\ne820: "
  mov zero_page, %ebx
  movzbl ZP_E820_ENTRIES(%ebx), %eax
  call putdec
  PUTS " entries\n"
  jmp poweroff

  .bss
  .balign 4
zero_page: .long 0

  .text
  GUEST_LIB
