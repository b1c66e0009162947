/* proxy/json.c - strict JSON objects (see json.h). */
#include "proxy/json.h"

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

struct json_object *json_strict_object(const char *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok || len > INT32_MAX) {
		if (tok)
			json_tokener_free(tok);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	struct json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	bool ok = json_tokener_get_error(tok) == json_tokener_success && o &&
		  json_object_is_type(o, json_type_object) && json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
