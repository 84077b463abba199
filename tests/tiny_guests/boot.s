# A tiny bootable disk of our own (a stand-in for an ops disk image): the firmware loads this
# sector at 0x7c00 in real mode; it prints a line on COM1 and writes EXIT to QEMU's
# isa-debug-exit port (0x501), then powers off through ACPI (0x604) or halts, as x86.s.
# Build: as --32 --defsym EXIT=N; ld -m elf_i386 -Ttext 0x7c00 --oformat binary
        .code16
        .text
        .globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov $msg, %si
1:      lodsb
        test %al, %al
        jz 3f
        mov %al, %ah
        mov $0x3fd, %dx
2:      inb %dx, %al
        test $0x20, %al
        jz 2b
        mov $0x3f8, %dx
        mov %ah, %al
        outb %al, %dx
        jmp 1b
3:      mov $EXIT, %al
        mov $0x501, %dx
        outb %al, %dx
        mov $0x2000, %ax
        mov $0x604, %dx
        outw %ax, %dx
4:      hlt
        jmp 4b
msg:    .asciz "TINY-DISK booted by the firmware\r\n"
        .org 510
        .byte 0x55, 0xaa                # boot signature
