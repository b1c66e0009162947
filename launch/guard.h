/* launch/guard.h - the project folder an agent launch shares is checked
 * against the user's credentials before anything else happens.
 *
 * An agent launch shares its project folder read-write into the guest.
 * `cd ~ && kvmbox claude` would share ~/.claude/.credentials.json, ~/.ssh,
 * ~/.aws and the rest with the agent, and every promise of the proxy
 * (real tokens never in the guest) would be void.  So the launch refuses,
 * fail closed, a project folder that is the home directory or one above it,
 * that holds a credential store, or that lies inside one.  Paths are
 * compared as files (device and inode), so a symbolic link or a bind
 * mount of the home directory is recognised too.  --force lets the home
 * directory or one above it (`/`) through, never a folder inside a store
 * or another folder holding one: the file server then hides every store
 * (launch/hidden.h's list covers guard_sensitive[], a unit test holds it
 * to that), and the launcher says so.
 */
#ifndef KVMBOX_LAUNCH_GUARD_H
#define KVMBOX_LAUNCH_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* 0 when PROJECT (resolved with realpath() first) may be shared; -EPERM,
 * with the reason in why (one line, no trailing period), when for any of
 * HOMES (NULL-terminated; NULL, empty or missing entries are passed over)
 * it is that home folder or above it (unless FORCE), holds one of the
 * credential stores under it (guard_sensitive[]) without being either, or
 * is inside one.  -errno when PROJECT
 * cannot be examined.  The launcher passes $HOME and the user's home in
 * the password database, so that neither an unset nor a changed HOME
 * opens the real one. */
int guard_project(const char *project, const char *const *homes, bool force, char *why, size_t whysz);

/* The credential stores under the home directory: agents' login files,
 * SSH and GPG keys, cloud and cluster credentials, package registries',
 * git's and gh's tokens.  NULL-terminated. */
extern const char *const guard_sensitive[];

#endif
