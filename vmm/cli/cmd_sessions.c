/* vmm/cli/cmd_sessions.c - the named sandboxes' commands
 * (launch/session/session.h):
 *   kvmbox ps [--json]             every session: name, agent, state,
 *                                  uptime, memory, CPU, project
 *   kvmbox inspect NAME [--json]   one session's record and state, as JSON
 *   kvmbox stop NAME [--time S]    SIGTERM, then again after S seconds,
 *                                  then SIGKILL (default 10)
 *   kvmbox stop --suspend NAME     the VM saved and the sandbox ended,
 *                                  suspended (VM_SIG_SUSPEND)
 *   kvmbox resume NAME             a suspended sandbox again
 *   kvmbox rm NAME...              the records of ended or dead sessions
 * Usage errors: one line, status 2; a session that is not there or not in
 * the state asked for: one line, status 1.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "launch/config/config.h"
#include "launch/session/session.h"
#include "launch/worktree/worktree.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

#define STOP_GRACE_S 10
#define SUSPEND_WAIT_S 300	/* writing a large guest's memory takes a while */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "3d4h", "2h05m", "4m12s", "9s" */
static void span_text(long long ms, char *out, size_t outsz)
{
	long long s = ms > 0 ? ms / 1000 : 0;
	if (s >= 86400)
		snprintf(out, outsz, "%lldd%lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, outsz, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, outsz, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, outsz, "%llds", s);
}

/* The record and how it stands, as JSON (the caller puts it). */
static struct json_object *session_json(const struct session_info *i)
{
	struct json_object *o = json_object_new_object();
	enum session_state st = session_state(i);
	json_object_object_add(o, "name", json_object_new_string(i->name));
	json_object_object_add(o, "agent", json_object_new_string(i->agent));
	json_object_object_add(o, "state", json_object_new_string(session_state_name(st)));
	json_object_object_add(o, "project", json_object_new_string(i->project));
	json_object_object_add(o, "image", json_object_new_string(i->image));
	json_object_object_add(o, "egress_profile", json_object_new_string(i->egress_profile));
	json_object_object_add(o, "memory_mib", json_object_new_int64(i->memory_mib));
	json_object_object_add(o, "cpus", json_object_new_int64(i->cpus));
	struct json_object *repos = json_object_new_array();
	char buf[sizeof(i->repos)];
	snprintf(buf, sizeof(buf), "%s", i->repos);
	for (char *save, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		json_object_array_add(repos, json_object_new_string(t));
	json_object_object_add(o, "repos", repos);
	if (i->worktree[0]) {
		json_object_object_add(o, "worktree", json_object_new_string(i->worktree));
		json_object_object_add(o, "branch", json_object_new_string(i->branch));
	}
	struct json_object *ports = json_object_new_array();
	snprintf(buf, sizeof(buf), "%s", i->ports);
	for (char *save, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
		json_object_array_add(ports, json_object_new_string(t));
	json_object_object_add(o, "ports", ports);
	json_object_object_add(o, "pid", json_object_new_int64(i->pid));
	json_object_object_add(o, "started_ms", json_object_new_int64(i->started_ms));
	if (st == SESSION_EXITED) {
		json_object_object_add(o, "status", json_object_new_int64(i->status));
		json_object_object_add(o, "ended_ms", json_object_new_int64(i->ended_ms));
	}
	unsigned long long saved;
	if (st == SESSION_SUSPENDED) {
		json_object_object_add(o, "suspended_ms", json_object_new_int64(i->ended_ms));
		if (session_saved_bytes(i->name, &saved) == 0)
			json_object_object_add(o, "saved_bytes", json_object_new_uint64(saved));
	}
	unsigned long long rss, cpu_ns;
	if (st == SESSION_RUNNING && session_usage(i, &rss, &cpu_ns) == 0) {
		json_object_object_add(o, "rss_bytes", json_object_new_uint64(rss));
		json_object_object_add(o, "cpu_ns", json_object_new_uint64(cpu_ns));
	}
	return o;
}

static int print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* One command's words: NAMEs, a flag without a value (bool_flag, setting
 * *set) and one with (value_flag, into *value).  0, or EXIT_USAGE after a
 * line. */
static int words(const char *cmd, int argc, char **argv, const char *bool_flag, bool *set,
		 const char **value, const char *value_flag, const char **names, int *nnames, int max_names,
		 const char *help)
{
	*nnames = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("%s", help);
			exit(0);
		} else if (bool_flag && !strcmp(argv[i], bool_flag)) {
			*set = true;
		} else if (value_flag && !strcmp(argv[i], value_flag)) {
			if (++i == argc) {
				log_err("%s: a value is missing for %s (try kvmbox %s --help)", cmd, value_flag, cmd);
				return EXIT_USAGE;
			}
			*value = argv[i];
		} else if (argv[i][0] == '-') {
			log_err("%s: unknown option %s (try kvmbox %s --help)", cmd, argv[i], cmd);
			return EXIT_USAGE;
		} else if (*nnames == max_names) {
			log_err("%s: one session name, not more (try kvmbox %s --help)", cmd, cmd);
			return EXIT_USAGE;
		} else {
			names[(*nnames)++] = argv[i];
		}
	}
	return 0;
}

