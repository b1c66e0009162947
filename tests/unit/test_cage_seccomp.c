/* tests/unit/test_cage_seccomp.c - the VMM's seccomp cage (cage/cage.h)
 * as an attacker inside a device would meet it.
 *
 * Each case forks a child that installs the process filter and, where
 * named, a role's filter, then makes calls: a call outside the role's
 * list must end the process with status 159 and one line naming the role
 * and the call, before the call has any effect; what the role needs must
 * still work.  Attacker's cases: exec, fork (clone without CLONE_THREAD),
 * clone3 whose flags seccomp cannot read, a new io_uring (whose work
 * seccomp would not see), an ioctl outside the list, an
 * executable mapping from a vCPU, a socket of another family, the i386
 * and x32 system call ABIs, and a thread that existed before the filter.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cage/cage.h"

#if defined(__SANITIZE_ADDRESS__)
static const bool sanitized = true;	/* cage/syscalls.c allows more for LeakSanitizer */
#else
static const bool sanitized = false;
#endif

struct outcome {
	int status;		/* waitpid's */
	char err[2048];		/* the child's stderr */
};

static void hook(void)
{
	static const char m[] = "hook ran\n";
	if (write(STDERR_FILENO, m, sizeof(m) - 1) < 0) {
		/* the status says it */
	}
}

/* Run pre (if any), then enter the cage, then body, in a child with the
 * process filter and role's filter (0: the process filter only); the
 * child exits 0 if body returns. */
static void caged_after(void (*pre)(void), unsigned role, void (*body)(void), struct outcome *o)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		signal(SIGSEGV, SIG_DFL);	/* not cmocka's: the child must not go on */
		if (pre)
			pre();
		char why[160];
		const struct cage_config cfg = { .on_violation = hook };
		if (cage_process(&cfg, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s\n", why);
			_exit(90);
		}
		if (role && cage_thread(role) < 0)
			_exit(91);
		body();
		_exit(0);
	}
	close(pfd[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(pfd[0], o->err + n, sizeof(o->err) - 1 - n)) > 0)
		n += (size_t)r;
	o->err[n] = 0;
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static void caged(unsigned role, void (*body)(void), struct outcome *o)
{
	caged_after(NULL, role, body, o);
}

static void assert_refused(const struct outcome *o, const char *role, const char *call)
{
	char want[128];
	snprintf(want, sizeof(want), "kvmbox: seccomp: the %s thread called %s (", role, call);
	if (!WIFEXITED(o->status) || WEXITSTATUS(o->status) != CAGE_EXIT_SYSCALL || !strstr(o->err, want))
		fail_msg("want status %d and \"%s\"; got status 0x%x, stderr: %s", CAGE_EXIT_SYSCALL, want,
			 o->status, o->err);
	assert_non_null(strstr(o->err, "hook ran"));
	/* one line from the cage, nothing after the refused call */
	assert_null(strstr(o->err, "after"));
}

static void assert_survived(const struct outcome *o)
{
	if (!WIFEXITED(o->status) || WEXITSTATUS(o->status) != 0)
		fail_msg("want exit 0; got status 0x%x, stderr: %s", o->status, o->err);
}

static void say_after(void)
{
	fputs("after\n", stderr);
}

/* --- vCPU --- */

static void vcpu_socket(void)
{
	socket(AF_INET, SOCK_STREAM, 0);
	say_after();
}

static void vcpu_create_vm(void)
{
	ioctl(-1, KVM_CREATE_VM, 0);
	say_after();
}

static void vcpu_exec_mapping(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	say_after();
}

static void vcpu_needs(void)
{
	/* KVM_RUN on no vCPU: refused by the kernel, not by the filter */
	if (ioctl(-1, KVM_RUN, 0) != -1 || errno != EBADF)
		_exit(3);
	void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(4);
	memset(p, 1, 1 << 20);
	munmap(p, 1 << 20);
	free(malloc(200000));
	if (write(STDERR_FILENO, "", 0) != 0)
		_exit(5);
}

static void test_vcpu(void **state)
{
	(void)state;
	struct outcome o;
	caged(CAGE_VCPU, vcpu_socket, &o);
	assert_refused(&o, "vcpu", "socket");
	caged(CAGE_VCPU, vcpu_create_vm, &o);
	assert_refused(&o, "vcpu", "ioctl");
	caged(CAGE_VCPU, vcpu_needs, &o);
	assert_survived(&o);
}

