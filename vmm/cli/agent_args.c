/* vmm/cli/agent_args.c - the command line of `kvmbox AGENT`: which words
 * are kvmbox's and which are the agent's.
 *
 * agent-vm and brood-box users type the agent's own flags after the agent's
 * name (`kvmbox claude -p "say hi"`, `kvmbox codex exec "..."`), so every
 * word kvmbox does not know goes to the agent, in order.  kvmbox's words
 * are the launcher's own flags and kvmbox shell's (judged by
 * run_parse_flag, the parser shell itself uses, so the two cannot drift),
 * wherever they stand; a bad value for one of them is an error here, before
 * anything starts.  After "--" every word is the agent's; -h and --help
 * before it are kvmbox's (`kvmbox claude -- --help` asks claude).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch/session/session.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"
#include "vmm/cli/run.h"

/* The launcher's own flags with a value: 1 taken, 0 not ours, -EINVAL. */
static int take_launcher_flag(int argc, char **argv, int *i, struct agent_cmdline *c, char *err,
			      size_t errsz)
{
	const char *v;
	int t;
	if ((t = cli_take_value(argc, argv, i, "--image", &v)) != 0) {
		if (t > 0)
			c->image = v;
		return t;
	}
	if ((t = cli_take_value(argc, argv, i, "--name", &v)) != 0) {	/* the command line only */
		if (t > 0)
			c->name = v;
		return t;
	}
	if ((t = cli_take_value(argc, argv, i, "--project", &v)) != 0) {
		if (t > 0)
			c->project = v;
		return t;
	}
	if ((t = cli_take_value(argc, argv, i, "--exclude", &v)) != 0) {
		if (t > 0 && (!*v || c->nexcludes >= AGENT_MAX_EXCLUDES))
			return -EINVAL;
		if (t > 0)
			c->excludes[c->nexcludes++] = v;
		return t;
	}
	if (!strcmp(argv[*i], "--review") || !strcmp(argv[*i], "--no-review")) {
		c->review = argv[*i][2] == 'r';
		return 1;
	}
	if (!strcmp(argv[*i], "--self-test") || !strcmp(argv[*i], "--no-self-test")) {
		c->self_test = argv[*i][2] == 's';
		return 1;
	}
	if (!strcmp(argv[*i], "--template") || !strcmp(argv[*i], "--no-template")) {
		c->template = argv[*i][2] == 't';
		return 1;
	}
	if ((t = cli_take_value(argc, argv, i, "--detach-keys", &v)) != 0) {
		if (t > 0 && session_detach_keys_parse(v, c->detach_keys) < 0) {
			snprintf(err, errsz, "--detach-keys %.32s: two keys, each ctrl-X or a character, as in %s", v,
				 SESSION_DETACH_KEYS);
			return -EINVAL;
		}
		return t;
	}
	if (!strcmp(argv[*i], "--worktree") || !strncmp(argv[*i], "--worktree=", 11)) {	/* the command line only */
		c->worktree = true;
		c->worktree_branch = argv[*i][10] == '=' ? argv[*i] + 11 : NULL;
		return 1;
	}
	if (!strcmp(argv[*i], "--detach")) {	/* the command line only */
		c->detach = true;
		return 1;
	}
	if (!strcmp(argv[*i], "--force")) {	/* the command line only: no option of the table */
		c->force = true;
		return 1;
	}
	if (!strcmp(argv[*i], "--no-proxy")) {
		c->proxy = false;
		return 1;
	}
	if (!strcmp(argv[*i], "--no-git")) {
		c->git = false;
		return 1;
	}
	if (!strcmp(argv[*i], "--no-state")) {
		c->state = false;
		return 1;
	}
	if (!strcmp(argv[*i], "--no-hook")) {
		c->hook = false;
		return 1;
	}
	if (!strcmp(argv[*i], "--proxy")) {	/* the default, or after a configured --no-proxy */
		c->proxy = true;
		return 1;
	}
	return 0;
}

int agent_parse_args(int argc, char **argv, enum policy_agent egress_agent, struct agent_cmdline *c,
		     char *err, size_t errsz)
{
	memset(c, 0, sizeof(*c));
	c->image = "default";
	c->project = ".";
	c->proxy = true;
	c->git = true;
	c->state = true;
	c->hook = true;
	c->self_test = true;
	session_detach_keys_parse(SESSION_DETACH_KEYS, c->detach_keys);
	c->shell_flags = calloc((size_t)argc + 1, sizeof(char *));
	c->agent_args = calloc((size_t)argc + 1, sizeof(char *));
	struct run_opts *scratch = malloc(sizeof(*scratch));
	int r = 0;
	if (!c->shell_flags || !c->agent_args || !scratch) {
		snprintf(err, errsz, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	run_opts_init(scratch);
	scratch->net.agent = egress_agent;
	err[0] = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			while (++i < argc)
				c->agent_args[c->nagent++] = argv[i];
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			c->help = true;
			continue;
		}
		int start = i, t = take_launcher_flag(argc, argv, &i, c, err, errsz);
		if (t > 0)
			continue;
		if (t == 0)
			t = run_parse_flag(argc, argv, &i, scratch, err, errsz);
		if (t < 0) {
			if (!err[0])	/* cli_take_value says nothing */
				snprintf(err, errsz, "%.32s needs a value", a);
			r = -EINVAL;
			goto out;
		}
		if (t == 0) {
			c->agent_args[c->nagent++] = argv[i];
			continue;
		}
		c->has_memory |= !strncmp(a, "--memory", 8);
		c->has_cpus |= !strncmp(a, "--cpus", 6);
		for (int k = start; k <= i; k++)
			c->shell_flags[c->nshell++] = argv[k];
	}
	c->egress_profile = scratch->net.profile ? scratch->net.profile : "permissive";
	c->memory_mib = c->has_memory ? (unsigned)scratch->mem_mib : 0;
	c->cpus = c->has_cpus ? scratch->cpus : 0;
	/* what the launch self-test may expect refused: what the flags left closed */
	c->refuses_host = !scratch->net.allow_host && !scratch->net.disabled;
	c->refuses_metadata = !scratch->net.disabled;
	struct policy *pol = malloc(sizeof(*pol));
	if (pol) {
		uint8_t meta[16];
		policy_init(pol);
		policy_parse_addr("169.254.169.254", meta);
		if (net_opts_policy(&scratch->net, pol) == 0) {
			c->refuses_metadata &= !policy_allows(pol, meta, NULL);
			c->egress = pol;
		} else {
			c->refuses_metadata = false;
			policy_fini(pol);
			free(pol);
		}
	}
	for (unsigned k = 0; k < scratch->net.ndomains && k < AGENT_NOTE_DOMAINS; k++)
		c->domains[c->ndomains++] = scratch->net.domains[k];
out:
	free(scratch);
	return r;
}

void agent_cmdline_fini(struct agent_cmdline *c)
{
	free(c->shell_flags);
	free(c->agent_args);
	c->shell_flags = c->agent_args = NULL;
	if (c->egress) {
		policy_fini(c->egress);
		free(c->egress);
		c->egress = NULL;
	}
}
