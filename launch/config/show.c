/* launch/config/show.c - `kvmbox config`'s answer: the effective
 * configuration as JSON, each value with its source (config.h).
 *
 * Secrets appear as the specs that name them (PLACEHOLDER=env:VAR@HOSTS,
 * a custom agent's {"VAR": [hosts]}), which is all a configuration holds:
 * their values are read at launch, by the broker, and never here.
 */
#include "launch/config/config.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

/* The last value flags[] give option o ("--flag V", "--flag=V", or a
 * switch), appended to *list for a list option; NULL when none. */
static const char *flag_value(const struct config_option *o, char *const *flags, int nflags,
			      struct json_object *list)
{
	const char *last = NULL;
	for (int i = 0; i < nflags; i++) {
		const char *a = flags[i], *v = NULL;
		if (!strcmp(a, "--"))
			break;
		if (o->type == CONFIG_BOOL) {
			if (o->flag && !strcmp(a, o->flag))
				last = "true";
			else if (o->no_flag && !strcmp(a, o->no_flag))
				last = "false";
			continue;
		}
		size_t n = strlen(o->flag);
		if (strncmp(a, o->flag, n))
			continue;
		if (a[n] == '=')
			v = a + n + 1;
		else if (!a[n] && i + 1 < nflags)
			v = flags[++i];
		if (!v)
			continue;
		last = v;
		if (list)
			json_object_array_add(list, json_object_new_string(v));
	}
	return last;
}

static struct json_object *scalar(const struct config_option *o, const char *text)
{
	if (!text)
		return NULL;	/* JSON null: unset */
	if (o->type == CONFIG_BOOL)
		return json_object_new_boolean(!strcmp(text, "true"));
	return json_object_new_string(text);
}

static struct json_object *setting(const struct config_option *o, const struct config_setting *s,
				   char *const *flags, int nflags)
{
	struct json_object *out = json_object_new_object();
	const char *src = config_source_name(s->source);
	if (o->type == CONFIG_LIST) {
		struct json_object *list = json_object_new_array(), *srcs = json_object_new_array();
		for (unsigned k = 0; k < s->n; k++) {
			json_object_array_add(list, json_object_new_string(s->list[k]));
			json_object_array_add(srcs, json_object_new_string(config_source_name(s->list_source[k])));
		}
		size_t before = json_object_array_length(list);
		flag_value(o, flags, nflags, list);
		for (size_t k = before; k < json_object_array_length(list); k++)
			json_object_array_add(srcs, json_object_new_string("flag"));
		json_object_object_add(out, "value", list);
		json_object_object_add(out, "sources", srcs);
		return out;
	}
	const char *text = s->text ? s->text : o->dflt;
	const char *given = flag_value(o, flags, nflags, NULL);
	if (given) {
		text = given;
		src = "flag";
	}
	json_object_object_add(out, "value", scalar(o, text));
	json_object_object_add(out, "source", json_object_new_string(src));
	return out;
}

int config_print_json(const struct config *c, char *const *flags, int nflags, FILE *f)
{
	struct json_object *root = json_object_new_object(), *files = json_object_new_object(),
			   *opts = json_object_new_object();
	if (!root || !files || !opts) {
		json_object_put(root);
		json_object_put(files);
		json_object_put(opts);
		return -ENOMEM;
	}
	json_object_object_add(files, "global",
			       c->global_path[0] ? json_object_new_string(c->global_path) : NULL);
	json_object_object_add(files, "project",
			       c->project_path[0] ? json_object_new_string(c->project_path) : NULL);
	json_object_object_add(root, "files", files);
	for (unsigned i = 0; i < config_noptions; i++)
		json_object_object_add(opts, config_options[i].key,
				       setting(&config_options[i], &c->set[i], flags, nflags));
	json_object_object_add(root, "options", opts);
	json_object_object_add(root, "agents", json_object_get(c->agents));
	struct json_object *refused = json_object_new_array();
	for (unsigned i = 0; i < c->nrefused; i++) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "key", json_object_new_string(c->refused_key[i]));
		json_object_object_add(r, "why", json_object_new_string(c->refused_why[i]));
		json_object_array_add(refused, r);
	}
	json_object_object_add(root, "refused_from_project", refused);
	fprintf(f, "%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_SPACED |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return 0;
}
