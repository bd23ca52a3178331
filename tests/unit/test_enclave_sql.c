/*
 * enclave/sql: the fence. Each forbidden statement is refused at prepare
 * (ATTACH, DETACH, PRAGMA in every spelling, writes, schema changes,
 * transactions, load_extension, a second statement, EXPLAIN, tables not
 * in the task, the schema tables, table-valued pragmas, parameters); the
 * limits hold (length of values, expression depth, compound selects);
 * a runaway recursive CTE is stopped by the time budget; and a runtime
 * error's message never quotes the value that caused it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "coffer/buf.h"
#include "csv.h"
#include "sql.h"

/* A database with task table t and a table `other` the task may not read. */
static cf_sql *fenced(unsigned budget)
{
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	assert_int_equal(cf_sql_exec(s, "CREATE TABLE t(a INTEGER, b TEXT);"
				     "INSERT INTO t VALUES (1, 'x'), (2, '$.SECRETVALUE[');"
				     "CREATE TABLE other(z);"
				     "INSERT INTO other VALUES ('SECRETVALUE')"), CF_OK);
	assert_int_equal(cf_sql_allow_table(s, "t"), CF_OK);
	assert_int_equal(cf_sql_arm(s, budget), CF_OK);
	return s;
}

static cf_err prep(cf_sql *s, const char *q, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	cf_err rc = cf_sql_prepare(s, q, &st, why, whylen);
	if (rc == CF_OK)
		assert_non_null(st);
	else
		assert_null(st);
	sqlite3_finalize(st);
	return rc;
}

static void refused(cf_sql *s, const char *q, cf_err want, const char *msg_part)
{
	char why[256] = "";
	cf_err rc = prep(s, q, why, sizeof(why));
	if (rc != want)
		fail_msg("%s: %s (%s), wanted %s", q, cf_errname(rc), why, cf_errname(want));
	if (msg_part && !strstr(why, msg_part))
		fail_msg("%s: \"%s\" does not say \"%s\"", q, why, msg_part);
}

/* Runs q to the end; returns the rows' first column joined by ','. */
static cf_err run(cf_sql *s, const char *q, char *out, size_t outlen, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	bool row = false;
	cf_err rc = cf_sql_prepare(s, q, &st, why, whylen);
	size_t used = 0;
	out[0] = '\0';
	while (rc == CF_OK && (rc = cf_sql_step(s, st, &row, why, whylen)) == CF_OK && row) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		int k = snprintf(out + used, outlen - used, "%s%s", used ? "," : "",
				 v ? (const char *)v : "NULL");
		if (k > 0 && (size_t)k < outlen - used)
			used += (size_t)k;
	}
	sqlite3_finalize(st);
	return rc;
}

static void test_forbidden_statements(void **state)
{
	(void)state;
	cf_sql *s = fenced(5);
	refused(s, "ATTACH DATABASE ':memory:' AS x", CF_ERR_AUTH, "ATTACH");
	refused(s, "ATTACH 'file:/tmp/x.db' AS x", CF_ERR_AUTH, "ATTACH");
	refused(s, "DETACH DATABASE temp", CF_ERR_AUTH, NULL);
	refused(s, "PRAGMA table_info(t)", CF_ERR_AUTH, "PRAGMA");
	refused(s, "PRAGMA query_only=OFF", CF_ERR_AUTH, "PRAGMA");
	refused(s, "PRAGMA writable_schema=ON", CF_ERR_AUTH, "PRAGMA");
	refused(s, "pragma main.journal_mode", CF_ERR_AUTH, "PRAGMA");
	refused(s, "SELECT * FROM pragma_table_info('t')", CF_ERR_AUTH, NULL);
	refused(s, "SELECT * FROM pragma_database_list", CF_ERR_AUTH, NULL);
	refused(s, "INSERT INTO t VALUES (3, 'y')", CF_ERR_AUTH, "INSERT");
	refused(s, "UPDATE t SET a = 0", CF_ERR_AUTH, "UPDATE");
	refused(s, "DELETE FROM t", CF_ERR_AUTH, "DELETE");
	refused(s, "REPLACE INTO t VALUES (1, 'z')", CF_ERR_AUTH, NULL);
	refused(s, "CREATE TABLE x(a)", CF_ERR_AUTH, "may not change the schema");
	refused(s, "CREATE TEMP TABLE x AS SELECT * FROM t", CF_ERR_AUTH, NULL);
	refused(s, "CREATE VIEW v AS SELECT * FROM t", CF_ERR_AUTH, NULL);
	refused(s, "CREATE INDEX i ON t(a)", CF_ERR_AUTH, "schema");
	refused(s, "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END", CF_ERR_AUTH, NULL);
	refused(s, "CREATE VIRTUAL TABLE v USING fts5(x)", CF_ERR_AUTH, NULL);
	refused(s, "DROP TABLE t", CF_ERR_AUTH, NULL);
	refused(s, "ALTER TABLE t ADD COLUMN c", CF_ERR_AUTH, NULL);
	refused(s, "ALTER TABLE t RENAME TO u", CF_ERR_AUTH, NULL);
	refused(s, "REINDEX", CF_ERR_AUTH, NULL);
	refused(s, "ANALYZE", CF_ERR_AUTH, NULL);
	refused(s, "VACUUM", CF_ERR_AUTH, NULL);
	refused(s, "VACUUM INTO '/tmp/coffer-leak.db'", CF_ERR_AUTH, NULL);
	refused(s, "BEGIN", CF_ERR_AUTH, NULL);
	refused(s, "COMMIT", CF_ERR_AUTH, NULL);
	refused(s, "SAVEPOINT x", CF_ERR_AUTH, NULL);
	refused(s, "SELECT load_extension('/tmp/evil.so')", CF_ERR_AUTH, "load_extension");
	refused(s, "SELECT LOAD_EXTENSION('x', 'y')", CF_ERR_AUTH, NULL);
	refused(s, "SELECT fts3_tokenizer('simple')", CF_ERR_AUTH, NULL);
	refused(s, "EXPLAIN SELECT * FROM t", CF_ERR_AUTH, "read-only SELECT");
	refused(s, "EXPLAIN QUERY PLAN SELECT * FROM t", CF_ERR_AUTH, NULL);
	cf_sql_close(s);
}

