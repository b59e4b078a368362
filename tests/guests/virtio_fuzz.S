/* virtio_fuzz: PVH guest. A hostile driver without a plan: for FUZZ_ROUNDS rounds
 * (xorshift32, fixed seed) it writes random values to random registers of the
 * first four virtio-mmio windows (0xd0000000 + k * 0x1000, attached or not,
 * config space included), reads random registers, fills the ring area with
 * random bytes, brings queue 0 up on those rings and kicks it, and resets the
 * device in the middle of all that. Then prints "fuzz: survived" and powers
 * off. The VMM must neither crash nor hang, and must stop cleanly. */
#include "guest.h"
#include "virtio_mmio.h"

#define FUZZ_ROUNDS 3000
#define RING_AREA VQ_DESC
#define RING_DWORDS (0x4000 / 4)

/* %ebx = xorshift32(%ebx); clobbers %eax. */
.macro NEXT
  mov %ebx, %eax
  shl $13, %eax
  xor %eax, %ebx
  mov %ebx, %eax
  shr $17, %eax
  xor %eax, %ebx
  mov %ebx, %eax
  shl $5, %eax
  xor %eax, %ebx
.endm

  PVH_NOTE _start
  .section .text.entry, "ax"
  .code32
  .globl _start
_start:
  mov $guest_stack_top, %esp
  mov $0x9e3779b9, %ebx          /* seed */
  xor %esi, %esi                 /* round */
round:
  NEXT
  /* %edi = window base: one of four. */
  mov %ebx, %edi
  shr $8, %edi
  and $3, %edi
  shl $12, %edi
  add $VIO_DEFAULT_BASE, %edi
  mov %ebx, %ecx
  and $7, %ecx
  cmp $4, %ecx
  jb rand_write
  je queue_up
  cmp $5, %ecx
  je kick
  cmp $6, %ecx
  je reset
  /* 7: read a random register (the value does not matter). */
  NEXT
  mov %ebx, %ecx
  and $0x1fc, %ecx
  mov (%edi,%ecx), %eax
  jmp next_round
rand_write:
  NEXT
  mov %ebx, %ecx
  and $0x1fc, %ecx               /* registers and config space */
  NEXT
  mov %ebx, (%edi,%ecx)
  /* Every 64th round also scribbles over the rings. */
  test $63, %esi
  jnz next_round
  xor %ecx, %ecx
1:
  NEXT
  mov %ebx, RING_AREA(,%ecx,4)
  inc %ecx
  cmp $RING_DWORDS, %ecx
  jb 1b
  jmp next_round
queue_up:
  /* A queue of random size on the random rings, then DRIVER_OK. */
  movl $0, VIO_STATUS(%edi)
  movl $(VIO_S_ACK | VIO_S_DRIVER), VIO_STATUS(%edi)
  movl $1, VIO_DRIVER_FEATURES_SEL(%edi)
  movl $1, VIO_DRIVER_FEATURES(%edi)   /* VIRTIO_F_VERSION_1 */
  movl $(VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK), VIO_STATUS(%edi)
  movl $0, VIO_QUEUE_SEL(%edi)
  NEXT
  mov %ebx, %eax
  and $0x1ff, %eax
  mov %eax, VIO_QUEUE_NUM(%edi)
  movl $VQ_DESC, VIO_QUEUE_DESC_LOW(%edi)
  movl $0, VIO_QUEUE_DESC_HIGH(%edi)
  movl $VQ_AVAIL, VIO_QUEUE_DRIVER_LOW(%edi)
  movl $0, VIO_QUEUE_DRIVER_HIGH(%edi)
  movl $VQ_USED, VIO_QUEUE_DEVICE_LOW(%edi)
  movl $0, VIO_QUEUE_DEVICE_HIGH(%edi)
  movl $1, VIO_QUEUE_READY(%edi)
  movl $(VIO_S_ACK | VIO_S_DRIVER | VIO_S_FEATURES_OK | VIO_S_DRIVER_OK), VIO_STATUS(%edi)
  /* fall through: kick it */
kick:
  NEXT
  mov %ebx, %eax
  and $3, %eax
  mov %eax, VIO_QUEUE_NOTIFY(%edi)
  /* Random available-ring index: the device may find any number of new heads. */
  NEXT
  movw %bx, VQ_AVAIL + 2
  movl $0, VIO_QUEUE_NOTIFY(%edi)
  mov VIO_INTERRUPT_STATUS(%edi), %eax
  mov %eax, VIO_INTERRUPT_ACK(%edi)
  jmp next_round
reset:
  /* Reset, possibly with requests in flight. */
  movl $0, VIO_STATUS(%edi)
next_round:
  inc %esi
  cmp $FUZZ_ROUNDS, %esi
  jb round
  PUTS "fuzz: survived\n"
  jmp poweroff

  .text
  GUEST_LIB
