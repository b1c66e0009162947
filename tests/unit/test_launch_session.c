/* tests/unit/test_launch_session.c - the named sandboxes' bookkeeping
 * (launch/session/session.h) with real processes: the runtime folder's
 * permissions (made 0700, an open one narrowed, a link refused), names
 * (valid ones, the default from project and agent, "-2" while the name
 * runs), a running session's name refused to a second launch, a session
 * whose process was SIGKILLed (its lock gone) shown dead and its name
 * taken over, a pid reused by another process never signalled, ended sessions,
 * a record that is not one passed over, stop and remove; suspend (the
 * launcher's record of itself, its name kept, its resume's record read
 * back, one resume at a time, kvmbox rm taking the saved VM) and resume
 * records that are not one. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "launch/session/session.h"
#include "vmm/vmm.h"

static char rt[64];

static int setup(void **state)
{
	(void)state;
	snprintf(rt, sizeof(rt), "/tmp/kvmbox-session-XXXXXX");
	if (!mkdtemp(rt))
		return -1;
	setenv("XDG_RUNTIME_DIR", rt, 1);
	char state_home[96];
	snprintf(state_home, sizeof(state_home), "%s/state", rt);
	setenv("XDG_STATE_HOME", state_home, 1);	/* where suspended VMs go */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", rt);
	return system(cmd) == 0 ? 0 : -1;
}

