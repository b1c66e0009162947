/* launch/config/load.c - read the configuration files and knobs into
 * settings, the project file only where it tightens (config.h).
 *
 * Each value is judged twice before it is kept: by its type here (a switch
 * is a JSON boolean, a list an array of strings...) and by the caller's
 * flag parser (the same that judges it on the command line), so a file can
 * hold nothing the command line would refuse.  The project file's values
 * are then compared with what stands before them (the global file's, or
 * the default) and kept only in the direction the table allows.
 */
#include "launch/config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/policy.h"

/* text[0..len) as a strict JSON object: a new reference, or NULL with err
 * naming name and the line. */
static struct json_object *parse_object(const char *text, size_t len, const char *name, char *err,
					size_t errsz)
{
	if (len > CONFIG_FILE_MAX) {
		snprintf(err, errsz, "%s: more than %d bytes", name, CONFIG_FILE_MAX);
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (e == json_tokener_continue)
		e = json_tokener_error_parse_eof;
	if (!obj || e != json_tokener_success || used != len || !json_object_is_type(obj, json_type_object)) {
		unsigned line = 1;
		for (size_t i = 0; i < used && i < len; i++)
			line += text[i] == '\n';
		snprintf(err, errsz, "%s: line %u: %s", name, line,
			 e != json_tokener_success ? json_tokener_error_desc(e)
			 : used != len ? "more after the object" : "not a JSON object");
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/* The file at path, whole, in *buf (malloc'd): its length, -ENOENT when
 * there is none, or another -errno with err. */
static ssize_t read_config_file(const char *path, char **buf, char *err, size_t errsz)
{
	*buf = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e != ENOENT)
			snprintf(err, errsz, "%s: %s", path, e == ELOOP ? "is a symbolic link" : strerror(e));
		return -e;
	}
	struct stat st;
	ssize_t n = -EINVAL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		snprintf(err, errsz, "%s: not a regular file of at most %d bytes", path, CONFIG_FILE_MAX);
	} else if (!(*buf = malloc((size_t)st.st_size + 1))) {
		snprintf(err, errsz, "out of memory");
		n = -ENOMEM;
	} else if ((n = read(fd, *buf, (size_t)st.st_size + 1)) < 0 || n > st.st_size) {
		snprintf(err, errsz, "%s: cannot read it whole", path);
		n = -EIO;
	}
	close(fd);
	if (n < 0) {
		free(*buf);
		*buf = NULL;
	}
	return n;
}

/* Where the global file is: $XDG_CONFIG_HOME (when absolute) or
 * $HOME/.config.  0, or -ENOENT when neither is known. */
static int global_path(char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(out, outsz, "%s/kvmbox/config.json", xdg);
	else if (home && home[0] == '/')
		n = snprintf(out, outsz, "%s/.config/kvmbox/config.json", home);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < outsz ? 0 : -ENAMETOOLONG;
}

static void note_refused(struct config *c, const char *key, const char *why)
{
	for (unsigned i = 0; i < c->nrefused; i++)
		if (c->refused_key[i] == key)
			return;	/* a list's second entry */
	if (c->nrefused < CONFIG_MAX_REFUSED) {
		c->refused_key[c->nrefused] = key;	/* the table's strings */
		c->refused_why[c->nrefused++] = why;
	}
}

void config_refused_line(const struct config *c, char *out, size_t outsz)
{
	size_t used = 0;
	if (outsz)
		out[0] = 0;
	for (unsigned i = 0; i < c->nrefused && used < outsz; i++) {
		int n = snprintf(out + used, outsz - used, "%s%s (%s)", i ? ", " : "", c->refused_key[i],
				 c->refused_why[i]);
		used += n > 0 ? (size_t)n : 0;
	}
}

/* The value now standing for o, as the flag parser reads it. */
static const char *standing(const struct config *c, unsigned i)
{
	return c->set[i].text ? c->set[i].text : config_options[i].dflt;
}

static int profile_rank(const char *p)
{
	return !p || !strcmp(p, "permissive") ? 0 : !strcmp(p, "standard") ? 1 : 2;
}

/* Whether the project file's value v for option i tightens (or keeps)
 * what stands; if not, why in *why. */
