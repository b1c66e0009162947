/* vmm/cli/cmd_vm.c - `kvmbox .vm RUN|SHELL ARGS...`: the VMM of a launch
 * with --proxy, executed afresh by the credential broker (broker/broker.h,
 * vmm/cli/machine_broker.c) with its control socket on BROKER_CTL_FD.  It
 * reads the broker's HELLO (the CA, the profile so far), then runs the
 * launch it was given as `kvmbox run` or `kvmbox shell` would, without a
 * secret in its memory.  Refused (exit 2) when not started by a broker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "common/log.h"
#include "vmm/cli/cli.h"

#define HELLO_WAIT_MS 10000	/* the broker sends it before starting us */

int cmd_vm(int argc, char **argv)
{
	if (argc < 2 || broker_ctl_check(BROKER_CTL_FD) < 0) {
		fprintf(stderr, "kvmbox: .vm is started by kvmbox itself, for a launch with --proxy\n");
		return EXIT_USAGE;
	}
	struct broker_hello *h = calloc(1, sizeof(*h));
	if (!h) {
		log_err("out of memory");
		return 1;
	}
	int r = broker_hello_read(BROKER_CTL_FD, h, HELLO_WAIT_MS);
	int status = 1;
	if (r < 0) {
		log_err("%s: no word from the credential broker: %s", argv[1], strerror(-r));
	} else {
		for (int i = 0; i < PHASE_COUNT; i++)	/* the broker's CPU so far, counted in */
			if (h->prof.cpu_ns[i] > h->prof.cpu_base_ns)
				h->prof.cpu_base_ns = h->prof.cpu_ns[i];
		const struct shell_extra x = { .hello = h, .prof = &h->prof };
		status = strcmp(argv[1], "run") ? shell_launch(argc - 1, argv + 1, &x)
						: run_launch(argc - 1, argv + 1, &x);
	}
	free(h);
	return status;
}
