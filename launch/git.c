/* launch/git.c - git and GitHub for an agent launch (see git.h). */
#include "launch/git.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define GIT_OUTPUT_MAX 65536	/* what one helper command may print */
#define GIT_HELPER_MS 5000	/* and how long it may take */

extern char **environ;

/* ---- remote URLs ------------------------------------------------------- */

static bool host_is_github(const char *h, size_t n)
{
	return n == 10 && !strncasecmp(h, "github.com", 10);
}

/* GitHub's rules: an owner is 1-39 of [A-Za-z0-9-]; a repository name
 * 1-100 of [A-Za-z0-9._-], not "." or "..". */
static bool name_ok(const char *s, size_t n, bool owner)
{
	if (n == 0 || n > (owner ? 39u : 100u))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && (owner || (s[i] != '.' && s[i] != '_')))
			return false;
	return owner || !((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'));
}

/* "OWNER/NAME[.git][/]" into out. */
static int repo_path(const char *p, char *out, size_t outsz)
{
	size_t len = strlen(p);
	if (len && p[len - 1] == '/')
		len--;
	const char *slash = memchr(p, '/', len);
	if (!slash)
		return 0;
	size_t olen = (size_t)(slash - p);
	const char *name = slash + 1;
	size_t nlen = len - olen - 1;
	if (nlen >= 4 && !strncasecmp(name + nlen - 4, ".git", 4))
		nlen -= 4;
	if (!name_ok(p, olen, true) || !name_ok(name, nlen, false) || olen + nlen + 2 > outsz)
		return 0;
	for (size_t i = 0; i < olen; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[olen] = '/';
	for (size_t i = 0; i < nlen; i++)
		out[olen + 1 + i] = (char)tolower((unsigned char)name[i]);
	out[olen + 1 + nlen] = 0;
	return 1;
}

int git_github_repo(const char *url, char *out, size_t outsz)
{
	static const char *const schemes[] = { "https", "http", "git", "ssh", "git+ssh", "ssh+git" };
	if (strpbrk(url, "?#\\ \t\r\n"))
		return 0;
	const char *sep = strstr(url, "://");
	if (sep) {
		size_t sl = (size_t)(sep - url);
		bool known = false;
		for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			known |= strlen(schemes[i]) == sl && !strncasecmp(url, schemes[i], sl);
		const char *auth = sep + 3, *path = strchr(auth, '/');
		if (!known || !path)
			return 0;
		const char *at = memrchr(auth, '@', (size_t)(path - auth));
		const char *host = at ? at + 1 : auth;
		const char *colon = memchr(host, ':', (size_t)(path - host));
		size_t hlen = (size_t)((colon ? colon : path) - host);
		if (colon && (colon + 1 == path || strspn(colon + 1, "0123456789") != (size_t)(path - colon - 1)))
			return 0;	/* a port is digits only */
		return host_is_github(host, hlen) ? repo_path(path + 1, out, outsz) : 0;
	}
	/* scp-like [user@]host:path (no '/' before the ':', as git reads it) */
	const char *colon = strchr(url, ':');
	if (!colon || memchr(url, '/', (size_t)(colon - url)))
		return 0;
	const char *at = memrchr(url, '@', (size_t)(colon - url));
	const char *host = at ? at + 1 : url;
	if (!host_is_github(host, (size_t)(colon - host)))
		return 0;
	const char *path = colon + 1;
	return repo_path(*path == '/' ? path + 1 : path, out, outsz);
}

/* ---- running git and gh ---------------------------------------------- */

int git_spawn(char *const argv[], bool merge_stderr, unsigned timeout_ms, char **out)
{
	*out = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
	if (merge_stderr)
		posix_spawn_file_actions_adddup2(&fa, pfd[1], STDERR_FILENO);
	else
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r != 0) {
		close(pfd[0]);
		return -r;
	}
	char *buf = malloc(GIT_OUTPUT_MAX + 1);
	size_t len = 0;
	bool ok = buf != NULL;
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	while (ok) {
		uint64_t now = now_ns();
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) <= 0) {
			ok = false;
			break;
		}
		ssize_t n = read(pfd[0], buf + len, GIT_OUTPUT_MAX - len);
		if (n == 0)
			break;
		if (n < 0 ? errno != EINTR : (len += (size_t)n) == GIT_OUTPUT_MAX)
			ok = false;
	}
	close(pfd[0]);
	if (!ok)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!ok) {
		if (buf)
			explicit_bzero(buf, len);
		free(buf);
		return buf ? -ETIMEDOUT : -ENOMEM;
	}
	buf[len] = 0;
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run argv (PATH searched, stdin and stderr /dev/null) and collect its
 * stdout within GIT_HELPER_MS: a malloc'd NUL-terminated string when it
 * exited 0, else NULL. */
static char *run_capture(char *const argv[])
{
	char *out;
	int st = git_spawn(argv, false, GIT_HELPER_MS, &out);
	if (st != 0 && out) {
		explicit_bzero(out, strlen(out));
		free(out);
		out = NULL;
	}
	return out;
}

static void add_repo(struct git_wiring *g, const char *repo)
{
	for (unsigned i = 0; i < g->nrepos; i++)
		if (!strcmp(g->repos[i], repo))
			return;
	if (g->nrepos < GIT_MAX_REPOS)
		snprintf(g->repos[g->nrepos++], GIT_REPO_MAX, "%s", repo);
}

