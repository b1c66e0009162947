/* vmm/cli/cmd_agent.c - `kvmbox claude`, `kvmbox codex`, `kvmbox opencode`:
 * a coding agent in a per-project microVM (the launch path of
 * docs/ARCHITECTURE.md).
 *
 *   kvmbox AGENT [--image NAME|REF] [--project DIR] [--no-proxy] [--no-git] [--no-state] [--no-hook]
 *                [flags of kvmbox shell] [AGENT-ARGS] [-- AGENT-ARGS]
 *
 * Words kvmbox does not know are the agent's (agent_args.c).
 *
 * 1. The agent's profile (agent.h) says which host credentials it uses:
 *    they go into the proxy's secrets table under fresh placeholders; the
 *    guest gets the placeholders (environment, and the credential file
 *    rewritten, in a per-launch directory shared read-only).
 * 2. The rest is `kvmbox shell` with: the image as the read-only root with a
 *    tmpfs overlay (--image), the project folder shared read-write at the
 *    same path (--share), the launch directory, the network with the TLS
 *    proxy (--proxy, whose CA the guest init installs), more memory and
 *    vCPUs than shell's defaults unless given, and as the command a small
 *    /bin/sh wrapper: copy the placeholder credentials into $HOME, cd to the
 *    project, exec the agent with the placeholder environment.
 * 3. After the VM: tokens the proxy rotated (OAuth refresh on the host) are
 *    written back to the host's credential file; the launch dir is removed.
 *
 * Exit status: the agent's, as kvmbox shell's; 2 for bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cage/cage.h"
#include "common/harden.h"
#include "common/log.h"
#include "common/util.h"
#include "guest/image/image.h"
#include "launch/config/config.h"
#include "launch/denials.h"
#include "launch/git.h"
#include "launch/guard.h"
#include "launch/hidden.h"
#include "launch/hostexec.h"
#include "launch/review/review.h"
#include "launch/selftest.h"
#include "launch/session/session.h"
#include "launch/worktree/worktree.h"
#include "launch/state.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vmm.h"

#define LAUNCH_GUEST_DIR "/run/kvmbox/launch"
#define REFRESH_LOCK_WAIT_MS 3000	/* another launch's refresh: one round trip */
#define HIDDEN_SCAN_MAX 20000	/* entries of the project looked at for the launch's note */
/* What shell_argv adds to the user's words: flags, the wrapper, the
 * environment and the agent's own argv. */
#define SAVED_NAME_MAX 64		/* a snapshot's memory file name, "memory-" and hex */
#define LAUNCH_DIR_STEM "kvmbox-launch-"	/* a launch folder's name, then mkdtemp's */
#define SHELL_ARGV_EXTRA (48 + AGENT_MAX_ENV + 8 + 2 * GIT_MAX_REPOS)

/* Link the agent's directories in $HOME to the project's state, copy the
 * launch's files (git config, placeholder credentials) to $HOME, enter the
 * project, run its hook (PROJECT_HOOK, when HOOK is 1 and the file is
 * executable: its output shown, a failure ends the launch with its status
 * before the agent starts), and run the agent with the placeholder
 * environment ("$@": DIR, LINKS as "home_rel=state_rel ...", HOOK,
 * MEMORY, CHECKS, NAME=VALUE..., the agent's argv).  MEMORY (when not
 * empty) is the agent's instructions file under $HOME, which gets one line
 * pointing at the sandbox's rules unless it has it already.  CHECKS is 1
 * for the launch self-test (launch/selftest.h): before the hook and the
 * agent, the launch directory's self-test program runs its list of
 * checks, and the first that fails stops the launch with status 125 and
 * one line. */
#define PROJECT_HOOK ".kvmbox.runtime.sh"
#define POLICY_POINTER "'You run in a kvmbox sandbox. When a request or a file is refused, " \
	"read /etc/kvmbox/POLICY.md: it says why and which flag of kvmbox would allow it.'"
static const char wrapper[] =
	"d=$1; links=$2; hook=$3; mem=$4; checks=$5; shift 5; "
	"for l in $links; do h=\"$HOME/${l%%=*}\"; s=" STATE_GUEST_DIR "/${l#*=}; "
	"mkdir -p \"$s\" \"${h%/*}\" && rm -rf \"$h\" && ln -s \"$s\" \"$h\" || exit 126; done; "
	"[ -d " LAUNCH_GUEST_DIR "/home ] && cp -a " LAUNCH_GUEST_DIR "/home/. \"$HOME\"/; "
	"[ -f " LAUNCH_GUEST_DIR "/POLICY.md ] && mkdir -p /etc/kvmbox && "
	"cp " LAUNCH_GUEST_DIR "/POLICY.md /etc/kvmbox/; "
	"if [ -n \"$mem\" ] && [ -f /etc/kvmbox/POLICY.md ] && ! grep -qs /etc/kvmbox/POLICY.md \"$HOME/$mem\"; then "
	"mkdir -p \"$(dirname \"$HOME/$mem\")\" && printf '\\n%s\\n' " POLICY_POINTER " >>\"$HOME/$mem\"; fi; "
	"if [ \"$checks\" = 1 ]; then sh " LAUNCH_GUEST_DIR "/" SELFTEST_SCRIPT_FILE " " LAUNCH_GUEST_DIR "/" SELFTEST_LIST " || exit $?; fi; "
	"if [ -f " LAUNCH_GUEST_DIR "/" WORKTREE_GITFILE " ]; then mount -o bind " LAUNCH_GUEST_DIR "/" WORKTREE_GITFILE
	" \"$d/.git\" || { echo \"kvmbox: cannot give git the worktree's .git in $d\" >&2; exit 126; }; fi; "
	"[ -d " CLIPBOARD_SHIMS_DIR " ] && export PATH=\"" CLIPBOARD_SHIMS_DIR ":$PATH\"; "
	"cd \"$d\" || exit 126; "
	"if [ \"$hook\" = 1 ] && [ -f " PROJECT_HOOK " ]; then "
	"if [ -x " PROJECT_HOOK " ]; then ./" PROJECT_HOOK " || { s=$?; "
	"echo \"kvmbox: " PROJECT_HOOK " failed with status $s; the agent was not started\" >&2; exit $s; }; "
	"else echo \"kvmbox: " PROJECT_HOOK " is not executable: not run\" >&2; fi; fi; "
	"exec env \"$@\"";

