/* guest/image/ref.c - image references and registry auth challenges.
 *
 * A reference is [REGISTRY/]REPO[:TAG][@sha256:DIGEST], as `docker pull`
 * takes it: the first component is a registry when it has a '.' or ':' or
 * is "localhost"; otherwise the image is on Docker Hub (registry-1.docker.io)
 * and a one-component repository gets "library/".  Repository components
 * are lowercase [a-z0-9] separated by '.', '_', '__' or '-' runs (checked
 * loosely: the allowed characters only), tags [A-Za-z0-9_.-]{1,128}.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guest/image/image.h"

static bool repo_chars_ok(const char *s)
{
	if (!*s || *s == '/' || s[strlen(s) - 1] == '/' || strstr(s, "//"))
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
		      strchr("._-/", *s)))
			return false;
	return true;
}

static bool tag_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 128 || *s == '.' || *s == '-')
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("._-", *s)))
			return false;
	return true;
}

static bool host_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr(".-:[]", *s)))
			return false;
	return true;
}

int image_ref_parse(const char *s, struct image_ref *ref)
{
	memset(ref, 0, sizeof(*ref));
	if (!s || strlen(s) >= 512)
		return -EINVAL;
	char buf[512];
	strcpy(buf, s);
	char *at = strchr(buf, '@');
	if (at) {
		*at = '\0';
		if (!oci_digest_valid(at + 1))
			return -EINVAL;
		strcpy(ref->digest, at + 1);
	}
	char *name = buf;
	char *slash = strchr(buf, '/');
	if (slash && (memchr(buf, '.', (size_t)(slash - buf)) ||
		      memchr(buf, ':', (size_t)(slash - buf)) ||
		      !strncmp(buf, "localhost/", 10))) {
		*slash = '\0';
		if (!host_ok(buf) || strlen(buf) >= sizeof(ref->registry))
			return -EINVAL;
		strcpy(ref->registry, buf);
		name = slash + 1;
	} else {
		strcpy(ref->registry, "registry-1.docker.io");
	}
	char *colon = strrchr(name, ':');
	if (colon && !strchr(colon, '/')) {
		*colon = '\0';
		if (!tag_ok(colon + 1))
			return -EINVAL;
		strcpy(ref->tag, colon + 1);
	} else if (!ref->digest[0]) {
		strcpy(ref->tag, "latest");
	}
	if (!repo_chars_ok(name))
		return -EINVAL;
	bool hub = !strcmp(ref->registry, "registry-1.docker.io");
	if ((size_t)snprintf(ref->repo, sizeof(ref->repo), "%s%s",
			     hub && !strchr(name, '/') ? "library/" : "", name) >=
	    sizeof(ref->repo))
		return -EINVAL;
	return 0;
}

bool image_ref_is_loopback(const struct image_ref *ref)
{
	const char *h = ref->registry;
	size_t n = strcspn(h, ":");
	if (h[0] == '[')
		return !strncmp(h, "[::1]", 5);
	return (n == 9 && !strncmp(h, "localhost", 9)) || !strncmp(h, "127.", 4);
}

bool image_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (!n || n >= IMAGE_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-", *p)))
			return false;
	return true;
}

int image_ref_default_name(const struct image_ref *ref, char *out, size_t len)
{
	const char *last = strrchr(ref->repo, '/');
	last = last ? last + 1 : ref->repo;
	char tmp[IMAGE_NAME_MAX * 4];
	if (ref->tag[0] && strcmp(ref->tag, "latest"))
		snprintf(tmp, sizeof(tmp), "%s-%s", last, ref->tag);
	else if (!ref->tag[0] && ref->digest[0])
		snprintf(tmp, sizeof(tmp), "%s-%.12s", last, ref->digest + 7);
	else
		snprintf(tmp, sizeof(tmp), "%s", last);
	for (char *p = tmp; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("._-", *p)))
			*p = '-';
	if (strlen(tmp) >= len || strlen(tmp) >= IMAGE_NAME_MAX)
		return -ENAMETOOLONG;
	strcpy(out, tmp);
	return image_name_valid(out) ? 0 : -EINVAL;
}

/* Copy the value after key= (quoted or bare) into out. */
static void auth_param(const char *value, const char *key, char *out, size_t len)
{
	out[0] = '\0';
	size_t klen = strlen(key);
	const char *p = value;
	while ((p = strcasestr(p, key))) {
		bool start = p == value || p[-1] == ' ' || p[-1] == ',';
		if (!start || p[klen] != '=') {
			p += klen;
			continue;
		}
		p += klen + 1;
		size_t n = 0;
		if (*p == '"') {
			p++;
			while (p[n] && p[n] != '"')
				n++;
		} else {
			n = strcspn(p, ", ");
		}
		if (n < len) {
			memcpy(out, p, n);
			out[n] = '\0';
		}
		return;
	}
}

int image_parse_www_authenticate(const char *value, char *scheme, size_t slen,
				 char *realm, size_t rlen, char *service, size_t svlen,
				 char *scope, size_t sclen)
{
	while (*value == ' ')
		value++;
	size_t n = strcspn(value, " ");
	if (!n || n >= slen)
		return -EINVAL;
	memcpy(scheme, value, n);
	scheme[n] = '\0';
	const char *params = value + n;
	auth_param(params, "realm", realm, rlen);
	auth_param(params, "service", service, svlen);
	auth_param(params, "scope", scope, sclen);
	return 0;
}
