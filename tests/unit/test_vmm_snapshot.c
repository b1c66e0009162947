/* tests/unit/test_vmm_snapshot.c - the snapshot format and folder
 * (vmm/snapshot/): a state file round-trips; every cut and every damaged
 * byte is refused with one line; crafted files with a valid checksum are
 * refused for what is wrong in them (unknown or doubled sections, sizes,
 * indexes, a missing vCPU part, the memory file's name, unterminated
 * strings, trailing bytes, another format version); another build or CPU is
 * refused; a folder is written whole (sparse memory, one memory file after
 * a second save) and a folder of other files is left alone.  KVM's part is
 * proven by tests/guests/vmm_snapshot.sh on a real KVM. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/legacy/legacy.h"
#include "devices/virtio/mmio.h"
#include "common/sha256.h"
#include "vmm/snapshot/snapshot.h"

/* Zeroes of any section's size. */
static uint8_t zero[8192];

struct build_opts {
	unsigned ncpus;
	unsigned ndevs;			/* virtio devices the machine section names */
	unsigned nvirtio;		/* transport sections put (0: ndevs of them) */
	bool device_beyond;		/* a device section past the last device */
	uint32_t skip_tag, skip_index;	/* leave this section out (0: none) */
	uint32_t dup_tag;		/* put this vCPU-0 section twice */
	const char *memory_file;
	bool proxy_ca;			/* put the proxy CA's digest (0xca...) */
};

static void put_machine(struct snap_writer *w, const struct build_opts *o)
{
	struct snap_machine m = { .mem_size = 1 << 20, .ncpus = o->ncpus, .ndevs = o->ndevs,
				  .guest_status = -1 };
	snap_kvmbox_build(m.kvmbox_build, sizeof(m.kvmbox_build));
	snap_host_cpu(m.host_cpu, sizeof(m.host_cpu));
	snprintf(m.memory_file, sizeof(m.memory_file), "%s", o->memory_file ? o->memory_file : "memory-1f");
	snap_put(w, SNAP_MACHINE, 0, &m, sizeof(m));
}

static void put(struct snap_writer *w, const struct build_opts *o, uint32_t tag, uint32_t idx,
		size_t len)
{
	if (tag == o->skip_tag && idx == o->skip_index)
		return;
	snap_put(w, tag, idx, zero, len);
	if (tag == o->dup_tag && idx == 0)
		snap_put(w, tag, idx, zero, len);
}

/* A whole state, as the VMM writes one, into *buf / *len. */
static void build(const struct build_opts *o, uint8_t **buf, size_t *len)
{
	struct snap_writer w;
	snap_writer_init(&w);
	put_machine(&w, o);
	put(&w, o, SNAP_VM_CLOCK, 0, sizeof(struct kvm_clock_data));
	put(&w, o, SNAP_VM_PIT, 0, sizeof(struct kvm_pit_state2));
	for (uint32_t c = 0; c < 3; c++)
		put(&w, o, SNAP_VM_IRQCHIP, c, sizeof(struct kvm_irqchip));
	put(&w, o, SNAP_UART, 0, sizeof(struct uart_state));
	put(&w, o, SNAP_I8042, 0, sizeof(struct i8042_state));
	static uint8_t vs[sizeof(struct vdev_state)];
	for (uint32_t d = 0; d < (o->nvirtio ? o->nvirtio : o->ndevs); d++) {
		snap_put(&w, SNAP_VIRTIO, d, vs, sizeof(vs));
		snap_put(&w, SNAP_VIRTIO_DEVICE, d, zero, 24);
	}
	if (o->device_beyond)
		snap_put(&w, SNAP_VIRTIO_DEVICE, o->ndevs, zero, 8);
	static const uint8_t ca_sum[32] = { 0xca, 0xfe };
	if (o->proxy_ca)
		snap_put(&w, SNAP_PROXY_CA, 0, ca_sum, sizeof(ca_sum));
	for (uint32_t v = 0; v < o->ncpus; v++) {
		put(&w, o, SNAP_VCPU_MP_STATE, v, sizeof(struct kvm_mp_state));
		put(&w, o, SNAP_VCPU_REGS, v, sizeof(struct kvm_regs));
		put(&w, o, SNAP_VCPU_SREGS, v, sizeof(struct kvm_sregs));
		put(&w, o, SNAP_VCPU_XSAVE, v, 4096);
		put(&w, o, SNAP_VCPU_XCRS, v, sizeof(struct kvm_xcrs));
		put(&w, o, SNAP_VCPU_DEBUGREGS, v, sizeof(struct kvm_debugregs));
		put(&w, o, SNAP_VCPU_LAPIC, v, sizeof(struct kvm_lapic_state));
		put(&w, o, SNAP_VCPU_TSC_KHZ, v, 4);
		put(&w, o, SNAP_VCPU_CPUID, v, 3 * sizeof(struct kvm_cpuid_entry2));
		put(&w, o, SNAP_VCPU_MSRS, v, 5 * sizeof(struct kvm_msr_entry));
		put(&w, o, SNAP_VCPU_EVENTS, v, sizeof(struct kvm_vcpu_events));
	}
	assert_int_equal(snap_finish(&w), 0);
	*buf = w.buf;
	*len = w.len;
}

