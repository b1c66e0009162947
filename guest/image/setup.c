/* guest/image/setup.c - placeholder, filled in below. */
#include <errno.h>
#include "guest/image/image.h"
int image_setup(const struct setup_opts *o) { (void)o; return -ENOSYS; }
int image_host_mirror(const char *r, char *out, size_t len) { (void)r; (void)out; (void)len; return -ENOSYS; }
