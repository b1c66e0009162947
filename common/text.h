/* common/text.h - bytes from the guest made safe to show on the user's
 * terminal: an agent's file names and contents in a review, a sandbox's
 * console in kvmbox logs.  What the guest wrote never drives the terminal
 * (moves the cursor, rewrites lines, retitles the window, sets the
 * clipboard) unless the user asked for it raw.
 */
#ifndef KVMBOX_COMMON_TEXT_H
#define KVMBOX_COMMON_TEXT_H

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

#endif
