/* vmm/cli/cmd_bench.c - `kvmbox bench boot`: boot latency as a user can
 * measure it on their own machine, kernel and initramfs.
 *
 *   kvmbox bench boot [--kernel PATH] [--initrd PATH] [--cmdline STR]
 *                     [--runs N] [--memory MiB] [--cpus N] [--initcalls N]
 *                     [--json]
 *
 * Each run is a `kvmbox run` of this very binary (/proc/self/exe) with
 * --profile=json, so the figures are those of the command users run, its
 * process start included.  First a template is saved where kvmbox-init
 * waits for its command (`--snapshot`, the command `true`); then N cold
 * boots and N restores of the template take turns (load from elsewhere
 * hits both alike), each with --no-net.  Per phase mark (vmm/profile.c:
 * exec, kvm_ready, kernel_loaded, first_kvm_run, guest_init_started,
 * command_done, teardown, and the process's exit as the parent saw it),
 * the median, p90, min and max of the wall time since exec; the VMM
 * process's CPU time (its vCPU threads included: guest time counts) and
 * peak RSS.  Then one more cold boot with initcall_debug shows the guest
 * kernel's slowest initcalls and their sum (its own boot work, which no
 * VMM can shorten).  docs/vmm.md (kvmbox bench boot) has the method.
 *
 * A run that fails stops the benchmark with one line naming it and its
 * first line of output (exit 1); bad usage is exit 2.
 */
#include "vmm/cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/vmm.h"

extern char **environ;

#define BENCH_MAX_RUNS 1000
#define BENCH_OUT_MAX (4u << 20)	/* a run's captured stdout / stderr */
#define BENCH_CMDLINE_BASE "console=ttyS0 reboot=k panic=-1"	/* kvmbox run's, less quiet */

/* The figures a run gives: wall ms since exec per phase (< 0: not
 * reached), the process's exit, CPU ms and peak RSS. */
enum { MARK_EXIT = PHASE_COUNT, MARK_CPU, MARK_RSS, NMARKS };

struct bench_opts {
	const char *kernel, *initrd;
	const char *cmdline;		/* --cmdline for every run but the initcall one */
	unsigned runs, cpus, initcalls;
	const char *memory;
	bool json;
};

struct bench_run {
	double v[NMARKS];
};

struct bench {
	struct bench_opts o;
	char dir[64];			/* the template and the runs' output */
	char cpus[16];			/* o.cpus as kvmbox run's --cpus value */
	struct bench_run *cold, *restore;
	struct { char fn[96]; long us; } *calls;
	unsigned ncalls;
	long calls_total_us;
};

static double now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Run `kvmbox ARGV` with stdout and stderr into DIR/out and DIR/err; the
 * wall clock when it ended (ms since the epoch) into *ended.  Its exit
 * status, or -errno. */
