/* common/term.c - raw mode for the host terminal and its guaranteed
 * restoration (see term.h).
 *
 * The saved settings are process-global on purpose: a fatal-signal handler
 * and an atexit() handler must reach them, and there is one controlling
 * terminal per process.  They are written once before any thread starts.
 */
#include "common/term.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_termios;	/* settings before raw mode */
static int saved_fd = -1;		/* terminal in raw mode, or -1 */

void term_restore(void)
{
	int fd = __atomic_exchange_n(&saved_fd, -1, __ATOMIC_SEQ_CST);
	if (fd >= 0)
		tcsetattr(fd, TCSAFLUSH, &saved_termios);	/* async-signal-safe */
}

static void on_fatal(int sig)
{
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	atexit(term_restore);
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
}

int term_raw_enter(int fd)
{
	if (!isatty(fd))
		return -ENOTTY;
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	saved_termios = t;
	install_handlers();
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	__atomic_store_n(&saved_fd, fd, __ATOMIC_SEQ_CST);
	if (tcsetattr(fd, TCSADRAIN, &t) < 0) {
		int e = -errno;
		term_restore();
		return e;
	}
	return 0;
}

int term_size(int fd, uint16_t *rows, uint16_t *cols)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return -errno;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}
