/* tests/unit/test_vmm_pure.c - the vmm pieces that need no /dev/kvm: CPUID
 * patching, base64url, the kernel command line, `kvmbox run` argument
 * parsing, bus dispatch, and the profile output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/cli/run.h"
#include "guest/abi/base64url.h"
#include "vmm/vmm.h"

/* ---- CPUID ---- */

static struct kvm_cpuid2 *fake_cpuid(unsigned cap)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	assert_non_null(c);
	struct kvm_cpuid_entry2 *e = c->entries;
	e[0] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0xff00abcd, .ecx = 0x1, .edx = 0 };
	for (unsigned i = 0; i < 3; i++)
		e[1 + i] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = i,
			.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .edx = 99 };
	e[4] = (struct kvm_cpuid_entry2){ .function = 0x40000000, .eax = 0x40000001 };
	e[5] = (struct kvm_cpuid_entry2){ .function = 0x40000001, .eax = 0x1234 };
	c->nent = 6;
	return c;
}

static void test_cpuid_apic_and_hypervisor(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = fake_cpuid(8);
	cpuid_patch(c, 8, 3, 4, 2500000);
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 1, 0);
	assert_int_equal(e->ebx >> 24, 3);		/* APIC ID */
	assert_int_equal((e->ebx >> 16) & 0xff, 4);	/* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0xabcd);	/* rest preserved */
	assert_true(e->ecx & (1u << 31));		/* hypervisor bit */
	assert_true(e->ecx & 1);
	assert_true(e->edx & (1u << 28));		/* HTT with ncpus > 1 */
	struct kvm_cpuid_entry2 *t0 = cpuid_find(c, 0xb, 0), *t1 = cpuid_find(c, 0xb, 1),
				*t2 = cpuid_find(c, 0xb, 2);
	assert_int_equal(t0->edx, 3);
	assert_int_equal(t1->edx, 3);
	assert_int_equal(t0->ebx, 1);
	assert_int_equal((t0->ecx >> 8) & 0xff, 1);	/* SMT level */
	assert_int_equal(t1->ebx, 4);
	assert_int_equal(t1->eax, 2);			/* shift: 4 cpus -> 2 bits */
	assert_int_equal((t1->ecx >> 8) & 0xff, 2);	/* core level */
	assert_int_equal((t2->ecx >> 8) & 0xff, 0);	/* end of levels */
	free(c);
}

/* XCR0 at vCPU creation: what leaf 0xD offers, user components only,
 * AVX-512 whole or not at all, nothing without XSAVE in leaf 1. */
static void test_cpuid_user_xcr0(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 2 * sizeof(c->entries[0]));
	assert_non_null(c);
	c->nent = 2;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .ecx = 1u << 26 };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 0,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x7 | 0x18 | 0x200 };
	assert_int_equal(cpuid_user_xcr0(c), 0x207);		/* MPX left out */
	c->entries[1].eax = 0xe7;
	assert_int_equal(cpuid_user_xcr0(c), 0xe7);		/* AVX-512 whole */
	c->entries[1].eax = 0x67;
	assert_int_equal(cpuid_user_xcr0(c), 0x7);		/* partial: none */
	c->entries[1].eax = 0x60007;				/* AMX: not at creation */
	assert_int_equal(cpuid_user_xcr0(c), 0x7);
	c->entries[0].ecx = 0;
	assert_int_equal(cpuid_user_xcr0(c), 0);		/* no XSAVE */
	free(c);
}

static void test_cpuid_kvm_leaves(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = fake_cpuid(8);
	cpuid_patch(c, 8, 0, 1, 2500000);
	struct kvm_cpuid_entry2 *s = cpuid_find(c, 0x40000000, 0);
	char sig[13] = { 0 };
	memcpy(sig, &s->ebx, 4);
	memcpy(sig + 4, &s->ecx, 4);
	memcpy(sig + 8, &s->edx, 4);
	assert_string_equal(sig, "KVMKVMKVM");
	assert_int_equal(s->eax, 0x40000010);
	struct kvm_cpuid_entry2 *t = cpuid_find(c, 0x40000010, 0);
	assert_non_null(t);
	assert_int_equal(t->eax, 2500000);
	assert_int_equal(cpuid_find(c, 0x40000001, 0)->eax, 0x1234);	/* features kept */
	struct kvm_cpuid_entry2 *one = cpuid_find(c, 1, 0);
	assert_int_equal((one->ebx >> 16) & 0xff, 1);
	assert_false(one->edx & (1u << 28));
	free(c);
}

