/* vmm/cli/main.c - kvmbox's entry point: dispatch to a subcommand.
 *
 * This is the only place every layer meets; each subcommand lives in its own
 * file under vmm/cli/ and wires the libraries it needs.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "vmm/cli/agent.h"
#include "vmm/cli/cli.h"
#include "vmm/vmm.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "claude", cmd_agent, "Claude Code in a microVM on this project" },
	{ "codex", cmd_agent, "Codex in a microVM on this project" },
	{ "opencode", cmd_agent, "OpenCode in a microVM on this project" },
	{ "run", cmd_run, "boot a guest kernel and run a command in it" },
	{ "shell", cmd_shell, "interactive shell (or command) in the guest" },
	{ "doctor", cmd_doctor, "check /dev/kvm, capabilities and the guest kernel" },
	{ "fs-serve", cmd_fs_serve, "serve a folder over /dev/fuse or 9P (host transport)" },
	{ "net-serve", cmd_net_serve, "attach the user-mode network stack to a TAP in a netns" },
	{ "proxy", cmd_proxy, "run the credential-substituting TLS proxy on a socket" },
	{ "review", cmd_review, "reopen the review of a --review launch's changes" },
	{ "logs", cmd_logs, "a sandbox's console, or what the egress policy refused here" },
	{ "ps", cmd_ps, "list the sandboxes (named agent launches) and their state" },
	{ "inspect", cmd_inspect, "one sandbox's record and state as JSON" },
	{ "attach", cmd_attach, "bring a running sandbox's terminal here (Ctrl-] d detaches)" },
	{ "clipboard", cmd_clipboard, "put text or an image into a sandbox, get what it copied" },
	{ "stop", cmd_stop, "stop a running sandbox (--suspend: save it to resume)" },
	{ "resume", cmd_resume, "take up a suspended sandbox where it was saved" },
	{ "rm", cmd_rm, "remove the records of ended sandboxes" },
	{ "config", cmd_config, "show the configuration a launch here would use (JSON)" },
	{ "setup", cmd_setup, "build the agents' guest image (no root), then boot-check it" },
	{ "pull", cmd_pull, "pull an OCI image from a registry" },
	{ "images", cmd_images, "list or remove guest images" },
	{ "bench", cmd_bench, "boot latency here: cold boots, restores, slowest initcalls" },
	{ ".vm", cmd_vm, NULL },	/* the VMM a broker starts (machine_broker.h) */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmbox COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help)
			fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
	log_init_from_env();
	/* Signals a VM's main thread waits for (vmm.h): blocked before any
	 * thread exists, so one sent early waits rather than ending us. */
	sigset_t vm_signals;
	sigemptyset(&vm_signals);
	sigaddset(&vm_signals, VM_SIG_DUMP);
	sigaddset(&vm_signals, VM_SIG_SUSPEND);
	sigprocmask(SIG_BLOCK, &vm_signals, NULL);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	if (agent_custom_known(argv[1]))	/* "agents" of ~/.config/kvmbox/config.json */
		return cmd_agent(argc - 1, argv + 1);
	fprintf(stderr, "kvmbox: unknown command '%s' (try kvmbox --help)\n", argv[1]);
	return EXIT_USAGE;
}