static const char agent_usage[] =
	"usage: kvmbox AGENT [--project DIR] [OPTIONS] [flags of kvmbox shell] [AGENT-ARGS] [-- AGENT-ARGS]\n"
	"\n"
	"Run the agent (claude, codex, opencode) in a microVM: the image as its root\n"
	"(read-only, with a throw-away overlay), the project folder (default: the\n"
	"current directory) at the same path, the network through the egress policy\n"
	"and the TLS proxy.  The guest holds placeholder credentials only; the real\n"
	"ones (API keys from the environment, the agent's login file) are swapped in\n"
	"on the wire, for their own hosts only.\n"
	"  --project DIR     folder shared read-write at the same path; never your\n"
	"                    home folder, one above it, or one holding or inside a\n"
	"                    credential store (~/.ssh, ~/.aws, the agents' logins...);\n"
	"                    its .env files, private keys and credential stores are\n"
	"                    hidden from the agent (named at launch)\n"
	"  --force           let --project be your home folder or one above it (/),\n"
	"                    its credential stores hidden; never a store itself\n"
	"  --name NAME       the sandbox's name in kvmbox ps, stop, rm (default: the\n"
	"                    project folder's and the agent's, myproj-claude)\n"
	"  --detach          start in the background: kvmbox attach NAME brings it to\n"
	"                    a terminal (at a terminal, Ctrl-] then d detaches)\n"
	"  --worktree[=BRANCH]  the agent works on its own git worktree of the\n"
	"                    project, on branch kvmbox/NAME (or kvmbox/BRANCH), the\n"
	"                    project's other branches and .git out of its reach;\n"
	"                    agents side by side on one repository\n"
	"Every other word goes to the agent, in order (kvmbox claude -p \"say hi\",\n"
	"kvmbox codex exec \"...\"); after -- every word does (kvmbox claude -- --help).\n"
	"claude runs with --dangerously-skip-permissions, codex with\n"
	"--dangerously-bypass-approvals-and-sandbox: the VM is the boundary.\n"
	"Flags of kvmbox shell (--memory 4G, --cpus, --share, network flags,\n"
	"--profile[=json]): see kvmbox shell --help.\n";

/* Everything one launch owns. */
struct launch {
	const struct agent_profile *p;
	struct agent_cmdline c;
	char project_real[PATH_MAX];
	char share_project[2 * PATH_MAX + 80];	/* PROJECT:hide, or COPY:PROJECT:hide */
	struct review rv;		/* --review: the copy and its manifest (launch/review) */
	struct git_wiring git;		/* the project's GitHub remotes, identity */
	char state[PATH_MAX];		/* the project's state dir (launch/state.h), or "" */
	char share_state[PATH_MAX + 64];	/* STATE:STATE_GUEST_DIR */
	char state_links[256];		/* "home_rel=state_rel ..." for the wrapper */
	char cred_in_state[256];	/* the placeholder login file's path in it, or "" */
	char rundir[PATH_MAX];			/* per-launch host dir, or "" */
	char share_run[PATH_MAX + 64];		/* RUNDIR:/run/kvmbox/launch:ro */
	char login_dir[PATH_MAX];	/* the OAuth login file's folder (refresh, lock), or "" */
	struct cage_path cage[10];	/* what the broker opens (writable_dirs) */
	struct config cfg;		/* the configuration files and knobs (launch/config) */
	struct agent_custom custom;	/* a custom agent's profile (p points at it) */
	char **argv;			/* argv with the configured flags, which c points into */
	struct hostexec hostexec;	/* the project's host-executed files at launch */
	bool hostexec_taken;
	struct secrets secrets;
	struct agent_creds creds;
	struct session session;		/* the named sandbox (launch/session) */
	bool registered;
	int hold_fd;			/* behind a holder: where the folder is announced, else -1 */
	struct worktree wt;		/* --worktree (launch/worktree) */
	/* Suspend and resume (launch/session): the words as typed and where,
	 * kept for a resume; the key this launch's placeholders derive from
	 * (a resume's is the suspended launch's); the saved VM's folder, and
	 * its state file as it was before the VM ran (a new one after it:
	 * suspended). */
	int typed_argc;
	char **typed_argv;
	char cwd[PATH_MAX];
	const char *resume;		/* the suspended session this launch resumes, or NULL */
	unsigned char ph_key[SECRETS_PH_KEY_LEN];
	char saved_before[SAVED_NAME_MAX];	/* its memory file's name then, or "" */
	bool suspended;
};

static int parse(struct launch *l, int argc, char **argv)
{
	char err[256];
	if (agent_parse_args(argc, argv, l->p->egress, &l->c, err, sizeof(err)) < 0) {
		log_err("%s: %s (try kvmbox %s --help)", l->p->name, err, l->p->name);
		return -EINVAL;
	}
	if (l->c.help)
		return 0;
	if (l->c.name && !session_name_valid(l->c.name)) {
		log_err("%s: --name %.64s: a sandbox name is 1 to %d of a-z, 0-9, '.', '_', '-', starting "
			"with a letter or digit", l->p->name, l->c.name, SESSION_NAME_MAX);
		return -EINVAL;
	}
	if (l->c.worktree && l->c.review) {
		log_err("%s: --worktree and --review: choose one (each keeps the agent off the project's "
			"own files: a branch in a worktree, or a copy)", l->p->name);
		return -EINVAL;
	}
	if (l->c.worktree_branch && !worktree_branch_valid(l->c.worktree_branch)) {
		log_err("%s: --worktree=%.64s: not a branch name kvmbox makes (letters, digits, '.', '_', '-', "
			"'/' between parts)", l->p->name, l->c.worktree_branch);
		return -EINVAL;
	}
	if (!realpath(l->c.project, l->project_real)) {
		log_err("%s: project folder %s: %s", l->p->name, l->c.project, strerror(errno));
		return -ENOENT;
	}
	const struct passwd *pw = getpwuid(getuid());
	const char *homes[] = { getenv("HOME"), pw ? pw->pw_dir : NULL, NULL };
	int r = guard_project(l->project_real, homes, false, err, sizeof(err));
	if (r == -EPERM && l->c.force && !(r = guard_project(l->project_real, homes, true, err, sizeof(err))))
		log_warn("%s: --force: sharing %s, your home folder or one above it; its credential "
			 "stores are hidden from the agent, the rest of it (shell history, browser "
			 "profiles, other projects) is not", l->p->name, l->project_real);
	if (r < 0) {
		if (r == -EPERM)
			log_err("%s: %s", l->p->name, err);
		else
			log_err("%s: project folder %s: %s", l->p->name, l->project_real, strerror(-r));
		return r;
	}
	return 0;
}

/* The project is shared with its sensitive files hidden (launch/hidden.h);
 * the user is told which ones the project holds. */
static void prepare_project_share(struct launch *l)
{
	if (l->c.review)	/* the copy, at the project's own path */
		snprintf(l->share_project, sizeof(l->share_project), "%s:%s:hide", l->rv.work, l->project_real);
	else
		snprintf(l->share_project, sizeof(l->share_project), "%s:hide", l->project_real);
	char found[512];
	int n = hidden_scan(l->project_real, hidden_default, HIDDEN_SCAN_MAX, found, sizeof(found));
	if (n > 0)
		log_warn("%s: hidden from the agent (they stay as they are on the host): %s", l->p->name,
			 found);
}

/* A file of the guest home, through the launch directory. */
static int write_launch_file(const char *rundir, const char *rel, const char *text)
{
	char home[PATH_MAX + 8];
	snprintf(home, sizeof(home), "%s/home", rundir);
	if (mkdir(home, 0700) < 0 && errno != EEXIST)
		return -errno;
	return state_write_file(home, rel, text);	/* the same never-follow writer */
}

