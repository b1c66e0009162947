/* proxy/json.h - JSON read the way the far end reads it.
 *
 * The policies that look inside request and response bodies (token
 * endpoints, GitHub GraphQL) must not accept what the server would read
 * differently: json-c's default tokener takes comments, single quotes and
 * trailing commas, and stops quietly before trailing bytes.  Here a body is
 * one RFC 8259 object with nothing before or after it (no byte-order mark,
 * no comments), or it is refused.
 */
#ifndef KVMBOX_PROXY_JSON_H
#define KVMBOX_PROXY_JSON_H

#include <stddef.h>

#include <json-c/json.h>

/* body as a strict JSON object (a new reference), or NULL. */
struct json_object *json_strict_object(const char *body, size_t len);

#endif
