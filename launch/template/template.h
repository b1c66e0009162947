/* launch/template/template.h - booted templates in the cache: a snapshot
 * of a guest booted to where kvmbox-init waits for its command, one per
 * configuration, restored by each later launch of that configuration
 * instead of a boot (kvmbox shell --template, and the agents').
 *
 * A configuration is whatever the guest saw while it booted, written out
 * by the caller as one text (the kernel's and initrd's identities, the
 * command line, memory, vCPUs, the devices, each share's guest path); its
 * SHA-256 names the folder <cache>/templates/KEY (cache as for images:
 * $KVMBOX_CACHE, $XDG_CACHE_HOME/kvmbox or ~/.cache/kvmbox).  A change to
 * any of it is another key, so a template is never restored into a
 * machine it was not made for; one the snapshot reader refuses (damaged,
 * of another kvmbox build or host CPU) is the caller's to discard.
 *
 * Templates are made in the background by a second kvmbox that boots the
 * same configuration with --snapshot into a private folder, which becomes
 * the template in one rename once that kvmbox exited 0: a template is
 * whole or absent, and two launches racing to make one leave one.  At most
 * TEMPLATE_KEEP are kept, the least recently used going first.
 */
#ifndef KVMBOX_LAUNCH_TEMPLATE_TEMPLATE_H
#define KVMBOX_LAUNCH_TEMPLATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#define TEMPLATE_KEEP 8

/* The folder of configuration `desc`'s template, into dir (templates/ is
 * made, 0700; the template itself may not exist).  0 or -errno. */
int template_path(const char *desc, char *dir, size_t dirsz);

/* Whether dir holds a made template (a state file: the last thing a save
 * writes). */
bool template_present(const char *dir);

/* Note that dir was used now: the least recently used go first. */
void template_touch(const char *dir);

/* Remove the template in dir (a flat folder of a snapshot's files).
 * 0 or -errno. */
int template_discard(const char *dir);

/* Beyond TEMPLATE_KEEP templates, the least recently used go; so do build
 * folders an hour old (their builder died).  After each template made. */
void template_prune(void);

/* Make dir's template in the background: run `kvmbox SUB argv[1..argc)`
 * (the subcommand, "shell", and the launch's flags, less what only the
 * launch takes; /proc/self/exe) with "--snapshot TMP" after SUB, stdin and stdout /dev/null, stderr
 * into dir.log, in its own session and at lower priority.  It becomes dir
 * when it exits 0; otherwise TMP goes and dir.log says why.  Returns once
 * the builder is started: 0 or -errno. */
int template_build_background(const char *dir, const char *sub, int argc, char *const argv[]);

#endif