static void test_vcpu_no_exec_mapping(void **state)
{
	(void)state;
	if (sanitized)
		skip();	/* sanitizer builds allow any mapping */
	struct outcome o;
	caged(CAGE_VCPU, vcpu_exec_mapping, &o);
	assert_refused(&o, "vcpu", "mmap");
}

/* --- event loop --- */

static void loop_exec(void)
{
	char *argv[] = { "/bin/true", NULL };
	execve(argv[0], argv, argv + 1);
	say_after();
}

static void loop_fork(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	say_after();
}

static void loop_packet_socket(void)
{
	socket(AF_PACKET, SOCK_RAW, 0);
	say_after();
}

static void loop_create_vcpu(void)
{
	ioctl(-1, KVM_CREATE_VCPU, 0);
	say_after();
}

/* A fresh ring would carry any operation: none may be made. */
static void loop_new_ring(void)
{
	char params[120] = { 0 };
	syscall(SYS_io_uring_setup, 8, params);
	say_after();
}

static void *nothing(void *arg)
{
	return arg;
}

static void loop_needs(void)
{
	/* clone3 fails with ENOSYS (its flags cannot be checked) and
	 * pthread_create falls back to clone with CLONE_THREAD */
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		_exit(3);
	pthread_t t;
	if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
		_exit(4);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(5);
	close(fd);
	int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		_exit(6);
	close(s);
	int e = eventfd(0, 0);
	if (e < 0)
		_exit(7);
	close(e);
}

static void test_loop(void **state)
{
	(void)state;
	struct outcome o;
	caged(CAGE_LOOP, loop_exec, &o);
	assert_refused(&o, "loop", "execve");
	caged(CAGE_LOOP, loop_packet_socket, &o);
	assert_refused(&o, "loop", "socket");
	caged(CAGE_LOOP, loop_create_vcpu, &o);
	assert_refused(&o, "loop", "ioctl");
	caged(CAGE_LOOP, loop_new_ring, &o);
	assert_refused(&o, "loop", "io_uring_setup");
	caged(CAGE_LOOP, loop_needs, &o);
	assert_survived(&o);
}

static void test_loop_no_fork(void **state)
{
	(void)state;
	if (sanitized)
		skip();	/* sanitizer builds let LeakSanitizer's tracer clone */
	struct outcome o;
	caged(CAGE_LOOP, loop_fork, &o);
	assert_refused(&o, "loop", "clone");
}

/* --- resolver --- */

static void resolver_mkdir(void)
{
	mkdir("/tmp/kvmbox-cage-never", 0700);
	say_after();
}

static void resolver_kvm_run(void)
{
	ioctl(-1, KVM_RUN, 0);
	say_after();
}

static void resolver_needs(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (s < 0)
		_exit(3);
	close(s);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		_exit(4);
	close(s);
	int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
}

static void test_resolver(void **state)
{
	(void)state;
	struct outcome o;
	caged(CAGE_RESOLVER, resolver_mkdir, &o);
	assert_refused(&o, "resolver", "mkdir");
	caged(CAGE_RESOLVER, resolver_kvm_run, &o);
	assert_refused(&o, "resolver", "ioctl");
	caged(CAGE_RESOLVER, resolver_needs, &o);
	assert_survived(&o);
	assert_false(access("/tmp/kvmbox-cage-never", F_OK) == 0);
}

/* --- the process filter, every thread --- */

static void main_exec(void)
{
	loop_exec();
}

static pthread_mutex_t early_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t early_cond = PTHREAD_COND_INITIALIZER;
static int early_go;

static void *early_thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&early_lock);
	while (!early_go)
		pthread_cond_wait(&early_cond, &early_lock);
	pthread_mutex_unlock(&early_lock);
	syscall(SYS_unshare, CLONE_NEWUSER);
	say_after();
	return NULL;
}

static pthread_t early;

static void start_early_thread(void)
{
	if (pthread_create(&early, NULL, early_thread, NULL) != 0)
		_exit(92);
}

