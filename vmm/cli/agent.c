/* vmm/cli/agent.c - agent profiles and placeholder credentials (agent.h).
 *
 * The credential files are JSON, read and rewritten with json-c; only the
 * two token members change, every other member (scopes, expiry, account
 * ids) reaches the guest as the host has it, so the agent behaves as
 * logged in.  Real values go straight from the file into the secrets table
 * and are wiped from the parsed object before it is serialised for the
 * guest.
 */
#include "vmm/cli/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/util.h"
#include "launch/state.h"
#include "proxy/oauth.h"

#define ANTHROPIC_HOSTS "api.anthropic.com"
#define OPENAI_HOSTS "api.openai.com"
#define CRED_FILE_MAX (1u << 20)

/* The VM is the boundary: claude asks no permission inside it.  As root,
 * Claude Code allows that only where IS_SANDBOX=1 says it is contained. */
static const char *const claude_argv[] = { "claude", "--dangerously-skip-permissions", NULL };
static const char *const claude_env[] = { "IS_SANDBOX=1", "DISABLE_AUTOUPDATER=1", NULL };
/* With CLAUDE_CONFIG_DIR set, ~/.claude.json lives inside it too, so one
 * directory holds all of Claude Code's state. */
static const char *const claude_state_env[] = { "CLAUDE_CONFIG_DIR=" STATE_GUEST_DIR "/claude", NULL };
/* Likewise Codex: no approvals and no sandbox of its own inside the VM (its
 * bubblewrap would need user namespaces in the guest, and the VM is the
 * sandbox), which also lifts its refusal to run outside a trusted or git
 * directory.  A flag of the top-level command: it precedes `exec`. */
static const char *const codex_argv[] = { "codex", "--dangerously-bypass-approvals-and-sandbox", NULL };
static const char *const opencode_argv[] = { "opencode", NULL };
static const char *const shell_argv[] = { "/bin/bash", "-l", NULL };

static const struct agent_oauth_file claude_oauth = {
	.path = ".claude/.credentials.json", .object = "claudeAiOauth",
	.access = "accessToken", .refresh = "refreshToken", .provider = "claude",
	.expires_ms = "expiresAt", .access_hosts = ANTHROPIC_HOSTS,
	.refresh_hosts = "console.anthropic.com,platform.claude.com",
};

static const struct agent_oauth_file codex_oauth = {
	.path = ".codex/auth.json", .object = "tokens",
	.access = "access_token", .refresh = "refresh_token", .provider = "codex",
	.id_token = "id_token", .api_key = "OPENAI_API_KEY", .api_key_hosts = OPENAI_HOSTS,
	.refreshed_at = "last_refresh",
	.access_hosts = OPENAI_HOSTS ",chatgpt.com", .refresh_hosts = "auth.openai.com",
};

/* opencode's providers kvmbox can bind to hosts; any other is left out of
 * the guest's auth.json (never handed over verbatim). */
