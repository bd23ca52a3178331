/*
 * fnutil: what the function kinds other than SQL (stats.c, psi.c) share.
 *
 * They read the task's tables through the fence (cf_sql_prepare and
 * cf_sql_step, so the authorizer, the limits and the task's time budget
 * hold for them as for a query), with SQL they generate themselves from
 * names the task gives: every name is checked against the table's real
 * columns first and always written quoted (cf_sql_quote_ident), so a
 * name is never SQL.
 */
#ifndef COFFER_ENCLAVE_FNUTIL_H
#define COFFER_ENCLAVE_FNUTIL_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "sql.h"

/* Longest table or column name a function member may hold (bytes). */
#define CF_FN_MAX_NAME 1024

/* A column's declared type (the CSV loader's inference: docs/tasks.md). */
typedef enum cf_fn_type {
	CF_COL_INTEGER = 1,
	CF_COL_REAL = 2,
	CF_COL_TEXT = 3,
	CF_COL_OTHER = 4,
} cf_fn_type;

typedef struct cf_fn_table {
	char *name;        /* as the task wrote it */
	char **columns;    /* the table's own names, in table order */
	cf_fn_type *types;
	size_t ncolumns;
} cf_fn_table;

/*
 * The functions (static inline below):
 *
 * cf_fn_table_load(sql, table, out, why, whylen): the columns of one of
 *   the task's tables, by preparing SELECT * on it under the fence.
 *   CF_ERR_NOT_FOUND (no such table, or a sqlite_ name), CF_ERR_AUTH (a
 *   table the fence does not allow), CF_ERR_NOMEM; why is "no table
 *   \"T\"" and so on (T from the task, never a value). cf_fn_table_free.
 * cf_fn_table_find(t, name): the index of column name (ASCII case
 *   ignored, as SQLite does), or -1.
 * cf_fn_name(v): the string of a JSON member that names a table or
 *   column: 1 to CF_FN_MAX_NAME bytes, no NUL; NULL if anything else.
 * cf_fn_value_cmp(a, b): SQLite's order of two values (as ORDER BY sorts
 *   them with the BINARY collation): NULL < numbers (INTEGER and REAL
 *   compared by value, exactly) < TEXT (bytewise, then by length) < BLOB
 *   (likewise). 0 means equal.
 * cf_fn_put_real(out, v): a REAL as SQLite 3.40 prints it ("%!.15g": 15
 *   significant digits, 3.0 not 3).
 */

/* --- implementation --- */

static inline void cf_fn_why(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static inline void cf_fn_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static inline const char *cf_fn_name(const json_t *v)
{
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > CF_FN_MAX_NAME || strlen(s) != n)
		return NULL;
	return s;
}

static inline void cf_fn_table_free(cf_fn_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->columns && i < t->ncolumns; i++)
		free(t->columns[i]);
	free(t->columns);
	free(t->types);
	free(t->name);
	memset(t, 0, sizeof(*t));
}

static inline long cf_fn_table_find(const cf_fn_table *t, const char *name)
{
	for (size_t i = 0; name && i < t->ncolumns; i++) {
		if (sqlite3_stricmp(t->columns[i], name) == 0)
			return (long)i;
	}
	return -1;
}

static inline cf_fn_type cf_fn_decl_type(const char *decl)
{
	if (!decl)
		return CF_COL_OTHER;
	if (sqlite3_stricmp(decl, "INTEGER") == 0)
		return CF_COL_INTEGER;
	if (sqlite3_stricmp(decl, "REAL") == 0)
		return CF_COL_REAL;
	if (sqlite3_stricmp(decl, "TEXT") == 0)
		return CF_COL_TEXT;
	return CF_COL_OTHER;
}

