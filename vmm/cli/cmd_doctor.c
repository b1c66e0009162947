/* vmm/cli/cmd_doctor.c - `kvmbox doctor`: can this host run kvmbox guests?
 *
 * Checks, each on one line with ok / missing / the exact fix:
 *   /dev/kvm present and openable read-write (else: the modprobe, or the
 *   kvm group and re-login), the KVM API version, every capability kvmbox
 *   requires (vm_required_caps), a guest kernel ($KVMBOX_KERNEL or
 *   ~/.cache/kvmbox/kernel/<version>/vmlinux), and whether KVM runs guest
 *   ring 0 natively: it times a short CPL-0 loop in a scratch VM.  On VT-x
 *   or AMD-V an iteration takes about a nanosecond; a KVM that emulates
 *   ring 0 (kvm_pvm on a cloud VM without nested virtualization) takes
 *   microseconds, and a Linux guest cannot boot at a usable speed there.
 *   Then the libraries kvmbox opens on first use (OpenSSL, json-c, libcurl,
 *   libarchive): each must open, else the commands that need them fail.
 * Exit 0 when everything needed to run a guest is in place, 1 when not.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dl.h"
#include "common/util.h"
#include "guest/image/image.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/guest_files.h"
#include "vmm/vmm.h"

#define SCRATCH_MEM (64 * 1024)
#define SCRATCH_CODE 0x1000
#define SCRATCH_DONE_PORT 0xf0
#define EMULATED_NS_PER_ITER 50.0	/* hardware: ~0.3-1 ns; emulation: ~1000s */

static void line(const char *status, const char *what)
{
	printf("%-8s %s\n", status, what);
}

/* /dev/kvm: present, permissions, and the fix when it cannot be opened. */
static int check_dev_kvm(void)
{
	struct stat st;
	if (stat("/dev/kvm", &st) < 0) {
		line("missing", "/dev/kvm does not exist");
		printf("         fix: enable VT-x/AMD-V in the firmware, then `sudo modprobe kvm_intel` "
		       "(Intel) or `sudo modprobe kvm_amd` (AMD)\n");
		return -1;
	}
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		char msg[160];
		snprintf(msg, sizeof(msg), "/dev/kvm cannot be opened read-write: %s", strerror(e));
		line("error", msg);
		if (e == EACCES || e == EPERM) {
			struct group *g = getgrgid(st.st_gid);
			if (g && strcmp(g->gr_name, "root"))
				printf("         fix: sudo usermod -aG %s $USER, then log out and in again\n",
				       g->gr_name);
			else
				printf("         fix: sudo groupadd -f kvm && sudo chgrp kvm /dev/kvm && "
				       "sudo chmod 660 /dev/kvm && sudo usermod -aG kvm $USER, then log "
				       "out and in again\n");
		}
		return -1;
	}
	line("ok", "/dev/kvm is readable and writable");
	return fd;
}

static bool check_api_and_caps(int kvm)
{
	bool good = true;
	char msg[160];
	int v = ioctl(kvm, KVM_GET_API_VERSION, 0);
	snprintf(msg, sizeof(msg), "KVM API version %d (kvmbox needs %d)", v, KVM_API_VERSION);
	line(v == KVM_API_VERSION ? "ok" : "error", msg);
	good &= v == KVM_API_VERSION;
	for (const struct vm_cap *c = vm_required_caps; c->name; c++) {
		bool have = ioctl(kvm, KVM_CHECK_EXTENSION, c->cap) > 0;
		snprintf(msg, sizeof(msg), "capability %s", c->name);
		line(have ? "ok" : "missing", msg);
		good &= have;
	}
	int maxv = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	snprintf(msg, sizeof(msg), "up to %d vCPUs per VM", maxv > 0 ? maxv : 4);
	line("info", msg);
	return good;
}