/* The session NAME's record, or status 1 after a line. */
static int find(const char *cmd, const char *name, struct session_info *i)
{
	int r = session_read(name, i);
	if (r == -ENOENT)
		log_err("%s: no session named %.64s (kvmbox ps lists them)", cmd, name);
	else if (r < 0)
		log_err("%s: the record of %.64s: %s", cmd, name, r == -EINVAL ? "not a session's" : strerror(-r));
	return r < 0 ? 1 : 0;
}

int cmd_ps(int argc, char **argv)
{
	bool json = false;
	const char *names[1];
	int n, r = words("ps", argc, argv, "--json", &json, NULL, NULL, names, &n, 0,
			 "usage: kvmbox ps [--json]\n"
			 "Every sandbox of this user: name, agent, state (running, exited, suspended,\n"
			 "or dead: gone without a word), uptime, memory and CPU of its processes (a\n"
			 "suspended one's memory: what its saved VM takes on disk), project (and\n"
			 "a --worktree sandbox's branch), published ports.\n"
			 "kvmbox stop NAME stops one, kvmbox rm NAME removes an ended one's record.\n");
	if (r)
		return r;
	struct session_info *all = calloc(SESSION_MAX, sizeof(*all));
	if (!all) {
		log_err("ps: out of memory");
		return 1;
	}
	int count = session_list(all, SESSION_MAX);
	if (count < 0) {
		log_err("ps: the sessions' folder: %s", strerror(-count));
		free(all);
		return 1;
	}
	if (json) {
		struct json_object *a = json_object_new_array();
		for (int k = 0; k < count; k++)
			json_object_array_add(a, session_json(&all[k]));
		free(all);
		return print_json(a);
	}
	printf("%-24s %-10s %-12s %-8s %-9s %-9s %s\n", "NAME", "AGENT", "STATE", "UPTIME", "MEMORY", "CPU",
	       "PROJECT");
	long long now = now_ms();
	for (int k = 0; k < count; k++) {
		const struct session_info *i = &all[k];
		enum session_state st = session_state(i);
		char state[24], up[32] = "-", mem[32] = "-", cpu[32] = "-";
		if (st == SESSION_EXITED)
			snprintf(state, sizeof(state), "exited (%d)", i->status);
		else
			snprintf(state, sizeof(state), "%s", session_state_name(st));
		unsigned long long rss, cpu_ns;
		if (st == SESSION_RUNNING && session_usage(i, &rss, &cpu_ns) == 0) {
			span_text(now - i->started_ms, up, sizeof(up));
			snprintf(mem, sizeof(mem), "%lluM", rss >> 20);
			snprintf(cpu, sizeof(cpu), "%.1fs", (double)cpu_ns / 1e9);
		}
		unsigned long long saved;
		if (st == SESSION_SUSPENDED && session_saved_bytes(i->name, &saved) == 0)
			snprintf(mem, sizeof(mem), "%lluM", saved >> 20);	/* what it keeps on disk */
		printf("%-24s %-10s %-12s %-8s %-9s %-9s %s%s%s%s%s%s\n", i->name, i->agent, state, up, mem, cpu,
		       i->project, i->branch[0] ? " (" : "", i->branch, i->branch[0] ? ")" : "",
		       i->ports[0] ? "  ports " : "", i->ports);
	}
	free(all);
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_inspect(int argc, char **argv)
{
	bool json = false;
	const char *names[1];
	int n, r = words("inspect", argc, argv, "--json", &json, NULL, NULL, names, &n, 1,
			 "usage: kvmbox inspect NAME [--json]\n"
			 "One sandbox's record and state as JSON: agent, project, image, memory,\n"
			 "CPUs, egress profile, allow-listed repositories, process, start time,\n"
			 "state (and status once ended), memory and CPU while it runs.\n");
	if (r)
		return r;
	if (n != 1) {
		log_err("inspect: which session? (try kvmbox inspect --help)");
		return EXIT_USAGE;
	}
	struct session_info i;
	if (find("inspect", names[0], &i))
		return 1;
	return print_json(session_json(&i));
}

/* kvmbox stop --suspend: ask, wait, and say what became of it. */
static int stop_suspend(const struct session_info *i, unsigned wait_s)
{
	int r = session_suspend(i, wait_s * 1000);
	if (r == -EOPNOTSUPP) {
		log_err("stop: %s cannot be suspended (a --review or --worktree sandbox, or one started "
			"by an older kvmbox): kvmbox stop %s ends it", i->name, i->name);
		return 1;
	}
	if (r == -ETIMEDOUT) {
		log_err("stop: %s was asked to suspend and has not ended after %u s (its terminal or kvmbox "
			"logs %s says why)", i->name, wait_s, i->name);
		return 1;
	}
	struct session_info now;
	if (r == 0 && session_read(i->name, &now) == 0 && session_state(&now) == SESSION_SUSPENDED) {
		printf("%s suspended (kvmbox resume %s)\n", i->name, i->name);
		return 0;
	}
	if (r < 0 && r != -ESRCH)
		log_err("stop: %s: %s", i->name, strerror(-r));
	else
		log_err("stop: %s ended without being saved (kvmbox logs %s says why)", i->name, i->name);
	return 1;
}

int cmd_resume(int argc, char **argv)
{
	const char *names[1];
	int n, r = words("resume", argc, argv, NULL, NULL, NULL, NULL, names, &n, 1,
			 "usage: kvmbox resume NAME\n"
			 "Take up a sandbox suspended by kvmbox stop --suspend NAME: its VM restored\n"
			 "where it was saved (the agent and its terminal, the shares, new network\n"
			 "connections; those open when it was saved were reset), launched as it was\n"
			 "(the same folder, words and configuration; at a terminal, attached).\n");
	if (r)
		return r;
	if (n != 1) {
		log_err("resume: which session? (try kvmbox resume --help)");
		return EXIT_USAGE;
	}
	struct session_info i;
	if (find("resume", names[0], &i))
		return 1;
	enum session_state st = session_state(&i);
	if (st != SESSION_SUSPENDED) {
		log_err("resume: %s is not suspended (%s)", i.name, session_state_name(st));
		return 1;
	}
	return agent_resume(i.name);
}

int cmd_stop(int argc, char **argv)
{
	const char *names[1], *secs = NULL;
	bool suspend = false;
	int n, r = words("stop", argc, argv, "--suspend", &suspend, &secs, "--time", names, &n, 1,
			 "usage: kvmbox stop NAME [--time SECONDS]\n"
			 "       kvmbox stop --suspend NAME [--time SECONDS]\n"
			 "Stop a running sandbox: its agent gets SIGTERM (the VM stops when it ends),\n"
			 "again after SECONDS (default 10), then the sandbox is killed.  Its record\n"
			 "stays until kvmbox rm NAME.\n"
			 "--suspend: save the sandbox's VM instead, the agent and all it runs as they\n"
			 "are, and end it; kvmbox resume NAME goes on from there (kvmbox rm NAME\n"
			 "drops it).  SECONDS (default 300) is how long the save may take.\n");
	if (r)
		return r;
	if (n != 1) {
		log_err("stop: which session? (try kvmbox stop --help)");
		return EXIT_USAGE;
	}
	unsigned long grace = suspend ? SUSPEND_WAIT_S : STOP_GRACE_S;
	if (secs) {
		char *end;
		errno = 0;
		grace = strtoul(secs, &end, 10);
		if (errno || *end || !*secs || grace > 3600) {
			log_err("stop: --time wants seconds, 0 to 3600, got '%.32s'", secs);
			return EXIT_USAGE;
		}
	}
	struct session_info i;
	if (find("stop", names[0], &i))
		return 1;
	enum session_state st = session_state(&i);
	if (st != SESSION_RUNNING) {
		log_err("stop: %s is not running (%s)", i.name, session_state_name(st));
		return 1;
	}
	if (suspend)
		return stop_suspend(&i, (unsigned)grace);
	r = session_stop(&i, (unsigned)grace * 1000);
	if (r == -ESRCH || r == 0) {
		printf("%s stopped\n", i.name);
		return 0;
	}
	log_err("stop: %s: %s", i.name, strerror(-r));
	return 1;
}

/* The detach keys: --detach-keys, else the configuration's (the global
 * file, KVMBOX_DETACH_KEYS), else SESSION_DETACH_KEYS.  0, or EXIT_USAGE
 * after a line. */
static int detach_keys(const char *flag, unsigned char keys[2])
{
	if (flag) {
		if (session_detach_keys_parse(flag, keys) == 0)
			return 0;
		log_err("attach: --detach-keys wants two keys, ctrl-X or a character, as in %s; got '%.32s'",
			SESSION_DETACH_KEYS, flag);
		return EXIT_USAGE;
	}
	struct config cfg;
	char err[512];
	int r = config_load(&cfg, NULL, agent_config_check, err, sizeof(err));
	const struct config_setting *set = r == 0 ? &cfg.set[config_option_find("detach_keys") - config_options] : NULL;
	if (r < 0)
		log_err("attach: %s", err);
	else if (session_detach_keys_parse(set->text ? set->text : SESSION_DETACH_KEYS, keys) < 0)
		session_detach_keys_parse(SESSION_DETACH_KEYS, keys);	/* config_load judged it */
	config_fini(&cfg);
	return r < 0 ? EXIT_USAGE : 0;
}

int cmd_attach(int argc, char **argv)
{
	const char *names[1], *keys_text = NULL;
	int n, r = words("attach", argc, argv, NULL, NULL, &keys_text, "--detach-keys", names, &n, 1,
			 "usage: kvmbox attach NAME [--detach-keys KEY,KEY]\n"
			 "Bring a running sandbox's terminal here: what it printed meanwhile is\n"
			 "replayed and the agent redraws for this terminal's size; another terminal\n"
			 "attached to it lets go.  Ctrl-] then d (or the configured detach_keys)\n"
			 "detaches again, and the sandbox runs on.\n");
	if (r)
		return r;
	if (n != 1) {
		log_err("attach: which session? (try kvmbox attach --help)");
		return EXIT_USAGE;
	}
	struct attach_opts o = { .name = names[0] };
	unsigned char keys[2];
	if ((r = detach_keys(keys_text, keys)) != 0)
		return r;
	o.detach_prefix = keys[0];
	o.detach_key = keys[1];
	struct session_info i;
	if (find("attach", names[0], &i))
		return 1;
	int fd = session_attach_connect(i.name);
	if (fd == -ESRCH && session_state(&i) == SESSION_SUSPENDED) {
		log_err("attach: %s is suspended: kvmbox resume %s takes it up", i.name, i.name);
		return 1;
	}
	if (fd == -ESRCH) {
		log_err("attach: %s is not running (%s): kvmbox logs %s shows what it printed", i.name,
			session_state_name(session_state(&i)), i.name);
		return 1;
	}
	if (fd == -ENOTCONN) {
		log_err("attach: %s was not started at a terminal or with --detach: nothing to attach to", i.name);
		return 1;
	}
	if (fd < 0) {
		log_err("attach: %s: %s", i.name, strerror(-fd));
		return 1;
	}
	return session_attach_run(fd, &o);
}

/* A --worktree sandbox's worktree and branch (launch/worktree): 0 when
 * gone (or there was none), else 1 after a line. */
static int remove_worktree(const struct session_info *i, bool force)
{
	if (!i->worktree[0])
		return 0;
	char err[600];
	bool kept;
	int r = worktree_remove(i->project, i->worktree, i->branch, force, &kept, err, sizeof(err));
	if (r == -ENOTEMPTY)
		log_err("rm: %s's worktree %s has uncommitted changes: commit them, or kvmbox rm --force %s "
			"drops them", i->name, i->worktree, i->name);
	else if (r < 0)
		log_err("rm: %s's worktree: %s", i->name, err);
	else if (kept)
		log_warn("rm: %s's branch %s stays: it has commits no other branch has", i->name, i->branch);
	return r < 0 ? 1 : 0;
}

int cmd_rm(int argc, char **argv)
{
	const char *names[32];
	bool force = false;
	int n, r = words("rm", argc, argv, "--force", &force, NULL, NULL, names, &n, 32,
			 "usage: kvmbox rm [--force] NAME...\n"
			 "Remove the records of sandboxes that ended or died (a running one: kvmbox\n"
			 "stop NAME first); a suspended one's saved VM and launch folder go with it.\n"
			 "A --worktree sandbox's worktree goes with it, and its\n"
			 "branch when no commit is only there; a branch with commits of its own, or\n"
			 "uncommitted changes in the worktree, keep it unless --force (which removes\n"
			 "the worktree, changes and all, and still keeps such a branch).\n");
	if (r)
		return r;
	if (n == 0) {
		log_err("rm: which session? (try kvmbox rm --help)");
		return EXIT_USAGE;
	}
	int status = 0;
	for (int k = 0; k < n; k++) {
		struct session_info i;
		r = session_read(names[k], &i);
		if (r == 0 && session_state(&i) == SESSION_RUNNING)
			r = -EBUSY;
		else if (r == 0 && remove_worktree(&i, force) != 0) {
			status = 1;
			continue;
		}
		if (r == 0)
			r = session_remove(names[k]);
		/* a suspended or dead one's (an exited one removed its own) */
		if (r == 0 && i.launch_dir[0])
			agent_launch_dir_remove(i.launch_dir);
		if (r == 0)
			continue;
		status = 1;
		if (r == -EBUSY)
			log_err("rm: %s is running: kvmbox stop %s first", names[k], names[k]);
		else if (r == -ENOENT)
			log_err("rm: no session named %.64s (kvmbox ps lists them)", names[k]);
		else
			log_err("rm: %.64s: %s", names[k], strerror(-r));
	}
	return status;
}
