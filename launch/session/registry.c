/* launch/session/registry.c - the sessions' folder, their names and their
 * records (see session.h). */
#include "launch/session/session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "launch/state.h"

#define STATE_FILE "state.json"
#define LOCK_FILE "lock"
#define STATE_MAX (64 * 1024)
#define NAME_TRIES 99

int session_root(char *out, size_t outsz)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char base[PATH_MAX];
	if (rt && rt[0] == '/')
		snprintf(base, sizeof(base), "%s/kvmbox", rt);
	else
		snprintf(base, sizeof(base), "/tmp/kvmbox-%u", (unsigned)getuid());
	int r = private_dir(base);
	if (r < 0)
		return r;
	if ((size_t)snprintf(out, outsz, "%s/sessions", base) >= outsz)
		return -ENAMETOOLONG;
	return private_dir(out);
}

bool session_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SESSION_NAME_MAX || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || strchr("._-", name[i])))
			return false;
	return true;
}

void session_default_name(const char *project, const char *agent, char *out, size_t outsz)
{
	const char *base = strrchr(project, '/');
	base = base && base[1] ? base + 1 : "root";
	char stem[33];
	size_t k = 0;
	for (const char *p = base; *p && k < sizeof(stem) - 1; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
		stem[k++] = ok ? c : '-';
	}
	stem[k] = 0;
	const char *s = stem;
	while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
		s++;	/* ".hidden" -> "hidden" */
	char ag[16];
	snprintf(ag, sizeof(ag), "%s", agent);
	for (char *p = ag; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			*p = '-';
	snprintf(out, outsz, "%s%s%s", *s ? s : "", *s ? "-" : "", ag[0] ? ag : "agent");
	if (!session_name_valid(out))
		snprintf(out, outsz, "session");
}

/* ---- the record ---- */

static void remove_saved(const char *name);
static int remove_dir(const char *dir);

static int write_json(const char *dir, const char *file, struct json_object *o);

static int write_state(const char *dir, const struct session_info *i)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "name", json_object_new_string(i->name));
	json_object_object_add(o, "agent", json_object_new_string(i->agent));
	json_object_object_add(o, "project", json_object_new_string(i->project));
	json_object_object_add(o, "image", json_object_new_string(i->image));
	json_object_object_add(o, "egress_profile", json_object_new_string(i->egress_profile));
	json_object_object_add(o, "memory_mib", json_object_new_int64(i->memory_mib));
	json_object_object_add(o, "cpus", json_object_new_int64(i->cpus));
	json_object_object_add(o, "repos", json_object_new_string(i->repos));
	if (i->ports[0])
		json_object_object_add(o, "ports", json_object_new_string(i->ports));
	if (i->launch_dir[0])
		json_object_object_add(o, "launch_dir", json_object_new_string(i->launch_dir));
	if (i->worktree[0]) {
		json_object_object_add(o, "worktree", json_object_new_string(i->worktree));
		json_object_object_add(o, "branch", json_object_new_string(i->branch));
	}
	json_object_object_add(o, "pid", json_object_new_int64(i->pid));
	json_object_object_add(o, "start_ticks", json_object_new_uint64(i->start_ticks));
	json_object_object_add(o, "started_ms", json_object_new_int64(i->started_ms));
	json_object_object_add(o, "ended", json_object_new_boolean(i->ended));
	json_object_object_add(o, "status", json_object_new_int64(i->status));
	json_object_object_add(o, "ended_ms", json_object_new_int64(i->ended_ms));
	if (i->suspendable)
		json_object_object_add(o, "suspendable", json_object_new_boolean(true));
	if (i->suspended)
		json_object_object_add(o, "suspended", json_object_new_boolean(true));
	return write_json(dir, STATE_FILE, o);
}

/* o (consumed) into dir/file, 0600, through ".file.new" and a rename:
 * 0 or -errno. */
static int write_json(const char *dir, const char *file, struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char tmp[PATH_MAX + 32], path[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s/.%s.new", dir, file);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int r = 0;
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		r = -errno;
	else {
		r = write_full(fd, text, strlen(text));
		if (close(fd) < 0 && !r)
			r = -errno;
		if (!r && rename(tmp, path) < 0)
			r = -errno;
		if (r)
			unlink(tmp);
	}
	json_object_put(o);
	return r;
}

static bool get_str(struct json_object *o, const char *key, char *out, size_t outsz)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	return (size_t)snprintf(out, outsz, "%s", json_object_get_string(v)) < outsz;
}

/* An optional boolean member: false when absent; false (not one) when of
 * another type. */
static bool get_opt_bool(struct json_object *o, const char *key, bool *out)
{
	struct json_object *v;
	*out = false;
	if (!json_object_object_get_ex(o, key, &v))
		return true;
	*out = json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
	return json_object_is_type(v, json_type_boolean);
}

static bool get_int(struct json_object *o, const char *key, long long lo, long long hi, long long *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return *out >= lo && *out <= hi;
}

/* dir/file, one whole JSON object, into *out (json_object_put it):
 * 0, -ENOENT, -EINVAL (not one), -errno. */
static int read_json(const char *dir, const char *file, struct json_object **out)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	uint8_t *text;
	size_t len;
	int r = read_file(path, STATE_MAX, &text, &len);
	if (r < 0)
		return r;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)text, (int)len) : NULL;
	bool whole = tok && json_tokener_get_error(tok) == json_tokener_success &&
		     json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	free(text);
	if (!o || !whole || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	*out = o;
	return 0;
}

/* The record in dir (named name): 0, -ENOENT, -EINVAL. */
static int read_state(const char *dir, const char *name, struct session_info *i)
{
	memset(i, 0, sizeof(*i));
	struct json_object *o;
	int r = read_json(dir, STATE_FILE, &o);
	if (r < 0)
		return r;
	long long pid, ticks, started, status, ended_ms, mem, cpus;
	struct json_object *ended;
	bool ok = get_str(o, "name", i->name, sizeof(i->name)) && !strcmp(i->name, name) &&
		  get_str(o, "agent", i->agent, sizeof(i->agent)) &&
		  get_str(o, "project", i->project, sizeof(i->project)) &&
		  get_str(o, "image", i->image, sizeof(i->image)) &&
		  get_str(o, "egress_profile", i->egress_profile, sizeof(i->egress_profile)) &&
		  get_str(o, "repos", i->repos, sizeof(i->repos)) &&
		  (!json_object_object_get_ex(o, "ports", NULL) || get_str(o, "ports", i->ports, sizeof(i->ports))) &&
		  (!json_object_object_get_ex(o, "launch_dir", NULL) ||
		   (get_str(o, "launch_dir", i->launch_dir, sizeof(i->launch_dir)) && i->launch_dir[0] == '/')) &&
		  (!json_object_object_get_ex(o, "worktree", NULL) ||
		   (get_str(o, "worktree", i->worktree, sizeof(i->worktree)) && i->worktree[0] == '/' &&
		    get_str(o, "branch", i->branch, sizeof(i->branch)))) &&
		  get_int(o, "memory_mib", 0, UINT32_MAX, &mem) && get_int(o, "cpus", 0, UINT32_MAX, &cpus) &&
		  get_int(o, "pid", 1, INT32_MAX, &pid) && get_int(o, "start_ticks", 0, INT64_MAX, &ticks) &&
		  get_int(o, "started_ms", 0, INT64_MAX, &started) &&
		  get_int(o, "status", -1, 255 + 128, &status) && get_int(o, "ended_ms", 0, INT64_MAX, &ended_ms) &&
		  json_object_object_get_ex(o, "ended", &ended) && json_object_is_type(ended, json_type_boolean) &&
		  get_opt_bool(o, "suspendable", &i->suspendable) && get_opt_bool(o, "suspended", &i->suspended);
	if (ok) {
		i->memory_mib = (unsigned)mem;
		i->cpus = (unsigned)cpus;
		i->pid = (pid_t)pid;
		i->start_ticks = (unsigned long long)ticks;
		i->started_ms = started;
		i->status = (int)status;
		i->ended_ms = ended_ms;
		i->ended = json_object_get_boolean(ended);
	}
	json_object_put(o);
	return ok ? 0 : -EINVAL;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* $XDG_STATE_HOME/kvmbox/KIND/NAME, its parents made: 0 or -errno. */
static int state_path(const char *kind, const char *name, char *out, size_t outsz)
{
	char root[PATH_MAX];
	int r = session_name_valid(name) ? state_kind_root(kind, root, sizeof(root)) : -EINVAL;
	if (r < 0)
		return r;
	return (size_t)snprintf(out, outsz, "%s/%s", root, name) >= outsz ? -ENAMETOOLONG : 0;
}

int session_suspend_dir(const char *name, char *out, size_t outsz)
{
	return state_path("suspended", name, out, outsz);
}

int session_saved_bytes(const char *name, unsigned long long *out)
{
	char sus[PATH_MAX];
	int r = session_suspend_dir(name, sus, sizeof(sus));
	if (r < 0)
		return r;
	DIR *d = opendir(sus);
	if (!d)
		return -errno;
	*out = 0;
	struct stat st;
	for (struct dirent *e; (e = readdir(d));)
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			*out += (unsigned long long)st.st_blocks * 512;	/* allocated: the memory file is sparse */
	closedir(d);
	return 0;
}

/* A snapshot folder: its files, then the folder (one holding a folder of
 * its own stays). */
static void remove_snapshot_dir(const char *sus)
{
	DIR *d = opendir(sus);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));)
		unlinkat(dirfd(d), e->d_name, 0);	/* files and links only (not "." or a folder) */
	closedir(d);
	rmdir(sus);
}

/* ---- suspended sessions outlive the runtime folder ----
 * A reboot empties $XDG_RUNTIME_DIR, and with it the record of a sandbox
 * whose VM is saved on disk.  So a suspended session's record and resume
 * record are kept on disk too, in $XDG_STATE_HOME/kvmbox/sessions/NAME/
 * (written at each suspend, session_mark_suspended), and a runtime folder
 * with no record of that name takes them back (adopt_kept) when NAME is
 * read, listed or launched.  A kept record whose saved VM is not whole
 * (no state file: it was resumed and ran) is dropped, VM and all. */
int session_kept_dir(const char *name, char *out, size_t outsz)
{
	return state_path("sessions", name, out, outsz);
}

/* The suspended session's records, onto disk (best effort: without them
 * the sandbox is resumable until the next reboot). */
static void keep_record(const struct session *s)
{
	struct json_object *o;
	if (!s->kept_dir[0] || read_json(s->dir, SESSION_RESUME_FILE, &o) < 0)
		return;
	if (write_json(s->kept_dir, SESSION_RESUME_FILE, o) == 0)
		write_state(s->kept_dir, &s->info);
}

/* The saved VM of the session called name, if any, and its kept record. */
static void remove_saved(const char *name)
{
	char sus[PATH_MAX], kd[PATH_MAX];
	if (session_suspend_dir(name, sus, sizeof(sus)) == 0)
		remove_snapshot_dir(sus);
	if (session_kept_dir(name, kd, sizeof(kd)) == 0)
		remove_dir(kd);	/* the record's files, as in the runtime folder */
}

void session_drop_saved(const struct session *s)
{
	/* by the paths named at registration: the caged launch cannot look
	 * the state folder up again */
	if (s->saved_dir[0])
		remove_snapshot_dir(s->saved_dir);
	if (s->kept_dir[0])
		remove_dir(s->kept_dir);
}

/* name has no folder in the runtime folder root: its kept record, when
 * its saved VM is whole, becomes its record again (a folder made by
 * mkdir, the name's lock, as a launch makes it). */
static void adopt_kept(const char *root, const char *name)
{
	char kd[PATH_MAX], sus[PATH_MAX], state[PATH_MAX + 16], dir[PATH_MAX + SESSION_NAME_MAX + 2];
	struct session_info i;
	struct json_object *o;
	if (session_kept_dir(name, kd, sizeof(kd)) < 0 || session_suspend_dir(name, sus, sizeof(sus)) < 0 ||
	    read_state(kd, name, &i) < 0)
		return;		/* none kept (a damaged one: the next launch of the name drops it) */
	snprintf(state, sizeof(state), "%s/state", sus);
	if (!i.suspended || access(state, F_OK) < 0) {
		remove_saved(name);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	if (mkdir(dir, 0700) < 0)
		return;		/* a record of that name is there, or being made */
	if (read_json(kd, SESSION_RESUME_FILE, &o) < 0 || write_json(dir, SESSION_RESUME_FILE, o) < 0 ||
	    write_state(dir, &i) < 0)
		remove_dir(dir);
}

/* Remove a session folder's known files, then the folder (a record in
 * the runtime folder, or one kept on disk). */
static int remove_dir(const char *dir)
{
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/suspend", dir);	/* where builds before 2026-12-06 saved it */
	remove_snapshot_dir(p);
	snprintf(p, sizeof(p), "%s/" SESSION_RESUME_FILE, dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/." SESSION_RESUME_FILE ".new", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/" STATE_FILE, dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/." STATE_FILE ".new", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/" LOCK_FILE, dir);
	unlink(p);
	static const char *const holder_files[] = { HOLD_CONTROL, HOLD_LOG, HOLD_LOG ".1" };
	for (size_t i = 0; i < sizeof(holder_files) / sizeof(holder_files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, holder_files[i]);
		unlink(p);
	}
	return rmdir(dir) < 0 ? -errno : 0;
}

/* Take the folder for name: created (the lock), or the record of an ended
 * or dead session moved aside and removed first.  0, -EBUSY, -errno. */
static int take_name(const char *root, const char *name, char *dir, size_t dirsz)
{
	if ((size_t)snprintf(dir, dirsz, "%s/%s", root, name) >= dirsz)
		return -ENAMETOOLONG;
	adopt_kept(root, name);	/* a suspended one's, from before a reboot: its name stays taken */
	for (int tries = 0; tries < 8; tries++) {
		if (mkdir(dir, 0700) == 0) {
			/* a saved VM of this name no record names (its record
			 * went with a reboot's runtime folder) can never be resumed */
			remove_saved(name);
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
		struct session_info old;
		int r = read_state(dir, name, &old);
		if (r == -ENOENT || r == -EINVAL) {
			/* a folder without a record: a launch registering right
			 * now, or one that died in between; only an old one is
			 * taken over */
			struct stat st;
			if (stat(dir, &st) == 0 && time(NULL) - st.st_mtime < 10)
				return -EBUSY;
		} else if (r < 0) {
			return r;
		} else if (session_state(&old) == SESSION_RUNNING ||
			   session_state(&old) == SESSION_SUSPENDED) {
			return -EBUSY;	/* a suspended one's name is its resume's */
		}
		char aside[PATH_MAX + SESSION_NAME_MAX + 32];
		snprintf(aside, sizeof(aside), "%s/.gone-%s-%d", root, name, (int)getpid());
		if (rename(dir, aside) == 0)
			remove_dir(aside);
		/* else another launch moved it first: try again */
	}
	return -EBUSY;
}

/* The lock of the folder dir, taken for this process: 0 or -errno
 * (-EBUSY: another holds it). */
static int take_lock(struct session *s)
{
	char lock[PATH_MAX + 16];
	snprintf(lock, sizeof(lock), "%s/" LOCK_FILE, s->dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->lock_fd >= 0 && flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
	return r;
}

/* A suspendable session's folders on disk, named and made now (before
 * the launch cages itself: it writes them later, by these paths); one
 * that cannot have them is not suspendable. */
static void prepare_saved(struct session *s)
{
	if (!s->info.suspendable)
		return;
	if (session_suspend_dir(s->info.name, s->saved_dir, sizeof(s->saved_dir)) < 0 ||
	    session_kept_dir(s->info.name, s->kept_dir, sizeof(s->kept_dir)) < 0 ||
	    (mkdir(s->saved_dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(s->kept_dir, 0700) < 0 && errno != EEXIST)) {
		s->info.suspendable = false;
		s->saved_dir[0] = s->kept_dir[0] = 0;
	}
}

int session_register(const struct session_info *info, bool explicit, struct session *s)
{
	if (!session_name_valid(info->name))
		return -EINVAL;
	char root[PATH_MAX];
	int r = session_root(root, sizeof(root));
	if (r < 0)
		return r;
	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	s->info = *info;
	s->info.pid = getpid();
	s->info.started_ms = now_ms();
	s->info.ended = false;
	s->info.status = -1;
	s->info.ended_ms = 0;
	if ((r = session_proc_start_ticks(s->info.pid, &s->info.start_ticks)) < 0)
		return r;
	for (int k = 1; k <= (explicit ? 1 : NAME_TRIES); k++) {
		if (k > 1) {
			char suffix[8];
			int n = snprintf(suffix, sizeof(suffix), "-%d", k);
			size_t keep = strlen(info->name);
			if (keep + (size_t)n > SESSION_NAME_MAX)
				keep = SESSION_NAME_MAX - (size_t)n;
			snprintf(s->info.name, sizeof(s->info.name), "%.*s%s", (int)keep, info->name, suffix);
		}
		r = take_name(root, s->info.name, s->dir, sizeof(s->dir));
		if (r != -EBUSY)
			break;
	}
	if (r < 0)
		return r;
	prepare_saved(s);
	if ((r = take_lock(s)) == 0)
		r = write_state(s->dir, &s->info);
	if (r < 0) {
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		s->lock_fd = -1;
		remove_dir(s->dir);
	}
	return r;
}

int session_save(struct session *s)
{
	return write_state(s->dir, &s->info);
}

int session_mark_ended(struct session *s, int status)
{
	s->info.ended = true;
	s->info.status = status;
	s->info.ended_ms = now_ms();
	return write_state(s->dir, &s->info);
}

int session_mark_suspended(struct session *s)
{
	s->info.suspended = true;
	int r = session_mark_ended(s, 0);
	if (r == 0)
		keep_record(s);
	return r;
}

int session_reclaim(const char *name, struct session *s)
{
	memset(s, 0, sizeof(*s));
	s->lock_fd = -1;
	int r = session_dir(name, s->dir, sizeof(s->dir));
	if (r == 0)
		r = take_lock(s);
	/* read under the lock: a resume racing ours found it taken */
	if (r == 0 && (r = read_state(s->dir, name, &s->info)) == 0 &&
	    session_state(&s->info) != SESSION_SUSPENDED)
		r = -EBUSY;
	if (r == 0) {
		s->info.pid = getpid();
		s->info.started_ms = now_ms();
		s->info.ended = s->info.suspended = false;
		s->info.status = -1;
		s->info.ended_ms = 0;
		r = session_proc_start_ticks(s->info.pid, &s->info.start_ticks);
		prepare_saved(s);
	}
	if (r == 0)
		r = write_state(s->dir, &s->info);
	if (r < 0 && s->lock_fd >= 0) {
		close(s->lock_fd);
		s->lock_fd = -1;
	}
	return r;
}

int session_save_resume(const struct session *s, const struct session_resume *r)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	char key[2 * sizeof(r->ph_key) + 1];
	for (size_t i = 0; i < sizeof(r->ph_key); i++)
		sprintf(key + 2 * i, "%02x", r->ph_key[i]);
	json_object_object_add(o, "cwd", json_object_new_string(r->cwd));
	for (int i = 0; i < r->argc; i++)
		json_object_array_add(a, json_object_new_string(r->argv[i]));
	json_object_object_add(o, "argv", a);
	json_object_object_add(o, "placeholder_key", json_object_new_string(key));
	return write_json(s->dir, SESSION_RESUME_FILE, o);
}

static bool hex_key(const char *hex, unsigned char *out, size_t n)
{
	if (strlen(hex) != 2 * n || strspn(hex, "0123456789abcdef") != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	return true;
}

int session_read_resume(const char *name, struct session_resume *r)
{
	memset(r, 0, sizeof(*r));
	char dir[PATH_MAX];
	struct json_object *o, *a, *k;
	int e = session_dir(name, dir, sizeof(dir));
	if (e == 0)
		e = read_json(dir, SESSION_RESUME_FILE, &o);
	if (e < 0)
		return e;
	char key[80];
	bool ok = get_str(o, "cwd", r->cwd, sizeof(r->cwd)) && r->cwd[0] == '/' &&
		  get_str(o, "placeholder_key", key, sizeof(key)) && hex_key(key, r->ph_key, sizeof(r->ph_key)) &&
		  json_object_object_get_ex(o, "argv", &a) && json_object_is_type(a, json_type_array) &&
		  json_object_array_length(a) >= 1 && json_object_array_length(a) <= SESSION_RESUME_ARGS;
	for (size_t i = 0; ok && i < json_object_array_length(a); i++) {
		k = json_object_array_get_idx(a, i);
		ok = json_object_is_type(k, json_type_string) &&
		     (r->argv[r->argc++] = strdup(json_object_get_string(k))) != NULL;
	}
	json_object_put(o);
	return ok ? 0 : -EINVAL;
}

void session_resume_fini(struct session_resume *r)
{
	for (int i = 0; i < r->argc; i++)
		free(r->argv[i]);
	r->argc = 0;
}

int session_dir(const char *name, char *out, size_t outsz)
{
	if (!session_name_valid(name))
		return -ENOENT;
	char root[PATH_MAX];
	int r = session_root(root, sizeof(root));
	if (r < 0)
		return r;
	return (size_t)snprintf(out, outsz, "%s/%s", root, name) >= outsz ? -ENAMETOOLONG : 0;
}

int session_read(const char *name, struct session_info *out)
{
	char dir[PATH_MAX], root[PATH_MAX];
	int r = session_dir(name, dir, sizeof(dir));
	if (r == 0 && (r = read_state(dir, name, out)) == -ENOENT && session_root(root, sizeof(root)) == 0) {
		adopt_kept(root, name);
		r = read_state(dir, name, out);
	}
	return r;
}

/* Every kept record with no folder in root (after a reboot) adopted. */
static void adopt_all_kept(const char *root)
{
	char kroot[PATH_MAX], dir[PATH_MAX + 300];
	DIR *d = state_kind_root("sessions", kroot, sizeof(kroot)) == 0 ? opendir(kroot) : NULL;
	if (!d)
		return;
	struct stat st;
	for (struct dirent *e; (e = readdir(d));) {
		snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
		if (session_name_valid(e->d_name) && lstat(dir, &st) < 0 && errno == ENOENT)
			adopt_kept(root, e->d_name);
	}
	closedir(d);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct session_info *)a)->name, ((const struct session_info *)b)->name);
}

int session_list(struct session_info *out, size_t cap)
{
	char root[PATH_MAX];
	int r = session_root(root, sizeof(root));
	if (r < 0)
		return r;
	adopt_all_kept(root);
	DIR *d = opendir(root);
	if (!d)
		return -errno;
	size_t n = 0;
	for (struct dirent *e; n < cap && (e = readdir(d));) {
		if (!session_name_valid(e->d_name))
			continue;
		char dir[PATH_MAX + 300];
		snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
		if (read_state(dir, e->d_name, &out[n]) == 0)
			n++;
	}
	closedir(d);
	qsort(out, n, sizeof(*out), by_name);
	return (int)n;
}

int session_remove(const char *name)
{
	struct session_info i;
	int r = session_read(name, &i);
	if (r < 0)
		return r;
	if (session_state(&i) == SESSION_RUNNING)
		return -EBUSY;
	char dir[PATH_MAX];
	if ((r = session_dir(name, dir, sizeof(dir))) < 0)
		return r;
	remove_saved(name);
	return remove_dir(dir);
}

bool session_lock_held(const char *name)
{
	char dir[PATH_MAX], lock[PATH_MAX + 16];
	if (session_dir(name, dir, sizeof(dir)) < 0)
		return false;
	snprintf(lock, sizeof(lock), "%s/" LOCK_FILE, dir);
	int fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}
