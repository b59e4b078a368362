/* A minimal virtio-mmio (version 2) split-queue driver for the tiny PVH test
 * guests (32-bit protected mode, paging off). Include after guest.h and
 * expand VIRTIO_LIB once, after GUEST_LIB.
 *
 * Guest memory used (free in Hearth's and QEMU microvm's layouts):
 *   0x30000 descriptor table, 0x31000 avail ring, 0x32000 used ring,
 *   0x33000 request header, 0x33100 status byte, 0x33200 GET_ID buffer,
 *   0x34000 write buffer (4 KiB), 0x35000 read buffer (4 KiB).
 *
 * The device: the Nth (cmdline "vdev=N", default 0) "virtio_mmio.device=
 * <size>@0x<base>:<irq>" entry of the PVH command line, else 0xd0000000.
 *
 * Routines (arguments in registers; they keep their state in memory):
 *   vio_locate                  sets vio_base from the cmdline; clobbers all but %esp
 *   vio_rd   %ecx = offset -> %eax                         clobbers nothing else
 *   vio_wr   %ecx = offset, %eax = value                   clobbers %edx
 *   vio_setup %eax = queue size -> %eax = status read back after DRIVER_OK
 *            (or after the first step that did not stick); clobbers all
 *   vio_req  %eax = type, %edx = sector, %edi = data, %ecx = data bytes (0: none)
 *            -> %eax = 0 answered / 1 no answer within vio_req_timeout (set to
 *            VIO_TIMEOUT by vio_locate); vio_used_len,
 *            vio_used_id, vio_isr and the byte at VQ_STATUS tell the answer
 *   vio_kick %eax = head, %ecx = timeout ticks -> like vio_req
 *   vio_wait %ecx = timeout ticks -> like vio_req (no kick)
 *   cmd_find %esi = needle -> %eax = pointer past its first match in the
 *            cmdline (or 0); clobbers %ecx %edx %edi
 *   parse_hex %esi -> %eax (skips "0x"; stops at a non-hex char), %esi past it
 *   phex     %eax = value, %ebx = digits: prints "0x" + hex; clobbers like puthex
 */
#ifndef HEARTH_TESTS_GUESTS_VIRTIO_MMIO_H_
#define HEARTH_TESTS_GUESTS_VIRTIO_MMIO_H_

#define VIO_DEFAULT_BASE 0xd0000000

#define VIO_MAGIC 0x000
#define VIO_VERSION 0x004
#define VIO_DEVICE_ID 0x008
#define VIO_VENDOR_ID 0x00c
#define VIO_DEVICE_FEATURES 0x010
#define VIO_DEVICE_FEATURES_SEL 0x014
#define VIO_DRIVER_FEATURES 0x020
#define VIO_DRIVER_FEATURES_SEL 0x024
#define VIO_QUEUE_SEL 0x030
#define VIO_QUEUE_NUM_MAX 0x034
#define VIO_QUEUE_NUM 0x038
#define VIO_QUEUE_READY 0x044
#define VIO_QUEUE_NOTIFY 0x050
#define VIO_INTERRUPT_STATUS 0x060
#define VIO_INTERRUPT_ACK 0x064
#define VIO_STATUS 0x070
#define VIO_QUEUE_DESC_LOW 0x080
#define VIO_QUEUE_DESC_HIGH 0x084
#define VIO_QUEUE_DRIVER_LOW 0x090
#define VIO_QUEUE_DRIVER_HIGH 0x094
#define VIO_QUEUE_DEVICE_LOW 0x0a0
#define VIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIO_CONFIG 0x100

#define VIO_MAGIC_VALUE 0x74726976
#define VIO_S_ACK 1
#define VIO_S_DRIVER 2
#define VIO_S_DRIVER_OK 4
#define VIO_S_FEATURES_OK 8
#define VIO_S_NEEDS_RESET 64

#define VQ_DESC 0x30000
#define VQ_AVAIL 0x31000
#define VQ_USED 0x32000
#define VQ_REQ 0x33000
#define VQ_STATUS 0x33100
#define VQ_ID 0x33200
#define VQ_WBUF 0x34000
#define VQ_RBUF 0x35000
/* vio_clear zeroes the rings and the request area, not the data buffers. */
#define VQ_AREA_DWORDS (0x4000 / 4)

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

/* Status byte value before a request: the device must overwrite it. */
#define VIO_STATUS_UNTOUCHED 0xee

/* How long a request may take (ticks of timer_elapsed): generous, because
 * the host may be slow; a request the device must drop waits VIO_SHORT. */
#define VIO_TIMEOUT (5 * TIMER_TICKS_PER_SECOND)
#define VIO_SHORT (TIMER_TICKS_PER_SECOND / 2)
/* How long to wait for InterruptStatus after the used index moved. */
#define VIO_ISR_WAIT (TIMER_TICKS_PER_SECOND / 10)