static void release_early_thread(void)
{
	pthread_mutex_lock(&early_lock);
	early_go = 1;
	pthread_cond_broadcast(&early_cond);
	pthread_mutex_unlock(&early_lock);
	pthread_join(early, NULL);
}

/* A thread started before the filter gets it too (TSYNC). */
static void test_early_thread(void **state)
{
	(void)state;
	struct outcome o;
	caged_after(start_early_thread, 0, release_early_thread, &o);
	assert_refused(&o, "main", "unshare");
}

static void test_main(void **state)
{
	(void)state;
	struct outcome o;
	caged(0, main_exec, &o);
	assert_refused(&o, "main", "execve");
}

/* The i386 ABI (int 0x80) is another system call table: refused outright
 * (the filter's bad-architecture action kills without a handler). */
static void int80_getpid(void)
{
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20 /* i386 getpid */) : "memory");
	say_after();
}

/* x32 numbers carry bit 30: not in any list. */
static void x32_getpid(void)
{
	syscall(0x40000000 | SYS_getpid);
	say_after();
}

static void test_other_abis(void **state)
{
	(void)state;
	struct outcome o;
	caged(CAGE_LOOP, int80_getpid, &o);
	/* SIGSEGV where the kernel has no i386 emulation at all */
	if (!WIFSIGNALED(o.status) || (WTERMSIG(o.status) != SIGSYS && WTERMSIG(o.status) != SIGSEGV))
		fail_msg("int 0x80: status 0x%x, stderr: %s", o.status, o.err);
	assert_null(strstr(o.err, "after"));
	caged(CAGE_LOOP, x32_getpid, &o);
	assert_false(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
	assert_null(strstr(o.err, "after"));
}

/* What /proc shows an auditor: filter mode 2 and no_new_privs. */
static void proc_status(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		_exit(3);
	char line[256];
	int seccomp = -1, nnp = -1;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "Seccomp: %d", &seccomp);
		sscanf(line, "NoNewPrivs: %d", &nnp);
	}
	fclose(f);
	if (seccomp != 2 || nnp != 1)
		_exit(4);
	if (!cage_active())
		_exit(5);
}

static void test_proc_status(void **state)
{
	(void)state;
	struct outcome o;
	caged(CAGE_LOOP, proc_status, &o);
	assert_survived(&o);
}

/* KVMBOX_SECCOMP: log lets a refused call run, off installs nothing, any
 * other value is an error. */
static void test_modes(void **state)
{
	(void)state;
	struct outcome o;
	setenv("KVMBOX_SECCOMP", "log", 1);
	caged(CAGE_RESOLVER, resolver_mkdir, &o);
	rmdir("/tmp/kvmbox-cage-never");
	assert_survived(&o);
	assert_non_null(strstr(o.err, "after"));
	setenv("KVMBOX_SECCOMP", "off", 1);
	caged(CAGE_LOOP, loop_exec, &o);	/* /bin/true runs */
	assert_survived(&o);
	assert_non_null(strstr(o.err, "KVMBOX_SECCOMP=off"));
	setenv("KVMBOX_SECCOMP", "strict", 1);
	caged(CAGE_LOOP, loop_exec, &o);
	assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 90);
	assert_non_null(strstr(o.err, "KVMBOX_SECCOMP=strict: expected on, log or off"));
	unsetenv("KVMBOX_SECCOMP");
}

/* Every entry names a real call, so a typo cannot allow nothing. */
static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < cage_nrules; i++) {
		assert_non_null(cage_syscall_name(cage_rules[i].nr));
		assert_true(cage_rules[i].roles && !(cage_rules[i].roles & ~CAGE_ALL_ROLES));
	}
	assert_string_equal(cage_syscall_name(SYS_execve), "execve");
	assert_null(cage_syscall_name(-1));
	assert_null(cage_syscall_name(1 << 20));
}

int main(void)
{
	unsetenv("KVMBOX_SECCOMP");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_vcpu),
		cmocka_unit_test(test_vcpu_no_exec_mapping),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_loop_no_fork),
		cmocka_unit_test(test_resolver),
		cmocka_unit_test(test_main),
		cmocka_unit_test(test_early_thread),
		cmocka_unit_test(test_other_abis),
		cmocka_unit_test(test_proc_status),
		cmocka_unit_test(test_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