static struct session_info info(const char *name)
{
	struct session_info i = { 0 };
	snprintf(i.name, sizeof(i.name), "%s", name);
	snprintf(i.agent, sizeof(i.agent), "claude");
	snprintf(i.project, sizeof(i.project), "/home/u/proj");
	snprintf(i.image, sizeof(i.image), "default");
	snprintf(i.egress_profile, sizeof(i.egress_profile), "standard");
	snprintf(i.repos, sizeof(i.repos), "ada/engine bob/lib");
	i.memory_mib = 2048;
	i.cpus = 2;
	return i;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_root_permissions(void **state)
{
	(void)state;
	char p[256], root[256];
	snprintf(p, sizeof(p), "%s/kvmbox", rt);
	assert_int_equal(mkdir(p, 0755), 0);		/* made open by someone */
	assert_int_equal(session_root(root, sizeof(root)), 0);
	assert_int_equal(mode_of(p), 0700);		/* narrowed */
	assert_int_equal(mode_of(root), 0700);
	/* a link in its place is refused, never followed */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/kvmbox && mkdir %s/elsewhere && ln -s %s/elsewhere %s/kvmbox", rt, rt, rt, rt);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(session_root(root, sizeof(root)), -ENOTDIR);
	/* without XDG_RUNTIME_DIR: /tmp/kvmbox-UID, the same rules */
	unsetenv("XDG_RUNTIME_DIR");
	assert_int_equal(session_root(root, sizeof(root)), 0);
	char want[64];
	snprintf(want, sizeof(want), "/tmp/kvmbox-%u/sessions", (unsigned)getuid());
	assert_string_equal(root, want);
	setenv("XDG_RUNTIME_DIR", rt, 1);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(session_name_valid("myproj-claude"));
	assert_true(session_name_valid("a"));
	assert_true(session_name_valid("0.9_x-y"));
	static const char *const bad[] = { "", "-x", ".x", "_x", "A", "a b", "a/b", "..", "a\n",
					   "x123456789012345678901234567890123456789012345678" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_false(session_name_valid(bad[k]));
	char n[64];
	session_default_name("/home/u/My Proj", "claude", n, sizeof(n));
	assert_string_equal(n, "my-proj-claude");
	session_default_name("/home/u/.hidden", "codex", n, sizeof(n));
	assert_string_equal(n, "hidden-codex");
	session_default_name("/", "claude", n, sizeof(n));
	assert_string_equal(n, "root-claude");
	session_default_name("/x/---", "my agent", n, sizeof(n));
	assert_string_equal(n, "my-agent");
	session_default_name("/x/a-very-long-project-folder-name-that-goes-on-and-on", "opencode", n, sizeof(n));
	assert_true(session_name_valid(n));
}

static void test_register_and_clash(void **state)
{
	(void)state;
	struct session a, b, c;
	struct session_info i = info("proj-claude");
	assert_int_equal(session_register(&i, true, &a), 0);
	assert_int_equal(a.info.pid, getpid());
	assert_int_equal(mode_of(a.dir), 0700);
	char f[PATH_MAX + 16];
	snprintf(f, sizeof(f), "%s/state.json", a.dir);
	assert_int_equal(mode_of(f), 0600);
	/* this process runs it: the name is taken */
	assert_int_equal(session_register(&i, true, &b), -EBUSY);
	/* a default name moves on */
	assert_int_equal(session_register(&i, false, &b), 0);
	assert_string_equal(b.info.name, "proj-claude-2");
	assert_int_equal(session_register(&i, false, &c), 0);
	assert_string_equal(c.info.name, "proj-claude-3");
	struct session_info r;
	assert_int_equal(session_read("proj-claude", &r), 0);
	assert_string_equal(r.project, "/home/u/proj");
	assert_string_equal(r.repos, "ada/engine bob/lib");
	assert_int_equal(session_state(&r), SESSION_RUNNING);
	/* ended: listed as such, its name free again, removable */
	assert_int_equal(session_mark_ended(&b, 3), 0);
	assert_int_equal(session_read("proj-claude-2", &r), 0);
	assert_int_equal(session_state(&r), SESSION_EXITED);
	assert_int_equal(r.status, 3);
	assert_int_equal(session_remove("proj-claude"), -EBUSY);	/* running */
	assert_int_equal(session_remove("proj-claude-2"), 0);
	assert_int_equal(session_read("proj-claude-2", &r), -ENOENT);
	assert_int_equal(session_remove("nosuch"), -ENOENT);
	struct session_info all[8];
	assert_int_equal(session_list(all, 8), 2);
	assert_string_equal(all[0].name, "proj-claude");
	assert_string_equal(all[1].name, "proj-claude-3");
	i = info("Bad Name");
	assert_int_equal(session_register(&i, true, &a), -EINVAL);
}

/* A child registers as NAME and waits; its pid.  A suspendable one is a
 * launcher that can be suspended: on VM_SIG_SUSPEND it records how it was
 * launched, marks itself suspended and ends (what cmd_agent does once its
 * VM is saved). */
static pid_t child_launch(const char *name, bool suspendable)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, VM_SIG_SUSPEND);
		sigprocmask(SIG_BLOCK, &set, NULL);
		struct session s;
		struct session_info i = info(name);
		i.suspendable = suspendable;
		char ok = session_register(&i, true, &s) == 0 ? 'y' : 'n';
		(void)!write(p[1], &ok, 1);
		int sig;
		while (!suspendable || sigwait(&set, &sig) != 0)
			pause();
		struct session_resume r = { .cwd = "/home/u/proj", .argc = 3,
					    .argv = { "claude", "--name", (char *)name } };
		memset(r.ph_key, 0xa5, sizeof(r.ph_key));
		_exit(session_save_resume(&s, &r) == 0 && session_mark_suspended(&s) == 0 ? 0 : 1);
	}
	char ok = 0;
	assert_int_equal(read(p[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	close(p[0]);
	close(p[1]);
	return pid;
}

static pid_t child_session(const char *name)
{
	return child_launch(name, false);
}

static void test_killed_is_dead(void **state)
{
	(void)state;
	pid_t pid = child_session("victim");
	struct session_info r;
	assert_int_equal(session_read("victim", &r), 0);
	assert_int_equal(session_state(&r), SESSION_RUNNING);
	unsigned long long rss = 0, cpu = 0;
	assert_int_equal(session_usage(&r, &rss, &cpu), 0);
	assert_true(rss > 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(session_read("victim", &r), 0);
	assert_int_equal(session_state(&r), SESSION_DEAD);	/* gone without a word */
	assert_int_equal(session_usage(&r, &rss, &cpu), -ESRCH);
	assert_int_equal(session_stop(&r, 100), -ESRCH);
	/* its name is free: a new launch takes it over */
	struct session s;
	struct session_info i = info("victim");
	assert_int_equal(session_register(&i, true, &s), 0);
	assert_int_equal(session_read("victim", &r), 0);
	assert_int_equal(r.pid, getpid());
}

/* A record whose pid is now another process (a reused pid): that process
 * is never signalled. */
static void test_reused_pid(void **state)
{
	(void)state;
	struct session s;
	struct session_info i = info("reused");
	assert_int_equal(session_register(&i, true, &s), 0);
	/* alive, but not the process that registered: one started clock ticks
	 * later (the test's parent may have started in the test's own tick,
	 * as `timeout` forking it does, and be taken for it) */
	usleep(50 * 1000);
	pid_t other = fork();
	assert_true(other >= 0);
	if (other == 0)
		for (;;)
			pause();
	s.info.pid = other;
	assert_int_equal(session_mark_ended(&s, 0), 0);
	s.info.ended = false;
	char f[PATH_MAX + 16];
	snprintf(f, sizeof(f), "%s/state.json", s.dir);
	/* rewrite it as "not ended", with the other's pid and our start time */
	char cmd[PATH_MAX + 128];
	snprintf(cmd, sizeof(cmd), "sed -i 's/\"ended\":true/\"ended\":false/' %s", f);
	assert_int_equal(system(cmd), 0);
	struct session_info r;
	assert_int_equal(session_read("reused", &r), 0);
	assert_int_equal(r.pid, other);
	assert_int_equal(session_stop(&r, 100), -ESRCH);	/* never signalled */
	assert_int_equal(waitpid(other, NULL, WNOHANG), 0);	/* still there */
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
}

static void test_stop(void **state)
{
	(void)state;
	pid_t pid = child_session("stopme");
	struct session_info r;
	assert_int_equal(session_read("stopme", &r), 0);
	assert_int_equal(session_stop(&r, 2000), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	assert_int_equal(session_state(&r), SESSION_DEAD);
	assert_int_equal(session_remove("stopme"), 0);
}

static void test_suspend_and_reclaim(void **state)
{
	(void)state;
	pid_t pid = child_launch("sus", true);
	struct session_info r;
	assert_int_equal(session_read("sus", &r), 0);
	assert_true(r.suspendable);
	assert_int_equal(session_suspend(&r, 5000), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(session_read("sus", &r), 0);
	assert_int_equal(session_state(&r), SESSION_SUSPENDED);
	assert_string_equal(session_state_name(SESSION_SUSPENDED), "suspended");
	assert_int_equal(session_suspend(&r, 100), -ESRCH);	/* not running */
	/* its name is its resume's: not another launch's */
	struct session s, t;
	struct session_info i = info("sus");
	assert_int_equal(session_register(&i, true, &s), -EBUSY);
	assert_int_equal(session_register(&i, false, &s), 0);
	assert_string_equal(s.info.name, "sus-2");
	/* one that cannot suspend says so, and is not signalled */
	assert_false(s.info.suspendable);
	assert_int_equal(session_suspend(&s.info, 100), -EOPNOTSUPP);
	/* how it was launched, as recorded */
	struct session_resume res;
	assert_int_equal(session_read_resume("sus", &res), 0);
	assert_string_equal(res.cwd, "/home/u/proj");
	assert_int_equal(res.argc, 3);
	assert_string_equal(res.argv[2], "sus");
	assert_null(res.argv[3]);
	assert_int_equal(res.ph_key[0], 0xa5);
	assert_int_equal(res.ph_key[31], 0xa5);
	session_resume_fini(&res);
	/* resumed: running again under this process; a second resume finds it
	 * taken, and so does one of a session that is not suspended */
	assert_int_equal(session_reclaim("sus", &s), 0);
	assert_int_equal(s.info.pid, getpid());
	assert_int_equal(session_read("sus", &r), 0);
	assert_int_equal(session_state(&r), SESSION_RUNNING);
	assert_true(r.suspendable);
	assert_false(r.suspended);
	assert_int_equal(session_reclaim("sus", &t), -EBUSY);
	assert_int_equal(session_reclaim("sus-2", &t), -EBUSY);
	assert_int_equal(session_reclaim("nosuch", &t), -ENOENT);
	/* suspended again, with a saved VM: kvmbox rm takes the VM with it */
	assert_int_equal(session_mark_suspended(&s), 0);
	/* the saved VM is on disk under the state home, not beside the
	 * record in the runtime folder (tmpfs: memory) */
	char sus[PATH_MAX], want[PATH_MAX];
	assert_int_equal(session_suspend_dir("sus", sus, sizeof(sus)), 0);
	snprintf(want, sizeof(want), "%s/state/kvmbox/suspended/sus", rt);
	assert_string_equal(sus, want);
	snprintf(want, sizeof(want), "%s/state/kvmbox/suspended", rt);
	assert_int_equal(mode_of(want), 0700);
	assert_int_equal(session_suspend_dir("../x", sus, sizeof(sus)), -EINVAL);
	assert_int_equal(session_suspend_dir("sus", sus, sizeof(sus)), 0);
	char cmd[4 * PATH_MAX + 128];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && touch %s/state %s/memory-1 %s/proxy-ca.pem", sus, sus, sus, sus);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "head -c 40960 /dev/urandom >%s/memory-1", sus);
	assert_int_equal(system(cmd), 0);
	unsigned long long saved = 0;
	assert_int_equal(session_saved_bytes("sus", &saved), 0);
	assert_true(saved >= 40960);	/* what it takes on disk */
	assert_int_equal(session_saved_bytes("sus-2", &saved), -ENOENT);
	close(s.lock_fd);	/* this "launch" ends */
	assert_int_equal(session_remove("sus"), 0);
	struct stat sb;
	assert_int_equal(stat(s.dir, &sb), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(stat(sus, &sb), -1);	/* its saved VM went with it */
	assert_int_equal(errno, ENOENT);
	/* a saved VM no record names (a reboot took the runtime folder): the
	 * next launch of that name drops it, it can never be resumed */
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && touch %s/state %s/memory-2", sus, sus, sus);
	assert_int_equal(system(cmd), 0);
	i = info("sus");
	assert_int_equal(session_register(&i, true, &s), 0);
	assert_int_equal(stat(sus, &sb), -1);
	assert_int_equal(errno, ENOENT);
	close(s.lock_fd);
}

/* A suspended sandbox outlives a reboot, which empties the runtime
 * folder: its record comes back from disk, the name stays its own; one
 * whose saved VM was resumed and ran is dropped instead. */
static void test_suspended_outlives_reboot(void **state)
{
	(void)state;
	struct session s;
	struct session_info i = info("rb");
	i.suspendable = true;
	assert_int_equal(session_register(&i, true, &s), 0);
	char *argv[] = { "claude", "--name", "rb" };
	struct session_resume res = { .cwd = "/home/u/proj", .argc = 3 };
	memcpy(res.argv, argv, sizeof(argv));
	memset(res.ph_key, 0x5a, sizeof(res.ph_key));
	assert_int_equal(session_save_resume(&s, &res), 0);
	char sus[PATH_MAX], cmd[3 * PATH_MAX + 64];
	assert_int_equal(session_suspend_dir("rb", sus, sizeof(sus)), 0);
	assert_string_equal(s.saved_dir, sus);	/* named and made at registration */
	assert_int_equal(mode_of(sus), 0700);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && touch %s/state %s/memory-1", sus, sus, sus);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(session_mark_suspended(&s), 0);
	close(s.lock_fd);
	for (int reboot = 0; reboot < 2; reboot++) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s/kvmbox", rt);	/* the runtime folder, emptied */
		assert_int_equal(system(cmd), 0);
		struct session_info all[4];
		assert_int_equal(session_list(all, 4), 1);
		assert_string_equal(all[0].name, "rb");
		assert_int_equal(session_state(&all[0]), SESSION_SUSPENDED);
		struct session_resume back;
		assert_int_equal(session_read_resume("rb", &back), 0);
		assert_string_equal(back.cwd, "/home/u/proj");
		assert_int_equal(back.argc, 3);
		assert_int_equal(back.ph_key[31], 0x5a);
		session_resume_fini(&back);
		struct session t;
		struct session_info j = info("rb");
		assert_int_equal(session_register(&j, true, &t), -EBUSY);	/* still its resume's */
	}
	/* read by name, not listed, after a reboot: the same */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/kvmbox", rt);
	assert_int_equal(system(cmd), 0);
	struct session_info r;
	assert_int_equal(session_read("rb", &r), 0);
	assert_true(r.suspended);
	/* resumed, ran (its state spent), then a reboot: nothing to resume */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/kvmbox %s/state", rt, sus);
	assert_int_equal(system(cmd), 0);
	struct session_info all[4];
	assert_int_equal(session_list(all, 4), 0);
	struct stat sb;
	assert_int_equal(stat(sus, &sb), -1);	/* the saved VM dropped with it */
	assert_int_equal(session_read("rb", &r), -ENOENT);
	/* kvmbox rm of an adopted one takes the kept record too */
	i = info("rc");
	i.suspendable = true;
	assert_int_equal(session_register(&i, true, &s), 0);
	assert_int_equal(session_save_resume(&s, &res), 0);
	assert_int_equal(session_suspend_dir("rc", sus, sizeof(sus)), 0);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && touch %s/state", sus, sus);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(session_mark_suspended(&s), 0);
	close(s.lock_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/kvmbox", rt);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(session_remove("rc"), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/kvmbox", rt);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(session_list(all, 4), 0);
	assert_int_equal(stat(sus, &sb), -1);
}

/* A resume record that is not one is refused whole. */
static void test_bad_resume(void **state)
{
	(void)state;
	struct session s;
	struct session_info i = info("br");
	assert_int_equal(session_register(&i, true, &s), 0);
	static const char *const bad[] = {
		"{\"cwd\":\"rel\",\"argv\":[\"claude\"],\"placeholder_key\":\"" "00000000000000000000000000000000" "00000000000000000000000000000000\"}",
		"{\"cwd\":\"/p\",\"argv\":[],\"placeholder_key\":\"" "00000000000000000000000000000000" "00000000000000000000000000000000\"}",
		"{\"cwd\":\"/p\",\"argv\":[\"claude\",7],\"placeholder_key\":\"" "00000000000000000000000000000000" "00000000000000000000000000000000\"}",
		"{\"cwd\":\"/p\",\"argv\":[\"claude\"],\"placeholder_key\":\"00zz\"}",
		"{\"cwd\":\"/p\",\"argv\":[\"claude\"],\"placeholder_key\":\"" "0000000000000000000000000000000G" "00000000000000000000000000000000\"}",
		"{\"cwd\":\"/p\",\"argv\":[\"claude\"]}",
		"{\"cwd\":\"/p\",\"argv\":[\"claude\"],\"placeholder_key\":\"" "00000000000000000000000000000000" "00000000000000000000000000000000\"} trailing",
	};
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/resume.json", s.dir);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(bad[k], f);
		fclose(f);
		struct session_resume r;
		assert_int_equal(session_read_resume("br", &r), -EINVAL);
		session_resume_fini(&r);
	}
	struct session_resume r;
	unlink(path);
	assert_int_equal(session_read_resume("br", &r), -ENOENT);
	session_resume_fini(&r);
}

static void test_bad_record(void **state)
{
	(void)state;
	char root[256], p[400];
	assert_int_equal(session_root(root, sizeof(root)), 0);
	snprintf(p, sizeof(p), "%s/broken", root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/broken/state.json", root);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("{\"name\":\"broken\",\"pid\":1}", f);
	fclose(f);
	struct session_info r;
	assert_int_equal(session_read("broken", &r), -EINVAL);
	struct session_info all[4];
	assert_int_equal(session_list(all, 4), 0);	/* passed over */
	/* a record that names another session is not this one's */
	struct session s;
	struct session_info i = info("real");
	assert_int_equal(session_register(&i, true, &s), 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "mkdir %s/other && cp %s/real/state.json %s/other/", root, root, root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(session_read("other", &r), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_permissions, setup, teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_register_and_clash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_is_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suspend_and_reclaim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suspended_outlives_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_resume, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