/* %eax = register at \off. */
.macro VRD off
  mov $\off, %ecx
  call vio_rd
.endm

/* Register at \off = \value (immediate). Clobbers %eax %ecx %edx. */
.macro VWR off, value
  mov $\value, %eax
  mov $\off, %ecx
  call vio_wr
.endm

/* Descriptor \index = {addr \addr (32-bit immediate or register), len \len, flags, next}. */
.macro VDESC index, addr, len, flags, next
  movl \addr, VQ_DESC + 16 * \index
  movl $0, VQ_DESC + 16 * \index + 4
  movl \len, VQ_DESC + 16 * \index + 8
  movw $\flags, VQ_DESC + 16 * \index + 12
  movw $\next, VQ_DESC + 16 * \index + 14
.endm

.macro VIRTIO_LIB
  .text
vio_rd:
  mov vio_base, %eax
  mov (%eax,%ecx), %eax
  ret

vio_wr:
  mov vio_base, %edx
  mov %eax, (%edx,%ecx)
  ret

phex:
  mov %eax, vio_tmp
  mov %ebx, vio_tmp2
  PUTS "0x"
  mov vio_tmp, %eax
  mov vio_tmp2, %ebx
  jmp puthex

/* %edi = haystack start (NUL-terminated) or 0. */
cmd_find:
  xor %eax, %eax
  test %edi, %edi
  jz 3f
1:
  xor %ecx, %ecx
2:
  mov (%esi,%ecx), %dl
  test %dl, %dl
  jz 4f
  cmp (%edi,%ecx), %dl
  jne 5f
  inc %ecx
  jmp 2b
5:
  cmpb $0, (%edi)
  je 3f
  inc %edi
  jmp 1b
4:
  lea (%edi,%ecx), %eax
3:
  ret

parse_hex:
  xor %eax, %eax
  cmpb $'0', (%esi)
  jne 1f
  cmpb $'x', 1(%esi)
  jne 1f
  add $2, %esi
1:
  movzbl (%esi), %edx
  sub $'0', %edx
  cmp $10, %edx
  jb 2f
  movzbl (%esi), %edx
  or $0x20, %edx
  sub $'a', %edx
  cmp $6, %edx
  jae 3f
  add $10, %edx
2:
  shl $4, %eax
  or %edx, %eax
  inc %esi
  jmp 1b
3:
  ret

vio_locate:
  movl $VIO_TIMEOUT, vio_req_timeout
  movl $VIO_DEFAULT_BASE, vio_base
  mov start_info, %ebx
  mov PVH_CMDLINE(%ebx), %edi
  mov %edi, vio_cmdline
  /* vdev=N: a single decimal digit. */
  movl $0, vio_index
  mov $vio_s_vdev, %esi
  call cmd_find
  test %eax, %eax
  jz 1f
  movzbl (%eax), %eax
  sub $'0', %eax
  cmp $10, %eax
  jae 1f
  mov %eax, vio_index
1:
  mov vio_cmdline, %edi
  mov vio_index, %ebx
2:
  mov $vio_s_dev, %esi
  push %ebx
  call cmd_find
  pop %ebx
  test %eax, %eax
  jz 5f
  mov %eax, %edi
  test %ebx, %ebx
  jz 3f
  dec %ebx
  jmp 2b
3:
  /* Skip "<size>@" and parse the base. */
  cmpb $0, (%edi)
  je 5f
  cmpb $'@', (%edi)
  je 4f
  inc %edi
  jmp 3b
4:
  lea 1(%edi), %esi
  call parse_hex
  mov %eax, vio_base
  movl $1, vio_from_cmdline
5:
  ret

/* Clears the rings, the request area and the driver's ring indexes. */
vio_clear:
  mov $VQ_DESC, %edi
  mov $VQ_AREA_DWORDS, %ecx
  xor %eax, %eax
  cld
  rep stosl
  movl $0, vq_used_seen
  ret

