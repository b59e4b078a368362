/* virtio_blk: PVH guest with its own minimal virtio-mmio block driver.
 * Finds the device (see virtio_mmio.h: the first virtio_mmio.device= entry of
 * the command line, "vdev=N" for the Nth, else 0xd0000000), checks and prints
 * magic/version/device id, negotiates VIRTIO_F_VERSION_1 only, sets up queue 0
 * with 8 entries, reads the capacity, writes a 4 KiB pattern to sector 8 (OUT),
 * reads it back (IN), compares, asks for the id (GET_ID), flushes, prints
 *   virtio-blk: capacity=<sectors> id=<id> roundtrip=ok
 * and powers off. Any failure prints "virtio-blk: FAIL <what>" and exits
 * through the panic port.
 *
 * With "vblk.ro" on the command line the disk must be read-only: the OUT must
 * answer IOERR (1) and the summary says "readonly=ok" instead of roundtrip.
 * Either way the guest prints "virtio-blk: sector 8 sum=0x<sum>", the 32-bit
 * sum of the little-endian dwords it read from sector 8.
 *
 * The pattern: dword k (k = 0..1023) of the 4 KiB is 0xc0de0000 + k. */
#include "guest.h"
#include "virtio_mmio.h"

#define TEST_SECTOR 8
#define PATTERN_BASE 0xc0de0000

/* Prints "virtio-blk: FAIL \what" and the answer of the last request. */
.macro FAIL what
  PUTS "virtio-blk: FAIL \what\n"
  jmp fail_exit
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
  mov $s_ro, %esi
  mov start_info, %ebx
  mov PVH_CMDLINE(%ebx), %edi
  call cmd_find
  mov %eax, read_only

  call vio_locate
  PUTS "virtio-blk: base="
  mov vio_base, %eax
  mov $8, %ebx
  call phex
  PUTS " magic="
  VRD VIO_MAGIC
  mov $8, %ebx
  call phex
  PUTS " version="
  VRD VIO_VERSION
  call putdec
  PUTS " device="
  VRD VIO_DEVICE_ID
  call putdec
  PUTS "\n"
  VRD VIO_MAGIC
  cmp $VIO_MAGIC_VALUE, %eax
  je 1f
  FAIL "bad magic"
1:
  VRD VIO_VERSION
  cmp $2, %eax
  je 1f
  FAIL "not virtio-mmio version 2"
1:
  VRD VIO_DEVICE_ID
  cmp $2, %eax
  je 1f
  FAIL "not a block device"
1:
  mov $8, %eax
  call vio_setup
  mov %eax, dev_status
  PUTS "virtio-blk: features="
  mov vio_feat_hi, %eax
  mov $8, %ebx
  call phex
  PUTS ":"
  mov vio_feat_lo, %eax
  mov $8, %ebx
  call puthex
  PUTS " queue_max="
  mov vq_max, %eax
  call putdec
  PUTS " status="
  mov dev_status, %eax
  mov $2, %ebx
  call phex
  PUTS "\n"
  cmpl $(VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK | VIO_S_DRIVER_OK), dev_status
  je 1f
  FAIL "device setup"
1:
  testl $1, vio_feat_hi
  jnz 1f
  FAIL "device does not offer VIRTIO_F_VERSION_1"
1:
  cmpl $8, vq_max
  jae 1f
  FAIL "QueueNumMax below 8"
1:
  VRD VIO_CONFIG
  mov %eax, cap_lo
  VRD VIO_CONFIG + 4
  mov %eax, cap_hi
  cmpl $0, cap_hi
  jne 1f
  cmpl $(TEST_SECTOR + 8), cap_lo
  jae 1f
  FAIL "capacity below 16 sectors"
1:
  /* The pattern to write, and a read buffer that cannot match it. */
  xor %ecx, %ecx
1:
  lea PATTERN_BASE(%ecx), %eax
  mov %eax, VQ_WBUF(,%ecx,4)
  movl $0x5a5a5a5a, VQ_RBUF(,%ecx,4)
  inc %ecx
  cmp $1024, %ecx
  jb 1b

  /* OUT sector 8. */
  mov $VIRTIO_BLK_T_OUT, %eax
  mov $TEST_SECTOR, %edx
  mov $VQ_WBUF, %edi
  mov $4096, %ecx
  call vio_req
  PUTS "virtio-blk: OUT"
  call show_answer
  cmpl $0, answered
  jne 1f
  FAIL "OUT not answered"
1:
  movzbl VQ_STATUS, %eax
  cmpl $0, read_only
  je 2f
  cmp $1, %eax
  je 3f
  FAIL "OUT to a read-only disk did not answer IOERR"