static void test_one_statement(void **state)
{
	(void)state;
	cf_sql *s = fenced(5);
	char why[256];
	refused(s, "SELECT 1; SELECT 2", CF_ERR_AUTH, "more than one statement");
	refused(s, "SELECT a FROM t; DROP TABLE t", CF_ERR_AUTH, "more than one statement");
	refused(s, "SELECT a FROM t;;x", CF_ERR_AUTH, NULL);
	refused(s, "SELECT 1 /* ok */; /* but */ SELECT 2", CF_ERR_AUTH, NULL);
	refused(s, "", CF_ERR_PARSE, "empty");
	refused(s, "  -- nothing", CF_ERR_PARSE, "empty");
	refused(s, ";", CF_ERR_PARSE, NULL);
	assert_int_equal(prep(s, "SELECT a FROM t;", why, sizeof(why)), CF_OK);
	assert_int_equal(prep(s, "SELECT a FROM t ; -- done\n ; /* end */", why, sizeof(why)), CF_OK);
	assert_int_equal(prep(s, "SELECT a FROM t /* unterminated comment", why, sizeof(why)),
			 CF_OK);
	assert_true(cf_sql_tail_empty(" ;\n-- x\n/* y */ ;"));
	assert_false(cf_sql_tail_empty("; x"));
	assert_false(cf_sql_tail_empty("- -"));
	cf_sql_close(s);
}

static void test_tables(void **state)
{
	(void)state;
	cf_sql *s = fenced(5);
	char out[256], why[256];
	refused(s, "SELECT * FROM other", CF_ERR_AUTH, "only the task's tables, not other");
	refused(s, "SELECT a FROM t WHERE a IN (SELECT rowid FROM other)", CF_ERR_AUTH, "other");
	refused(s, "SELECT * FROM main.other", CF_ERR_AUTH, NULL);
	refused(s, "SELECT * FROM sqlite_master", CF_ERR_AUTH, "sqlite_master");
	refused(s, "SELECT * FROM sqlite_schema", CF_ERR_AUTH, NULL);
	refused(s, "SELECT * FROM temp.sqlite_master", CF_ERR_AUTH, NULL);
	refused(s, "SELECT * FROM sqlite_temp_master", CF_ERR_AUTH, NULL);
	refused(s, "WITH x AS (SELECT * FROM other) SELECT * FROM x", CF_ERR_AUTH, NULL);
	refused(s, "SELECT * FROM nosuch", CF_ERR_PARSE, "no such table");
	/* Double-quoted strings are identifiers only: no silent string literal. */
	refused(s, "SELECT \"nosuchcolumn\" FROM t", CF_ERR_PARSE, "no such column");
	/* No parameters: a task is its text. */
	refused(s, "SELECT ?1", CF_ERR_PARSE, NULL);
	refused(s, "SELECT a FROM t WHERE a = :x", CF_ERR_PARSE, NULL);
	/* What a task may do. */
	assert_int_equal(run(s, "SELECT a FROM t ORDER BY a", out, sizeof(out), why, sizeof(why)),
			 CF_OK);
	assert_string_equal(out, "1,2");
	assert_int_equal(run(s, "SELECT count(*) FROM t AS x JOIN t AS y ON x.a <= y.a", out,
			     sizeof(out), why, sizeof(why)), CF_OK);
	assert_string_equal(out, "3");
	assert_int_equal(run(s, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
			     "WHERE i < 5) SELECT sum(i) FROM n", out, sizeof(out), why,
			     sizeof(why)), CF_OK);
	assert_string_equal(out, "15");
	assert_int_equal(run(s, "SELECT upper(b) FROM t WHERE a = 1", out, sizeof(out), why,
			     sizeof(why)), CF_OK);
	assert_string_equal(out, "X");
	assert_int_equal(run(s, "select A from T where rowid = 2", out, sizeof(out), why,
			     sizeof(why)), CF_OK);
	assert_string_equal(out, "2");
	cf_sql_close(s);
}

