/* Shared definitions for Hearth's tiny test guests (GNU assembler, preprocessed).
 *
 * Every guest includes this file first and expands GUEST_LIB once at its end,
 * after selecting the code mode (.code32 for PVH guests, .code64 for guests
 * entered in long mode). The library routines use only 32-bit registers and no
 * push/pop, so the same source assembles in both modes.
 *
 * Calling convention of the library (all arguments in registers):
 *   putc     %al = byte                        clobbers %ah %ecx %edx
 *   puts     %esi = NUL-terminated string      clobbers %eax %ecx %edx %esi
 *   puthex   %eax = value, %ebx = digits 1..8  clobbers %eax %ebx %ecx %edx %edi
 *   putdec   %eax = unsigned value             clobbers %eax %ebx %ecx %edx %esi
 *   poweroff / panic_exit                      do not return
 *   timer_start                                LAPIC timer, free running; clobbers %edx
 *   timer_elapsed -> %eax = ticks since timer_start (~7.8 MHz); clobbers %edx
 *   (the timer routines need the LAPIC reachable: PVH guests, paging off)
 *
 * The machine interprets CPL-0 code about 1700x slower than native, so keep
 * every loop short and bounded.
 */
#ifndef HEARTH_TESTS_GUESTS_GUEST_H_
#define HEARTH_TESTS_GUESTS_GUEST_H_

#define COM1_DATA 0x3f8
#define COM1_LSR 0x3fd
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20
#define BOOT_TIMER_PORT 0x3f0
#define BOOT_TIMER_MAGIC 123
#define POWER_PORT 0x3f4
#define POWER_OFF 0
#define POWER_PANIC 1
#define I8042_COMMAND 0x64
#define I8042_RESET 0xfe

#define PVH_START_MAGIC 0x336ec578
#define PVH_CMDLINE 24
#define PVH_MEMMAP 40
#define PVH_MEMMAP_ENTRIES 48

#define ZP_E820_ENTRIES 0x1e8
#define ZP_HDRS 0x202
#define ZP_CMD_LINE_PTR 0x228

#define LAPIC_BASE 0xfee00000
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0
/* KVM's APIC bus runs at 1 GHz; divide by 128 gives 7.8125 MHz. */
#define TIMER_TICKS_PER_SECOND 7812500

/* Bounded polls of the UART's THR-empty bit before writing anyway. */
#define THR_POLL_LIMIT 64

/* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point, as Linux emits it. */
.macro PVH_NOTE entry
  .pushsection .note.Xen, "a", @note
  .balign 4
  .long 4f - 3f /* namesz */
  .long 6f - 5f /* descsz */
  .long 18      /* type: XEN_ELFNOTE_PHYS32_ENTRY */
3: .asciz "Xen"
4: .balign 4
5: .quad \entry
6: .balign 4
  .popsection
.endm

/* Prints a string literal: PUTS "text\n". Clobbers like puts. */
.macro PUTS text
  .pushsection .rodata
.Lputs_str\@: .asciz "\text"
  .popsection
  mov $.Lputs_str\@, %esi
  call puts
.endm

/* Writes an immediate byte to an immediate port. Clobbers %al %dx. */
.macro OUTB port, value
  mov $\value, %al
  mov $\port, %dx
  out %al, %dx
.endm

.macro GUEST_LIB
  .text
putc:
  mov %al, %ah
  mov $COM1_LSR, %dx
  mov $THR_POLL_LIMIT, %ecx
1:
  in %dx, %al
  test $LSR_THR_EMPTY, %al
  jnz 2f
  dec %ecx
  jnz 1b
2:
  mov %ah, %al
  mov $COM1_DATA, %dx
  out %al, %dx
  ret

puts:
1:
  mov (%esi), %al
  test %al, %al
  jz 2f
  call putc
  inc %esi
  jmp 1b
2:
  ret

puthex:
  mov %eax, %edi
1:
  lea -4(,%ebx,4), %ecx
  mov %edi, %eax
  shr %cl, %eax
  and $0xf, %eax
  cmp $10, %al
  jb 2f
  add $('a' - 10 - '0'), %al
2:
  add $'0', %al
  call putc
  dec %ebx
  jnz 1b
  ret

putdec:
  mov $guest_decbuf_end, %esi
  movb $0, (%esi)
  mov $10, %ebx
1:
  xor %edx, %edx
  div %ebx
  add $'0', %dl
  dec %esi
  mov %dl, (%esi)
  test %eax, %eax
  jnz 1b
  jmp puts

poweroff:
  mov $POWER_OFF, %al
  jmp 1f
panic_exit:
  mov $POWER_PANIC, %al
1:
  mov $POWER_PORT, %dx
  out %al, %dx
2:
  cli
  hlt
  jmp 2b

timer_start:
  mov $LAPIC_BASE, %edx
  movl $0x1ff, LAPIC_SVR(%edx)
  movl $0x10020, LAPIC_LVT_TIMER(%edx)   /* masked, one-shot */
  movl $0xa, LAPIC_TIMER_DIVIDE(%edx)    /* divide by 128 */
  movl $0xffffffff, LAPIC_TIMER_INIT(%edx)
  ret

timer_elapsed:
  mov $LAPIC_BASE, %edx
  mov LAPIC_TIMER_CURRENT(%edx), %edx
  mov $0xffffffff, %eax
  sub %edx, %eax
  ret

  .bss
  .balign 16
guest_decbuf: .skip 16
guest_decbuf_end: .skip 1
  .balign 16
guest_stack: .skip 4096
guest_stack_top:
  .text
.endm

#endif /* HEARTH_TESTS_GUESTS_GUEST_H_ */