/* Parse a copy of buf (the parser takes its buffer over). */
static int parse_copy(const uint8_t *buf, size_t len, char *err, size_t errsz)
{
	uint8_t *c = malloc(len ? len : 1);
	assert_non_null(c);
	memcpy(c, buf, len);
	struct snap_state st;
	err[0] = '\0';
	int r = snap_parse(&st, c, len, err, errsz);
	if (r == 0)
		snap_state_free(&st);
	return r;
}

/* Recompute the checksum after a deliberate change. */
static void reseal(uint8_t *buf, size_t len)
{
	unsigned n = 0;
	assert_int_equal(EVP_Digest(buf, len - 32, buf + len - 32, &n, EVP_sha256(), NULL), 1);
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	struct build_opts o = { .ncpus = 2, .ndevs = 2 };
	build(&o, &buf, &len);
	struct snap_state st;
	char err[200] = "";
	assert_int_equal(snap_parse(&st, buf, len, err, sizeof(err)), 0);
	assert_int_equal(st.machine->ncpus, 2);
	assert_int_equal(st.machine->ndevs, 2);
	assert_non_null(snap_find(&st, SNAP_VIRTIO, 1));
	assert_int_equal(snap_find(&st, SNAP_VIRTIO_DEVICE, 1)->len, 24);
	assert_int_equal(st.machine->mem_size, 1 << 20);
	assert_string_equal(st.machine->memory_file, "memory-1f");
	const struct snap_section *s = snap_find(&st, SNAP_VCPU_MSRS, 1);
	assert_non_null(s);
	assert_int_equal(s->len, 5 * sizeof(struct kvm_msr_entry));
	assert_non_null(snap_find(&st, SNAP_VM_IRQCHIP, 2));
	assert_null(snap_find(&st, SNAP_VM_IRQCHIP, 3));
	assert_null(snap_find(&st, SNAP_VCPU_REGS, 2));
	assert_int_equal(snap_check_identity(st.machine, err, sizeof(err)), 0);
	assert_null(snap_find(&st, SNAP_PROXY_CA, 0));	/* only when a CA was given */
	snap_state_free(&st);
	/* with the proxy CA's digest */
	struct build_opts with_ca = { .ncpus = 1, .proxy_ca = true };
	build(&with_ca, &buf, &len);
	assert_int_equal(snap_parse(&st, buf, len, err, sizeof(err)), 0);
	const struct snap_section *ca = snap_find(&st, SNAP_PROXY_CA, 0);
	assert_non_null(ca);
	assert_int_equal(ca->len, 32);
	assert_int_equal(ca->data[0], 0xca);
	snap_state_free(&st);
}

static void test_every_cut_refused(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	struct build_opts o = { .ncpus = 1 };
	build(&o, &buf, &len);
	char err[200];
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(parse_copy(buf, n, err, sizeof(err)), -EINVAL);
		assert_true(err[0] && !strchr(err, '\n'));
	}
	free(buf);
}

static void test_every_damaged_byte_refused(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t len;
	struct build_opts o = { .ncpus = 1 };
	build(&o, &buf, &len);
	char err[200];
	for (size_t i = 0; i < len; i += 3) {
		buf[i] ^= 0x40;
		assert_int_equal(parse_copy(buf, len, err, sizeof(err)), -EINVAL);
		buf[i] ^= 0x40;
	}
	buf[len / 2] ^= 1;
	parse_copy(buf, len, err, sizeof(err));
	assert_string_equal(err, "its checksum does not match (the file is damaged)");
	free(buf);
}

/* A state built with @o, resealed after @edit, refused with a message
 * that begins with @want. */
static void expect_refused(const struct build_opts *o, void (*edit)(uint8_t *, size_t),
			   const char *want)
{
	uint8_t *buf;
	size_t len;
	build(o, &buf, &len);
	if (edit) {
		edit(buf, len);
		reseal(buf, len);
	}
	char err[200];
	assert_int_equal(parse_copy(buf, len, err, sizeof(err)), -EINVAL);
	if (strncmp(err, want, strlen(want)))
		fail_msg("refused with '%s', wanted '%s'", err, want);
	free(buf);
}

