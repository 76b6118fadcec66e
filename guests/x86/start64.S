// Linux boot protocol entry for the 64-bit test guest: no PVH note, so the VMM treats the ELF like a
// vmlinux and enters _start in 64-bit mode (identity-mapped first GiB, flat GDT) with RSI ->
// boot_params. The return value of guest_main goes to the debug exit port.
        .text
        .code64
        .globl _start
_start:
        lea stack_top(%rip), %rsp
        mov %rsi, %rdi
        call guest_main
        mov $0x501, %dx
        out %al, %dx
1:      cli
        hlt
        jmp 1b

        .globl isr_entry
isr_entry:
        push %rax
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %r8
        push %r9
        push %r10
        push %r11
        cld
        call isr_handler
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rax
        iretq

        .bss
        .align 16
        .space 8192
stack_top:
