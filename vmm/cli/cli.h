/* vmm/cli/cli.h - the kvmbox subcommands, one file each under vmm/cli/.
 *
 * Each cmd_* takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status: 0 success, 2 for a usage
 * error or bad input (after one line on stderr), otherwise what the command
 * defines (kvmbox run: the guest command's exit status).
 */
#ifndef KVMBOX_VMM_CLI_H
#define KVMBOX_VMM_CLI_H

int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_fs_serve(int argc, char **argv);
int cmd_net_serve(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_setup(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_images(int argc, char **argv);

int cmd_agent(int argc, char **argv);

/* `kvmbox shell` with what an agent launcher collected (cmd_agent.c): the
 * proxy's secrets table (borrowed: the launcher reads rotated tokens from
 * it after the VM) and the OAuth clients whose refreshes it performs. */
struct secrets;
struct proxy_oauth_cfg;
struct profile;
struct shell_extra {
	struct secrets *secrets;
	const struct proxy_oauth_cfg *oauth;
	unsigned noauth;
	const struct profile *prof;	/* the launcher's marks so far (exec, credentials) */
	const char *launch_dir, *login_dir;	/* struct run_opts says what, or NULL */
};
int shell_launch(int argc, char **argv, const struct shell_extra *x);

/* Exit status for usage errors and refused input. */
#define EXIT_USAGE 2

#endif
