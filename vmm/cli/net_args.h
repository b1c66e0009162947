/* vmm/cli/net_args.h - the network flags shared by `kvmbox net-serve`,
 * `kvmbox run` and `kvmbox shell`: egress policy, port publishing, MTU, and
 * (VMs only) --no-net.
 *
 * Parsing only collects and validates: every value is checked at once (a bad
 * one is a one-line usage error, exit 2), and the strings (pointers into
 * argv) are kept so that struct net_opts stays plain data inside struct
 * run_opts.  net_opts_apply() then builds the policy and the stack's
 * configuration; publishing happens once the stack exists.
 *
 *   --no-net                              (VMs) no network card at all
 *   --mtu N                               576..65520 (default 1500)
 *   --allow-egress IP|CIDR                repeatable, overrides any group
 *   --allow-lan                           RFC 1918 and other private ranges
 *   --allow-host                          the gateway reaches the host's loopback
 *   --egress-profile permissive|standard|locked
 *   --allow-domain NAME|*.NAME            repeatable (standard, locked)
 *   --egress-agent claude|codex|all|none  whose provider standard/locked permit
 *   --publish [ADDR:]HOSTPORT:GUESTPORT[/udp]   repeatable
 *   --auto-publish                        mirror the guest's TCP listeners on
 *                                         127.0.0.1 (net-serve, shell, agents)
 *   --proxy                               (VMs) TCP 443/80 to the TLS proxy, with
 *   --secret PLACEHOLDER=env:VAR@HOSTS    repeatable (also file:PATH@HOSTS)
 *   --repo OWNER/NAME                     repeatable: GitHub writes allowed
 *   --upstream-ca FILE                    trust FILE instead of the system store
 */
#ifndef KVMBOX_VMM_CLI_NET_ARGS_H
#define KVMBOX_VMM_CLI_NET_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/net.h"
#include "net/policy.h"
#include "proxy/proxy.h"

#define NET_ARGS_MAX_PUBLISH 32	/* the stack's PUBLISH_MAX */
#define NET_ARGS_MAX_SECRETS 32
#define NET_ARGS_MAX_REPOS 64

/* Which command parses: VM launchers know --no-net and --proxy. */
enum net_args_for { NET_ARGS_SERVE, NET_ARGS_VM };

/* The network flags of one command line (strings point into argv). */
struct net_opts {
	bool disabled;				/* --no-net */
	bool set;				/* some other network flag was given */
	unsigned mtu;				/* 0: default (1500) */
	bool allow_lan, allow_host, auto_publish;
	const char *profile;			/* NULL: permissive */
	enum policy_agent agent;		/* --egress-agent (default none) */
	const char *egress[POLICY_MAX_CIDRS];
	unsigned negress;
	const char *domains[POLICY_MAX_DOMAINS];
	unsigned ndomains;
	const char *publish[NET_ARGS_MAX_PUBLISH];
	unsigned npublish;
	/* --proxy and its flags (checked when the proxy is built: reading a
	 * secret's value is not parsing) */
	bool proxy;
	const char *secrets[NET_ARGS_MAX_SECRETS];
	unsigned nsecrets;
	const char *repos[NET_ARGS_MAX_REPOS];
	unsigned nrepos;
	const char *upstream_ca;
	/* Not a flag: in the VMM of a launch with a broker (cmd_vm), its
	 * HELLO; the proxy is the broker's, reached through BROKER_CTL_FD
	 * (vmm/cli/machine_broker.h builds it in the broker). */
	const struct broker_hello *broker;
};

/* If argv[*i] is a network flag ("--flag VALUE" or "--flag=VALUE"), take it
 * (advancing *i past its value) and return 1; 0 if it is not one; -EINVAL
 * with a one-line reason in err for a bad or missing value.  @no must start
 * zeroed.  A final check (--no-net with other network flags) is
 * net_opts_check. */
int net_opts_take(struct net_opts *no, enum net_args_for who, int argc, char **argv, int *i,
		  char *err, size_t errsz);

/* After the last flag: 0, or -EINVAL with the reason (--no-net combined
 * with network flags, proxy flags without --proxy). */
int net_opts_check(const struct net_opts *no, char *err, size_t errsz);

/* Fill @pol (policy_init first) and @cfg (net_config_default first, with
 * cfg->policy = pol) from the flags.  The values were validated while
 * parsing, so this cannot fail short of a bug: 0 or -EINVAL. */
int net_opts_apply(const struct net_opts *no, struct policy *pol, struct net_config *cfg);

/* Only the policy part of net_opts_apply (the broker's proxy judges names
 * with it): 0 or -EINVAL. */
int net_opts_policy(const struct net_opts *no, struct policy *pol);

/* Open the --publish listeners on @ns: 0, or -errno with the failing spec
 * in *bad. */
int net_opts_publish(const struct net_opts *no, struct net_stack *ns, const char **bad);

/* The --poll-us value v (NULL: missing) of command cmd into *us: 0, or -1
 * after a one-line error (a usage error). */
int cli_parse_poll_us(const char *cmd, const char *v, uint64_t *us);

/* The flags for usage texts, one per line, indented by two spaces. */
extern const char net_opts_usage[];

#endif
