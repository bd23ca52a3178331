/*
 * enclave/psi: the "psi" function against a reference in C (sort, unique,
 * merge) on random sets of two and three tables, with duplicates and
 * NULLs, empty and disjoint sets, integer and text keys; the exact
 * comparison rules (1 and 1.0 meet, the text '1' and the number 1 do
 * not, case matters); that each output gets only the form the function
 * grants it (a "count" output holds no id); the output policy; and
 * hostile functions (unknown members, missing tables and columns,
 * injection attempts in names, an output the function names nowhere).
 */
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
#include "psi.h"
#include "sql.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
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

static cf_err run(cf_sql *s, const char *fn, const char *output, uint64_t k, bool allow_rows,
		  cf_buf *out, char *why, size_t whylen)
{
	json_t *f = js(fn);
	cf_policy pol = { k, allow_rows };
	cf_buf_init(out, 64u << 20, true);
	cf_err rc = cf_psi_run(s, f, output, &pol, out, why, whylen);
	json_decref(f);
	assert_int_equal(cf_buf_terminate(out), CF_OK);
	return rc;
}

static void expect_output(cf_sql *s, const char *fn, const char *output, const char *want)
{
	cf_buf out;
	char why[320];
	cf_err rc = run(s, fn, output, 1, true, &out, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", fn, why);
	assert_string_equal((const char *)out.data, want);
	cf_buf_free(&out);
}

/* --- random integer sets against sort + unique + merge --- */

static int llcmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

static size_t uniq(long long *v, size_t n)
{
	qsort(v, n, sizeof(*v), llcmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	}
	return m;
}

/* The intersection of sorted distinct a and b into a; its size. */
static size_t meet(long long *a, size_t na, const long long *b, size_t nb)
{
	size_t i = 0, j = 0, m = 0;
	while (i < na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else {
			a[m++] = a[i];
			i++;
			j++;
		}
	}
	return m;
}

static const char *const tnames[3] = { "a", "b", "c" };
static const char *const knames[3] = { "id", "cust_id", "k" };

static void random_trial(uint64_t seed, int ntables, int shape)
{
	rng_state = seed;
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	long long *ref = NULL;
	size_t nref = 0;
	for (int t = 0; t < ntables; t++) {
		/* shape 1: table b empty; shape 2: disjoint ranges; shape 3: large values */
		size_t n = shape == 1 && t == 1 ? 0 : (size_t)(rnd() % 600);
		long long base = shape == 2 ? 1000 * t : 0;
		long long span = 50 + (long long)(rnd() % 500);
		long long *v = calloc(n + 1, sizeof(*v));
		size_t nv = 0;
		cf_buf csv;
		cf_buf_init(&csv, 1 << 22, false);
		assert_int_equal(cf_buf_printf(&csv, "note,%s\n", knames[t]), CF_OK);
		for (size_t i = 0; i < n; i++) {
			if (rnd() % 17 == 0) { /* NULL never matches */
				assert_int_equal(cf_buf_printf(&csv, "SECRET-%zu,\n", i), CF_OK);
				continue;
			}
			long long x = base + (long long)(rnd() % (uint64_t)span);
			if (shape == 3)
				x = (x - span / 2) * 1000000000000000LL / 7;
			v[nv++] = x;
			assert_int_equal(cf_buf_printf(&csv, "SECRET-%zu,%lld\n", i, x), CF_OK);
		}
		assert_int_equal(cf_buf_terminate(&csv), CF_OK);
		load(s, tnames[t], (const char *)csv.data);
		cf_buf_free(&csv);
		nv = uniq(v, nv);
		if (t == 0) {
			ref = v;
			nref = nv;
		} else {
			nref = meet(ref, nref, v, nv);
			free(v);
		}
	}
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	if (shape == 1 || shape == 2)
		assert_int_equal(nref, 0);

	char fn[512];
	snprintf(fn, sizeof(fn), "{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"cust_id\"%s},"
		 "\"outputs\":{\"overlap\":\"count\",\"matches\":\"ids\"}}",
		 ntables == 3 ? ",\"c\":\"k\"" : "");
	cf_buf want;
	cf_buf_init(&want, 1 << 22, false);
	assert_int_equal(cf_buf_append_str(&want, "id\r\n"), CF_OK);
	for (size_t i = 0; i < nref; i++)
		assert_int_equal(cf_buf_printf(&want, "%lld\r\n", ref[i]), CF_OK);
	assert_int_equal(cf_buf_terminate(&want), CF_OK);
	expect_output(s, fn, "matches", (const char *)want.data);
	/* The count output: the number, and nothing else. */
	char count[64];
	snprintf(count, sizeof(count), "count\r\n%zu\r\n", nref);
	expect_output(s, fn, "overlap", count);
	cf_buf_free(&want);
	free(ref);
	cf_sql_close(s);
}

static void test_random(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 40; seed++)
		random_trial(seed, 2 + (int)(seed % 2), (int)(seed % 4));
}

