/* tests/unit/test_boot_kvm.c - the entry state boot_load() describes really
 * runs on /dev/kvm: tiny guests (an ELF entered in long mode, the same with a
 * PVH note entered in 32-bit mode, a bzImage at its 64-bit entry) read the
 * zero page or start info through the registers, GDT and page tables the
 * loader built, and report what they read on port 0xe9.  Skipped when
 * /dev/kvm is not usable.  The register set-up here is the minimum the
 * contract in boot/boot.h asks of vmm/. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_boot_images.h"

#define DEBUG_PORT 0xe9
#define MAX_OUT 8

/* What one tiny-guest run produced. */
struct run_result {
	uint32_t out[MAX_OUT];
	unsigned nout;
	int halted;
};

static void on_alarm(int sig)
{
	(void)sig;	/* only interrupts KVM_RUN */
}

/* A kvm_segment from one of the loader's GDT descriptors. */
static void segment(struct kvm_segment *s, uint64_t d, uint16_t sel)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = (d >> 40) & 0xf;
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
}

static void set_entry_state(int cpu, const struct boot_entry *e, struct tram *t)
{
	struct kvm_sregs s;
	const uint64_t *gdt = gpa(t, e->gdt_base, e->gdt_limit + 1);
	struct kvm_regs r = { .rip = e->rip, .rsp = e->rsp, .rsi = e->rsi, .rbx = e->rbx,
			      .rflags = 2 };

	assert_int_equal(ioctl(cpu, KVM_GET_SREGS, &s), 0);
	segment(&s.cs, gdt[e->code_sel / 8], e->code_sel);
	segment(&s.ds, gdt[e->data_sel / 8], e->data_sel);
	s.es = s.fs = s.gs = s.ss = s.ds;
	segment(&s.tr, gdt[e->tss_sel / 8], e->tss_sel);
	s.gdt.base = e->gdt_base;
	s.gdt.limit = e->gdt_limit;
	if (e->mode == BOOT_MODE_LONG64) {
		s.cr0 = 0x80000011;
		s.cr3 = e->cr3;
		s.cr4 = 0x20;
		s.efer = 0x500;
	} else {
		s.cr0 = 0x11;
		s.cr3 = 0;
		s.cr4 = 0;
		s.efer = 0;
	}
	assert_int_equal(ioctl(cpu, KVM_SET_SREGS, &s), 0);
	assert_int_equal(ioctl(cpu, KVM_SET_REGS, &r), 0);
}

/* Run the loaded guest until hlt, an error, or 20 s. */
static int run_guest(struct tram *t, const struct boot_entry *e, struct run_result *res)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, cpu, rc = -1;
	struct kvm_run *run;
	long msz;

	memset(res, 0, sizeof(*res));
	if (kvm < 0)
		return -1;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	assert_int_equal(ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL), 0);
	struct kvm_userspace_memory_region mr = { .slot = 0, .memory_size = t->size,
						  .userspace_addr = (uint64_t)(uintptr_t)t->host };
	assert_int_equal(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr), 0);
	cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(cpu >= 0);
	msz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, msz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	assert_true(run != MAP_FAILED);
	set_entry_state(cpu, e, t);

	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	alarm(20);
	for (;;) {
		if (ioctl(cpu, KVM_RUN, 0) < 0) {
			print_message("# KVM_RUN: %s\n", strerror(errno));
			break;
		}
		if (run->exit_reason == KVM_EXIT_HLT) {
			res->halted = 1;
			rc = 0;
			break;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == DEBUG_PORT &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 && res->nout < MAX_OUT) {
			memcpy(&res->out[res->nout++], (uint8_t *)run + run->io.data_offset, 4);
			continue;
		}
		print_message("# unexpected exit %u\n", run->exit_reason);
		break;
	}
	alarm(0);
	munmap(run, msz);
	close(cpu);
	close(vm);
	close(kvm);
	return rc;
}

static int kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* 64-bit: out(zero_page.hdr.header); then the command line's first 4 bytes
 * through cmd_line_ptr, bounced off the stack (push/pop) on the way. */
