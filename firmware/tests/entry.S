/* firmware/tests/entry.S - PVH entry for the tiny test guests.
 *
 * Loaded as an ELF at 1 MiB by kvmbox (boot/) or `qemu-system-x86_64
 * -kernel`, which both find the PVH note below and enter _start in 32-bit
 * protected mode, paging off, with %ebx = hvm_start_info.  We spend as few
 * instructions as possible at CPL 0 (an emulating KVM such as kvm_pvm costs
 * microseconds per CPL-0 instruction): load our GDT, switch to long mode on
 * page tables prebuilt below as data (identity map of the first GiB with
 * user-accessible 2 MiB pages, plus the MMIO hole at 3 GiB), load a TSS
 * whose I/O bitmap allows every port, and iretq to CPL 3 with IOPL=3, so
 * that C code there can do port I/O (serial, marker port, i8042).  There is no IDT:
 * any exception is a triple fault, which is what the fault test wants.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MSR_EFER 0xc0000080
#define TSS_LIMIT (104 + 8192)		/* TSS + I/O bitmap for all 65536 ports */

	.section .note.Xen, "a"
	.balign 4
	.long 4				/* namesz */
	.long 4				/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long _start

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	mov %ebx, %edi			/* start_info -> first C argument */
	mov $boot_stack_top, %esp	/* PVH gives no stack */
	/* CPUID as the kernel sees it: at CPL 0 (at CPL 3 an emulating KVM
	 * such as kvm_pvm lets CPUID run natively on the host CPU). */
	mov $1, %eax
	xor %ecx, %ecx
	cpuid
	mov %ebx, cpl0_cpuid + 0
	mov %ecx, cpl0_cpuid + 4
	mov $0x40000000, %eax
	cpuid
	mov %eax, cpl0_cpuid + 8
	mov %ebx, cpl0_cpuid + 12
	mov %ecx, cpl0_cpuid + 16
	mov %edx, cpl0_cpuid + 20
	mov $0x40000010, %eax
	cpuid
	mov %eax, cpl0_cpuid + 24
	lgdt gdt_ptr
	mov $0x20, %eax			/* CR4.PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $0x100, %eax			/* EFER.LME */
	wrmsr
	mov $0x80000011, %eax		/* CR0.PG | ET | PE */
	mov %eax, %cr0
	ljmp $0x08, $long_mode

	.code64
long_mode:
	mov $0x10, %eax
	mov %eax, %ss
	/* Our own 64-bit TSS whose I/O bitmap allows every port: CPL-3 port
	 * I/O must not depend on IOPL alone (kvm_pvm ignores the guest's IOPL
	 * and checks the TSS bitmap). */
	mov $tss, %eax
	mov %ax, gdt_tss + 2		/* base 15:0 */
	shr $16, %eax
	mov %al, gdt_tss + 4		/* base 23:16 */
	mov %ah, gdt_tss + 7		/* base 31:24 */
	movw $104, tss + 102		/* I/O map base: right after the TSS */
	mov $0x28, %eax
	ltr %ax
	pushq $0x1b			/* SS: user data */
	pushq $user_stack_top		/* RSP */
	pushq $0x3002			/* RFLAGS: IOPL=3, IF=0 */
	pushq $0x23			/* CS: user code, 64-bit */
	pushq $user_entry		/* RIP */
	iretq

user_entry:				/* CPL 3 from here on */
	mov %edi, %edi			/* zero-extend start_info */
	call guest_main
	mov %eax, %edi
	call guest_exit
1:	jmp 1b

	.section .data
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10: kernel data */
	.quad 0x00cff2000000ffff	/* 0x18: user data (0x1b) */
	.quad 0x00affa000000ffff	/* 0x20: user code, 64-bit (0x23) */
gdt_tss:				/* 0x28: 64-bit TSS, base filled in */
	.quad 0x0000890000000000 + TSS_LIMIT
	.quad 0
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + 0x7		/* present, writable, user */
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x7
	.fill 2, 8, 0
	.quad pd_mmio + 0x7		/* 3..4 GiB: the MMIO hole (virtio-mmio) */
	.fill 508, 8, 0
pd:					/* 512 x 2 MiB: the first GiB, identity */
	.set i, 0
	.rept 512
	.quad (i << 21) | 0x87		/* present, writable, user, 2 MiB */
	.set i, i + 1
	.endr
pd_mmio:				/* 512 x 2 MiB from 3 GiB, uncached */
	.set i, 0
	.rept 512
	.quad (0xc0000000 + (i << 21)) | 0x9f	/* present, writable, user, PWT, PCD, 2 MiB */
	.set i, i + 1
	.endr

	.section .bss
	.balign 16
tss:					/* zero: every port allowed */
	.skip TSS_LIMIT + 1
	.balign 16
	.globl cpl0_cpuid
cpl0_cpuid:				/* struct cpl0_cpuid in guest.h */
	.skip 28
	.balign 16
user_stack:
	.skip 16384
user_stack_top:
boot_stack:
	.skip 64
boot_stack_top:
	.section .note.GNU-stack, "", @progbits
