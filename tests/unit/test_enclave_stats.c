/*
 * enclave/stats: the "stats" function against sqlite3 on the same rows.
 * Random tables are loaded as CSV (the loader infers the types), the
 * fence is armed, and cf_stats_run's CSV is checked against plain SQL
 * (count, avg, min, max per group), a direct loop (sample variance),
 * sorting in C (quantiles by linear interpolation) and a histogram
 * counted here. Then the output policy (groups and values below k
 * suppressed, bins merged up to k, allow_rows false), and hostile
 * functions: unknown members, missing tables and columns, a text column,
 * names built to break out of the quoting, k above every group.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "coffer/buf.h"
#include "csv.h"
#include "sql.h"
#include "stats.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void load(cf_sql *s, const char *table, const char *text)
{
	cf_csv_load *l = NULL;
	assert_int_equal(cf_csv_load_new(cf_sql_db(s), table, NULL, &l), CF_OK);
	cf_writer w = cf_csv_load_writer(l);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)text, strlen(text)), CF_OK);
	cf_csv_table info;
	memset(&info, 0, sizeof(info));
	assert_int_equal(cf_csv_load_finish(l, &info), CF_OK);
	cf_csv_table_free(&info);
	cf_csv_load_free(l);
	assert_int_equal(cf_sql_allow_table(s, table), CF_OK);
}

static json_t *js(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	if (!j)
		fail_msg("bad JSON in the test: %s: %s", text, err.text);
	return j;
}

/* Runs the function; returns its code, the CSV in out (NUL-terminated), why in why. */
static cf_err run(cf_sql *s, const char *fn, uint64_t k, bool allow_rows, cf_buf *out, char *why,
		  size_t whylen)
{
	json_t *f = js(fn);
	cf_policy pol = { k, allow_rows };
	cf_buf_init(out, 64u << 20, true);
	cf_err rc = cf_stats_run(s, f, "result", &pol, out, why, whylen);
	json_decref(f);
	assert_int_equal(cf_buf_terminate(out), CF_OK);
	return rc;
}

/* --- a small CSV splitter for the outputs (no quoted fields in these tests) --- */

#define MAXF 64
typedef struct row {
	char *f[MAXF];
	size_t n;
} row;

static size_t split_rows(char *text, row *rows, size_t max)
{
	size_t n = 0;
	char *p = text;
	while (*p && n < max) {
		char *e = strstr(p, "\r\n");
		assert_non_null(e);
		*e = '\0';
		row *r = &rows[n++];
		r->n = 0;
		char *q = p;
		for (;;) {
			char *c = strchr(q, ',');
			assert_true(r->n < MAXF);
			r->f[r->n++] = q;
			if (!c)
				break;
			*c = '\0';
			q = c + 1;
		}
		p = e + 2;
	}
	assert_int_equal(*p, '\0');
	return n;
}