/* The value after flag in the argv guest_files_resolve built, or NULL. */
static const char *flag_value(const struct guest_files *gf, const char *flag)
{
	for (int i = 1; i + 1 < gf->argc; i++)
		if (!strcmp(gf->argv[i], flag))
			return gf->argv[i + 1];
	return NULL;
}

/* The kernel and initrd `kvmbox run` and `shell` would boot (guest_files.h). */
static bool check_kernel(void)
{
	struct guest_files gf;
	char *argv[] = { (char *)"doctor", NULL };
	char msg[PATH_MAX * 2 + 300], err[PATH_MAX * 2 + 200];
	bool ok = guest_files_resolve(&gf, 1, argv, err, sizeof(err)) == 0;
	const char *k = ok ? flag_value(&gf, "--kernel") : NULL, *i = flag_value(&gf, "--initrd");
	ok = k && access(k, R_OK) == 0;
	if (ok)
		snprintf(msg, sizeof(msg), "guest kernel %s, initrd %s", k, i ? i : "(none)");
	else
		snprintf(msg, sizeof(msg), "%s", k ? "guest kernel is not readable" : err);
	guest_files_free(&gf);
	line(ok ? "ok" : "missing", msg);
	if (!ok)
		printf("         fix: `make kernel initrd`, or point $KVMBOX_KERNEL at a vmlinux\n");
	return ok;
}

/* One library kvmbox opens on first use: its line, and the fix when it
 * does not open (with pkg: the apt-get line; else: the package that
 * provides it). */
static bool check_library(const char *so, const char *use, const char *pkg)
{
	char msg[PATH_MAX + 300], why[PATH_MAX];
	bool ok = dl_probe(so, why, sizeof(why)) == 0;
	snprintf(msg, sizeof(msg), "%s %s (%s)", so, ok ? "opens" : "cannot be opened", use);
	line(ok ? "ok" : "missing", msg);
	if (!ok && pkg)
		printf("         %s\n         fix: `apt-get install %s`\n", why, pkg);
	else if (!ok)
		printf("         %s\n         fix: install the package that provides %s (`make deps`)\n", why, so);
	return ok;
}

/* The libraries kvmbox opens when a command first needs them (common/dl.h):
 * each must open, or that command fails with one line. */
static bool check_libraries(void)
{
	bool good = true;
	for (size_t i = 0; dl_lazy_libs[i]; i++)
		good &= check_library(dl_lazy_libs[i]->soname, "the TLS proxy, agents, images", NULL);
	good &= check_library(image_curl_lib.soname, "kvmbox pull, setup", image_curl_lib.pkg);
	good &= check_library(image_archive_lib.soname, "kvmbox pull, setup", image_archive_lib.pkg);
	return good;
}

/* Run the scratch vCPU once: the loop of @iters iterations, then an OUT.
 * Returns the wall time of KVM_RUN in ns, or 0 on failure. */
static uint64_t time_cpl0_loop(int vcpu, struct kvm_run *run, uint8_t *mem, uint32_t iters)
{
	static const uint8_t code[] = {
		0xb9, 0, 0, 0, 0,	/* mov $iters, %ecx */
		0x49,			/* 1: dec %ecx */
		0x75, 0xfd,		/* jnz 1b */
		0xe6, SCRATCH_DONE_PORT,/* out %al, $0xf0 */
		0xf4,			/* hlt */
	};
	memcpy(mem + SCRATCH_CODE, code, sizeof(code));
	memcpy(mem + SCRATCH_CODE + 1, &iters, 4);
	struct kvm_sregs s;
	if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
		return 0;
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb,
				  .present = 1, .db = 1, .s = 1, .g = 1 };
	struct kvm_segment ds = cs;
	ds.selector = 0x10;
	ds.type = 0x3;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.cr0 = 0x11;		/* protected mode, paging off: CPL 0 */
	s.cr4 = 0;
	s.efer = 0;
	struct kvm_regs r = { .rip = SCRATCH_CODE, .rflags = 0x2, .rsp = SCRATCH_MEM - 16 };
	if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0 || ioctl(vcpu, KVM_SET_REGS, &r) < 0)
		return 0;
	uint64_t t0 = now_ns();
	for (int n = 0; n < 1000; n++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == SCRATCH_DONE_PORT)
			return now_ns() - t0;
		if (run->exit_reason != KVM_EXIT_INTR)
			return 0;
	}
	return 0;
}

