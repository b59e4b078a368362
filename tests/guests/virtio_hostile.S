/* virtio_hostile: PVH guest that drives the virtio-mmio block device (found
 * like virtio_blk does, see virtio_mmio.h) as a hostile driver would, prints
 * one line per probe with what the device answered, and at the end resets the
 * device and does a normal OUT/IN round trip of a 4 KiB pattern (dword k is
 * 0xc0de0000 + k) at sector 16, which must succeed:
 *   hostile: survived, recovered=yes
 * Expects 128 MiB of RAM (the "straddle" probe ends 4 KiB past its end) and a
 * writable disk of at least 24 sectors. Every garbage request is an OUT to
 * sector 0 (or past the end of the disk), so a device that wrongly accepted
 * one would change the image outside sector 16.
 *
 * Probe lines:
 *   hostile: <probe> answered=yes|no used_len=<n> status_byte=0x<b> dev_status=0x<s> isr=0x<i>
 * (status_byte 0xee: the device did not write it; used_len 4294967295: no
 * used element), plus a few lines with register values. */
#include "guest.h"
#include "virtio_mmio.h"

#define RAM_END 0x8000000
#define ROUNDTRIP_SECTOR 16
#define PATTERN_BASE 0xc0de0000
/* How long a probe waits for an answer (2 s). */
#define PROBE_TIMEOUT (2 * TIMER_TICKS_PER_SECOND)
#define S_ALL (VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK | VIO_S_DRIVER_OK)

/* Request header for head 0: type, sector; status byte = untouched. */
.macro HDR type, sector
  movl $\type, VQ_REQ
  movl $0, VQ_REQ + 4
  movl $\sector, VQ_REQ + 8
  movl $0, VQ_REQ + 12
  movb $VIO_STATUS_UNTOUCHED, VQ_STATUS
.endm

/* Kicks head \head, waits \timeout and prints the probe line for \label.
 * When the device did not answer and \recover is 1, resets and sets it up
 * again, so that every probe meets a working device. */
.macro PROBE label, head=0, timeout=PROBE_TIMEOUT, recover=1
  mov $\head, %eax
  mov $\timeout, %ecx
  call vio_kick
  mov %eax, no_answer
  PUTS "hostile: \label"
  call show_probe
  .if \recover
  call recover
  .endif
.endm

/* Prints "\label=0x<value>" for %eax with \digits digits. */
.macro SHOWV label, digits
  mov %eax, shown
  PUTS "\label=0x"
  mov shown, %eax
  mov $\digits, %ebx
  call puthex
.endm

/* (Re)initialises the device with an 8-entry queue; stops unless it works. */
.macro SETUP8 what
  mov $8, %eax
  call vio_setup
  cmp $S_ALL, %eax
  je 9f
  SHOWV "hostile: FAIL setup \what status", 2
  PUTS "\n"
  jmp panic_exit
9:
.endm

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  mov %ebx, start_info
  call timer_start
  call vio_locate
  VRD VIO_MAGIC
  cmp $VIO_MAGIC_VALUE, %eax
  jne 1f
  VRD VIO_DEVICE_ID
  cmp $2, %eax
  je 2f
1:
  PUTS "hostile: FAIL no virtio-blk device\n"
  jmp panic_exit
2:
  PUTS "hostile: base="
  mov vio_base, %eax
  mov $8, %ebx
  call phex
  PUTS "\n"
  /* The garbage OUT requests carry this pattern too. */
  xor %ecx, %ecx
