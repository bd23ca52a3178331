#define CF_LOG_MODULE "psi"

#include "psi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnutil.h"
#include "output.h"

static cf_err fail(char *why, size_t whylen, cf_err rc, const char *fmt, ...) CF_PRINTF(4, 5);
static cf_err fail(char *why, size_t whylen, cf_err rc, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

typedef struct psi_key {
	const char *table;
	const char *column;
} psi_key;

/* An output name as the task parser takes it (cf_job_valid_output_name). */
static bool valid_output_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 64 || s[0] == '-' || s[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int key_order(const void *a, const void *b)
{
	return strcmp(((const psi_key *)a)->table, ((const psi_key *)b)->table);
}

/* The function's members, checked; keys sorted by table name (bytewise). */
static cf_err parse(const json_t *fn, psi_key *keys, size_t *nkeys, char *why, size_t whylen)
{
	const char *name;
	json_t *v;
	*nkeys = 0;
	if (!json_is_object(fn))
		return fail(why, whylen, CF_ERR_PARSE, "function: not an object");
	json_object_foreach((json_t *)fn, name, v) {
		if (strcmp(name, "kind") != 0 && strcmp(name, "keys") != 0 &&
		    strcmp(name, "outputs") != 0)
			return fail(why, whylen, CF_ERR_PARSE,
				    "function: unknown member \"%.64s\" (psi takes kind, keys, outputs)",
				    name);
	}
	const json_t *kind = json_object_get(fn, "kind");
	if (!json_is_string(kind) || strcmp(json_string_value(kind), "psi") != 0)
		return fail(why, whylen, CF_ERR_PARSE, "function.kind: not \"psi\"");
	const json_t *k = json_object_get(fn, "keys");
	if (!json_is_object(k) || json_object_size(k) < 2 ||
	    json_object_size(k) > CF_PSI_MAX_TABLES)
		return fail(why, whylen, CF_ERR_PARSE,
			    "function.keys: an object of 2 to %d tables, each to its key column",
			    CF_PSI_MAX_TABLES);
	json_object_foreach((json_t *)k, name, v) {
		const char *col = cf_fn_name(v);
		if (!*name || strlen(name) > CF_FN_MAX_NAME)
			return fail(why, whylen, CF_ERR_PARSE, "function.keys: a bad table name");
		if (!col)
			return fail(why, whylen, CF_ERR_PARSE,
				    "function.keys.%.64s: not a column name (a string of 1 to %d bytes)",
				    name, CF_FN_MAX_NAME);
		for (size_t i = 0; i < *nkeys; i++) {
			if (sqlite3_stricmp(keys[i].table, name) == 0)
				return fail(why, whylen, CF_ERR_PARSE,
					    "function.keys: table \"%.64s\" twice (names differing only "
					    "in case are one table)", name);
		}
		keys[*nkeys].table = name;
		keys[*nkeys].column = col;
		(*nkeys)++;
	}
	qsort(keys, *nkeys, sizeof(*keys), key_order);
	const json_t *o = json_object_get(fn, "outputs");
	if (!json_is_object(o) || json_object_size(o) < 1 ||
	    json_object_size(o) > CF_PSI_MAX_OUTPUTS)
		return fail(why, whylen, CF_ERR_PARSE,
			    "function.outputs: an object of 1 to %d outputs, each to \"count\" or "
			    "\"ids\"", CF_PSI_MAX_OUTPUTS);
	json_object_foreach((json_t *)o, name, v) {
		if (!valid_output_name(name))
			return fail(why, whylen, CF_ERR_PARSE, "function.outputs: a bad output name");
		if (!json_is_string(v) || (strcmp(json_string_value(v), "count") != 0 &&
					   strcmp(json_string_value(v), "ids") != 0))
			return fail(why, whylen, CF_ERR_PARSE,
				    "function.outputs.%s: not \"count\" or \"ids\"", name);
	}
	return CF_OK;
}

cf_err cf_psi_check(const json_t *function, char *why, size_t whylen)
{
	psi_key keys[CF_PSI_MAX_TABLES];
	size_t n;
	if (why && whylen)
		why[0] = '\0';
	return parse(function, keys, &n, why, whylen);
}

cf_err cf_psi_output_form(const json_t *function, const char *output_name, cf_psi_form *form,
			  char *why, size_t whylen)
{
	psi_key keys[CF_PSI_MAX_TABLES];
	size_t n;
	if (why && whylen)
		why[0] = '\0';
	if (!output_name || !form)
		return CF_ERR_ARG;
	cf_err rc = parse(function, keys, &n, why, whylen);
	if (rc != CF_OK)
		return rc;
	const json_t *v = json_object_get(json_object_get(function, "outputs"), output_name);
	if (!v)
		return fail(why, whylen, CF_ERR_NOT_FOUND,
			    "function.outputs grants nothing to output %.64s", output_name);
	*form = strcmp(json_string_value(v), "ids") == 0 ? CF_PSI_IDS : CF_PSI_COUNT;
	return CF_OK;
}

/* Steps statement i; *more false once it has no row left. */
static cf_err advance(cf_sql *sql, sqlite3_stmt *st, bool *more, char *msg, size_t msglen)
{
	return cf_sql_step(sql, st, more, msg, msglen);
}

cf_err cf_psi_run(cf_sql *sql, const json_t *function, const char *output_name,
		  const cf_policy *policy, cf_buf *csv, char *why, size_t whylen)
{
	psi_key keys[CF_PSI_MAX_TABLES];
	sqlite3_stmt *st[CF_PSI_MAX_TABLES] = { 0 };
	sqlite3_value *cand = NULL;
	size_t n = 0;
	uint64_t count = 0;
	cf_psi_form form;
	char msg[320];
	cf_buf q;
	cf_err rc;
	if (why && whylen)
		why[0] = '\0';
	cf_buf_init(&q, CF_SQL_MAX_QUERY, false);
	if (!sql || !function || !output_name || !csv || !csv->secret)
		return CF_ERR_ARG;
	if ((rc = cf_psi_output_form(function, output_name, &form, msg, sizeof(msg))) != CF_OK ||
	    (rc = parse(function, keys, &n, msg, sizeof(msg))) != CF_OK)
		return fail(why, whylen, rc, "output %s: %s", output_name, msg);
	uint64_t k = policy ? policy->min_group_size : 1;
	bool allow_rows = policy ? policy->allow_rows : true;
	if (form == CF_PSI_IDS && (k >= 2 || !allow_rows))
		return fail(why, whylen, CF_ERR_AUTH,
			    "output %s: psi \"ids\" lists input rows, which the output policy "
			    "forbids (%s)", output_name,
			    !allow_rows ? "allow_rows false" : "min_group_size >= 2");

	for (size_t i = 0; i < n; i++) {
		cf_fn_table t;
		if ((rc = cf_fn_table_load(sql, keys[i].table, &t, msg, sizeof(msg))) != CF_OK) {
			fail(why, whylen, rc, "output %s: function.keys: %s", output_name, msg);
			goto out;
		}
		long c = cf_fn_table_find(&t, keys[i].column);
		cf_fn_table_free(&t);
		if (c < 0) {
			rc = fail(why, whylen, CF_ERR_NOT_FOUND,
				  "output %s: function.keys: table \"%.64s\" has no column \"%.64s\"",
				  output_name, keys[i].table, keys[i].column);
			goto out;
		}
		cf_buf_reset(&q);
		rc = cf_buf_append_str(&q, "SELECT DISTINCT ");
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(&q, keys[i].column);
		if (rc == CF_OK)
			rc = cf_buf_append_str(&q, " FROM \"main\".");
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(&q, keys[i].table);
		if (rc == CF_OK)
			rc = cf_buf_append_str(&q, " WHERE ");
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(&q, keys[i].column);
		if (rc == CF_OK)
			rc = cf_buf_append_str(&q, " IS NOT NULL ORDER BY 1");
		if (rc == CF_OK)
			rc = cf_buf_terminate(&q);
		if (rc != CF_OK) {
			fail(why, whylen, rc, "output %s: %s", output_name, cf_strerror(rc));
			goto out;
		}
		if ((rc = cf_sql_prepare(sql, (const char *)q.data, &st[i], msg, sizeof(msg))) !=
		    CF_OK) {
			fail(why, whylen, rc, "output %s: %s", output_name, msg);
			goto out;
		}
	}

	/*
	 * Sort-merge of n sorted distinct streams: move every stream up to the
	 * largest head; when all heads are equal that value is in every table.
	 */
	if (form == CF_PSI_IDS && (rc = cf_buf_append(csv, "id\r\n", 4)) != CF_OK)
		goto nomem;
	bool more = true;
	for (size_t i = 0; more && i < n; i++) {
		if ((rc = advance(sql, st[i], &more, msg, sizeof(msg))) != CF_OK)
			goto step_failed;
	}
	while (more) {
		size_t top = 0;
		for (size_t i = 1; i < n; i++) {
			if (cf_fn_value_cmp(sqlite3_column_value(st[i], 0),
					    sqlite3_column_value(st[top], 0)) > 0)
				top = i;
		}
		sqlite3_value_free(cand);
		if (!(cand = sqlite3_value_dup(sqlite3_column_value(st[top], 0)))) {
			rc = CF_ERR_NOMEM;
			goto nomem;
		}
		bool all = true;
		for (size_t i = 0; more && i < n; i++) {
			int c = 0;
			while (more && (c = cf_fn_value_cmp(sqlite3_column_value(st[i], 0), cand)) < 0) {
				if ((rc = advance(sql, st[i], &more, msg, sizeof(msg))) != CF_OK)
					goto step_failed;
			}
			if (more && c > 0)
				all = false; /* a new largest head: start the round again */
		}
		if (!more || !all)
			continue;
		count++;
		if (form == CF_PSI_IDS && (rc = cf_output_csv_row(csv, st[0], 1)) != CF_OK)
			goto nomem;
		for (size_t i = 0; more && i < n; i++) {
			if ((rc = advance(sql, st[i], &more, msg, sizeof(msg))) != CF_OK)
				goto step_failed;
		}
	}

	if (form == CF_PSI_COUNT) {
		/* As for a query: suppression below k first, then allow_rows. */
		if (!allow_rows && count == 1 && k < 2) {
			rc = fail(why, whylen, CF_ERR_AUTH,
				  "output %s: the intersection has a single key, and the output "
				  "policy (allow_rows false) refuses a result from one input row",
				  output_name);
			goto out;
		}
		if (k >= 2 && count < k)
			rc = cf_buf_append(csv, "count\r\n", 7); /* suppressed: below k */
		else
			rc = cf_buf_printf(csv, "count\r\n%llu\r\n", (unsigned long long)count);
		if (rc != CF_OK)
			goto nomem;
	}
	rc = CF_OK;
	goto out;
step_failed:
	fail(why, whylen, rc, "output %s: %s", output_name, msg);
	goto out;
nomem:
	fail(why, whylen, rc, "output %s: %s", output_name,
	     rc == CF_ERR_TOO_BIG ? "the output is larger than its limit" : cf_strerror(rc));
out:
	sqlite3_value_free(cand);
	for (size_t i = 0; i < n; i++)
		sqlite3_finalize(st[i]);
	cf_buf_free(&q);
	if (rc != CF_OK)
		cf_buf_reset(csv);
	return rc;
}
