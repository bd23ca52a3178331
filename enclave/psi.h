/*
 * psi: private set intersection, the task function {"kind": "psi"}
 * (docs/tasks.md, "psi").
 *
 *   {"kind": "psi",
 *    "keys": {"a": "id", "b": "cust_id"},      table -> key column, 2 to 64
 *    "outputs": {"overlap": "count", "matches": "ids"}}
 *
 * Every output of the task must be named in "outputs" with the form it
 * gets: "count" is the CSV "count\r\nN\r\n", "ids" the CSV "id\r\n" and
 * then the intersecting key values, one per row. The function is part of
 * what the owners sign, so the form an output (and hence its recipients)
 * receives is fixed by the task, never by the caller: cf_psi_run takes
 * the output's name and looks its form up.
 *
 * Set semantics, exactly: each table contributes the distinct non-NULL
 * values of its key column; the result is the values present in every
 * table. NULL never matches. Values are compared as SQLite compares them
 * after the loader's type inference (cf_fn_value_cmp): an INTEGER and a
 * REAL match when numerically equal (1 and 1.0), text matches text
 * byte for byte (case matters, no trimming), and a number never matches
 * a text. So whether '1' in one file meets 1 in the other depends on the
 * columns' inferred types: in an INTEGER or REAL column it is the number
 * 1; in a TEXT column (one holding any non-numeric value, or 007-style
 * leading zeros) it is the text '1', which no number matches.
 *
 * "ids" are sorted in SQLite's order (numbers ascending, then text
 * bytewise) and printed as the value stands in the first table of
 * "keys" by name (bytewise), formatted like every output
 * (cf_output_csv_row).
 *
 * The output policy, as for a SQL query (docs/output-policy.md): "ids"
 * lists input rows, so it is refused with min_group_size >= 2 or
 * allow_rows false; "count" is an aggregate over all rows, so with
 * min_group_size k >= 2 a count below k is suppressed (the CSV is the
 * header alone), and with allow_rows false a count of exactly 1 refuses
 * the output.
 */
#ifndef COFFER_ENCLAVE_PSI_H
#define COFFER_ENCLAVE_PSI_H

#include <stddef.h>

#include <jansson.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "policy.h"
#include "sql.h"

#define CF_PSI_MAX_TABLES 64
#define CF_PSI_MAX_OUTPUTS 16

typedef enum cf_psi_form { CF_PSI_COUNT = 1, CF_PSI_IDS = 2 } cf_psi_form;

/*
 * Checks the function's shape without a database (for the task parser,
 * before any key is released): members kind ("psi"), keys (2 to 64
 * distinct tables ignoring ASCII case, each to a column name), outputs
 * (1 to 16 names, each "count" or "ids"); any other member is refused.
 * CF_ERR_PARSE with why set.
 */
cf_err cf_psi_check(const json_t *function, char *why, size_t whylen) CF_WUR;

/*
 * The form function.outputs grants output_name: CF_ERR_NOT_FOUND if it
 * names no such output, CF_ERR_PARSE if the function is malformed.
 */
cf_err cf_psi_output_form(const json_t *function, const char *output_name, cf_psi_form *form,
			  char *why, size_t whylen) CF_WUR;

/*
 * Computes output_name's form of the intersection and writes its CSV into
 * csv, empty and initialised secret by the caller (cf_buf_init(csv, max,
 * true); its max bounds the output: CF_ERR_TOO_BIG). sql must be armed
 * (cf_sql_arm) with the key tables allowed: every statement runs under
 * the fence and the task's time budget. policy may be NULL (none).
 *
 * CF_ERR_PARSE (malformed function), CF_ERR_NOT_FOUND (a table or key
 * column that does not exist, or an output the function grants nothing),
 * CF_ERR_AUTH (the policy refuses the form or the result, or a table the
 * fence does not allow), CF_ERR_LIMIT (time budget), CF_ERR_TOO_BIG,
 * CF_ERR_NOMEM, CF_ERR_ARG (a NULL argument, csv not secret). why starts
 * with "output NAME: " and never holds a value from the data. On failure
 * csv is reset (wiped).
 */
cf_err cf_psi_run(cf_sql *sql, const json_t *function, const char *output_name,
		  const cf_policy *policy, cf_buf *csv, char *why, size_t whylen) CF_WUR;

#endif