static int scmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Text keys: bytewise order, case matters. */
static void test_text(void **state)
{
	(void)state;
	rng_state = 99;
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	char *keys[2][300];
	size_t nk[2] = { 0, 0 };
	for (int t = 0; t < 2; t++) {
		cf_buf csv;
		cf_buf_init(&csv, 1 << 20, false);
		assert_int_equal(cf_buf_append_str(&csv, "key\n"), CF_OK);
		for (int i = 0; i < 300; i++) {
			char k[32];
			snprintf(k, sizeof(k), "%s%u", rnd() % 2 ? "K" : "k", (unsigned)(rnd() % 400));
			assert_int_equal(cf_buf_printf(&csv, "%s\n", k), CF_OK);
			keys[t][nk[t]++] = strdup(k);
		}
		assert_int_equal(cf_buf_terminate(&csv), CF_OK);
		load(s, t ? "right" : "left", (const char *)csv.data);
		cf_buf_free(&csv);
	}
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	/* Reference: strcmp-sorted distinct keys of left also in right. */
	qsort(keys[0], nk[0], sizeof(char *), scmp);
	cf_buf want;
	cf_buf_init(&want, 1 << 20, false);
	assert_int_equal(cf_buf_append_str(&want, "id\r\n"), CF_OK);
	for (size_t i = 0; i < nk[0]; i++) {
		if (i && strcmp(keys[0][i], keys[0][i - 1]) == 0)
			continue;
		bool in = false;
		for (size_t j = 0; j < nk[1] && !in; j++)
			in = strcmp(keys[0][i], keys[1][j]) == 0;
		if (in)
			assert_int_equal(cf_buf_printf(&want, "%s\r\n", keys[0][i]), CF_OK);
	}
	assert_int_equal(cf_buf_terminate(&want), CF_OK);
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"left\":\"key\",\"right\":\"key\"},"
		      "\"outputs\":{\"o\":\"ids\"}}", "o", (const char *)want.data);
	for (int t = 0; t < 2; t++)
		for (size_t i = 0; i < nk[t]; i++)
			free(keys[t][i]);
	cf_buf_free(&want);
	cf_sql_close(s);
}