static void test_runtime_errors_hide_values(void **state)
{
	(void)state;
	cf_sql *s = fenced(5);
	char out[256], why[256];
	/* SQLite's own message would be "bad JSON path: '$.SECRETVALUE['". */
	cf_err rc = run(s, "SELECT json_extract('{}', b) FROM t", out, sizeof(out), why, sizeof(why));
	assert_int_equal(rc, CF_ERR_PARSE);
	assert_non_null(strstr(why, "the query failed while running"));
	assert_null(strstr(why, "SECRET"));
	assert_null(strstr(sqlite3_errmsg(cf_sql_db(s)), "zzz")); /* the handle still works */
	cf_sql_close(s);
}

static void test_limits(void **state)
{
	(void)state;
	cf_sql *s = fenced(5);
	char out[256], why[256];
	/* Values longer than CF_SQL_MAX_LENGTH. */
	assert_int_equal(run(s, "SELECT length(zeroblob(100000000))", out, sizeof(out), why,
			     sizeof(why)), CF_ERR_TOO_BIG);
	assert_int_equal(run(s, "SELECT length(hex(zeroblob(20000000)))", out, sizeof(out), why,
			     sizeof(why)), CF_ERR_TOO_BIG);
	assert_int_equal(run(s, "SELECT length(zeroblob(1000))", out, sizeof(out), why,
			     sizeof(why)), CF_OK);
	/* Expression depth. */
	cf_buf q;
	cf_buf_init(&q, 1u << 20, false);
	assert_int_equal(cf_buf_append_str(&q, "SELECT "), CF_OK);
	assert_int_equal(cf_buf_append_str(&q, "1"), CF_OK);
	for (int i = 0; i < 150; i++)
		assert_int_equal(cf_buf_append_str(&q, "+1"), CF_OK);
	assert_int_equal(cf_buf_terminate(&q), CF_OK);
	refused(s, (const char *)q.data, CF_ERR_PARSE, "maximum depth 100");
	/* Deep nesting overflows the parser first: refused all the same. */
	cf_buf_reset(&q);
	assert_int_equal(cf_buf_append_str(&q, "SELECT "), CF_OK);
	for (int i = 0; i < 200; i++)
		assert_int_equal(cf_buf_append_str(&q, "(1+"), CF_OK);
	assert_int_equal(cf_buf_append_str(&q, "1"), CF_OK);
	for (int i = 0; i < 200; i++)
		assert_int_equal(cf_buf_append_byte(&q, ')'), CF_OK);
	assert_int_equal(cf_buf_terminate(&q), CF_OK);
	refused(s, (const char *)q.data, CF_ERR_PARSE, NULL);
	/* Compound selects. */
	cf_buf_reset(&q);
	assert_int_equal(cf_buf_append_str(&q, "SELECT 1"), CF_OK);
	for (int i = 0; i < 20; i++)
		assert_int_equal(cf_buf_append_str(&q, " UNION ALL SELECT 1"), CF_OK);
	assert_int_equal(cf_buf_terminate(&q), CF_OK);
	refused(s, (const char *)q.data, CF_ERR_PARSE, "too many terms");
	/* SQL length. */
	cf_buf_reset(&q);
	assert_int_equal(cf_buf_append_str(&q, "SELECT 1 -- "), CF_OK);
	while (q.len <= CF_SQL_MAX_QUERY)
		assert_int_equal(cf_buf_append_byte(&q, 'x'), CF_OK);
	assert_int_equal(cf_buf_terminate(&q), CF_OK);
	refused(s, (const char *)q.data, CF_ERR_TOO_BIG, "longer than");
	/* LIKE patterns. */
	cf_buf_reset(&q);
	assert_int_equal(cf_buf_append_str(&q, "SELECT b LIKE '"), CF_OK);
	for (int i = 0; i < 1200; i++)
		assert_int_equal(cf_buf_append_byte(&q, '%'), CF_OK);
	assert_int_equal(cf_buf_append_str(&q, "' FROM t"), CF_OK);
	assert_int_equal(cf_buf_terminate(&q), CF_OK);
	assert_int_equal(run(s, (const char *)q.data, out, sizeof(out), why, sizeof(why)),
			 CF_ERR_PARSE);
	cf_buf_free(&q);
	cf_sql_close(s);
}