1:
  lea PATTERN_BASE(%ecx), %eax
  mov %eax, VQ_WBUF(,%ecx,4)
  inc %ecx
  cmp $1024, %ecx
  jb 1b

  /* ---- status machine ------------------------------------------------ */
  call vio_clear
  VWR VIO_STATUS, 0
  VWR VIO_STATUS, VIO_S_ACK
  VWR VIO_STATUS, VIO_S_ACK | VIO_S_DRIVER
  VWR VIO_STATUS, VIO_S_ACK | VIO_S_DRIVER | VIO_S_DRIVER_OK
  VRD VIO_STATUS
  SHOWV "hostile: driver_ok before features_ok status", 2
  PUTS "\n"
  /* FEATURES_OK without VIRTIO_F_VERSION_1 must not stick. */
  VWR VIO_DRIVER_FEATURES_SEL, 1
  VWR VIO_DRIVER_FEATURES, 0
  VWR VIO_STATUS, VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK
  VRD VIO_STATUS
  SHOWV "hostile: features_ok without version_1 status", 2
  PUTS "\n"
  /* Skipping ACK and DRIVER after a reset. */
  VWR VIO_STATUS, 0
  VWR VIO_STATUS, VIO_S_FEATURES_OK
  VRD VIO_STATUS
  SHOWV "hostile: features_ok from reset status", 2
  PUTS "\n"

  /* ---- a queue size that is not a power of two ----------------------- */
  mov $6, %eax
  call vio_setup
  SHOWV "hostile: queue size 6 status", 2
  PUTS "\n"
  movl $VIO_SHORT, vio_req_timeout
  HDR VIRTIO_BLK_T_OUT, 0
  mov $VIRTIO_BLK_T_OUT, %eax
  xor %edx, %edx
  mov $VQ_WBUF, %edi
  mov $4096, %ecx
  call vio_req
  mov %eax, no_answer
  PUTS "hostile: request on size 6"
  call show_probe
  movl $VIO_TIMEOUT, vio_req_timeout

  /* ---- a good setup, then narrow and late register accesses ----------- */
  SETUP8 "first"
  mov vio_base, %ebx
  movzbl VIO_MAGIC(%ebx), %eax
  SHOWV "hostile: narrow magic8", 2
  mov vio_base, %ebx
  movzwl VIO_STATUS(%ebx), %eax
  SHOWV " status16", 4
  mov vio_base, %ebx
  movzbl VIO_CONFIG(%ebx), %eax
  SHOWV " config8", 2
  /* 1- and 2-byte writes of 0 to Status would reset the device if taken. */
  mov vio_base, %ebx
  movb $0, VIO_STATUS(%ebx)
  movw $0, VIO_STATUS(%ebx)
  movw $0, VIO_QUEUE_NOTIFY(%ebx)
  movb $1, VIO_QUEUE_SEL(%ebx)
  VRD VIO_STATUS
  SHOWV " status", 2
  PUTS "\n"
  VRD VIO_CONFIG
  SHOWV "hostile: capacity", 8
  mov shown, %eax
  mov %eax, capacity
  PUTS "\n"
  /* A queue that does not exist, and a notify for it. */
  VWR VIO_QUEUE_SEL, 7
  VRD VIO_QUEUE_NUM_MAX
  SHOWV "hostile: queue 7 num_max", 4
  VWR VIO_QUEUE_NOTIFY, 7
  VWR VIO_QUEUE_SEL, 0
  VRD VIO_QUEUE_READY
  SHOWV " queue 0 ready", 1
  PUTS "\n"
  /* Queue registers after DRIVER_OK must be ignored: the rings stay. */
  VWR VIO_QUEUE_DESC_LOW, 0x7000
  VWR VIO_QUEUE_DRIVER_LOW, 0x7800
  VWR VIO_QUEUE_DEVICE_LOW, 0x8000
  VWR VIO_QUEUE_NUM, 4
  VWR VIO_QUEUE_READY, 0
  /* So must a late feature write. */
  VWR VIO_DRIVER_FEATURES_SEL, 0
  VWR VIO_DRIVER_FEATURES, 0xffffffff
  mov $VIRTIO_BLK_T_IN, %eax
  xor %edx, %edx
  mov $VQ_RBUF, %edi
  mov $4096, %ecx
  call vio_req
  mov %eax, no_answer
  PUTS "hostile: queue regs after driver_ok read"
  call show_probe

  /* ---- malformed chains: each is returned, the device goes on --------- */
  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 0
  PROBE "loop"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_RBUF, $512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1
  PROBE "loop 1-2-1"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $0xf0000000, $4096, VRING_DESC_F_NEXT, 2
  movl $0x7ff, VQ_DESC + 16 + 4
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "beyond ram"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $(RAM_END - 0x1000), $0x2000, VRING_DESC_F_NEXT, 2
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "straddle ram end"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $0xfffff000, $0x2000, VRING_DESC_F_NEXT, 2
  movl $0xffffffff, VQ_DESC + 16 + 4
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "overflow"

  HDR VIRTIO_BLK_T_IN, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_RBUF, $4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  movl $0xf0000000, VQ_DESC + 32
  movl $0x7ff, VQ_DESC + 32 + 4
  PROBE "status beyond ram"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 200
  PROBE "next out of range"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_STATUS, $1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_REQ, $16, 0, 0
  PROBE "readable after writable"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_DESC + 0x100, $48, 4, 0
  VDESC 16, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 17, $VQ_WBUF, $512, VRING_DESC_F_NEXT, 2
  VDESC 18, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "indirect not negotiated"

  /* Well-formed chains with bad requests: answered with a status byte. */
  HDR 99, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "unknown type"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_WBUF, $100, VRING_DESC_F_NEXT, 2
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "odd length"

  HDR VIRTIO_BLK_T_OUT, 0
  mov capacity, %eax
  sub $4, %eax
  mov %eax, VQ_REQ + 8
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_WBUF, $4096, VRING_DESC_F_NEXT, 2
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "past end of disk"

  HDR VIRTIO_BLK_T_OUT, 0
  movl $0xffffffff, VQ_REQ + 8
  movl $0xffffffff, VQ_REQ + 12
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_WBUF, $4096, VRING_DESC_F_NEXT, 2
  VDESC 2, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "sector overflow"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $8, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "short header"

  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_WBUF, $4096, 0, 0
  PROBE "no status byte"

  /* The device still works without a reset. */
  mov $VIRTIO_BLK_T_IN, %eax
  xor %edx, %edx
  mov $VQ_RBUF, %edi
  mov $4096, %ecx
  call vio_req
  mov %eax, no_answer
  PUTS "hostile: read after bad chains"
  call show_probe

  /* ---- broken rings: the device must stop until reset ----------------- */
  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  PROBE "head out of range", 200, VIO_SHORT, 0
  movl $VIO_SHORT, vio_req_timeout
  mov $VIRTIO_BLK_T_IN, %eax
  xor %edx, %edx
  mov $VQ_RBUF, %edi
  mov $4096, %ecx
  call vio_req
  mov %eax, no_answer
  PUTS "hostile: read while broken"
  call show_probe
  movl $VIO_TIMEOUT, vio_req_timeout
  VWR VIO_STATUS, 0
  VRD VIO_STATUS
  SHOWV "hostile: reset status", 2
  VRD VIO_INTERRUPT_STATUS
  SHOWV " isr", 1
  PUTS "\n"

  SETUP8 "after head out of range"
  HDR VIRTIO_BLK_T_OUT, 0
  VDESC 0, $VQ_REQ, $16, VRING_DESC_F_NEXT, 1
  VDESC 1, $VQ_STATUS, $1, VRING_DESC_F_WRITE, 0
  movw $0, VQ_AVAIL + 4
  addw $1000, VQ_AVAIL + 2
  VWR VIO_QUEUE_NOTIFY, 0
  mov $VIO_SHORT, %ecx
  call vio_wait
  mov %eax, no_answer
  PUTS "hostile: avail idx +1000"
  call show_probe
  VWR VIO_STATUS, 0

  /* ---- recovery: a normal round trip after a reset -------------------- */
  SETUP8 "for the round trip"
  xor %ecx, %ecx
