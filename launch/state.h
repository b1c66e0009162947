/* launch/state.h - an agent's home-directory state, kept per project
 * between launches.
 *
 * Every launch used to start from a bare guest home: no onboarding, no
 * trust, no conversation to `--continue`.  Now each project has a state
 * directory, $XDG_STATE_HOME/kvmbox/projects/<name>-<hash> (default
 * ~/.local/state; <name> the project folder's name, <hash> 16 hex digits
 * of SHA-256 of its real path; every level mode 0700), shared read-write
 * into the guest at STATE_GUEST_DIR.  The agent's own directories in the
 * guest home are symbolic links into it (the agent profile says which:
 * ~/.claude, ~/.codex, opencode's data directory), and the shell history
 * goes there too.
 *
 * Credentials never rest in it: the placeholder credential file an agent
 * reads from its directory is written there for the launch and removed
 * after it (state_scrub); real values never reach the guest at all.  The
 * first launch seeds Claude Code's settings from the host's ~/.claude.json
 * (onboarding done, theme, account, never a token) and marks the project
 * trusted and the permission bypass accepted: inside the VM, the VM is the
 * boundary.
 */
#ifndef KVMBOX_LAUNCH_STATE_H
#define KVMBOX_LAUNCH_STATE_H

#include <stddef.h>

#define STATE_GUEST_DIR "/var/lib/kvmbox/state"

/* The project's state directory, created (0700, each missing level) under
 * $XDG_STATE_HOME or ~/.local/state.  0, or -errno. */
int state_dir(const char *project_real, char *out, size_t outsz);
/* The same naming under another folder of kvmbox's state ("reviews"):
 * $XDG_STATE_HOME/kvmbox/KIND/<name>-<hash>, created likewise. */
int state_kind_dir(const char *project_real, const char *kind, char *out, size_t outsz);
/* $XDG_STATE_HOME/kvmbox/KIND (or ~/.local/state/...), each missing level
 * made 0700, the user's own and not a link.  0, or -errno. */
int state_kind_root(const char *kind, char *out, size_t outsz);

/* First launch of Claude Code with this state: write
 * <state>/claude/.claude.json from the host's settings (home/.claude.json,
 * allow-listed members only) with the project trusted and the bypass
 * accepted.  Nothing when the file exists (the agent's own state wins).
 * 0, or -errno. */
int state_seed_claude(const char *state, const char *home, const char *project_real);

/* Write <state>/rel (0600, replacing what is there; missing directories
 * 0700).  Below the state directory the guest owns everything, so every
 * component is resolved without following a symbolic link: a planted link
 * (`claude` -> the user's real ~/.claude) is an error, never a path.  Any
 * other directory works as state (the launcher writes its launch files
 * with it too).  0, or -errno. */
int state_write_file(const char *state, const char *rel, const char *text);

/* Remove <state>/rel if it is a regular file (a placeholder credential
 * file after the launch), resolved as above: 0, or -errno other than
 * ENOENT. */
int state_scrub(const char *state, const char *rel);

#endif
