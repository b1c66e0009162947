/* vmm/cli/agent.h - what `kvmbox claude|codex|opencode|shell` launch, and
 * the placeholder credentials the guest gets instead of the real ones.
 *
 * One profile per agent: the command in the image, the proxy's host list
 * for it, the host environment variables holding API keys (each with the
 * hosts the key may be sent to) and the agent's OAuth credential file under
 * the user's home.  agent_creds_collect() reads those on the host, puts
 * every real value in the proxy's secrets table under a fresh random
 * placeholder, and returns what the guest sees: NAME=placeholder
 * environment entries and the credential file rewritten with placeholders
 * (written into the guest's home by the launcher).  Real values never leave
 * the secrets table; agent_creds_writeback() puts tokens the proxy rotated
 * (OAuth refresh on the host) back into the host's credential file.
 */
#ifndef KVMBOX_VMM_CLI_AGENT_H
#define KVMBOX_VMM_CLI_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/policy.h"
#include "proxy/proxy.h"
#include "proxy/secrets.h"

#define AGENT_MAX_KEYS 8
#define AGENT_MAX_ENV 12
#define GITHUB_HOSTS "github.com,api.github.com,uploads.github.com"

/* An API key read from the host environment. */
struct agent_key {
	const char *env;	/* variable name, on the host and in the guest */
	const char *hosts;	/* where the value may go (secrets_add's CSV) */
};

/* An agent's login file: an object member holding the access and refresh
 * tokens (and maybe an identity JWT), and/or a top-level API key member
 * (Codex's auth.json has "tokens" after a ChatGPT login, "OPENAI_API_KEY"
 * after an API-key login, the other one null). */
struct agent_oauth_file {
	const char *path;	/* relative to $HOME, e.g. ".claude/.credentials.json" */
	const char *object;	/* member holding the tokens, e.g. "claudeAiOauth" */
	const char *access, *refresh;	/* token member names in it */
	const char *id_token;	/* an identity JWT member in it (handed over unsigned), or NULL */
	const char *expires_ms;	/* member of object: the access token's expiry in ms since the
				 * epoch (written back with rotated tokens), or NULL */
	const char *refreshed_at;	/* top-level member: when the tokens were last refreshed
					 * (RFC 3339, UTC; written back likewise), or NULL */
	const char *api_key, *api_key_hosts;	/* top-level API key member, or NULL */
	const char *provider;	/* proxy_oauth_cfg.provider: "claude" or "codex" */
	const char *access_hosts, *refresh_hosts;
};

/* One provider of a multi-provider login file (opencode's auth.json: a
 * member per provider, {"type":"api","key"} or {"type":"oauth","access",
 * "refresh","expires"}). */
struct agent_provider {
	const char *name;		/* its member name, e.g. "anthropic" */
	const char *api_hosts;		/* where its API key may go */
	const char *oauth_provider;	/* proxy_oauth_cfg.provider of its OAuth login, or NULL */
	const char *access_hosts, *refresh_hosts;
};
struct agent_provider_file {
	const char *path;		/* relative to $HOME */
	const struct agent_provider *providers;	/* ends at name == NULL */
};

/* A directory of the agent's in the guest home kept in the project's
 * state directory (launch/state.h): ~/home_rel links to state_rel there. */
struct agent_state_link {
	const char *home_rel, *state_rel;
};
#define AGENT_MAX_STATE_LINKS 3

struct agent_profile {
	const char *name;		/* kvmbox subcommand */
	const char *const *argv;	/* command in the guest, NULL-terminated */
	const char *const *env;		/* NAME=VALUE the agent always gets, or NULL */
	enum policy_agent egress;	/* whose provider the standard and locked profiles permit */
	struct agent_key keys[AGENT_MAX_KEYS];	/* ends at env == NULL */
	const struct agent_oauth_file *oauth;	/* or NULL */
	const struct agent_provider_file *providers;	/* or NULL */
	struct agent_state_link state[AGENT_MAX_STATE_LINKS];	/* ends at home_rel == NULL */
	const char *const *state_env;	/* NAME=VALUE with the state kept, or NULL */
	const char *memory;		/* its instructions file under $HOME, or NULL */
};

/* Where the home-relative path rel lands in the state directory when one
 * of p's links covers it ("state_rel/rest" into out): true, else false. */
bool agent_state_path(const struct agent_profile *p, const char *rel, char *out, size_t outsz);

/* The command line of `kvmbox AGENT` split (agent_args.c): kvmbox's flags
 * (the launcher's, and kvmbox shell's to pass on) and the agent's words. */
struct agent_cmdline {
	const char *image, *project;	/* --image (default "default"), --project (".") */
	bool proxy, help;		/* proxy unless --no-proxy; -h/--help */
	bool git;			/* git and GitHub wiring unless --no-git */
	bool state;			/* per-project agent state unless --no-state */
	bool hook;			/* the project's .kvmbox.runtime.sh unless --no-hook */
	bool review;			/* --review: the agent works on a copy (launch/review) */
	bool force;			/* --force: the home folder (or /) may be the project */
	bool self_test;			/* the launch self-test, unless --no-self-test */
	bool template;			/* --template: from the configuration's template */
	bool refuses_host, refuses_metadata;	/* what the flags leave refused, for it */
	struct policy *egress;		/* the egress policy the flags make (NULL: no
					 * memory for it), for it too; agent_cmdline_fini frees */
#define AGENT_MAX_EXCLUDES 32
	const char *excludes[AGENT_MAX_EXCLUDES];	/* --exclude, for the copy */
	unsigned nexcludes;
	bool has_memory, has_cpus;	/* the user sized the VM */
	unsigned memory_mib, cpus;	/* as sized (0: the table's default) */
	const char *name;		/* --name: the sandbox's (launch/session), or NULL */
	bool detach;			/* --detach: start in the background (kvmbox attach) */
	bool worktree;			/* --worktree[=BRANCH]: its own git worktree (launch/worktree) */
	const char *worktree_branch;	/* BRANCH, or NULL (the sandbox's name) */
	unsigned char detach_keys[2];	/* --detach-keys: the pair that detaches a terminal */
	const char *egress_profile;	/* --egress-profile, for the guest's note */
#define AGENT_NOTE_DOMAINS 16
	const char *domains[AGENT_NOTE_DOMAINS];	/* the first --allow-domain names, likewise */
	unsigned ndomains;
	char **shell_flags;		/* kvmbox shell's flags, with their values */
	int nshell;
	char **agent_args;		/* the rest, in order, and all after "--" */
	int nagent;
};

/* Split argv (argv[0] the agent's name); egress_agent is whose provider the
 * egress policy permits unless a flag names another (the launcher passes
 * --egress-agent so before the user's flags).  0, or -EINVAL / -ENOMEM with
 * a one-line reason in err (a flag of kvmbox's with a bad or missing
 * value).  agent_cmdline_fini() in every case. */
int agent_parse_args(int argc, char **argv, enum policy_agent egress_agent, struct agent_cmdline *c,
		     char *err, size_t errsz);
void agent_cmdline_fini(struct agent_cmdline *c);

/* The configuration files before the command line (agent_config.c): the
 * project folder argv names (--project, default "."); the flag parser's
 * verdict on one configured value (launch/config's config_check_fn); and
 * argv with the configured flag words after argv[0] (*out malloc'd, its
 * words pointing into argv and cfg; config_fini(cfg) after).  0, or
 * -errno after one line naming the file and key. */
struct config;
struct config_option;
const char *agent_project_arg(int argc, char **argv);
int agent_config_check(const struct config_option *o, const char *value, uint64_t *num, char *err,
		       size_t errsz);
int agent_config_argv(const char *cmd, int argc, char **argv, struct config *cfg, char ***out, int *outc);

/* A custom agent of the global configuration (agent_custom.c): its
 * profile, and what the profile's strings live in.  The strings of the
 * configuration are borrowed: cfg outlives it. */
#define AGENT_CUSTOM_MAX_ARGV 32
#define AGENT_CUSTOM_MAX_ENV 16
struct agent_custom {
	struct agent_profile p;
	const char *argv[AGENT_CUSTOM_MAX_ARGV + 1];
	const char *env[AGENT_CUSTOM_MAX_ENV + 1];
	char *env_store[AGENT_CUSTOM_MAX_ENV];	/* "VAR=value" of its "env" */
	char *hosts[AGENT_MAX_KEYS];		/* each secret's hosts as one CSV */
};
/* Build name's profile from cfg: 0, or -errno with one line in err. */
int agent_custom_build(const struct config *cfg, const char *name, struct agent_custom *ac, char *err,
		       size_t errsz);
void agent_custom_fini(struct agent_custom *ac);
/* Its --image and --allow-domain words (pointers into cfg): their count,
 * 0 when name is not a custom agent, -E2BIG past cap. */
int agent_custom_words(const struct config *cfg, const char *name, const char **out, int cap);
/* Whether the global configuration defines an agent called name. */
bool agent_custom_known(const char *name);

/* The profile for a subcommand name, or NULL. */
const struct agent_profile *agent_find(const char *name);