2:
  test %eax, %eax
  je 3f
  FAIL "OUT status"
3:
  /* IN sector 8. */
  mov $VIRTIO_BLK_T_IN, %eax
  mov $TEST_SECTOR, %edx
  mov $VQ_RBUF, %edi
  mov $4096, %ecx
  call vio_req
  PUTS "virtio-blk: IN"
  call show_answer
  cmpl $0, answered
  jne 1f
  FAIL "IN not answered"
1:
  cmpb $0, VQ_STATUS
  je 1f
  FAIL "IN status"
1:
  xor %ecx, %ecx
  xor %eax, %eax
1:
  add VQ_RBUF(,%ecx,4), %eax
  inc %ecx
  cmp $1024, %ecx
  jb 1b
  mov %eax, read_sum
  PUTS "virtio-blk: sector 8 sum="
  mov read_sum, %eax
  mov $8, %ebx
  call phex
  PUTS "\n"
  cmpl $0, read_only
  jne 3f
  xor %ecx, %ecx
1:
  mov VQ_RBUF(,%ecx,4), %eax
  cmp VQ_WBUF(,%ecx,4), %eax
  jne 2f
  inc %ecx
  cmp $1024, %ecx
  jb 1b
  jmp 3f
2:
  mov %ecx, mismatch
  PUTS "virtio-blk: FAIL data mismatch at dword "
  mov mismatch, %eax
  call putdec
  PUTS ": read "
  mov mismatch, %ecx
  mov VQ_RBUF(,%ecx,4), %eax
  mov $8, %ebx
  call phex
  PUTS "\n"
  jmp panic_exit
3:
  /* GET_ID into a 20-byte buffer followed by a NUL. */
  mov $VQ_ID, %edi
  mov $8, %ecx
  xor %eax, %eax
  rep stosl
  mov $VIRTIO_BLK_T_GET_ID, %eax
  xor %edx, %edx
  mov $VQ_ID, %edi
  mov $20, %ecx
  call vio_req
  PUTS "virtio-blk: GET_ID"
  call show_answer
  cmpl $0, answered
  jne 1f
  FAIL "GET_ID not answered"
1:
  cmpb $0, VQ_STATUS
  je 1f
  FAIL "GET_ID status"
1:
  /* FLUSH: header and status only. */
  mov $VIRTIO_BLK_T_FLUSH, %eax
  xor %edx, %edx
  xor %ecx, %ecx
  call vio_req
  PUTS "virtio-blk: FLUSH"
  call show_answer
  cmpl $0, answered
  jne 1f
  FAIL "FLUSH not answered"
1:
  cmpb $0, VQ_STATUS
  je 1f
  FAIL "FLUSH status"
1:
  PUTS "virtio-blk: capacity="
  cmpl $0, cap_hi
  je 1f
  mov cap_hi, %eax
  mov $8, %ebx
  call phex
  mov cap_lo, %eax
  mov $8, %ebx
  call puthex
  jmp 2f
1:
  mov cap_lo, %eax
  call putdec
2:
  PUTS " id="
  mov $VQ_ID, %esi
  call puts
  cmpl $0, read_only
  jne 1f
  PUTS " roundtrip=ok\n"
  jmp poweroff
1:
  PUTS " readonly=ok\n"
  jmp poweroff

/* After vio_req (%eax = 0 answered): prints
 * " answered=yes|no status=<byte> used_len=<n> isr=0x<n>\n" and sets `answered`. */
show_answer:
  xor $1, %eax
  mov %eax, answered
  PUTS " answered="
  cmpl $0, answered
  jne 1f
  PUTS "no"
  jmp 2f
1:
  PUTS "yes"
2:
  PUTS " status="
  movzbl VQ_STATUS, %eax
  call putdec
  PUTS " used_len="
  mov vio_used_len, %eax
  call putdec
  PUTS " isr="
  mov vio_isr, %eax
  mov $1, %ebx
  call phex
  PUTS "\n"
  ret

fail_exit:
  PUTS "virtio-blk: device status="
  VRD VIO_STATUS
  mov $2, %ebx
  call phex
  PUTS "\n"
  jmp panic_exit

  .section .rodata
s_ro: .asciz "vblk.ro"

  .bss
  .balign 4
read_only: .long 0
dev_status: .long 0
cap_lo: .long 0
cap_hi: .long 0
answered: .long 0
read_sum: .long 0
mismatch: .long 0

  .text
  GUEST_LIB
  VIRTIO_LIB
