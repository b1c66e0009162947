/* proxy/graphql.h - a GraphQL lexer that follows the specification
 * (October 2021, section 2.1 "Source Text"), and the operation outline the
 * GitHub allow-list needs.
 *
 * The allow-list must read a document exactly as GitHub will: where a
 * mutation is, what each string literal says once its escapes are decoded,
 * which argument names carry which values.  A lexer that only looked for
 * the word "mutation" outside quotes would be fooled by a quote inside a
 * comment; this one tokenises the whole document (ignored tokens: the
 * byte-order mark, white space, line terminators, commas and comments;
 * punctuators; names; numbers; strings with escapes; block strings) and
 * refuses what it cannot tokenise.  String values are decoded: \uXXXX, the
 * braced \u{...} form, surrogate pairs, and block strings with their common
 * indentation and blank first and last lines removed.
 */
#ifndef KVMBOX_PROXY_GRAPHQL_H
#define KVMBOX_PROXY_GRAPHQL_H

#include <stdbool.h>
#include <stddef.h>

#define GQL_STRING_MAX 4096	/* longest decoded string value kept */

enum gql_kind {
	GQL_END,	/* end of the document */
	GQL_PUNCT,	/* ! $ & ( ) ... : = @ [ ] { | }: text[0] ('.' for ...) */
	GQL_NAME,
	GQL_NUMBER,
	GQL_STRING,	/* a string or block string: the decoded value in text */
};

struct gql_token {
	enum gql_kind kind;
	char text[GQL_STRING_MAX + 1];	/* NAME, NUMBER: as written; STRING: decoded */
	size_t len;
	bool truncated;		/* a STRING longer than GQL_STRING_MAX */
};

struct gql_lexer {
	const char *p, *end;
};

void gql_init(struct gql_lexer *lx, const char *src, size_t len);
/* The next token: 0, or -EINVAL where the document is not GraphQL (an
 * unknown character, an unterminated string, a bad escape or number). */
int gql_next(struct gql_lexer *lx, struct gql_token *t);

/* The operations a document defines, as GitHub will see them. */
struct gql_outline {
	unsigned operations;	/* query, mutation, subscription and shorthand { } */
	unsigned mutations;
	unsigned fragments;
	bool selected_is_mutation;	/* the operation GitHub runs (by operationName, or the only one) */
	bool selected_found;		/* operationName named an operation that exists (or none needed) */
};

/* Outline src; operation_name is the request's operationName or NULL.
 * 0 or -EINVAL (not a GraphQL document). */
int gql_outline(const char *src, size_t len, const char *operation_name, struct gql_outline *o);

#endif