/* What one launch gives the guest, and how to write rotations back. */
struct agent_creds {
	char *env[AGENT_MAX_ENV];	/* "NAME=placeholder", malloc'd */
	unsigned nenv;
	char *oauth_json;		/* credential file with placeholders, or NULL */
	const struct agent_oauth_file *oauth;	/* its layout (path, token members) */
	struct agent_oauth_file oauth_dyn;	/* the layout of a provider file's OAuth login */
	char oauth_dyn_object[64];
	char dropped[256];		/* providers left out of the guest's file, or "" */
	char oauth_host_path[4096];	/* the host's file it came from */
	struct proxy_oauth_cfg oauth_cfg;	/* for proxy_config.oauth[] */
	char *access_ph, *refresh_ph;	/* the two placeholders (not secret), or NULL */
	/* SHA-256 of the token values the host file holds as far as kvmbox
	 * knows (read at launch, or last written back), to tell a rotation by
	 * the proxy from a change by someone else (a new login, another
	 * launch), which writeback must not undo. */
	unsigned char access_sha[32], refresh_sha[32];
	unsigned char file_sha[32];	/* SHA-256 of the whole file, likewise */
	/* When the proxy's last refresh happened and when its access token
	 * expires (ms since the epoch; 0: no refresh, or no lifetime given),
	 * so that the host file says what the agent there would have written:
	 * a later launch, or the agent on the host, does not refresh again. */
	long long refreshed_at_ms, expires_at_ms;
	int lock_fd;		/* the refresh lock's file while held (locked) */
	bool locked;
};

/* Read the profile's keys from getenv() and its credential file under home
 * (either may be absent: nothing is added then), add the real values to
 * secrets and fill c.  0, or -errno with a one-line reason in err (never a
 * value).  agent_creds_fini() frees c in every case. */
int agent_creds_collect(const struct agent_profile *p, const char *home,
			struct secrets *secrets, struct agent_creds *c, char *err, size_t errsz);

/* When the proxy rotated the OAuth tokens (their secrets' values differ
 * from what the host file holds as far as kvmbox knows): rewrite the host
 * credential file with the new real values (atomically, mode 0600), at
 * once (the proxy calls it after each refresh) and once more after the VM.
 * 1 when rewritten, 0 when nothing to write, -ESTALE when the file's tokens
 * were changed by someone else meanwhile (left as they are), -errno. */
int agent_creds_writeback(struct agent_creds *c, struct secrets *secrets);
/* The proxy refreshed now; the new access token lives expires_in_s (or -1:
 * not said).  Recorded for the next agent_creds_writeback(). */
void agent_creds_refreshed(struct agent_creds *c, long long expires_in_s);

/* The refresh lock of the host's login file, shared by every kvmbox launch
 * that uses it (flock on "<file>.kvmbox-lock" beside it, 0600, never
 * through a symbolic link): taken before a refresh goes upstream and held
 * until it is over, so that a second launch refreshing at the same moment
 * waits, then adopts the first one's tokens (agent_creds_adopt) instead of
 * spending a refresh token already spent.  Waits at most wait_ms (a
 * refresh's round trip; the caller's loop waits with it): 0, -ETIMEDOUT
 * (held elsewhere all that time), -errno.  Unlocking what is not held does
 * nothing. */
int agent_creds_lock(struct agent_creds *c, unsigned wait_ms);
void agent_creds_unlock(struct agent_creds *c);

/* Before a refresh: when the host file holds other tokens than kvmbox
 * last knew (another launch refreshed, so the refresh token kvmbox holds is
 * spent), make them the real values in secrets.  1 adopted, 0 nothing to
 * adopt, -errno. */
int agent_creds_adopt(struct agent_creds *c, struct secrets *secrets);

/* After the VM: whether the host credential file changed during the launch
 * other than by kvmbox's writebacks (SHA-256 of the file at launch, after
 * each writeback, and now).  True means: report it. */
bool agent_creds_changed_elsewhere(const struct agent_creds *c);

void agent_creds_fini(struct agent_creds *c);

/* Add one more real value (the caller wipes its copy) under a fresh
 * placeholder bound to hosts, given to the guest as env=placeholder: the
 * placeholder (owned by c), or NULL with a one-line reason in err. */
const char *agent_creds_add_env(struct agent_creds *c, struct secrets *s, const char *env,
				const char *value, const char *hosts, char *err, size_t errsz);
/* The placeholder the guest gets as env, or NULL. */
const char *agent_creds_env(const struct agent_creds *c, const char *env);

/* A fresh placeholder "kvmbox-ph-" + 32 hex digits from getrandom: a
 * malloc'd string or NULL. */
char *agent_placeholder(void);
/* The placeholder of the nth (from 0) secret called name in a table keyed
 * with key (secrets.ph_key): "kvmbox-ph-" + 32 hex digits of
 * HMAC-SHA256(key, "kvmbox placeholder NTH NAME").  Malloc'd, or NULL. */
char *agent_placeholder_keyed(const unsigned char key[SECRETS_PH_KEY_LEN], const char *name,
			      unsigned nth);

#endif
