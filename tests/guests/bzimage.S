/* bzimage: a handcrafted bzImage (boot protocol 2.15, XLF_KERNEL_64) whose
 * 64-bit entry (load address + 0x200) prints "bzimage ok" and the command
 * line from the zero page, and powers off. Linked with bzimage.ld. */
#include "guest.h"

#define XLF_KERNEL_64 (1 << 0)
#define LOADED_HIGH (1 << 0)

  .section .setup, "a"
  .code16
  /* Boot sector: not executed by Hearth. */
  cli
  hlt
  .org 0x1f1
setup_sects:          .byte SETUP_SECTS
root_flags:           .word 0
syssize:              .long _syssize
ram_size:             .word 0
vid_mode:             .word 0xffff
root_dev:             .word 0
boot_flag:            .word 0xaa55
  /* 0x200: the setup entry (jump over the header). */
  .byte 0xeb, setup_entry - 1f
1:
  .ascii "HdrS"                 /* 0x202 header */
  .word 0x020f                  /* 0x206 version 2.15 */
  .long 0                       /* 0x208 realmode_swtch */
  .word 0                       /* 0x20c start_sys_seg */
  .word version_string - 0x200  /* 0x20e kernel_version */
  .byte 0                       /* 0x210 type_of_loader */
  .byte LOADED_HIGH             /* 0x211 loadflags */
  .word 0                       /* 0x212 setup_move_size */
  .long 0x100000                /* 0x214 code32_start */
  .long 0                       /* 0x218 ramdisk_image */
  .long 0                       /* 0x21c ramdisk_size */
  .long 0                       /* 0x220 bootsect_kludge */
  .word 0                       /* 0x224 heap_end_ptr */
  .byte 0                       /* 0x226 ext_loader_ver */
  .byte 0                       /* 0x227 ext_loader_type */
  .long 0                       /* 0x228 cmd_line_ptr */
  .long 0x7fffffff              /* 0x22c initrd_addr_max */
  .long 0x200000                /* 0x230 kernel_alignment */
  .byte 0                       /* 0x234 relocatable_kernel */
  .byte 0                       /* 0x235 min_alignment */
  .word XLF_KERNEL_64           /* 0x236 xloadflags */
  .long 2048                    /* 0x238 cmdline_size */
  .long 0                       /* 0x23c hardware_subarch */
  .quad 0                       /* 0x240 hardware_subarch_data */
  .long 0                       /* 0x248 payload_offset */
  .long 0                       /* 0x24c payload_length */
  .quad 0                       /* 0x250 setup_data */
  .quad 0x100000                /* 0x258 pref_address */
  .long _init_size              /* 0x260 init_size */
  .long 0                       /* 0x264 handover_offset */
  .long 0                       /* 0x268 kernel_info_offset */
setup_entry:
  cli
  hlt
version_string:
  .asciz "hearth-test-bzimage"

  .section .kernel.head, "ax"
  .code32
startup_32:                     /* load address + 0: not used by Hearth */
  ud2
  .org 0x200
  .code64
  .globl startup_64
startup_64:                     /* load address + 0x200 */
  mov $guest_stack_top, %esp
  mov %esi, zero_page
  PUTS "bzimage ok\n"
  mov zero_page, %ebx
  cmpw $0x020f, 0x206(%ebx)
  je 1f
  PUTS "zero page lacks the setup header\n"
1:
  PUTS "cmdline: "
  mov zero_page, %ebx
  mov ZP_CMD_LINE_PTR(%ebx), %esi
  call puts
  PUTS "\n"
  jmp poweroff

  .bss
  .balign 4
zero_page: .long 0

  .text
  GUEST_LIB
