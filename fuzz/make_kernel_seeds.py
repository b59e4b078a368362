#!/usr/bin/env python3
"""Writes the kernel_loader fuzz target's seeds: tiny but valid images of each kind the loader
takes (ELF with and without a PVH note, bzImage), so that fuzzing starts past the magic checks.
  fuzz/make_kernel_seeds.py fuzz/corpus/kernel_loader
"""
import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

def elf(pvh):
    code = b"\xf4" * 64  # hlt
    phnum = 2 if pvh else 1
    ehsize, phsize = 64, 56
    note = b""
    if pvh:
        note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", 0x100000)
    data_off = ehsize + phsize * phnum
    note_off = data_off + len(code)
    eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x100000, ehsize, 0, 0, ehsize, phsize,
                      phnum, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, data_off, 0x100000, 0x100000, len(code), 0x2000, 0x1000)
    if pvh:
        ph += struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
    return eh + ph + code + note

def bzimage():
    setup_sects = 4
    setup = bytearray((setup_sects + 1) * 512)
    kernel = b"\xf4" * 0x400
    setup[0x1f1] = setup_sects
    struct.pack_into("<I", setup, 0x1f4, len(kernel) // 16)       # syssize
    struct.pack_into("<H", setup, 0x1fe, 0xaa55)                  # boot_flag
    setup[0x200] = 0xeb                                           # jmp
    setup[0x201] = 0x6a                                           # header ends at 0x26c
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020f)                  # version 2.15
    struct.pack_into("<I", setup, 0x22c, 0x7fffffff)              # initrd_addr_max
    struct.pack_into("<H", setup, 0x236, 0x3)                     # xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
    struct.pack_into("<I", setup, 0x238, 2047)                    # cmdline_size
    struct.pack_into("<Q", setup, 0x258, 0x200000)                # pref_address (2 MiB)
    struct.pack_into("<I", setup, 0x260, 0x100000)                # init_size
    return bytes(setup) + kernel

for name, data in [("elf_linux64", elf(False)), ("elf_pvh", elf(True)), ("bzimage", bzimage())]:
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
