/*
 * policy: the output policy of a task (docs/output-policy.md).
 *
 * Two rules, both exact, both enforced in the enclave whatever cofferd or
 * the analyst says:
 *
 *   min_group_size k: every output row must be computed from at least k
 *   distinct rows of every table reference in the query's FROM clause;
 *   groups below k are suppressed.
 *
 *   allow_rows false: the query must aggregate, and no output row may be
 *   computed from exactly one row of a table reference (else the result
 *   is refused).
 *
 * With either rule on, the query must have a shape the enclave can check
 * (one SELECT, aggregating: GROUP BY, or aggregates over all rows; FROM
 * of the task's tables joined in any way; no subquery, CTE, compound,
 * window or DISTINCT; every column used outside count/sum/total/avg and
 * one-argument min/max is a GROUP BY column; no group_concat or
 * json_group_*), and the enclave rewrites it: for each table reference R
 * it appends the result column count(DISTINCT R.rowid) AS
 * "__coffer_rows_N" and, when grouped and k >= 2, adds
 * count(DISTINCT R.rowid) >= k to HAVING, so suppression happens inside
 * SQLite, before ORDER BY and LIMIT. Each row's helper columns are then
 * checked again (defence in depth), and dropped from the output. A query
 * of any other shape is refused with the reason, never guessed at.
 *
 * The tokenizer follows SQLite's (strings, the three quoted identifier
 * forms, comments, blobs, parameters); it never decides alone: a
 * misplaced rewrite fails to compile or fails the helper-column check.
 */
#ifndef COFFER_ENCLAVE_POLICY_H
#define COFFER_ENCLAVE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "coffer/err.h"

#define CF_POLICY_MAX_K 1000000000ull
#define CF_POLICY_HELPER_PREFIX "__coffer_rows_"

typedef struct cf_policy {
	uint64_t min_group_size; /* 1 (or 0): no threshold */
	bool allow_rows;         /* true: no refusal of unaggregated rows */
} cf_policy;

/* A table of the task and its columns (borrowed). */
typedef struct cf_policy_table {
	const char *name;
	char *const *columns;
	size_t ncolumns;
} cf_policy_table;

typedef struct cf_policy_plan {
	char *query;           /* the SQL to run: the task's, or its rewrite */
	bool active;           /* false: the policy asks nothing of this query */
	bool grouped;          /* GROUP BY (else one row of aggregates over all rows) */
	uint64_t k;
	bool allow_rows;
	size_t nhelpers;       /* trailing helper columns, one per table reference */
	char **helper_tables;  /* the table each helper counts, for messages */
	int visible;           /* columns kept in the output (cf_policy_bind) */
	uint64_t rows;         /* rows seen by cf_policy_row */
} cf_policy_plan;

/*
 * Checks query against the policy and makes the plan. CF_ERR_UNSUPPORTED
 * (a shape the enclave cannot check), CF_ERR_AUTH (a shape the policy
 * forbids: not aggregating, group_concat, a bare column), CF_ERR_PARSE
 * (does not tokenize), with why set; the text in why comes from the query.
 */
cf_err cf_policy_plan_make(const cf_policy *policy, const char *query,
			   const cf_policy_table *tables, size_t ntables, cf_policy_plan *out,
			   char *why, size_t whylen) CF_WUR;
/*
 * After the plan's query was prepared: checks that the helper columns
 * are the last ones, under their names (CF_ERR_AUTH if not), and sets
 * plan->visible.
 */
cf_err cf_policy_bind(cf_policy_plan *plan, sqlite3_stmt *st, char *why, size_t whylen) CF_WUR;
/*
 * For each row: *keep false suppresses it (a group below k). CF_ERR_AUTH
 * refuses the whole result (allow_rows false and a row from one input
 * row, or helper values that contradict the rewrite).
 */
cf_err cf_policy_row(cf_policy_plan *plan, sqlite3_stmt *st, bool *keep, char *why,
		     size_t whylen) CF_WUR;
void cf_policy_plan_free(cf_policy_plan *plan);

#endif
