/* vmm/cli/cmd_clipboard.c - `kvmbox clipboard put|get [NAME]`: the
 * sandbox's clipboard (launch/session: clipboard.c, the holder's OSC 52).
 *
 * put: the text on stdin, or, at a terminal, the host's clipboard (an
 * image first, as agents take pasted images: wl-paste, else xclip) into
 * the sandbox, where its xclip, xsel, wl-paste and pbpaste read it; an
 * image's path in the guest is typed into the agent's input.
 * get: what the guest last copied (OSC 52), to stdout; shown with control
 * bytes made visible at a terminal, as it is into a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/text.h"
#include "launch/session/session.h"
#include "vmm/cli/cli.h"

static const char usage[] =
	"usage: kvmbox clipboard put [NAME]   (text on stdin, or the host's clipboard)\n"
	"       kvmbox clipboard get [NAME]\n"
	"put: into sandbox NAME's clipboard, where the guest's xclip, xsel, wl-paste\n"
	"and pbpaste read it; an image (PNG) is a file there whose path is typed into\n"
	"the agent's input, the way agents take a pasted image.  Without stdin, the\n"
	"host's clipboard (wl-paste or xclip), an image first.\n"
	"get: what the guest last copied (its xclip, wl-copy, pbcopy, or any OSC 52).\n"
	"NAME may be left out while exactly one sandbox runs.\n";

static const unsigned char png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* All of f, at most CLIPBOARD_MAX: malloc'd, or NULL. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
		if (n == cap) {
			char *b = cap < CLIPBOARD_MAX ? realloc(buf, cap * 2) : NULL;
			if (!b) {
				free(buf);
				return NULL;
			}
			buf = b;
			cap *= 2;
		}
	}
	*len = n;
	return buf;
}

/* What a fixed command prints (no word of the user's in it), or NULL. */
static char *run_read(const char *cmd, size_t *len)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return NULL;
	char *out = read_all(p, len);
	if (pclose(p) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* The host's clipboard: an image when it offers one, else its text. */
static char *host_clipboard(size_t *len, bool *image)
{
	static const struct {
		const char *env, *types, *png, *text;
	} tools[] = {
		{ "WAYLAND_DISPLAY", "wl-paste --list-types 2>/dev/null", "wl-paste --type image/png 2>/dev/null",
		  "wl-paste --no-newline 2>/dev/null" },
		{ "DISPLAY", "xclip -selection clipboard -t TARGETS -o 2>/dev/null",
		  "xclip -selection clipboard -t image/png -o 2>/dev/null",
		  "xclip -selection clipboard -o 2>/dev/null" },
	};
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (!getenv(tools[i].env))
			continue;
		size_t n;
		char *types = run_read(tools[i].types, &n);
		if (!types)
			continue;
		types[n ? n - 1 : 0] = 0;
		*image = strstr(types, "image/png") != NULL;
		free(types);
		char *data = run_read(*image ? tools[i].png : tools[i].text, len);
		if (data)
			return data;
	}
	return NULL;
}

/* The session NAME, or the one that runs: 0, or 1 / EXIT_USAGE after a line. */
static int pick(const char *cmd, const char *name, struct session_info *out)
{
	if (name) {
		int r = session_read(name, out);
		if (r < 0) {
			log_err("clipboard %s: no session named %.64s (kvmbox ps lists them)", cmd, name);
			return 1;
		}
		if (session_state(out) != SESSION_RUNNING) {
			log_err("clipboard %s: %s is not running", cmd, name);
			return 1;
		}
		return 0;
	}
	struct session_info *all = calloc(SESSION_MAX, sizeof(*all));
	int n = all ? session_list(all, SESSION_MAX) : -ENOMEM, running = 0;
	for (int k = 0; k < n; k++)
		if (session_state(&all[k]) == SESSION_RUNNING && running++ == 0)
			*out = all[k];
	free(all);
	if (running == 1)
		return 0;
	log_err("clipboard %s: %s: say which (kvmbox clipboard %s NAME; kvmbox ps lists them)", cmd,
		running ? "more than one sandbox runs" : "no sandbox runs", cmd);
	return running ? EXIT_USAGE : 1;
}

static int put(const char *name)
{
	struct session_info i;
	int r = pick("put", name, &i);
	if (r)
		return r;
	size_t len = 0;
	bool image = false;
	char *data = isatty(STDIN_FILENO) ? host_clipboard(&len, &image) : read_all(stdin, &len);
	if (!data) {
		log_err("clipboard put: %s", isatty(STDIN_FILENO) ? "nothing to put: pipe text in, or copy "
			"something (wl-paste or xclip reads the host's clipboard)" : "cannot read stdin");
		return 1;
	}
	image = image || (len >= sizeof(png_magic) && !memcmp(data, png_magic, sizeof(png_magic)));
	char path[PATH_MAX];
	r = clipboard_put(&i, data, len, image, path, sizeof(path));
	free(data);
	if (r == -ENOTCONN) {
		log_err("clipboard put: %s has no clipboard (it started before kvmbox had one)", i.name);
		return 1;
	}
	if (r < 0) {
		log_err("clipboard put: %s: %s", i.name, strerror(-r));
		return 1;
	}
	if (image) {
		char typed[PATH_MAX + 2];
		snprintf(typed, sizeof(typed), "%s ", path);
		r = session_type(i.name, typed, strlen(typed));
		if (r < 0)
			log_warn("clipboard put: the image is at %s in %s (not typed: %s)", path, i.name,
				 strerror(-r));
	}
	return 0;
}

static int get(const char *name)
{
	struct session_info i;
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int r = name ? session_read(name, &i) : pick("get", NULL, &i);
	if (name && r < 0) {
		log_err("clipboard get: no session named %.64s (kvmbox ps lists them)", name);
		return 1;
	}
	if (r)
		return r;
	if (session_dir(i.name, dir, sizeof(dir)) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/" HOLD_CLIPBOARD, dir);
	FILE *f = fopen(path, "re");
	if (!f) {
		log_err("clipboard get: %s has copied nothing yet", i.name);
		return 1;
	}
	size_t len;
	char *text = read_all(f, &len);
	fclose(f);
	if (!text)
		return 1;
	if (isatty(STDOUT_FILENO))
		put_visible(stdout, text, len);
	else
		fwrite(text, 1, len, stdout);
	free(text);
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_clipboard(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2 || argc > 3 || (strcmp(argv[1], "put") && strcmp(argv[1], "get")) ||
	    (argc == 3 && argv[2][0] == '-')) {
		log_err("clipboard: put or get, and at most a sandbox's name (try kvmbox clipboard --help)");
		return EXIT_USAGE;
	}
	const char *name = argc == 3 ? argv[2] : NULL;
	return !strcmp(argv[1], "put") ? put(name) : get(name);
}
