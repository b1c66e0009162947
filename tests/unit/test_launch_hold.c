/* tests/unit/test_launch_hold.c - detach and attach (launch/session,
 * "The sandbox's terminal") with real processes: a stand-in launch (a
 * shell script on the holder's pty, registered as a session as kvmbox's
 * launch is) behind a real holder, and terminals that are pipes or a pty
 * of the test's.  What a user sees: output and keys relayed, the exit
 * status passed on; Ctrl-] d detaches and the sandbox runs on; kvmbox
 * attach replays what it printed meanwhile and takes the keys; a second
 * terminal takes over from the first; the pty gets the attached
 * terminal's size, a nudge first so the agent redraws; --detach leaves
 * once the sandbox has a name; console.log keeps the output; the
 * control socket is gone once the sandbox ended and rm leaves nothing;
 * the holder keeps none of the user's environment (API keys); the
 * detach keys' notation. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "launch/session/session.h"

#define SECRET "sk-test-holder-must-not-keep-this"
#define WAIT_MS 10000

static char rt[64];

static int setup(void **state)
{
	(void)state;
	snprintf(rt, sizeof(rt), "/tmp/kvmbox-hold-XXXXXX");
	if (!mkdtemp(rt))
		return -1;
	setenv("XDG_RUNTIME_DIR", rt, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", rt);
	return system(cmd) == 0 ? 0 : -1;
}

/* The stand-in launch: registered as NAME, its folder announced, the
 * script run on the pty (HOLDER_PID in its environment) while it holds
 * the session's lock, its status recorded. */
