/* hello: PVH guest. Signals the boot timer, greets, prints the command line
 * and a summary of the memory map from hvm_start_info, and powers off.
 * Also the launch-floor benchmark guest: keep it short. */
#include "guest.h"

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  mov %ebx, start_info
  OUTB BOOT_TIMER_PORT, BOOT_TIMER_MAGIC
  PUTS "hello from tiny guest\n"
  mov start_info, %ebx
  cmpl $PVH_START_MAGIC, (%ebx)
  jne bad_magic

  PUTS "cmdline: "
  mov start_info, %ebx
  mov PVH_CMDLINE(%ebx), %esi
  call puts
  PUTS "\nmemmap: "
  mov start_info, %ebx
  mov PVH_MEMMAP_ENTRIES(%ebx), %eax
  call putdec
  PUTS " entries, ram_kib="

  /* Sum the sizes of the RAM (type 1) entries into %ebp:%edi. */
  mov start_info, %ebx
  mov PVH_MEMMAP(%ebx), %esi
  mov PVH_MEMMAP_ENTRIES(%ebx), %ecx
  xor %edi, %edi
  xor %ebp, %ebp
1:
  test %ecx, %ecx
  jz 3f
  cmpl $1, 16(%esi)
  jne 2f
  add 8(%esi), %edi
  adc 12(%esi), %ebp
2:
  add $24, %esi
  dec %ecx
  jmp 1b
3:
  shrd $10, %ebp, %edi
  mov %edi, %eax
  call putdec
  PUTS "\n"
  jmp poweroff

bad_magic:
  PUTS "bad hvm_start_info magic\n"
  jmp panic_exit

  .bss
  .balign 4
start_info: .long 0

  .text
  GUEST_LIB
