// PVH entry for the freestanding x86 test guests: the Xen ELF note names _start, which the VMM enters
// in 32-bit protected mode (flat segments, paging off) with EBX -> hvm_start_info.
        .section .note.Xen, "a", @note
        .align 4
        .long 4, 4, 18          // namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long _start

        .text
        .code32
        .globl _start
_start:
        mov $stack_top, %esp
        push %ebx
        call guest_main
        // guest_main's return value is the exit status, through the debug exit port.
        mov $0x501, %dx
        out %al, %dx
1:      cli
        hlt
        jmp 1b

// Application processors start here in real mode (copied below 1 MiB by the SMP guest): each one
// counts itself in at 0x7ff0 and stores its initial APIC id (CPUID.1:EBX[31:24]) in the table at 0x7f00.
        .code16
        .globl ap_trampoline, ap_trampoline_end
ap_trampoline:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov $1, %eax
        cpuid
        shr $24, %ebx
        mov $1, %ax
        lock xadd %ax, 0x7ff0
        mov %ax, %si
        shl $2, %si
        mov %ebx, 0x7f00(%si)
2:      hlt
        jmp 2b
ap_trampoline_end:

        .bss
        .align 16
        .space 8192
stack_top:
