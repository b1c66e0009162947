/* cage/cage.h - the VMM in a cage: seccomp filters per thread role.
 *
 * Everything a hostile guest sends (virtqueues, frames, FUSE and 9P
 * messages, HTTP through the proxy) is parsed in the kvmbox process, so a
 * memory-safety bug in a device must not be able to reach the rest of the
 * user's system through arbitrary system calls.  Once a VM is set up, and
 * before its first guest instruction, vm_run() installs a seccomp filter
 * on the whole process (every thread, SECCOMP_FILTER_FLAG_TSYNC): the
 * union of what its threads do from then on, and nothing else: no exec,
 * no fork, no ptrace, no new namespaces, no mounts, no bpf, no ioctl
 * outside a list of request numbers.  Each thread then narrows its own
 * calls to its role's list with a second filter (filters stack; the
 * kernel applies all of them):
 *
 *   vcpu      KVM_RUN and its register reads, and the device exits'
 *             writes; never opens a file or a socket.
 *   loop      the event-loop thread and the main thread (which runs the
 *             loop at teardown): the devices, the file server, the
 *             network stack and the TLS proxy.
 *   resolver  the DNS worker's getaddrinfo.
 *
 * The lists, one entry per system call with a comment saying who needs
 * it, are in cage/syscalls.c.  A call outside its thread's list is not
 * executed: the thread gets SIGSYS (SECCOMP_RET_TRAP, as Firecracker's
 * filters do), whose handler writes one line naming the role and the
 * call, restores the terminal and ends the process with status 159
 * (128 + SIGSYS, what a shell shows for a process killed by SIGSYS).
 * Handling SIGSYS gains an attacker nothing: the call was refused before
 * the handler ran.
 *
 * KVMBOX_SECCOMP=log installs the same filters with SECCOMP_RET_LOG as
 * the default action (calls outside the lists run and the kernel's audit
 * log names them: how a missing entry is found); KVMBOX_SECCOMP=off
 * installs none, with a warning at every launch.  Any other value is
 * refused.
 */
#ifndef KVMBOX_CAGE_CAGE_H
#define KVMBOX_CAGE_CAGE_H

#include <stdbool.h>
#include <stddef.h>

enum cage_role {
	CAGE_VCPU = 1u << 0,
	CAGE_LOOP = 1u << 1,
	CAGE_RESOLVER = 1u << 2,
	/* Not a thread's: what the credential broker (broker/broker.h) and
	 * kvmbox proxy need beside the loop's and the resolver's lists
	 * (reaping the VMM, passing signals on). */
	CAGE_BROKER = 1u << 3,
};
#define CAGE_ALL_ROLES (CAGE_VCPU | CAGE_LOOP | CAGE_RESOLVER | CAGE_BROKER)
/* A VM's process filter, and the broker's (which has no vCPU thread and
 * no thread filters: one thread runs its loop and resolves names). */
#define CAGE_VM_ROLES (CAGE_VCPU | CAGE_LOOP | CAGE_RESOLVER)
#define CAGE_BROKER_ROLES (CAGE_LOOP | CAGE_RESOLVER | CAGE_BROKER)

/* The status a caged process ends with when a thread makes a call its
 * role does not allow. */
#define CAGE_EXIT_SYSCALL 159

/* A path the caged VM may still open (cage/landlock.c). */
enum cage_access {
	CAGE_READ,		/* read beneath it */
	CAGE_WRITE,		/* read, write, create, remove, rename beneath it */
	CAGE_REMOVE_SELF,	/* remove the (emptied) folder itself: the right to
				 * remove empty folders beside it, in its parent */
};

struct cage_path {
	const char *path;
	enum cage_access access;
};

struct cage_config {
	/* Called by the SIGSYS handler before the process ends, or NULL
	 * (async-signal-safe work only, such as restoring the terminal). */
	void (*on_violation)(void);
	/* Beside the system's read-only folders and OpenSSL's CA file and
	 * folder (cage/landlock.c), what the process opens once caged: a
	 * VM's shares, image, state and launch folders, the login file's
	 * folder where rotated tokens are written. */
	const struct cage_path *paths;
	size_t npaths;
	/* The roles whose lists make the process filter: 0 for a VM's
	 * (CAGE_VM_ROLES), CAGE_BROKER_ROLES for a process holding secrets. */
	unsigned roles;
};

/* Enter the cage on the main thread, before the VM's threads start: the
 * Landlock ruleset (where the kernel has Landlock; a warning where not),
 * then the process filter on every thread (the union of cfg->roles' lists,
 * SECCOMP_FILTER_FLAG_TSYNC) and the SIGSYS handler.  0, or -errno with
 * the reason in why (the VM must not start; a failure inside libseccomp
 * or the kernel also logs a line with the details).  0 without doing
 * anything under KVMBOX_SECCOMP=off. */
int cage_process(const struct cage_config *cfg, char *why, size_t whysz);

/* Narrow the calling thread to role's list (and, for the resolver, which
 * starts before cage_process, enter the Landlock ruleset): 0, or -errno
 * after one error line.  Does nothing (0) before cage_process() has
 * installed the process filter, or when it already ran on this thread, so
 * threads that also run outside a caged VM (unit tests, the resolver of a
 * stack without VM) may call it unconditionally. */
int cage_thread(enum cage_role role);

/* Whether the process filter is installed. */
bool cage_active(void);

/* The role's name as the handler prints it ("vcpu"...). */
const char *cage_role_name(enum cage_role role);

/* --- Landlock (cage/landlock.c) --- */

/* A ruleset for the system's read-only folders and paths[]: 0 with the
 * ruleset in *ruleset_fd, or *ruleset_fd -1 after a warning where the
 * kernel has no Landlock; -errno with the reason in why. */
int cage_landlock_build(const struct cage_path *paths, size_t n, int *ruleset_fd, char *why,
			size_t whysz);
/* Restrict the calling thread (and threads it starts later) to the
 * ruleset; 0 for ruleset_fd -1.  0 or -errno. */
int cage_landlock_enter(int ruleset_fd);

/* --- the lists (cage/syscalls.c) --- */

enum cage_cmp { CAGE_ANY, CAGE_EQ32, CAGE_MASK_EQ, CAGE_MASK_ZERO, CAGE_ERRNO };

struct cage_rule {
	int nr;			/* system call number (x86-64) */
	unsigned roles;		/* enum cage_role bits */
	enum cage_cmp cmp;	/* CAGE_ANY: any arguments */
	unsigned arg;		/* which argument cmp tests */
	unsigned long long mask, value;	/* EQ32: arg's low 32 bits == value;
					 * MASK_EQ: (arg & mask) == value;
					 * MASK_ZERO: (arg & mask) == 0;
					 * ERRNO: fail with errno value, no test */
};

extern const struct cage_rule cage_rules[];
extern const size_t cage_nrules;

/* The name of system call nr, or NULL (generated from the kernel's
 * headers at build time). */
const char *cage_syscall_name(int nr);

#endif
