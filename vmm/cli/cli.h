/* vmm/cli/cli.h - the kvmbox subcommands, one file each under vmm/cli/.
 *
 * Each cmd_* takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status: 0 success, 2 for a usage
 * error or bad input (after one line on stderr), otherwise what the command
 * defines (kvmbox run: the guest command's exit status).
 */
#ifndef KVMBOX_VMM_CLI_H
#define KVMBOX_VMM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* If argv[*i] is --name or --name=V: 1 with *val (advancing *i past a
 * separate value), 0 if it is not --name, -EINVAL if the value is missing
 * (cli_args.c, as cli_parse_uint). */
int cli_take_value(int argc, char **argv, int *i, const char *name, const char **val);
/* A strict unsigned decimal in [min, max] into *out: 0 or -EINVAL. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_fs_serve(int argc, char **argv);
int cmd_net_serve(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_review(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_clipboard(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_setup(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_bench(int argc, char **argv);

int cmd_agent(int argc, char **argv);
/* kvmbox resume NAME: the suspended sandbox's launch again, from its saved
 * VM (cmd_agent.c).  Its exit status. */
int agent_resume(const char *name);
/* A launch folder and what launches put there (the folder is removed only
 * when nothing else is in it). */
void agent_launch_dir_remove(const char *rundir);

/* `kvmbox shell` (or run) with what a launcher collected.  In the process
 * the user started (the broker, broker/broker.h): an agent launcher's
 * secrets table (borrowed: it reads rotated tokens from it after the VM),
 * the OAuth clients whose refreshes the proxy performs, and the folders
 * the broker writes once caged.  In the VMM (`kvmbox .vm`, cmd_vm): the
 * broker's HELLO (its control socket is BROKER_CTL_FD). */
struct secrets;
struct proxy_oauth_cfg;
struct profile;
struct cage_path;
struct broker_hello;
struct shell_extra {
	struct secrets *secrets;
	const struct proxy_oauth_cfg *oauth;
	unsigned noauth;
	const struct profile *prof;	/* the launcher's marks so far (exec, credentials) */
	const struct cage_path *broker_paths;	/* the launch folder, the login file's... */
	size_t nbroker_paths;
	int denials_fd;		/* the record of refusals (launch/denials.h); <= 2: none */
	bool self_test;		/* the guest runs the launch self-test (launch/selftest.h) */
	const struct broker_hello *hello;	/* in the VMM only */
};
int shell_launch(int argc, char **argv, const struct shell_extra *x);
int run_launch(int argc, char **argv, const struct shell_extra *x);

/* `kvmbox .vm CMD ARGS...`: the VMM of a launch with a broker, started by
 * it (broker_run) with the control socket at BROKER_CTL_FD; runs CMD (run,
 * shell or an agent's name) as kvmbox shell or run would, with the proxy
 * in the broker.  Not for users: refused (2) without that socket. */
int cmd_vm(int argc, char **argv);

/* Exit status for usage errors and refused input. */
#define EXIT_USAGE 2

#endif