1:
  lea PATTERN_BASE(%ecx), %eax
  mov %eax, VQ_WBUF(,%ecx,4)
  movl $0x5a5a5a5a, VQ_RBUF(,%ecx,4)
  inc %ecx
  cmp $1024, %ecx
  jb 1b
  mov $VIRTIO_BLK_T_OUT, %eax
  mov $ROUNDTRIP_SECTOR, %edx
  mov $VQ_WBUF, %edi
  mov $4096, %ecx
  call vio_req
  mov %eax, no_answer
  PUTS "hostile: recovery write"
  call show_probe
  cmpl $0, no_answer
  jne not_recovered
  cmpb $0, VQ_STATUS
  jne not_recovered
  mov $VIRTIO_BLK_T_IN, %eax
  mov $ROUNDTRIP_SECTOR, %edx
  mov $VQ_RBUF, %edi
  mov $4096, %ecx
  call vio_req
  mov %eax, no_answer
  PUTS "hostile: recovery read"
  call show_probe
  cmpl $0, no_answer
  jne not_recovered
  cmpb $0, VQ_STATUS
  jne not_recovered
  xor %ecx, %ecx
1:
  mov VQ_RBUF(,%ecx,4), %eax
  cmp VQ_WBUF(,%ecx,4), %eax
  jne not_recovered
  inc %ecx
  cmp $1024, %ecx
  jb 1b
  PUTS "hostile: survived, recovered=yes\n"
  jmp poweroff
not_recovered:
  PUTS "hostile: survived, recovered=no\n"
  jmp panic_exit

/* After a probe the device did not answer: reset and set up again. */
recover:
  cmpl $0, no_answer
  je 1f
  SETUP8 "after an unanswered probe"
1:
  ret

/* Prints the rest of a probe line from no_answer, the last used element, the
 * status byte, the device status and the interrupt status (read, not acked). */
show_probe:
  PUTS " answered="
  cmpl $0, no_answer
  je 1f
  PUTS "no"
  jmp 2f
1:
  PUTS "yes"
2:
  PUTS " used_len="
  mov vio_used_len, %eax
  call putdec
  movzbl VQ_STATUS, %eax
  SHOWV " status_byte", 2
  VRD VIO_STATUS
  SHOWV " dev_status", 2
  VRD VIO_INTERRUPT_STATUS
  or vio_isr, %eax
  SHOWV " isr", 1
  PUTS "\n"
  ret

  .bss
  .balign 4
shown: .long 0
no_answer: .long 0
capacity: .long 0

  .text
  GUEST_LIB
  VIRTIO_LIB