static void near(double got, double want, const char *what)
{
	double tol = 1e-12 * (fabs(want) > 1 ? fabs(want) : 1);
	if (!(fabs(got - want) <= tol))
		fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

static double num(const char *s)
{
	char *end;
	assert_true(*s);
	double v = strtod(s, &end);
	assert_int_equal(*end, '\0');
	return v;
}

static cf_sql *armed(void)
{
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	return s;
}

/* --- random data against sqlite3 --- */

#define NROWS 3000
#define NGROUPS 7 /* r0..r5 and NULL */

typedef struct vals {
	double *v;
	size_t n;
} vals;

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

static double quantile(const vals *v, double q)
{
	double h = (double)(v->n - 1) * q;
	size_t lo = (size_t)floor(h);
	if (lo + 1 >= v->n)
		return v->v[v->n - 1];
	return v->v[lo] + (h - (double)lo) * (v->v[lo + 1] - v->v[lo]);
}

static char *make_table(void)
{
	cf_buf b;
	cf_buf_init(&b, 1u << 24, false);
	assert_int_equal(cf_buf_append_str(&b, "region,x,y,label\n"), CF_OK);
	for (int i = 0; i < NROWS; i++) {
		unsigned g = (unsigned)(rnd() % NGROUPS);
		char reg[8] = "";
		if (g < NGROUPS - 1)
			snprintf(reg, sizeof(reg), "r%u", g);
		char x[32] = "", y[32] = "";
		if (rnd() % 10)
			snprintf(x, sizeof(x), "%lld", (long long)(rnd() % 2000001) - 1000000);
		if (rnd() % 13)
			snprintf(y, sizeof(y), "%.3f", (double)(rnd() % 1000001) / 1000.0 - 500.0);
		assert_int_equal(cf_buf_printf(&b, "%s,%s,%s,SECRET-%d\n", reg, x, y, i), CF_OK);
	}
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	size_t len;
	return (char *)cf_buf_steal(&b, &len);
}

/*
 * Everything cf_stats_run printed for table a (grouped by region or not)
 * against sqlite3's aggregates and the values read back with plain SQL.
 */
static void check_random(cf_sql *s, bool grouped, unsigned bins)
{
	static const double qs[] = { 0, 0.25, 0.5, 0.9, 1 };
	char fn[512], why[320];
	snprintf(fn, sizeof(fn),
		 "{\"kind\":\"stats\",\"table\":\"a\",%s\"quantiles\":[0,0.25,0.5,0.9,1]%s}",
		 grouped ? "\"columns\":[\"x\",\"y\"],\"group_by\":[\"region\"]," : "",
		 bins ? ",\"histogram\":{\"bins\":7}" : "");
	cf_buf out;
	assert_int_equal(run(s, fn, 1, true, &out, why, sizeof(why)), CF_OK);
	assert_null(strstr((char *)out.data, "SECRET"));
	static row rows[2000];
	size_t nrows = split_rows((char *)out.data, rows, 2000);
	size_t off = grouped ? 1 : 0;
	/* The header. */
	assert_int_equal(rows[0].n, off + 7 + 5 + (bins ? 2 : 0));
	if (grouped)
		assert_string_equal(rows[0].f[0], "region");
	assert_string_equal(rows[0].f[off], "column");
	assert_string_equal(rows[0].f[off + 1], "kind");
	assert_string_equal(rows[0].f[off + 4], "variance");
	assert_string_equal(rows[0].f[off + 7], "q0");
	assert_string_equal(rows[0].f[off + 8], "q0.25");
	assert_string_equal(rows[0].f[off + 11], "q1");
	if (bins)
		assert_string_equal(rows[0].f[off + 13], "hi");

	/* The values, read back with plain SQL, per group (NULL region is group 0). */
	vals v[NGROUPS][2];
	memset(v, 0, sizeof(v));
	for (int g = 0; g < NGROUPS; g++)
		for (int c = 0; c < 2; c++)
			v[g][c].v = calloc(NROWS, sizeof(double));
	sqlite3_stmt *st;
	bool r;
	assert_int_equal(cf_sql_prepare(s, "SELECT region, x, y FROM a", &st, why, sizeof(why)),
			 CF_OK);
	for (;;) {
		assert_int_equal(cf_sql_step(s, st, &r, why, sizeof(why)), CF_OK);
		if (!r)
			break;
		int g = 0;
		if (grouped && sqlite3_column_type(st, 0) != SQLITE_NULL)
			g = 1 + atoi((const char *)sqlite3_column_text(st, 0) + 1);
		for (int c = 0; c < 2; c++) {
			if (sqlite3_column_type(st, 1 + c) != SQLITE_NULL)
				v[g][c].v[v[g][c].n++] = sqlite3_column_double(st, 1 + c);
		}
	}
	sqlite3_finalize(st);

	/* sqlite3's own aggregates, in the order the output must have. */
	assert_int_equal(cf_sql_prepare(s, grouped ?
		"SELECT region, count(x), avg(x), min(x), max(x), count(y), avg(y), min(y), max(y) "
		"FROM a GROUP BY region ORDER BY region" :
		"SELECT NULL, count(x), avg(x), min(x), max(x), count(y), avg(y), min(y), max(y) "
		"FROM a", &st, why, sizeof(why)), CF_OK);
	size_t at = 1, groups = 0;
	for (;;) {
		assert_int_equal(cf_sql_step(s, st, &r, why, sizeof(why)), CF_OK);
		if (!r)
			break;
		groups++;
		int g = 0;
		if (grouped && sqlite3_column_type(st, 0) != SQLITE_NULL)
			g = 1 + atoi((const char *)sqlite3_column_text(st, 0) + 1);
		for (int c = 0; c < 2; c++) {
			row *o = &rows[at++];
			assert_true(at <= nrows);
			if (grouped)
				assert_string_equal(o->f[0], g ? (const char *)sqlite3_column_text(st, 0) : "");
			assert_string_equal(o->f[off], c ? "y" : "x");
			assert_string_equal(o->f[off + 1], "summary");
			long long cnt = sqlite3_column_int64(st, 1 + 4 * c);
			assert_int_equal(atoll(o->f[off + 2]), cnt);
			assert_int_equal((long long)v[g][c].n, cnt);
			near(num(o->f[off + 3]), sqlite3_column_double(st, 2 + 4 * c), "mean");
			/* min/max: exactly sqlite3's text (integers in full for x) */
			assert_string_equal(o->f[off + 5], (const char *)sqlite3_column_text(st, 3 + 4 * c));
			assert_string_equal(o->f[off + 6], (const char *)sqlite3_column_text(st, 4 + 4 * c));
			/* the sample variance by a direct loop */
			vals *vv = &v[g][c];
			double mean = 0;
			for (size_t i = 0; i < vv->n; i++)
				mean += vv->v[i];
			mean /= (double)vv->n;
			double ss = 0;
			for (size_t i = 0; i < vv->n; i++)
				ss += (vv->v[i] - mean) * (vv->v[i] - mean);
			near(num(o->f[off + 4]), ss / (double)(vv->n - 1), "variance");
			/* quantiles by sorting here */
			qsort(vv->v, vv->n, sizeof(double), dcmp);
			for (size_t q = 0; q < 5; q++)
				near(num(o->f[off + 7 + q]), quantile(vv, qs[q]), "quantile");
			if (!bins)
				continue;
			assert_string_equal(o->f[off + 12], "");
			assert_string_equal(o->f[off + 13], "");
			/* the histogram: 7 equal bins over [min, max], counted here */
			double mn = vv->v[0], mx = vv->v[vv->n - 1], e[8];
			size_t cnts[7] = { 0 };
			for (int i = 0; i <= 7; i++)
				e[i] = i == 7 ? mx : mn + (mx - mn) * ((double)i / 7);
			for (size_t i = 0; i < vv->n; i++) {
				int bi = 6;
				while (bi > 0 && vv->v[i] < e[bi])
					bi--;
				cnts[bi]++;
			}
			size_t total = 0;
			for (int bi = 0; bi < 7; bi++) {
				row *h = &rows[at++];
				assert_true(at <= nrows);
				assert_string_equal(h->f[off + 1], "bin");
				assert_string_equal(h->f[off], c ? "y" : "x");
				assert_int_equal(atoll(h->f[off + 2]), (long long)cnts[bi]);
				for (int z = 3; z <= 11; z++)
					assert_string_equal(h->f[off + z], "");
				near(num(h->f[off + 12]), e[bi], "bin lo");
				near(num(h->f[off + 13]), e[bi + 1], "bin hi");
				total += cnts[bi];
			}
			assert_int_equal(total, vv->n);
		}
	}
	sqlite3_finalize(st);
	assert_int_equal(at, nrows);
	assert_int_equal(groups, grouped ? NGROUPS : 1);
	for (int g = 0; g < NGROUPS; g++)
		for (int c = 0; c < 2; c++)
			free(v[g][c].v);
	cf_buf_free(&out);
}

static void test_random(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 4; seed++) {
		rng_state = seed;
		char *text = make_table();
		cf_sql *s = armed();
		load(s, "a", text);
		assert_int_equal(cf_sql_arm(s, 60), CF_OK);
		check_random(s, true, seed % 2 ? 7 : 0);
		check_random(s, false, seed % 2 ? 0 : 7);
		cf_sql_close(s);
		free(text);
	}
}

