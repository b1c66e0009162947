/* guest/image/dl_curl.c - libcurl, opened on first use (common/dl.h says
 * why): definitions of the curl functions pull.c calls, each forwarding to
 * the library's own, loaded by the first of them.
 *
 * If libcurl cannot be loaded, one line says so, curl_global_init and
 * curl_easy_perform fail, curl_easy_init and curl_slist_append return NULL
 * (so every caller already has its error path), and the rest do nothing:
 * they take a handle only curl_easy_init could have given.
 */
#define CURL_DISABLE_TYPECHECK	/* the definitions below share the names */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

#include "common/dl.h"
#include "guest/image/image.h"

const struct image_dl_lib image_curl_lib = { "libcurl.so.4", "libcurl4" };

#define CURL_FNS(X)                                                          \
	X(global_init) X(global_cleanup) X(easy_init) X(easy_cleanup)         \
	X(easy_reset) X(easy_setopt) X(easy_getinfo) X(easy_perform)          \
	X(easy_strerror) X(easy_escape) X(free) X(slist_append)               \
	X(slist_free_all)

/* The library's functions; set once under curl_once, then read only. */
static struct {
#define X(n) typeof(curl_##n) *n;
	CURL_FNS(X)
#undef X
} lib;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_loaded;

static void curl_load(void)
{
	static const struct dl_sym syms[] = {
#define X(n) { "curl_" #n, (void **)&lib.n },
		CURL_FNS(X)
#undef X
	};
	curl_loaded = dl_load(image_curl_lib.soname, image_curl_lib.pkg, syms,
			      sizeof(syms) / sizeof(syms[0])) == 0;
}

static bool curl_ready(void)
{
	pthread_once(&curl_once, curl_load);
	return curl_loaded;
}

CURLcode curl_global_init(long flags)
{
	return curl_ready() ? lib.global_init(flags) : CURLE_FAILED_INIT;
}

void curl_global_cleanup(void)
{
	if (curl_ready())
		lib.global_cleanup();
}

CURL *curl_easy_init(void)
{
	return curl_ready() ? lib.easy_init() : NULL;
}

void curl_easy_cleanup(CURL *c)
{
	if (c && curl_ready())
		lib.easy_cleanup(c);
}

void curl_easy_reset(CURL *c)
{
	if (c && curl_ready())
		lib.easy_reset(c);
}

/* The one argument's type follows from the option's number range, as in
 * libcurl itself. */
CURLcode curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
	if (!c || !curl_ready())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, opt);
	CURLcode r;
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		r = lib.easy_setopt(c, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		r = lib.easy_setopt(c, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		r = lib.easy_setopt(c, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		r = lib.easy_setopt(c, opt, va_arg(ap, curl_off_t));
	else
		r = lib.easy_setopt(c, opt, va_arg(ap, void *));
	va_end(ap);
	return r;
}

/* Every CURLINFO takes one pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	if (!c || !curl_ready())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode r = lib.easy_getinfo(c, info, va_arg(ap, void *));
	va_end(ap);
	return r;
}

CURLcode curl_easy_perform(CURL *c)
{
	return c && curl_ready() ? lib.easy_perform(c) : CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(CURLcode code)
{
	return curl_ready() ? lib.easy_strerror(code) : "libcurl is not available";
}

char *curl_easy_escape(CURL *c, const char *s, int len)
{
	return c && curl_ready() ? lib.easy_escape(c, s, len) : NULL;
}

void curl_free(void *p)
{
	if (p && curl_ready())
		lib.free(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
	return curl_ready() ? lib.slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
	if (l && curl_ready())
		lib.slist_free_all(l);
}
