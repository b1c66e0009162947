/* vmm/cli/agent_custom.c - custom agents from the global configuration
 * file (launch/config/config.h, "agents"): a profile built at launch like
 * the built-in ones of agent.c.
 *
 * A custom agent's secrets are host variables the guest gets as
 * placeholders, bound to the hosts the user named, exactly as the built-in
 * agents' API keys (and GH_TOKEN/GITHUB_TOKEN for GitHub as for every
 * agent); its "env" variables pass as they are (the user says they are not
 * secret); its image and egress names become --image and --allow-domain
 * words before the user's own.  Only the user's own file defines agents: a
 * project file cannot.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch/config/config.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"

static char *dup_hosts(struct json_object *hosts)
{
	size_t len = 1;
	for (size_t i = 0; i < json_object_array_length(hosts); i++)
		len += strlen(json_object_get_string(json_object_array_get_idx(hosts, i))) + 1;
	char *csv = calloc(1, len);
	for (size_t i = 0; csv && i < json_object_array_length(hosts); i++) {
		if (i)
			strcat(csv, ",");
		strcat(csv, json_object_get_string(json_object_array_get_idx(hosts, i)));
	}
	return csv;
}

int agent_custom_build(const struct config *cfg, const char *name, struct agent_custom *ac, char *err,
		       size_t errsz)
{
	memset(ac, 0, sizeof(*ac));
	struct json_object *a = config_agent(cfg, name), *v;
	if (!a) {
		snprintf(err, errsz, "no agent %s in the configuration", name);
		return -ENOENT;
	}
	ac->p.name = name;
	ac->p.egress = POLICY_AGENT_NONE;	/* its egress names come as --allow-domain */
	json_object_object_get_ex(a, "command", &v);
	size_t n = json_object_array_length(v);
	if (n > AGENT_CUSTOM_MAX_ARGV) {
		snprintf(err, errsz, "agent %s: more than %d words in its command", name, AGENT_CUSTOM_MAX_ARGV);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++)
		ac->argv[i] = json_object_get_string(json_object_array_get_idx(v, i));
	ac->p.argv = ac->argv;
	unsigned nk = 0, ne = 0;
	if (json_object_object_get_ex(a, "secrets", &v)) {
		json_object_object_foreach(v, var, hosts) {
			if (nk + 2 >= AGENT_MAX_KEYS) {
				snprintf(err, errsz, "agent %s: more than %d secrets", name, AGENT_MAX_KEYS - 2);
				return -E2BIG;
			}
			if (!(ac->hosts[nk] = dup_hosts(hosts)))
				return -ENOMEM;
			ac->p.keys[nk] = (struct agent_key){ var, ac->hosts[nk] };
			nk++;
		}
	}
	ac->p.keys[nk++] = (struct agent_key){ "GH_TOKEN", GITHUB_HOSTS };
	ac->p.keys[nk++] = (struct agent_key){ "GITHUB_TOKEN", GITHUB_HOSTS };
	if (json_object_object_get_ex(a, "env", &v)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			const char *var = json_object_get_string(json_object_array_get_idx(v, i)), *val = getenv(var);
			if (!val)
				continue;
			if (ne >= AGENT_CUSTOM_MAX_ENV) {
				snprintf(err, errsz, "agent %s: more than %d variables to pass", name, AGENT_CUSTOM_MAX_ENV);
				return -E2BIG;
			}
			if (asprintf(&ac->env_store[ne], "%s=%s", var, val) < 0)
				return -ENOMEM;
			ac->env[ne] = ac->env_store[ne];
			ne++;
		}
	}
	ac->p.env = ac->env;
	return 0;
}

void agent_custom_fini(struct agent_custom *ac)
{
	for (unsigned i = 0; i < AGENT_MAX_KEYS; i++)
		free(ac->hosts[i]);
	for (unsigned i = 0; i < AGENT_CUSTOM_MAX_ENV; i++)
		free(ac->env_store[i]);
	memset(ac, 0, sizeof(*ac));
}

int agent_custom_words(const struct config *cfg, const char *name, const char **out, int cap)
{
	struct json_object *a = config_agent(cfg, name), *v;
	int n = 0;
	if (!a)
		return 0;
	if (json_object_object_get_ex(a, "image", &v)) {
		if (n + 2 > cap)
			return -E2BIG;
		out[n++] = "--image";
		out[n++] = json_object_get_string(v);
	}
	if (json_object_object_get_ex(a, "egress", &v))
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			if (n + 2 > cap)
				return -E2BIG;
			out[n++] = "--allow-domain";
			out[n++] = json_object_get_string(json_object_array_get_idx(v, i));
		}
	return n;
}

bool agent_custom_known(const char *name)
{
	struct config cfg;
	char err[300];
	bool known = config_load(&cfg, NULL, agent_config_check, err, sizeof(err)) == 0 &&
		     config_agent(&cfg, name) != NULL;
	config_fini(&cfg);
	return known;
}