static const struct agent_provider opencode_providers[] = {
	{ "anthropic", ANTHROPIC_HOSTS, "claude", ANTHROPIC_HOSTS, "console.anthropic.com,platform.claude.com" },
	{ "openai", OPENAI_HOSTS, "codex", OPENAI_HOSTS ",chatgpt.com", "auth.openai.com" },
	{ "openrouter", "openrouter.ai", NULL, NULL, NULL },
	{ "google", "generativelanguage.googleapis.com", NULL, NULL, NULL },
	{ "groq", "api.groq.com", NULL, NULL, NULL },
	{ "mistral", "api.mistral.ai", NULL, NULL, NULL },
	{ "deepseek", "api.deepseek.com", NULL, NULL, NULL },
	{ "xai", "api.x.ai", NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};
static const struct agent_provider_file opencode_auth = {
	.path = ".local/share/opencode/auth.json", .providers = opencode_providers,
};

static const struct agent_profile profiles[] = {
	{ .name = "claude", .argv = claude_argv, .env = claude_env, .egress = POLICY_AGENT_CLAUDE,
	  .state = { { ".claude", "claude" } }, .state_env = claude_state_env,
	  .keys = { { "ANTHROPIC_API_KEY", ANTHROPIC_HOSTS },
		    { "CLAUDE_CODE_OAUTH_TOKEN", ANTHROPIC_HOSTS },
		    { "GH_TOKEN", GITHUB_HOSTS }, { "GITHUB_TOKEN", GITHUB_HOSTS } },
	  .oauth = &claude_oauth, .memory = ".claude/CLAUDE.md" },
	{ .name = "codex", .argv = codex_argv, .egress = POLICY_AGENT_CODEX,
	  .state = { { ".codex", "codex" } },
	  .keys = { { "OPENAI_API_KEY", OPENAI_HOSTS },
		    { "GH_TOKEN", GITHUB_HOSTS }, { "GITHUB_TOKEN", GITHUB_HOSTS } },
	  .oauth = &codex_oauth, .memory = ".codex/AGENTS.md" },
	{ .name = "opencode", .argv = opencode_argv, .egress = POLICY_AGENT_ALL,
	  .state = { { ".local/share/opencode", "opencode" }, { ".config/opencode", "opencode-config" } },
	  .providers = &opencode_auth, .memory = ".config/opencode/AGENTS.md",
	  .keys = { { "ANTHROPIC_API_KEY", ANTHROPIC_HOSTS },
		    { "OPENAI_API_KEY", OPENAI_HOSTS },
		    { "OPENROUTER_API_KEY", "openrouter.ai" },
		    { "GEMINI_API_KEY", "generativelanguage.googleapis.com" },
		    { "GH_TOKEN", GITHUB_HOSTS }, { "GITHUB_TOKEN", GITHUB_HOSTS } } },
	{ .name = "shell", .argv = shell_argv, .egress = POLICY_AGENT_NONE,
	  .keys = { { "GH_TOKEN", GITHUB_HOSTS }, { "GITHUB_TOKEN", GITHUB_HOSTS } } },
};

bool agent_state_path(const struct agent_profile *p, const char *rel, char *out, size_t outsz)
{
	for (const struct agent_state_link *l = p->state; l < p->state + AGENT_MAX_STATE_LINKS && l->home_rel; l++) {
		size_t n = strlen(l->home_rel);
		if (!strncmp(rel, l->home_rel, n) && rel[n] == '/')
			return (size_t)snprintf(out, outsz, "%s%s", l->state_rel, rel + n) < outsz;
	}
	return false;
}

const struct agent_profile *agent_find(const char *name)
{
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (!strcmp(profiles[i].name, name))
			return &profiles[i];
	return NULL;
}

char *agent_placeholder(void)
{
	uint8_t r[16];
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return NULL;
	char *p = malloc(sizeof("kvmbox-ph-") + 2 * sizeof(r));
	if (!p)
		return NULL;
	int n = sprintf(p, "kvmbox-ph-");
	for (size_t i = 0; i < sizeof(r); i++)
		n += sprintf(p + n, "%02x", r[i]);
	return p;
}

char *agent_placeholder_keyed(const unsigned char key[SECRETS_PH_KEY_LEN], const char *name,
			      unsigned nth)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	char msg[160];
	int n = snprintf(msg, sizeof(msg), "kvmbox placeholder %u %s", nth, name);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    !HMAC(EVP_sha256(), key, SECRETS_PH_KEY_LEN, (const unsigned char *)msg, (size_t)n, mac, &len) ||
	    len < 16)
		return NULL;
	char *p = malloc(sizeof("kvmbox-ph-") + 32);
	if (!p)
		return NULL;
	n = sprintf(p, "kvmbox-ph-");
	for (size_t i = 0; i < 16; i++)
		n += sprintf(p + n, "%02x", mac[i]);
	return p;
}

/* The placeholder of the next secret called name: from the table's key
 * when it has one (the same name, the same placeholder, in every launch
 * with that key: a resumed sandbox's guest keeps the ones it had), else
 * drawn fresh. */