static int spawn_kvmbox(struct bench *b, char *const argv[], double *ended)
{
	char out[96], err[96];
	snprintf(out, sizeof(out), "%s/out", b->dir);
	snprintf(err, sizeof(err), "%s/err", b->dir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	pid_t pid;
	int r = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -r;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	*ended = now_unix_ms();
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole of DIR/NAME, NUL-terminated (caller frees), or NULL. */
static char *read_output(const struct bench *b, const char *name)
{
	char p[96];
	snprintf(p, sizeof(p), "%s/%s", b->dir, name);
	uint8_t *buf;
	size_t len;
	if (read_file(p, BENCH_OUT_MAX, &buf, &len) < 0)
		return NULL;
	char *s = realloc(buf, len + 1);
	if (!s) {
		free(buf);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

/* One line saying which run failed and the first line it printed. */
static int run_failed(struct bench *b, const char *what, int status)
{
	char *err = read_output(b, "err");
	const char *line = err ? err : "";
	while (*line == '{')		/* a profile line is not the reason */
		line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "";
	if (!strncmp(line, "kvmbox: ", 8))
		line += 8;
	size_t n = strcspn(line, "\n");
	log_err("bench: %s %s: %.*s", what,
		status < 0 ? strerror(-status) : status == 0 ? "printed no profile" : "failed",
		(int)(n > 300 ? 300 : n), line);
	free(err);
	return status == EXIT_USAGE ? EXIT_USAGE : 1;	/* a flag kvmbox run refused */
}

/* The --profile=json line a run printed into r; 0 or -EINVAL. */
static int parse_profile(const char *err, double ended, struct bench_run *r)
{
	const char *last = NULL;
	for (const char *p = err; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (*p == '{')
			last = p;
	if (!last)
		return -EINVAL;
	json_object *j = json_tokener_parse(last);
	json_object *v, *m;
	if (!j || !json_object_object_get_ex(j, "exec_unix_us", &v)) {
		json_object_put(j);
		return -EINVAL;
	}
	double exec_ms = (double)json_object_get_int64(v) / 1e3;
	double cpu = 0;
	for (unsigned i = 0; i < PHASE_COUNT; i++) {
		r->v[i] = -1;
		if (json_object_object_get_ex(j, profile_phase_name(i), &m) &&
		    json_object_object_get_ex(m, "wall_ms", &v)) {
			r->v[i] = json_object_get_double(v);
			if (json_object_object_get_ex(m, "cpu_ms", &v) && json_object_get_double(v) > cpu)
				cpu = json_object_get_double(v);
		}
	}
	r->v[MARK_EXIT] = ended - exec_ms;
	r->v[MARK_CPU] = cpu;
	r->v[MARK_RSS] = json_object_object_get_ex(j, "max_rss_kib", &v) ?
		(double)json_object_get_int64(v) / 1024 : -1;
	json_object_put(j);
	return 0;
}

/* argv of `kvmbox run` for a cold boot (tail: extra flags, then `-- true`). */
static int cold_argv(const struct bench *b, const char **argv, const char *const *extra)
{
	int n = 0;
	argv[n++] = "kvmbox";
	argv[n++] = "run";
	if (b->o.kernel)
		argv[n++] = "--kernel", argv[n++] = b->o.kernel;
	if (b->o.initrd)
		argv[n++] = "--initrd", argv[n++] = b->o.initrd;
	argv[n++] = "--memory", argv[n++] = b->o.memory;
	argv[n++] = "--cpus", argv[n++] = b->cpus;
	argv[n++] = "--no-net";
	if (b->o.cmdline && !(extra && !strcmp(extra[0], "--cmdline")))
		argv[n++] = "--cmdline", argv[n++] = b->o.cmdline;
	while (extra && *extra)
		argv[n++] = *extra++;
	argv[n++] = "--";
	argv[n++] = "true";
	argv[n] = NULL;
	return n;
}

/* One cold boot with these flags added, whose figures are not kept (the
 * template, the initcall_debug boot): 0, or an exit status after one line
 * naming `what`. */
static int cold_spawn(struct bench *b, const char *const *extra, const char *what)
{
	const char *argv[32];
	cold_argv(b, argv, extra);
	double ended;
	int st = spawn_kvmbox(b, (char *const *)argv, &ended);
	return st != 0 ? run_failed(b, what, st) : 0;
}

static int one_run(struct bench *b, const char *what, char *const *argv, struct bench_run *r)
{
	double ended;
	int st = spawn_kvmbox(b, argv, &ended);
	if (st != 0)
		return run_failed(b, what, st);
	char *err = read_output(b, "err");
	int p = err ? parse_profile(err, ended, r) : -EINVAL;
	free(err);
	return p < 0 ? run_failed(b, what, 0) : 0;
}

/* Keep fn among the o.initcalls slowest, sorted slowest first. */
static void keep_slowest(struct bench *b, const char *fn, size_t fnlen, long us)
{
	b->calls_total_us += us;
	unsigned cap = b->o.initcalls, n = b->ncalls;
	if (n == cap && (!cap || us <= b->calls[n - 1].us))
		return;
	unsigned at = n < cap ? n++ : n - 1;	/* append, or replace the fastest */
	while (at > 0 && b->calls[at - 1].us < us) {
		b->calls[at] = b->calls[at - 1];
		at--;
	}
	snprintf(b->calls[at].fn, sizeof(b->calls[at].fn), "%.*s", (int)fnlen, fn);
	b->calls[at].us = us;
	b->ncalls = n;
}

/* The kernel's lines "initcall foo+0x0/0x40 returned 0 after 1234 usecs". */
static void parse_initcalls(struct bench *b, const char *out)
{
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		size_t len = strcspn(p, "\n");
		const char *ic = memmem(p, len, "initcall ", 9);
		const char *after = memmem(p, len, " returned ", 10);
		const char *us_at = after ? memmem(after, len - (size_t)(after - p), " after ", 7) : NULL;
		if (!ic || !us_at || after < ic)
			continue;
		const char *fn = ic + 9;
		size_t fnlen = strcspn(fn, "+ \n");
		char *end;
		long us = strtol(us_at + 7, &end, 10);
		if (fnlen && us >= 0 && !strncmp(end, " usecs", 6))
			keep_slowest(b, fn, fnlen, us);
	}
}

static int initcall_run(struct bench *b)
{
	if (!b->o.initcalls)
		return 0;
	/* the same line, initcall_debug printing whatever the loglevel */
	char line[4096];
	snprintf(line, sizeof(line), "%s initcall_debug ignore_loglevel",
		 b->o.cmdline ? b->o.cmdline : BENCH_CMDLINE_BASE);
	const char *extra[] = { "--cmdline", line, NULL };
	int st = cold_spawn(b, extra, "the initcall_debug boot");
	if (st != 0)
		return st;
	char *out = read_output(b, "out");
	if (out)
		parse_initcalls(b, out);
	free(out);
	return 0;
}

static int runs(struct bench *b)
{
	char tpl[96];
	snprintf(tpl, sizeof(tpl), "%s/template", b->dir);
	const char *extra[] = { "--snapshot", tpl, NULL };
	int st = cold_spawn(b, extra, "saving the template");
	if (st != 0)
		return st;
	const char *cold[32], *rest[] = { "kvmbox", "run", "--restore", tpl, "--no-net",
					  "--profile=json", NULL };
	const char *prof[] = { "--profile=json", NULL };
	cold_argv(b, cold, prof);
	for (unsigned i = 0; i < b->o.runs; i++) {
		char what[48];
		snprintf(what, sizeof(what), "cold boot %u", i + 1);
		if ((st = one_run(b, what, (char *const *)cold, &b->cold[i])) != 0)
			return st;
		snprintf(what, sizeof(what), "restore %u", i + 1);
		if ((st = one_run(b, what, (char *const *)rest, &b->restore[i])) != 0)
			return st;
	}
	return initcall_run(b);
}

/* ---- figures ---- */

struct stat4 {
	double p50, p90, min, max;
	unsigned n;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Over the runs that reached the mark. */
static struct stat4 stat_of(const struct bench_run *rs, unsigned n, unsigned mark)
{
	double v[BENCH_MAX_RUNS];
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		if (rs[i].v[mark] >= 0)
			v[k++] = rs[i].v[mark];
	struct stat4 s = { .n = k };
	if (!k)
		return s;
	qsort(v, k, sizeof(v[0]), cmp_double);
	s.p50 = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	unsigned r90 = (9 * k + 9) / 10;	/* nearest rank: ceil(0.9 k) */
	s.p90 = v[r90 - 1];
	s.min = v[0];
	s.max = v[k - 1];
	return s;
}

static const char *mark_name(unsigned m)
{
	return m < PHASE_COUNT ? profile_phase_name(m) :
		m == MARK_EXIT ? "process_exit" : m == MARK_CPU ? "vmm_cpu_ms" : "peak_rss_mib";
}

static void print_json(const struct bench *b)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "runs", json_object_new_int((int)b->o.runs));
	json_object_object_add(j, "kernel", b->o.kernel ? json_object_new_string(b->o.kernel) : NULL);
	json_object_object_add(j, "initrd", b->o.initrd ? json_object_new_string(b->o.initrd) : NULL);
	json_object_object_add(j, "cmdline", json_object_new_string(b->o.cmdline ? b->o.cmdline :
								      CMDLINE_DEFAULT));
	json_object_object_add(j, "memory", json_object_new_string(b->o.memory));
	json_object_object_add(j, "cpus", json_object_new_int((int)b->o.cpus));
	const struct { const char *name; const struct bench_run *rs; } sets[] = {
		{ "cold", b->cold }, { "restore", b->restore },
	};
	for (unsigned s = 0; s < 2; s++) {
		json_object *o = json_object_new_object();
		for (unsigned m = 0; m < NMARKS; m++) {
			struct stat4 st = stat_of(sets[s].rs, b->o.runs, m);
			if (!st.n)
				continue;
			json_object *f = json_object_new_object();
			json_object_object_add(f, "p50", json_object_new_double(st.p50));
			json_object_object_add(f, "p90", json_object_new_double(st.p90));
			json_object_object_add(f, "min", json_object_new_double(st.min));
			json_object_object_add(f, "max", json_object_new_double(st.max));
			json_object_object_add(o, mark_name(m), f);
		}
		json_object_object_add(j, sets[s].name, o);
	}
	json_object *calls = json_object_new_array();
	for (unsigned i = 0; i < b->ncalls; i++) {
		json_object *c = json_object_new_object();
		json_object_object_add(c, "fn", json_object_new_string(b->calls[i].fn));
		json_object_object_add(c, "us", json_object_new_int64(b->calls[i].us));
		json_object_array_add(calls, c);
	}
	json_object_object_add(j, "slowest_initcalls", calls);
	json_object_object_add(j, "initcalls_total_us", json_object_new_int64(b->calls_total_us));
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
}

static void print_table(const struct bench *b)
{
	printf("bench boot: %u cold boots and %u restores of a template, taking turns; "
	       "%s MiB, %u vCPU%s, --no-net\n", b->o.runs, b->o.runs, b->o.memory, b->o.cpus,
	       b->o.cpus == 1 ? "" : "s");
	printf("kernel %s, initrd %s, command line \"%s\"\n",
	       b->o.kernel ? b->o.kernel : "(kvmbox run's default)",
	       b->o.initrd ? b->o.initrd : "(kvmbox run's default)",
	       b->o.cmdline ? b->o.cmdline : CMDLINE_DEFAULT);
	printf("%-20s %10s %10s %10s %10s   %10s %10s %10s %10s\n", "ms since exec", "cold p50",
	       "p90", "min", "max", "restore p50", "p90", "min", "max");
	for (unsigned m = 0; m < NMARKS; m++) {
		struct stat4 c = stat_of(b->cold, b->o.runs, m), r = stat_of(b->restore, b->o.runs, m);
		if (!c.n && !r.n)
			continue;
		if (m == MARK_CPU)
			printf("%-20s\n", "(not since exec)");
		printf("%-20s", mark_name(m));
		const struct stat4 *both[] = { &c, &r };
		for (unsigned s = 0; s < 2; s++) {
			if (both[s]->n)
				printf(" %10.1f %10.1f %10.1f %10.1f%s", both[s]->p50, both[s]->p90,
				       both[s]->min, both[s]->max, s ? "" : "  ");
			else
				printf(" %10s %10s %10s %10s%s", "-", "-", "-", "-", s ? "" : "  ");
		}
		printf("\n");
	}
	if (!b->o.initcalls)
		return;
	if (!b->ncalls) {
		printf("guest kernel: no initcall lines in its output (initcall_debug not honoured?)\n");
		return;
	}
	printf("guest kernel: initcalls took %.1f ms in all (initcall_debug boot); the slowest:\n",
	       (double)b->calls_total_us / 1e3);
	for (unsigned i = 0; i < b->ncalls; i++)
		printf("  %8.1f ms  %s\n", (double)b->calls[i].us / 1e3, b->calls[i].fn);
}

/* ---- command ---- */

static int usage(const char *why)
{
	if (why) {
		log_err("bench: %s (try kvmbox bench --help)", why);
		return EXIT_USAGE;
	}
	fprintf(stdout,
		"usage: kvmbox bench boot [--kernel PATH] [--initrd PATH] [--cmdline STR] [--runs N]\n"
		"                         [--memory MiB] [--cpus N] [--initcalls N] [--json]\n"
		"Boot latency on this machine: a template saved once, then N cold boots and N\n"
		"restores taking turns (kvmbox run --no-net, default 10 each), per phase the\n"
		"median, p90, min and max of the ms since exec, the VMM's CPU time and peak RSS,\n"
		"and the guest kernel's N slowest initcalls (default 10; 0 skips that boot).\n"
		"Kernel, initrd, command line, memory (default 256) and vCPUs (default 1) as\n"
		"kvmbox run takes them.  Pin it to CPUs with taskset to compare runs; see docs/vmm.md.\n");
	return 0;
}

static int parse_count(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n < lo || n > hi)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "runs", required_argument, NULL, 'n' }, { "memory", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' }, { "initcalls", required_argument, NULL, 'I' },
		{ "cmdline", required_argument, NULL, 'C' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	*o = (struct bench_opts){ .runs = 10, .cpus = 1, .initcalls = 10, .memory = "256" };
	opterr = 0;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'm': o->memory = optarg; break;
		case 'C': o->cmdline = optarg; break;
		case 'j': o->json = true; break;
		case 'h': return usage(NULL) == 0 ? 1 : -1;
		case 'n':
			if (parse_count(optarg, 1, BENCH_MAX_RUNS, &o->runs) < 0)
				return usage("--runs takes 1 to 1000"), -1;
			break;
		case 'c':
			if (parse_count(optarg, 1, 64, &o->cpus) < 0)
				return usage("--cpus takes 1 to 64"), -1;
			break;
		case 'I':
			if (parse_count(optarg, 0, 100, &o->initcalls) < 0)
				return usage("--initcalls takes 0 to 100"), -1;
			break;
		default: {
			char why[160];
			snprintf(why, sizeof(why), "unknown option '%.100s'", argv[optind - 1]);
			return usage(why), -1;
		}
		}
	}
	if (optind < argc) {
		char why[160];
		snprintf(why, sizeof(why), "unexpected argument '%.100s'", argv[optind]);
		return usage(why), -1;
	}
	return 0;
}

/* Remove what the bench made: out, err, the template's files, the
 * folders (mkdtemp's, so nothing else is in them). */
static void remove_dir(const struct bench *b)
{
	int d = open(b->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return;
	unlinkat(d, "out", 0);
	unlinkat(d, "err", 0);
	int t = openat(d, "template", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir = t >= 0 ? fdopendir(t) : NULL;
	for (struct dirent *e; dir && (e = readdir(dir));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(t, e->d_name, 0);
	if (dir)
		closedir(dir);
	else if (t >= 0)
		close(t);
	unlinkat(d, "template", AT_REMOVEDIR);
	close(d);
	rmdir(b->dir);
}

int cmd_bench(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "boot")) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
			return usage(NULL);
		return usage(argc < 2 ? "which benchmark? (boot)" : "unknown benchmark (boot)");
	}
	struct bench b = { 0 };
	int r = parse_opts(argc - 1, argv + 1, &b.o);
	if (r)
		return r > 0 ? 0 : EXIT_USAGE;
	snprintf(b.cpus, sizeof(b.cpus), "%u", b.o.cpus);
	const char *tmp = getenv("TMPDIR");
	snprintf(b.dir, sizeof(b.dir), "%s/kvmbox-bench-XXXXXX",
		 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	b.cold = calloc(b.o.runs, sizeof(*b.cold));
	b.restore = calloc(b.o.runs, sizeof(*b.restore));
	b.calls = calloc(b.o.initcalls + 1, sizeof(*b.calls));
	if (!b.cold || !b.restore || !b.calls || !mkdtemp(b.dir)) {
		log_err("bench: %s", !b.cold || !b.restore || !b.calls ? "out of memory" : strerror(errno));
		free(b.cold);
		free(b.restore);
		free(b.calls);
		return 1;
	}
	if (!b.o.json)
		fprintf(stderr, "kvmbox: bench: a template, then %u cold boot%s and %u restore%s...\n",
			b.o.runs, b.o.runs == 1 ? "" : "s", b.o.runs, b.o.runs == 1 ? "" : "s");
	int status = runs(&b);
	if (status == 0) {
		if (b.o.json)
			print_json(&b);
		else
			print_table(&b);
	}
	remove_dir(&b);
	free(b.cold);
	free(b.restore);
	free(b.calls);
	return status;
}
