/*
 * enclave/policy: the output policy with real queries over a small
 * dataset, through the same steps as the worker (plan, fenced prepare,
 * helper-column check, rows, CSV). min_group_size: groups below k are
 * suppressed, exactly k is kept, inside SQLite before ORDER BY and LIMIT;
 * joins count distinct rows per table reference, so duplicating rows by
 * a join does not help. allow_rows false: unaggregated queries and rows
 * from a single input row are refused. Shapes that cannot be checked are
 * refused with a reason, never guessed at.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "coffer/buf.h"
#include "output.h"
#include "policy.h"
#include "sql.h"

/*
 * people: dept A has 5 people, B 3, C 1. visits: a1 visited 10 times, b1,
 * b2 and b3 once each, c1 five times.
 */
static const char setup_sql[] =
	"CREATE TABLE people(name TEXT, dept TEXT, salary INTEGER, city TEXT);"
	"INSERT INTO people VALUES"
	" ('a1','A',10,'X'),('a2','A',20,'X'),('a3','A',30,'Y'),('a4','A',40,'Y'),"
	" ('a5','A',50,'Y'),('b1','B',100,'X'),('b2','B',200,'X'),('b3','B',300,'X'),"
	" ('c1','C',1000,'Z');"
	"CREATE TABLE visits(name TEXT, amount INTEGER);"
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)"
	" INSERT INTO visits SELECT 'a1', 1 FROM n;"
	"INSERT INTO visits VALUES ('b1',5),('b2',5),('b3',5);"
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)"
	" INSERT INTO visits SELECT 'c1', 7 FROM n;";

static char *people_cols[] = { "name", "dept", "salary", "city" };
static char *visits_cols[] = { "name", "amount" };
static const cf_policy_table tables[] = {
	{ "people", people_cols, 4 },
	{ "visits", visits_cols, 2 },
};

static int setup(void **state)
{
	cf_sql *s = NULL;
	if (cf_sql_open(&s) != CF_OK || cf_sql_exec(s, setup_sql) != CF_OK ||
	    cf_sql_allow_table(s, "people") != CF_OK || cf_sql_allow_table(s, "visits") != CF_OK ||
	    cf_sql_arm(s, 30) != CF_OK)
		return -1;
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	cf_sql_close(*state);
	return 0;
}

/* Runs q under the policy like the worker does; *csv gets the output. */
static cf_err run(cf_sql *s, uint64_t k, bool allow_rows, const char *q, cf_buf *csv, char *why,
		  size_t whylen)
{
	cf_policy policy = { k, allow_rows };
	cf_policy_plan plan;
	sqlite3_stmt *st = NULL;
	bool row, keep;
	cf_err rc;
	cf_buf_init(csv, 1u << 20, true);
	why[0] = '\0';
	if ((rc = cf_policy_plan_make(&policy, q, tables, 2, &plan, why, whylen)) != CF_OK)
		return rc;
	if ((rc = cf_sql_prepare(s, plan.query, &st, why, whylen)) != CF_OK ||
	    (rc = cf_policy_bind(&plan, st, why, whylen)) != CF_OK)
		goto out;
	assert_int_equal(cf_output_csv_header(csv, st, plan.visible), CF_OK);
	while ((rc = cf_sql_step(s, st, &row, why, whylen)) == CF_OK && row) {
		if ((rc = cf_policy_row(&plan, st, &keep, why, whylen)) != CF_OK)
			break;
		if (keep)
			assert_int_equal(cf_output_csv_row(csv, st, plan.visible), CF_OK);
	}
	if (rc == CF_OK)
		assert_int_equal(cf_buf_terminate(csv), CF_OK);
out:
	sqlite3_finalize(st);
	cf_policy_plan_free(&plan);
	return rc;
}

