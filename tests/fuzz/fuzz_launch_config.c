/* tests/fuzz/fuzz_launch_config.c - a project's .kvmbox.json (written by
 * whoever wrote the repository, or by the agent in an earlier launch) on
 * arbitrary bytes, judged by the real flag parser: no crash, and whatever
 * it holds, what it leaves standing never widens the sandbox: no option a
 * project may never set, no switch turned the forbidden way, no more
 * memory or CPUs than the defaults, no wider egress profile than the
 * global file's "standard". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "launch/config/config.h"
#include "vmm/cli/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char global[] = "{\"egress_profile\": \"standard\"}";
	struct config c;
	char err[300];
	if (config_init(&c) < 0)
		abort();
	if (config_take_text(&c, global, sizeof(global) - 1, CONFIG_GLOBAL, "global", agent_config_check, err,
			     sizeof(err)) < 0)
		abort();
	config_take_text(&c, (const char *)data, size, CONFIG_PROJECT, "project", agent_config_check, err,
			 sizeof(err));
	for (unsigned i = 0; i < config_noptions; i++) {
		const struct config_option *o = &config_options[i];
		const struct config_setting *s = &c.set[i];
		if (s->source != CONFIG_PROJECT)
			continue;
		uint64_t v, d;
		switch (o->project) {
		case CONFIG_PROJECT_NEVER:
			abort();
		case CONFIG_PROJECT_OFF:
			if (strcmp(s->text, "false") && strcmp(o->dflt, "true"))
				abort();
			break;
		case CONFIG_PROJECT_ON:
			if (strcmp(s->text, "true"))
				abort();
			break;
		case CONFIG_PROJECT_LOWER:
			if (agent_config_check(o, s->text, &v, err, sizeof(err)) < 0 ||
			    agent_config_check(o, o->dflt, &d, err, sizeof(err)) < 0 || v > d)
				abort();
			break;
		case CONFIG_PROJECT_ADD:	/* excludes: what the copy leaves out */
			break;
		case CONFIG_PROJECT_NARROW:
			if (strcmp(s->text, "standard") && strcmp(s->text, "locked"))
				abort();
			break;
		}
		for (unsigned k = 0; k < s->n; k++)
			if (s->list_source[k] == CONFIG_PROJECT && o->project != CONFIG_PROJECT_ADD)
				abort();
	}
	config_fini(&c);
	return 0;
}