/* ns per iteration of a 2-instruction loop at CPL 0, or < 0 on failure. */
static double measure_cpl0(int kvm)
{
	double result = -1;
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return -1;
	uint8_t *mem = mmap(NULL, SCRATCH_MEM, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	int vcpu = -1;
	struct kvm_run *run = MAP_FAILED;
	int msize = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mem == MAP_FAILED || msize <= 0)
		goto out;
	struct kvm_userspace_memory_region m = { .slot = 0, .guest_phys_addr = 0,
		.memory_size = SCRATCH_MEM, .userspace_addr = (uint64_t)(uintptr_t)mem };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &m) < 0 ||
	    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		goto out;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		goto out;
	run = mmap(NULL, (size_t)msize, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		goto out;
	/* Difference of two loop lengths cancels the entry/exit cost; if the
	 * difference is too quick to measure, the host is fast: go longer. */
	uint32_t small = 1000, big = 21000;
	uint64_t ts = time_cpl0_loop(vcpu, run, mem, small);
	uint64_t tb = time_cpl0_loop(vcpu, run, mem, big);
	if (ts && tb && tb < ts + 2000000) {
		big = 50000000;
		tb = time_cpl0_loop(vcpu, run, mem, big);
	}
	if (ts && tb)
		result = tb > ts ? (double)(tb - ts) / (double)(big - small) : 0.0;
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)msize);
	if (vcpu >= 0)
		close(vcpu);
	if (mem != MAP_FAILED)
		munmap(mem, SCRATCH_MEM);
	close(vm);
	return result;
}

static bool check_cpl0_speed(int kvm)
{
	double ns = measure_cpl0(kvm);
	char msg[200];
	if (ns < 0) {
		line("error", "could not run the ring-0 timing loop in a scratch VM");
		return false;
	}
	if (ns < EMULATED_NS_PER_ITER) {
		snprintf(msg, sizeof(msg), "guest ring 0 runs natively (%.2f ns per loop iteration)", ns);
		line("ok", msg);
		return true;
	}
	snprintf(msg, sizeof(msg), "this KVM emulates guest ring 0 (%.0f ns per loop iteration; "
		 "VT-x/AMD-V takes about 1 ns)", ns);
	line("slow", msg);
	printf("         meaning: there is no hardware virtualization under this KVM (e.g. kvm_pvm in a "
	       "cloud VM), so a Linux guest will not boot at a usable speed here.\n"
	       "         fix: run kvmbox on a host with VT-x/AMD-V (bare metal, or a VM with nested "
	       "virtualization); kvmbox's own tests use a nested QEMU harness on such machines.\n");
	return false;
}

int cmd_doctor(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
			printf("usage: kvmbox doctor\n\nCheck /dev/kvm, KVM capabilities, the guest "
			       "kernel and whether guest ring 0 runs natively.\n");
			return 0;
		}
		fprintf(stderr, "kvmbox: doctor: unexpected argument '%.64s'\n", argv[1]);
		return EXIT_USAGE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bool good = true;
	int kvm = check_dev_kvm();
	if (kvm >= 0) {
		good &= check_api_and_caps(kvm);
		good &= check_cpl0_speed(kvm);
		close(kvm);
	} else {
		good = false;
	}
	good &= check_kernel();
	good &= check_libraries();
	printf("%s\n", good ? "kvmbox can run guests on this host." :
	       "kvmbox cannot run guests on this host yet (see above).");
	return good ? 0 : 1;
}