/* One line of `git config` output, without its newline, into out. */
static void config_value(const char *project, const char *key, char *out, size_t outsz)
{
	char *argv[] = { "git", "-C", (char *)project, "config", "--get", (char *)key, NULL };
	char *v = run_capture(argv);
	out[0] = 0;
	if (!v)
		return;
	size_t n = strcspn(v, "\n");
	if (n < outsz) {
		memcpy(out, v, n);
		out[n] = 0;
	}
	free(v);
}

void git_collect(const char *project, struct git_wiring *g)
{
	memset(g, 0, sizeof(*g));
	char *argv[] = { "git", "-C", (char *)project, "remote", "-v", NULL };
	char *out = run_capture(argv);
	/* "NAME\tURL (fetch|push)" per line */
	for (char *line = out, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *tab = strchr(line, '\t'), *sp = tab ? strrchr(tab + 1, ' ') : NULL;
		if (!sp)
			continue;
		*sp = 0;
		char repo[GIT_REPO_MAX];
		if (git_github_repo(tab + 1, repo, sizeof(repo)) == 1)
			add_repo(g, repo);
	}
	free(out);
	config_value(project, "user.name", g->user_name, sizeof(g->user_name));
	config_value(project, "user.email", g->user_email, sizeof(g->user_email));
}

int git_pin_repos(const char *pin_path, struct git_wiring *g, char *dropped, size_t droppedsz)
{
	dropped[0] = 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = read_file(pin_path, GIT_MAX_REPOS * GIT_REPO_MAX, &buf, &len);
	if (r == -ENOENT) {	/* the first launch: pin what the remotes name now */
		int fd = open(pin_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			g->nrepos = 0;
			return -errno;
		}
		for (unsigned i = 0; i < g->nrepos && r != -EIO; i++)
			r = dprintf(fd, "%s\n", g->repos[i]) < 0 ? -EIO : 0;
		if (close(fd) < 0 || r == -EIO) {
			unlink(pin_path);
			g->nrepos = 0;
			return -EIO;
		}
		return 0;
	}
	if (r < 0) {
		g->nrepos = 0;
		return r;
	}
	char *pinned = (char *)buf;
	pinned[len] = 0;	/* read_file leaves room for it */
	unsigned kept = 0;
	for (unsigned i = 0; i < g->nrepos; i++) {
		bool on = false;
		for (char *line = pinned, *next; !on && line && *line; line = next) {
			next = strchr(line, '\n');
			size_t n = next ? (size_t)(next - line) : strlen(line);
			on = n == strlen(g->repos[i]) && !memcmp(line, g->repos[i], n);
			if (next)
				next++;
		}
		if (on)
			memmove(g->repos[kept++], g->repos[i], GIT_REPO_MAX);
		else
			snprintf(dropped + strlen(dropped), droppedsz - strlen(dropped), "%s%s",
				 dropped[0] ? ", " : "", g->repos[i]);
	}
	g->nrepos = kept;
	free(buf);
	return 0;
}

char *git_gh_token(void)
{
	char *argv[] = { "gh", "auth", "token", "--hostname", "github.com", NULL };
	char *t = run_capture(argv);
	if (!t)
		return NULL;
	size_t n = strcspn(t, "\r\n");
	/* one token: printable, no spaces, nothing after its line */
	bool one = n > 0 && t[n + strspn(t + n, "\r\n")] == 0;
	for (size_t i = 0; one && i < n; i++)
		one = t[i] > ' ' && t[i] < 0x7f;
	if (!one) {
		explicit_bzero(t, strlen(t));
		free(t);
		return NULL;
	}
	t[n] = 0;
	return t;
}

/* ---- the guest's files ------------------------------------------------- */

/* value quoted for git config ("..." with \ and " escaped) into out; false
 * for control bytes (git config cannot hold a newline in a value). */
static bool quote_value(const char *v, char *out, size_t outsz)
{
	size_t o = 0;
	if (outsz < 3)
		return false;
	out[o++] = '"';
	for (; *v; v++) {
		if ((unsigned char)*v < 0x20 || *v == 0x7f || o + 4 > outsz)
			return false;
		if (*v == '"' || *v == '\\')
			out[o++] = '\\';
		out[o++] = *v;
	}
	out[o++] = '"';
	out[o] = 0;
	return true;
}

char *git_guest_config(const struct git_wiring *g, const char *placeholder)
{
	char name[2 * GIT_IDENT_MAX + 3], email[2 * GIT_IDENT_MAX + 3];
	bool has_name = g->user_name[0] && quote_value(g->user_name, name, sizeof(name));
	bool has_email = g->user_email[0] && quote_value(g->user_email, email, sizeof(email));
	char *s = NULL;
	int n = asprintf(&s,
		"# written by kvmbox for this launch\n"
		"%s%s%s%s%s%s%s"
		"%s%s%s"
		"[url \"https://github.com/\"]\n"
		"\tinsteadOf = git@github.com:\n"
		"\tinsteadOf = ssh://git@github.com/\n",
		has_name || has_email ? "[user]\n" : "",
		has_name ? "\tname = " : "", has_name ? name : "", has_name ? "\n" : "",
		has_email ? "\temail = " : "", has_email ? email : "", has_email ? "\n" : "",
		placeholder ? "[credential \"https://github.com\"]\n\thelper =\n"
			      "\thelper = \"!f() { test \\\"$1\\\" = get && printf 'username=x-access-token\\\\npassword=" : "",
		placeholder ? placeholder : "",
		placeholder ? "\\\\n'; }; f\"\n" : "");
	return n < 0 ? NULL : s;
}

char *git_gh_hosts(const char *placeholder)
{
	char *s = NULL;
	return asprintf(&s, "github.com:\n    oauth_token: %s\n    git_protocol: https\n", placeholder) < 0 ?
		       NULL : s;
}
