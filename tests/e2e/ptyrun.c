/* tests/e2e/ptyrun.c - run a command on a fresh pseudo-terminal of a given
 * size and copy what it prints to stdout; exit with its status.  Built
 * statically by console_shell.sh and put into L1 of the nested harness,
 * whose busybox has no `script`, so `kvmbox shell` can be tested at a
 * terminal.  usage: ptyrun ROWS COLS CMD ARGS... */
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: ptyrun ROWS COLS CMD ARGS...\n");
		return 2;
	}
	struct winsize ws = { .ws_row = (unsigned short)atoi(argv[1]),
			      .ws_col = (unsigned short)atoi(argv[2]) };
	/* L1's init mounts no devpts: do it when PTYs are not available. */
	if (access("/dev/pts/ptmx", F_OK) < 0) {
		mkdir("/dev/pts", 0755);
		if (mount("devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666") < 0)
			perror("mount devpts");
	}
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, &ws);
	if (pid < 0) {
		perror("forkpty");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[3], argv + 3);
		perror("exec");
		_exit(127);
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(master, buf, sizeof(buf))) > 0)
		if (write(1, buf, (size_t)n) < 0)
			break;
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