static bool tightens(const struct config *c, unsigned i, const char *v, uint64_t num,
		     config_check_fn check, const char **why)
{
	const struct config_option *o = &config_options[i];
	const char *now = standing(c, i);
	uint64_t cur;
	char err[160];
	switch (o->project) {
	case CONFIG_PROJECT_LOWER:
		*why = "a project may only lower it";
		return !now || (check(o, now, &cur, err, sizeof(err)) == 0 && num <= cur);
	case CONFIG_PROJECT_NARROW:
		*why = "a project may only narrow egress";
		return profile_rank(v) >= profile_rank(now);
	case CONFIG_PROJECT_OFF:
		*why = "a project may only turn it off";
		return !strcmp(v, "false") || (now && !strcmp(now, "true"));
	case CONFIG_PROJECT_ON:
		*why = "a project may only turn it on";
		return !strcmp(v, "true") || (now && !strcmp(now, "false"));
	case CONFIG_PROJECT_ADD:
		return true;
	default:
		*why = o->type == CONFIG_LIST || o->project == CONFIG_PROJECT_NEVER ?
		       "only your own configuration may set it" : "not from a project";
		return false;
	}
}

static int keep_text(struct config_setting *s, const char *v, enum config_source src)
{
	char *copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	free(s->text);
	s->text = copy;
	s->source = src;
	return 0;
}

static int keep_entry(struct config_setting *s, const char *v, enum config_source src)
{
	if (s->n >= CONFIG_MAX_LIST)
		return -ENOSPC;
	if (!(s->list[s->n] = strdup(v)))
		return -ENOMEM;
	s->list_source[s->n++] = src;
	s->source = src;
	return 0;
}

/* One value of option i from a file (v is a string, or a switch's
 * "true"/"false"), judged and kept: 0, or -errno with err. */
static int take_value(struct config *c, unsigned i, const char *v, enum config_source src,
		      const char *path, config_check_fn check, char *err, size_t errsz)
{
	const struct config_option *o = &config_options[i];
	uint64_t num = 0;
	char why[200];
	if (o->type != CONFIG_BOOL && check(o, v, &num, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s: %s", path, o->key, why);
		return -EINVAL;
	}
	const char *refusal;
	if (src == CONFIG_PROJECT && !tightens(c, i, v, num, check, &refusal)) {
		note_refused(c, o->key, refusal);
		return 0;
	}
	int r = o->type == CONFIG_LIST ? keep_entry(&c->set[i], v, src) : keep_text(&c->set[i], v, src);
	if (r == -ENOSPC)
		snprintf(err, errsz, "%s: %s: more than %d entries", path, o->key, CONFIG_MAX_LIST);
	else if (r < 0)
		snprintf(err, errsz, "out of memory");
	return r;
}

/* A JSON number as the decimal words the flag parser reads, or NULL. */
static const char *number_text(struct json_object *v, char *buf, size_t bufsz)
{
	if (!json_object_is_type(v, json_type_int))
		return NULL;
	int64_t n = json_object_get_int64(v);
	if (n < 0)
		return NULL;
	snprintf(buf, bufsz, "%lld", (long long)n);
	return buf;
}

static bool env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9') || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static bool agent_name(const char *s)
{
	if (*s < 'a' || *s > 'z' || strlen(s) > 32)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	return true;
}

/* v is an array of strings each passing ok (NULL: any), at least min. */
static bool string_array(struct json_object *v, size_t min, bool (*ok)(const char *))
{
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) < min)
		return false;
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string) || !*json_object_get_string(e) ||
		    (ok && !ok(json_object_get_string(e))))
			return false;
	}
	return true;
}

/* A host a secret may go to: a name, or "*.name" for the names below it. */
static bool host_name(const char *s)
{
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	return host_valid(s, strlen(s)) && !strchr(s, ':');
}

/* What is wrong with one member of a custom agent, or NULL. */
static const char *agent_member(const char *key, struct json_object *v, config_check_fn check)
{
	if (!strcmp(key, "command"))
		return string_array(v, 1, NULL) ? NULL : "command: want a list of at least one string";
	if (!strcmp(key, "image"))
		return json_object_is_type(v, json_type_string) && *json_object_get_string(v) ? NULL
		       : "image: want a string";
	if (!strcmp(key, "env"))
		return string_array(v, 0, env_name) ? NULL : "env: want a list of variable names";
	if (!strcmp(key, "secrets")) {
		if (!json_object_is_type(v, json_type_object))
			return "secrets: want {\"VAR\": [\"host\"...]}";
		json_object_object_foreach(v, var, hosts)
			if (!env_name(var) || !string_array(hosts, 1, host_name))
				return "secrets: want {\"VAR\": [\"host\"...]}";
		return NULL;
	}
	if (!strcmp(key, "egress")) {
		if (!string_array(v, 0, NULL))
			return "egress: want a list of names";
		char why[160];
		uint64_t num;
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (check(config_option_find("allow_domain"),
				  json_object_get_string(json_object_array_get_idx(v, i)), &num, why, sizeof(why)) < 0)
				return "egress: a name --allow-domain refuses";
		return NULL;
	}
	return "an unknown member";
}