/* The project's state (launch/state.h): its directory, Claude Code's
 * first settings, and the links the wrapper makes.  Without it (no home,
 * a foreign directory in the way) the launch goes on with a bare home,
 * after one warning. */
static void prepare_state(struct launch *l)
{
	int r = state_dir(l->project_real, l->state, sizeof(l->state));
	if (r == 0 && !strcmp(l->p->name, "claude"))
		r = state_seed_claude(l->state, getenv("HOME"), l->project_real);
	if (r < 0) {
		log_warn("%s: the agent's state will not be kept: %s: %s", l->p->name,
			 l->state[0] ? l->state : "$XDG_STATE_HOME", strerror(-r));
		l->state[0] = 0;
		return;
	}
	snprintf(l->share_state, sizeof(l->share_state), "%s:" STATE_GUEST_DIR, l->state);
	for (const struct agent_state_link *k = l->p->state;
	     k < l->p->state + AGENT_MAX_STATE_LINKS && k->home_rel; k++)
		snprintf(l->state_links + strlen(l->state_links), sizeof(l->state_links) - strlen(l->state_links),
			 "%s%s=%s", l->state_links[0] ? " " : "", k->home_rel, k->state_rel);
}

/* The placeholder login file: into the state directory where the agent
 * keeps its own files there (removed after the launch), else into the
 * launch directory. */
static int write_login_file(struct launch *l)
{
	if (l->state[0] && agent_state_path(l->p, l->creds.oauth->path, l->cred_in_state,
					    sizeof(l->cred_in_state))) {
		int r = state_write_file(l->state, l->cred_in_state, l->creds.oauth_json);
		if (r < 0)
			l->cred_in_state[0] = 0;
		return r;
	}
	return write_launch_file(l->rundir, l->creds.oauth->path, l->creds.oauth_json);
}

/* The remotes' repositories as pinned at the project's first launch
 * (git_pin_repos: the guest can edit .git/config), next to its state
 * directory where no guest reaches. */
static void pin_remotes(struct launch *l)
{
	char dir[PATH_MAX], pin[PATH_MAX + 8], dropped[GIT_MAX_REPOS * 44];
	int r = state_dir(l->project_real, dir, sizeof(dir));
	if (r == 0 && (size_t)snprintf(pin, sizeof(pin), "%s.repos", dir) >= sizeof(pin))
		r = -ENAMETOOLONG;
	if (r == 0)
		r = git_pin_repos(pin, &l->git, dropped, sizeof(dropped));
	if (r < 0) {
		l->git.nrepos = 0;
		log_warn("%s: the project's GitHub remotes cannot be pinned (%s): they are not allowed; "
			 "--repo OWNER/NAME still is", l->p->name, strerror(-r));
	} else if (dropped[0]) {
		log_warn("%s: GitHub remotes added since this project's first launch are not allowed "
			 "(the guest can edit .git/config): %s; allow one with --repo OWNER/NAME, or delete "
			 "%s to pin the remotes again", l->p->name, dropped, pin);
	}
}

/* Git and GitHub (launch/git.h): the remotes for the allow-list, the
 * token (the host's GH_TOKEN/GITHUB_TOKEN, else `gh auth token`) as a
 * placeholder, the guest's git config and gh's. */
static int prepare_git(struct launch *l)
{
	git_collect(l->project_real, &l->git);
	pin_remotes(l);
	char list[GIT_MAX_REPOS * GIT_REPO_MAX] = "";
	for (unsigned i = 0; i < l->git.nrepos; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 l->git.repos[i]);
	log_info("%s: GitHub writes allowed to %s", l->p->name,
		 l->git.nrepos ? list : "no repository (no GitHub remote; --repo OWNER/NAME adds one)");
	const char *ph = agent_creds_env(&l->creds, "GH_TOKEN");
	const char *from = "GH_TOKEN";
	if (!ph)
		ph = agent_creds_env(&l->creds, from = "GITHUB_TOKEN");
	if (!ph) {
		char err[300], *token = git_gh_token();
		if (token) {
			ph = agent_creds_add_env(&l->creds, &l->secrets, "GH_TOKEN", token, GITHUB_HOSTS,
						 err, sizeof(err));
			explicit_bzero(token, strlen(token));
			free(token);
			if (!ph) {
				log_err("%s: credentials: %s", l->p->name, err);
				return -EINVAL;
			}
			from = "gh auth token";
		}
	}
	log_info("%s: GitHub token: %s", l->p->name, ph ? from : "none (GH_TOKEN, GITHUB_TOKEN, gh auth token)");
	char *gitconfig = git_guest_config(&l->git, ph);
	char *hosts = ph ? git_gh_hosts(ph) : NULL;
	int r = !gitconfig || (ph && !hosts) ? -ENOMEM : write_launch_file(l->rundir, ".gitconfig", gitconfig);
	if (r == 0 && hosts)
		r = write_launch_file(l->rundir, ".config/gh/hosts.yml", hosts);
	free(gitconfig);
	free(hosts);
	if (r < 0)
		log_err("%s: cannot write the guest's git configuration: %s", l->p->name, strerror(-r));
	return r;
}

/* /etc/kvmbox/POLICY.md in the guest (the wrapper copies it from the
 * launch folder): the sandbox's rules in a few lines an agent can read
 * when something is refused.  0 or -errno. */
static int write_policy_note(struct launch *l)
{
	char repos[GIT_MAX_REPOS * (GIT_REPO_MAX + 2) + 64] = "", extra[AGENT_NOTE_DOMAINS * 256] = "";
	for (unsigned i = 0; i < l->git.nrepos; i++)
		snprintf(repos + strlen(repos), sizeof(repos) - strlen(repos), "%s%s", i ? ", " : "",
			 l->git.repos[i]);
	for (unsigned i = 0; i < l->c.ndomains; i++)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", %s", l->c.domains[i]);
	const char *prof = l->c.egress_profile;
	char *net = NULL;
	if (!strcmp(prof, "permissive"))
		net = strdup("the public internet");
	else if (asprintf(&net, "the %s egress profile: only your provider's hosts%s%s; other names do\n"
			  "  not resolve (REFUSED) and other public addresses are refused",
			  prof, !strcmp(prof, "standard") ?
			  ", GitHub, GHCR, Docker Hub, the npm, PyPI, crates, Go module,\n  RubyGems, "
			  "Maven and Debian package hosts" : "", extra) < 0)
		net = NULL;
	if (!net)
		return -ENOMEM;
	char *text = NULL;
	int n = asprintf(&text,
		     "# The sandbox you run in (kvmbox)\n\n"
		     "- This is a virtual machine. %s is the host's project folder, shared\n"
		     "  read-write; nothing else of the host is visible.\n"
		     "- Some files of the project are hidden from you on purpose (.env files,\n"
		     "  private keys, credential stores): they exist on the host, and you can\n"
		     "  neither read, list nor create them.\n"
		     "- Network: %s. Private networks, the host and cloud\n"
		     "  metadata addresses are refused unless the user allowed them\n"
		     "  (--allow-lan, --allow-host): an HTTP(S) request there gets a 403 whose\n"
		     "  body says why and which flag would allow it; other connections are reset.\n"
		     "- Credentials: API keys and login tokens here are placeholders\n"
		     "  (kvmbox-ph-...). kvmbox puts the real values into requests to their\n"
		     "  own services only; there is no real token in this machine to find.\n"
		     "- GitHub: writes (push, API) are allowed to %s only;\n"
		     "  any other repository gets a 403.\n",
		     l->project_real, net, repos[0] ? repos : "no repository");
	free(net);
	if (n < 0)
		return -ENOMEM;
	int r = state_write_file(l->rundir, "POLICY.md", text);
	free(text);
	return r;
}