static __attribute__((noreturn)) void fake_launch(int name_fd, const char *name, const char *script)
{
	struct session_info in = { 0 };
	snprintf(in.name, sizeof(in.name), "%s", name);
	snprintf(in.agent, sizeof(in.agent), "claude");
	snprintf(in.project, sizeof(in.project), "/tmp");
	struct session s;
	if (session_register(&in, true, &s) < 0)
		_exit(90);
	session_hold_announce(name_fd, s.dir);
	char holder[32];
	snprintf(holder, sizeof(holder), "%d", (int)getppid());
	setenv("HOLDER_PID", holder, 1);
	pid_t p = fork();
	if (p == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(p, &st, 0);
	session_mark_ended(&s, WEXITSTATUS(st));
	_exit(WEXITSTATUS(st));
}

/* A user typing `kvmbox claude` with stdin in_fd and stdout, stderr out_fd:
 * the process that becomes the first terminal. */
static pid_t start_user(int in_fd, int out_fd, const char *name, const char *script, bool detach)
{
	pid_t u = fork();
	if (u == 0) {
		dup2(in_fd, 0);
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		int client, name_fd;
		int r = session_hold(&client, &name_fd);
		if (r == 0)
			fake_launch(name_fd, name, script);
		if (r < 0)
			_exit(91);
		struct attach_opts o = { .detach_prefix = 0x1d, .detach_key = 'd', .leave_when_named = detach };
		_exit(session_attach_run(client, &o));
	}
	return u;
}

/* kvmbox attach NAME with stdin in_fd and stdout, stderr out_fd. */
static pid_t start_attach(int in_fd, int out_fd, const char *name)
{
	pid_t u = fork();
	if (u == 0) {
		dup2(in_fd, 0);
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		int fd = session_attach_connect(name);
		if (fd < 0)
			_exit(92);
		struct attach_opts o = { .detach_prefix = 0x1d, .detach_key = 'd', .name = name };
		_exit(session_attach_run(fd, &o));
	}
	return u;
}

struct term {
	int keys;	/* write end of the terminal's stdin */
	int screen;	/* read end of its stdout */
	int in, out;	/* the other ends, for the terminal's process */
	char seen[65536];
	size_t len;
};

static void term_pipes(struct term *t)
{
	int a[2], b[2];
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	*t = (struct term){ .keys = a[1], .in = a[0], .screen = b[0], .out = b[1] };
}

/* A terminal whose stdout is a pty of rows x cols (its stdin a pipe). */
static void term_pty(struct term *t, unsigned short rows, unsigned short cols)
{
	int a[2], master, slave;
	assert_int_equal(pipe(a), 0);
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	assert_int_equal(openpty(&master, &slave, NULL, NULL, &ws), 0);
	*t = (struct term){ .keys = a[1], .in = a[0], .screen = master, .out = slave };
}

static void term_close_child_ends(struct term *t)
{
	close(t->in);
	close(t->out);
}

static void term_close(struct term *t)
{
	close(t->keys);
	close(t->screen);
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether text shows on the terminal within WAIT_MS. */
static bool shows(struct term *t, const char *text)
{
	long long until = mono_ms() + WAIT_MS;
	for (;;) {
		t->seen[t->len] = 0;
		if (strstr(t->seen, text))
			return true;
		long long left = until - mono_ms();
		if (left <= 0 || t->len >= sizeof(t->seen) - 1)
			break;
		struct pollfd pf = { .fd = t->screen, .events = POLLIN };
		if (poll(&pf, 1, (int)left) <= 0)
			break;
		ssize_t n = read(t->screen, t->seen + t->len, sizeof(t->seen) - 1 - t->len);
		if (n <= 0)
			break;
		t->len += (size_t)n;
	}
	print_message("terminal shows:\n%s\n(waiting for '%s')\n", t->seen, text);
	return false;
}

static void type(struct term *t, const char *keys)
{
	assert_int_equal(write(t->keys, keys, strlen(keys)), (ssize_t)strlen(keys));
}

static int exit_status(pid_t p)
{
	int st;
	assert_int_equal(waitpid(p, &st, 0), p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool file_has(const char *name, const char *file, const char *text)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], buf[65536];
	if (session_dir(name, dir, sizeof(dir)) < 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, text) != NULL;
}

static bool eventually_file_has(const char *name, const char *file, const char *text)
{
	for (long long until = mono_ms() + WAIT_MS; mono_ms() < until; usleep(20000))
		if (file_has(name, file, text))
			return true;
	return false;
}

static bool control_exists(const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	struct stat st;
	session_dir(name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" HOLD_CONTROL, dir);
	return lstat(path, &st) == 0;
}

/* The launch's output and the user's keys go through; its status is the
 * terminal's; its output is in console.log; the holder kept none of the
 * environment. */
static void test_relay_and_status(void **state)
{
	(void)state;
	struct term t;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "relay",
			     "echo hello-from-launch; echo \"env=$KVMBOX_TEST_SECRET\"; "
			     "if tr '\\0' '\\n' </proc/$HOLDER_PID/environ | grep -q " SECRET "; "
			     "then echo holder-keeps-it; else echo holder-clean; fi; "
			     "read line; echo \"got:$line\"; exit 7",
			     false);
	term_close_child_ends(&t);
	assert_true(shows(&t, "hello-from-launch"));
	assert_true(shows(&t, "env=" SECRET));	/* the launch has it: it reads the keys */
	assert_true(shows(&t, "holder-clean"));
	type(&t, "abc\n");
	assert_true(shows(&t, "got:abc"));
	assert_int_equal(exit_status(u), 7);
	assert_true(file_has("relay", HOLD_LOG, "hello-from-launch"));
	assert_true(file_has("relay", HOLD_LOG, "got:abc"));
	assert_false(control_exists("relay"));
	struct session_info i;
	assert_int_equal(session_read("relay", &i), 0);
	assert_true(i.ended);
	assert_int_equal(i.status, 7);
	assert_int_equal(session_remove("relay"), 0);
	char dir[PATH_MAX];
	session_dir("relay", dir, sizeof(dir));
	assert_int_equal(access(dir, F_OK), -1);
	term_close(&t);
}

/* Ctrl-] d detaches, the sandbox runs on; attach replays what it printed
 * meanwhile, takes keys and ends with its status. */
static void test_detach_attach(void **state)
{
	(void)state;
	struct term t;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "dt",
			     "echo first; read go; echo while-detached; read b; echo \"b=$b\"; exit 3", false);
	term_close_child_ends(&t);
	assert_true(shows(&t, "first"));
	type(&t, "\x1d" "d");
	assert_int_equal(exit_status(u), 0);
	assert_true(shows(&t, "detached from sandbox dt; kvmbox attach dt"));
	term_close(&t);
	assert_true(session_lock_held("dt"));
	assert_true(control_exists("dt"));

	struct term a;
	term_pipes(&a);
	pid_t at = start_attach(a.in, a.out, "dt");
	term_close_child_ends(&a);
	assert_true(shows(&a, "first"));	/* the replay */
	type(&a, "\n");
	assert_true(shows(&a, "while-detached"));
	/* the prefix twice is the prefix once: the shell's read gets it */
	type(&a, "x\x1d\x1dy\n");
	assert_true(shows(&a, "b=x\x1dy"));
	assert_int_equal(exit_status(at), 3);
	assert_true(eventually_file_has("dt", HOLD_LOG, "while-detached"));
	term_close(&a);
}

/* Output made while no terminal is attached is kept and replayed. */
static void test_replay_of_detached_output(void **state)
{
	(void)state;
	struct term t;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "rp", "echo one; read go; echo two-while-away; read x; exit 0",
			     false);
	term_close_child_ends(&t);
	assert_true(shows(&t, "one"));
	type(&t, "\n\x1d" "d");
	assert_int_equal(exit_status(u), 0);
	term_close(&t);
	assert_true(eventually_file_has("rp", HOLD_LOG, "two-while-away"));
	struct term a;
	term_pipes(&a);
	pid_t at = start_attach(a.in, a.out, "rp");
	term_close_child_ends(&a);
	assert_true(shows(&a, "two-while-away"));
	type(&a, "\n");
	assert_int_equal(exit_status(at), 0);
	term_close(&a);
}