/* One custom agent: 0, or -EINVAL with err naming the member. */
static int check_agent(const char *name, struct json_object *a, const char *path, config_check_fn check,
		       char *err, size_t errsz)
{
	const char *bad = NULL;
	if (!agent_name(name))
		bad = "its name (a lower-case letter, then letters, digits or '-')";
	else if (!json_object_is_type(a, json_type_object))
		bad = "want an object";
	else if (!json_object_object_get_ex(a, "command", NULL))
		bad = "command: missing";
	if (!bad) {
		json_object_object_foreach(a, key, v)
			if ((bad = agent_member(key, v, check)))
				break;
	}
	if (bad)
		snprintf(err, errsz, "%s: agents: %.40s: %s", path, name, bad);
	return bad ? -EINVAL : 0;
}

static int take_agents(struct config *c, struct json_object *v, enum config_source src, const char *path,
		       config_check_fn check, char *err, size_t errsz)
{
	if (src != CONFIG_GLOBAL) {
		note_refused(c, "agents", "only your own configuration may define agents");
		return 0;
	}
	if (!json_object_is_type(v, json_type_object)) {
		snprintf(err, errsz, "%s: agents: want an object of agents by name", path);
		return -EINVAL;
	}
	json_object_object_foreach(v, name, a) {
		int r = check_agent(name, a, path, check, err, errsz);
		if (r < 0)
			return r;
	}
	json_object_put(c->agents);
	c->agents = json_object_get(v);
	return 0;
}

struct json_object *config_agent(const struct config *c, const char *name)
{
	struct json_object *a;
	return c->agents && json_object_object_get_ex(c->agents, name, &a) ? a : NULL;
}

/* One key of a file: 0, or -EINVAL with err. */
static int take_member(struct config *c, const char *key, struct json_object *v, enum config_source src,
		       const char *path, config_check_fn check, char *err, size_t errsz)
{
	if (!strcmp(key, "agents"))
		return take_agents(c, v, src, path, check, err, errsz);
	const struct config_option *o = config_option_find(key);
	if (!o) {
		snprintf(err, errsz, "%s: unknown key \"%.64s\" (kvmbox config --help lists them)", path, key);
		return -EINVAL;
	}
	unsigned i = (unsigned)(o - config_options);
	char num[24];
	switch (o->type) {
	case CONFIG_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			break;
		return take_value(c, i, json_object_get_boolean(v) ? "true" : "false", src, path, check,
				  err, errsz);
	case CONFIG_NUMBER:
		if (number_text(v, num, sizeof(num)))
			return take_value(c, i, num, src, path, check, err, errsz);
		__attribute__((fallthrough));	/* a string: "4G" */
	case CONFIG_TEXT:
		if (!json_object_is_type(v, json_type_string))
			break;
		return take_value(c, i, json_object_get_string(v), src, path, check, err, errsz);
	case CONFIG_LIST:
		if (json_object_is_type(v, json_type_string))
			return take_value(c, i, json_object_get_string(v), src, path, check, err, errsz);
		if (!json_object_is_type(v, json_type_array))
			break;
		for (size_t k = 0; k < json_object_array_length(v); k++) {
			struct json_object *e = json_object_array_get_idx(v, k);
			if (!json_object_is_type(e, json_type_string))
				goto wrong;
			int r = take_value(c, i, json_object_get_string(e), src, path, check, err, errsz);
			if (r < 0)
				return r;
		}
		return 0;
	}
wrong:
	snprintf(err, errsz, "%s: %s: want %s", path, key,
		 o->type == CONFIG_BOOL ? "true or false" : o->type == CONFIG_LIST ? "a list of strings" :
		 o->type == CONFIG_NUMBER ? "a number or a string" : "a string");
	return -EINVAL;
}