vio_setup:
  mov %eax, vq_size
  call vio_clear
  VWR VIO_STATUS, 0
  VWR VIO_STATUS, VIO_S_ACK
  VWR VIO_STATUS, VIO_S_ACK | VIO_S_DRIVER
  VWR VIO_DEVICE_FEATURES_SEL, 0
  VRD VIO_DEVICE_FEATURES
  mov %eax, vio_feat_lo
  VWR VIO_DEVICE_FEATURES_SEL, 1
  VRD VIO_DEVICE_FEATURES
  mov %eax, vio_feat_hi
  /* VIRTIO_F_VERSION_1 (bit 32) only. */
  VWR VIO_DRIVER_FEATURES_SEL, 1
  VWR VIO_DRIVER_FEATURES, 1
  VWR VIO_DRIVER_FEATURES_SEL, 0
  VWR VIO_DRIVER_FEATURES, 0
  VWR VIO_STATUS, VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK
  VRD VIO_STATUS
  test $VIO_S_FEATURES_OK, %eax
  jz 1f
  VWR VIO_QUEUE_SEL, 0
  VRD VIO_QUEUE_NUM_MAX
  mov %eax, vq_max
  mov vq_size, %eax
  mov $VIO_QUEUE_NUM, %ecx
  call vio_wr
  VWR VIO_QUEUE_DESC_LOW, VQ_DESC
  VWR VIO_QUEUE_DESC_HIGH, 0
  VWR VIO_QUEUE_DRIVER_LOW, VQ_AVAIL
  VWR VIO_QUEUE_DRIVER_HIGH, 0
  VWR VIO_QUEUE_DEVICE_LOW, VQ_USED
  VWR VIO_QUEUE_DEVICE_HIGH, 0
  VWR VIO_QUEUE_READY, 1
  VWR VIO_STATUS, VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK | VIO_S_DRIVER_OK
  VRD VIO_STATUS
1:
  ret

vio_req:
  mov %eax, VQ_REQ
  movl $0, VQ_REQ + 4
  mov %edx, VQ_REQ + 8
  movl $0, VQ_REQ + 12
  movb $VIO_STATUS_UNTOUCHED, VQ_STATUS
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  test %ecx, %ecx
  jz 2f
  movl %edi, VQ_DESC + 16
  movl $0, VQ_DESC + 16 + 4
  movl %ecx, VQ_DESC + 16 + 8
  mov $(VRING_DESC_F_NEXT | VRING_DESC_F_WRITE), %edx
  cmp $VIRTIO_BLK_T_OUT, %eax
  jne 1f
  mov $VRING_DESC_F_NEXT, %edx
1:
  movw %dx, VQ_DESC + 16 + 12
  movw $2, VQ_DESC + 16 + 14
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  jmp 3f
2:
  VDESC 1, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
3:
  xor %eax, %eax
  mov vio_req_timeout, %ecx
  /* Falls through to vio_kick. */

vio_kick:
  mov %ecx, vio_timeout
  /* avail.ring[avail.idx % size] = head; avail.idx++ */
  mov %eax, %ebx
  movzwl VQ_AVAIL + 2, %eax
  xor %edx, %edx
  divl vq_size
  movw %bx, VQ_AVAIL + 4(,%edx,2)
  incw VQ_AVAIL + 2
  VWR VIO_QUEUE_NOTIFY, 0
  mov vio_timeout, %ecx

vio_wait:
  mov %ecx, vio_timeout
  movl $0, vio_isr
  movl $0xffffffff, vio_used_len
  movl $0xffffffff, vio_used_id
  call timer_elapsed
  mov %eax, vio_t0
1:
  movzwl VQ_USED + 2, %eax
  cmp vq_used_seen, %ax
  jne 2f
  call timer_elapsed
  sub vio_t0, %eax
  cmp vio_timeout, %eax
  jb 1b
  mov $1, %eax
  ret
2:
  mov vq_used_seen, %eax
  xor %edx, %edx
  divl vq_size
  mov VQ_USED + 4(,%edx,8), %eax
  mov %eax, vio_used_id
  mov VQ_USED + 8(,%edx,8), %eax
  mov %eax, vio_used_len
  incw vq_used_seen
  /* The interrupt status may trail the used index by a moment. */
  call timer_elapsed
  mov %eax, vio_t0
3:
  VRD VIO_INTERRUPT_STATUS
  test %eax, %eax
  jnz 4f
  call timer_elapsed
  sub vio_t0, %eax
  cmp $VIO_ISR_WAIT, %eax
  jb 3b
  xor %eax, %eax
4:
  mov %eax, vio_isr
  mov $VIO_INTERRUPT_ACK, %ecx
  call vio_wr
  xor %eax, %eax
  ret

  .section .rodata
vio_s_vdev: .asciz "vdev="
vio_s_dev: .asciz "virtio_mmio.device="

  .bss
  .balign 4
start_info: .long 0
vio_cmdline: .long 0
vio_index: .long 0
vio_from_cmdline: .long 0
vio_base: .long 0
vio_feat_lo: .long 0
vio_feat_hi: .long 0
vq_size: .long 0
vq_max: .long 0
vq_used_seen: .long 0
vio_used_len: .long 0
vio_used_id: .long 0
vio_isr: .long 0
vio_t0: .long 0
vio_timeout: .long 0
vio_req_timeout: .long 0
vio_tmp: .long 0
vio_tmp2: .long 0
  .text
.endm

#endif /* HEARTH_TESTS_GUESTS_VIRTIO_MMIO_H_ */