/* A second terminal takes over; the first is told and leaves. */
static void test_takeover(void **state)
{
	(void)state;
	struct term t, a;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "tk", "echo ready; read x; echo \"x=$x\"; exit 0", false);
	term_close_child_ends(&t);
	assert_true(shows(&t, "ready"));
	term_pipes(&a);
	pid_t at = start_attach(a.in, a.out, "tk");
	term_close_child_ends(&a);
	assert_true(shows(&a, "ready"));
	assert_int_equal(exit_status(u), 0);
	assert_true(shows(&t, "sandbox tk was attached from another terminal"));
	type(&a, "second\n");
	assert_true(shows(&a, "x=second"));
	assert_int_equal(exit_status(at), 0);
	term_close(&t);
	term_close(&a);
}

/* The pty has the attached terminal's size; a terminal that attaches
 * later gets its own, after a nudge (a size change the agent sees). */
static void test_sizes(void **state)
{
	(void)state;
	struct term t, a;
	term_pty(&t, 30, 100);
	pid_t u = start_user(t.in, t.out, "sz",
			     "stty size; read go; last=; while :; do s=$(stty size); "
			     "[ \"$s\" != \"$last\" ] && echo \"size=$s\"; last=$s; "
			     "[ \"$s\" = '40 120' ] && exit 0; sleep 0.05; done",
			     false);
	term_close_child_ends(&t);
	assert_true(shows(&t, "30 100"));
	type(&t, "\x1d" "d");
	assert_int_equal(exit_status(u), 0);
	term_close(&t);
	term_pty(&a, 40, 120);
	pid_t at = start_attach(a.in, a.out, "sz");
	term_close_child_ends(&a);
	type(&a, "\n");
	assert_true(shows(&a, "size=40 120"));
	assert_int_equal(exit_status(at), 0);
	term_close(&a);
}

