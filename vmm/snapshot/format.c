/* vmm/snapshot/format.c - the state file's bytes (layout in snapshot.h):
 * a writer that appends typed sections and a checksum, and a parser that
 * accepts exactly what the writer makes and refuses everything else with
 * one line.  A state file is the user's own, but it may be truncated by a
 * full disk, damaged, or crafted: every length is checked against the
 * tag's own before any byte is used.
 */
#include "vmm/snapshot/snapshot.h"

#include <errno.h>
#include <linux/kvm.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/legacy/legacy.h"
#include "devices/virtio/mmio.h"

#define SNAP_HEADER_LEN 16	/* magic, version, section count */
#define SNAP_SECTION_HDR 16	/* tag, index, length */
#define SNAP_SUM_LEN 32		/* SHA-256 */
#define SNAP_PAD(len) ((8 - (size_t)(len) % 8) % 8)

/* What a section of each tag may be: its size (exact, or a multiple of
 * elem between min and max), and how its index is bounded. */
enum snap_index { IDX_ZERO, IDX_VCPU, IDX_CHIP, IDX_DEV };
struct snap_tag_rule {
	const char *name;
	size_t min, max, elem;
	enum snap_index index;
	bool required;		/* for every index it has (each vCPU) */
};

static const struct snap_tag_rule rules[SNAP_TAG_END] = {
	[SNAP_MACHINE] = { "machine", sizeof(struct snap_machine), sizeof(struct snap_machine), 0,
			   IDX_ZERO, true },
	[SNAP_VM_CLOCK] = { "kvmclock", sizeof(struct kvm_clock_data), sizeof(struct kvm_clock_data),
			    0, IDX_ZERO, true },
	[SNAP_VM_PIT] = { "PIT", sizeof(struct kvm_pit_state2), sizeof(struct kvm_pit_state2), 0,
			  IDX_ZERO, true },
	[SNAP_VM_IRQCHIP] = { "irqchip", sizeof(struct kvm_irqchip), sizeof(struct kvm_irqchip), 0,
			      IDX_CHIP, true },
	[SNAP_UART] = { "UART", sizeof(struct uart_state), sizeof(struct uart_state), 0, IDX_ZERO,
			true },
	[SNAP_I8042] = { "i8042", sizeof(struct i8042_state), sizeof(struct i8042_state), 0,
			 IDX_ZERO, true },
	[SNAP_VCPU_REGS] = { "vCPU registers", sizeof(struct kvm_regs), sizeof(struct kvm_regs), 0,
			     IDX_VCPU, true },
	[SNAP_VCPU_SREGS] = { "vCPU special registers", sizeof(struct kvm_sregs),
			      sizeof(struct kvm_sregs), 0, IDX_VCPU, true },
	[SNAP_VCPU_XSAVE] = { "vCPU XSAVE area", 4096, SNAP_MAX_XSAVE, 64, IDX_VCPU, true },
	[SNAP_VCPU_XCRS] = { "vCPU XCRs", sizeof(struct kvm_xcrs), sizeof(struct kvm_xcrs), 0,
			     IDX_VCPU, false },
	[SNAP_VCPU_MSRS] = { "vCPU MSRs", sizeof(struct kvm_msr_entry),
			     SNAP_MAX_MSRS * sizeof(struct kvm_msr_entry), sizeof(struct kvm_msr_entry),
			     IDX_VCPU, true },
	[SNAP_VCPU_LAPIC] = { "vCPU local APIC", sizeof(struct kvm_lapic_state),
			      sizeof(struct kvm_lapic_state), 0, IDX_VCPU, true },
	[SNAP_VCPU_EVENTS] = { "vCPU pending events", sizeof(struct kvm_vcpu_events),
			       sizeof(struct kvm_vcpu_events), 0, IDX_VCPU, true },
	[SNAP_VCPU_MP_STATE] = { "vCPU MP state", sizeof(struct kvm_mp_state),
				 sizeof(struct kvm_mp_state), 0, IDX_VCPU, true },
	[SNAP_VCPU_DEBUGREGS] = { "vCPU debug registers", sizeof(struct kvm_debugregs),
				  sizeof(struct kvm_debugregs), 0, IDX_VCPU, true },
	[SNAP_VCPU_CPUID] = { "vCPU CPUID", sizeof(struct kvm_cpuid_entry2),
			      SNAP_MAX_CPUID * sizeof(struct kvm_cpuid_entry2),
			      sizeof(struct kvm_cpuid_entry2), IDX_VCPU, true },
	[SNAP_VCPU_TSC_KHZ] = { "vCPU TSC frequency", 4, 4, 0, IDX_VCPU, false },
	[SNAP_VIRTIO] = { "virtio transport", sizeof(struct vdev_state), sizeof(struct vdev_state), 0,
			  IDX_DEV, true },
	[SNAP_VIRTIO_DEVICE] = { "virtio device", 1, VDEV_DEVICE_STATE_MAX, 1, IDX_DEV, false },
	[SNAP_PROXY_CA] = { "proxy CA", 32, 32, 0, IDX_ZERO, false },
};