/* The saved VM as it stands: the name of its memory file (each save
 * writes one under a new name, "memory-" and the time, and removes the
 * others) into name, "" when none; whether its state file is there (a
 * resume's VMM removes it once the guest goes on). */
static bool saved_vm(const struct launch *l, char name[SAVED_NAME_MAX])
{
	name[0] = 0;
	DIR *d = l->session.saved_dir[0] ? opendir(l->session.saved_dir) : NULL;
	if (!d)
		return false;
	bool state = false;
	for (struct dirent *e; (e = readdir(d));) {
		state |= !strcmp(e->d_name, "state");
		if (snap_memory_name_valid(e->d_name))	/* at most 39 bytes */
			snprintf(name, SAVED_NAME_MAX, "%.63s", e->d_name);
	}
	closedir(d);
	return state;
}

static int registered(struct launch *l);

/* kvmbox resume: the suspended sandbox is this launch's again (its name,
 * its saved VM).  0, or -EBUSY after one line. */
static int reclaim_session(struct launch *l)
{
	int r = session_reclaim(l->resume, &l->session);
	if (r < 0) {
		log_err("%s: cannot resume %s: %s", l->p->name, l->resume,
			r == -EBUSY ? "it is not suspended (running, or resumed by another)" : strerror(-r));
		return -EBUSY;
	}
	if (!l->session.info.suspendable) {	/* its saved VM's folder is named by it */
		log_err("%s: cannot resume %s: its record says it was not made to suspend", l->p->name,
			l->resume);
		session_mark_ended(&l->session, 1);
		return -EBUSY;
	}
	return registered(l);
}

/* Whether the sandbox may be suspended: all but --review and --worktree,
 * whose copy and worktree are per launch. */
static bool suspendable(const struct launch *l)
{
	return !l->c.review && !l->c.worktree;
}

/* This launch as a named sandbox (launch/session): --name, or the
 * project's and the agent's.  0, or -EBUSY after one line when --name is
 * a running sandbox's; a launch goes on without a record otherwise. */
static int register_session(struct launch *l)
{
	struct session_info in = { 0 };
	if (l->c.name)
		snprintf(in.name, sizeof(in.name), "%s", l->c.name);
	else
		session_default_name(l->project_real, l->p->name, in.name, sizeof(in.name));
	snprintf(in.agent, sizeof(in.agent), "%s", l->p->name);
	snprintf(in.project, sizeof(in.project), "%s", l->project_real);
	snprintf(in.image, sizeof(in.image), "%s", l->c.image);
	snprintf(in.egress_profile, sizeof(in.egress_profile), "%s", l->c.egress_profile);
	in.memory_mib = l->c.memory_mib ? l->c.memory_mib : (unsigned)atoi(config_option_find("memory")->dflt);
	in.cpus = l->c.cpus ? l->c.cpus : (unsigned)atoi(config_option_find("cpus")->dflt);
	for (int i = 0, o = 0; i < l->c.nshell && o < (int)sizeof(in.ports); i++) {
		const char *f = l->c.shell_flags[i], *v = NULL;
		if (!strcmp(f, "--publish") && i + 1 < l->c.nshell)
			v = l->c.shell_flags[++i];
		else if (!strncmp(f, "--publish=", 10))
			v = f + 10;
		if (v)
			o += snprintf(in.ports + o, sizeof(in.ports) - (size_t)o, "%s%s", o ? " " : "", v);
	}
	for (unsigned i = 0, o = 0; i < l->git.nrepos && o < sizeof(in.repos); i++)
		o += (unsigned)snprintf(in.repos + o, sizeof(in.repos) - o, "%s%s", o ? " " : "", l->git.repos[i]);
	/* a review's copy and a worktree are made per launch: not kept yet */
	in.suspendable = suspendable(l);
	if (l->resume)
		return reclaim_session(l);
	int r = session_register(&in, l->c.name != NULL, &l->session);
	struct session_info other;
	if (r == -EBUSY && l->c.name && session_read(l->c.name, &other) == 0 &&
	    session_state(&other) == SESSION_SUSPENDED) {
		log_err("%s: the sandbox %s is suspended (kvmbox resume %s takes it up, kvmbox rm %s drops "
			"it; or --name another)", l->p->name, l->c.name, l->c.name, l->c.name);
		return r;
	}
	if (r == -EBUSY && l->c.name) {
		log_err("%s: the sandbox %s is running (kvmbox ps lists them; --name another)", l->p->name,
			l->c.name);
		return r;
	}
	if (r < 0) {
		log_warn("%s: not recorded as a sandbox (kvmbox ps will not list it): %s", l->p->name,
			 strerror(-r));
		return 0;
	}
	return registered(l);
}

/* The sandbox is this launch's (its VM saved, when suspended, in
 * session.saved_dir). */
static int registered(struct launch *l)
{
	l->registered = true;
	saved_vm(l, l->saved_before);
	session_hold_announce(l->hold_fd, l->session.dir);
	l->hold_fd = -1;
	log_info("%s: sandbox %s (kvmbox ps, kvmbox stop %s)", l->p->name, l->session.info.name,
		 l->session.info.name);
	return 0;
}

/* The project's record of refusals (launch/denials.h), opened before the
 * cage; a launch goes on without it, saying so.  The descriptor, or -1. */
static int open_denials(struct launch *l)
{
	char what[PATH_MAX + 96];
	snprintf(what, sizeof(what), "kvmbox %s in %s, egress profile %s", l->p->name, l->project_real,
		 l->c.egress_profile);
	int fd = denials_open(l->project_real, what);
	if (fd < 0)
		log_warn("%s: no record of refusals for kvmbox logs --denials: %s", l->p->name, strerror(-fd));
	return fd;
}

/* The launch self-test's program and its checks, into the launch dir:
 * every secret is in the table by now (prepare_git adds GitHub's). */
static int write_self_test(struct launch *l)
{
	bool timed = false;
	for (int i = 0; i < l->c.nshell; i++)
		timed |= !strncmp(l->c.shell_flags[i], "--profile", 9);
	const struct selftest_in in = {
		.refuses_metadata = l->c.refuses_metadata,
		.refuses_host = l->c.refuses_host,
		.secrets = &l->secrets,
		.egress = l->c.egress,
		.timed = timed,
	};
	int r = state_write_file(l->rundir, SELFTEST_SCRIPT_FILE, selftest_script);
	return r ? r : selftest_write_list(l->rundir, &in);
}

