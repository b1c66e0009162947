/* common/dl.c - dlopen a library and resolve a symbol table (see dl.h). */
#include "common/dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

int dl_load(const char *soname, const char *pkg, const struct dl_sym *syms, size_t n)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		log_err("cannot load %s (apt-get install %s): %s", soname, pkg, dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		*syms[i].addr = dlsym(h, syms[i].name);
		if (!*syms[i].addr) {
			log_err("%s has no %s (apt-get install %s)", soname, syms[i].name, pkg);
			return -ENOENT;
		}
	}
	return 0;
}

/* Overridden by the generated list (scripts/lazylib.sh) where there is one. */
__attribute__((weak)) struct dl_lazy *const dl_lazy_libs[] = { NULL };

int dl_probe(const char *soname, char *why, size_t whysz)
{
	void *h = dlopen(soname, RTLD_LAZY | RTLD_LOCAL);
	if (!h) {
		snprintf(why, whysz, "%s", dlerror());
		return -ENOENT;
	}
	dlclose(h);
	return 0;
}

/* Serialises the first calls into lazily opened libraries from several
 * threads; the one lock of this file, taken once per library. */
static pthread_mutex_t lazy_lock = PTHREAD_MUTEX_INITIALIZER;

void dl_lazy_load(struct dl_lazy *lib)
{
	pthread_mutex_lock(&lazy_lock);
	if (!__atomic_load_n(&lib->loaded, __ATOMIC_ACQUIRE)) {
		void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		if (!h) {
			log_err("cannot load %s: %s", lib->soname, dlerror());
			exit(1);
		}
		for (uint32_t i = 0; i < lib->n; i++) {
			void *f = dlsym(h, lib->names[i]);
			if (!f) {
				log_err("%s has no %s", lib->soname, lib->names[i]);
				exit(1);
			}
			__atomic_store_n(&lib->tab[i], f, __ATOMIC_RELEASE);
		}
		__atomic_store_n(&lib->loaded, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lazy_lock);
}
