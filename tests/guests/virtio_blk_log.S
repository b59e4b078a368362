/* virtio_blk_log: PVH guest that writes, flushes and reads back numbered 4 KiB blocks on a
 * virtio-blk disk and reports every step on the serial console, for the fault-injection tests
 * (tests/fault): kill the VMM mid-write, delete / truncate / fill the image under the guest.
 *
 * After setting up the device (as virtio_blk does, see virtio_mmio.h) it prints
 *   blk: capacity=<sectors> blocks=<capacity / 8>
 * then for i = 0, 1, 2, ... (for ever, or "blk.n=0x<hex>" iterations):
 *   OUT block i % blocks (sectors 8b .. 8b+7) with the pattern of i; FLUSH; IN the same block
 *   and compare; IN the disk's last 4 KiB (status only); and prints
 *     blk <i> w=<s> f=<s> r=<s> data=<ok|bad> last=<s>
 *   where <s> is the status byte the device wrote (0 OK, 1 IOERR, 2 UNSUPP) or "t" when it did
 *   not answer within 5 s. "w=0 f=0" means block i was written and flushed: durable.
 *   With "blk.mask=0x<hex>" a line is printed only when (i & mask) == 0 or something failed.
 * At the end it prints "blk: done" and powers off. A setup failure prints "blk: FAIL <what>"
 * and exits through the panic port.
 *
 * The pattern of i: dword k (k = 0..1023) of the block is 0x5a000000 + (i << 12) + k (mod 2^32).
 * The guest negotiates VIRTIO_F_VERSION_1 only; FLUSH is answered without VIRTIO_BLK_F_FLUSH
 * too (Hearth syncs the image for cache_type Writeback). */
#include "guest.h"
#include "virtio_mmio.h"

#define PATTERN_BASE 0x5a000000
/* status_of's value for a request the device did not answer. */
#define NO_ANSWER 0x100

.macro FAIL what
  PUTS "blk: FAIL \what\n"
  jmp panic_exit
.endm

/* Puts the value of "\needle" (hex) from the command line into \var (0 when absent). */
.macro CMD_HEX needle, var
  movl $0, \var
  mov $\needle, %esi
  mov start_info, %ebx
  mov PVH_CMDLINE(%ebx), %edi
  call cmd_find
  test %eax, %eax
  jz 9f
  mov %eax, %esi
  call parse_hex
  mov %eax, \var
9:
.endm

/* Issues request \type on `sector` with \bytes of data at \buf; the result (status_of) to \var. */
.macro REQ type, sector, buf, bytes, var
  mov $\type, %eax
  mov \sector, %edx
  mov $\buf, %edi
  mov $\bytes, %ecx
  call vio_req
  call status_of
  mov %eax, \var
.endm

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  mov %ebx, start_info
  call timer_start
  mov start_info, %ebx
  cmpl $PVH_START_MAGIC, (%ebx)
  je 1f
  FAIL "bad hvm_start_info magic"
1:
  CMD_HEX s_n, limit
  CMD_HEX s_mask, mask
  call vio_locate
  VRD VIO_MAGIC
  cmp $VIO_MAGIC_VALUE, %eax
  je 1f
  FAIL "bad magic"
1:
  VRD VIO_DEVICE_ID
  cmp $2, %eax
  je 1f
  FAIL "not a block device"
1:
  mov $8, %eax
  call vio_setup
  cmp $(VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK | VIO_S_DRIVER_OK), %eax
  je 1f
  FAIL "device setup"
1:
  VRD VIO_CONFIG
  mov %eax, cap
  VRD VIO_CONFIG + 4
  test %eax, %eax
  jz 1f
  movl $0xfffffff8, cap /* Larger than 2 TiB: the first 2 TiB will do. */
1:
  cmpl $16, cap
  jae 1f
  FAIL "capacity below 16 sectors"
1:
  mov cap, %eax
  shr $3, %eax
  mov %eax, blocks
  mov cap, %eax
  sub $8, %eax
  mov %eax, last_sector
  PUTS "blk: capacity="
  mov cap, %eax
  call putdec
  PUTS " blocks="
  mov blocks, %eax
  call putdec
  PUTS "\n"
  movl $0, iter

next_block:
  mov limit, %eax
  test %eax, %eax
  jz 1f
  cmp %eax, iter
  jae done
1:
  /* The pattern of i to write; a read buffer that cannot match it. */
  mov iter, %eax
  shl $12, %eax
  add $PATTERN_BASE, %eax
  xor %ecx, %ecx
1:
  mov %eax, VQ_WBUF(,%ecx,4)
  movl $0xa5a5a5a5, VQ_RBUF(,%ecx,4)
  inc %eax
  inc %ecx
  cmp $1024, %ecx
  jb 1b
  mov iter, %eax
  xor %edx, %edx
  divl blocks
  shl $3, %edx
  mov %edx, sector

  REQ VIRTIO_BLK_T_OUT, sector, VQ_WBUF, 4096, st_w
  REQ VIRTIO_BLK_T_FLUSH, $0, VQ_WBUF, 0, st_f
  REQ VIRTIO_BLK_T_IN, sector, VQ_RBUF, 4096, st_r
  movl $0, same
  cmpl $0, st_r
  jne 2f
  xor %ecx, %ecx
1:
  mov VQ_RBUF(,%ecx,4), %eax
  cmp VQ_WBUF(,%ecx,4), %eax
  jne 2f
  inc %ecx
  cmp $1024, %ecx
  jb 1b
  movl $1, same
2:
  REQ VIRTIO_BLK_T_IN, last_sector, VQ_RBUF, 4096, st_l

  mov iter, %eax
  and mask, %eax
  jz print
  mov st_w, %eax
  or st_f, %eax
  or st_r, %eax
  or st_l, %eax
  jnz print
  cmpl $0, same
  je print
  jmp advance
print:
  PUTS "blk "
  mov iter, %eax
  call putdec
  PUTS " w="
  mov st_w, %eax
  call put_status
  PUTS " f="
  mov st_f, %eax
  call put_status
  PUTS " r="
  mov st_r, %eax
  call put_status
  cmpl $0, same
  je 1f
  PUTS " data=ok last="
  jmp 2f
1:
  PUTS " data=bad last="
2:
  mov st_l, %eax
  call put_status
  PUTS "\n"
advance:
  incl iter
  jmp next_block

done:
  PUTS "blk: done\n"
  jmp poweroff

/* After vio_req (%eax = 0 answered): %eax = the status byte, or NO_ANSWER. */
status_of:
  test %eax, %eax
  jz 1f
  mov $NO_ANSWER, %eax
  ret
1:
  movzbl VQ_STATUS, %eax
  ret

/* Prints the status in %eax: decimal, or "t" for NO_ANSWER. */
put_status:
  cmp $NO_ANSWER, %eax
  jne 1f
  mov $'t', %al
  jmp putc
1:
  jmp putdec

  .section .rodata
s_n: .asciz "blk.n="
s_mask: .asciz "blk.mask="

  .bss
  .balign 4
limit: .long 0
mask: .long 0
cap: .long 0
blocks: .long 0
last_sector: .long 0
iter: .long 0
sector: .long 0
st_w: .long 0
st_f: .long 0
st_r: .long 0
st_l: .long 0
same: .long 0

  .text
  GUEST_LIB
  VIRTIO_LIB
