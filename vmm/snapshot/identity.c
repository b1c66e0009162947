/* vmm/snapshot/identity.c - what a snapshot's state belongs to: the kvmbox
 * build that wrote it (its ELF build id: device state is in that build's
 * layout) and the host CPU (vCPU state is that CPU's).  A restore elsewhere
 * is refused in one line rather than started and found broken in the guest.
 */
#include "vmm/snapshot/snapshot.h"

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

struct build_id_search {
	char *out;
	size_t outsz;
};

/* dl_iterate_phdr callback: the main program comes first; its
 * NT_GNU_BUILD_ID note in hex. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *opaque)
{
	(void)size;
	struct build_id_search *s = opaque;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		const uint8_t *end = p + ph->p_memsz;
		while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
			const uint8_t *d = p + sizeof(*n) + name;
			if ((size_t)(end - p) < sizeof(*n) + name + desc)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(p + sizeof(*n), "GNU", 4)) {
				size_t o = 0;
				for (unsigned k = 0; k < n->n_descsz && o + 3 <= s->outsz; k++)
					o += (size_t)snprintf(s->out + o, s->outsz - o, "%02x", d[k]);
				return 1;
			}
			p = d + desc;
		}
	}
	return 1;	/* only the main program */
}

void snap_kvmbox_build(char *out, size_t outsz)
{
	if (!outsz)
		return;
	out[0] = '\0';
	struct build_id_search s = { out, outsz };
	dl_iterate_phdr(find_build_id, &s);
}

void snap_host_vendor(char vendor[13])
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	memset(vendor, 0, 13);
	if (__get_cpuid(0, &a, &b, &c, &d)) {
		memcpy(vendor, &b, 4);
		memcpy(vendor + 4, &d, 4);
		memcpy(vendor + 8, &c, 4);
	}
}

void snap_host_cpu(char *out, size_t outsz)
{
	unsigned a = 0, b = 0, c = 0, d = 0;
	char vendor[13];
	char brand[49] = "";
	snap_host_vendor(vendor);
	unsigned sig = __get_cpuid(1, &a, &b, &c, &d) ? a : 0;
	unsigned family = (sig >> 8) & 0xf, model = (sig >> 4) & 0xf;
	if (family == 0xf)
		family += (sig >> 20) & 0xff;
	if (family >= 6)
		model |= ((sig >> 16) & 0xf) << 4;
	if ((unsigned)__get_cpuid_max(0x80000000, NULL) >= 0x80000004u)
		for (unsigned i = 0; i < 3; i++) {
			__get_cpuid(0x80000002 + i, &a, &b, &c, &d);
			unsigned r[4] = { a, b, c, d };
			memcpy(brand + 16 * i, r, 16);
		}
	const char *bp = brand;
	while (*bp == ' ')
		bp++;
	snprintf(out, outsz, "%s %u/%u/%u %s", vendor, family, model, sig & 0xf, bp);
}

int snap_check_identity(const struct snap_machine *m, char *err, size_t errsz)
{
	char build[sizeof(m->kvmbox_build)], cpu[sizeof(m->host_cpu)];
	snap_kvmbox_build(build, sizeof(build));
	snap_host_cpu(cpu, sizeof(cpu));
	if (strcmp(m->kvmbox_build, build)) {
		snprintf(err, errsz, "it was saved by another kvmbox build (%.12s, this is %.12s)",
			 m->kvmbox_build[0] ? m->kvmbox_build : "none", build[0] ? build : "none");
		return -EINVAL;
	}
	if (strcmp(m->host_cpu, cpu)) {
		snprintf(err, errsz, "it was saved on another CPU (%s; this is %s)", m->host_cpu, cpu);
		return -EINVAL;
	}
	return 0;
}
