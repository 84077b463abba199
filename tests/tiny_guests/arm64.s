// A tiny aarch64 guest of our own for QEMU's `virt`: an arm64 Image (Linux
// Documentation/arch/arm64/booting.rst: 64-byte header, magic "ARM\x64" at 56) that prints the
// `bootargs` of the device tree's /chosen node (x0 = the DTB at entry) on the PL011 at
// 0x09000000 (QEMU hw/arm/virt.c memmap VIRT_UART), then powers off with PSCI SYSTEM_OFF
// (function 0x84000008, PSCI 1.1 section 5.1.9) through HVC, the conduit QEMU's virt offers a
// kernel started at EL1 (no EL2/EL3: virtualization=off, secure=off). PSCI carries no value:
// QEMU exits 0. Semihosting (SYS_EXIT) could carry one but needs -semihosting on QEMU's
// command line, and that lets the guest open host files as the monitor's user.
// Build: aarch64-linux-gnu-as; aarch64-linux-gnu-ld -Ttext 0 --oformat binary
        .text
        .globl _start
_start:
        b       entry                   // code0
        .long   0                       // code1
        .quad   0x80000                 // text_offset
        .quad   image_end - _start      // image_size
        .quad   0xa                     // flags: little endian, 4K pages, anywhere
        .quad   0, 0, 0                 // res2-res4
        .ascii  "ARM\x64"               // magic
        .long   0                       // res5
entry:
        mov     x19, x0                 // DTB
        adr     x1, prefix
        bl      puts
        ldr     w2, [x19, #8]           // off_dt_struct (big endian)
        rev     w2, w2
        add     x20, x19, x2            // x20: cursor in the structure block
        ldr     w2, [x19, #12]          // off_dt_strings
        rev     w2, w2
        add     x21, x19, x2
walk:   ldr     w2, [x20], #4
        rev     w2, w2
        cmp     w2, #1                  // FDT_BEGIN_NODE: skip the name, 4-aligned
        b.eq    skipname
        cmp     w2, #3                  // FDT_PROP
        b.eq    prop
        cmp     w2, #9                  // FDT_END
        b.eq    done
        b       walk                    // FDT_END_NODE, FDT_NOP
skipname:
        ldrb    w3, [x20], #1
        cbnz    w3, skipname
        add     x20, x20, #3
        and     x20, x20, #~3
        b       walk
prop:   ldr     w22, [x20], #4          // value length
        rev     w22, w22
        ldr     w3, [x20], #4           // name offset
        rev     w3, w3
        add     x3, x21, x3
        adr     x4, bootargs
cmp:    ldrb    w5, [x3], #1            // compare the name with "bootargs"
        ldrb    w6, [x4], #1
        cmp     w5, w6
        b.ne    next
        cbnz    w5, cmp
        mov     x1, x20                 // found: the value is a NUL-terminated string
        bl      puts
        b       done
next:   add     x20, x20, x22
        add     x20, x20, #3
        and     x20, x20, #~3
        b       walk
done:   adr     x1, suffix
        bl      puts
        movz    x0, #0x0008
        movk    x0, #0x8400, lsl #16    // PSCI SYSTEM_OFF
        hvc     #0
halt:   wfi
        b       halt

// Writes the NUL-terminated string at x1 to the PL011 (data register at 0, flags at 0x18).
puts:   mov     x2, #0x09000000
1:      ldrb    w3, [x1], #1
        cbz     w3, 3f
2:      ldr     w4, [x2, #0x18]
        tbnz    w4, #5, 2b              // TXFF: transmit FIFO full
        str     w3, [x2]
        b       1b
3:      ret

prefix:   .asciz "TINY-CMDLINE ["
suffix:   .asciz "]\r\n"
bootargs: .asciz "bootargs"
        .balign 8
image_end:
