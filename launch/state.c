/* launch/state.c - an agent's state kept per project (see state.h). */
#include "launch/state.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define STATE_NAME_MAX 48
#define CLAUDE_JSON_MAX (16u << 20)

/* mkdir -p for the levels of path below an existing root ("/"), the
 * missing ones 0700 (XDG: "created with permissions 0700"). */
static int make_parents(char *path)
{
	for (char *s = path + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		int r = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
		*s = '/';
		if (r < 0)
			return r;
	}
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

int state_dir(const char *project_real, char *out, size_t outsz)
{
	return state_kind_dir(project_real, "projects", out, outsz);
}

int state_kind_root(const char *kind, char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char base[4096];
	int n;
	if (xdg && xdg[0] == '/')	/* the spec: relative values are ignored */
		n = snprintf(base, sizeof(base), "%s", xdg);
	else if (home && home[0] == '/')
		n = snprintf(base, sizeof(base), "%s/.local/state", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= sizeof(base))
		return -ENAMETOOLONG;
	int r = make_parents(base);
	if (r < 0)
		return r;
	n = snprintf(out, outsz, "%s/kvmbox", base);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	if ((r = private_dir(out)) < 0)
		return r;
	n = snprintf(out, outsz, "%s/kvmbox/%s", base, kind);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	return private_dir(out);
}

int state_kind_dir(const char *project_real, const char *kind, char *out, size_t outsz)
{
	char root[4096];
	int r = state_kind_root(kind, root, sizeof(root));
	if (r < 0)
		return r;
	unsigned char md[32];
	unsigned mdlen = sizeof(md);
	if (!EVP_Digest(project_real, strlen(project_real), md, &mdlen, EVP_sha256(), NULL))
		return -EIO;
	const char *leaf = strrchr(project_real, '/');
	leaf = leaf && leaf[1] ? leaf + 1 : "root";
	char name[STATE_NAME_MAX + 1];
	size_t k = 0;
	for (; leaf[k] && k < STATE_NAME_MAX; k++) {
		char c = leaf[k];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || (c == '.' && k > 0);
		name[k] = ok ? c : '_';
	}
	name[k] = 0;
	int n = snprintf(out, outsz, "%s/%s-%02x%02x%02x%02x%02x%02x%02x%02x", root, name,
			 md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	return private_dir(out);
}

/* ---- inside the state directory: the guest's ground ----------------------
 *
 * The guest writes whatever it likes in the state directory (it is shared
 * read-write), including symbolic links where the host expects directories
 * (`claude` -> the user's real ~/.claude).  So every host operation below it
 * resolves each component from the state directory's own fd with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS and acts with *at() calls that never
 * follow the last component: a planted link is an error, never a path. */

/* The directory state/dir ("a/b", checked components; "" for state itself),
 * its missing levels made 0700 when create: an fd, or -errno. */
static int state_subdir(const char *state, const char *dir, bool create)
{
	int fd = open(state, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[256];
	if ((size_t)snprintf(buf, sizeof(buf), "%s", dir) >= sizeof(buf)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	for (char *c = buf, *next; c && *c; c = next) {
		next = strchr(c, '/');
		if (next)
			*next++ = 0;
		if (!strcmp(c, ".") || !strcmp(c, "..") || !*c) {
			close(fd);
			return -EINVAL;
		}
		if (create && mkdirat(fd, c, 0700) < 0 && errno != EEXIST) {
			int e = -errno;
			close(fd);
			return e;
		}
		int nfd = openat_beneath(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
	}
	return fd;
}

/* Split rel into its directory (into dir) and last component. */
static const char *split_rel(const char *rel, char *dir, size_t dirsz)
{
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;
	if (n >= dirsz)
		return NULL;
	memcpy(dir, rel, n);
	dir[n] = 0;
	return slash ? slash + 1 : rel;
}

int state_write_file(const char *state, const char *rel, const char *text)
{
	char dir[256];
	const char *name = split_rel(rel, dir, sizeof(dir));
	if (!name || !*name)
		return -EINVAL;
	int dfd = state_subdir(state, dir, true);
	if (dfd < 0)
		return dfd;
	int r = 0;
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)	/* a link goes, never its target */
		r = -errno;
	int fd = r ? -1 : openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (!r && fd < 0)
		r = -errno;
	if (fd >= 0) {
		r = write_full(fd, text, strlen(text));
		close(fd);
		if (r < 0)
			unlinkat(dfd, name, 0);	/* never half-written */
	}
	close(dfd);
	return r;
}

/* Members of the host's ~/.claude.json a guest may start from: flags and
 * who the account is, never a token (those live in .credentials.json). */
static const char *const claude_seed_keys[] = {
	"hasCompletedOnboarding", "lastOnboardingVersion", "theme", "oauthAccount", "userID",
};

static struct json_object *read_host_claude_json(const char *home)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/.claude.json", home) >= sizeof(path))
		return NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (read_file(path, CLAUDE_JSON_MAX, &buf, &len) < 0)
		return NULL;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok ? json_tokener_parse_ex(tok, (char *)buf, (int)len) : NULL;
	bool complete = tok && json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	free(buf);
	if (!complete || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *claude_seed(const char *home, const char *project_real)
{
	struct json_object *seed = json_object_new_object(), *host = home ? read_host_claude_json(home) : NULL;
	for (size_t i = 0; host && i < sizeof(claude_seed_keys) / sizeof(claude_seed_keys[0]); i++) {
		struct json_object *v;
		if (json_object_object_get_ex(host, claude_seed_keys[i], &v))
			json_object_object_add(seed, claude_seed_keys[i], json_object_get(v));
	}
	json_object_put(host);
	json_object_object_add(seed, "hasCompletedOnboarding", json_object_new_boolean(1));
	json_object_object_add(seed, "bypassPermissionsModeAccepted", json_object_new_boolean(1));
	struct json_object *proj = json_object_new_object(), *projects = json_object_new_object();
	json_object_object_add(proj, "hasTrustDialogAccepted", json_object_new_boolean(1));
	json_object_object_add(proj, "hasCompletedProjectOnboarding", json_object_new_boolean(1));
	json_object_object_add(projects, project_real, proj);
	json_object_object_add(seed, "projects", projects);
	return seed;
}

int state_seed_claude(const char *state, const char *home, const char *project_real)
{
	int dfd = state_subdir(state, "claude", true);
	if (dfd < 0)
		return dfd;
	int fd = openat(dfd, ".claude.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		close(dfd);
		return e == EEXIST ? 0 : -e;
	}
	struct json_object *seed = claude_seed(home, project_real);
	const char *text = json_object_to_json_string_ext(seed, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	int r = text ? write_full(fd, text, strlen(text)) : -ENOMEM;
	if (r == 0 && write_full(fd, "\n", 1) < 0)
		r = -EIO;
	close(fd);
	json_object_put(seed);
	if (r < 0)
		unlinkat(dfd, ".claude.json", 0);	/* never half-written: the next launch seeds again */
	close(dfd);
	return r < 0 ? r : 0;
}

int state_scrub(const char *state, const char *rel)
{
	char dir[256];
	const char *name = split_rel(rel, dir, sizeof(dir));
	if (!name || !*name)
		return -EINVAL;
	int dfd = state_subdir(state, dir, false);
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	struct stat st;
	int r = 0;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && unlinkat(dfd, name, 0) < 0)
		r = -errno;
	close(dfd);
	return r;
}
