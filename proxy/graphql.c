/* proxy/graphql.c - GraphQL lexer and operation outline (see graphql.h).
 *
 * Written against the specification's lexical grammar, one function per
 * token class.  Everything outside the grammar is an error, never skipped:
 * the allow-list refuses a document it cannot read the way GitHub reads it.
 */
#include "proxy/graphql.h"

#include "common/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void gql_init(struct gql_lexer *lx, const char *src, size_t len)
{
	lx->p = src;
	lx->end = src + len;
}

static bool name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_cont(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Past ignored tokens: BOM, white space, line terminators, commas, comments. */
static void skip_ignored(struct gql_lexer *lx)
{
	while (lx->p < lx->end) {
		unsigned char c = (unsigned char)*lx->p;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
			lx->p++;
		} else if (c == 0xEF && lx->end - lx->p >= 3 && (unsigned char)lx->p[1] == 0xBB &&
			   (unsigned char)lx->p[2] == 0xBF) {
			lx->p += 3;
		} else if (c == '#') {
			while (lx->p < lx->end && *lx->p != '\n' && *lx->p != '\r')
				lx->p++;
		} else {
			return;
		}
	}
}

/* Append one byte to the token's text; past the cap only mark truncated. */
static void put(struct gql_token *t, char c)
{
	if (t->len < GQL_STRING_MAX)
		t->text[t->len++] = c;
	else
		t->truncated = true;
}

static void put_utf8(struct gql_token *t, uint32_t cp)
{
	char u[4];
	size_t n = utf8_encode(cp, u);
	for (size_t i = 0; i < n; i++)
		put(t, u[i]);
}

/* The escape after a backslash at lx->p (which points past it). */
static int string_escape(struct gql_lexer *lx, struct gql_token *t)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	if (lx->p >= lx->end)
		return -EINVAL;
	char c = *lx->p++;
	const char *k = c ? strchr(from, c) : NULL;
	if (k) {
		put(t, to[k - from]);
		return 0;
	}
	if (c != 'u')
		return -EINVAL;
	uint32_t cp;
	if (lx->p < lx->end && *lx->p == '{') {	/* \u{1F600} */
		const char *q = lx->p + 1;
		uint64_t v = 0;
		while (q < lx->end && hex_digit(*q) >= 0 && v <= 0x10FFFF)
			v = v << 4 | (uint64_t)hex_digit(*q++);
		if (q == lx->p + 1 || q >= lx->end || *q != '}' || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
			return -EINVAL;
		cp = (uint32_t)v;
		lx->p = q + 1;
	} else {
		long v = hex4_value(lx->p, (size_t)(lx->end - lx->p));
		if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF))
			return -EINVAL;
		lx->p += 4;
		cp = (uint32_t)v;
		if (v >= 0xD800 && v <= 0xDBFF) {	/* a surrogate pair, as JSON writes it */
			long lo = lx->end - lx->p >= 6 && lx->p[0] == '\\' && lx->p[1] == 'u'
					  ? hex4_value(lx->p + 2, (size_t)(lx->end - lx->p - 2)) : -1;
			if (lo < 0xDC00 || lo > 0xDFFF)
				return -EINVAL;
			cp = 0x10000 + (uint32_t)((v - 0xD800) << 10) + (uint32_t)(lo - 0xDC00);
			lx->p += 6;
		}
	}
	put_utf8(t, cp);
	return 0;
}

