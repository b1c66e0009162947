/* launch/config/config.h - what an agent launch may do, set once: the
 * options table, the configuration files and the environment knobs.
 *
 * Every option of an agent launch that a file may set is declared once, in
 * config_options[] (options.c): its flag, its key in the files, its
 * environment knob, its help line and what a project file may do with it.
 * The files are read into settings (load.c), which become flag words put
 * before the user's own, so the one parser of kvmbox's flags judges every
 * value wherever it came from, and `kvmbox AGENT --help` lists the table.
 *
 * Strength, weakest first (a later source replaces a value, and adds to a
 * list):
 *   default  the table's
 *   global   $XDG_CONFIG_HOME/kvmbox/config.json (~/.config/...)
 *   project  .kvmbox.json in the project folder: may only tighten
 *   env      KVMBOX_MEMORY, KVMBOX_CPUS, KVMBOX_IMAGE, KVMBOX_EGRESS_PROFILE
 *   flag     the command line: always wins
 * The environment knobs are the user's session defaults, so they stand
 * above the files and below what is typed now.
 *
 * A project file is the repository's, which an agent (or whoever wrote the
 * repository) controls: it may narrow egress, turn hooks, git wiring, the
 * kept state or the LAN and host openings off, turn review on, add
 * excludes, and lower memory and CPUs;
 * it can never widen egress, name an image, secrets, repositories, ports
 * or CAs.  What it tried and was not allowed is kept (config.refused_*) and
 * said once at launch; the launch goes on without it.
 *
 * Files are strict JSON objects (no comments, nothing after the object, at
 * most 64 KiB, a regular file not reached through a symbolic link); an
 * unknown key, a value of the wrong type or one the flag's parser refuses
 * is an error naming the file and the key: a typo never passes silently.
 */
#ifndef KVMBOX_LAUNCH_CONFIG_H
#define KVMBOX_LAUNCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_source { CONFIG_DEFAULT, CONFIG_GLOBAL, CONFIG_PROJECT, CONFIG_ENV, CONFIG_FLAG };

enum config_type {
	CONFIG_TEXT,	/* "--flag VALUE" */
	CONFIG_NUMBER,	/* likewise, compared as a number (memory in MiB, CPUs) */
	CONFIG_BOOL,	/* "--flag" for true, "--no-flag" for false */
	CONFIG_LIST,	/* "--flag VALUE" per entry */
};

/* What a project file may do with an option. */
enum config_project_rule {
	CONFIG_PROJECT_NEVER,	/* widens, or names host resources: refused */
	CONFIG_PROJECT_LOWER,	/* a number: no higher than it stands */
	CONFIG_PROJECT_NARROW,	/* the egress profile: only towards locked */
	CONFIG_PROJECT_OFF,	/* a switch: may turn it off, never on */
	CONFIG_PROJECT_ON,	/* a switch: may turn it on, never off */
	CONFIG_PROJECT_ADD,	/* a list whose entries tighten (excludes): may add to it */
};

struct config_option {
	const char *key;	/* in the files and in `kvmbox config` */
	const char *flag;	/* sets it (true, for a switch), or NULL */
	const char *no_flag;	/* a switch's false, or NULL */
	const char *env;	/* KVMBOX_* knob, or NULL */
	const char *arg;	/* the value's name in --help, or NULL (a switch) */
	const char *dflt;	/* the default, as a flag value ("2048", "true"), or NULL: unset */
	enum config_type type;
	enum config_project_rule project;
	const char *help;
};

extern const struct config_option config_options[];
extern const unsigned config_noptions;

/* The option with this key, or NULL. */
const struct config_option *config_option_find(const char *key);

#define CONFIG_MAX_LIST 64
#define CONFIG_FILE_MAX (64 * 1024)
#define CONFIG_MAX_REFUSED 32

/* One option's value and where it came from. */
struct config_setting {
	enum config_source source;	/* CONFIG_DEFAULT: the table's dflt */
	char *text;			/* TEXT, NUMBER; "true"/"false" for BOOL */
	char *list[CONFIG_MAX_LIST];	/* LIST entries, weakest source first */
	enum config_source list_source[CONFIG_MAX_LIST];
	unsigned n;
};

struct config {
	struct config_setting *set;	/* config_noptions of them, in table order */
	char global_path[4096], project_path[4096];	/* "" when there is none */
	/* "agents" of the global file: custom agents by name (see
	 * config_agent), a json-c object, or NULL */
	struct json_object *agents;
	/* what the project file asked for and may not have: key and why */
	const char *refused_key[CONFIG_MAX_REFUSED], *refused_why[CONFIG_MAX_REFUSED];
	unsigned nrefused;
};

/* A custom agent of the global file, by name (config_agent_check has
 * judged it): a json-c object borrowed from c, or NULL.
 *   "agents": { "NAME": {
 *       "command": ["prog", "arg"...],      required
 *       "image": "NAME|REF",                 its default image
 *       "env": ["VAR"...],                   host variables passed as they are
 *       "secrets": {"VAR": ["host"...]},     host variables the guest gets as
 *                                            placeholders, swapped toward those hosts
 *       "egress": ["name"...]                --allow-domain for standard/locked
 *   } }
 * NAME: a lower-case letter, then letters, digits or '-', at most 32. */
struct json_object *config_agent(const struct config *c, const char *name);

/* "key (why), ..." for the refusals, into out. */
void config_refused_line(const struct config *c, char *out, size_t outsz);

/* The flag parser's verdict on one value (the caller's: kvmbox's one
 * parser of flags): 0, with *num the value as a number for a NUMBER
 * option; or -EINVAL with a one-line reason in err. */
typedef int (*config_check_fn)(const struct config_option *o, const char *value, uint64_t *num,
			       char *err, size_t errsz);

/* Read the global file, then project_dir's .kvmbox.json (project_dir NULL:
 * none), then the environment knobs.  0, or -EINVAL / -errno with one line
 * in err naming the file and key.  config_fini() in every case. */
int config_load(struct config *c, const char *project_dir, config_check_fn check, char *err,
		size_t errsz);
void config_fini(struct config *c);

/* The pieces config_load is made of, for tests and the fuzzer: an empty
 * configuration (0 or -ENOMEM), and one file's text read as from a file
 * of source src called name (0, or -EINVAL / -errno with err). */
int config_init(struct config *c);
int config_take_text(struct config *c, const char *text, size_t len, enum config_source src,
		     const char *name, config_check_fn check, char *err, size_t errsz);

/* The settings as flag words, to stand before the user's (pointers into c
 * and the table), at most cap: their count, or -E2BIG.  Nothing for a
 * setting at its default. */
int config_words(const struct config *c, const char **out, int cap);

/* The effective configuration as JSON on f: the files read, each option's
 * value and source (a flag in flags[0..nflags) counts as the strongest),
 * what the project file was refused.  0 or -ENOMEM. */
int config_print_json(const struct config *c, char *const *flags, int nflags, FILE *f);

/* The table as --help lines (flag, key, knob, help) on f. */
void config_print_help(FILE *f);

const char *config_source_name(enum config_source s);

#endif