/* Offsets: header 16, then the machine section's header (16) and body. */
#define MACHINE_AT (16 + 16)
#define FIRST_AFTER_MACHINE (MACHINE_AT + sizeof(struct snap_machine))

static void edit_version(uint8_t *b, size_t n) { (void)n; b[8] = 1; }
static void edit_nsec_fewer(uint8_t *b, size_t n) { (void)n; b[12]--; }
static void edit_nsec_more(uint8_t *b, size_t n) { (void)n; b[12]++; }
static void edit_unknown_tag(uint8_t *b, size_t n) { (void)n; b[FIRST_AFTER_MACHINE] = 99; }
static void edit_index(uint8_t *b, size_t n) { (void)n; b[FIRST_AFTER_MACHINE + 4] = 1; }
static void edit_len_huge(uint8_t *b, size_t n) { (void)n; b[FIRST_AFTER_MACHINE + 15] = 0x80; }
static void edit_ncpus(uint8_t *b, size_t n)
{
	(void)n;
	memset(b + MACHINE_AT + offsetof(struct snap_machine, ncpus), 0, 4);
}
static void edit_unterminated(uint8_t *b, size_t n)
{
	(void)n;
	memset(b + MACHINE_AT + offsetof(struct snap_machine, host_cpu), 'A',
	       sizeof(((struct snap_machine *)0)->host_cpu));
}
static void edit_mem_size(uint8_t *b, size_t n)
{
	(void)n;
	b[MACHINE_AT + offsetof(struct snap_machine, mem_size)] = 1;
}
static void edit_first_not_machine(uint8_t *b, size_t n) { (void)n; b[16] = SNAP_UART; }