static char *next_placeholder(const struct secrets *s, const char *name)
{
	if (!s->ph_keyed)
		return agent_placeholder();
	unsigned nth = 0;	/* one name twice (a profile's key and --github's) */
	for (unsigned i = 0; i < s->n; i++)
		nth += s->v[i].name && !strcmp(s->v[i].name, name);
	return agent_placeholder_keyed(s->ph_key, name, nth);
}

/* A new secret under its placeholder; the placeholder (malloc'd) or NULL
 * with err filled. */
static char *add_secret(struct secrets *s, const char *name, const char *value,
			const char *hosts, char *err, size_t errsz)
{
	char *ph = next_placeholder(s, name);
	int r = ph ? secrets_add(s, name, ph, value, hosts) : -ENOMEM;
	if (r < 0) {
		snprintf(err, errsz, "%s: %s", name, strerror(-r));
		free(ph);
		return NULL;
	}
	return ph;
}

const char *agent_creds_add_env(struct agent_creds *c, struct secrets *s, const char *env,
				const char *value, const char *hosts, char *err, size_t errsz)
{
	if (c->nenv == AGENT_MAX_ENV) {
		snprintf(err, errsz, "%s: too many credentials", env);
		return NULL;
	}
	char name[96];
	snprintf(name, sizeof(name), "env:%s", env);
	char *ph = add_secret(s, name, value, hosts, err, errsz);
	if (!ph)
		return NULL;
	int n = asprintf(&c->env[c->nenv], "%s=%s", env, ph);
	free(ph);
	if (n < 0) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	return strchr(c->env[c->nenv++], '=') + 1;
}

const char *agent_creds_env(const struct agent_creds *c, const char *env)
{
	size_t n = strlen(env);
	for (unsigned i = 0; i < c->nenv; i++)
		if (!strncmp(c->env[i], env, n) && c->env[i][n] == '=')
			return c->env[i] + n + 1;
	return NULL;
}

static int collect_env(const struct agent_profile *p, struct secrets *s, struct agent_creds *c,
		       char *err, size_t errsz)
{
	for (const struct agent_key *k = p->keys; k < p->keys + AGENT_MAX_KEYS && k->env; k++) {
		const char *v = getenv(k->env);
		if (!v || !*v || c->nenv == AGENT_MAX_ENV)
			continue;
		if (!agent_creds_add_env(c, s, k->env, v, k->hosts, err, errsz))
			return -EINVAL;
	}
	return 0;
}

static void sha256(const void *p, size_t len, unsigned char out[32])
{
	unsigned n = 32;
	if (!EVP_Digest(p, len, out, &n, EVP_sha256(), NULL))
		memset(out, 0, 32);
}

/* Replace the string member @key of @obj by a placeholder for its value,
 * whose hash goes to sha.  The placeholder (malloc'd), or NULL: member
 * absent (err empty) or error. */
static char *swap_token(struct json_object *obj, const char *key, const char *name,
			const char *hosts, struct secrets *s, unsigned char sha[32],
			char *err, size_t errsz)
{
	struct json_object *v;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string) ||
	    !json_object_get_string_len(v))
		return NULL;
	sha256(json_object_get_string(v), (size_t)json_object_get_string_len(v), sha);
	char *ph = add_secret(s, name, json_object_get_string(v), hosts, err, errsz);
	if (ph) {
		/* Wipe the real value in the parsed object before replacing it. */
		explicit_bzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
		json_object_object_add(obj, key, json_object_new_string(ph));
	}
	return ph;
}

