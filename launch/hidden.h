/* launch/hidden.h - the files an agent never sees in its project.
 *
 * A project folder shared read-write may still hold secrets of its own:
 * a .env with API keys, a TLS or SSH private key, a copied credential
 * store.  An agent launch shares the project with these names hidden by
 * the file server itself (fs_opts.hidden, fs9p/core.c): the guest finds
 * them absent, cannot list them, and cannot create, replace, remove or
 * rename anything under such a name.  They stay on the host untouched.
 * At launch kvmbox names the ones the project holds (hidden_scan).
 *
 * Patterns are fnmatch() globs on one name ("*.pem": anywhere in the
 * tree) or on a folder's name and a name in it (".codex/auth.json").
 */
#ifndef KVMBOX_LAUNCH_HIDDEN_H
#define KVMBOX_LAUNCH_HIDDEN_H

#include <stddef.h>

/* The default list, NULL-terminated. */
extern const char *const hidden_default[];

/* Walk PROJECT (not following links, at most max_entries entries, not
 * into .git) and put the relative paths it would hide into out as
 * "a, b/c" (cut with ", ..." when full).  The number found, or -errno. */
int hidden_scan(const char *project, const char *const *patterns, unsigned max_entries, char *out,
		size_t outsz);

#endif
