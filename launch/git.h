/* launch/git.h - git and GitHub for an agent launch, on unless --no-git.
 *
 * What a user of agent-vm or brood-box expects on the first day: the
 * repositories the project's own remotes name (`git remote -v`: https,
 * ssh and scp-like URL forms, a ".git" suffix, any case) are the GitHub
 * allow-list without typing --repo; the GitHub token comes from GH_TOKEN /
 * GITHUB_TOKEN or, failing those, `gh auth token` on the host; the guest
 * gets only its placeholder, through a git credential helper and gh's own
 * config, so `git push` and `gh pr create` work unchanged (ssh remotes are
 * rewritten to https in the guest: there is no key there, and the token
 * is what the proxy can swap); and the host's user.name and user.email
 * become the guest's.
 *
 * The guest can write the project's .git/config, so the remotes are pinned
 * at the project's first launch (git_pin_repos): a remote added since is
 * not allowed until the user says so with --repo.
 *
 * The project is the user's but its .git/config may come from anyone:
 * remotes are only read (`git remote -v` runs no hook, no filter, no
 * fsmonitor), a URL that is not exactly a GitHub repository is ignored,
 * and names go through repolist_add's OWNER/NAME check in the proxy.
 */
#ifndef KVMBOX_LAUNCH_GIT_H
#define KVMBOX_LAUNCH_GIT_H

#include <stdbool.h>
#include <stddef.h>

#define GIT_MAX_REPOS 32
#define GIT_REPO_MAX 202	/* "owner/name": 39 + 1 + 100, with room */
#define GIT_IDENT_MAX 256

struct git_wiring {
	char repos[GIT_MAX_REPOS][GIT_REPO_MAX];	/* "owner/name", lower case, unique */
	unsigned nrepos;
	char user_name[GIT_IDENT_MAX], user_email[GIT_IDENT_MAX];	/* "" when unset */
};

/* The GitHub repository a remote URL names, as "owner/name" in lower case
 * (".git" and one trailing '/' dropped): 1, or 0 when the URL is not a
 * GitHub repository URL (another host, a path with more or fewer parts,
 * characters GitHub does not allow in names). */
int git_github_repo(const char *url, char *out, size_t outsz);

/* Read the project's remotes and the user's git identity (`git -C project
 * remote -v`, `git -C project config user.name|user.email`).  Never fails:
 * without git, outside a repository, or past GIT_MAX_REPOS, what could not
 * be read is simply absent. */
void git_collect(const char *project, struct git_wiring *g);

/* Pin the remotes' repositories at the project's first launch.  The
 * project folder, .git/config included, is writable by the guest: a guest
 * that adds a remote must not widen the next launch's allow-list.  So the
 * list taken from the remotes at the first launch is kept at pin_path
 * (outside every guest-visible share); later launches keep only the
 * remotes' repositories on it, and name the others in dropped (", "
 * separated) for one warning: --repo allows them.  0, or -errno (then the
 * remotes are not used at all: g->nrepos = 0). */
int git_pin_repos(const char *pin_path, struct git_wiring *g, char *dropped, size_t droppedsz);

/* Run argv (PATH searched, stdin /dev/null; stderr /dev/null, or into the
 * output when merge_stderr) and collect what it prints, at most 64 KiB
 * within timeout_ms: *out malloc'd and NUL-terminated (the caller frees),
 * and its exit status (128 + a signal's number); or -errno when it could
 * not run, took longer or printed more (killed, *out NULL). */
int git_spawn(char *const argv[], bool merge_stderr, unsigned timeout_ms, char **out);

/* The host's GitHub token from `gh auth token --hostname github.com`: a
 * malloc'd string (the caller wipes and frees it), or NULL (no gh, not
 * logged in, or an answer that is not one token). */
char *git_gh_token(void);

/* The guest's ~/.gitconfig: identity (values quoted for git config),
 * a credential helper for https://github.com answering with the
 * placeholder (NULL: none), and ssh GitHub URLs rewritten to https.
 * malloc'd, or NULL (out of memory, or an identity with control bytes:
 * then it is left out, never half-written). */
char *git_guest_config(const struct git_wiring *g, const char *placeholder);

/* The guest's ~/.config/gh/hosts.yml holding the placeholder: malloc'd. */
char *git_gh_hosts(const char *placeholder);

#endif
