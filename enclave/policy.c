#define CF_LOG_MODULE "policy"

#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/buf.h"
#include "sql.h"

#define MAX_TOKENS 100000
#define MAX_REFS 64

/* --- a tokenizer that splits SQL as SQLite does --- */

enum { T_WORD, T_QID, T_STRING, T_NUMBER, T_BLOB, T_PARAM, T_LP, T_RP, T_COMMA, T_DOT, T_SEMI,
       T_STAR, T_OP };

typedef struct tok {
	int kind;
	size_t off;
	size_t len;
	int depth; /* parentheses open around it; a ( and its ) share their outer depth */
} tok;

typedef struct lexed {
	const char *sql;
	tok *t;
	size_t n;
	size_t cap;
} lexed;

static void set_why(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	for (char *p = why; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool id_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool id_char(unsigned char c)
{
	return id_start(c) || is_digit(c) || c == '$';
}

/* The end of a quoted token starting at s[i] (close doubled inside); 0 if unterminated. */
static size_t scan_quoted(const char *s, size_t n, size_t i, char close, bool doubled)
{
	for (size_t j = i + 1; j < n; j++) {
		if (s[j] != close)
			continue;
		if (doubled && j + 1 < n && s[j + 1] == close) {
			j++;
			continue;
		}
		return j + 1;
	}
	return 0;
}

static cf_err push(lexed *L, int kind, size_t off, size_t len, int depth)
{
	if (L->n == L->cap) {
		if (L->cap >= MAX_TOKENS)
			return CF_ERR_TOO_BIG;
		size_t cap = L->cap ? 2 * L->cap : 64;
		tok *t = realloc(L->t, cap * sizeof(*t));
		if (!t)
			return CF_ERR_NOMEM;
		L->t = t;
		L->cap = cap;
	}
	L->t[L->n++] = (tok){ kind, off, len, depth };
	return CF_OK;
}

static cf_err lex(const char *s, lexed *L, char *why, size_t whylen)
{
	size_t n = strlen(s), i = 0;
	int depth = 0;
	cf_err rc = CF_OK;
	L->sql = s;
	while (i < n && rc == CF_OK) {
		unsigned char c = (unsigned char)s[i];
		size_t start = i, end;
		int kind, d = depth;
		if (is_space(c)) {
			i++;
			continue;
		}
		if (c == '-' && s[i + 1] == '-') {
			while (i < n && s[i] != '\n')
				i++;
			continue;
		}
		if (c == '/' && s[i + 1] == '*') {
			const char *e = strstr(s + i + 2, "*/");
			i = e ? (size_t)(e - s) + 2 : n;
			continue;
		}
		if (c == '\'' || c == '"' || c == '`' || c == '[' ||
		    ((c == 'x' || c == 'X') && s[i + 1] == '\'')) {
			size_t q = (c == 'x' || c == 'X') ? i + 1 : i;
			char close = s[q] == '[' ? ']' : s[q];
			end = scan_quoted(s, n, q, close, close != ']');
			if (!end) {
				set_why(why, whylen, "the query has an unterminated quote");
				return CF_ERR_PARSE;
			}
			kind = c == '\'' ? T_STRING : (c == 'x' || c == 'X') ? T_BLOB : T_QID;
			i = end;
		} else if (is_digit(c) || (c == '.' && is_digit((unsigned char)s[i + 1]))) {
			i++;
			while (i < n && (id_char((unsigned char)s[i]) || s[i] == '.' ||
					 ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E'))))
				i++;
			kind = T_NUMBER;
		} else if (c == '?' || c == ':' || c == '@' || c == '$') {
			i++;
			while (i < n && id_char((unsigned char)s[i]))
				i++;
			kind = T_PARAM;
		} else if (id_start(c)) {
			while (i < n && id_char((unsigned char)s[i]))
				i++;
			kind = T_WORD;
		} else {
			i++;
			switch (c) {
			case '(': kind = T_LP; depth++; break;
			case ')':
				if (--depth < 0) {
					set_why(why, whylen, "the query's parentheses do not balance");
					return CF_ERR_PARSE;
				}
				d = depth;
				kind = T_RP;
				break;
			case ',': kind = T_COMMA; break;
			case '.': kind = T_DOT; break;
			case ';': kind = T_SEMI; break;
			case '*': kind = T_STAR; break;
			default: kind = T_OP; break;
			}
		}
		rc = push(L, kind, start, i - start, d);
	}
	if (rc == CF_OK && depth != 0) {
		set_why(why, whylen, "the query's parentheses do not balance");
		return CF_ERR_PARSE;
	}
	if (rc == CF_ERR_TOO_BIG)
		set_why(why, whylen, "the query has more than %d tokens", MAX_TOKENS);
	return rc;
}

static bool word_is(const lexed *L, size_t i, const char *w)
{
	if (i >= L->n || L->t[i].kind != T_WORD)
		return false;
	size_t k = strlen(w);
	return L->t[i].len == k && sqlite3_strnicmp(L->sql + L->t[i].off, w, (int)k) == 0;
}

static bool kind_is(const lexed *L, size_t i, int kind)
{
	return i < L->n && L->t[i].kind == kind;
}

static bool is_name(const lexed *L, size_t i)
{
	return kind_is(L, i, T_WORD) || kind_is(L, i, T_QID);
}

/* The identifier a WORD, QID or (alias) STRING token spells, unquoted. */
static char *tok_name(const lexed *L, size_t i)
{
	const tok *t = &L->t[i];
	const char *p = L->sql + t->off;
	if (t->kind == T_WORD)
		return strndup(p, t->len);
	char *out = malloc(t->len);
	if (!out)
		return NULL;
	char close = p[0] == '[' ? ']' : p[0];
	size_t k = 0;
	for (size_t j = 1; j + 1 < t->len; j++) {
		out[k++] = p[j];
		if (close != ']' && p[j] == close)
			j++; /* a doubled quote stands for one */
	}
	out[k] = '\0';
	return out;
}

/* --- the shape of the query --- */

typedef struct ref {
	char *table;
	char *alias;
} ref;

typedef struct colref {
	char *q; /* "" if unqualified */
	char *c;
} colref;

typedef struct shape {
	lexed L;
	const cf_policy_table *tables;
	size_t ntables;
	size_t end;              /* tokens before the trailing semicolons */
	size_t sel_start;        /* first token of the select list */
	size_t from;             /* the FROM keyword */
	size_t where;            /* the clause keywords (or 0 if absent) */
	size_t group;
	size_t having;
	size_t order;
	size_t limit;
	ref refs[MAX_REFS];
	size_t nrefs;
	colref *grefs;           /* GROUP BY terms that are plain columns */
	size_t ngrefs;
	char **gterms;           /* every GROUP BY term, normalised */
	size_t ngterms;
	long *gpos;              /* GROUP BY terms that are result column numbers */
	size_t ngpos;
	bool saw_aggregate;
	char *why;
	size_t whylen;
} shape;

static void shape_free(shape *s)
{
	free(s->L.t);
	for (size_t i = 0; i < s->nrefs; i++) {
		free(s->refs[i].table);
		free(s->refs[i].alias);
	}
	for (size_t i = 0; i < s->ngrefs; i++) {
		free(s->grefs[i].q);
		free(s->grefs[i].c);
	}
	free(s->grefs);
	for (size_t i = 0; i < s->ngterms; i++)
		free(s->gterms[i]);
	free(s->gterms);
	free(s->gpos);
}

static cf_err refuse(shape *s, cf_err rc, const char *fmt, ...) CF_PRINTF(3, 4);
static cf_err refuse(shape *s, cf_err rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_why(s->why, s->whylen, "%s", msg);
	return rc;
}

/* The text of token i, for messages (at most 64 bytes). */
static int tok_len(const shape *s, size_t i)
{
	return (int)(s->L.t[i].len > 64 ? 64 : s->L.t[i].len);
}
#define TOK(s, i) tok_len(s, i), (s)->L.sql + (s)->L.t[i].off

static bool known_column(const shape *s, const char *name)
{
	for (size_t i = 0; i < s->ntables; i++) {
		for (size_t j = 0; j < s->tables[i].ncolumns; j++) {
			if (sqlite3_stricmp(s->tables[i].columns[j], name) == 0)
				return true;
		}
	}
	return false;
}

static bool task_table(const shape *s, const char *name)
{
	for (size_t i = 0; i < s->ntables; i++) {
		if (sqlite3_stricmp(s->tables[i].name, name) == 0)
			return true;
	}
	return false;
}

/* Index of the matching ) of the ( at i. */
static size_t close_of(const shape *s, size_t i)
{
	int d = s->L.t[i].depth;
	for (size_t j = i + 1; j < s->L.n; j++) {
		if (s->L.t[j].kind == T_RP && s->L.t[j].depth == d)
			return j;
	}
	return s->L.n; /* unreachable: lex() balanced them */
}

static size_t clause_end(const shape *s, size_t i);

/* Finds the clauses at depth 0 and refuses what cannot be checked anywhere. */
static cf_err find_clauses(shape *s)
{
	const lexed *L = &s->L;
	s->end = L->n;
	while (s->end > 0 && L->t[s->end - 1].kind == T_SEMI)
		s->end--;
	if (s->end == 0)
		return refuse(s, CF_ERR_PARSE, "the query is empty");
	for (size_t i = 0; i < s->end; i++) {
		if (L->t[i].kind == T_SEMI)
			return refuse(s, CF_ERR_AUTH, "the query holds more than one statement");
		if ((i > 0 && word_is(L, i, "SELECT")) || word_is(L, i, "VALUES") ||
		    word_is(L, i, "WITH"))
			return refuse(s, CF_ERR_UNSUPPORTED,
				      "subqueries and CTEs cannot be checked by the output policy");
		if (word_is(L, i, "OVER") || word_is(L, i, "WINDOW"))
			return refuse(s, CF_ERR_UNSUPPORTED,
				      "window functions cannot be checked by the output policy");
	}
	if (!word_is(L, 0, "SELECT"))
		return refuse(s, CF_ERR_UNSUPPORTED, "the output policy needs a SELECT");
	s->sel_start = 1;
	if (word_is(L, 1, "DISTINCT"))
		return refuse(s, CF_ERR_UNSUPPORTED,
			      "SELECT DISTINCT cannot be checked by the output policy");
	if (word_is(L, 1, "ALL"))
		s->sel_start = 2;
	/* Clauses in SQL's order; each keyword counts once, at depth 0. */
	size_t *slot[] = { &s->from, &s->where, &s->group, &s->having, &s->order, &s->limit };
	static const char *const names[] = { "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT" };
	size_t next = 0;
	for (size_t i = s->sel_start; i < s->end; i++) {
		if (L->t[i].depth != 0 || L->t[i].kind != T_WORD)
			continue;
		if (word_is(L, i, "UNION") || word_is(L, i, "INTERSECT") || word_is(L, i, "EXCEPT"))
			return refuse(s, CF_ERR_UNSUPPORTED,
				      "compound SELECTs cannot be checked by the output policy");
		/* "x IS [NOT] DISTINCT FROM y" is an operator, not the FROM clause. */
		if (word_is(L, i, "FROM") && word_is(L, i - 1, "DISTINCT"))
			continue;
		for (size_t k = next; k < sizeof(names) / sizeof(names[0]); k++) {
			if (!word_is(L, i, names[k]))
				continue;
			if ((k == 2 || k == 4) && !word_is(L, i + 1, "BY"))
				break;
			*slot[k] = i;
			next = k + 1;
			break;
		}
	}
	if (!s->from)
		return refuse(s, CF_ERR_UNSUPPORTED, "the query reads no table");
	if (s->having && !s->group)
		return refuse(s, CF_ERR_UNSUPPORTED, "HAVING needs GROUP BY under the output policy");
	/* Every clause has a body: the rewrite inserts around them. */
	const size_t starts[] = { s->where, s->group, s->having, s->order, s->limit };
	const size_t skip[] = { 1, 2, 1, 2, 1 };
	for (size_t k = 0; k < 5; k++) {
		if (starts[k] && starts[k] + skip[k] >= clause_end(s, starts[k]))
			return refuse(s, CF_ERR_PARSE, "the query has an empty %.*s clause",
				      TOK(s, starts[k]));
	}
	if (s->from + 1 >= clause_end(s, s->from))
		return refuse(s, CF_ERR_PARSE, "the query has an empty FROM clause");
	return CF_OK;
}

/* The first clause keyword after token i, or the end. */
static size_t clause_end(const shape *s, size_t i)
{
	const size_t after[] = { s->where, s->group, s->having, s->order, s->limit };
	for (size_t k = 0; k < sizeof(after) / sizeof(after[0]); k++) {
		if (after[k] > i)
			return after[k];
	}
	return s->end;
}

static bool join_word(const lexed *L, size_t i)
{
	static const char *const w[] = { "JOIN", "LEFT", "RIGHT", "FULL", "INNER", "CROSS",
					  "NATURAL", "OUTER" };
	for (size_t k = 0; k < sizeof(w) / sizeof(w[0]); k++) {
		if (word_is(L, i, w[k]))
			return true;
	}
	return false;
}

/* FROM: table references of the task joined by commas or JOINs. */
static cf_err parse_from(shape *s)
{
	const lexed *L = &s->L;
	size_t i = s->from + 1, end = clause_end(s, s->from);
	bool want_ref = true;
	while (i < end) {
		if (want_ref) {
			if (!is_name(L, i) || join_word(L, i))
				return refuse(s, CF_ERR_UNSUPPORTED,
					      "only tables of the task can follow FROM or JOIN (near "
					      "\"%.*s\")", TOK(s, i));
			if (kind_is(L, i + 1, T_DOT) || kind_is(L, i + 1, T_LP))
				return refuse(s, CF_ERR_UNSUPPORTED,
					      "qualified tables and table-valued functions cannot be "
					      "checked by the output policy");
			if (s->nrefs == MAX_REFS)
				return refuse(s, CF_ERR_UNSUPPORTED, "more than %d table references",
					      MAX_REFS);
			ref *r = &s->refs[s->nrefs];
			size_t name_at = i++;
			size_t alias_at = name_at;
			if (word_is(L, i, "AS")) {
				if (!is_name(L, i + 1) && !kind_is(L, i + 1, T_STRING))
					return refuse(s, CF_ERR_UNSUPPORTED, "AS without an alias in FROM");
				alias_at = i + 1;
				i += 2;
			} else if (i < end && is_name(L, i) && !join_word(L, i) &&
				   !word_is(L, i, "ON") && !word_is(L, i, "USING") &&
				   !word_is(L, i, "INDEXED") && !word_is(L, i, "NOT")) {
				alias_at = i++;
			}
			if (word_is(L, i, "INDEXED") || word_is(L, i, "NOT"))
				return refuse(s, CF_ERR_UNSUPPORTED,
					      "INDEXED BY cannot be checked by the output policy");
			r->table = tok_name(L, name_at);
			r->alias = tok_name(L, alias_at);
			if (!r->table || !r->alias) {
				free(r->table);
				free(r->alias);
				return CF_ERR_NOMEM;
			}
			s->nrefs++;
			if (!task_table(s, r->table))
				return refuse(s, CF_ERR_AUTH, "%.64s is not a table of the task", r->table);
			want_ref = false;
		} else if (kind_is(L, i, T_COMMA)) {
			i++;
			want_ref = true;
		} else if (join_word(L, i)) {
			while (i < end && join_word(L, i) && !word_is(L, i, "JOIN"))
				i++;
			if (!word_is(L, i, "JOIN"))
				return refuse(s, CF_ERR_UNSUPPORTED, "a join without JOIN");
			i++;
			want_ref = true;
		} else if (word_is(L, i, "ON")) {
			/* The condition filters pairs of rows: anything goes but a subquery. */
			i++;
			while (i < end && !(L->t[i].depth == 0 &&
					    (kind_is(L, i, T_COMMA) || join_word(L, i))))
				i++;
		} else if (word_is(L, i, "USING") && kind_is(L, i + 1, T_LP)) {
			i = close_of(s, i + 1) + 1;
		} else {
			return refuse(s, CF_ERR_UNSUPPORTED, "the FROM clause is not checkable near "
				      "\"%.*s\"", TOK(s, i));
		}
	}
	if (want_ref)
		return refuse(s, CF_ERR_UNSUPPORTED, "the FROM clause ends without a table");
	return CF_OK;
}

/* Tokens [a, b) as one comparable string: names unquoted and lower-cased. */
static char *normalise(const shape *s, size_t a, size_t b)
{
	cf_buf out;
	cf_err rc = CF_OK;
	cf_buf_init(&out, CF_SQL_MAX_QUERY * 2, false);
	for (size_t i = a; rc == CF_OK && i < b; i++) {
		if (is_name(&s->L, i)) {
			char *name = tok_name(&s->L, i);
			if (!name) {
				rc = CF_ERR_NOMEM;
				break;
			}
			for (char *p = name; *p; p++) {
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			}
			rc = cf_buf_printf(&out, "N%s\x1f", name);
			free(name);
		} else {
			rc = cf_buf_printf(&out, "K%.*s\x1f", (int)s->L.t[i].len,
					   s->L.sql + s->L.t[i].off);
		}
	}
	if (rc == CF_OK)
		rc = cf_buf_terminate(&out);
	if (rc != CF_OK) {
		cf_buf_free(&out);
		return NULL;
	}
	size_t len;
	return (char *)cf_buf_steal(&out, &len);
}

/* A column reference at i (name, or qualifier.name); *next is the token after it. */
static bool column_ref(const shape *s, size_t i, size_t limit, colref *out, size_t *next)
{
	const lexed *L = &s->L;
	if (!is_name(L, i) || kind_is(L, i + 1, T_LP))
		return false;
	if (i + 2 < limit && kind_is(L, i + 1, T_DOT) && is_name(L, i + 2)) {
		out->q = tok_name(L, i);
		out->c = tok_name(L, i + 2);
		*next = i + 3;
		return true;
	}
	char *name = tok_name(L, i);
	if (!name)
		return false;
	/* An unqualified name is a column only if some table has one so named. */
	if (!known_column(s, name)) {
		free(name);
		return false;
	}
	out->q = strdup("");
	out->c = name;
	*next = i + 1;
	return true;
}

static void colref_free(colref *c)
{
	free(c->q);
	free(c->c);
}

static cf_err parse_group_by(shape *s)
{
	const lexed *L = &s->L;
	if (!s->group)
		return CF_OK;
	size_t i = s->group + 2, end = clause_end(s, s->group);
	if (i >= end)
		return refuse(s, CF_ERR_PARSE, "GROUP BY without terms");
	size_t cap = 1;
	for (size_t j = i; j < end; j++)
		cap += L->t[j].depth == 0 && L->t[j].kind == T_COMMA;
	s->grefs = calloc(cap, sizeof(*s->grefs));
	s->gterms = calloc(cap, sizeof(*s->gterms));
	s->gpos = calloc(cap, sizeof(*s->gpos));
	if (!s->grefs || !s->gterms || !s->gpos)
		return CF_ERR_NOMEM;
	while (i < end) {
		size_t j = i;
		while (j < end && !(L->t[j].depth == 0 && L->t[j].kind == T_COMMA))
			j++;
		if (j == i)
			return refuse(s, CF_ERR_PARSE, "an empty GROUP BY term");
		if (!(s->gterms[s->ngterms] = normalise(s, i, j)))
			return CF_ERR_NOMEM;
		s->ngterms++;
		colref c = { 0 };
		size_t after = 0;
		if (j - i == 1 && kind_is(L, i, T_NUMBER)) {
			char *e = NULL;
			long v = strtol(L->sql + L->t[i].off, &e, 10);
			if (e == L->sql + L->t[i].off + L->t[i].len && v > 0)
				s->gpos[s->ngpos++] = v;
		} else if (column_ref(s, i, j, &c, &after) && after == j) {
			if (!c.q || !c.c) {
				colref_free(&c);
				return CF_ERR_NOMEM;
			}
			s->grefs[s->ngrefs++] = c;
		} else {
			colref_free(&c);
		}
		i = j + 1;
	}
	return CF_OK;
}

static bool grouping(const shape *s, const colref *c)
{
	for (size_t i = 0; i < s->ngrefs; i++) {
		const colref *g = &s->grefs[i];
		if (sqlite3_stricmp(g->c, c->c) == 0 &&
		    (!c->q[0] || !g->q[0] || sqlite3_stricmp(g->q, c->q) == 0))
			return true;
	}
	return false;
}

static bool name_in(const lexed *L, size_t i, const char *const *names, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (word_is(L, i, names[k]))
			return true;
	}
	return false;
}

/*
 * Tokens [a, b): every column used outside an aggregate's arguments must
 * be a GROUP BY column. Aggregates that list their input are refused.
 */
static cf_err check_expr(shape *s, size_t a, size_t b, const char *where)
{
	static const char *const aggregates[] = { "count", "sum", "total", "avg" };
	static const char *const extremes[] = { "min", "max" };
	static const char *const listing[] = { "group_concat", "string_agg", "json_group_array",
						"json_group_object", "jsonb_group_array",
						"jsonb_group_object" };
	const lexed *L = &s->L;
	size_t i = a;
	if (b - a == 1 && kind_is(L, a, T_STAR))
		return refuse(s, CF_ERR_UNSUPPORTED, "SELECT * cannot be checked by the output "
			      "policy: name the columns");
	while (i < b) {
		if (is_name(L, i) && kind_is(L, i + 1, T_LP)) {
			size_t close = close_of(s, i + 1);
			if (name_in(L, i, listing, sizeof(listing) / sizeof(listing[0])))
				return refuse(s, CF_ERR_AUTH, "%.*s() lists input values; the output "
					      "policy refuses it", TOK(s, i));
			size_t commas = 0;
			for (size_t j = i + 2; j < close; j++)
				commas += L->t[j].kind == T_COMMA &&
					  L->t[j].depth == L->t[i + 1].depth + 1;
			bool agg = name_in(L, i, aggregates, 4) ||
				   (name_in(L, i, extremes, 2) && commas == 0);
			if (agg) {
				s->saw_aggregate = true;
				i = close + 1;
				if (word_is(L, i, "FILTER") && kind_is(L, i + 1, T_LP))
					i = close_of(s, i + 1) + 1;
				continue;
			}
			i += 2; /* a scalar function: its arguments are checked like the rest */
			continue;
		}
		if (is_name(L, i) && kind_is(L, i + 1, T_DOT) && kind_is(L, i + 2, T_STAR))
			return refuse(s, CF_ERR_UNSUPPORTED, "%.*s.* cannot be checked by the output "
				      "policy: name the columns", TOK(s, i));
		if (word_is(L, i, "AS")) {
			i += 2; /* an alias or a CAST's type, not a column */
			continue;
		}
		colref c = { 0 };
		size_t next = 0;
		if (column_ref(s, i, b, &c, &next)) {
			bool ok = c.q && c.c && grouping(s, &c);
			bool nomem = !c.q || !c.c;
			if (!ok && !nomem)
				refuse(s, CF_ERR_AUTH, "%s uses column %.64s%s%.64s outside an aggregate, "
				       "and it is not a GROUP BY column", where, c.q, c.q[0] ? "." : "",
				       c.c);
			colref_free(&c);
			if (nomem)
				return CF_ERR_NOMEM;
			if (!ok)
				return CF_ERR_AUTH;
			i = next;
			continue;
		}
		i++;
	}
	return CF_OK;
}

/* True if tokens [a, b) call an aggregate (count, sum, total, avg, one-argument min or max). */
static bool any_aggregate(const shape *s, size_t a, size_t b)
{
	static const char *const aggregates[] = { "count", "sum", "total", "avg", "min", "max" };
	const lexed *L = &s->L;
	for (size_t i = a; i + 1 < b; i++) {
		if (!name_in(L, i, aggregates, 6) || !kind_is(L, i + 1, T_LP))
			continue;
		size_t close = close_of(s, i + 1), commas = 0;
		for (size_t j = i + 2; j < close; j++)
			commas += L->t[j].kind == T_COMMA && L->t[j].depth == L->t[i + 1].depth + 1;
		if (commas == 0 || name_in(L, i, aggregates, 4))
			return true;
	}
	return false;
}

/* The select list: each item is a GROUP BY term, or aggregates over the group. */
static cf_err check_select(shape *s)
{
	const lexed *L = &s->L;
	size_t i = s->sel_start, end = s->from;
	long item = 0;
	if (i == end)
		return refuse(s, CF_ERR_PARSE, "the select list is empty");
	while (i < end) {
		size_t j = i;
		while (j < end && !(L->t[j].depth == 0 && L->t[j].kind == T_COMMA))
			j++;
		item++;
		if (j == i)
			return refuse(s, CF_ERR_PARSE, "an empty select item");
		size_t expr_end = j;
		size_t alias = 0;
		if (j - i >= 3 && word_is(L, j - 2, "AS") &&
		    (is_name(L, j - 1) || kind_is(L, j - 1, T_STRING))) {
			expr_end = j - 2;
			alias = j - 1;
		}
		bool ok = false;
		char *norm = normalise(s, i, expr_end);
		char *alias_norm = alias ? normalise(s, alias, alias + 1) : NULL;
		if (!norm || (alias && !alias_norm)) {
			free(norm);
			free(alias_norm);
			return CF_ERR_NOMEM;
		}
		for (size_t g = 0; g < s->ngterms && !ok; g++)
			ok = strcmp(norm, s->gterms[g]) == 0 ||
			     (alias_norm && strcmp(alias_norm, s->gterms[g]) == 0);
		for (size_t g = 0; g < s->ngpos && !ok; g++)
			ok = s->gpos[g] == item;
		free(norm);
		free(alias_norm);
		if (!ok) {
			cf_err rc = check_expr(s, i, expr_end, "the select list");
			if (rc != CF_OK)
				return rc;
		}
		i = j + 1;
	}
	return CF_OK;
}

/* --- the rewrite --- */

static cf_err splice(cf_buf *out, const char *sql, size_t *copied, size_t at, const char *text)
{
	/* Insertion points only move forward; anything else is a bug in the shape. */
	if (at < *copied)
		return CF_ERR_ARG;
	cf_err rc = cf_buf_append(out, sql + *copied, at - *copied);
	if (rc == CF_OK)
		rc = cf_buf_append_str(out, text);
	*copied = at;
	return rc;
}

static cf_err counts(const shape *s, uint64_t k, cf_buf *out)
{
	cf_err rc = CF_OK;
	for (size_t r = 0; rc == CF_OK && r < s->nrefs; r++) {
		rc = cf_buf_append_str(out, r ? " AND count(DISTINCT " : "count(DISTINCT ");
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(out, s->refs[r].alias);
		if (rc == CF_OK)
			rc = cf_buf_printf(out, ".rowid) >= %llu", (unsigned long long)k);
	}
	if (rc == CF_OK)
		rc = cf_buf_terminate(out);
	return rc;
}

static cf_err rewrite(const shape *s, uint64_t k, char **query)
{
	const lexed *L = &s->L;
	const char *sql = L->sql;
	cf_buf out, helpers, cond;
	size_t copied = 0;
	cf_err rc = CF_OK;
	cf_buf_init(&out, CF_SQL_MAX_QUERY * 2, false);
	cf_buf_init(&helpers, CF_SQL_MAX_QUERY, false);
	cf_buf_init(&cond, CF_SQL_MAX_QUERY, false);
	for (size_t r = 0; rc == CF_OK && r < s->nrefs; r++) {
		rc = cf_buf_append_str(&helpers, ", count(DISTINCT ");
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(&helpers, s->refs[r].alias);
		if (rc == CF_OK)
			rc = cf_buf_printf(&helpers, ".rowid) AS \"" CF_POLICY_HELPER_PREFIX "%zu\" ", r);
	}
	if (rc == CF_OK)
		rc = cf_buf_terminate(&helpers);
	if (rc == CF_OK)
		rc = splice(&out, sql, &copied, L->t[s->from].off, (const char *)helpers.data);
	if (rc == CF_OK && s->group && k >= 2) {
		/* Suppression inside SQLite: before ORDER BY and LIMIT see the groups. */
		if ((rc = counts(s, k, &cond)) != CF_OK)
			goto out;
		size_t last = (s->order ? s->order : s->limit ? s->limit : s->end) - 1;
		size_t at = L->t[last].off + L->t[last].len;
		if (s->having) {
			rc = splice(&out, sql, &copied, L->t[s->having + 1].off, "(");
			if (rc == CF_OK)
				rc = splice(&out, sql, &copied, at, ") AND ");
		} else {
			rc = splice(&out, sql, &copied, at, " HAVING ");
		}
		if (rc == CF_OK)
			rc = cf_buf_append_str(&out, (const char *)cond.data);
	}
	if (rc == CF_OK)
		rc = cf_buf_append_str(&out, sql + copied);
	if (rc == CF_OK)
		rc = cf_buf_terminate(&out);
	if (rc == CF_OK) {
		size_t len;
		*query = (char *)cf_buf_steal(&out, &len);
	}
out:
	cf_buf_free(&out);
	cf_buf_free(&helpers);
	cf_buf_free(&cond);
	return rc;
}

/* --- the plan --- */

void cf_policy_plan_free(cf_policy_plan *plan)
{
	if (!plan)
		return;
	free(plan->query);
	for (size_t i = 0; plan->helper_tables && i < plan->nhelpers; i++)
		free(plan->helper_tables[i]);
	free(plan->helper_tables);
	memset(plan, 0, sizeof(*plan));
}

cf_err cf_policy_plan_make(const cf_policy *policy, const char *query,
			   const cf_policy_table *tables, size_t ntables, cf_policy_plan *out,
			   char *why, size_t whylen)
{
	shape s;
	cf_err rc;
	memset(&s, 0, sizeof(s));
	if (why && whylen)
		why[0] = '\0';
	if (!out)
		return CF_ERR_ARG;
	memset(out, 0, sizeof(*out));
	if (!policy || !query || (!tables && ntables) || policy->min_group_size > CF_POLICY_MAX_K)
		return CF_ERR_ARG;
	out->k = policy->min_group_size ? policy->min_group_size : 1;
	out->allow_rows = policy->allow_rows;
	out->active = out->k >= 2 || !out->allow_rows;
	if (!out->active) {
		out->query = strdup(query);
		return out->query ? CF_OK : CF_ERR_NOMEM;
	}
	s.tables = tables;
	s.ntables = ntables;
	s.why = why;
	s.whylen = whylen;
	if ((rc = lex(query, &s.L, why, whylen)) != CF_OK)
		goto out;
	if ((rc = find_clauses(&s)) != CF_OK || (rc = parse_from(&s)) != CF_OK ||
	    (rc = parse_group_by(&s)) != CF_OK)
		goto out;
	/* Without GROUP BY only aggregates make the result one row per everything. */
	if (!s.group && !any_aggregate(&s, s.sel_start, s.from)) {
		char rules[64];
		if (out->k >= 2)
			snprintf(rules, sizeof(rules), "min_group_size %llu%s",
				 (unsigned long long)out->k, out->allow_rows ? "" : " and allow_rows false");
		else
			snprintf(rules, sizeof(rules), "allow_rows false");
		rc = refuse(&s, CF_ERR_AUTH, "the query does not aggregate: with %s the query needs "
			    "GROUP BY or aggregates (count, sum, total, avg, min, max) over all rows",
			    rules);
		goto out;
	}
	if ((rc = check_select(&s)) != CF_OK)
		goto out;
	if (s.having && (rc = check_expr(&s, s.having + 1, clause_end(&s, s.having),
					 "HAVING")) != CF_OK)
		goto out;
	if (s.order && (rc = check_expr(&s, s.order + 2, clause_end(&s, s.order),
					"ORDER BY")) != CF_OK)
		goto out;
	if (!s.group && !s.saw_aggregate) {
		rc = refuse(&s, CF_ERR_AUTH, "the query does not aggregate");
		goto out;
	}
	out->grouped = s.group != 0;
	if ((rc = rewrite(&s, out->k, &out->query)) != CF_OK)
		goto out;
	out->helper_tables = calloc(s.nrefs, sizeof(char *));
	if (!out->helper_tables) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	for (size_t r = 0; r < s.nrefs; r++) {
		out->helper_tables[r] = s.refs[r].table;
		s.refs[r].table = NULL;
		out->nhelpers++;
	}
out:
	shape_free(&s);
	if (rc != CF_OK)
		cf_policy_plan_free(out);
	return rc;
}

cf_err cf_policy_bind(cf_policy_plan *plan, sqlite3_stmt *st, char *why, size_t whylen)
{
	if (!plan || !st)
		return CF_ERR_ARG;
	int n = sqlite3_column_count(st);
	if (n <= (int)plan->nhelpers) {
		set_why(why, whylen, "the rewritten query lost its columns");
		return CF_ERR_AUTH;
	}
	int first = n - (int)plan->nhelpers;
	for (size_t j = 0; j < plan->nhelpers; j++) {
		char want[64];
		const char *name = sqlite3_column_name(st, first + (int)j);
		snprintf(want, sizeof(want), CF_POLICY_HELPER_PREFIX "%zu", j);
		if (!name || strcmp(name, want) != 0) {
			set_why(why, whylen, "the output policy's count columns are not where the "
				"rewrite put them; the query's shape is not checkable");
			return CF_ERR_AUTH;
		}
	}
	plan->visible = first;
	plan->rows = 0;
	return CF_OK;
}

cf_err cf_policy_row(cf_policy_plan *plan, sqlite3_stmt *st, bool *keep, char *why,
		     size_t whylen)
{
	if (!plan || !st || !keep)
		return CF_ERR_ARG;
	*keep = true;
	plan->rows++;
	if (!plan->active)
		return CF_OK;
	if (!plan->grouped && plan->rows > 1) {
		set_why(why, whylen, "an aggregate over all rows gave more than one row");
		return CF_ERR_AUTH;
	}
	for (size_t j = 0; j < plan->nhelpers; j++) {
		int col = plan->visible + (int)j;
		if (sqlite3_column_type(st, col) != SQLITE_INTEGER) {
			set_why(why, whylen, "the output policy's count column is not a count");
			return CF_ERR_AUTH;
		}
		sqlite3_int64 v = sqlite3_column_int64(st, col);
		if (v < 0 || (uint64_t)v < plan->k) {
			if (plan->grouped) {
				/* HAVING should have removed it: the rewrite did not hold. */
				set_why(why, whylen, "a group below min_group_size passed the rewritten "
					"query; refusing the result");
				return CF_ERR_AUTH;
			}
			*keep = false;
			return CF_OK;
		}
		if (!plan->allow_rows && v == 1) {
			set_why(why, whylen, "an output row comes from a single row of table %.64s and "
				"the policy has allow_rows false (set min_group_size to suppress such "
				"rows instead)", plan->helper_tables[j]);
			return CF_ERR_AUTH;
		}
	}
	return CF_OK;
}