/* The per-launch directory, shared read-only at LAUNCH_GUEST_DIR: in the
 * runtime folder, or on disk ($XDG_STATE_HOME/kvmbox/launches) for a
 * sandbox that may be suspended, whose saved file server holds this very
 * folder (its inode) and must find it again after a reboot. */
static int make_rundir(struct launch *l)
{
	if (l->rundir[0])
		return 0;
	const char *tmp = getenv("XDG_RUNTIME_DIR");
	char base[PATH_MAX];
	if (!suspendable(l) || state_kind_root("launches", base, sizeof(base)) < 0)
		snprintf(base, sizeof(base), "%s", tmp && *tmp ? tmp : "/tmp");	/* (suspendable until a reboot) */
	int e = (size_t)snprintf(l->rundir, sizeof(l->rundir), "%s/" LAUNCH_DIR_STEM "XXXXXX", base) >=
		sizeof(l->rundir) ? -ENAMETOOLONG : mkdtemp(l->rundir) ? 0 : -errno;
	if (e < 0) {
		log_err("%s: cannot create %s: %s", l->p->name, l->rundir, strerror(-e));
		l->rundir[0] = '\0';
		return e;
	}
	snprintf(l->share_run, sizeof(l->share_run), "%s:" LAUNCH_GUEST_DIR ":ro", l->rundir);
	return 0;
}

/* The clipboard's programs for the guest, in the launch directory, which
 * the record names for kvmbox clipboard put.  A launch goes on without. */
static void prepare_clipboard(struct launch *l)
{
	int r = make_rundir(l);
	if (r == 0 && (r = clipboard_write_shims(l->rundir)) == 0) {
		snprintf(l->session.info.launch_dir, sizeof(l->session.info.launch_dir), "%s", l->rundir);
		r = session_save(&l->session);
	}
	if (r < 0)
		log_warn("%s: no clipboard for the sandbox: %s", l->p->name, strerror(-r));
}

/* --worktree, once the sandbox has its name: the worktree made (or
 * reused), shared at the project's path with the git directory's parts
 * (launch/worktree.h), the guest's .git file into the launch directory,
 * the record told.  0, or -errno after one line. */
static int prepare_worktree(struct launch *l)
{
	char err[600];
	const char *name = l->registered ? l->session.info.name : l->c.name;
	char fallback[SESSION_NAME_MAX + 1];
	if (!name) {
		session_default_name(l->project_real, l->p->name, fallback, sizeof(fallback));
		name = fallback;
	}
	int r = worktree_prepare(l->project_real, name, l->c.worktree_branch, &l->wt, err, sizeof(err));
	if (r < 0) {
		log_err("%s: --worktree: %s", l->p->name, err);
		return r;
	}
	char gitfile[PATH_MAX];
	worktree_gitfile(&l->wt, gitfile, sizeof(gitfile));
	if ((r = make_rundir(l)) < 0)
		return r;
	if ((r = state_write_file(l->rundir, WORKTREE_GITFILE, gitfile)) < 0) {
		log_err("%s: cannot write the worktree's .git for the guest: %s", l->p->name, strerror(-r));
		return r;
	}
	snprintf(l->share_project, sizeof(l->share_project), "%s:%s:hide", l->wt.path, l->project_real);
	log_warn("%s: worktree %s on branch %s (%s); kvmbox rm %s removes it", l->p->name, l->wt.path,
		 l->wt.branch, l->wt.made ? "new" : "as the last launch left it", name);
	if (l->registered) {
		snprintf(l->session.info.worktree, sizeof(l->session.info.worktree), "%s", l->wt.path);
		snprintf(l->session.info.branch, sizeof(l->session.info.branch), "%s", l->wt.branch);
		if (session_save(&l->session) < 0)
			log_warn("%s: the sandbox's record does not name its worktree", l->p->name);
	}
	return 0;
}

/* Credentials into the secrets table, placeholders into the launch dir. */
static int prepare_creds(struct launch *l)
{
	char err[300];
	secrets_init(&l->secrets);
	memcpy(l->secrets.ph_key, l->ph_key, sizeof(l->ph_key));
	l->secrets.ph_keyed = true;
	int r = agent_creds_collect(l->p, getenv("HOME"), &l->secrets, &l->creds, err, sizeof(err));
	if (r < 0) {
		log_err("%s: credentials: %s", l->p->name, err);
		return r;
	}
	if (l->creds.dropped[0])
		log_warn("%s: left out of the guest's %s: %s (kvmbox does not know where their "
			 "credentials may go)", l->p->name, l->creds.oauth_host_path, l->creds.dropped);
	if ((r = make_rundir(l)) < 0)
		return r;
	if (l->creds.oauth_json && (r = write_login_file(l)) < 0) {
		log_err("%s: cannot write the guest's credentials: %s", l->p->name, strerror(-r));
		return r;
	}
	if (l->c.git && (r = prepare_git(l)) < 0)
		return r;
	if ((r = write_policy_note(l)) < 0) {
		log_err("%s: cannot write the guest's policy note: %s", l->p->name, strerror(-r));
		return r;
	}
	if (l->c.self_test && l->c.proxy && (r = write_self_test(l)) < 0) {
		log_err("%s: cannot write the launch self-test: %s", l->p->name, strerror(-r));
		return r;
	}
	return 0;
}

/* Whatever the proxy rotated, into the host's login file. */
static void tokens_written(struct launch *l)
{
	int r = agent_creds_writeback(&l->creds, &l->secrets);
	if (r == 1)
		log_info("%s: rotated tokens written to %s", l->p->name, l->creds.oauth_host_path);
	else if (r == -ESTALE)
		log_once(LOG_WARN, "%s: %s was changed by someone else during the launch (a new login, "
			 "another launch): left as it is", l->p->name, l->creds.oauth_host_path);
	else if (r < 0)
		log_warn("%s: cannot write rotated tokens to %s: %s", l->p->name, l->creds.oauth_host_path,
			 strerror(-r));
}

/* The proxy rotated the tokens (loop thread): the host's login file gets
 * them at once, so a crash cannot leave it holding a spent refresh token. */
static void tokens_rotated(void *opaque, long long expires_in_s)
{
	struct launch *l = opaque;
	agent_creds_refreshed(&l->creds, expires_in_s);
	tokens_written(l);
}

/* A refresh is about to go upstream (loop thread): take the refresh lock
 * shared with other launches (one refreshing at this moment is waited
 * for, a few seconds at most: refreshes come hours apart); if another
 * launch refreshed meanwhile, its tokens are the current ones. */
