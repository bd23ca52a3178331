#define CF_LOG_MODULE "stats"

#include "stats.h"

#include <math.h>
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

static const char *const fixed_header[] = {
	"column", "kind", "count", "mean", "variance", "min", "max", "lo", "hi",
};

typedef struct spec {
	const char *table;
	const char *columns[CF_STATS_MAX_COLUMNS];
	size_t ncolumns; /* 0: every numeric column */
	const char *group[CF_STATS_MAX_GROUP_BY];
	size_t ngroup;
	double q[CF_STATS_MAX_QUANTILES];
	char qname[CF_STATS_MAX_QUANTILES][40];
	size_t nq;
	unsigned bins; /* 0: no histogram */
} spec;

static cf_err names(const json_t *a, const char *member, size_t lo, size_t hi, const char **out,
		    size_t *n, char *why, size_t whylen)
{
	if (!json_is_array(a) || json_array_size(a) < lo || json_array_size(a) > hi)
		return fail(why, whylen, CF_ERR_PARSE, "function.%s: an array of %zu to %zu column "
			    "names", member, lo, hi);
	*n = 0;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = cf_fn_name(json_array_get(a, i));
		if (!s)
			return fail(why, whylen, CF_ERR_PARSE, "function.%s[%zu]: not a column name "
				    "(a string of 1 to %d bytes)", member, i, CF_FN_MAX_NAME);
		for (size_t j = 0; j < *n; j++) {
			if (sqlite3_stricmp(out[j], s) == 0)
				return fail(why, whylen, CF_ERR_PARSE, "function.%s: \"%.64s\" twice",
					    member, s);
		}
		out[(*n)++] = s;
	}
	return CF_OK;
}

static cf_err parse(const json_t *fn, spec *sp, char *why, size_t whylen)
{
	const char *key;
	json_t *v;
	cf_err rc;
	memset(sp, 0, sizeof(*sp));
	if (!json_is_object(fn))
		return fail(why, whylen, CF_ERR_PARSE, "function: not an object");
	json_object_foreach((json_t *)fn, key, v) {
		if (strcmp(key, "kind") && strcmp(key, "table") && strcmp(key, "columns") &&
		    strcmp(key, "group_by") && strcmp(key, "quantiles") && strcmp(key, "histogram"))
			return fail(why, whylen, CF_ERR_PARSE,
				    "function: unknown member \"%.64s\" (stats takes kind, table, "
				    "columns, group_by, quantiles, histogram)", key);
	}
	const json_t *kind = json_object_get(fn, "kind");
	if (!json_is_string(kind) || strcmp(json_string_value(kind), "stats") != 0)
		return fail(why, whylen, CF_ERR_PARSE, "function.kind: not \"stats\"");
	if (!(sp->table = cf_fn_name(json_object_get(fn, "table"))))
		return fail(why, whylen, CF_ERR_PARSE, "function.table: missing or not a table name");
	if ((v = json_object_get(fn, "columns")) &&
	    (rc = names(v, "columns", 1, CF_STATS_MAX_COLUMNS, sp->columns, &sp->ncolumns, why,
			whylen)) != CF_OK)
		return rc;
	if ((v = json_object_get(fn, "group_by")) &&
	    (rc = names(v, "group_by", 1, CF_STATS_MAX_GROUP_BY, sp->group, &sp->ngroup, why,
			whylen)) != CF_OK)
		return rc;
	if ((v = json_object_get(fn, "quantiles"))) {
		if (!json_is_array(v) || json_array_size(v) < 1 ||
		    json_array_size(v) > CF_STATS_MAX_QUANTILES)
			return fail(why, whylen, CF_ERR_PARSE, "function.quantiles: an array of 1 to "
				    "%d numbers in [0, 1]", CF_STATS_MAX_QUANTILES);
		for (size_t i = 0; i < json_array_size(v); i++) {
			const json_t *x = json_array_get(v, i);
			double q = json_is_number(x) ? json_number_value(x) : -1;
			if (!(q >= 0 && q <= 1))
				return fail(why, whylen, CF_ERR_PARSE,
					    "function.quantiles[%zu]: not a number in [0, 1]", i);
			snprintf(sp->qname[i], sizeof(sp->qname[i]), "q%.15g", q);
			for (size_t j = 0; j < i; j++) {
				if (strcmp(sp->qname[j], sp->qname[i]) == 0)
					return fail(why, whylen, CF_ERR_PARSE,
						    "function.quantiles: %s twice", sp->qname[i] + 1);
			}
			sp->q[i] = q;
			sp->nq++;
		}
	}
	if ((v = json_object_get(fn, "histogram"))) {
		const json_t *b = json_object_get(v, "bins");
		if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_integer(b) ||
		    json_integer_value(b) < 1 || json_integer_value(b) > CF_STATS_MAX_BINS)
			return fail(why, whylen, CF_ERR_PARSE, "function.histogram: {\"bins\": N} "
				    "with N from 1 to %d, and no other member", CF_STATS_MAX_BINS);
		sp->bins = (unsigned)json_integer_value(b);
	}
	return CF_OK;
}

