/* cage/syscalls.c - what each thread role of a running VM may call (see
 * cage/cage.h for the roles and what happens to any other call).
 *
 * One entry per system call and condition, with who needs it.  Roles:
 * V the vCPU threads, L the event-loop and main threads, R the DNS
 * resolver; B what the credential broker (broker/broker.h) and kvmbox
 * proxy need beside L and R, whose lists make their process filter.  A call listed for no role is refused in every thread; one
 * listed with a condition is refused when the condition fails (several
 * entries for one call: any may match).  Calls are x86-64's; libseccomp
 * refuses every other ABI (i386's int 0x80, x32) outright.
 *
 * Adding an entry: run the failing case with KVMBOX_SECCOMP=log, read the
 * call from the kernel log (`dmesg | grep 'type=1326'`, syscall=N), and
 * add the narrowest entry that says why.  Setup (before vm_run) is not
 * filtered: opening /dev/kvm, the images and the kernel, creating the VM
 * and its threads' first steps happen before the filters are installed.
 */
#include "cage/cage.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>

#define V CAGE_VCPU
#define L CAGE_LOOP
#define R CAGE_RESOLVER
#define B CAGE_BROKER
#define ALL CAGE_ALL_ROLES

#define ANY(name, roles) { SYS_##name, roles, CAGE_ANY, 0, 0, 0 }
/* argument arg, as the kernel reads an int or unsigned int, equals value */
#define EQ32(name, roles, arg, value) { SYS_##name, roles, CAGE_EQ32, arg, 0xffffffffull, value }
#define MASK_EQ(name, roles, arg, mask, value) { SYS_##name, roles, CAGE_MASK_EQ, arg, mask, value }
#define MASK_ZERO(name, roles, arg, mask) { SYS_##name, roles, CAGE_MASK_ZERO, arg, mask, 0 }
#define FAIL(name, roles, err) { SYS_##name, roles, CAGE_ERRNO, 0, 0, err }