static void tokens_before_refresh(void *opaque)
{
	struct launch *l = opaque;
	int r = agent_creds_lock(&l->creds, REFRESH_LOCK_WAIT_MS);
	if (r < 0)
		log_warn("%s: cannot take the refresh lock of %s (%s): refreshing without it", l->p->name,
			 l->creds.oauth_host_path, r == -ETIMEDOUT ? "another launch held it" : strerror(-r));
	r = agent_creds_adopt(&l->creds, &l->secrets);
	if (r == 1)
		log_info("%s: took the tokens another launch refreshed from %s", l->p->name,
			 l->creds.oauth_host_path);
	else if (r < 0)
		log_warn("%s: cannot read %s before a refresh: %s", l->p->name, l->creds.oauth_host_path,
			 strerror(-r));
}

/* The refresh is over (loop thread): other launches may refresh now. */
static void tokens_after_refresh(void *opaque)
{
	struct launch *l = opaque;
	agent_creds_unlock(&l->creds);
}

/* argv for shell_launch (pointers into l and static strings); its count,
 * or -E2BIG. */
static int shell_argv(struct launch *l, char **v, int cap)
{
	int n = 0;
#define PUSH(x) do { if (n == cap) return -E2BIG; v[n++] = (char *)(x); } while (0)
	PUSH(l->p->name);	/* messages name the command the user typed */
	PUSH("--image");
	PUSH(l->c.image);
	PUSH("--share");
	PUSH(l->share_project);
	if (l->rundir[0]) {
		PUSH("--share");
		PUSH(l->share_run);
	}
	if (l->state[0]) {
		PUSH("--share");
		PUSH(l->share_state);
	}
	for (unsigned i = 0; l->wt.path[0] && i < WORKTREE_SHARES; i++) {
		PUSH("--share");
		PUSH(l->wt.shares[i]);
	}
	if (l->c.proxy)
		PUSH("--proxy");
	if (l->resume) {	/* its guest goes on: no template, no command */
		PUSH("--restore");
		PUSH(l->session.saved_dir);
	} else if (l->c.template) {
		PUSH("--template");
	}
	if (l->session.saved_dir[0]) {
		PUSH("--suspend-to");
		PUSH(l->session.saved_dir);
	}
	PUSH("--egress-agent");	/* before the user's flags, which may name another */
	PUSH(policy_agent_name(l->p->egress));
	for (unsigned i = 0; i < l->git.nrepos; i++) {
		PUSH("--repo");
		PUSH(l->git.repos[i]);
	}
	if (!l->c.has_memory) {
		PUSH("--memory");
		PUSH(config_option_find("memory")->dflt);	/* the table's default */
	}
	if (!l->c.has_cpus) {
		PUSH("--cpus");
		PUSH(config_option_find("cpus")->dflt);
	}
	for (int i = 0; i < l->c.nshell; i++)
		PUSH(l->c.shell_flags[i]);
	if (l->resume) {
		PUSH(NULL);
		return n - 1;
	}
	PUSH("--");
	PUSH("/bin/sh");
	PUSH("-c");
	PUSH(wrapper);
	PUSH("kvmbox-launch");
	PUSH(l->project_real);
	PUSH(l->state_links);
	PUSH(l->c.hook ? "1" : "0");
	PUSH(l->p->memory ? l->p->memory : "");
	PUSH(l->c.self_test && l->c.proxy ? "1" : "0");
	for (unsigned i = 0; i < l->creds.nenv; i++)
		PUSH(l->creds.env[i]);
	for (const char *const *e = l->p->env; e && *e; e++)
		PUSH(*e);
	if (l->state[0]) {
		for (const char *const *e = l->p->state_env; e && *e; e++)
			PUSH(*e);
		PUSH("HISTFILE=" STATE_GUEST_DIR "/bash_history");
	}
	for (const char *const *a = l->p->argv; *a; a++)
		PUSH(*a);
	for (int i = 0; i < l->c.nagent; i++)
		PUSH(l->c.agent_args[i]);
	PUSH(NULL);
#undef PUSH
	return n - 1;
}

/* The host folders this process (the broker, once caged) writes while
 * the VM runs and after it: rotated tokens and the refresh lock beside the
 * login file, the launch folder (removed at the end) and the state folder
 * (the placeholder login file scrubbed).  Landlock lets it write there
 * and nowhere else. */
static void writable_dirs(struct launch *l, struct shell_extra *x)
{
	size_t n = 0;
	if (l->rundir[0]) {
		l->cage[n++] = (struct cage_path){ l->rundir, CAGE_WRITE };
		l->cage[n++] = (struct cage_path){ l->rundir, CAGE_REMOVE_SELF };
	}
	if (l->state[0])
		l->cage[n++] = (struct cage_path){ l->state, CAGE_WRITE };
	if (l->registered)	/* the sandbox's record, marked ended after the VM */
		l->cage[n++] = (struct cage_path){ l->session.dir, CAGE_WRITE };
	if (l->session.saved_dir[0]) {	/* its saved VM and kept records: written, dropped once resumed and ended */
		l->cage[n++] = (struct cage_path){ l->session.saved_dir, CAGE_WRITE };
		l->cage[n++] = (struct cage_path){ l->session.saved_dir, CAGE_REMOVE_SELF };
		l->cage[n++] = (struct cage_path){ l->session.kept_dir, CAGE_WRITE };
		l->cage[n++] = (struct cage_path){ l->session.kept_dir, CAGE_REMOVE_SELF };
	}
	l->cage[n++] = (struct cage_path){ l->project_real, CAGE_READ };	/* hostexec_report */
	/* never "/" nor "." (a login file at the root or without a folder) */
	const char *login = l->creds.oauth_host_path;
	if (l->c.proxy && login[0] && path_parent(login, l->login_dir, sizeof(l->login_dir)) == 0 &&
	    strcmp(l->login_dir, "/") && strcmp(l->login_dir, "."))
		l->cage[n++] = (struct cage_path){ l->login_dir, CAGE_WRITE };
	x->broker_paths = l->cage;
	x->nbroker_paths = n;
}

/* After the VM: the project's host-executed files the agent changed,
 * under one warning. */
static void report_hostexec(struct launch *l)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int n = f ? hostexec_report(l->project_real, &l->hostexec, f) : -ENOMEM;
	if (f)
		fclose(f);
	if (n > 0) {
		log_warn("%s: the agent changed %d file%s your machine runs or trusts; read the change%s "
			 "before you run git, npm, make, direnv or your editor's tasks in %s:", l->p->name, n,
			 n == 1 ? "" : "s", n == 1 ? "" : "s", l->project_real);
		fputs(text, stderr);
	} else if (n < 0) {
		log_warn("%s: cannot check the project's git hooks and build files after the launch: %s",
			 l->p->name, strerror(-n));
	}
	free(text);
}

/* The launch being supervised (review mode): where the supervisor's signal
 * handler forwards a termination request, the only state a handler can
 * reach. */
static volatile pid_t supervised_launch;

static void forward_signal(int sig)
{
	if (supervised_launch > 0)
		kill(supervised_launch, sig);
}