/* "..." with lx->p past the opening quote. */
static int lex_string(struct gql_lexer *lx, struct gql_token *t)
{
	while (lx->p < lx->end) {
		char c = *lx->p++;
		if (c == '"')
			return 0;
		if (c == '\n' || c == '\r')
			return -EINVAL;
		if (c == '\\') {
			if (string_escape(lx, t))
				return -EINVAL;
		} else {
			put(t, c);
		}
	}
	return -EINVAL;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static size_t indent_of(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* The next line of raw[*i..n): start and length, past its terminator. */
static bool next_line(const char *raw, size_t n, size_t *i, const char **line, size_t *len)
{
	if (*i > n)
		return false;
	size_t s = *i, e = s;
	while (e < n && raw[e] != '\n' && raw[e] != '\r')
		e++;
	*line = raw + s;
	*len = e - s;
	*i = e + 1 + (e + 1 < n && raw[e] == '\r' && raw[e + 1] == '\n');
	if (e == n)
		*i = n + 1;
	return true;
}

/* BlockStringValue (spec 2.9.4) of raw[0..n), \""" already unescaped. */
static void block_value(const char *raw, size_t n, struct gql_token *t)
{
	size_t common = SIZE_MAX, i = 0, len;
	const char *line;
	for (bool first = true; next_line(raw, n, &i, &line, &len); first = false) {
		size_t ind = indent_of(line, len);
		if (!first && ind < len && ind < common)
			common = ind;
	}
	/* the first and last non-blank lines bound the value */
	size_t nlines = 0, first_nb = SIZE_MAX, last_nb = 0;
	for (i = 0; next_line(raw, n, &i, &line, &len); nlines++)
		if (!blank(line, len)) {
			if (first_nb == SIZE_MAX)
				first_nb = nlines;
			last_nb = nlines;
		}
	if (first_nb == SIZE_MAX)
		return;
	size_t k = 0;
	for (i = 0; next_line(raw, n, &i, &line, &len); k++) {
		if (k < first_nb || k > last_nb)
			continue;
		if (k > first_nb)
			put(t, '\n');
		size_t skip = k && common != SIZE_MAX ? (common < len ? common : len) : 0;
		for (size_t j = skip; j < len; j++)
			put(t, line[j]);
	}
}

/* """...""" with lx->p past the opening quotes. */
static int lex_block_string(struct gql_lexer *lx, struct gql_token *t)
{
	static char raw[65536];	/* single-threaded scratch: the raw value */
	size_t n = 0;
	while (lx->p < lx->end) {
		if (lx->end - lx->p >= 3 && !memcmp(lx->p, "\"\"\"", 3)) {
			lx->p += 3;
			block_value(raw, n, t);
			return 0;
		}
		size_t step = lx->end - lx->p >= 4 && !memcmp(lx->p, "\\\"\"\"", 4) ? 4 : 1;
		const char *add = step == 4 ? "\"\"\"" : lx->p;
		size_t addn = step == 4 ? 3 : 1;
		if (n + addn > sizeof(raw))
			return -EINVAL;
		memcpy(raw + n, add, addn);
		n += addn;
		lx->p += step;
	}
	return -EINVAL;
}

/* IntValue or FloatValue, lx->p at '-' or a digit. */
static int lex_number(struct gql_lexer *lx, struct gql_token *t)
{
	const char *s = lx->p, *p = s, *e = lx->end;
	if (p < e && *p == '-')
		p++;
	if (p >= e || !is_digit(*p))
		return -EINVAL;
	if (*p == '0' && p + 1 < e && is_digit(p[1]))
		return -EINVAL;	/* leading zero */
	while (p < e && is_digit(*p))
		p++;
	if (p < e && *p == '.') {
		if (++p >= e || !is_digit(*p))
			return -EINVAL;
		while (p < e && is_digit(*p))
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || !is_digit(*p))
			return -EINVAL;
		while (p < e && is_digit(*p))
			p++;
	}
	if (p < e && (name_start(*p) || *p == '.'))
		return -EINVAL;	/* 2.9.1: no NameStart or '.' right after a number */
	for (const char *q = s; q < p; q++)
		put(t, *q);
	lx->p = p;
	t->kind = GQL_NUMBER;
	return 0;
}

int gql_next(struct gql_lexer *lx, struct gql_token *t)
{
	t->len = 0;
	t->truncated = false;
	skip_ignored(lx);
	if (lx->p >= lx->end) {
		t->kind = GQL_END;
		t->text[0] = 0;
		return 0;
	}
	char c = *lx->p;
	int r = 0;
	if (strchr("!$&()[]{}:=@|", c) && c) {
		t->kind = GQL_PUNCT;
		put(t, c);
		lx->p++;
	} else if (c == '.') {
		if (lx->end - lx->p < 3 || memcmp(lx->p, "...", 3))
			return -EINVAL;
		t->kind = GQL_PUNCT;
		put(t, '.');
		lx->p += 3;
	} else if (name_start(c)) {
		t->kind = GQL_NAME;
		while (lx->p < lx->end && name_cont(*lx->p))
			put(t, *lx->p++);
	} else if (c == '-' || is_digit(c)) {
		r = lex_number(lx, t);
	} else if (c == '"') {
		t->kind = GQL_STRING;
		bool block = lx->end - lx->p >= 3 && !memcmp(lx->p, "\"\"\"", 3);
		lx->p += block ? 3 : 1;
		r = block ? lex_block_string(lx, t) : lex_string(lx, t);
	} else {
		return -EINVAL;
	}
	t->text[t->len] = 0;
	return r;
}

/* Skip a balanced group whose opening punctuator was just read. */
static int skip_group(struct gql_lexer *lx, struct gql_token *t, char open)
{
	char stack[256];
	unsigned depth = 0;
	stack[depth++] = open;
	while (depth) {
		if (gql_next(lx, t) || t->kind == GQL_END)
			return -EINVAL;
		if (t->kind != GQL_PUNCT)
			continue;
		char c = t->text[0];
		if (c == '(' || c == '[' || c == '{') {
			if (depth == sizeof(stack))
				return -EINVAL;
			stack[depth++] = c;
		} else if (c == ')' || c == ']' || c == '}') {
			char want = c == ')' ? '(' : c == ']' ? '[' : '{';
			if (stack[--depth] != want)
				return -EINVAL;
		}
	}
	return 0;
}

/* After "query|mutation|subscription|fragment": up to and through its
 * selection set.  The operation's name, if any, into name. */
static int skip_definition(struct gql_lexer *lx, struct gql_token *t, char *name, size_t cap)
{
	name[0] = 0;
	for (bool first = true;; first = false) {
		if (gql_next(lx, t) || t->kind == GQL_END)
			return -EINVAL;
		if (first && t->kind == GQL_NAME) {
			if (t->len < cap)
				memcpy(name, t->text, t->len + 1);
			continue;
		}
		if (t->kind == GQL_PUNCT && t->text[0] == '{')
			return skip_group(lx, t, '{');
		if (t->kind == GQL_PUNCT && (t->text[0] == '(' || t->text[0] == '['))
			if (skip_group(lx, t, t->text[0]))
				return -EINVAL;
	}
}

int gql_outline(const char *src, size_t len, const char *operation_name, struct gql_outline *o)
{
	static struct gql_token t;	/* single-threaded scratch (4 KiB) */
	struct gql_lexer lx;
	memset(o, 0, sizeof(*o));
	gql_init(&lx, src, len);
	bool named_is_mutation = false, named_found = false;
	for (;;) {
		if (gql_next(&lx, &t))
			return -EINVAL;
		if (t.kind == GQL_END)
			break;
		char name[256] = "";
		bool mutation = false;
		if (t.kind == GQL_PUNCT && t.text[0] == '{') {
			if (skip_group(&lx, &t, '{'))
				return -EINVAL;
			o->operations++;
		} else if (t.kind == GQL_NAME && (!strcmp(t.text, "query") || !strcmp(t.text, "mutation") ||
						  !strcmp(t.text, "subscription"))) {
			mutation = !strcmp(t.text, "mutation");
			if (skip_definition(&lx, &t, name, sizeof(name)))
				return -EINVAL;
			o->operations++;
			o->mutations += mutation;
		} else if (t.kind == GQL_NAME && !strcmp(t.text, "fragment")) {
			if (skip_definition(&lx, &t, name, sizeof(name)))
				return -EINVAL;
			o->fragments++;
			continue;
		} else {
			return -EINVAL;	/* type system definitions and anything else */
		}
		if (operation_name && name[0] && !strcmp(name, operation_name)) {
			named_found = true;
			named_is_mutation = mutation;
		}
		if (!operation_name)
			named_is_mutation = mutation;
	}
	o->selected_found = operation_name ? named_found : o->operations == 1;
	o->selected_is_mutation = o->selected_found && named_is_mutation;
	return 0;
}