static const uint8_t code64[] = {
	0x8b, 0x86, 0x02, 0x02, 0x00, 0x00,	/* mov eax, [rsi+0x202] */
	0x66, 0xba, 0xe9, 0x00,			/* mov dx, 0xe9 */
	0xef,					/* out dx, eax */
	0x8b, 0x8e, 0x28, 0x02, 0x00, 0x00,	/* mov ecx, [rsi+0x228] */
	0x8b, 0x01,				/* mov eax, [rcx] */
	0x50, 0x59,				/* push rax; pop rcx (the stack works) */
	0x89, 0xc8,				/* mov eax, ecx */
	0xef,					/* out dx, eax */
	0xf4,					/* hlt */
};

/* 32-bit: out(start_info.magic); out(*(u32 *)start_info.cmdline_paddr). */
static const uint8_t code32[] = {
	0x8b, 0x03,				/* mov eax, [ebx] */
	0x66, 0xba, 0xe9, 0x00,			/* mov dx, 0xe9 */
	0xef,					/* out dx, eax */
	0x8b, 0x4b, 0x18,			/* mov ecx, [ebx+0x18] */
	0x8b, 0x01,				/* mov eax, [ecx] */
	0xef,					/* out dx, eax */
	0xf4,					/* hlt */
};

#define CODE_PADDR 0x100000ULL

/* Build an ELF whose single segment is `code`, load it, run it. */
static void run_elf(int pvh, const uint8_t *code, size_t code_len, struct run_result *res)
{
	struct tseg s = { .paddr = CODE_PADDR, .filesz = 0x1000, .memsz = 0x1000, .fill = 0xf4 };
	struct telf o = { .entry = CODE_PADDR, .segs = &s, .nsegs = 1, .pvh_size = pvh ? 8 : 0,
			  .pvh_entry = CODE_PADDR + 0x800 };
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k = build_elf(&o, &len);
	struct boot_config cfg = { .kernel = k, .kernel_len = len, .cmdline = "KVMB", .ncpus = 1 };

	/* Segment file bytes start at the first 4 KiB boundary after the note. */
	Elf64_Phdr ph;
	memcpy(&ph, k + sizeof(Elf64_Ehdr), sizeof(ph));
	memcpy(k + ph.p_offset + (pvh ? 0x800 : 0), code, code_len);
	tram_init_mapped(&t, 4 * MiB);
	assert_int_equal(boot_load(&t.gm, &cfg, &e), 0);
	assert_int_equal(e.mode, pvh ? BOOT_MODE_PVH32 : BOOT_MODE_LONG64);
	assert_int_equal(run_guest(&t, &e, res), 0);
	free(k);
	tram_free(&t);
}

static void test_elf_long64_on_kvm(void **state)
{
	(void)state;
	struct run_result res;

	if (!kvm_usable())
		skip();
	run_elf(0, code64, sizeof(code64), &res);
	assert_true(res.halted);
	assert_int_equal(res.nout, 2);
	assert_int_equal(res.out[0], BOOT_HDRS_MAGIC);
	assert_memory_equal(&res.out[1], "KVMB", 4);
}

static void test_elf_pvh_on_kvm(void **state)
{
	(void)state;
	struct run_result res;

	if (!kvm_usable())
		skip();
	run_elf(1, code32, sizeof(code32), &res);
	assert_true(res.halted);
	assert_int_equal(res.nout, 2);
	assert_int_equal(res.out[0], XEN_HVM_START_MAGIC);
	assert_memory_equal(&res.out[1], "KVMB", 4);
}

static void test_bzimage_on_kvm(void **state)
{
	(void)state;
	struct tbz o = tbz_default();
	struct run_result res;
	struct boot_entry e;
	struct tram t;
	size_t len;
	uint8_t *k;

	if (!kvm_usable())
		skip();
	o.fill = 0xf4;
	k = build_bzimage(&o, &len);
	memcpy(k + 5 * 512 + 0x200, code64, sizeof(code64));	/* 64-bit entry */
	struct boot_config cfg = { .kernel = k, .kernel_len = len, .cmdline = "KVMB", .ncpus = 1 };
	tram_init_mapped(&t, 8 * MiB);
	assert_int_equal(boot_load(&t.gm, &cfg, &e), 0);
	assert_int_equal(run_guest(&t, &e, &res), 0);
	assert_true(res.halted);
	assert_int_equal(res.nout, 2);
	assert_int_equal(res.out[0], BOOT_HDRS_MAGIC);
	assert_memory_equal(&res.out[1], "KVMB", 4);
	free(k);
	tram_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_long64_on_kvm),
		cmocka_unit_test(test_elf_pvh_on_kvm),
		cmocka_unit_test(test_bzimage_on_kvm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