/* Wait for the launch, passing on what other processes ask of us (the
 * terminal's signals reach the launch itself): its exit status, or
 * 128 + the signal that ended it. */
static int supervise(pid_t child)
{
	supervised_launch = child;
	struct sigaction fwd = { .sa_handler = forward_signal }, ign = { .sa_handler = SIG_IGN };
	sigaction(SIGTERM, &fwd, NULL);
	sigaction(SIGHUP, &fwd, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGQUIT, &ign, NULL);
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	supervised_launch = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --review: copy the project, then split.  The launch goes on in a child
 * (which reads the secrets, cages itself and runs the VM); this process
 * never reads a secret nor enters the cage, waits for it, and then holds
 * the review in the terminal, where it may write the project.  0 in the
 * child; 1 in this process when all is done, or on an error (after one
 * line), with *status set. */
static int start_review(struct launch *l, int *status)
{
	char err[600];
	int r = review_locate(&l->rv, l->project_real);
	if (r < 0)
		snprintf(err, sizeof(err), "cannot make the review folder: %s", strerror(-r));
	else
		r = review_snapshot(&l->rv, l->c.excludes, l->c.nexcludes, err, sizeof(err));
	if (r < 0) {
		log_err("%s: %s", l->p->name, err);
		*status = r == -EEXIST ? EXIT_USAGE : 1;
		return 1;
	}
	log_warn("%s: review: the agent works on a copy of %s (%s); nothing comes back without your yes",
		 l->p->name, l->project_real, l->rv.cloned ? "extents shared" : "copied");
	fflush(stderr);
	pid_t child = fork();
	if (child < 0) {
		log_err("%s: fork: %s", l->p->name, strerror(errno));
		review_discard(&l->rv);
		*status = 1;
		return 1;
	}
	if (child == 0)
		return 0;
	*status = supervise(child);
	signal(SIGINT, SIG_DFL);	/* Ctrl-C ends the review; each decision is kept as made */
	signal(SIGQUIT, SIG_DFL);
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
		r = review_run(&l->rv, stdin, stdout, l->p->name);
		if (r < 0)
			log_err("%s: review: %s (the copy stays: kvmbox review --project %s)", l->p->name,
				strerror(-r), l->project_real);
	} else {
		struct review_change *c;
		ssize_t n = review_changes(&l->rv, &c);
		if (n == 0)
			review_discard(&l->rv);
		else
			log_warn("%s: the agent's changes wait in a copy: kvmbox review --project %s", l->p->name,
				 l->project_real);
		if (n >= 0)
			review_changes_free(c, (size_t)n);
	}
	return 1;
}

/* At a terminal or with --detach, the launch goes on behind a holder
 * (launch/session: detach and attach) and this process becomes its first
 * terminal.  0 in the launch (on the holder's terminal, or here when no
 * holder could be made); 1 in this process once the terminal is done,
 * with *status set. */
static int start_holder(struct launch *l, int *status)
{
	if (!l->c.detach && !(isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)))
		return 0;
	int client, r = session_hold(&client, &l->hold_fd);
	if (r < 0) {
		log_warn("%s: cannot keep a terminal for the sandbox (%s): it runs without detach", l->p->name,
			 strerror(-r));
		return 0;
	}
	if (r == 0)
		return 0;
	struct attach_opts o = { .detach_prefix = l->c.detach_keys[0], .detach_key = l->c.detach_keys[1],
				 .leave_when_named = l->c.detach };
	*status = session_attach_run(client, &o);
	return 1;
}

/* Whether path names a launch folder (LAUNCH_DIR_STEM...): a record
 * naming another folder is never ours to fill or empty. */
static bool launch_dir_ours(const char *path)
{
	const char *base = strrchr(path, '/');
	return path[0] == '/' && base && !strncmp(base + 1, LAUNCH_DIR_STEM, strlen(LAUNCH_DIR_STEM));
}

void agent_launch_dir_remove(const char *rundir)
{
	if (!launch_dir_ours(rundir))
		return;
	int fd = open(rundir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		image_remove_tree_at(fd, "home");
		unlinkat(fd, "POLICY.md", 0);
		unlinkat(fd, WORKTREE_GITFILE, 0);
		image_remove_tree_at(fd, "bin");
		image_remove_tree_at(fd, "clipboard");
		unlinkat(fd, SELFTEST_SCRIPT_FILE, 0);
		unlinkat(fd, SELFTEST_LIST, 0);
		close(fd);
	}
	rmdir(rundir);
}

static void launch_cleanup(struct launch *l)
{
	if (l->cred_in_state[0] && state_scrub(l->state, l->cred_in_state) < 0)
		log_warn("%s: cannot remove the placeholder login file %s/%s", l->p->name, l->state,
			 l->cred_in_state);
	if (l->hold_fd >= 0)
		close(l->hold_fd);
	if (l->rundir[0] && !l->suspended)	/* a suspended guest's, for its resume */
		agent_launch_dir_remove(l->rundir);
	agent_creds_fini(&l->creds);
	secrets_fini(&l->secrets);
	agent_cmdline_fini(&l->c);
	hostexec_free(&l->hostexec);
	agent_custom_fini(&l->custom);
	config_fini(&l->cfg);
	review_fini(&l->rv);
	free(l->argv);
}

/* kvmbox resume: the suspended launch's folder again, at its path (the
 * saved VM's file server opens it by path), made anew if it went. */
static int resume_rundir(struct launch *l)
{
	struct session_info i;
	int r = session_read(l->resume, &i);
	if (r == 0 && !launch_dir_ours(i.launch_dir))
		r = -ENOENT;	/* none, or a record naming another folder */
	if (r == 0 && mkdir(i.launch_dir, 0700) < 0 && errno != EEXIST)
		r = -errno;
	if (r < 0) {
		log_err("%s: cannot resume %s: its launch folder: %s", l->p->name, l->resume, strerror(-r));
		return r;
	}
	snprintf(l->rundir, sizeof(l->rundir), "%s", i.launch_dir);
	snprintf(l->share_run, sizeof(l->share_run), "%s:" LAUNCH_GUEST_DIR ":ro", l->rundir);
	return 0;
}

/* After the VM, by the suspend folder: a memory file of another name
 * and a state, saved on the host's request, the sandbox is recorded
 * suspended with what its resume needs; the very snapshot a resume
 * started from, state and all (the VMM removes the state once the guest
 * goes on: machine_restore_spent), the resume never ran and the sandbox
 * stays suspended; otherwise it ended with status. */
