/* vmm/cli/net_args.c - parse and apply the network flags shared by
 * net-serve, run and shell (see net_args.h).
 *
 * Values are validated with the same functions that later apply them
 * (policy_allow_cidr, policy_set_profile, policy_allow_domain,
 * net_parse_publish), on a scratch policy, so a value accepted here is
 * accepted when the real policy is built.
 */
#include "vmm/cli/net_args.h"

#include "vmm/cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char net_opts_usage[] =
	"  --allow-egress IP|CIDR   let the guest reach these addresses (repeatable)\n"
	"  --allow-lan              let the guest reach private ranges (RFC 1918, ULA...)\n"
	"  --allow-host             the gateway address reaches the host's 127.0.0.1\n"
	"  --egress-profile P       permissive (every public address, default) | standard (the\n"
	"                           agent's provider, GitHub and the package registries) |\n"
	"                           locked (the agent's provider only)\n"
	"  --allow-domain NAME      with standard or locked: NAME and its subdomains too\n"
	"                           (*.NAME: its subdomains only)\n"
	"  --egress-agent A         whose provider standard and locked let through: claude,\n"
	"                           codex, all or none (agents set their own)\n"
	"  --publish [ADDR:]HOSTPORT:GUESTPORT[/udp]\n"
	"                           a guest port on the host (ADDR default 127.0.0.1)\n"
	"  --auto-publish           (shell, agents, net-serve) the guest's TCP listeners\n"
	"                           appear on the host's 127.0.0.1 at the same port\n"
	"  --mtu N                  576..65520 (default 1500)\n"
	"  --proxy                  (run/shell) the guest's HTTPS/HTTP (TCP 443, 80) goes\n"
	"                           through kvmbox's TLS proxy; its CA is installed in the guest\n"
	"  --secret PLACEHOLDER=env:VAR@HOST[,HOST...]   (or file:PATH@...) with --proxy:\n"
	"                           the real value replaces PLACEHOLDER only towards HOSTs\n"
	"  --repo OWNER/NAME        with --proxy: GitHub writes allowed to this repository\n"
	"  --upstream-ca FILE       with --proxy: trust FILE instead of the system store\n";

int cli_parse_poll_us(const char *cmd, const char *v, uint64_t *us)
{
	if (cli_parse_uint(v, 0, 1000000, us) == 0)
		return 0;
	fprintf(stderr, "kvmbox: %s: bad --poll-us '%s' (0 to 1000000)\n", cmd, v ? v : "");
	return -1;
}

/* Run one policy setter on a scratch policy: its verdict on @v. */
static int try_policy(int (*fn)(struct policy *, const char *), const char *v)
{
	struct policy *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	policy_init(p);
	int r = fn(p, v);
	free(p);
	return r;
}

/* Append @v to a list of at most @max entries. */
static int push(const char **list, unsigned *n, unsigned max, const char *v)
{
	if (*n >= max)
		return -ENOSPC;
	list[(*n)++] = v;
	return 0;
}

static int take_mtu(struct net_opts *no, const char *v, char *err, size_t errsz)
{
	char *end;
	errno = 0;
	unsigned long m = strtoul(v, &end, 10);
	if (!*v || *v == '-' || *end || errno || m < 576 || m > 65520) {
		snprintf(err, errsz, "--mtu must be 576..65520, got '%.32s'", v);
		return -EINVAL;
	}
	no->mtu = (unsigned)m;
	return 1;
}

static int take_publish(struct net_opts *no, const char *v, char *err, size_t errsz)
{
	uint32_t a;
	uint16_t hp, gp;
	bool udp;
	if (net_parse_publish(v, &a, &hp, &gp, &udp) < 0) {
		snprintf(err, errsz, "bad --publish '%.64s' (want [ADDR:]HOSTPORT:GUESTPORT[/udp])", v);
		return -EINVAL;
	}
	if (push(no->publish, &no->npublish, NET_ARGS_MAX_PUBLISH, v) < 0) {
		snprintf(err, errsz, "too many --publish (at most %d)", NET_ARGS_MAX_PUBLISH);
		return -EINVAL;
	}
	return 1;
}

/* A policy flag with a value: validated, then remembered. */
static int take_policy_value(const char *flag, int (*fn)(struct policy *, const char *),
			     const char **list, unsigned *n, unsigned max, const char *v,
			     char *err, size_t errsz)
{
	int r = try_policy(fn, v);
	if (r == 0 && list)
		r = push(list, n, max, v);
	if (r == -ENOSPC)
		snprintf(err, errsz, "too many %s (at most %u)", flag, max);
	else if (r < 0)
		snprintf(err, errsz, "bad %s '%.64s'", flag, v);
	return r < 0 ? -EINVAL : 1;
}