/* The comparison rules, exactly. */
static void test_semantics(void **state)
{
	(void)state;
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	load(s, "ints", "id\n1\n2\n3\n10\n3\n\n-4\n");
	load(s, "reals", "v\n1.0\n2.5\n3\n10.0\n-4.0\n");
	load(s, "texts", "v\n1\nx\n2\n007\n");
	load(s, "names", "n\nAlice\nbob\n\"Bob \"\n");
	load(s, "names2", "n\nalice\nbob\nBob\n");
	load(s, "empty", "id,other\n");
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	/* 1 and 1.0 meet; printed as the first table by name ("ints") has them. */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"reals\":\"v\",\"ints\":\"id\"},"
		      "\"outputs\":{\"o\":\"ids\"}}", "o", "id\r\n-4\r\n1\r\n3\r\n10\r\n");
	/* a REAL column against a TEXT one: numbers never meet text */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"reals\":\"v\",\"texts\":\"v\"},"
		      "\"outputs\":{\"o\":\"ids\"}}", "o", "id\r\n");
	/* a TEXT column's '1' is text: no number meets it */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"ints\":\"id\",\"texts\":\"v\"},"
		      "\"outputs\":{\"o\":\"ids\",\"n\":\"count\"}}", "n", "count\r\n0\r\n");
	/* case and spaces matter */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"names\":\"n\",\"names2\":\"n\"},"
		      "\"outputs\":{\"o\":\"ids\"}}", "o", "id\r\nbob\r\n");
	/* an empty table (its columns TEXT, no value): nothing meets */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"ints\":\"id\",\"empty\":\"id\"},"
		      "\"outputs\":{\"o\":\"ids\",\"n\":\"count\"}}", "o", "id\r\n");
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"ints\":\"id\",\"empty\":\"id\"},"
		      "\"outputs\":{\"o\":\"ids\",\"n\":\"count\"}}", "n", "count\r\n0\r\n");
	/* table and column names as SQLite takes them: ASCII case ignored */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"INTS\":\"ID\",\"Reals\":\"V\"},"
		      "\"outputs\":{\"o\":\"count\"}}", "o", "count\r\n4\r\n");
	cf_sql_close(s);
}

