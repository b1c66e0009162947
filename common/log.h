/* common/log.h - one-line diagnostics on stderr, with levels and log-once.
 *
 * Messages are single lines prefixed "kvmbox: ".  Nothing that may hold a
 * secret (request headers, bodies, credential values) is ever passed here;
 * callers log names and sizes, never contents.  The level is process-wide
 * (set once from the command line or KVMBOX_LOG before threads start), which
 * is the one piece of global mutable state this file keeps.
 */
#ifndef KVMBOX_COMMON_LOG_H
#define KVMBOX_COMMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Read KVMBOX_LOG (err|warn|info|debug) if set. */
void log_init_from_env(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Log at most once per call site (e.g. a hostile guest repeating itself). */
#define log_once(level, ...)                                                  \
	do {                                                                  \
		static bool log_once_done_;                                   \
		if (!__atomic_exchange_n(&log_once_done_, true,               \
					 __ATOMIC_RELAXED))                   \
			log_msg(level, __VA_ARGS__);                          \
	} while (0)

#endif