/* Parse the login file's bytes; NULL unless a complete JSON object. */
static struct json_object *parse_object(const uint8_t *buf, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = tok ? json_tokener_parse_ex(tok, (const char *)buf, (int)len) : NULL;
	bool complete = tok && json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	if (!complete || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

/* The host's login file at c->oauth_host_path: its SHA-256 into sha (or
 * NULL) and, when root is not NULL, its parsed object there (NULL unless a
 * complete JSON object); the bytes read are wiped.  0 or -errno. */
static int read_login_file(const struct agent_creds *c, unsigned char sha[32], struct json_object **root)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = read_file(c->oauth_host_path, CRED_FILE_MAX, &buf, &len);
	if (r < 0)
		return r;
	if (sha)
		sha256(buf, len, sha);
	if (root)
		*root = parse_object(buf, len);
	explicit_bzero(buf, len);
	free(buf);
	return 0;
}

/* The tokens object's members: access, refresh (placeholders bound to
 * their hosts), the identity JWT (unsigned).  0 or -errno, err set. */
static int collect_tokens(const struct agent_oauth_file *o, struct json_object *inner, struct secrets *s,
			  struct agent_creds *c, char *err, size_t errsz)
{
	char name[64];
	err[0] = '\0';
	snprintf(name, sizeof(name), "%s:%s", o->provider, o->access);
	c->access_ph = swap_token(inner, o->access, name, o->access_hosts, s, c->access_sha, err, errsz);
	snprintf(name, sizeof(name), "%s:%s", o->provider, o->refresh);
	c->refresh_ph = swap_token(inner, o->refresh, name, o->refresh_hosts, s, c->refresh_sha, err, errsz);
	if (err[0])
		return -EINVAL;
	if (!c->access_ph) {
		snprintf(err, errsz, "%s: no %s.%s token", c->oauth_host_path, o->object, o->access);
		return -EINVAL;
	}
	struct json_object *v;
	if (o->id_token && json_object_object_get_ex(inner, o->id_token, &v) && !json_object_is_type(v, json_type_null)) {
		char *u;
		if (!json_object_is_type(v, json_type_string) ||
		    oauth_jwt_unsign(json_object_get_string(v), (size_t)json_object_get_string_len(v), &u) < 0) {
			snprintf(err, errsz, "%s: %s.%s is not a JWT", c->oauth_host_path, o->object, o->id_token);
			return -EINVAL;
		}
		explicit_bzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
		json_object_object_add(inner, o->id_token, json_object_new_string(u));
		free(u);
	}
	if (c->refresh_ph) {
		/* refresh-only from the start (proxy_new marks it again): the
		 * launch self-test's list reads the table before the proxy */
		struct secret *e = secrets_find(s, c->refresh_ph, strlen(c->refresh_ph));
		if (e)
			e->refresh_only = true;
		struct proxy_oauth_cfg *oc = &c->oauth_cfg;
		snprintf(oc->provider, sizeof(oc->provider), "%s", o->provider);
		snprintf(oc->access_placeholder, sizeof(oc->access_placeholder), "%s", c->access_ph);
		snprintf(oc->refresh_placeholder, sizeof(oc->refresh_placeholder), "%s", c->refresh_ph);
	}
	return 0;
}

/* The login file: its tokens object (which may be null when an API key
 * stands instead) and its API key member, each real value swapped for a
 * placeholder; the file as the guest sees it into c->oauth_json. */
static int collect_oauth(const struct agent_oauth_file *o, const char *home, struct secrets *s,
			 struct agent_creds *c, char *err, size_t errsz)
{
	snprintf(c->oauth_host_path, sizeof(c->oauth_host_path), "%s/%s", home, o->path);
	struct json_object *root, *inner = NULL;
	int r = read_login_file(c, c->file_sha, &root);
	if (r == -ENOENT)
		return 0;	/* not logged in on the host: nothing to hand over */
	if (r < 0) {
		snprintf(err, errsz, "cannot read %s: %s", c->oauth_host_path, strerror(-r));
		return r;
	}
	bool has_inner = root && json_object_object_get_ex(root, o->object, &inner) &&
			 json_object_is_type(inner, json_type_object);
	bool null_inner = root && (!json_object_object_get_ex(root, o->object, &inner) ||
				   json_object_is_type(inner, json_type_null));
	char key_ph_name[64];
	snprintf(key_ph_name, sizeof(key_ph_name), "%s:%s", o->provider, o->api_key ? o->api_key : "");
	unsigned char key_sha[32];
	err[0] = '\0';
	char *key_ph = o->api_key && root ? swap_token(root, o->api_key, key_ph_name, o->api_key_hosts, s,
						       key_sha, err, errsz) : NULL;
	if (!root || err[0] || (!has_inner && !(null_inner && key_ph))) {
		if (!err[0])
			snprintf(err, errsz, "%s: not the expected JSON (no \"%s\" object%s%s)", c->oauth_host_path,
				 o->object, o->api_key ? " and no " : "", o->api_key ? o->api_key : "");
		json_object_put(root);
		free(key_ph);
		return -EINVAL;
	}
	free(key_ph);
	r = has_inner ? collect_tokens(o, inner, s, c, err, errsz) : 0;
	if (r == 0) {
		c->oauth = o;
		c->oauth_json = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
		r = c->oauth_json ? 0 : -ENOMEM;
	}
	json_object_put(root);
	return r;
}

static const struct agent_provider *provider_find(const struct agent_provider_file *pf, const char *name)
{
	for (const struct agent_provider *p = pf->providers; p->name; p++)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

/* A string member of o named key. */
static bool str_is(struct json_object *o, const char *key, const char *want)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
	       !strcmp(json_object_get_string(v), want);
}

/* One provider entry: an API key, or an OAuth login (the first one that the
 * proxy can refresh gets refreshed; any other keeps its access token only).
 * 1 kept, 0 to leave out, -errno with err set. */
static int collect_provider(const struct agent_provider_file *pf, const struct agent_provider *p,
			    struct json_object *v, struct secrets *s, struct agent_creds *c, char *err, size_t errsz)
{
	char name[96];
	unsigned char sha[32];
	err[0] = 0;
	if (str_is(v, "type", "api")) {
		snprintf(name, sizeof(name), "opencode:%s:key", p->name);
		char *ph = swap_token(v, "key", name, p->api_hosts, s, sha, err, errsz);
		free(ph);
		return err[0] ? -EINVAL : ph ? 1 : 0;
	}
	if (!str_is(v, "type", "oauth") || !p->oauth_provider)
		return 0;
	if (!c->oauth_dyn.path) {
		snprintf(c->oauth_dyn_object, sizeof(c->oauth_dyn_object), "%s", p->name);
		c->oauth_dyn = (struct agent_oauth_file){
			.path = pf->path, .object = c->oauth_dyn_object, .access = "access", .refresh = "refresh",
			.provider = p->oauth_provider, .access_hosts = p->access_hosts,
			.refresh_hosts = p->refresh_hosts,
		};
		int r = collect_tokens(&c->oauth_dyn, v, s, c, err, errsz);
		return r < 0 ? r : 1;
	}
	snprintf(name, sizeof(name), "opencode:%s:access", p->name);
	char *ph = swap_token(v, "access", name, p->access_hosts, s, sha, err, errsz);
	free(ph);
	json_object_object_del(v, "refresh");	/* no second refresh kvmbox could perform */
	return err[0] ? -EINVAL : ph ? 1 : 0;
}

/* A multi-provider login file: each known provider's values swapped for
 * placeholders, every other entry left out (named in c->dropped). */
static int collect_providers(const struct agent_provider_file *pf, const char *home, struct secrets *s,
			     struct agent_creds *c, char *err, size_t errsz)
{
	snprintf(c->oauth_host_path, sizeof(c->oauth_host_path), "%s/%s", home, pf->path);
	struct json_object *root;
	int r = read_login_file(c, c->file_sha, &root);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		snprintf(err, errsz, "cannot read %s: %s", c->oauth_host_path, strerror(-r));
		return r;
	}
	if (!root) {
		snprintf(err, errsz, "%s: not a JSON object", c->oauth_host_path);
		return -EINVAL;
	}
	const char *drop[64];
	unsigned ndrop = 0;
	json_object_object_foreach(root, key, val) {
		const struct agent_provider *p = provider_find(pf, key);
		r = p && json_object_is_type(val, json_type_object) ? collect_provider(pf, p, val, s, c, err, errsz) : 0;
		if (r < 0)
			break;
		if (r == 0 && ndrop < 64)
			drop[ndrop++] = key;
	}
	for (unsigned i = 0; r >= 0 && i < ndrop; i++) {
		snprintf(c->dropped + strlen(c->dropped), sizeof(c->dropped) - strlen(c->dropped), "%s%s",
			 i ? ", " : "", drop[i]);
		json_object_object_del(root, drop[i]);	/* frees the key: after its use */
	}
	if (r >= 0) {
		c->oauth_dyn.path = pf->path;
		c->oauth = &c->oauth_dyn;
		c->oauth_json = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
		r = c->oauth_json ? 0 : -ENOMEM;
	}
	json_object_put(root);
	return r;
}

