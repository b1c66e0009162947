/* vmm/cli/machine_broker.c - the broker's half of a launch with --proxy
 * (machine_broker.h); the VMM's entry, `kvmbox .vm`, is cmd_vm.c. */
#include "vmm/cli/machine_broker.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "broker/broker.h"
#include "common/harden.h"
#include "common/log.h"
#include "common/util.h"
#include "launch/denials.h"
#include "proxy/proxy.h"
#include "vmm/snapshot/snapshot.h"

/* What the proxy borrows, for as long as it runs. */
struct broker_proxy {
	struct secrets own;		/* --secret entries, without a launcher's table */
	struct repolist repos;
	struct policy egress;		/* the VMM's, rebuilt from the same flags: its names */
	struct proxy_config cfg;
	struct cage_path paths[12];	/* the launcher's, and a suspend's folder */
	char suspend_ca[PATH_MAX];	/* broker_launch.suspend_ca, or "" */
	char restore_ca[PATH_MAX];	/* proxy_config.ca_file, or "" */
};

/* The proxy's configuration: the egress policy built from the flags the
 * VMM gets too, whose names the proxy judges (the VMM's copy judges
 * addresses before a flow reaches the broker), the launcher's secrets
 * table or one of our own, --secret entries added.
 * 0, or EXIT_USAGE / 1 after one line. */
static int proxy_build(struct broker_proxy *bp, const char *cmd, const struct run_opts *o,
		       const struct shell_extra *x)
{
	const struct net_opts *no = &o->net;
	char err[200];
	struct secrets *sec = x && x->secrets ? x->secrets : &bp->own;
	unsigned noauth = x ? x->noauth : 0;
	if (noauth > PROXY_MAX_OAUTH) {
		log_err("too many OAuth clients");
		return 1;
	}
	policy_init(&bp->egress);
	if (net_opts_policy(no, &bp->egress) < 0) {
		log_err("%s: bad egress flags", cmd);	/* validated while parsing: a bug */
		return EXIT_USAGE;
	}
	bp->cfg = (struct proxy_config){ .secrets = sec, .repos = &bp->repos, .egress = &bp->egress,
					 .upstream_ca = no->upstream_ca, .noauth = noauth };
	for (unsigned k = 0; k < noauth; k++)
		bp->cfg.oauth[k] = x->oauth[k];
	for (unsigned k = 0; k < no->nsecrets; k++)
		if (secrets_add_spec(sec, no->secrets[k], err, sizeof(err)) < 0) {
			log_err("%s: --secret: %s", cmd, err);
			return EXIT_USAGE;
		}
	for (unsigned k = 0; k < no->nrepos; k++)
		if (repolist_add(&bp->repos, no->repos[k]) < 0) {
			log_err("%s: bad --repo '%s' (want OWNER/NAME)", cmd, no->repos[k]);
			return EXIT_USAGE;
		}
	if (no->upstream_ca && access(no->upstream_ca, R_OK) < 0) {
		log_err("%s: cannot read --upstream-ca %s: %s", cmd, no->upstream_ca, strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

/* --suspend-to: where a suspend keeps the proxy's CA (in the snapshot's
 * folder, which the broker may then write); --restore from a folder that
 * kept one: serve with that CA (the guest's command trusts it).  0, or 1
 * after one line. */
static int suspend_files(struct broker_proxy *bp, const struct run_opts *o, struct broker_launch *bl)
{
	const char *dir = o->suspend_only ? o->snapshot : NULL;
	if (dir && (snprintf(bp->suspend_ca, sizeof(bp->suspend_ca), "%s/" SNAP_PROXY_CA_FILE, dir) >=
		    (int)sizeof(bp->suspend_ca) || bl->npaths == ARRAY_SIZE(bp->paths))) {
		log_err("%s: --suspend-to %s: too long a path", o->cmd, dir);
		return 1;
	}
	if (dir) {
		bp->paths[bl->npaths++] = (struct cage_path){ dir, CAGE_WRITE };
		bl->suspend_ca = bp->suspend_ca;
	}
	if (o->restore && snprintf(bp->restore_ca, sizeof(bp->restore_ca), "%s/" SNAP_PROXY_CA_FILE,
				   o->restore) < (int)sizeof(bp->restore_ca) && access(bp->restore_ca, F_OK) == 0)
		bp->cfg.ca_file = bp->restore_ca;
	return 0;
}

/* proxy_config.refused: a 403 into the launch's record of refusals. */
static void record_refusal(void *opaque, const char *host, const char *line)
{
	char text[900];
	snprintf(text, sizeof(text), "refused: https %s: %s", host, line);
	denials_write((int)(intptr_t)opaque, text);
}

int machine_broker_launch(char **argv, const struct run_opts *o, const struct shell_extra *x,
			  const struct profile *prof)
{
	char err[160];
	if (harden_secret_holder(err, sizeof(err)) < 0) {	/* before --secret values are read */
		log_err("%s: %s", argv[0], err);
		return 1;
	}
	struct broker_proxy *bp = calloc(1, sizeof(*bp));
	if (!bp) {
		log_err("out of memory");
		return 1;
	}
	secrets_init(&bp->own);
	repolist_init(&bp->repos);
	int status;
	if ((status = proxy_build(bp, argv[0], o, x)) == 0) {
		int denials = x ? x->denials_fd : 0;
		if (denials > 2) {
			bp->cfg.refused = record_refusal;
			bp->cfg.refused_opaque = (void *)(intptr_t)denials;
		}
		struct broker_launch bl = {
			.proxy = &bp->cfg, .vmm_argv = argv, .prof = prof,
			.paths = bp->paths, .npaths = x ? x->nbroker_paths : 0,
			.denials_fd = denials, .self_test = x && x->self_test,
		};
		if (bl.npaths < ARRAY_SIZE(bp->paths)) {	/* the launcher's ten, and ours */
			if (bl.npaths)
				memcpy(bp->paths, x->broker_paths, bl.npaths * sizeof(*bp->paths));
			status = suspend_files(bp, o, &bl);
		} else {
			log_err("%s: broker: too many folders to cage", argv[0]);
			status = 1;
		}
		if (status == 0)
			status = broker_run(&bl);
	}
	policy_fini(&bp->egress);
	repolist_fini(&bp->repos);
	secrets_fini(&bp->own);
	free(bp);
	return status;
}
