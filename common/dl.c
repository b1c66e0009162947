/* common/dl.c - dlopen a library and resolve a symbol table (see dl.h). */
#include "common/dl.h"

#include <dlfcn.h>
#include <errno.h>

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