static inline cf_err cf_fn_table_load(cf_sql *sql, const char *table, cf_fn_table *out, char *why,
			size_t whylen)
{
	cf_buf q;
	sqlite3_stmt *st = NULL;
	char msg[256];
	cf_err rc;
	memset(out, 0, sizeof(*out));
	cf_buf_init(&q, CF_SQL_MAX_QUERY, false);
	if (!sql || !table || !*table)
		return CF_ERR_ARG;
	/* The schema tables are SQLite's, never an input (the loader refuses the prefix too). */
	if (sqlite3_strnicmp(table, "sqlite_", 7) == 0) {
		cf_fn_why(why, whylen, "no table \"%.64s\"", table);
		return CF_ERR_NOT_FOUND;
	}
	rc = cf_buf_append_str(&q, "SELECT * FROM \"main\".");
	if (rc == CF_OK)
		rc = cf_sql_quote_ident(&q, table);
	if (rc == CF_OK)
		rc = cf_buf_terminate(&q);
	if (rc != CF_OK)
		goto out;
	rc = cf_sql_prepare(sql, (const char *)q.data, &st, msg, sizeof(msg));
	if (rc == CF_ERR_PARSE) {
		cf_fn_why(why, whylen, "no table \"%.64s\"", table);
		rc = CF_ERR_NOT_FOUND;
		goto out;
	}
	if (rc == CF_ERR_AUTH) {
		cf_fn_why(why, whylen, "table \"%.64s\" is not one of the task's inputs", table);
		goto out;
	}
	if (rc != CF_OK) {
		cf_fn_why(why, whylen, "table \"%.64s\": %s", table, msg[0] ? msg : cf_strerror(rc));
		goto out;
	}
	int n = sqlite3_column_count(st);
	if (!(out->name = strdup(table)) || !(out->columns = calloc((size_t)n, sizeof(char *))) ||
	    !(out->types = calloc((size_t)n, sizeof(cf_fn_type)))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		if (!name || !(out->columns[i] = strdup(name))) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
		out->ncolumns++;
		out->types[i] = cf_fn_decl_type(sqlite3_column_decltype(st, i));
	}
out:
	if (rc != CF_OK)
		cf_fn_table_free(out);
	sqlite3_finalize(st);
	cf_buf_free(&q);
	return rc;
}

/* An INTEGER against a REAL, exactly (as SQLite's sqlite3IntFloatCompare). */
static inline int cf_fn_int_real_cmp(sqlite3_int64 i, double r)
{
	if (r != r)
		return 1; /* NaN: never stored by the loader; keep a total order */
	if (r < -9223372036854775808.0)
		return 1;
	if (r >= 9223372036854775808.0)
		return -1;
	sqlite3_int64 y = (sqlite3_int64)r;
	if (i < y)
		return -1;
	if (i > y)
		return 1;
	/* i == trunc(r), which a double holds exactly in this range. */
	double d = (double)y;
	return d < r ? -1 : d > r ? 1 : 0;
}

static inline int cf_fn_class_of(int type)
{
	switch (type) {
	case SQLITE_NULL: return 0;
	case SQLITE_INTEGER:
	case SQLITE_FLOAT: return 1;
	case SQLITE_TEXT: return 2;
	default: return 3;
	}
}

static inline int cf_fn_bytes_cmp(const void *a, int na, const void *b, int nb)
{
	int n = na < nb ? na : nb;
	int c = n > 0 ? memcmp(a, b, (size_t)n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return na < nb ? -1 : na > nb ? 1 : 0;
}

static inline int cf_fn_value_cmp(sqlite3_value *a, sqlite3_value *b)
{
	int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
	int ca = cf_fn_class_of(ta), cb = cf_fn_class_of(tb);
	if (ca != cb)
		return ca < cb ? -1 : 1;
	switch (ca) {
	case 0:
		return 0;
	case 1:
		if (ta == SQLITE_INTEGER && tb == SQLITE_INTEGER) {
			sqlite3_int64 x = sqlite3_value_int64(a), y = sqlite3_value_int64(b);
			return x < y ? -1 : x > y ? 1 : 0;
		}
		if (ta == SQLITE_FLOAT && tb == SQLITE_FLOAT) {
			double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
			return x < y ? -1 : x > y ? 1 : 0;
		}
		if (ta == SQLITE_INTEGER)
			return cf_fn_int_real_cmp(sqlite3_value_int64(a), sqlite3_value_double(b));
		return -cf_fn_int_real_cmp(sqlite3_value_int64(b), sqlite3_value_double(a));
	case 2: {
		const unsigned char *x = sqlite3_value_text(a), *y = sqlite3_value_text(b);
		return cf_fn_bytes_cmp(x, sqlite3_value_bytes(a), y, sqlite3_value_bytes(b));
	}
	default: {
		const void *x = sqlite3_value_blob(a), *y = sqlite3_value_blob(b);
		return cf_fn_bytes_cmp(x, sqlite3_value_bytes(a), y, sqlite3_value_bytes(b));
	}
	}
}

static inline cf_err cf_fn_put_real(cf_buf *out, double v)
{
	char tmp[64];
	sqlite3_snprintf((int)sizeof(tmp), tmp, "%!.15g", v);
	return cf_buf_append_str(out, tmp);
}

#endif