static void test_cpuid_no_room(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = fake_cpuid(6);	/* full: no room for 0x40000010 */
	cpuid_patch(c, 6, 1, 2, 1000000);
	assert_int_equal(c->nent, 6);
	assert_null(cpuid_find(c, 0x40000010, 0));
	assert_int_equal(cpuid_find(c, 0x40000000, 0)->eax, 0x40000001);
	free(c);
}

/* ---- base64url and the command line ---- */

static void test_base64url_vectors(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
		{ "\xfb\xff", "-_8" },
	};
	char out[32];
	uint8_t back[32];
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].in);
		assert_int_equal(kbx_b64url_encode((const uint8_t *)v[i].in, n, out, sizeof(out)),
				 (int)strlen(v[i].out));
		assert_string_equal(out, v[i].out);
		assert_int_equal(kbx_b64url_decode(out, strlen(out), back, sizeof(back)), (int)n);
		assert_memory_equal(back, v[i].in, n);
	}
	assert_int_equal(kbx_b64url_encode((const uint8_t *)"foo", 3, out, 4), -ENOSPC);
	assert_int_equal(kbx_b64url_decode("Z", 1, back, sizeof(back)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm+v", 4, back, sizeof(back)), -EINVAL);
	assert_int_equal(kbx_b64url_decode("Zm=v", 4, back, sizeof(back)), -EINVAL);
}

static void test_base64url_all_bytes(void **state)
{
	(void)state;
	uint8_t in[256], back[256];
	char out[400];
	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	for (size_t len = 0; len <= 256; len += 17) {
		int n = kbx_b64url_encode(in, len, out, sizeof(out));
		assert_true(n >= 0);
		assert_null(strpbrk(out, "+/= "));
		assert_int_equal(kbx_b64url_decode(out, (size_t)n, back, sizeof(back)), (int)len);
		assert_memory_equal(back, in, len);
	}
}

static void test_cmdline_default_and_argv(void **state)
{
	(void)state;
	char *argv[] = { "sh", "-c", "exit 7" };
	char *s = cmdline_build(NULL, "virtio_mmio.device=4K@0xd0000000:5", 3, argv, 4096);
	assert_non_null(s);
	const char *want_prefix = CMDLINE_DEFAULT " virtio_mmio.device=4K@0xd0000000:5 kvmbox.argv=";
	assert_memory_equal(s, want_prefix, strlen(want_prefix));
	const char *enc = s + strlen(want_prefix);
	uint8_t dec[64];
	int n = kbx_b64url_decode(enc, strlen(enc), dec, sizeof(dec));
	assert_int_equal(n, 3 + 3 + 7);
	assert_memory_equal(dec, "sh\0-c\0exit 7\0", 13);
	free(s);
}

static void test_cmdline_custom_no_argv(void **state)
{
	(void)state;
	char *s = cmdline_build("console=ttyS0", "", 0, NULL, 4096);
	assert_string_equal(s, "console=ttyS0");
	free(s);
	s = cmdline_build("a", NULL, 0, NULL, 4096);
	assert_string_equal(s, "a");
	free(s);
}

static void test_cmdline_too_long(void **state)
{
	(void)state;
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	char *argv[] = { big };
	errno = 0;
	assert_null(cmdline_build(NULL, NULL, 1, argv, 4096));
	assert_int_equal(errno, E2BIG);
	/* just under the limit fits, one more byte does not */
	char *s = cmdline_build("", NULL, 0, NULL, 1);
	assert_non_null(s);
	free(s);
	assert_null(cmdline_build("ab", NULL, 0, NULL, 2));
}

/* ---- run arguments ---- */

static int parse(struct run_opts *o, char *err, int argc, char **argv)
{
	return run_parse_args(argc, argv, o, err, 200);
}

static void test_args_full(void **state)
{
	(void)state;
	char *argv[] = { "run", "--kernel", "vmlinux", "--initrd=i.cpio", "--cmdline", "quiet",
			 "--memory=256", "--cpus", "4", "--hugepages", "--console",
			 "--profile=json", "--", "ls", "-l" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse(&o, err, 15, argv), 0);
	assert_string_equal(o.kernel, "vmlinux");
	assert_string_equal(o.initrd, "i.cpio");
	assert_string_equal(o.cmdline, "quiet");
	assert_int_equal(o.mem_mib, 256);
	assert_int_equal(o.cpus, 4);
	assert_true(o.hugepages && o.console && o.profile && o.profile_json);
	assert_int_equal(o.argc, 2);
	assert_string_equal(o.argv[0], "ls");
	assert_string_equal(o.argv[1], "-l");
}

static void test_args_defaults(void **state)
{
	(void)state;
	char *argv[] = { "run", "--kernel", "k", "--profile" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse(&o, err, 4, argv), 0);
	assert_int_equal(o.mem_mib, RUN_DEFAULT_MEM_MIB);
	assert_int_equal(o.cpus, 1);
	assert_null(o.cmdline);
	assert_true(o.profile);
	assert_false(o.profile_json);
	assert_int_equal(o.argc, 0);
}

static void test_args_refused(void **state)
{
	(void)state;
	static const char *const bad[][4] = {
		{ "--kernel", "k", "--bogus", NULL },
		{ "--kernel", NULL },
		{ "--memory", "64", NULL },			/* no --kernel */
		{ "--kernel", "k", "--memory", "8" },		/* below the minimum */
		{ "--kernel", "k", "--memory", "-5" },
		{ "--kernel", "k", "--memory", "12x" },
		{ "--kernel", "k", "--memory", "" },
		{ "--kernel", "k", "--memory", "99999999999999999999" },
		{ "--kernel", "k", "--cpus", "0" },
		{ "--kernel", "k", "--cpus", "65" },
		{ "--kernel", "k", "--cpus", "+2" },
		{ "--kernel", "k", "--profile=yaml", NULL },
		{ "--kernel=", NULL },
		{ "--kernelx", "k", NULL },
		{ "--kernel", "k", "--hugepages", "--memory=33" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[5] = { "run" };
		int argc = 1;
		for (int k = 0; k < 4 && bad[i][k]; k++)
			argv[argc++] = (char *)bad[i][k];
		struct run_opts o;
		char err[200] = "";
		assert_int_equal(parse(&o, err, argc, argv), -EINVAL);
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
	}
}

/* --memory: plain MiB, or M/MiB/G/GiB in any case; nothing else. */
static void test_memory_units(void **state)
{
	(void)state;
	static const struct { const char *in; uint64_t mib; } good[] = {
		{ "2048", 2048 }, { "2048M", 2048 }, { "2048MiB", 2048 }, { "2G", 2048 },
		{ "2g", 2048 }, { "2GiB", 2048 }, { "1gib", 1024 }, { "64m", 64 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t mib = 0;
		assert_int_equal(cli_parse_mib(good[i].in, &mib), 0);
		assert_int_equal(mib, good[i].mib);
	}
	static const char *const bad[] = { "", "G", "2 G", "2GB", "2T", "1.5G", "-2G", "+2",
					   "2G ", "0x10", "18446744073709551615G", "2Gi" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t mib;
		assert_int_equal(cli_parse_mib(bad[i], &mib), -EINVAL);
	}
	char *argv[] = { "shell", "--kernel", "k", "--memory=4G" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse(&o, err, 4, argv), 0);
	assert_int_equal(o.mem_mib, 4096);
	/* messages name the command typed */
	char *bogus[] = { "claude", "--kernel", "k", "--bogus" };
	assert_int_equal(parse(&o, err, 4, bogus), -EINVAL);
	assert_non_null(strstr(err, "kvmbox claude --help"));
}

static void test_args_help(void **state)
{
	(void)state;
	char *argv[] = { "run", "--help" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse(&o, err, 2, argv), 0);
	assert_true(o.help);
}

/* ---- bus ---- */

struct rec {
	uint64_t off;
	uint8_t data[8];
	unsigned size;
	int reads, writes;
};

static void rec_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct rec *r = opaque;
	r->off = off;
	r->size = size;
	r->reads++;
	memset(data, 0x5a, size);
}

static void rec_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct rec *r = opaque;
	r->off = off;
	r->size = size;
	r->writes++;
	memcpy(r->data, data, size);
}

static void test_bus_dispatch(void **state)
{
	(void)state;
	struct bus bus = { 0 };
	struct rec a = { 0 }, b = { 0 };
	struct io_region ra = { .base = 0x3f8, .len = 8, .read = rec_read, .write = rec_write, .opaque = &a };
	struct io_region rb = { .base = 0x60, .len = 1, .read = rec_read, .write = rec_write, .opaque = &b };
	assert_int_equal(bus_add(&bus, &ra), 0);
	assert_int_equal(bus_add(&bus, &rb), 0);
	struct io_region overlap = { .base = 0x3ff, .len = 2 };
	assert_int_equal(bus_add(&bus, &overlap), -EEXIST);
	struct io_region empty = { .base = 0x100, .len = 0 };
	assert_int_equal(bus_add(&bus, &empty), -EINVAL);
	struct io_region wrap = { .base = UINT64_MAX, .len = 2 };
	assert_int_equal(bus_add(&bus, &wrap), -EINVAL);

	uint8_t v = 0x41;
	assert_true(bus_write(&bus, 0x3f8 + 5, &v, 1));
	assert_int_equal(a.off, 5);
	assert_int_equal(a.data[0], 0x41);
	uint32_t d = 0;
	assert_true(bus_read(&bus, 0x60, &d, 1));
	assert_int_equal(d, 0x5a);
	assert_int_equal(b.reads, 1);

	/* unclaimed: all-ones, not delivered */
	d = 0;
	assert_false(bus_read(&bus, 0x70, &d, 4));
	assert_int_equal(d, 0xffffffff);
	assert_false(bus_write(&bus, 0x70, &d, 4));
	/* straddling the end of a region is not delivered */
	assert_false(bus_read(&bus, 0x3ff, &d, 2));
	assert_false(bus_write(&bus, 0x60, &d, 2));
	assert_int_equal(b.writes, 0);
	/* bad sizes */
	uint64_t q;
	assert_false(bus_read(&bus, 0x3f8, &q, 0));
	assert_false(bus_write(&bus, 0x3f8, &q, 9));
}

static void test_bus_full(void **state)
{
	(void)state;
	struct bus bus = { 0 };
	static struct io_region r[BUS_MAX_REGIONS + 1];
	for (unsigned i = 0; i <= BUS_MAX_REGIONS; i++) {
		r[i] = (struct io_region){ .base = 1000 - i * 10, .len = 4 };
		assert_int_equal(bus_add(&bus, &r[i]), i < BUS_MAX_REGIONS ? 0 : -ENOSPC);
	}
	for (unsigned i = 1; i < bus.n; i++)
		assert_true(bus.r[i - 1]->base < bus.r[i]->base);
	uint8_t x;
	assert_true(bus_read(&bus, 1000 - 5 * 10 + 3, &x, 1));
	assert_false(bus_read(&bus, 1000 - 5 * 10 + 4, &x, 1));
}

/* ---- profile ---- */

static void test_profile_json(void **state)
{
	(void)state;
	struct profile p = { 0 };
	profile_mark(&p, PHASE_EXEC);
	profile_mark(&p, PHASE_KVM_READY);
	uint64_t first = p.wall_ns[PHASE_KVM_READY];
	profile_mark(&p, PHASE_KVM_READY);	/* second mark ignored */
	assert_int_equal(p.wall_ns[PHASE_KVM_READY], first);
	profile_mark(NULL, PHASE_EXEC);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	profile_print(&p, true, fds[1], 8192, 1 << 20);
	close(fds[1]);
	char buf[1024] = { 0 };
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_true(n > 0);
	assert_memory_equal(buf, "{\"exec_unix_us\":", 15);
	assert_non_null(strstr(buf, "\"exec\":{\"wall_ms\":0.000,"));
	assert_non_null(strstr(buf, "\"kvm_ready\":"));
	assert_null(strstr(buf, "first_kvm_run"));	/* not reached: omitted */
	assert_non_null(strstr(buf, "\"guest_ram_resident_kib\":8,\"max_rss_kib\":1024}\n"));
	assert_string_equal(profile_phase_name(PHASE_GUEST_INIT), "guest_init_started");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_apic_and_hypervisor),
		cmocka_unit_test(test_cpuid_kvm_leaves),
		cmocka_unit_test(test_cpuid_user_xcr0),
		cmocka_unit_test(test_cpuid_no_room),
		cmocka_unit_test(test_base64url_vectors),
		cmocka_unit_test(test_base64url_all_bytes),
		cmocka_unit_test(test_cmdline_default_and_argv),
		cmocka_unit_test(test_cmdline_custom_no_argv),
		cmocka_unit_test(test_cmdline_too_long),
		cmocka_unit_test(test_args_full),
		cmocka_unit_test(test_args_defaults),
		cmocka_unit_test(test_args_refused),
		cmocka_unit_test(test_args_help),
		cmocka_unit_test(test_memory_units),
		cmocka_unit_test(test_bus_dispatch),
		cmocka_unit_test(test_bus_full),
		cmocka_unit_test(test_profile_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