static void test_crafted_refused(void **state)
{
	(void)state;
	struct build_opts o = { .ncpus = 2 };
	expect_refused(&o, edit_version, "its format version is 1; this kvmbox reads version 3");
	expect_refused(&o, edit_nsec_fewer, "it has 80 bytes after its last section");
	expect_refused(&o, edit_nsec_more, "it is cut short");
	expect_refused(&o, edit_unknown_tag, "section 1 has an unknown tag 99");
	expect_refused(&o, edit_index, "its kvmclock section has index 1 (at most 0)");
	expect_refused(&o, edit_len_huge, "its section 1 is longer than the file");
	expect_refused(&o, edit_ncpus, "it has 0 vCPUs");
	expect_refused(&o, edit_unterminated, "its machine section has an unterminated name");
	expect_refused(&o, edit_mem_size, "its guest RAM size");
	expect_refused(&o, edit_first_not_machine, "it does not begin with its machine section");
	struct build_opts missing = { .ncpus = 2, .skip_tag = SNAP_VCPU_REGS, .skip_index = 1 };
	expect_refused(&missing, NULL, "it lacks its vCPU registers section 1");
	struct build_opts dup = { .ncpus = 1, .dup_tag = SNAP_VCPU_LAPIC };
	expect_refused(&dup, NULL, "its vCPU local APIC section 0 appears twice");
	/* Virtio devices: as many transport sections as the machine names,
	 * device sections only for those. */
	struct build_opts devs_missing = { .ncpus = 1, .ndevs = 3, .nvirtio = 2 };
	expect_refused(&devs_missing, NULL, "it lacks its virtio transport section 2");
	struct build_opts devs_extra = { .ncpus = 1, .ndevs = 2, .nvirtio = 3 };
	expect_refused(&devs_extra, NULL, "its virtio transport section has index 2 (at most 1)");
	struct build_opts devs_none = { .ncpus = 1, .ndevs = 0, .nvirtio = 1 };
	expect_refused(&devs_none, NULL, "it has a virtio transport section 0 but names none");
	struct build_opts devs_beyond = { .ncpus = 1, .ndevs = 2, .device_beyond = true };
	expect_refused(&devs_beyond, NULL, "its virtio device section has index 2 (at most 1)");
	struct build_opts devs_many = { .ncpus = 1, .ndevs = SNAP_MAX_DEVS + 1 };
	expect_refused(&devs_many, NULL, "it has 17 virtio devices (at most 16)");
	struct build_opts names[] = {
		{ .ncpus = 1, .memory_file = "../../etc/passwd" },
		{ .ncpus = 1, .memory_file = "memory-" },
		{ .ncpus = 1, .memory_file = "memory-1F" },
		{ .ncpus = 1, .memory_file = "state" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_refused(&names[i], NULL, "its machine section names no memory file");
	/* A size that is not the tag's. */
	struct snap_writer w;
	snap_writer_init(&w);
	struct build_opts one = { .ncpus = 1 };
	put_machine(&w, &one);
	snap_put(&w, SNAP_VCPU_REGS, 0, zero, sizeof(struct kvm_regs) - 8);
	assert_int_equal(snap_finish(&w), 0);
	char err[200];
	assert_int_equal(parse_copy(w.buf, w.len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "its vCPU registers section is 136 bytes");
	snap_writer_free(&w);
	/* The proxy CA's digest: 32 bytes, once. */
	snap_writer_init(&w);
	put_machine(&w, &one);
	snap_put(&w, SNAP_PROXY_CA, 0, zero, 31);
	assert_int_equal(snap_finish(&w), 0);
	assert_int_equal(parse_copy(w.buf, w.len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "its proxy CA section is 31 bytes");
	snap_writer_free(&w);
	snap_writer_init(&w);
	assert_int_equal(snap_finish(&w), -EINVAL);	/* nothing put */
	snap_writer_free(&w);
}

static void test_identity(void **state)
{
	(void)state;
	struct snap_machine m = { .ncpus = 1, .mem_size = 4096 };
	snap_kvmbox_build(m.kvmbox_build, sizeof(m.kvmbox_build));
	snap_host_cpu(m.host_cpu, sizeof(m.host_cpu));
	char err[300];
	assert_int_equal(snap_check_identity(&m, err, sizeof(err)), 0);
	assert_true(strlen(m.host_cpu) > 6);
	struct snap_machine other = m;
	snprintf(other.kvmbox_build, sizeof(other.kvmbox_build), "00112233445566778899");
	assert_int_equal(snap_check_identity(&other, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "saved by another kvmbox build (001122334455"));
	other = m;
	snprintf(other.host_cpu, sizeof(other.host_cpu), "OtherVendor 6/1/1 A CPU");
	assert_int_equal(snap_check_identity(&other, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "saved on another CPU (OtherVendor 6/1/1 A CPU; this is "));
	char hex[SHA256_HEX_LEN + 1];
	assert_int_equal(sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_folder(void **state)
{
	(void)state;
	char base[] = "/tmp/kvmbox-snap-XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[300], path[400], err[300];
	snprintf(dir, sizeof(dir), "%s/snap", base);
	assert_int_equal(snap_prepare_dir(dir, err, sizeof(err)), 0);
	size_t ram_len = 1 << 20;
	uint8_t *ram = calloc(1, ram_len);
	assert_non_null(ram);
	memcpy(ram + 8192, "page two", 8);
	memcpy(ram + ram_len - 4096, "last page", 9);
	struct snap_ram every_page = { .base = ram, .size = ram_len, .memfd = -1, .pagemap_fd = -1 };
	uint8_t *buf;
	size_t len;
	struct build_opts o = { .ncpus = 1, .memory_file = "memory-a1" };
	build(&o, &buf, &len);
	struct snap_writer w = { .buf = buf, .len = len };
	assert_int_equal(snap_write_dir(dir, "memory-a1", &every_page, &w, err, sizeof(err)), 0);
	struct snap_state st;
	assert_int_equal(snap_read_state(dir, &st, err, sizeof(err)), 0);
	int fd = snap_open_memory(dir, st.machine, err, sizeof(err));
	assert_true(fd >= 0);
	uint8_t *back = malloc(ram_len);
	assert_int_equal(pread(fd, back, ram_len, 0), (ssize_t)ram_len);
	assert_memory_equal(back, ram, ram_len);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true(sb.st_blocks * 512 < (off_t)ram_len / 2);	/* zero pages are holes */
	close(fd);
	snap_state_free(&st);
	/* A second save replaces the first: one memory file left. */
	struct build_opts o2 = { .ncpus = 1, .memory_file = "memory-b2" };
	free(w.buf);
	build(&o2, &w.buf, &w.len);
	assert_int_equal(snap_write_dir(dir, "memory-b2", &every_page, &w, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/memory-a1", dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(snap_prepare_dir(dir, err, sizeof(err)), 0);	/* a snapshot's folder */
	assert_int_equal(snap_read_state(dir, &st, err, sizeof(err)), 0);
	assert_string_equal(st.machine->memory_file, "memory-b2");
	snap_state_free(&st);
	/* A folder with anything else in it is not one to write into. */
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(snap_prepare_dir(dir, err, sizeof(err)), -EEXIST);
	assert_string_equal(err, "it holds files that are not a snapshot's");
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	unlink(path);
	/* With a suspended guest's proxy CA beside it, still a snapshot's
	 * folder; a save keeps the CA (written for that save). */
	snprintf(path, sizeof(path), "%s/" SNAP_PROXY_CA_FILE, dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(snap_prepare_dir(dir, err, sizeof(err)), 0);
	struct build_opts o3 = { .ncpus = 1, .memory_file = "memory-c3" };
	struct snap_writer w3;
	build(&o3, &w3.buf, &w3.len);
	assert_int_equal(snap_write_dir(dir, "memory-c3", &every_page, &w3, err, sizeof(err)), 0);
	free(w3.buf);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	/* A memory file that is a link is not followed. */
	snprintf(path, sizeof(path), "%s/memory-c3", dir);
	unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_int_equal(snap_read_state(dir, &st, err, sizeof(err)), 0);
	assert_true(snap_open_memory(dir, st.machine, err, sizeof(err)) < 0);
	snap_state_free(&st);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	rmdir(dir);
	rmdir(base);
	free(back);
	free(ram);
	free(w.buf);
}

/* The memory file holds the same bytes whichever way the writer finds the
 * pages worth reading: every page, a memfd's data extents, or anonymous
 * memory's written pages (/proc/self/pagemap); pages never written, or
 * only read, are holes. */
static void save_and_check(const struct snap_ram *ram, const char *what)
{
	const uint8_t *untouched = ram->base + (6u << 20);	/* fill() leaves it alone */
	char base[] = "/tmp/kvmbox-snap-XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[300], path[400], err[300];
	snprintf(dir, sizeof(dir), "%s/snap", base);
	assert_int_equal(snap_prepare_dir(dir, err, sizeof(err)), 0);
	struct build_opts o = { .ncpus = 1, .memory_file = "memory-d4" };
	struct snap_writer w;
	build(&o, &w.buf, &w.len);
	assert_int_equal(snap_write_dir(dir, "memory-d4", ram, &w, err, sizeof(err)), 0);
	free(w.buf);
	if (ram->pagemap_fd >= 0) {	/* the save did not even read what was never touched */
		uint64_t entry = 0;
		off_t at = (off_t)((uintptr_t)untouched / 4096 * sizeof(entry));
		assert_int_equal(pread(ram->pagemap_fd, &entry, sizeof(entry), at), (ssize_t)sizeof(entry));
		if (entry >> 63)
			fail_msg("%s: the save mapped a page never touched", what);
	}
	snprintf(path, sizeof(path), "%s/memory-d4", dir);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t *back = malloc(ram->size);
	assert_int_equal(pread(fd, back, ram->size, 0), (ssize_t)ram->size);
	if (memcmp(back, ram->base, ram->size))
		fail_msg("%s: the memory file differs from RAM", what);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	if (sb.st_blocks * 512 > 64 * 1024)
		fail_msg("%s: %lld bytes allocated for 3 written pages", what, (long long)sb.st_blocks * 512);
	close(fd);
	free(back);
	unlink(path);
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	rmdir(dir);
	rmdir(base);
}

static void fill(uint8_t *ram, size_t len)
{
	memcpy(ram + 4096, "second page", 11);
	memcpy(ram + (5u << 20) + 12288, "in the middle", 13);
	memcpy(ram + len - 4096, "last page", 9);
	volatile uint8_t read_only = ram[(3u << 20)];	/* mapped, never written */
	(void)read_only;
}

static void test_written_pages(void **state)
{
	(void)state;
	size_t len = 8u << 20;
	uint8_t *anon = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(anon != MAP_FAILED);
	fill(anon, len);
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	assert_true(pagemap >= 0);
	save_and_check(&(struct snap_ram){ .base = anon, .size = len, .memfd = -1, .pagemap_fd = pagemap },
		       "anonymous memory, pagemap");
	save_and_check(&(struct snap_ram){ .base = anon, .size = len, .memfd = -1, .pagemap_fd = -1 },
		       "anonymous memory, every page");
	close(pagemap);
	munmap(anon, len);

	int memfd = memfd_create("test-ram", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)len), 0);
	uint8_t *shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(shared != MAP_FAILED);
	fill(shared, len);
	save_and_check(&(struct snap_ram){ .base = shared, .size = len, .memfd = memfd, .pagemap_fd = -1 },
		       "memfd, data extents");
	munmap(shared, len);
	close(memfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_every_cut_refused),
		cmocka_unit_test(test_every_damaged_byte_refused),
		cmocka_unit_test(test_crafted_refused),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_folder),
		cmocka_unit_test(test_written_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