int agent_creds_collect(const struct agent_profile *p, const char *home,
			struct secrets *secrets, struct agent_creds *c, char *err, size_t errsz)
{
	memset(c, 0, sizeof(*c));
	int r = collect_env(p, secrets, c, err, errsz);
	if (r == 0 && p->oauth && home && *home)
		r = collect_oauth(p->oauth, home, secrets, c, err, errsz);
	if (r == 0 && p->providers && home && *home)
		r = collect_providers(p->providers, home, secrets, c, err, errsz);
	return r;
}

/* The current real value of the secret behind placeholder ph, or NULL. */
static const struct secret *secret_of(struct secrets *s, const char *ph)
{
	return ph ? secrets_find(s, ph, strlen(ph)) : NULL;
}

/* Write text to path through a temporary file and rename: 0 or -errno. */
static int write_atomic(const char *path, const char *text)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.kvmbox-XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	int r = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len &&
		fsync(fd) == 0 ? 0 : -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

/* SHA-256 of the string member key of o, or all zeros when absent. */
static void member_sha(struct json_object *o, const char *key, unsigned char out[32])
{
	struct json_object *v;
	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		sha256(json_object_get_string(v), (size_t)json_object_get_string_len(v), out);
	else
		memset(out, 0, 32);
}

void agent_creds_refreshed(struct agent_creds *c, long long expires_in_s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->refreshed_at_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	c->expires_at_ms = expires_in_s > 0 ? c->refreshed_at_ms + expires_in_s * 1000 : 0;
}