/* --secret, --repo, --upstream-ca (VMs): 1, 0 (not one), or -EINVAL. */
static int take_proxy_value(struct net_opts *no, int argc, char **argv, int *i, char *err,
			    size_t errsz)
{
	static const char *const names[] = { "--secret", "--repo", "--upstream-ca" };
	for (unsigned k = 0; k < 3; k++) {
		const char *v = NULL;
		int t = cli_take_value(argc, argv, i, names[k], &v);
		if (t == 0)
			continue;
		if (t < 0 || !*v) {
			snprintf(err, errsz, "%s needs a value", names[k]);
			return -EINVAL;
		}
		no->set = true;
		int r = 0;
		if (k == 0)
			r = push(no->secrets, &no->nsecrets, NET_ARGS_MAX_SECRETS, v);
		else if (k == 1)
			r = strchr(v, '/') ? push(no->repos, &no->nrepos, NET_ARGS_MAX_REPOS, v) : -EINVAL;
		else
			no->upstream_ca = v;
		if (r == -ENOSPC)
			snprintf(err, errsz, "too many %s", names[k]);
		else if (r < 0)
			snprintf(err, errsz, "bad --repo '%.64s' (want OWNER/NAME)", v);
		return r < 0 ? -EINVAL : 1;
	}
	return 0;
}

int net_opts_take(struct net_opts *no, enum net_args_for who, int argc, char **argv, int *i,
		  char *err, size_t errsz)
{
	const char *a = argv[*i], *v = NULL;
	int t;
	if (who == NET_ARGS_VM && !strcmp(a, "--no-net")) {
		no->disabled = true;
		return 1;
	}
	if (who == NET_ARGS_VM && !strcmp(a, "--proxy")) {
		no->proxy = no->set = true;
		return 1;
	}
	if (who == NET_ARGS_VM) {
		int t = take_proxy_value(no, argc, argv, i, err, errsz);
		if (t)
			return t;
	}
	if (!strcmp(a, "--allow-lan")) {
		no->allow_lan = no->set = true;
		return 1;
	}
	if (!strcmp(a, "--allow-host")) {
		no->allow_host = no->set = true;
		return 1;
	}
	if (!strcmp(a, "--auto-publish")) {
		no->auto_publish = no->set = true;
		return 1;
	}
	static const char *const valued[] = { "--mtu", "--allow-egress", "--egress-profile",
					      "--allow-domain", "--egress-agent", "--publish" };
	for (unsigned k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
		t = cli_take_value(argc, argv, i, valued[k], &v);
		if (t == 0)
			continue;
		if (t < 0 || !*v) {
			snprintf(err, errsz, "%s needs a value", valued[k]);
			return -EINVAL;
		}
		no->set = true;
		switch (k) {
		case 0: return take_mtu(no, v, err, errsz);
		case 1: return take_policy_value("--allow-egress", policy_allow_cidr, no->egress,
						 &no->negress, POLICY_MAX_CIDRS, v, err, errsz);
		case 2:
			t = take_policy_value("--egress-profile", policy_set_profile, NULL, NULL, 0,
					      v, err, errsz);
			if (t > 0)
				no->profile = v;
			else
				snprintf(err, errsz, "unknown --egress-profile '%.32s' (permissive, standard or locked)", v);
			return t;
		case 3: return take_policy_value("--allow-domain", policy_allow_domain, no->domains,
						 &no->ndomains, POLICY_MAX_DOMAINS, v, err, errsz);
		case 4:
			if (policy_agent_parse(v, &no->agent) < 0) {
				snprintf(err, errsz, "unknown --egress-agent '%.32s' (claude, codex, all or none)", v);
				return -EINVAL;
			}
			return 1;
		default: return take_publish(no, v, err, errsz);
		}
	}
	return 0;
}

int net_opts_check(const struct net_opts *no, char *err, size_t errsz)
{
	if (no->disabled && no->set) {
		snprintf(err, errsz, "--no-net cannot be combined with network flags");
		return -EINVAL;
	}
	if (!no->proxy && (no->nsecrets || no->nrepos || no->upstream_ca)) {
		snprintf(err, errsz, "--secret, --repo and --upstream-ca need --proxy");
		return -EINVAL;
	}
	return 0;
}

int net_opts_apply(const struct net_opts *no, struct policy *pol, struct net_config *cfg)
{
	cfg->policy = pol;
	if (no->mtu)
		cfg->mtu = no->mtu;
	return net_opts_policy(no, pol);
}

int net_opts_policy(const struct net_opts *no, struct policy *pol)
{
	policy_set_agent(pol, no->agent);
	pol->allow_lan = no->allow_lan;
	pol->allow_host = no->allow_host;
	if (no->profile && policy_set_profile(pol, no->profile) < 0)
		return -EINVAL;
	for (unsigned k = 0; k < no->negress; k++)
		if (policy_allow_cidr(pol, no->egress[k]) < 0)
			return -EINVAL;
	for (unsigned k = 0; k < no->ndomains; k++)
		if (policy_allow_domain(pol, no->domains[k]) < 0)
			return -EINVAL;
	return 0;
}

int net_opts_publish(const struct net_opts *no, struct net_stack *ns, const char **bad)
{
	for (unsigned k = 0; k < no->npublish; k++) {
		int r = net_publish(ns, no->publish[k]);
		if (r < 0) {
			*bad = no->publish[k];
			return r;
		}
	}
	return 0;
}