static void expect_rows(void **state, uint64_t k, bool allow_rows, const char *q, const char *want)
{
	cf_buf csv;
	char why[320];
	cf_err rc = run(*state, k, allow_rows, q, &csv, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s: %s", q, cf_errname(rc), why);
	if (strcmp((const char *)csv.data, want) != 0)
		fail_msg("%s:\ngot  \"%s\"\nwant \"%s\"", q, (const char *)csv.data, want);
	cf_buf_free(&csv);
}

static void expect_refused(void **state, uint64_t k, bool allow_rows, const char *q, cf_err want,
			   const char *msg_part)
{
	cf_buf csv;
	char why[320];
	cf_err rc = run(*state, k, allow_rows, q, &csv, why, sizeof(why));
	if (rc != want)
		fail_msg("%s: %s (%s), wanted %s", q, cf_errname(rc), why, cf_errname(want));
	if (msg_part && !strstr(why, msg_part))
		fail_msg("%s: \"%s\" does not say \"%s\"", q, why, msg_part);
	cf_buf_free(&csv);
}

static void test_min_group_size(void **state)
{
	static const char q[] = "SELECT dept, count(*) AS n, avg(salary) AS pay FROM people "
				"GROUP BY dept ORDER BY dept";
	/* Without the policy every group shows, C's single salary included. */
	expect_rows(state, 1, true, q, "dept,n,pay\r\nA,5,30.0\r\nB,3,200.0\r\nC,1,1000.0\r\n");
	/* k = 3: B (exactly 3) is kept, C (1) is suppressed. */
	expect_rows(state, 3, true, q, "dept,n,pay\r\nA,5,30.0\r\nB,3,200.0\r\n");
	expect_rows(state, 4, true, q, "dept,n,pay\r\nA,5,30.0\r\n");
	expect_rows(state, 6, true, q, "dept,n,pay\r\n");
	expect_rows(state, 2, true, q, "dept,n,pay\r\nA,5,30.0\r\nB,3,200.0\r\n");
	/* Suppression happens before LIMIT: the smallest group kept is B, not C. */
	expect_rows(state, 3, true,
		    "SELECT dept, count(*) AS n FROM people GROUP BY dept ORDER BY n LIMIT 1",
		    "dept,n\r\nB,3\r\n");
	/* And alongside the task's own HAVING. */
	expect_rows(state, 3, true,
		    "SELECT dept, sum(salary) AS s FROM people GROUP BY dept HAVING sum(salary) > 200 "
		    "ORDER BY dept", "dept,s\r\nB,600\r\n");
	expect_rows(state, 1, true,
		    "SELECT dept, sum(salary) AS s FROM people GROUP BY dept HAVING sum(salary) > 200 "
		    "ORDER BY dept", "dept,s\r\nB,600\r\nC,1000\r\n");
	/* Aggregates over all rows: one row, dropped if it covers fewer than k rows. */
	expect_rows(state, 3, true, "SELECT count(*) AS n, sum(salary) AS s FROM people",
		    "n,s\r\n9,1750\r\n");
	expect_rows(state, 3, true, "SELECT avg(salary) AS pay FROM people WHERE dept = 'C'",
		    "pay\r\n");
	expect_rows(state, 3, true, "SELECT max(salary) AS top FROM people WHERE dept = 'B'",
		    "top\r\n300\r\n");
}

static void test_joins(void **state)
{
	/*
	 * a1's ten visits make ten joined rows in A, but one person: A is
	 * suppressed, as is C (one person, five visits). B: three people.
	 */
	static const char q[] = "SELECT p.dept, count(*) AS visits, sum(v.amount) AS total "
				"FROM people p JOIN visits v ON v.name = p.name "
				"GROUP BY p.dept ORDER BY p.dept";
	expect_rows(state, 1, true, q, "dept,visits,total\r\nA,10,10\r\nB,3,15\r\nC,5,35\r\n");
	expect_rows(state, 3, true, q, "dept,visits,total\r\nB,3,15\r\n");
	/* Multiplying rows by a self-join: each group is still one person. */
	expect_rows(state, 3, true,
		    "SELECT a.name, max(a.salary) AS pay FROM people a, people b GROUP BY a.name",
		    "name,pay\r\n");
	expect_rows(state, 3, true,
		    "SELECT a.name, max(a.salary) AS pay FROM people AS a CROSS JOIN people AS b "
		    "GROUP BY a.name", "name,pay\r\n");
	/*
	 * LEFT JOIN: a group needs k rows of each side it names. A's ten visit
	 * rows are ten rows (the rule counts rows, not people: docs).
	 */
	expect_rows(state, 3, true,
		    "SELECT p.dept, count(v.name) AS n FROM people p LEFT JOIN visits v USING (name) "
		    "GROUP BY p.dept ORDER BY 1", "dept,n\r\nA,10\r\nB,3\r\n");
	expect_rows(state, 1, true,
		    "SELECT p.city, count(v.name) AS n FROM people p LEFT JOIN visits v USING (name) "
		    "GROUP BY p.city ORDER BY 1", "city,n\r\nX,13\r\nY,0\r\nZ,5\r\n");
	expect_rows(state, 2, true,
		    "SELECT p.city, count(v.name) AS n FROM people p LEFT JOIN visits v USING (name) "
		    "GROUP BY p.city ORDER BY 1", "city,n\r\nX,13\r\n");
}

static void test_allow_rows(void **state)
{
	expect_refused(state, 1, false, "SELECT name, salary FROM people", CF_ERR_AUTH,
		       "does not aggregate");
	expect_refused(state, 1, false, "SELECT name FROM people WHERE salary > 100",
		       CF_ERR_AUTH, "does not aggregate");
	/* One group per person: each output row is one input row. */
	expect_refused(state, 1, false,
		       "SELECT name, max(salary) AS m FROM people GROUP BY name", CF_ERR_AUTH,
		       "an output row comes from a single row of table people");
	/* One department has a single person: the whole result is refused... */
	expect_refused(state, 1, false, "SELECT dept, count(*) FROM people GROUP BY dept",
		       CF_ERR_AUTH, "single row");
	/* ...unless min_group_size suppresses it first. */
	expect_rows(state, 2, false,
		    "SELECT dept, count(*) AS n FROM people GROUP BY dept ORDER BY dept",
		    "dept,n\r\nA,5\r\nB,3\r\n");
	expect_rows(state, 1, false, "SELECT count(*) AS n FROM people", "n\r\n9\r\n");
	expect_refused(state, 1, false, "SELECT max(salary) FROM people WHERE dept = 'C'",
		       CF_ERR_AUTH, "single row");
	/* With the policy off, rows are fine. */
	expect_rows(state, 1, true, "SELECT name FROM people WHERE dept = 'C'", "name\r\nc1\r\n");
}

static void test_unsupported_shapes(void **state)
{
	static const char *const queries[] = {
		"SELECT dept, count(*) FROM (SELECT * FROM people) GROUP BY dept",
		"WITH p AS (SELECT * FROM people) SELECT dept, count(*) FROM p GROUP BY dept",
		"SELECT dept, count(*) FROM people GROUP BY dept UNION SELECT 'x', 1",
		"SELECT dept, count(*) OVER () FROM people GROUP BY dept",
		"SELECT dept, sum(count(*)) OVER (ORDER BY dept) FROM people GROUP BY dept",
		"SELECT DISTINCT dept, count(*) FROM people GROUP BY dept",
		"SELECT * FROM people GROUP BY dept",
		"SELECT people.*, count(*) FROM people GROUP BY dept",
		"SELECT dept, count(*) FROM main.people GROUP BY dept",
		"SELECT dept, count(*) FROM people, json_each('[1,2]') GROUP BY dept",
		"SELECT dept, count(*) FROM people INDEXED BY x GROUP BY dept",
		"SELECT dept, count(*) FROM people WHERE name IN (SELECT name FROM visits) GROUP BY dept",
		"SELECT dept, count(*) FROM people WHERE EXISTS (SELECT 1) GROUP BY dept",
		"SELECT dept, (SELECT max(salary) FROM people) FROM people GROUP BY dept",
		"SELECT dept, count(*) FROM (people) GROUP BY dept",
		"VALUES (1)",
		"SELECT 1",
		"SELECT dept, count(*) FROM people HAVING count(*) > 1",
	};
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		expect_refused(state, 3, true, queries[i], CF_ERR_UNSUPPORTED, NULL);
	expect_refused(state, 3, true, queries[0], CF_ERR_UNSUPPORTED, "subqueries");
	expect_refused(state, 3, true, queries[3], CF_ERR_UNSUPPORTED, "window");
	expect_refused(state, 3, true, queries[6], CF_ERR_UNSUPPORTED, "name the columns");
}

static void test_forbidden_expressions(void **state)
{
	/* Aggregates that list their input. */
	expect_refused(state, 3, true, "SELECT dept, group_concat(name) FROM people GROUP BY dept",
		       CF_ERR_AUTH, "group_concat() lists input values");
	expect_refused(state, 3, true,
		       "SELECT dept, json_group_array(salary) FROM people GROUP BY dept", CF_ERR_AUTH,
		       NULL);
	/* A bare column: SQLite would show one row's value (here the top earner's name). */
	expect_refused(state, 3, true, "SELECT dept, name, max(salary) FROM people GROUP BY dept",
		       CF_ERR_AUTH, "the select list uses column name outside an aggregate");
	expect_refused(state, 3, true,
		       "SELECT dept, count(*) FROM people GROUP BY dept ORDER BY salary", CF_ERR_AUTH,
		       "ORDER BY uses column salary");
	expect_refused(state, 3, true,
		       "SELECT dept, count(*) FROM people GROUP BY dept HAVING max(salary) > salary",
		       CF_ERR_AUTH, "HAVING");
	expect_refused(state, 3, true, "SELECT salary + 1, count(*) FROM people GROUP BY dept",
		       CF_ERR_AUTH, NULL);
	/* min and max with two arguments are scalar functions, not aggregates. */
	expect_refused(state, 3, true,
		       "SELECT dept, max(salary, 0) FROM people GROUP BY dept", CF_ERR_AUTH, NULL);
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM other GROUP BY dept",
		       CF_ERR_AUTH, "other is not a table of the task");
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM people GROUP BY dept; SELECT 1",
		       CF_ERR_AUTH, "more than one statement");
	expect_refused(state, 3, true, "SELECT 'unterminated FROM people GROUP BY dept",
		       CF_ERR_PARSE, "unterminated");
	expect_refused(state, 3, true, "SELECT dept, count(* FROM people GROUP BY dept",
		       CF_ERR_PARSE, "balance");
	/* Empty clauses (a fuzzer found the rewrite reading before its start on these). */
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM people GROUP BY dept HAVING LIMIT 1",
		       CF_ERR_PARSE, "empty HAVING clause");
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM people GROUP BY dept HAVING",
		       CF_ERR_PARSE, "empty HAVING");
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM people GROUP BY dept ORDER BY;",
		       CF_ERR_PARSE, "empty ORDER");
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM people WHERE GROUP BY dept",
		       CF_ERR_PARSE, "empty WHERE");
	expect_refused(state, 3, true, "SELECT dept, count(*) FROM GROUP BY dept", CF_ERR_PARSE,
		       "empty FROM");
	expect_refused(state, 3, true, "SELECT count(*) FROM people LIMIT", CF_ERR_PARSE,
		       "empty LIMIT");
}