/* The refresh's time and expiry into the login file's members (root, and
 * inner: the tokens' object), where the layout has them. */
static void set_refresh_times(const struct agent_creds *c, struct json_object *root, struct json_object *inner)
{
	if (c->oauth->expires_ms && c->expires_at_ms)
		json_object_object_add(inner, c->oauth->expires_ms, json_object_new_int64(c->expires_at_ms));
	if (c->oauth->refreshed_at && c->refreshed_at_ms) {
		time_t t = (time_t)(c->refreshed_at_ms / 1000);
		struct tm tm;
		char when[40];
		if (gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm)) {
			char full[64];
			snprintf(full, sizeof(full), "%s.%03lldZ", when, c->refreshed_at_ms % 1000);
			json_object_object_add(root, c->oauth->refreshed_at, json_object_new_string(full));
		}
	}
}

int agent_creds_writeback(struct agent_creds *c, struct secrets *secrets)
{
	if (!c->oauth || !c->access_ph)
		return 0;
	const struct secret *a = secret_of(secrets, c->access_ph);
	const struct secret *f = secret_of(secrets, c->refresh_ph);
	unsigned char a_now[32], f_now[32];
	sha256(a ? a->value : "", a ? a->value_len : 0, a_now);
	sha256(f ? f->value : "", f ? f->value_len : 0, f_now);
	if ((!a || !memcmp(a_now, c->access_sha, 32)) && (!f || !memcmp(f_now, c->refresh_sha, 32)))
		return 0;	/* nothing rotated since the file last matched */
	struct json_object *root, *inner;
	int r = read_login_file(c, NULL, &root);
	if (r < 0)
		return r;
	if (!root || !json_object_object_get_ex(root, c->oauth->object, &inner) ||
	    !json_object_is_type(inner, json_type_object)) {
		json_object_put(root);
		return -EINVAL;
	}
	unsigned char a_file[32], f_file[32];
	member_sha(inner, c->oauth->access, a_file);
	member_sha(inner, c->oauth->refresh, f_file);
	if (memcmp(a_file, c->access_sha, 32) || (f && memcmp(f_file, c->refresh_sha, 32))) {
		json_object_put(root);
		return -ESTALE;	/* a new login, or another launch's refresh: theirs stands */
	}
	json_object_object_add(inner, c->oauth->access, json_object_new_string_len(a->value, (int)a->value_len));
	if (f)
		json_object_object_add(inner, c->oauth->refresh,
				       json_object_new_string_len(f->value, (int)f->value_len));
	set_refresh_times(c, root, inner);
	const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	r = text ? write_atomic(c->oauth_host_path, text) : -ENOMEM;
	if (r == 0) {
		memcpy(c->access_sha, a_now, 32);
		memcpy(c->refresh_sha, f_now, 32);
		sha256(text, strlen(text), c->file_sha);
	}
	if (text)
		explicit_bzero((char *)text, strlen(text));
	json_object_put(root);
	return r < 0 ? r : 1;
}

