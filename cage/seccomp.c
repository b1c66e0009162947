/* cage/seccomp.c - building and installing the role filters (cage.h).
 *
 * cage_process() builds every filter with libseccomp once: the process
 * filter (the union of the roles' lists), loaded on every thread at once
 * with SECCOMP_FILTER_FLAG_TSYNC, and one program per role, exported as
 * BPF and kept.  cage_thread() then installs its role's program with one
 * seccomp(2) call, so a vCPU thread starts without building anything.
 *
 * Global state, on purpose: the mode and the role programs are written
 * once by cage_process() before the threads that read them start (or, for
 * the resolver, before it is woken for its first query); the SIGSYS
 * handler reaches the violation hook and each thread's role without any
 * argument, as a signal handler must.
 */
#include "cage/cage.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/harden.h"
#include "common/log.h"

static const char *const syscall_names[] = {
#include "cage/sysnames.h"
};

enum cage_mode { MODE_TRAP, MODE_LOG, MODE_OFF };

#define NROLES 3

static struct {
	enum cage_mode mode;
	void (*on_violation)(void);
	struct sock_fprog role_prog[NROLES];
	int ruleset_fd;		/* Landlock, for the resolver; -1: none */
	const char *main_name;	/* a thread with the process filter only */
	bool active;
} cage;

/* The role whose filter this thread installed (0: the process filter only). */
static __thread unsigned thread_role;

static unsigned role_index(enum cage_role role)
{
	return role == CAGE_VCPU ? 0 : role == CAGE_LOOP ? 1 : 2;
}

const char *cage_role_name(enum cage_role role)
{
	switch (role) {
	case CAGE_VCPU: return "vcpu";
	case CAGE_LOOP: return "loop";
	case CAGE_RESOLVER: return "resolver";
	case CAGE_BROKER: return "broker";
	}
	return cage.main_name ? cage.main_name : "main";	/* 0: the process filter only */
}

const char *cage_syscall_name(int nr)
{
	if (nr < 0 || (size_t)nr >= sizeof(syscall_names) / sizeof(syscall_names[0]))
		return NULL;
	return syscall_names[nr];
}

bool cage_active(void)
{
	return __atomic_load_n(&cage.active, __ATOMIC_ACQUIRE);
}

/* --- the SIGSYS handler: async-signal-safe only --- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long n)
{
	char digits[24];
	size_t k = 0;
	unsigned long u = n < 0 ? 0UL - (unsigned long)n : (unsigned long)n;
	do
		digits[k++] = (char)('0' + u % 10);
	while ((u /= 10) && k < sizeof(digits));
	if (n < 0 && at + 1 < cap)
		buf[at++] = '-';
	while (k && at + 1 < cap)
		buf[at++] = digits[--k];
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)sig;
	(void)uctx;
	char line[256];
	size_t n = 0;
	const char *name = cage_syscall_name(si->si_syscall);
	n = put(line, n, sizeof(line), "kvmbox: seccomp: the ");
	n = put(line, n, sizeof(line), cage_role_name(thread_role));
	n = put(line, n, sizeof(line), " thread called ");
	n = put(line, n, sizeof(line), name ? name : "system call");
	n = put(line, n, sizeof(line), " (");
	n = put_num(line, n, sizeof(line), si->si_syscall);
	n = put(line, n, sizeof(line), "), which its list in cage/syscalls.c does not allow; stopping\n");
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nothing more to do: the status says it */
	}
	if (cage.on_violation)
		cage.on_violation();
	syscall(SYS_exit_group, CAGE_EXIT_SYSCALL);
}

/* --- building the filters --- */

/* Whether rules[] has an unconditional allow of nr for a role in roles
 * (a conditional entry next to it would be a narrower duplicate). */
static bool allowed_outright(int nr, unsigned roles)
{
	for (size_t i = 0; i < cage_nrules; i++)
		if (cage_rules[i].nr == nr && (cage_rules[i].roles & roles) && cage_rules[i].cmp == CAGE_ANY)
			return true;
	return false;
}

static int add_rule(scmp_filter_ctx ctx, const struct cage_rule *r)
{
	struct scmp_arg_cmp c = { .arg = r->arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = r->mask,
				  .datum_b = r->value };
	switch (r->cmp) {
	case CAGE_ANY:
		return seccomp_rule_add_exact(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	case CAGE_ERRNO:
		return seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO((uint32_t)r->value), r->nr, 0);
	case CAGE_MASK_ZERO:
		c.datum_b = 0;
		/* fall through */
	case CAGE_EQ32:
	case CAGE_MASK_EQ:
		return seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, r->nr, 1, &c);
	}
	return -EINVAL;
}

/* A filter allowing what roles' lists allow: NULL after one error line. */
static scmp_filter_ctx build(unsigned roles)
{
	uint32_t dflt = cage.mode == MODE_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	scmp_filter_ctx ctx = seccomp_init(dflt);
	if (!ctx) {
		log_err("seccomp: cannot create a filter (libseccomp)");
		return NULL;
	}
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	for (size_t i = 0; r == 0 && i < cage_nrules; i++) {
		const struct cage_rule *rule = &cage_rules[i];
		if (!(rule->roles & roles))
			continue;
		if (rule->cmp != CAGE_ANY && allowed_outright(rule->nr, roles))
			continue;
		r = add_rule(ctx, rule);
		if (r == -EEXIST)
			r = 0;	/* the same entry for two roles */
		if (r < 0)
			log_err("seccomp: cannot add %s to the %s filter: %s",
				cage_syscall_name(rule->nr) ? cage_syscall_name(rule->nr) : "?",
				__builtin_popcount(roles) > 1 ? "process" : cage_role_name(roles), strerror(-r));
	}
	if (r < 0) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/* role's filter as a BPF program kept for cage_thread: 0 or -errno. */
static int export_role(enum cage_role role, struct sock_fprog *out)
{
	scmp_filter_ctx ctx = build(role);
	if (!ctx)
		return -EINVAL;
	int fd = memfd_create("kvmbox-seccomp", MFD_CLOEXEC);
	int r = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	off_t size = r == 0 ? lseek(fd, 0, SEEK_END) : -1;
	if (r == 0 && (size <= 0 || size % sizeof(struct sock_filter) ||
		       size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		r = -E2BIG;
	struct sock_filter *insns = r == 0 ? malloc((size_t)size) : NULL;
	if (r == 0 && !insns)
		r = -ENOMEM;
	if (r == 0 && pread(fd, insns, (size_t)size, 0) != size)
		r = -EIO;
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(insns);
		log_err("seccomp: cannot build the %s filter: %s", cage_role_name(role), strerror(-r));
		return r;
	}
	out->filter = insns;
	out->len = (unsigned short)(size / sizeof(struct sock_filter));
	return 0;
}

static int parse_mode(enum cage_mode *mode, char *why, size_t whysz)
{
	const char *v = getenv("KVMBOX_SECCOMP");
	if (!v || !*v || !strcmp(v, "on"))
		*mode = MODE_TRAP;
	else if (!strcmp(v, "log"))
		*mode = MODE_LOG;
	else if (!strcmp(v, "off"))
		*mode = MODE_OFF;
	else {
		snprintf(why, whysz, "KVMBOX_SECCOMP=%.40s: expected on, log or off", v);
		return -EINVAL;
	}
	return 0;
}

static int unblock_sigsys(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGSYS);
	return -pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

/* Sanitizer builds (the tests' kvmbox) only, so a test can watch a real
 * VM meet what a compromised device would (tests/guests/vmm_run.sh):
 * KVMBOX_FAULT_SECCOMP=ROLE makes that role's thread, once caged, call
 * acct(2), which no list allows ("main": the main thread, after the
 * process filter; "broker": a broker's or kvmbox proxy's, likewise);
 * KVMBOX_FAULT_OPEN=PATH makes the loop thread open PATH
 * for reading and log what happened. */
static void fault_inject(enum cage_role role)
{
#if defined(KVMBOX_FAULT_INJECTION)
	const char *want = getenv("KVMBOX_FAULT_SECCOMP");
	if (want && !strcmp(want, cage_role_name(role)))
		syscall(SYS_acct, NULL);
	const char *path = getenv("KVMBOX_FAULT_OPEN");
	if (path && role == CAGE_LOOP) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		log_warn("fault injection: the loop thread opening %s: %s", path,
			 fd >= 0 ? "opened" : strerror(errno));
		if (fd >= 0)
			close(fd);
	}
#else
	(void)role;
#endif
}

int cage_process(const struct cage_config *cfg, char *why, size_t whysz)
{
	if (cage_active())
		return 0;
	int r = parse_mode(&cage.mode, why, whysz);
	if (r < 0)
		return r;
	if (cage.mode == MODE_OFF) {
		log_warn("KVMBOX_SECCOMP=off: the VM runs without its seccomp filters and Landlock");
		return 0;
	}
	if ((r = harden_drop_capabilities(why, whysz)) < 0)
		return r;
	if ((r = cage_landlock_build(cfg->paths, cfg->npaths, &cage.ruleset_fd, why, whysz)) < 0)
		return r;
	if ((r = cage_landlock_enter(cage.ruleset_fd)) < 0) {
		snprintf(why, whysz, "Landlock: cannot restrict the process: %s", strerror(-r));
		return r;
	}
	snprintf(why, whysz, "the seccomp filters cannot be installed (the line above says why)");
	cage.on_violation = cfg->on_violation;
	static const enum cage_role thread_roles[NROLES] = { CAGE_VCPU, CAGE_LOOP, CAGE_RESOLVER };
	for (unsigned i = 0; i < NROLES; i++)
		if ((r = export_role(thread_roles[i], &cage.role_prog[i])) < 0)
			return r;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || (r = unblock_sigsys()) < 0) {
		r = r < 0 ? r : -errno;
		log_err("seccomp: cannot install the SIGSYS handler: %s", strerror(-r));
		return r;
	}
	unsigned roles = cfg->roles ? cfg->roles : CAGE_VM_ROLES;
	cage.main_name = roles & CAGE_BROKER ? "broker" : "main";
	scmp_filter_ctx ctx = build(roles);
	if (!ctx)
		return -EINVAL;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r != 0) {
		/* > 0: a thread that could not be synchronized (it has a
		 * filter of its own already) */
		log_err("seccomp: cannot install the process filter: %s",
			r < 0 ? strerror(-r) : "a thread has a filter of its own");
		return r < 0 ? r : -EBUSY;
	}
	__atomic_store_n(&cage.active, true, __ATOMIC_RELEASE);
	fault_inject(0);
	return 0;
}

int cage_thread(enum cage_role role)
{
	if (!cage_active() || thread_role)
		return 0;
	int r = unblock_sigsys();
	/* Threads started before cage_process did not inherit the ruleset. */
	if (r == 0 && role == CAGE_RESOLVER)
		r = cage_landlock_enter(cage.ruleset_fd);
	const struct sock_fprog *prog = &cage.role_prog[role_index(role)];
	if (r == 0 && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
		r = -errno;
	if (r < 0) {
		log_err("seccomp: cannot install the %s filter: %s", cage_role_name(role), strerror(-r));
		return r;
	}
	thread_role = role;
	fault_inject(role);
	return 0;
}