static void test_allowed_shapes(void **state)
{
	expect_rows(state, 3, true, "SELECT dept, count(*) FROM people GROUP BY 1 ORDER BY 1",
		    "dept,count(*)\r\nA,5\r\nB,3\r\n");
	expect_rows(state, 3, true,
		    "SELECT substr(city, 1, 1) AS c1, count(*) AS n FROM people GROUP BY c1 ORDER BY c1",
		    "c1,n\r\nX,5\r\nY,3\r\n");
	expect_rows(state, 3, true,
		    "SELECT lower(dept) AS d, round(avg(salary), 1) AS pay, count(DISTINCT city) AS "
		    "cities FROM people GROUP BY dept ORDER BY d",
		    "d,pay,cities\r\na,30.0,2\r\nb,200.0,1\r\n");
	expect_rows(state, 3, true,
		    "SELECT dept, count(*) FILTER (WHERE salary > 15) AS rich FROM people "
		    "GROUP BY dept ORDER BY dept", "dept,rich\r\nA,4\r\nB,3\r\n");
	expect_rows(state, 3, true,
		    "select DEPT, Count(*) as N from PEOPLE as P group by P.dept order by p.DEPT",
		    "dept,N\r\nA,5\r\nB,3\r\n");
	/* Keywords inside comments and strings are not clauses. */
	expect_rows(state, 3, true,
		    "SELECT dept /* FROM x GROUP BY y */, count(*) AS 'GROUP BY' FROM people "
		    "WHERE name <> 'FROM' AND \"name\" <> ') HAVING (' -- GROUP BY z\n"
		    "GROUP BY dept ORDER BY dept -- ORDER BY\n",
		    "dept,GROUP BY\r\nA,5\r\nB,3\r\n");
	expect_rows(state, 3, true,
		    "SELECT dept, count(*) AS n FROM people WHERE city IS NOT DISTINCT FROM 'X' OR "
		    "city IS DISTINCT FROM 'X' GROUP BY dept ORDER BY dept;",
		    "dept,n\r\nA,5\r\nB,3\r\n");
	expect_rows(state, 3, true,
		    "SELECT CASE WHEN dept = 'A' THEN 'first' ELSE 'other' END AS d, sum(salary) AS s "
		    "FROM people GROUP BY d ORDER BY d", "d,s\r\nfirst,150\r\nother,1600\r\n");
	/* A column named like a helper is just a column; the real count still rules. */
	expect_rows(state, 3, true,
		    "SELECT dept, 100 AS \"__coffer_rows_0\" FROM people GROUP BY dept ORDER BY dept",
		    "dept,__coffer_rows_0\r\nA,100\r\nB,100\r\n");
}