int agent_creds_adopt(struct agent_creds *c, struct secrets *secrets)
{
	struct secret *a = (struct secret *)secret_of(secrets, c->access_ph);
	struct secret *f = (struct secret *)secret_of(secrets, c->refresh_ph);
	if (!c->oauth || !a || !f)
		return 0;
	unsigned char file_sha[32];
	struct json_object *root, *inner, *av, *fv;
	int r = read_login_file(c, file_sha, &root);
	if (r < 0)
		return r;
	if (root && json_object_object_get_ex(root, c->oauth->object, &inner) &&
	    json_object_object_get_ex(inner, c->oauth->access, &av) &&
	    json_object_object_get_ex(inner, c->oauth->refresh, &fv) &&
	    json_object_is_type(av, json_type_string) && json_object_is_type(fv, json_type_string) &&
	    json_object_get_string_len(av) && json_object_get_string_len(fv)) {
		unsigned char a_file[32], f_file[32];
		member_sha(inner, c->oauth->access, a_file);
		member_sha(inner, c->oauth->refresh, f_file);
		if (memcmp(f_file, c->refresh_sha, 32)) {
			r = secret_set_value(a, json_object_get_string(av), (size_t)json_object_get_string_len(av));
			if (!r)
				r = secret_set_value(f, json_object_get_string(fv),
						     (size_t)json_object_get_string_len(fv));
			if (!r) {
				memcpy(c->access_sha, a_file, 32);
				memcpy(c->refresh_sha, f_file, 32);
				memcpy(c->file_sha, file_sha, 32);
				r = 1;
			}
		}
		explicit_bzero((char *)json_object_get_string(av), (size_t)json_object_get_string_len(av));
		explicit_bzero((char *)json_object_get_string(fv), (size_t)json_object_get_string_len(fv));
	}
	json_object_put(root);
	return r;
}

bool agent_creds_changed_elsewhere(const struct agent_creds *c)
{
	if (!c->oauth)
		return false;
	unsigned char now[32];
	if (read_login_file(c, now, NULL) < 0)
		return true;	/* it was there at launch */
	return memcmp(now, c->file_sha, 32) != 0;
}

int agent_creds_lock(struct agent_creds *c, unsigned wait_ms)
{
	if (c->locked)
		return 0;
	if (!c->oauth_host_path[0])
		return -ENOENT;
	char path[sizeof(c->oauth_host_path) + 16];
	if (snprintf(path, sizeof(path), "%s.kvmbox-lock", c->oauth_host_path) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (unsigned waited = 0;; waited += 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			c->lock_fd = fd;
			c->locked = true;
			return 0;
		}
		int e = errno;
		if (e != EWOULDBLOCK || waited >= wait_ms) {
			close(fd);
			return e == EWOULDBLOCK ? -ETIMEDOUT : -e;
		}
		struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
		nanosleep(&ten_ms, NULL);
	}
}

void agent_creds_unlock(struct agent_creds *c)
{
	if (!c->locked)
		return;
	close(c->lock_fd);	/* releases the flock */
	c->locked = false;
}

void agent_creds_fini(struct agent_creds *c)
{
	agent_creds_unlock(c);
	for (unsigned i = 0; i < c->nenv; i++)
		free(c->env[i]);
	free(c->oauth_json);
	free(c->access_ph);
	free(c->refresh_ph);
	memset(c, 0, sizeof(*c));
}