static void record_end(struct launch *l, int status)
{
	char now[SAVED_NAME_MAX];
	bool state = saved_vm(l, now);
	bool same = state && now[0] && !strcmp(now, l->saved_before);
	if (l->resume && same && session_mark_suspended(&l->session) == 0) {
		l->suspended = true;	/* its launch folder kept */
		log_err("%s: sandbox %s was not resumed: it stays suspended", l->p->name, l->session.info.name);
		return;
	}
	l->suspended = state && now[0] && !same;
	struct session_resume res = { .argc = l->typed_argc };
	int r = -EINVAL;
	if (l->suspended && l->typed_argc <= SESSION_RESUME_ARGS) {
		snprintf(res.cwd, sizeof(res.cwd), "%s", l->cwd);
		memcpy(res.argv, l->typed_argv, (size_t)l->typed_argc * sizeof(*res.argv));
		memcpy(res.ph_key, l->ph_key, sizeof(res.ph_key));
		r = session_save_resume(&l->session, &res);
	}
	if (l->suspended && r == 0 && session_mark_suspended(&l->session) == 0) {
		fprintf(stderr, "kvmbox: %s: sandbox %s suspended (kvmbox resume %s)\n", l->p->name,
			l->session.info.name, l->session.info.name);
		return;
	}
	if (l->suspended)	/* nothing resumes it: its launch folder goes */
		log_err("%s: sandbox %s was saved but cannot be resumed: %s", l->p->name,
			l->session.info.name, r < 0 ? strerror(-r) : "its record cannot be written");
	l->suspended = false;
	session_drop_saved(&l->session);	/* a resumed VM went on and ended: nothing takes it up */
	if (session_mark_ended(&l->session, status) < 0)
		log_warn("%s: cannot record that sandbox %s ended", l->p->name, l->session.info.name);
}

/* A launch, or with resume the resume of that suspended sandbox (its
 * words, as typed, in argv; ph_key its placeholders' key). */
static int agent_launch(int argc, char **argv, const char *resume, const unsigned char *ph_key)
{
	struct launch *l = calloc(1, sizeof(*l));
	if (!l) {
		log_err("out of memory");
		return 1;
	}
	l->hold_fd = -1;
	l->typed_argc = argc;
	l->typed_argv = argv;
	l->resume = resume;
	if (ph_key)
		memcpy(l->ph_key, ph_key, sizeof(l->ph_key));
	if ((!ph_key && getrandom(l->ph_key, sizeof(l->ph_key), 0) != sizeof(l->ph_key)) ||
	    !getcwd(l->cwd, sizeof(l->cwd))) {
		log_err("%s: %s", argv[0], strerror(errno));
		free(l);
		return 1;
	}
	if (agent_config_argv(argv[0], argc, argv, &l->cfg, &l->argv, &argc) < 0) {
		config_fini(&l->cfg);
		free(l);
		return EXIT_USAGE;
	}
	argv = l->argv;
	/* shell's argv: the user's words, plus at most SHELL_ARGV_EXTRA of ours */
	int cap = argc + SHELL_ARGV_EXTRA;
	char **v = calloc((size_t)cap, sizeof(*v));
	l->p = agent_find(argv[0]);
	char herr[160];
	if (!l->p && agent_custom_build(&l->cfg, argv[0], &l->custom, herr, sizeof(herr)) == 0)
		l->p = &l->custom.p;
	else if (!l->p)
		log_err("%s: %s", argv[0], herr);
	struct profile prof = { 0 };
	profile_mark(&prof, PHASE_EXEC);
	int status = EXIT_USAGE;
	if (!v) {
		log_err("out of memory");
		status = 1;
	} else if (harden_secret_holder(herr, sizeof(herr)) < 0) {	/* before any secret is read */
		log_err("%s: %s", argv[0], herr);
		status = 1;
	} else if (l->p && parse(l, argc, argv) == 0) {
		if (l->c.help) {
			fputs(agent_usage, stdout);
			config_print_help(stdout);
			status = 0;
			goto out;
		}
		if (start_holder(l, &status) != 0)
			goto out;	/* the terminal that started it, now done */
		if (l->c.review && start_review(l, &status) != 0)
			goto out;	/* the supervisor after the review, or an error */
		prepare_project_share(l);
		/* with review the project is untouched: the review marks those files */
		l->hostexec_taken = !l->c.review && hostexec_snapshot(l->project_real, &l->hostexec) == 0;
		if (!l->hostexec_taken && !l->c.review)
			log_warn("%s: cannot read the project's git hooks and build files: changes to them "
				 "will not be reported", l->p->name);
		if (l->c.state)
			prepare_state(l);
		if (l->resume && resume_rundir(l) < 0) {
			status = 1;
			goto out;
		}
		int r = l->c.proxy ? prepare_creds(l) : 0;
		if (r == 0 && register_session(l) < 0) {
			status = EXIT_USAGE;
			goto out;
		}
		if (r == 0 && l->registered)
			prepare_clipboard(l);
		if (r == 0 && l->c.worktree && prepare_worktree(l) < 0) {
			status = EXIT_USAGE;
			if (l->registered)
				session_mark_ended(&l->session, status);
			goto out;
		}
		profile_mark(&prof, PHASE_CREDENTIALS);
		l->creds.oauth_cfg.rotated = tokens_rotated;
		l->creds.oauth_cfg.before_refresh = tokens_before_refresh;
		l->creds.oauth_cfg.after_refresh = tokens_after_refresh;
		l->creds.oauth_cfg.opaque = l;
		int n = r < 0 ? r : shell_argv(l, v, cap);
		if (n >= 0) {
			struct shell_extra x = { .secrets = l->c.proxy ? &l->secrets : NULL,
						 .oauth = &l->creds.oauth_cfg,
						 .noauth = l->creds.oauth_cfg.provider[0] ? 1 : 0,
						 .prof = &prof };
			/* written while the VM runs (rotated tokens, the refresh
			 * lock) and after it (the launch folder removed) */
			writable_dirs(l, &x);
			x.denials_fd = l->c.proxy ? open_denials(l) : -1;
			x.self_test = l->c.self_test && l->c.proxy;
			status = shell_launch(n, v, &x);
			if (x.denials_fd > 2)
				close(x.denials_fd);
			if (l->registered)
				record_end(l, status);
			if (l->hostexec_taken)
				report_hostexec(l);
			if (l->c.proxy) {
				tokens_written(l);	/* whatever the last refresh left */
				if (agent_creds_changed_elsewhere(&l->creds))
					log_warn("%s: %s changed during the launch, not by kvmbox", l->p->name,
						 l->creds.oauth_host_path);
			}
		} else {
			status = 1;
		}
	}
out:
	launch_cleanup(l);
	free(l);
	free(v);
	return status;
}

int cmd_agent(int argc, char **argv)
{
	return agent_launch(argc, argv, NULL, NULL);
}

int agent_resume(const char *name)
{
	struct session_resume res;
	int r = session_read_resume(name, &res);
	if (r < 0) {
		log_err("resume: %s: %s", name, r == -ENOENT ? "no record of how it was launched (was it "
			"suspended?)" : r == -EINVAL ? "its record of how it was launched is damaged" :
			strerror(-r));
		session_resume_fini(&res);
		return 1;
	}
	int status;
	if (chdir(res.cwd) < 0) {
		log_err("resume: %s: cannot enter %s, where it was launched: %s", name, res.cwd, strerror(errno));
		status = 1;
	} else {
		status = agent_launch(res.argc, res.argv, name, res.ph_key);
	}
	session_resume_fini(&res);
	return status;
}