/* --detach: the first terminal leaves once the sandbox has its name. */
static void test_detach_flag(void **state)
{
	(void)state;
	struct term t, a;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "bg", "echo started; read x; echo \"x=$x\"; exit 4", true);
	term_close_child_ends(&t);
	assert_int_equal(exit_status(u), 0);
	assert_true(shows(&t, "kvmbox: sandbox bg runs in the background: kvmbox attach bg"));
	term_close(&t);
	term_pipes(&a);
	pid_t at = start_attach(a.in, a.out, "bg");
	term_close_child_ends(&a);
	assert_true(shows(&a, "started"));
	type(&a, "later\n");
	assert_true(shows(&a, "x=later"));
	assert_int_equal(exit_status(at), 4);
	term_close(&a);
}

/* A sandbox that does not run, or has no holder, cannot be attached. */
static void test_attach_refusals(void **state)
{
	(void)state;
	assert_int_equal(session_attach_connect("nosuch"), -ENOENT);
	struct term t;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "ended", "exit 0", false);
	term_close_child_ends(&t);
	assert_int_equal(exit_status(u), 0);
	assert_int_equal(session_attach_connect("ended"), -ESRCH);
	term_close(&t);
	/* a session registered without a holder (no terminal): nothing listens */
	struct session_info in = { 0 };
	snprintf(in.name, sizeof(in.name), "plain");
	struct session s;
	assert_int_equal(session_register(&in, true, &s), 0);
	assert_int_equal(session_attach_connect("plain"), -ENOTCONN);
	close(s.lock_fd);
}

/* The guest's OSC 52: a copy reaches the terminal and NAME/clipboard,
 * decoded; a query of the user's clipboard reaches neither.  Bytes typed
 * from outside (kvmbox clipboard put) arrive as keys. */
static void test_clipboard(void **state)
{
	(void)state;
	struct term t;
	term_pipes(&t);
	pid_t u = start_user(t.in, t.out, "clip",
			     "printf 'A\033]52;c;?\007B\033]52;c;Y29waWVk\007C\n'; read x; echo \"typed=$x\"",
			     false);
	term_close_child_ends(&t);
	assert_true(shows(&t, "C"));
	assert_non_null(strstr(t.seen, "AB\x1b]52;c;Y29waWVk\aC"));
	assert_null(strstr(t.seen, "52;c;?"));
	assert_true(eventually_file_has("clip", HOLD_CLIPBOARD, "copied"));
	static const char typed[] = "/run/kvmbox/launch/clipboard/image.png \n";
	assert_int_equal(session_type("clip", typed, sizeof(typed) - 1), 0);
	assert_true(shows(&t, "typed=/run/kvmbox/launch/clipboard/image.png"));
	assert_int_equal(exit_status(u), 0);
	char dir[PATH_MAX], path[PATH_MAX + 32];
	session_dir("clip", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" HOLD_CLIPBOARD, dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	term_close(&t);
}

static void test_detach_keys(void **state)
{
	(void)state;
	unsigned char k[2];
	assert_int_equal(session_detach_keys_parse(SESSION_DETACH_KEYS, k), 0);
	assert_int_equal(k[0], 0x1d);
	assert_int_equal(k[1], 'd');
	assert_int_equal(session_detach_keys_parse("ctrl-p,ctrl-q", k), 0);
	assert_int_equal(k[0], 0x10);
	assert_int_equal(k[1], 0x11);
	assert_int_equal(session_detach_keys_parse("ctrl-\\,q", k), 0);
	assert_int_equal(k[0], 0x1c);
	static const char *const bad[] = { "", "d", "ctrl-],", ",d", "a,b,c", "ctrl-1,d", "d,d",
					   "ctrl-],dd", "ctrl-A,d", "ctrl-] ,d", " ,d" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(session_detach_keys_parse(bad[i], k), -EINVAL);
}

int main(int argc, char **argv)
{
	(void)argc;
	/* the secret in the process's own environment block, as an API key
	 * is when kvmbox starts: re-executed once with it */
	if (!getenv("KVMBOX_TEST_SECRET")) {
		setenv("KVMBOX_TEST_SECRET", SECRET, 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_relay_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_of_detached_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clipboard, setup, teardown),
		cmocka_unit_test(test_detach_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