static void test_budget(void **state)
{
	(void)state;
	cf_sql *s = fenced(1);
	char out[256], why[256];
	uint64_t t0 = cf_sql_spent_ms(s);
	assert_int_equal(t0, 0);
	cf_err rc = run(s, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
		       "SELECT count(*) FROM c", out, sizeof(out), why, sizeof(why));
	if (rc != CF_ERR_LIMIT)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_string_equal(why, "the query ran out of its time budget (1 s)");
	assert_true(cf_sql_spent_ms(s) >= 1000);
	assert_true(cf_sql_spent_ms(s) < 5000);
	/* The budget is for the whole task: once spent, nothing more runs. */
	assert_int_equal(run(s, "SELECT count(*) FROM t JOIN t AS u JOIN t AS v", out, sizeof(out),
			     why, sizeof(why)), CF_ERR_LIMIT);
	cf_sql_close(s);

	/* Time outside queries does not count. */
	s = fenced(1);
	assert_int_equal(run(s, "SELECT 1", out, sizeof(out), why, sizeof(why)), CF_OK);
	struct timespec pause = { 1, 200000000 };
	nanosleep(&pause, NULL);
	assert_int_equal(run(s, "SELECT count(*) FROM t", out, sizeof(out), why, sizeof(why)),
			 CF_OK);
	cf_sql_close(s);
}

static void test_phases(void **state)
{
	(void)state;
	cf_sql *s = NULL;
	sqlite3_stmt *st = NULL;
	char why[128];
	assert_int_equal(cf_sql_open(&s), CF_OK);
	assert_false(cf_sql_armed(s));
	/* Not armed: nothing fenced runs. */
	assert_int_equal(cf_sql_prepare(s, "SELECT 1", &st, why, sizeof(why)), CF_ERR_ARG);
	assert_int_equal(cf_sql_arm(s, 0), CF_ERR_ARG);
	assert_int_equal(cf_sql_arm(s, CF_SQL_MAX_BUDGET_SECONDS + 1), CF_ERR_ARG);
	assert_int_equal(cf_sql_allow_table(s, ""), CF_ERR_ARG);
	assert_int_equal(cf_sql_arm(s, 1), CF_OK);
	assert_true(cf_sql_armed(s));
	/* Armed: for good. */
	assert_int_equal(cf_sql_arm(s, 1), CF_ERR_ARG);
	assert_int_equal(cf_sql_exec(s, "CREATE TABLE late(a)"), CF_ERR_ARG);
	assert_int_equal(cf_sql_allow_table(s, "late"), CF_ERR_ARG);
	/* The connection itself refuses writes too (query_only), even unfenced. */
	assert_int_equal(sqlite3_exec(cf_sql_db(s), "CREATE TABLE x(a)", NULL, NULL, NULL) & 0xff,
			 SQLITE_AUTH);
	cf_sql_close(s);
	cf_sql_close(NULL);

	cf_buf b;
	cf_buf_init(&b, 100, false);
	assert_int_equal(cf_sql_quote_ident(&b, "a\"b"), CF_OK);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_string_equal((const char *)b.data, "\"a\"\"b\"");
	cf_buf_free(&b);
	assert_int_equal(cf_sql_err(SQLITE_NOMEM), CF_ERR_NOMEM);
	assert_int_equal(cf_sql_err(SQLITE_TOOBIG), CF_ERR_TOO_BIG);
	assert_int_equal(cf_sql_err(SQLITE_DONE), CF_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_statements),
		cmocka_unit_test(test_one_statement),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_runtime_errors_hide_values),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_phases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