const struct cage_rule cage_rules[] = {
	/* --- every thread --- */
	ANY(read, ALL),			/* eventfds, files, sockets, the terminal */
	ANY(write, ALL),		/* log lines; vCPU: serial output, loop kicks */
	ANY(futex, ALL),		/* mutexes, condition variables, joins */
	ANY(rt_sigreturn, ALL),		/* end of a handler (the vCPU kick) */
	ANY(rt_sigprocmask, ALL),	/* pthread_sigmask */
	ANY(sigaltstack, ALL),		/* sanitizers' per-thread stacks, at thread exit */
	ANY(exit, ALL),			/* a thread ends */
	ANY(exit_group, ALL),		/* the process ends (also the SIGSYS handler) */
	ANY(clock_gettime, ALL),	/* vDSO fallback */
	ANY(gettimeofday, ALL),		/* vDSO fallback */
	ANY(getpid, ALL),		/* pthread_kill's tgkill */
	ANY(gettid, ALL),		/* log lines, pthread_kill */
	ANY(tgkill, ALL),		/* vm_stop wakes the main thread; kicks of vCPUs */
	ANY(munmap, ALL),		/* malloc, thread stacks */
	ANY(madvise, ALL),		/* malloc trims, a thread's stack at exit */
	ANY(brk, ALL),			/* malloc */
	ANY(mremap, ALL),		/* realloc of large blocks */
	ANY(sched_yield, ALL),		/* lock back-off */
	ANY(restart_syscall, ALL),	/* a wait interrupted by a signal */
	MASK_ZERO(mmap, V, 2, PROT_EXEC),	/* malloc arenas; never executable */
	MASK_ZERO(mprotect, V, 2, PROT_EXEC),	/* malloc arenas; never executable */
	ANY(mmap, L | R),		/* dlopen: OpenSSL on the first TLS flow, NSS modules */
	ANY(mprotect, L | R),		/* dlopen's relocations */
	EQ32(ioctl, ALL, 1, TCSETSF),	/* the SIGSYS handler restores the terminal */
	ANY(seccomp, ALL),		/* each thread installs its role's filter (only narrows) */
	EQ32(prctl, V | L, 0, PR_SET_NAME),	/* pthread_setname_np at thread start */
	EQ32(prctl, R, 0, PR_SET_NO_NEW_PRIVS),	/* the resolver enters Landlock late */
	ANY(landlock_restrict_self, R),		/* likewise (it only narrows) */
	ANY(rseq, V | L),		/* glibc registers each new thread */
	ANY(set_robust_list, V | L),	/* each new thread */

	/* --- vCPU threads --- */
	EQ32(ioctl, V, 1, KVM_RUN),
	EQ32(ioctl, V | L, 1, KVM_GET_MP_STATE),	/* the dead-halt probe; a snapshot (below) */
	EQ32(ioctl, V | L, 1, KVM_GET_REGS),	/* the dead-halt probe, a debug dump; a snapshot */
	EQ32(ioctl, V | L, 1, KVM_GET_SREGS),	/* a debug dump; a snapshot */
	EQ32(ioctl, V | L, 1, KVM_IRQ_LINE),	/* legacy devices' lines (the UART on a vCPU's write) */
	ANY(close, V),			/* a guest's device reset, on the vCPU that wrote the
					 * status, ends a file server session (its files) */

	/* --- the main thread saving a snapshot (vmm/snapshot/), the vCPUs
	 * stopped: reads of KVM's state only (MP state, registers and special
	 * registers are the vCPUs' entries above) --- */
	EQ32(ioctl, L, 1, KVM_CHECK_EXTENSION),
	EQ32(ioctl, L, 1, KVM_GET_MSR_INDEX_LIST),
	EQ32(ioctl, L, 1, KVM_GET_CLOCK),
	EQ32(ioctl, L, 1, KVM_GET_PIT2),
	EQ32(ioctl, L, 1, KVM_GET_IRQCHIP),
	EQ32(ioctl, L, 1, KVM_GET_XSAVE),
	EQ32(ioctl, L, 1, KVM_GET_XSAVE2),
	EQ32(ioctl, L, 1, KVM_GET_XCRS),
	EQ32(ioctl, L, 1, KVM_GET_DEBUGREGS),
	EQ32(ioctl, L, 1, KVM_GET_LAPIC),
	EQ32(ioctl, L, 1, KVM_GET_TSC_KHZ),
	EQ32(ioctl, L, 1, KVM_GET_CPUID2),
	EQ32(ioctl, L, 1, KVM_GET_MSRS),
	EQ32(ioctl, L, 1, KVM_GET_VCPU_EVENTS),

	/* --- the event loop and main thread --- */
	MASK_EQ(clone, L, 0, CLONE_THREAD, CLONE_THREAD),	/* vm_run starts its threads; never a process */
	FAIL(clone3, L, 38 /* ENOSYS */),	/* its flags sit in memory seccomp cannot read: glibc falls back to clone */
	EQ32(ioctl, L, 1, KVM_IOEVENTFD),	/* a virtio device goes live or is reset */
	EQ32(ioctl, L, 1, KVM_IRQFD),		/* likewise */
	EQ32(ioctl, L, 1, TCGETS),		/* isatty, raw mode */
	EQ32(ioctl, L, 1, TCSETS),		/* raw mode */
	EQ32(ioctl, L, 1, TCSETSW),		/* raw mode */
	EQ32(ioctl, L, 1, TIOCGWINSZ),		/* the console follows the terminal's size */
	EQ32(ioctl, L | R, 1, FIONREAD),	/* the resolver sizes a reply */
	ANY(rt_sigaction, L),		/* terminal handlers */
	ANY(rt_sigtimedwait, L),	/* the main thread waits for stop signals */
	ANY(io_uring_enter, L),		/* the event loop; its ring takes only the operations
					 * common/loop.c lists, and no new ring can be made */
	ANY(eventfd2, L),		/* device notifications */
	ANY(poll, L | R),		/* the resolver waits for replies */
	ANY(ppoll, L | R),
	ANY(nanosleep, L),		/* waiting for another launch's token refresh */
	ANY(clock_nanosleep, L),
	ANY(getrandom, V | L | R),	/* OpenSSL, resolver query ids; a vCPU answering the guest's entropy read */
	ANY(uname, L | R),		/* OpenSSL, the resolver */
	ANY(getuid, L | R),		/* the file server, OpenSSL */
	ANY(geteuid, L | R),
	ANY(getgid, L | R),
	ANY(getegid, L | R),
	ANY(getrusage, L),		/* peak RSS in the exit profile */
	ANY(mincore, L),		/* guest RAM resident, in the exit profile */
	/* files: the file server (virtio-fs, 9P), the state and launch folders,
	 * written-back tokens, dlopen, OpenSSL's configuration and CA store */
	ANY(openat, L | R),
	ANY(openat2, L),		/* the file server resolves beneath a share's root */
	ANY(close, L | R),
	ANY(fstat, L | R),
	ANY(newfstatat, L | R),
	ANY(statx, L),
	ANY(lseek, L | R),
	ANY(pread64, L | R),		/* dlopen */
	ANY(pwrite64, L),
	ANY(readv, L),
	ANY(writev, L),
	ANY(preadv, L),
	ANY(pwritev, L),
	ANY(preadv2, L),
	ANY(pwritev2, L),
	ANY(fcntl, L | R),
	ANY(dup, L),
	ANY(dup2, L),
	ANY(dup3, L),
	ANY(getdents64, L),
	ANY(readlink, L),
	ANY(readlinkat, L),
	ANY(access, L | R),
	ANY(faccessat, L),
	ANY(faccessat2, L),
	ANY(mkdir, L),
	ANY(mkdirat, L),
	ANY(mknodat, L),
	ANY(rmdir, L),
	ANY(unlink, L),
	ANY(unlinkat, L),
	ANY(rename, L),
	ANY(renameat, L),
	ANY(renameat2, L),
	ANY(linkat, L),
	ANY(symlinkat, L),
	ANY(fchmod, L),
	ANY(chmod, L),			/* the file server, through /proc/self/fd of an O_PATH file */
	ANY(truncate, L),		/* likewise */
	ANY(fchmodat, L),
	ANY(fchown, L),
	ANY(fchownat, L),
	ANY(utimensat, L),
	ANY(ftruncate, L),
	ANY(fallocate, L),
	ANY(fsync, L),
	ANY(fdatasync, L),
	ANY(syncfs, L),
	ANY(flock, L),			/* the token-refresh lock */
	ANY(copy_file_range, L),
	ANY(statfs, L),
	ANY(fstatfs, L),
	ANY(getxattr, L),
	ANY(lgetxattr, L),
	ANY(fgetxattr, L),
	ANY(setxattr, L),
	ANY(lsetxattr, L),
	ANY(fsetxattr, L),
	ANY(listxattr, L),
	ANY(llistxattr, L),
	ANY(flistxattr, L),
	ANY(removexattr, L),
	ANY(lremovexattr, L),
	ANY(fremovexattr, L),
	/* sockets: the network stack's flows, the proxy's upstreams, published
	 * ports; the resolver's queries (netlink for AI_ADDRCONFIG, a unix
	 * socket for nscd) */
	EQ32(socket, L | R, 0, AF_INET),
	EQ32(socket, L | R, 0, AF_INET6),
	EQ32(socket, R, 0, AF_NETLINK),
	EQ32(socket, R, 0, AF_UNIX),
	EQ32(socketpair, L, 0, AF_UNIX),	/* a guest flow handed to the broker */
	ANY(connect, L | R),
	ANY(bind, L | R),
	ANY(listen, L),
	ANY(accept4, L),
	ANY(getsockname, L | R),
	ANY(getpeername, L),
	ANY(getsockopt, L | R),
	ANY(setsockopt, L | R),
	ANY(sendto, L | R),
	ANY(recvfrom, L | R),
	ANY(sendmsg, L | R),
	ANY(recvmsg, L | R),
	ANY(sendmmsg, L | R),
	ANY(recvmmsg, L),
	ANY(shutdown, L),

	/* --- the broker --- */
	ANY(waitid, B),			/* reaping the VMM through its pidfd */
	ANY(pidfd_send_signal, B),	/* a signal passed on to the VMM; SIGKILL to one
					 * that will not stop */
	ANY(mlock, B),			/* a rotated token's pages (proxy/secrets.c) */

#if defined(__SANITIZE_ADDRESS__)
	/* Sanitizer builds only (tests): the runtime's own calls (it uses the
	 * legacy open and getdents, and mincore to probe memory);
	 * LeakSanitizer's check at exit runs a tracer process that lists the
	 * threads and stops them with ptrace; a report reads /proc/self/maps. */
	ANY(open, ALL),
	ANY(getdents, ALL),
	ANY(mincore, ALL),
	ANY(clone, L),
	ANY(ptrace, L),
	ANY(wait4, L),
	ANY(prctl, ALL),
	ANY(getppid, L),
	ANY(kill, L),
	ANY(sched_getaffinity, ALL),
	ANY(prlimit64, ALL),
	ANY(openat, ALL),
	ANY(close, ALL),
	ANY(readlink, ALL),
	ANY(newfstatat, ALL),
	ANY(fstat, ALL),
	ANY(mmap, ALL),
	ANY(mprotect, ALL),
#endif
};

const size_t cage_nrules = sizeof(cage_rules) / sizeof(cage_rules[0]);
