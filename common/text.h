/* common/text.h - bytes from the guest made safe to show on the user's
 * terminal: an agent's file names and contents in a review, a sandbox's
 * console in kvmbox logs.  What the guest wrote never drives the terminal
 * (moves the cursor, rewrites lines, retitles the window, sets the
 * clipboard) unless the user asked for it raw.
 */
#ifndef KVMBOX_COMMON_TEXT_H
#define KVMBOX_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Write text to out with every control byte but newline and tab, DEL and
 * the C1 controls shown as ^X or \xNN; UTF-8 beyond ASCII as it is. */
void put_visible(FILE *out, const char *text, size_t len);

/* Remove the terminal's escape sequences from text in place (CSI, OSC and
 * the other strings, two-byte escapes; a cut one at the end too) and turn
 * carriage returns into newlines ("\r\n" into one): a console's output as
 * lines.  The new length. */
size_t strip_terminal_sequences(char *text, size_t len);

/* OSC 52 in a guest's terminal stream (ESC ] 52 ; SEL ; DATA BEL|ST):
 * a copy (DATA base64) passes on to the user's terminal, which puts it on
 * the clipboard, and its DATA is handed to on_copy; a query (DATA "?"),
 * which would have the user's terminal type the host's clipboard into
 * the guest, is dropped whole, as is one still undecided after
 * OSC52_PREFIX_MAX bytes.  OSC is ESC ], or the C1 control (U+009D in
 * UTF-8, or the byte 0x9d) that some terminals also obey.  Everything else
 * passes as it is.  A stream filter: sequences may be cut anywhere
 * between calls. */
#define OSC52_PREFIX_MAX 40		/* bytes held back while undecided */
#define OSC52_COPY_MAX (1u << 20)	/* DATA handed to on_copy, at most */
struct osc52_filter {
	int state;
	unsigned char held[OSC52_PREFIX_MAX];
	size_t nheld;
	char *copy;			/* DATA of the copy under way (malloc'd), or NULL */
	size_t ncopy;
	bool copy_too_long;
	void (*on_copy)(void *opaque, const char *base64, size_t len);
	void *opaque;
};

/* Filter n bytes of in into out (room for n + OSC52_PREFIX_MAX): the
 * bytes written.  osc52_filter_fini frees what a cut copy held. */
size_t osc52_filter(struct osc52_filter *f, const unsigned char *in, size_t n, unsigned char *out);
void osc52_filter_fini(struct osc52_filter *f);

#endif