static void test_rewrite_text(void **state)
{
	(void)state;
	cf_policy p = { 5, true };
	cf_policy_plan plan;
	char why[200];
	assert_int_equal(cf_policy_plan_make(&p, "SELECT dept, avg(salary) FROM people GROUP BY dept",
					     tables, 2, &plan, why, sizeof(why)), CF_OK);
	assert_true(plan.active);
	assert_true(plan.grouped);
	assert_int_equal(plan.nhelpers, 1);
	assert_string_equal(plan.helper_tables[0], "people");
	assert_string_equal(plan.query,
			    "SELECT dept, avg(salary) , count(DISTINCT \"people\".rowid) AS "
			    "\"__coffer_rows_0\" FROM people GROUP BY dept HAVING "
			    "count(DISTINCT \"people\".rowid) >= 5");
	cf_policy_plan_free(&plan);
	assert_int_equal(cf_policy_plan_make(&p, "SELECT a.dept, count(*) FROM people a JOIN "
					     "visits AS \"v\" ON a.name = v.name GROUP BY 1 HAVING "
					     "count(*) > 1 ORDER BY 2 LIMIT 3", tables, 2, &plan,
					     why, sizeof(why)), CF_OK);
	assert_int_equal(plan.nhelpers, 2);
	assert_string_equal(plan.query,
			    "SELECT a.dept, count(*) , count(DISTINCT \"a\".rowid) AS \"__coffer_rows_0\" "
			    ", count(DISTINCT \"v\".rowid) AS \"__coffer_rows_1\" FROM people a JOIN "
			    "visits AS \"v\" ON a.name = v.name GROUP BY 1 HAVING (count(*) > 1) AND "
			    "count(DISTINCT \"a\".rowid) >= 5 AND count(DISTINCT \"v\".rowid) >= 5 "
			    "ORDER BY 2 LIMIT 3");
	cf_policy_plan_free(&plan);
	/* Off: the query runs as written. */
	cf_policy off = { 1, true };
	assert_int_equal(cf_policy_plan_make(&off, "SELECT * FROM people", tables, 2, &plan, why,
					     sizeof(why)), CF_OK);
	assert_false(plan.active);
	assert_string_equal(plan.query, "SELECT * FROM people");
	cf_policy_plan_free(&plan);
	cf_policy zero = { 0, true };
	assert_int_equal(cf_policy_plan_make(&zero, "SELECT 1", tables, 2, &plan, why, sizeof(why)),
			 CF_OK);
	assert_false(plan.active);
	cf_policy_plan_free(&plan);
	cf_policy huge = { CF_POLICY_MAX_K + 1, true };
	assert_int_equal(cf_policy_plan_make(&huge, "SELECT 1", tables, 2, &plan, why, sizeof(why)),
			 CF_ERR_ARG);
	cf_policy_plan_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_min_group_size),
		cmocka_unit_test(test_joins),
		cmocka_unit_test(test_allow_rows),
		cmocka_unit_test(test_unsupported_shapes),
		cmocka_unit_test(test_forbidden_expressions),
		cmocka_unit_test(test_allowed_shapes),
		cmocka_unit_test(test_rewrite_text),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