/* How many sections of a tag's kind there are: one per vCPU, chip, device. */
static uint32_t index_limit(const struct snap_state *st, enum snap_index index)
{
	switch (index) {
	case IDX_VCPU: return st->machine->ncpus;
	case IDX_CHIP: return 3;
	case IDX_DEV: return st->machine->ndevs;
	default: return 1;
	}
}

const char *snap_tag_name(uint32_t tag)
{
	return tag < SNAP_TAG_END && rules[tag].name ? rules[tag].name : "unknown section";
}

/* ---- writer ---- */

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
}

static void put_bytes(struct snap_writer *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (n > SNAP_MAX_STATE - w->len) {
		w->err = -EFBIG;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u32(struct snap_writer *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put_bytes(w, b, 4);
}

static void put_u64(struct snap_writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)v);
	put_u32(w, (uint32_t)(v >> 32));
}

void snap_put(struct snap_writer *w, uint32_t tag, uint32_t index, const void *data, size_t len)
{
	if (w->len == 0) {	/* room for the header, filled by snap_finish */
		static const uint8_t header[SNAP_HEADER_LEN];
		put_bytes(w, header, sizeof(header));
	}
	static const uint8_t pad[8];
	put_u32(w, tag);
	put_u32(w, index);
	put_u64(w, len);
	put_bytes(w, data, len);
	put_bytes(w, pad, SNAP_PAD(len));	/* the next section 8-byte aligned */
	if (!w->err)
		w->nsec++;
}

static int sha256(const uint8_t *p, size_t n, uint8_t out[SNAP_SUM_LEN])
{
	unsigned outlen = 0;
	return EVP_Digest(p, n, out, &outlen, EVP_sha256(), NULL) == 1 && outlen == SNAP_SUM_LEN ?
		0 : -EIO;
}