int config_take_text(struct config *c, const char *text, size_t len, enum config_source src,
		     const char *name, config_check_fn check, char *err, size_t errsz)
{
	struct json_object *obj = parse_object(text, len, name, err, errsz);
	if (!obj)
		return -EINVAL;
	int r = 0;
	json_object_object_foreach(obj, key, v) {
		if ((r = take_member(c, key, v, src, name, check, err, errsz)) < 0)
			break;
	}
	json_object_put(obj);
	return r;
}

/* One file, when it exists (its path kept in kept): 0, or -errno with err. */
static int take_file(struct config *c, const char *path, enum config_source src, char *kept,
		     config_check_fn check, char *err, size_t errsz)
{
	char *buf;
	ssize_t n = read_config_file(path, &buf, err, errsz);
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return (int)n;
	snprintf(kept, sizeof(c->global_path), "%s", path);
	int r = config_take_text(c, buf, (size_t)n, src, path, check, err, errsz);
	free(buf);
	return r;
}

/* A switch's environment knob as users write them (KVMBOX_TEMPLATE=1):
 * "true" or "false", or NULL for anything else, which is refused rather
 * than taken as false. */
static const char *env_switch(const char *v)
{
	static const char *const on[] = { "true", "1", "yes", "on" }, *const off[] = { "false", "0", "no", "off" };
	for (unsigned k = 0; k < 4; k++) {
		if (!strcasecmp(v, on[k]))
			return "true";
		if (!strcasecmp(v, off[k]))
			return "false";
	}
	return NULL;
}

int config_load(struct config *c, const char *project_dir, config_check_fn check, char *err,
		size_t errsz)
{
	int r = config_init(c);
	if (r < 0) {
		snprintf(err, errsz, "out of memory");
		return r;
	}
	char path[4096];
	r = global_path(path, sizeof(path));
	if (r == 0)
		r = take_file(c, path, CONFIG_GLOBAL, c->global_path, check, err, errsz);
	else
		r = 0;	/* no home: no global file */
	if (r == 0 && project_dir) {
		if (snprintf(path, sizeof(path), "%s/.kvmbox.json", project_dir) >= (int)sizeof(path)) {
			snprintf(err, errsz, "%s: path too long", project_dir);
			return -ENAMETOOLONG;
		}
		r = take_file(c, path, CONFIG_PROJECT, c->project_path, check, err, errsz);
	}
	for (unsigned i = 0; r == 0 && i < config_noptions; i++) {
		const char *knob = config_options[i].env ? getenv(config_options[i].env) : NULL;
		if (knob && *knob && config_options[i].type == CONFIG_BOOL && !(knob = env_switch(knob))) {
			snprintf(err, errsz, "%s: true or false (1, 0, yes, no, on, off)", config_options[i].env);
			r = -EINVAL;
		} else if (knob && *knob) {
			r = take_value(c, i, knob, CONFIG_ENV, config_options[i].env, check, err, errsz);
		}
	}
	return r;
}

int config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->set = calloc(config_noptions, sizeof(*c->set));
	return c->set ? 0 : -ENOMEM;
}

void config_fini(struct config *c)
{
	for (unsigned i = 0; c->set && i < config_noptions; i++) {
		free(c->set[i].text);
		for (unsigned k = 0; k < c->set[i].n; k++)
			free(c->set[i].list[k]);
	}
	free(c->set);
	c->set = NULL;
	json_object_put(c->agents);
	c->agents = NULL;
}

int config_words(const struct config *c, const char **out, int cap)
{
	int n = 0;
#define WORD(w) do { if (n == cap) return -E2BIG; out[n++] = (w); } while (0)
	for (unsigned i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		const struct config_setting *s = &c->set[i];
		if (s->source == CONFIG_DEFAULT)
			continue;
		if (o->type == CONFIG_LIST) {
			for (unsigned k = 0; k < s->n; k++) {
				WORD(o->flag);
				WORD(s->list[k]);
			}
		} else if (o->type == CONFIG_BOOL) {
			bool on = !strcmp(s->text, "true");
			if (on && o->flag)
				WORD(o->flag);
			else if (!on && o->no_flag)
				WORD(o->no_flag);
		} else {
			WORD(o->flag);
			WORD(s->text);
		}
	}
#undef WORD
	return n;
}
