/* guest/init/kinit.c - the pure parts of kvmbox-init: the kernel command
 * line's kvmbox.argv parameter (base64url of NUL-terminated strings) and the
 * exit status reported on the marker port.  See kinit.h for the contract.
 *
 * The command line comes from the VMM, which the guest trusts, but a bug or
 * a hand-written --cmdline must still end in a one-line error and status 2,
 * never a crash: every length is checked before use.
 */
#include "guest/init/kinit.h"
#include "guest/abi/base64url.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>


static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *kinit_cmdline_param(const char *cmdline, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *found = NULL;
	const char *p = cmdline;
	while (*p) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		/* One word: up to whitespace outside double quotes. */
		const char *w = p;
		int quoted = 0;
		while (*p && (quoted || !is_space(*p))) {
			if (*p == '"')
				quoted = !quoted;
			p++;
		}
		size_t wlen = (size_t)(p - w);
		if (wlen > nlen && !strncmp(w, name, nlen) && w[nlen] == '=') {
			found = w + nlen + 1;
			*vlen = wlen - nlen - 1;
		}
	}
	return found;
}

void kinit_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int kinit_argv_split(const uint8_t *bytes, size_t len, struct kinit_argv *out,
		     char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (len == 0) {
		kinit_set_err(err, errlen, KINIT_ARGV_PARAM " is empty");
		return -EINVAL;
	}
	if (bytes[len - 1] != 0) {
		kinit_set_err(err, errlen, KINIT_ARGV_PARAM
			" is truncated: its last string is not NUL-terminated");
		return -EINVAL;
	}
	if (bytes[0] == 0) {
		kinit_set_err(err, errlen, KINIT_ARGV_PARAM ": the command name is empty");
		return -EINVAL;
	}
	size_t argc = 0;
	for (size_t i = 0; i < len; i++)
		argc += bytes[i] == 0;
	out->buf = malloc(len);
	out->argv = calloc(argc + 1, sizeof(char *));
	if (!out->buf || !out->argv) {
		kinit_argv_free(out);
		kinit_set_err(err, errlen, "out of memory decoding " KINIT_ARGV_PARAM);
		return -ENOMEM;
	}
	memcpy(out->buf, bytes, len);
	size_t n = 0;
	for (size_t i = 0; i < len; i += strlen(out->buf + i) + 1)
		out->argv[n++] = out->buf + i;
	out->argv[n] = NULL;
	out->argc = (int)n;
	return 0;
}

int kinit_argv_from_cmdline(const char *cmdline, struct kinit_argv *out,
			    char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	size_t vlen = 0;
	const char *v = kinit_cmdline_param(cmdline, KINIT_ARGV_PARAM, &vlen);
	if (!v)
		return 1;
	size_t cap = vlen / 4 * 3 + 3;
	uint8_t *bytes = malloc(cap);
	if (!bytes) {
		kinit_set_err(err, errlen, "out of memory decoding " KINIT_ARGV_PARAM);
		return -ENOMEM;
	}
	ssize_t n = kbx_b64url_decode(v, vlen, bytes, cap);
	int rc;
	if (n < 0) {
		kinit_set_err(err, errlen, KINIT_ARGV_PARAM " is not valid base64url (%zu characters)",
			vlen);
		rc = -EINVAL;
	} else {
		rc = kinit_argv_split(bytes, (size_t)n, out, err, errlen);
	}
	free(bytes);
	return rc;
}

void kinit_argv_free(struct kinit_argv *a)
{
	free(a->argv);
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

int kinit_exit_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return (128 + WTERMSIG(wstatus)) & 0xff;
	return 255;
}