cf_err cf_stats_check(const json_t *function, char *why, size_t whylen)
{
	spec *sp = malloc(sizeof(*sp));
	if (why && whylen)
		why[0] = '\0';
	if (!sp)
		return CF_ERR_NOMEM;
	cf_err rc = parse(function, sp, why, whylen);
	free(sp);
	return rc;
}

/* One statistics column's values in the current group. */
typedef struct acc {
	const char *name; /* the table's own name (printed in the output only) */
	const char *label; /* for messages: the task's spelling, or NULL (a file's name is data) */
	size_t index;     /* in the table, from 1 */
	bool integer;
	double *v;
	size_t n, cap;
	sqlite3_int64 imin, imax;
} acc;

static cf_err acc_push(acc *a, double x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 256;
		if (cap > ((size_t)1 << 40) / sizeof(double))
			return CF_ERR_NOMEM;
		/* SQLite's heap: under its cap, and wiped when freed or moved. */
		double *p = sqlite3_realloc64(a->v, cap * sizeof(double));
		if (!p)
			return CF_ERR_NOMEM;
		a->v = p;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return CF_OK;
}

static double dabs(double x)
{
	return x < 0 ? -x : x;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

typedef struct run {
	const spec *sp;
	cf_buf *csv;
	cf_buf prefix; /* the group's values, formatted, then a comma (empty without group_by) */
	uint64_t k;
	bool allow_rows;
	double *edges;     /* bins + 1 */
	uint64_t *counts;  /* bins */
	double *mlo, *mhi; /* merged bins */
	uint64_t *mcount;
} run;

static cf_err put_empty(cf_buf *out, size_t n)
{
	cf_err rc = CF_OK;
	for (size_t i = 0; rc == CF_OK && i < n; i++)
		rc = cf_buf_append_byte(out, ',');
	return rc;
}

static cf_err row_start(run *r, const acc *a, const char *kind)
{
	cf_err rc = cf_buf_append(r->csv, r->prefix.data, r->prefix.len);
	if (rc == CF_OK)
		rc = cf_output_csv_field(r->csv, (const uint8_t *)a->name, strlen(a->name));
	if (rc == CF_OK)
		rc = cf_buf_printf(r->csv, ",%s,", kind);
	return rc;
}

/* How a message names a column: never by a name that came only from a file. */
static void col_label(const acc *a, char *out, size_t outlen)
{
	if (a->label)
		snprintf(out, outlen, "column \"%.64s\"", a->label);
	else
		snprintf(out, outlen, "column %zu of the table", a->index);
}

static cf_err put_bound(cf_buf *out, const acc *a, double x, sqlite3_int64 i)
{
	return a->integer ? cf_buf_printf(out, "%lld", (long long)i) : cf_fn_put_real(out, x);
}

/* The summary row and bins of one column of the group just read. */
static cf_err flush_column(run *r, acc *a, char *why, size_t whylen)
{
	const spec *sp = r->sp;
	size_t n = a->n;
	cf_err rc;
	if (r->k >= 2 && n < r->k)
		return CF_OK; /* suppressed, with its bins */
	char label[96];
	col_label(a, label, sizeof(label));
	if (!r->allow_rows && n == 1)
		return fail(why, whylen, CF_ERR_AUTH, "%s has a group with a single value, and the "
			    "output policy (allow_rows false) refuses a result from one input row",
			    label);
	if ((rc = row_start(r, a, "summary")) != CF_OK)
		return rc;
	if (n == 0) {
		rc = cf_buf_append_byte(r->csv, '0');
		if (rc == CF_OK)
			rc = put_empty(r->csv, 4 + sp->nq + (sp->bins ? 2 : 0));
		return rc == CF_OK ? cf_buf_append(r->csv, "\r\n", 2) : rc;
	}
	qsort(a->v, n, sizeof(double), dcmp);
	/* Neumaier's compensated sum, then the two-pass variance. */
	double sum = 0, comp = 0;
	for (size_t i = 0; i < n; i++) {
		double t = sum + a->v[i];
		comp += dabs(sum) >= dabs(a->v[i]) ? (sum - t) + a->v[i] : (a->v[i] - t) + sum;
		sum = t;
	}
	double mean = (sum + comp) / (double)n;
	rc = cf_buf_printf(r->csv, "%zu,", n);
	if (rc == CF_OK)
		rc = cf_fn_put_real(r->csv, mean);
	if (rc == CF_OK)
		rc = cf_buf_append_byte(r->csv, ',');
	if (rc == CF_OK && n >= 2) {
		double ss = 0;
		for (size_t i = 0; i < n; i++)
			ss += (a->v[i] - mean) * (a->v[i] - mean);
		rc = cf_fn_put_real(r->csv, ss / (double)(n - 1));
	}
	if (rc == CF_OK)
		rc = cf_buf_append_byte(r->csv, ',');
	if (rc == CF_OK)
		rc = put_bound(r->csv, a, a->v[0], a->imin);
	if (rc == CF_OK)
		rc = cf_buf_append_byte(r->csv, ',');
	if (rc == CF_OK)
		rc = put_bound(r->csv, a, a->v[n - 1], a->imax);
	for (size_t j = 0; rc == CF_OK && j < sp->nq; j++) {
		double h = (double)(n - 1) * sp->q[j];
		size_t lo = (size_t)h;
		double x = lo >= n - 1 ? a->v[n - 1]
				       : a->v[lo] + (h - (double)lo) * (a->v[lo + 1] - a->v[lo]);
		rc = cf_buf_append_byte(r->csv, ',');
		if (rc == CF_OK)
			rc = cf_fn_put_real(r->csv, x);
	}
	if (rc == CF_OK && sp->bins)
		rc = put_empty(r->csv, 2);
	if (rc == CF_OK)
		rc = cf_buf_append(r->csv, "\r\n", 2);
	if (rc != CF_OK || !sp->bins)
		return rc;

	/* The histogram over [min, max]. */
	unsigned nb = sp->bins;
	double mn = a->v[0], mx = a->v[n - 1], span = mx - mn;
	for (unsigned i = 0; i <= nb; i++) {
		double f = (double)i / (double)nb;
		double e = i == nb ? mx : isfinite(span) ? mn + span * f : mn * (1 - f) + mx * f;
		if (i && e < r->edges[i - 1])
			e = r->edges[i - 1];
		if (e > mx)
			e = mx;
		r->edges[i] = e;
	}
	memset(r->counts, 0, nb * sizeof(*r->counts));
	unsigned b = 0;
	for (size_t i = 0; i < n; i++) {
		while (b + 1 < nb && a->v[i] >= r->edges[b + 1])
			b++;
		r->counts[b]++;
	}
	size_t m = 0;
	if (r->k >= 2) {
		uint64_t run_count = 0;
		unsigned start = 0;
		for (unsigned i = 0; i < nb; i++) {
			run_count += r->counts[i];
			if (run_count >= r->k) {
				r->mlo[m] = r->edges[start];
				r->mhi[m] = r->edges[i + 1];
				r->mcount[m++] = run_count;
				run_count = 0;
				start = i + 1;
			}
		}
		/* n >= k, so there is a bin to take the remainder and the rest of the range. */
		if (m > 0) {
			r->mhi[m - 1] = r->edges[nb];
			r->mcount[m - 1] += run_count;
		}
	} else {
		for (unsigned i = 0; i < nb; i++) {
			r->mlo[m] = r->edges[i];
			r->mhi[m] = r->edges[i + 1];
			r->mcount[m++] = r->counts[i];
		}
	}
	for (size_t i = 0; rc == CF_OK && i < m; i++) {
		if (!r->allow_rows && r->mcount[i] == 1)
			return fail(why, whylen, CF_ERR_AUTH, "%s has a histogram bin with a single "
				    "value, and the output policy (allow_rows false) refuses a result "
				    "from one input row", label);
		rc = row_start(r, a, "bin");
		if (rc == CF_OK)
			rc = cf_buf_printf(r->csv, "%llu", (unsigned long long)r->mcount[i]);
		if (rc == CF_OK)
			rc = put_empty(r->csv, 5 + sp->nq);
		if (rc == CF_OK)
			rc = cf_fn_put_real(r->csv, r->mlo[i]);
		if (rc == CF_OK)
			rc = cf_buf_append_byte(r->csv, ',');
		if (rc == CF_OK)
			rc = cf_fn_put_real(r->csv, r->mhi[i]);
		if (rc == CF_OK)
			rc = cf_buf_append(r->csv, "\r\n", 2);
	}
	return rc;
}

static cf_err flush_group(run *r, acc *accs, size_t p, char *why, size_t whylen)
{
	cf_err rc = CF_OK;
	for (size_t j = 0; rc == CF_OK && j < p; j++) {
		rc = flush_column(r, &accs[j], why, whylen);
		accs[j].n = 0;
	}
	return rc;
}

static bool is_reserved(const spec *sp, const char *name)
{
	for (size_t i = 0; i < sizeof(fixed_header) / sizeof(fixed_header[0]); i++) {
		if (sqlite3_stricmp(fixed_header[i], name) == 0)
			return true;
	}
	for (size_t i = 0; i < sp->nq; i++) {
		if (sqlite3_stricmp(sp->qname[i], name) == 0)
			return true;
	}
	return false;
}

cf_err cf_stats_run(cf_sql *sql, const json_t *function, const char *output_name,
		    const cf_policy *policy, cf_buf *csv, char *why, size_t whylen)
{
	spec *sp = NULL;
	cf_fn_table t = { 0 };
	acc *accs = NULL;
	long *gidx = NULL;
	sqlite3_value **gv = NULL;
	sqlite3_stmt *st = NULL;
	size_t p = 0, m = 0;
	bool have_group = false;
	char msg[320];
	cf_buf q;
	run r;
	cf_err rc;
	const char *pre = output_name ? "output " : "";
	const char *name = output_name ? output_name : "";
	const char *sep = output_name ? ": " : "";
	if (why && whylen)
		why[0] = '\0';
	memset(&r, 0, sizeof(r));
	cf_buf_init(&q, CF_SQL_MAX_QUERY, false);
	cf_buf_init(&r.prefix, CF_SQL_MAX_LENGTH, true);
	msg[0] = '\0';
	if (!sql || !function || !csv || !csv->secret)
		return CF_ERR_ARG;
	if (!(sp = malloc(sizeof(*sp)))) {
		rc = CF_ERR_NOMEM;
		goto failed;
	}
	if ((rc = parse(function, sp, msg, sizeof(msg))) != CF_OK)
		goto failed;
	{
		char tmp[256];
		if ((rc = cf_fn_table_load(sql, sp->table, &t, tmp, sizeof(tmp))) != CF_OK) {
			fail(msg, sizeof(msg), rc, "function.table: %s", tmp);
			goto failed;
		}
	}
	m = sp->ngroup;
	if (!(gidx = calloc(m + 1, sizeof(*gidx))) || !(gv = calloc(m + 1, sizeof(*gv)))) {
		rc = CF_ERR_NOMEM;
		goto failed;
	}
	for (size_t i = 0; i < m; i++) {
		if ((gidx[i] = cf_fn_table_find(&t, sp->group[i])) < 0) {
			rc = fail(msg, sizeof(msg), CF_ERR_NOT_FOUND,
				  "function.group_by: table \"%.64s\" has no column \"%.64s\"",
				  sp->table, sp->group[i]);
			goto failed;
		}
		if (is_reserved(sp, t.columns[gidx[i]])) {
			rc = fail(msg, sizeof(msg), CF_ERR_PARSE,
				  "function.group_by: column \"%.64s\" has the name of a statistics "
				  "column of the output", sp->group[i]);
			goto failed;
		}
	}
	/* The statistics columns: those asked for, each numeric, or every numeric one. */
	size_t want = sp->ncolumns ? sp->ncolumns : t.ncolumns;
	if (!(accs = calloc(want ? want : 1, sizeof(*accs)))) {
		rc = CF_ERR_NOMEM;
		goto failed;
	}
	for (size_t i = 0; i < want; i++) {
		long c;
		if (sp->ncolumns) {
			if ((c = cf_fn_table_find(&t, sp->columns[i])) < 0) {
				rc = fail(msg, sizeof(msg), CF_ERR_NOT_FOUND,
					  "function.columns: table \"%.64s\" has no column \"%.64s\"",
					  sp->table, sp->columns[i]);
				goto failed;
			}
			if (t.types[c] != CF_COL_INTEGER && t.types[c] != CF_COL_REAL) {
				rc = fail(msg, sizeof(msg), CF_ERR_PARSE,
					  "function.columns: column \"%.64s\" is not numeric (its values "
					  "are not all integers or decimals)", sp->columns[i]);
				goto failed;
			}
		} else {
			c = (long)i;
			bool grouped = false;
			for (size_t g = 0; g < m; g++)
				grouped = grouped || gidx[g] == c;
			if (grouped || (t.types[c] != CF_COL_INTEGER && t.types[c] != CF_COL_REAL))
				continue;
		}
		accs[p].name = t.columns[c];
		accs[p].label = sp->ncolumns ? sp->columns[i] : NULL;
		accs[p].index = (size_t)c + 1;
		accs[p].integer = t.types[c] == CF_COL_INTEGER;
		p++;
	}
	if (p == 0) {
		rc = fail(msg, sizeof(msg), CF_ERR_NOT_FOUND,
			  "function.columns: table \"%.64s\" has no numeric column to describe",
			  sp->table);
		goto failed;
	}
	if (sp->bins) {
		r.edges = calloc(sp->bins + 1, sizeof(double));
		r.counts = calloc(sp->bins, sizeof(uint64_t));
		r.mlo = calloc(sp->bins, sizeof(double));
		r.mhi = calloc(sp->bins, sizeof(double));
		r.mcount = calloc(sp->bins, sizeof(uint64_t));
		if (!r.edges || !r.counts || !r.mlo || !r.mhi || !r.mcount) {
			rc = CF_ERR_NOMEM;
			goto failed;
		}
	}

	/* SELECT g..., c... FROM "main"."T" ORDER BY 1..m: every name the table's own, quoted. */
	rc = cf_buf_append_str(&q, "SELECT ");
	for (size_t i = 0; rc == CF_OK && i < m + p; i++) {
		if (i)
			rc = cf_buf_append_byte(&q, ',');
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(&q, i < m ? t.columns[gidx[i]] : accs[i - m].name);
	}
	if (rc == CF_OK)
		rc = cf_buf_append_str(&q, " FROM \"main\".");
	if (rc == CF_OK)
		rc = cf_sql_quote_ident(&q, sp->table);
	for (size_t i = 0; rc == CF_OK && i < m; i++)
		rc = cf_buf_printf(&q, "%s%zu", i ? "," : " ORDER BY ", i + 1);
	if (rc == CF_OK)
		rc = cf_buf_terminate(&q);
	if (rc != CF_OK) {
		fail(msg, sizeof(msg), rc, "%s", rc == CF_ERR_TOO_BIG ? "too many columns to describe"
								  : cf_strerror(rc));
		goto failed;
	}
	if ((rc = cf_sql_prepare(sql, (const char *)q.data, &st, msg, sizeof(msg))) != CF_OK)
		goto failed;

	/* The header. */
	for (size_t i = 0; rc == CF_OK && i < m; i++) {
		const char *g = t.columns[gidx[i]];
		rc = cf_output_csv_field(csv, (const uint8_t *)g, strlen(g));
		if (rc == CF_OK)
			rc = cf_buf_append_byte(csv, ',');
	}
	if (rc == CF_OK)
		rc = cf_buf_append_str(csv, "column,kind,count,mean,variance,min,max");
	for (size_t i = 0; rc == CF_OK && i < sp->nq; i++)
		rc = cf_buf_printf(csv, ",%s", sp->qname[i]);
	if (rc == CF_OK)
		rc = cf_buf_append_str(csv, sp->bins ? ",lo,hi\r\n" : "\r\n");
	if (rc != CF_OK)
		goto too_big;

	r.sp = sp;
	r.csv = csv;
	r.k = policy ? policy->min_group_size : 1;
	r.allow_rows = policy ? policy->allow_rows : true;
	for (;;) {
		bool row;
		if ((rc = cf_sql_step(sql, st, &row, msg, sizeof(msg))) != CF_OK)
			goto failed;
		if (!row)
			break;
		bool same = have_group;
		for (size_t i = 0; same && i < m; i++)
			same = cf_fn_value_cmp(gv[i], sqlite3_column_value(st, (int)i)) == 0;
		if (!same) {
			if (have_group && (rc = flush_group(&r, accs, p, msg, sizeof(msg))) != CF_OK)
				goto flush_failed;
			have_group = true;
			for (size_t i = 0; i < m; i++) {
				sqlite3_value_free(gv[i]);
				if (!(gv[i] = sqlite3_value_dup(sqlite3_column_value(st, (int)i)))) {
					rc = CF_ERR_NOMEM;
					goto failed;
				}
			}
			cf_buf_reset(&r.prefix);
			if (m) {
				/* The group's values as every output formats them, CRLF dropped. */
				if ((rc = cf_output_csv_row(&r.prefix, st, (int)m)) != CF_OK)
					goto too_big;
				r.prefix.len -= 2;
				if ((rc = cf_buf_append_byte(&r.prefix, ',')) != CF_OK)
					goto too_big;
			}
		}
		for (size_t j = 0; j < p; j++) {
			int col = (int)(m + j);
			acc *a = &accs[j];
			switch (sqlite3_column_type(st, col)) {
			case SQLITE_NULL:
				continue;
			case SQLITE_INTEGER: {
				sqlite3_int64 x = sqlite3_column_int64(st, col);
				if (a->n == 0 || x < a->imin)
					a->imin = x;
				if (a->n == 0 || x > a->imax)
					a->imax = x;
				rc = acc_push(a, (double)x);
				break;
			}
			case SQLITE_FLOAT:
				rc = acc_push(a, sqlite3_column_double(st, col));
				break;
			default: {
				char label[96];
				col_label(a, label, sizeof(label));
				rc = fail(msg, sizeof(msg), CF_ERR_PARSE, "%s holds a value that is not a "
					  "number", label);
				goto failed;
			}
			}
			if (rc != CF_OK) {
				fail(msg, sizeof(msg), rc, "%s", cf_strerror(rc));
				goto failed;
			}
		}
	}
	/* The last group; without group_by the table is one group, even when empty. */
	if ((have_group || m == 0) && (rc = flush_group(&r, accs, p, msg, sizeof(msg))) != CF_OK)
		goto flush_failed;
	rc = CF_OK;
	goto out;
flush_failed:
	if (rc != CF_ERR_TOO_BIG)
		goto failed;
too_big:
	fail(msg, sizeof(msg), rc, "%s", rc == CF_ERR_TOO_BIG ? "the output is larger than its limit"
							      : cf_strerror(rc));
failed:
	fail(why, whylen, rc, "%s%s%s%s", pre, name, sep, msg[0] ? msg : cf_strerror(rc));
out:
	sqlite3_finalize(st);
	for (size_t i = 0; gv && i < m; i++)
		sqlite3_value_free(gv[i]);
	for (size_t j = 0; accs && j < p; j++) {
		if (accs[j].v)
			cf_wipe(accs[j].v, accs[j].cap * sizeof(double));
		sqlite3_free(accs[j].v);
	}
	free(accs);
	free(gv);
	free(gidx);
	free(r.edges);
	free(r.counts);
	free(r.mlo);
	free(r.mhi);
	free(r.mcount);
	cf_buf_free(&r.prefix);
	cf_buf_free(&q);
	cf_fn_table_free(&t);
	free(sp);
	if (rc != CF_OK)
		cf_buf_reset(csv);
	return rc;
}
