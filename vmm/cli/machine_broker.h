/* vmm/cli/machine_broker.h - a launch whose VM has the TLS proxy, as two
 * processes (broker/broker.h): the process the user started builds the
 * proxy from the command's flags and what its launcher collected, and is
 * the broker of the VMM it starts as `kvmbox .vm`; the VMM (cmd_vm) runs
 * the command's VM with the proxy reached through the control socket.
 */
#ifndef KVMBOX_VMM_CLI_MACHINE_BROKER_H
#define KVMBOX_VMM_CLI_MACHINE_BROKER_H

#include "vmm/cli/cli.h"
#include "vmm/cli/run.h"

/* In the process the user started, once argv parsed into o (with --proxy):
 * harden (common/harden.h), build the proxy (--secret, --repo,
 * --upstream-ca, x's secrets table and OAuth clients), and be the broker
 * of `kvmbox .vm argv...`.  The VMM's status, EXIT_USAGE or 1 after one
 * line. */
int machine_broker_launch(char **argv, const struct run_opts *o, const struct shell_extra *x,
			  const struct profile *prof);

#endif
