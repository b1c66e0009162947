/* launch/hidden.c - the default hidden list and the launch-time scan (see
 * hidden.h).  The file server matches with the same function
 * (name_pattern_match, common/util.h). */
#include "launch/hidden.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

const char *const hidden_default[] = {
	/* environment files with keys (direnv's .envrc too) */
	".env", ".env.*", ".envrc",
	/* private keys and key stores */
	"*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
	"id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
	/* credential stores copied into a project */
	".ssh", ".gnupg", ".aws", ".azure", ".kube", ".password-store",
	".netrc", ".git-credentials", ".npmrc", ".pypirc", ".docker/config.json",
	"gcloud/credentials.db", "gcloud/application_default_credentials.json",
	"cargo/credentials.toml", ".cargo/credentials.toml", ".cargo/credentials",
	/* the agents' own login files, and gh's */
	".credentials.json", ".codex/auth.json", "opencode/auth.json", "gh/hosts.yml",
	/* whole stores, as in a home folder shared with --force (launch/guard.h) */
	".config/gh", ".config/gcloud",
	NULL,
};

struct scan {
	const char *const *patterns;
	unsigned left;		/* entries still to look at */
	char *out;
	size_t outsz;
	int found;
	bool full;
};

static void note(struct scan *sc, const char *rel)
{
	sc->found++;
	size_t o = strlen(sc->out);
	if (sc->full)
		return;
	if (o + strlen(rel) + 8 >= sc->outsz) {
		snprintf(sc->out + o, sc->outsz - o, "%s...", o ? ", " : "");
		sc->full = true;
		return;
	}
	snprintf(sc->out + o, sc->outsz - o, "%s%s", o ? ", " : "", rel);
}

/* dfd is the folder REL (named DIRNAME); owned, closed here. */
static void walk(struct scan *sc, int dfd, const char *rel, const char *dirname)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	for (struct dirent *e; sc->left && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		sc->left--;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >=
		    sizeof(path))
			continue;
		if (name_pattern_match(sc->patterns, dirname, e->d_name)) {
			note(sc, path);
			continue;	/* nothing beneath a hidden folder is seen either */
		}
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".git"))
			continue;
		int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			walk(sc, sub, path, e->d_name);
	}
	closedir(d);
}

int hidden_scan(const char *project, const char *const *patterns, unsigned max_entries, char *out,
		size_t outsz)
{
	if (!outsz)
		return -EINVAL;
	out[0] = 0;
	int fd = open(project, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct scan sc = { .patterns = patterns, .left = max_entries, .out = out, .outsz = outsz };
	walk(&sc, fd, "", "");
	return sc.found;
}