static void test_policy(void **state)
{
	(void)state;
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	load(s, "a", "id\n1\n2\n3\n4\n5\n");
	load(s, "b", "id\n3\n4\n5\n6\n");
	load(s, "c", "id\n5\n9\n");
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	const char *fn = "{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},"
			 "\"outputs\":{\"n\":\"count\",\"ids\":\"ids\"}}";
	const char *fn1 = "{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\",\"c\":\"id\"},"
			  "\"outputs\":{\"n\":\"count\"}}";
	cf_buf out;
	char why[320];
	/* ids are rows: refused with k >= 2 or allow_rows false */
	assert_int_equal(run(s, fn, "ids", 2, true, &out, why, sizeof(why)), CF_ERR_AUTH);
	assert_non_null(strstr(why, "min_group_size"));
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
	assert_int_equal(run(s, fn, "ids", 1, false, &out, why, sizeof(why)), CF_ERR_AUTH);
	assert_non_null(strstr(why, "allow_rows"));
	cf_buf_free(&out);
	/* count 3: shown with k = 3, suppressed with k = 4 */
	assert_int_equal(run(s, fn, "n", 3, false, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "count\r\n3\r\n");
	cf_buf_free(&out);
	assert_int_equal(run(s, fn, "n", 4, true, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "count\r\n");
	cf_buf_free(&out);
	/* a count of 1 (key 5 in all three): allow_rows false refuses, k = 2 suppresses */
	assert_int_equal(run(s, fn1, "n", 1, false, &out, why, sizeof(why)), CF_ERR_AUTH);
	cf_buf_free(&out);
	assert_int_equal(run(s, fn1, "n", 2, false, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "count\r\n");
	cf_buf_free(&out);
	assert_int_equal(run(s, fn1, "n", 1, true, &out, why, sizeof(why)), CF_OK);
	assert_string_equal((char *)out.data, "count\r\n1\r\n");
	cf_buf_free(&out);
	cf_sql_close(s);
}

static void expect_refused(cf_sql *s, const char *fn, const char *output, cf_err want,
			   const char *phrase)
{
	cf_buf out;
	char why[320];
	cf_err rc = run(s, fn, output, 1, true, &out, why, sizeof(why));
	if (rc != want)
		fail_msg("%s: got %s (%s), want %s", fn, cf_strerror(rc), why, cf_strerror(want));
	if (phrase && !strstr(why, phrase))
		fail_msg("%s: why \"%s\" lacks \"%s\"", fn, why, phrase);
	assert_null(strstr(why, "SECRET"));
	assert_int_equal(out.len, 0);
	cf_buf_free(&out);
}

static void test_hostile(void **state)
{
	(void)state;
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	load(s, "a", "id,note\n1,SECRET-1\n2,SECRET-2\n");
	load(s, "b", "id,note\n2,SECRET-3\n3,SECRET-4\n");
	load(s, "odd", "\"x\"\"; DROP TABLE a; --\"\n2\n");
	assert_int_equal(cf_sql_arm(s, 60), CF_OK);
	const char *o = "\"outputs\":{\"r\":\"ids\"}";
	char fn[512];
#define FN(...) (snprintf(fn, sizeof(fn), __VA_ARGS__), fn)
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},%s,"
			     "\"extra\":1}", o), "r", CF_ERR_PARSE, "unknown member \"extra\"");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\"},%s}", o), "r",
		       CF_ERR_PARSE, "2 to 64");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"A\":\"id\"},%s}", o), "r",
		       CF_ERR_PARSE, "twice");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":5},%s}", o), "r",
		       CF_ERR_PARSE, "not a column name");
	expect_refused(s, "{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},"
		       "\"outputs\":{\"r\":\"rows\"}}", "r", CF_ERR_PARSE, "\"count\" or \"ids\"");
	expect_refused(s, "{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"}}", "r",
		       CF_ERR_PARSE, "outputs");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},%s}", o),
		       "other", CF_ERR_NOT_FOUND, "grants nothing to output other");
	expect_refused(s, FN("{\"kind\":\"stats\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},%s}", o),
		       "r", CF_ERR_PARSE, "kind");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"nope\":\"id\"},%s}", o),
		       "r", CF_ERR_NOT_FOUND, "no table \"nope\"");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"sqlite_master\":\"name\"},"
			     "%s}", o), "r", CF_ERR_NOT_FOUND, "no table");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"nope\"},%s}", o),
		       "r", CF_ERR_NOT_FOUND, "has no column \"nope\"");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"x\\\"; DROP TABLE "
			     "a; --\"},%s}", o), "r", CF_ERR_NOT_FOUND, "has no column");
	expect_refused(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\\\" WHERE 0; --\":\"id\""
			     "},%s}", o), "r", CF_ERR_NOT_FOUND, "no table");
	/* the real column with the odd name: quoted, it matches a's 2 */
	expect_output(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"odd\":\"x\\\"; DROP TABLE a; "
			    "--\"},%s}", o), "r", "id\r\n2\r\n");
	expect_output(s, FN("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},%s}", o), "r",
		      "id\r\n2\r\n");
	/* checks without a database */
	json_t *f = js("{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},"
		       "\"outputs\":{\"r\":\"ids\",\"n\":\"count\"}}");
	char why[320];
	cf_psi_form form;
	assert_int_equal(cf_psi_check(f, why, sizeof(why)), CF_OK);
	assert_int_equal(cf_psi_output_form(f, "n", &form, why, sizeof(why)), CF_OK);
	assert_int_equal(form, CF_PSI_COUNT);
	assert_int_equal(cf_psi_output_form(f, "r", &form, why, sizeof(why)), CF_OK);
	assert_int_equal(form, CF_PSI_IDS);
	assert_int_equal(cf_psi_output_form(f, "x", &form, why, sizeof(why)), CF_ERR_NOT_FOUND);
	/* a buffer that is not secret, or too small */
	cf_buf b;
	cf_buf_init(&b, 1 << 20, false);
	assert_int_equal(cf_psi_run(s, f, "r", NULL, &b, why, sizeof(why)), CF_ERR_ARG);
	cf_buf_free(&b);
	cf_buf_init(&b, 5, true);
	assert_int_equal(cf_psi_run(s, f, "r", NULL, &b, why, sizeof(why)), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	cf_buf_free(&b);
	json_decref(f);
	/* nothing was dropped */
	expect_output(s, "{\"kind\":\"psi\",\"keys\":{\"a\":\"id\",\"b\":\"id\"},"
		      "\"outputs\":{\"n\":\"count\"}}", "n", "count\r\n1\r\n");
	cf_sql_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
