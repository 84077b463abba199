# A tiny x86 guest of our own: prints its command line on COM1 and writes EXIT to QEMU's
# isa-debug-exit port (0x501, QEMU's default; QEMU then exits with (EXIT << 1) | 1). Without
# that device it powers off through ACPI (PM1a control at 0x604, where SeaBIOS puts the PIIX4
# and ICH9 PM block on pc and q35: SLP_EN | SLP_TYP 0, QEMU's _S5), then halts.
#
# Entered in 32-bit protected mode, paging off, either by QEMU's multiboot loader (pc, q35:
# eax = 0x2BADB002, ebx = the multiboot information, flags bit 2 = cmdline at offset 16;
# Multiboot 0.6.96 section 3.3) or through the PVH entry note (microvm: ebx = hvm_start_info,
# cmdline_paddr at offset 24; Xen docs/misc/pvh.pandoc, start_info.h).
# Build: as --32 --defsym PVH=0|1 --defsym EXIT=N; ld -m elf_i386 -T x86.ld
        .code32
        .section .multiboot, "a"
        .if PVH == 0
        .align 4
        .long 0x1BADB002                # multiboot magic
        .long 0                         # flags: nothing asked of the loader
        .long -0x1BADB002               # checksum: magic + flags + checksum == 0
        .endif

        .section .note.pvh, "a", @note
        .if PVH == 1
        .align 4
        .long 4                         # name size ("Xen\0")
        .long 4                         # descriptor size
        .long 18                        # XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long _start
        .endif

        .text
        .globl _start
_start:
        mov $stack_top, %esp
        .if PVH == 1
        mov 24(%ebx), %esi              # hvm_start_info.cmdline_paddr (low half)
        .else
        xor %esi, %esi
        testl $4, (%ebx)                # multiboot_info.flags: cmdline valid
        jz 1f
        mov 16(%ebx), %esi              # multiboot_info.cmdline
1:
        .endif
        mov $prefix, %edi
        call puts_edi
        test %esi, %esi
        jz 2f
        mov %esi, %edi
        call puts_edi
2:      mov $suffix, %edi
        call puts_edi
        mov $EXIT, %al
        mov $0x501, %dx
        outb %al, %dx                   # QEMU exits here when the device is attached
        mov $0x2000, %ax
        mov $0x604, %dx
        outw %ax, %dx                   # ACPI S5
3:      cli
        hlt
        jmp 3b

# Writes the NUL-terminated string at %edi to COM1 (8250 at 0x3f8).
puts_edi:
        movb (%edi), %al
        test %al, %al
        jz 5f
        mov %al, %ah
        mov $0x3fd, %dx                 # line status register
4:      inb %dx, %al
        test $0x20, %al                 # transmit holding register empty
        jz 4b
        mov $0x3f8, %dx
        mov %ah, %al
        outb %al, %dx
        inc %edi
        jmp puts_edi
5:      ret

        .data
prefix: .asciz "TINY-CMDLINE ["
suffix: .asciz "]\r\n"
        .bss
        .align 16
        .space 4096
stack_top:
