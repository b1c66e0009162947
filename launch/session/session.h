/* launch/session/session.h - named sandboxes: every agent launch is a
 * session with a name, recorded while it lives, listed by `kvmbox ps`,
 * stopped by `kvmbox stop`, removed by `kvmbox rm`.  No daemon: each
 * sandbox is its own kvmbox process, and the record is a folder per name.
 *
 * Where: $XDG_RUNTIME_DIR/kvmbox/sessions/NAME/ (or /tmp/kvmbox-UID/...
 * when XDG_RUNTIME_DIR is unset), each level 0700 and the user's own, never
 * a link.  NAME/state.json (0600, replaced whole by rename, so a reader
 * never sees half of it) holds what the launch is: agent, project, image,
 * memory, CPUs, egress profile, allow-listed repositories, the process
 * (pid and its start time in clock ticks since boot, so a reused pid is
 * never taken for it), when it started, and once it ends, how.
 *
 * The launch holds an exclusive flock on NAME/lock for its whole life
 * (close-on-exec, never passed to the VMM): the kernel drops it however
 * the process ends, so it says "alive" without reading /proc (which hides
 * a non-dumpable process from others where /proc is mounted hidepid).
 * States, as a reader judges them (session_state):
 *   running   the lock is held;
 *   exited    it ended and said so (its status recorded);
 *   suspended it ended by `kvmbox stop --suspend`: its VM is saved in
 *             session_suspend_dir (the guest's memory and state, and the
 *             proxy's CA: vmm/snapshot/snapshot.h) and NAME/resume.json
 *             says how it was launched; `kvmbox resume NAME` takes it up
 *             again.  Both records are kept on disk too
 *             ($XDG_STATE_HOME/kvmbox/sessions/NAME/), so a reboot, which
 *             empties the runtime folder, loses no suspended sandbox: a
 *             runtime folder without its record takes them back;
 *   dead      it is gone without saying so (SIGKILL, a crash, a reboot):
 *             shown as such, its record removed by `kvmbox rm`.
 * A name is taken while its session runs or is suspended: a launch may
 * take the name of an exited or dead session (its record replaced), never
 * a running or suspended one's (only its resume, session_reclaim).  The folder's creation (mkdir) is the name's lock, so two launches
 * racing for one name cannot both get it.
 *
 * Names: 1 to SESSION_NAME_MAX of [a-z0-9._-], starting with a letter or a
 * digit.  Without --name: the project folder's name (lower case, other
 * bytes as '-') and the agent, "myproj-claude", then "-2", "-3"... while
 * that name runs.
 */
#ifndef KVMBOX_LAUNCH_SESSION_H
#define KVMBOX_LAUNCH_SESSION_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SESSION_NAME_MAX 48
#define SESSION_MAX 256		/* sessions one listing reads */

/* What a launch records about itself. */
struct session_info {
	char name[SESSION_NAME_MAX + 1];
	char agent[32];
	char project[PATH_MAX];
	char image[256];
	char egress_profile[16];
	unsigned memory_mib, cpus;
	char repos[1024];		/* "OWNER/NAME OWNER/NAME", or "" */
	char worktree[PATH_MAX];	/* --worktree: its path on the host (launch/worktree), or "" */
	char branch[200];		/* and its branch, or "" */
	char launch_dir[PATH_MAX];	/* the launch folder the guest reads (clipboard), or "" */
	char ports[512];		/* --publish values, space-separated, or "" */
	pid_t pid;
	unsigned long long start_ticks;	/* /proc/PID/stat field 22 */
	long long started_ms;		/* since the epoch */
	bool ended;
	int status;			/* the exit status, once ended */
	long long ended_ms;
	bool suspendable;		/* its VM saves itself on VM_SIG_SUSPEND (session_suspend_dir) */
	bool suspended;			/* ended so: resume with kvmbox resume */
};

enum session_state { SESSION_RUNNING, SESSION_EXITED, SESSION_SUSPENDED, SESSION_DEAD };

/* In a session's folder: what its resume needs (session_save_resume). */
#define SESSION_RESUME_FILE "resume.json"
#define SESSION_RESUME_ARGS 256	/* words of a launch a resume keeps */

/* A session this process registered. */
struct session {
	char dir[PATH_MAX];		/* .../sessions/NAME */
	/* when suspendable: session_suspend_dir and session_kept_dir, made
	 * at registration (the launch writes them once caged); else "" */
	char saved_dir[PATH_MAX], kept_dir[PATH_MAX];
	struct session_info info;
	int lock_fd;			/* NAME/lock, flocked while this process lives */
};

/* The folder that holds the sessions, created 0700 as needed (each level
 * the user's own, not a link; one too open is narrowed): 0 or -errno. */
int session_root(char *out, size_t outsz);

/* Whether name is a valid session name. */
bool session_name_valid(const char *name);

/* The default name's stem for a project folder and an agent
 * ("myproj-claude"): always a valid name. */
void session_default_name(const char *project, const char *agent, char *out, size_t outsz);

/* Register this process as session info->name (explicit: that name or
 * -EBUSY when it runs) or, when explicit is false, as the first of
 * info->name, info->name-2 ... that does not run (the name chosen is in
 * s->info.name).  info->pid, start_ticks and started_ms are filled here.
 * 0, -EINVAL (a bad name), -EBUSY, or -errno. */
int session_register(const struct session_info *info, bool explicit, struct session *s);

/* Record s->info again (what the launch learnt after registering, as its
 * worktree): 0 or -errno. */
int session_save(struct session *s);

/* Record that the session ended with status: 0 or -errno. */
int session_mark_ended(struct session *s, int status);
/* Record that it ended suspended (its VM saved): 0 or -errno. */
int session_mark_suspended(struct session *s);
/* Remove its saved VM (a resumed sandbox that ended: nothing takes it up
 * again). */
void session_drop_saved(const struct session *s);
/* What NAME's saved VM takes on disk (its files' allocated blocks): 0, or
 * -ENOENT when it has none, -errno. */
int session_saved_bytes(const char *name, unsigned long long *out);
/* Where NAME's VM is saved when it is suspended (a snapshot folder):
 * $XDG_STATE_HOME/kvmbox/suspended/NAME (or ~/.local/state/...), the
 * levels above it made 0700.  On disk, not beside the record in the
 * runtime folder, which is usually tmpfs: a suspend there would free none
 * of the guest's memory.  A name newly taken drops what an earlier
 * sandbox of that name left there (its record gone with a reboot).  0, or
 * -errno. */
int session_suspend_dir(const char *name, char *out, size_t outsz);
/* Where NAME's records are kept on disk while it is suspended:
 * $XDG_STATE_HOME/kvmbox/sessions/NAME (the levels above it made 0700).
 * 0, or -errno. */
int session_kept_dir(const char *name, char *out, size_t outsz);

/* How a suspended session was launched, for its resume: the folder it was
 * started from, the command's words as typed (argv[0] the agent), and the
 * key its placeholders derive from (not secret: the guest holds the
 * placeholders).  Into NAME/resume.json (0600, written whole). */
struct session_resume {
	char cwd[PATH_MAX];
	int argc;
	char *argv[SESSION_RESUME_ARGS + 1];	/* malloc'd, NULL-terminated */
	unsigned char ph_key[32];
};
int session_save_resume(const struct session *s, const struct session_resume *r);
/* NAME's: 0, -ENOENT, -EINVAL (not one), -errno.  session_resume_fini
 * frees it in every case. */
int session_read_resume(const char *name, struct session_resume *r);
void session_resume_fini(struct session_resume *r);

/* Register this process as the suspended session NAME, which it resumes:
 * its folder and saved VM kept, its lock taken, its record running
 * again.  0, -ENOENT, -EBUSY (not suspended: running, or resumed by
 * another), -errno. */
int session_reclaim(const char *name, struct session *s);

/* Read the session NAME's record: 0, -ENOENT (no such session), -EINVAL
 * (a record that is not one), or -errno. */
int session_read(const char *name, struct session_info *out);

/* A process's start time in clock ticks since boot (/proc/PID/stat field
 * 22): with the pid, what names one process for its whole life.  0, or
 * -ESRCH when there is no such process. */
int session_proc_start_ticks(pid_t pid, unsigned long long *out);

/* Whether the session NAME's process holds its lock (it lives). */
bool session_lock_held(const char *name);

/* How the session stands now (its lock looked at, not its word). */
enum session_state session_state(const struct session_info *i);
const char *session_state_name(enum session_state st);

/* Every session's record, sorted by name, into out (cap entries): how
 * many, or -errno.  Records that cannot be read are passed over. */
int session_list(struct session_info *out, size_t cap);

/* The resident memory (bytes) and CPU time (ns) of the session's process
 * and its children (the VMM): 0, or -ESRCH when it does not run. */
int session_usage(const struct session_info *i, unsigned long long *rss, unsigned long long *cpu_ns);

/* Stop a running session: SIGTERM (the guest's command gets it; the VM
 * stops when it ends), then after grace_ms a second SIGTERM, after as long
 * again SIGKILL.  0 once it is gone, -ESRCH when it was not running, or
 * -errno. */
int session_stop(const struct session_info *i, unsigned grace_ms);

/* Ask a running session that is suspendable to suspend (VM_SIG_SUSPEND to
 * its process, which saves the VM and ends), and wait up to wait_ms for it
 * to end: 0 once it ended (its record says whether it suspended), -ESRCH
 * when it was not running, -EOPNOTSUPP when it cannot suspend,
 * -ETIMEDOUT, or -errno. */
int session_suspend(const struct session_info *i, unsigned wait_ms);

/* Remove an ended or dead session's record (a suspended one's saved VM
 * with it): 0, -EBUSY when it runs, -ENOENT, or -errno. */
int session_remove(const char *name);

/* The sandbox's terminal: detach and attach (launch/session/hold.c, the
 * holder; attach.c, a terminal's end).
 *
 * A launch at a terminal (or with --detach) runs behind a holder, as
 * dtach and tmux do: session_hold forks the holder, a process of its own
 * session with no terminal and an empty environment, which opens a
 * pseudo-terminal and forks the launch onto it (the launch's own session,
 * the pty its controlling terminal; it runs as it would at the user's
 * terminal, VM, review and all).  The holder relays the pty to one
 * attached terminal at a time, keeps the last HOLD_RING bytes of output
 * to replay on attach, writes the output to NAME/console.log (0600, the
 * older half in console.log.1, HOLD_LOG_MAX each) for kvmbox logs, and
 * listens on NAME/control (a SOCK_SEQPACKET socket in the 0700 folder;
 * a peer of another uid is refused) once the launch has its name.  The
 * output passes through an OSC 52 filter (common/text.h): the guest's
 * copies reach the user's terminal and NAME/clipboard (0600, kvmbox
 * clipboard get), its queries of the user's clipboard never do.  The
 * launching process becomes the first attached terminal.  When the launch
 * ends the holder tells the terminal its status, removes the socket and
 * exits; with no terminal attached, the status is in the record.
 *
 * Each packet is one byte of type, then its payload: */
enum hold_msg {
	HOLD_DATA = 1,		/* both ways: terminal bytes (to the screen, from the keys) */
	HOLD_SIZE = 2,		/* to the holder: struct hold_size, the terminal's size */
	HOLD_STOP = 3,		/* to the holder: stop the sandbox (kvmbox stop's SIGTERM) */
	HOLD_NAME = 4,		/* to the terminal: the sandbox's name, once it has one */
	HOLD_EXIT = 5,		/* to the terminal: int32 exit status; the last packet */
	HOLD_TAKEN = 6,		/* to the terminal: another terminal attached; the last */
	HOLD_ATTACH = 7,	/* to the holder, first on a control connection: a terminal */
	HOLD_TYPE = 8,		/* to the holder, first and only: bytes typed into the sandbox
				 * as if from the keyboard (kvmbox clipboard put) */
};
struct hold_size {
	uint16_t rows, cols;
};
#define HOLD_PACKET_MAX 16384		/* type byte included */
#define HOLD_RING (1u << 20)		/* output replayed on attach */
#define HOLD_LOG_MAX (2u << 20)		/* console.log's size before it turns to .1 */
#define HOLD_CONTROL "control"		/* in the session's folder */
#define HOLD_LOG "console.log"
#define HOLD_CLIPBOARD "clipboard"	/* the guest's last OSC 52 copy, decoded */

/* Send one packet of type with len bytes of data: 0 or -errno. */
int hold_send(int fd, enum hold_msg type, const void *data, size_t len);

/* Run the launch behind a holder.  Returns in two processes: in the
 * caller with 1 and *client its end of the first terminal's link (for
 * session_attach_run), in the launch with 0 and *name_fd the pipe on which
 * it announces its folder (session_hold_announce).  The holder never
 * returns.  -errno when nothing was started. */
int session_hold(int *client, int *name_fd);

/* In the launch: tell the holder its session's folder (then it listens on
 * NAME/control and logs to NAME/console.log) and close name_fd. */
void session_hold_announce(int name_fd, const char *dir);

/* How a terminal attaches: the key pair that detaches (prefix, then the
 * key; prefix twice sends it once; SESSION_DETACH_KEYS unless
 * --detach-keys), and whether to leave as soon as the sandbox has a name
 * (--detach). */
struct attach_opts {
	unsigned char detach_prefix, detach_key;	/* 0x1d (Ctrl-]) and 'd' */
	bool leave_when_named;
	const char *name;		/* for messages, when known */
};
#define SESSION_DETACH_KEYS "ctrl-],d"

/* Keys as Docker's --detach-keys writes them, two of them: each a
 * printable character or ctrl-X (X one of a-z @ [ \\ ] ^ _).  0 with
 * out[0] the prefix and out[1] the key, or -EINVAL. */
int session_detach_keys_parse(const char *text, unsigned char out[2]);

/* Relay stdin and stdout (raw when a terminal) to the holder on sock
 * until the sandbox ends (its exit status), the user detaches (0) or the
 * link is lost (1, with one line).  Closes sock. */
int session_attach_run(int sock, const struct attach_opts *o);

/* The clipboard (launch/session/clipboard.c).  Into the guest: kvmbox
 * clipboard put writes the text, or an image, into the launch folder's
 * clipboard/ (read-only to the guest, at CLIPBOARD_GUEST_DIR), where the
 * guest's xclip, xsel, wl-paste and pbpaste (shims the launch puts first
 * on the agent's PATH, from CLIPBOARD_SHIMS_DIR) find it, the way agents
 * read a pasted image; an image's path is also typed into the agent's
 * input.  Out of the guest: its xclip -i, xsel -i, wl-copy and pbcopy emit
 * OSC 52, which reaches the user's terminal and NAME/clipboard (kvmbox
 * clipboard get). */
#define CLIPBOARD_GUEST_DIR "/run/kvmbox/launch/clipboard"
#define CLIPBOARD_SHIMS_DIR "/run/kvmbox/launch/bin"
#define CLIPBOARD_MAX (32u << 20)

/* Write data to dirfd/name whole, mode mode (a temporary file renamed
 * over it, never through a link): 0 or -errno. */
int session_write_whole(int dirfd, const char *name, const void *data, size_t len, mode_t mode);

/* Write the guest's clipboard programs into launch_dir/bin: 0 or -errno. */
int clipboard_write_shims(const char *launch_dir);

/* Put data (an image when is_image: PNG) into running session i's
 * clipboard; *guest_path the file's path in the guest.  0 or -errno. */
int clipboard_put(const struct session_info *i, const void *data, size_t len, bool is_image,
		  char *guest_path, size_t pathsz);

/* Type bytes into the running session NAME as if from its keyboard:
 * 0, or what session_attach_connect returns. */
int session_type(const char *name, const void *bytes, size_t len);

/* Connect to the running session NAME's holder: the socket, -ENOENT (no
 * such session), -ESRCH (it does not run), -ENOTCONN (it was not started
 * at a terminal or with --detach: nothing to attach to), or -errno. */
int session_attach_connect(const char *name);

/* The session's folder for NAME (session_root + "/" + NAME). */
int session_dir(const char *name, char *out, size_t outsz);

#endif
