/* common/dl.h - load a shared library on first use and resolve its symbols.
 *
 * kvmbox is one binary, but only `kvmbox pull` needs libcurl and only image
 * unpacking needs libarchive, and between them they bring in 38 more shared
 * objects (Kerberos, LDAP, GnuTLS, ICU, libstdc++...).  Linked normally,
 * every `kvmbox run` would map and relocate all of them before main: about
 * 7 MiB of RSS and 8 ms of CPU before the VM is even set up.  So those two
 * libraries are opened with dlopen when first used, through small stub
 * files (guest/image/dl_curl.c, dl_archive.c) that define the library's
 * functions the code calls and forward them; the call sites and their type
 * checks stay as the libraries' headers have them.  OpenSSL and json-c
 * (the proxy, agents, images; 2 MiB and 1 ms more) are opened the same way
 * through generated trampolines (struct dl_lazy below).  The stubs' symbols
 * are not exported (the binary is not linked with -rdynamic), so the
 * library's own internal calls never land in them.
 */
#ifndef KVMBOX_COMMON_DL_H
#define KVMBOX_COMMON_DL_H

#include <stddef.h>
#include <stdint.h>

/* One symbol to resolve: its name and where to store its address. */
struct dl_sym {
	const char *name;
	void **addr;
};

/* dlopen soname (RTLD_NOW | RTLD_LOCAL) and resolve every symbol of syms:
 * 0, or -ENOENT after one error line naming the library, what is missing
 * and the Debian package that provides it (pkg).  The library stays loaded
 * for the life of the process. */
int dl_load(const char *soname, const char *pkg, const struct dl_sym *syms, size_t n);

/* A library opened by the trampolines scripts/lazylib.sh generates (its
 * layout is the generator's): the first call of any of its functions runs
 * dl_lazy_load, which dlopens soname, resolves names[0..n) into tab[] (the
 * slots the trampolines jump through) and returns; the trampoline then
 * jumps on.  If the library or a symbol is missing, one line says so and
 * the process exits 1, as the dynamic loader would have done at start. */
struct dl_lazy {
	const char *soname;
	const char *const *names;
	void **tab;
	uint32_t n, loaded;
};

void dl_lazy_load(struct dl_lazy *lib);

/* The libraries behind the trampolines, NULL-terminated (generated with
 * them; an empty list in builds without, such as the tests'). */
extern struct dl_lazy *const dl_lazy_libs[];

/* Whether soname can be opened now: 0, or -ENOENT with the loader's
 * reason in why. */
int dl_probe(const char *soname, char *why, size_t whysz);

#endif