int snap_finish(struct snap_writer *w)
{
	if (!w->err && w->len == 0)
		w->err = -EINVAL;	/* no section */
	if (w->err)
		return w->err;
	memcpy(w->buf, SNAP_MAGIC, 8);
	uint8_t *h = w->buf + 8;
	uint32_t v[2] = { SNAP_FORMAT_VERSION, w->nsec };
	for (int i = 0; i < 2; i++)
		for (int b = 0; b < 4; b++)
			h[i * 4 + b] = (uint8_t)(v[i] >> (8 * b));
	uint8_t sum[SNAP_SUM_LEN];
	int r = sha256(w->buf, w->len, sum);
	if (r < 0)
		return w->err = r;
	put_bytes(w, sum, sizeof(sum));
	return w->err;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Whether NAME is one of ours in a snapshot directory: "state",
 * "memory-HEX", a "state.tmp-HEX" left by a save that did not finish, or
 * the proxy's CA kept for a suspended guest. */
bool snap_dir_entry_ours(const char *name)
{
	if (!strcmp(name, "state") || !strcmp(name, SNAP_PROXY_CA_FILE))
		return true;
	const char *hex = !strncmp(name, "memory-", 7) ? name + 7 :
		!strncmp(name, "state.tmp-", 10) ? name + 10 : NULL;
	if (!hex || !*hex || strlen(hex) > 32)
		return false;
	return strspn(hex, "0123456789abcdef") == strlen(hex);
}

bool snap_memory_name_valid(const char *name)
{
	return !strncmp(name, "memory-", 7) && snap_dir_entry_ours(name);
}

/* ---- parser ---- */

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

__attribute__((format(printf, 3, 4)))
static int refuse(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool str_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

/* The machine section's own rules (it bounds the others' indexes). */
static int check_machine(const struct snap_machine *m, char *err, size_t errsz)
{
	if (!str_terminated(m->kvmbox_build, sizeof(m->kvmbox_build)) ||
	    !str_terminated(m->host_cpu, sizeof(m->host_cpu)) ||
	    !str_terminated(m->kernel_sha256, sizeof(m->kernel_sha256)))
		return refuse(err, errsz, "its machine section has an unterminated name");
	if (!str_terminated(m->memory_file, sizeof(m->memory_file)) ||
	    !snap_memory_name_valid(m->memory_file))
		return refuse(err, errsz, "its machine section names no memory file of a snapshot");
	if (m->ncpus < 1 || m->ncpus > SNAP_MAX_VCPUS)
		return refuse(err, errsz, "it has %u vCPUs (1 to %u)", m->ncpus, SNAP_MAX_VCPUS);
	if (m->ndevs > SNAP_MAX_DEVS)
		return refuse(err, errsz, "it has %u virtio devices (at most %u)", m->ndevs, SNAP_MAX_DEVS);
	if (!m->mem_size || m->mem_size % 4096)
		return refuse(err, errsz, "its guest RAM size %llu is not a whole number of pages",
			      (unsigned long long)m->mem_size);
	if (m->guest_status < -1 || m->guest_status > 255)
		return refuse(err, errsz, "its guest exit status %d is out of range", m->guest_status);
	return 0;
}

/* Each section: a known tag, its size, its index in range, not seen before. */
static int check_section(const struct snap_state *st, unsigned i, char *err, size_t errsz)
{
	const struct snap_section *s = &st->sec[i];
	if (s->tag == 0 || s->tag >= SNAP_TAG_END)
		return refuse(err, errsz, "section %u has an unknown tag %u", i, s->tag);
	const struct snap_tag_rule *r = &rules[s->tag];
	bool size_ok = r->elem ? s->len >= r->min && s->len <= r->max && s->len % r->elem == 0 :
		s->len == r->min;
	if (!size_ok)
		return refuse(err, errsz, "its %s section is %zu bytes", r->name, s->len);
	uint32_t limit = index_limit(st, r->index);
	if (s->index >= limit && limit == 0)
		return refuse(err, errsz, "it has a %s section %u but names none", r->name, s->index);
	if (s->index >= limit)
		return refuse(err, errsz, "its %s section has index %u (at most %u)", r->name, s->index,
			      limit - 1);
	for (unsigned j = 0; j < i; j++)
		if (st->sec[j].tag == s->tag && st->sec[j].index == s->index)
			return refuse(err, errsz, "its %s section %u appears twice", r->name, s->index);
	return 0;
}

static int check_required(const struct snap_state *st, char *err, size_t errsz)
{
	for (uint32_t tag = 1; tag < SNAP_TAG_END; tag++) {
		const struct snap_tag_rule *r = &rules[tag];
		uint32_t n = index_limit(st, r->index);
		for (uint32_t idx = 0; r->required && idx < n; idx++)
			if (!snap_find(st, tag, idx))
				return r->index == IDX_ZERO ?
					refuse(err, errsz, "it lacks its %s section", r->name) :
					refuse(err, errsz, "it lacks its %s section %u", r->name, idx);
	}
	return 0;
}

/* Cut the body into sections; the first must be the machine's. */
static int split_sections(struct snap_state *st, uint32_t nsec, char *err, size_t errsz)
{
	size_t body_end = st->len - SNAP_SUM_LEN, off = SNAP_HEADER_LEN;
	st->sec = calloc(nsec, sizeof(*st->sec));
	if (!st->sec)
		return -ENOMEM;
	for (uint32_t i = 0; i < nsec; i++) {
		if (body_end - off < SNAP_SECTION_HDR)
			return refuse(err, errsz, "it is cut short in section %u", i);
		const uint8_t *h = st->buf + off;
		uint64_t len = get_u64(h + 8);
		off += SNAP_SECTION_HDR;
		if (len > body_end - off || SNAP_PAD(len) > body_end - off - len)
			return refuse(err, errsz, "its section %u is longer than the file", i);
		st->sec[i] = (struct snap_section){ .tag = get_u32(h), .index = get_u32(h + 4),
						    .data = st->buf + off, .len = (size_t)len };
		off += (size_t)len;
		for (size_t p = 0; p < SNAP_PAD(len); p++)
			if (st->buf[off++])
				return refuse(err, errsz, "its section %u is padded with non-zero bytes", i);
		st->nsec = i + 1;
		if (i == 0) {
			if (st->sec[0].tag != SNAP_MACHINE || st->sec[0].len != sizeof(struct snap_machine))
				return refuse(err, errsz, "it does not begin with its machine section");
			/* The buffer is malloc'd, the offset 32: aligned for it. */
			st->machine = (const struct snap_machine *)st->sec[0].data;
			int r = check_machine(st->machine, err, errsz);
			if (r < 0)
				return r;
		}
		int r = check_section(st, i, err, errsz);
		if (r < 0)
			return r;
	}
	if (off != body_end)
		return refuse(err, errsz, "it has %zu bytes after its last section", body_end - off);
	return 0;
}

int snap_parse(struct snap_state *st, uint8_t *buf, size_t len, char *err, size_t errsz)
{
	memset(st, 0, sizeof(*st));
	st->buf = buf;
	st->len = len;
	int r;
	if (len < SNAP_HEADER_LEN + SNAP_SUM_LEN || memcmp(buf, SNAP_MAGIC, 8))
		r = refuse(err, errsz, "it is not a kvmbox snapshot state file");
	else if (get_u32(buf + 8) != SNAP_FORMAT_VERSION)
		r = refuse(err, errsz, "its format version is %u; this kvmbox reads version %u",
			   get_u32(buf + 8), SNAP_FORMAT_VERSION);
	else if (len > SNAP_MAX_STATE)
		r = refuse(err, errsz, "it is larger than %u MiB", SNAP_MAX_STATE >> 20);
	else {
		uint8_t sum[SNAP_SUM_LEN];
		uint32_t nsec = get_u32(buf + 12);
		if ((r = sha256(buf, len - SNAP_SUM_LEN, sum)) < 0)
			snprintf(err, errsz, "cannot compute its checksum");
		else if (memcmp(sum, buf + len - SNAP_SUM_LEN, SNAP_SUM_LEN))
			r = refuse(err, errsz, "its checksum does not match (the file is damaged)");
		else if (nsec < 1 || nsec > SNAP_MAX_SECTIONS)
			r = refuse(err, errsz, "it has %u sections (1 to %u)", nsec, SNAP_MAX_SECTIONS);
		else if ((r = split_sections(st, nsec, err, errsz)) == 0)
			r = check_required(st, err, errsz);
		if (r == -ENOMEM)
			snprintf(err, errsz, "out of memory");
	}
	if (r < 0)
		snap_state_free(st);
	return r;
}

void snap_state_free(struct snap_state *st)
{
	free(st->buf);
	free(st->sec);
	memset(st, 0, sizeof(*st));
}

const struct snap_section *snap_find(const struct snap_state *st, uint32_t tag, uint32_t index)
{
	for (unsigned i = 0; i < st->nsec; i++)
		if (st->sec[i].tag == tag && st->sec[i].index == index)
			return &st->sec[i];
	return NULL;
}