/* Default columns: every numeric one not grouped by, in table order; a REAL keeps ".0". */
static void test_defaults_and_format(void **state)
{
	(void)state;
	cf_sql *s = armed();
	load(s, "t", "g,name,n,r\nA,x,1,1.5\nA,y,2,2\nA,z,3,2.5\nB,w,10,-1\n");
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	cf_buf out;
	char why[320];
	assert_int_equal(run(s, "{\"kind\":\"stats\",\"table\":\"t\",\"group_by\":[\"g\"]}", 1,
			     true, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data,
		"g,column,kind,count,mean,variance,min,max\r\n"
		"A,n,summary,3,2.0,1.0,1,3\r\n"
		"A,r,summary,3,2.0,0.25,1.5,2.5\r\n"
		"B,n,summary,1,10.0,,10,10\r\n"
		"B,r,summary,1,-1.0,,-1.0,-1.0\r\n");
	cf_buf_free(&out);
	/* min = max: every value in the last bin. */
	assert_int_equal(run(s, "{\"kind\":\"stats\",\"table\":\"t\",\"columns\":[\"N\"],"
			     "\"group_by\":[\"g\"],\"histogram\":{\"bins\":2}}", 1, true, &out,
			     why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data,
		"g,column,kind,count,mean,variance,min,max,lo,hi\r\n"
		"A,n,summary,3,2.0,1.0,1,3,,\r\n"
		"A,n,bin,1,,,,,1.0,2.0\r\n"
		"A,n,bin,2,,,,,2.0,3.0\r\n"
		"B,n,summary,1,10.0,,10,10,,\r\n"
		"B,n,bin,0,,,,,10.0,10.0\r\n"
		"B,n,bin,1,,,,,10.0,10.0\r\n");
	cf_buf_free(&out);
	cf_sql_close(s);
}

/* min_group_size and allow_rows. */
static void test_policy(void **state)
{
	(void)state;
	cf_buf t;
	cf_buf_init(&t, 1 << 20, false);
	assert_int_equal(cf_buf_append_str(&t, "g,v,w\n"), CF_OK);
	/* A: 3 rows; B: 5 rows (w only in 2); C: 12 rows, v = 1..12 */
	for (int i = 0; i < 3; i++)
		assert_int_equal(cf_buf_printf(&t, "A,%d,%d\n", i, i), CF_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(cf_buf_printf(&t, "B,%d,%s\n", i, i < 2 ? "7" : ""), CF_OK);
	for (int i = 1; i <= 12; i++)
		assert_int_equal(cf_buf_printf(&t, "C,%d,%d\n", i, i), CF_OK);
	assert_int_equal(cf_buf_terminate(&t), CF_OK);
	cf_sql *s = armed();
	load(s, "p", (const char *)t.data);
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	cf_buf out;
	char why[320];
	const char *fn = "{\"kind\":\"stats\",\"table\":\"p\",\"columns\":[\"v\",\"w\"],"
			 "\"group_by\":[\"g\"],\"histogram\":{\"bins\":4}}";
	assert_int_equal(run(s, fn, 5, true, &out, why, sizeof(why)), CF_OK);
	/*
	 * A (3 rows) is gone; B keeps v (5 values) but not w (2); C's four bins
	 * of 3 values ([1,3.75) [3.75,6.5) [6.5,9.25) [9.25,12]) merge to 6 + 6.
	 */
	assert_string_equal((char *)out.data,
		"g,column,kind,count,mean,variance,min,max,lo,hi\r\n"
		"B,v,summary,5,2.0,2.5,0,4,,\r\n"
		"B,v,bin,5,,,,,0.0,4.0\r\n"
		"C,v,summary,12,6.5,13.0,1,12,,\r\n"
		"C,v,bin,6,,,,,1.0,6.5\r\n"
		"C,v,bin,6,,,,,6.5,12.0\r\n"
		"C,w,summary,12,6.5,13.0,1,12,,\r\n"
		"C,w,bin,6,,,,,1.0,6.5\r\n"
		"C,w,bin,6,,,,,6.5,12.0\r\n");
	cf_buf_free(&out);
	/* k = 7, all 20 rows: bins of 8, 5, 3, 4 become 8 and 8, the remaining 4 joining the last. */
	assert_int_equal(run(s, "{\"kind\":\"stats\",\"table\":\"p\",\"columns\":[\"v\"],"
			     "\"histogram\":{\"bins\":4}}", 7, true, &out, why, sizeof(why)),
			 CF_OK);
	assert_string_equal((char *)out.data,
		"column,kind,count,mean,variance,min,max,lo,hi\r\n"
		"v,summary,20,4.55,14.2605263157895,0,12,,\r\n"
		"v,bin,8,,,,,0.0,3.0\r\n"
		"v,bin,12,,,,,3.0,12.0\r\n");
	cf_buf_free(&out);
	/* k above every group, and above the whole table: the header alone. */
	assert_int_equal(run(s, fn, 13, true, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "g,column,kind,count,mean,variance,min,max,lo,hi\r\n");
	cf_buf_free(&out);
	assert_int_equal(run(s, "{\"kind\":\"stats\",\"table\":\"p\"}", 21, true, &out, why,
			     sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "column,kind,count,mean,variance,min,max\r\n");
	cf_buf_free(&out);
	/* allow_rows false: a group with one value refuses the output; k = 2 suppresses it first. */
	cf_sql_close(s);
	s = armed();
	load(s, "one", "g,v\nA,1\nA,2\nB,3\n");
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	fn = "{\"kind\":\"stats\",\"table\":\"one\",\"group_by\":[\"g\"]}";
	assert_int_equal(run(s, fn, 1, false, &out, why, sizeof(why)), CF_ERR_AUTH);
	assert_non_null(strstr(why, "allow_rows"));
	/* the column was not named by the task: the message does not name it either */
	assert_non_null(strstr(why, "column 2 of the table"));
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	assert_int_equal(run(s, fn, 2, false, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data,
		"g,column,kind,count,mean,variance,min,max\r\nA,v,summary,2,1.5,0.5,1,2\r\n");
	cf_buf_free(&out);
	/* and a bin of one */
	assert_int_equal(run(s, "{\"kind\":\"stats\",\"table\":\"one\",\"histogram\":{\"bins\":3}}",
			     1, false, &out, why, sizeof(why)), CF_ERR_AUTH);
	cf_buf_free(&out);
	cf_sql_close(s);
	cf_buf_free(&t);
}

static void expect_refused(cf_sql *s, const char *fn, cf_err want, const char *phrase)
{
	cf_buf out;
	char why[320];
	cf_err rc = run(s, fn, 1, true, &out, why, sizeof(why));
	if (rc != want)
		fail_msg("%s: got %s (%s), want %s", fn, cf_strerror(rc), why, cf_strerror(want));
	if (phrase && !strstr(why, phrase))
		fail_msg("%s: why \"%s\" lacks \"%s\"", fn, why, phrase);
	assert_null(strstr(why, "SECRET"));
	assert_int_equal(strncmp(why, "output result: ", 15), 0);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
}

static void test_hostile(void **state)
{
	(void)state;
	cf_sql *s = armed();
	load(s, "a", "id,g,v,note\n1,A,10,SECRET-1\n2,A,20,SECRET-2\n3,B,30,SECRET-3\n");
	/* A real column whose name is an injection attempt: quoted, it is just a name. */
	load(s, "odd", "\"x\"\"; DROP TABLE a; --\",count\n1,A\n2,A\n");
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);

	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"colums\":[\"v\"]}", CF_ERR_PARSE,
		       "unknown member \"colums\"");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"histogram\":{\"bins\":3,\"x\":1}}",
		       CF_ERR_PARSE, "histogram");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"histogram\":{\"bins\":0}}",
		       CF_ERR_PARSE, "histogram");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"quantiles\":[1.5]}", CF_ERR_PARSE,
		       "quantiles[0]");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"quantiles\":[0.5,0.50]}",
		       CF_ERR_PARSE, "twice");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"quantiles\":[\"0.5\"]}",
		       CF_ERR_PARSE, "quantiles");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"columns\":[\"v\",\"V\"]}",
		       CF_ERR_PARSE, "twice");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"columns\":[]}", CF_ERR_PARSE,
		       "columns");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"group_by\":\"g\"}", CF_ERR_PARSE,
		       "group_by");
	expect_refused(s, "{\"kind\":\"sql\",\"table\":\"a\"}", CF_ERR_PARSE, "kind");
	expect_refused(s, "{\"kind\":\"stats\"}", CF_ERR_PARSE, "table");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"nope\"}", CF_ERR_NOT_FOUND,
		       "no table \"nope\"");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"sqlite_master\"}", CF_ERR_NOT_FOUND,
		       "no table");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\\\"; DROP TABLE a; --\"}",
		       CF_ERR_NOT_FOUND, "no table");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"columns\":[\"nope\"]}",
		       CF_ERR_NOT_FOUND, "no column \"nope\"");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"columns\":[\"note\"]}",
		       CF_ERR_PARSE, "not numeric");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"columns\":[\"x\\\"; DROP TABLE "
		       "a; --\"]}", CF_ERR_NOT_FOUND, "no column");
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"columns\":[\"v\"],\"group_by\":"
		       "[\"v) FROM a; --\"]}", CF_ERR_NOT_FOUND, "no column");
	/* A group_by column named like a statistics column would make the header ambiguous. */
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"odd\",\"group_by\":[\"count\"]}",
		       CF_ERR_PARSE, "name of a statistics column");
	/* No numeric column to describe. */
	expect_refused(s, "{\"kind\":\"stats\",\"table\":\"a\",\"group_by\":[\"id\",\"v\"]}",
		       CF_ERR_NOT_FOUND, "no numeric column");

	/* The odd name works, quoted, and nothing was dropped. */
	cf_buf out;
	char why[320];
	assert_int_equal(run(s, "{\"kind\":\"stats\",\"table\":\"odd\",\"columns\":[\"x\\\"; DROP "
			     "TABLE a; --\"]}", 1, true, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "column,kind,count,mean,variance,min,max\r\n"
		"\"x\"\"; DROP TABLE a; --\",summary,2,1.5,0.5,1,2\r\n");
	cf_buf_free(&out);
	sqlite3_stmt *st;
	bool r;
	assert_int_equal(cf_sql_prepare(s, "SELECT count(*) FROM a", &st, why, sizeof(why)), CF_OK);
	assert_int_equal(cf_sql_step(s, st, &r, why, sizeof(why)), CF_OK);
	assert_true(r);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);

	/* Arguments. */
	json_t *f = js("{\"kind\":\"stats\",\"table\":\"a\"}");
	cf_buf plain;
	cf_buf_init(&plain, 1 << 20, false);
	assert_int_equal(cf_stats_run(s, f, NULL, NULL, &plain, why, sizeof(why)), CF_ERR_ARG);
	cf_buf_free(&plain);
	cf_buf_init(&out, 1 << 20, true);
	assert_int_equal(cf_stats_run(s, f, NULL, NULL, &out, why, sizeof(why)), CF_OK);
	cf_buf_free(&out);
	/* A buffer too small for the output. */
	cf_buf_init(&out, 16, true);
	assert_int_equal(cf_stats_run(s, f, NULL, NULL, &out, why, sizeof(why)), CF_ERR_TOO_BIG);
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	assert_int_equal(cf_stats_check(f, why, sizeof(why)), CF_OK);
	json_decref(f);
	f = js("{\"kind\":\"stats\",\"table\":\"a\",\"extra\":1}");
	assert_int_equal(cf_stats_check(f, why, sizeof(why)), CF_ERR_PARSE);
	json_decref(f);
	cf_sql_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_defaults_and_format),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
