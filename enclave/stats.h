/*
 * stats: per-column statistics, the task function {"kind": "stats"}
 * (docs/tasks.md, "stats").
 *
 *   {"kind": "stats",
 *    "table": "a",                       one of the task's inputs
 *    "columns": ["spend", "age"],        optional: every INTEGER or REAL
 *                                        column not in group_by
 *    "group_by": ["region"],             optional, 1 to 16 columns
 *    "quantiles": [0.5, 0.9],            optional, 1 to 32 in [0, 1]
 *    "histogram": {"bins": 10}}          optional, 1 to 1000 bins
 *
 * The output CSV (CRLF line ends, values formatted like every output):
 *
 *   <group_by columns...>,column,kind,count,mean,variance,min,max,q<q>...[,lo,hi]
 *
 * One "summary" row per (group, column), then, with a histogram, that
 * column's "bin" rows; groups in SQLite's ascending order of the group_by
 * values (NULL is a group of its own, first), columns in the order
 * asked (or the table's). lo and hi are present only with a histogram.
 *
 *   summary: count = the group's non-NULL values of the column; mean;
 *     variance = the sample variance, sum((x - mean)^2) / (count - 1),
 *     empty when count < 2; min, max (integers for an INTEGER column);
 *     q<q> = the quantile by linear interpolation between closest ranks
 *     (R's type 7, numpy's default): for the sorted values x[0..n-1],
 *     h = (n - 1) q, x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h]).
 *     A column with no value in the group has count 0 and the rest empty.
 *     The header names a quantile "q" then the number as "%.15g" prints it
 *     (q0.5, q0.99, q1). lo and hi are empty.
 *   bin: count = the values in [lo, hi) (the last bin [lo, hi]); mean ...
 *     q<q> empty. The bins split [min, max] of the group's values into
 *     "bins" equal widths, edges e_i = min + (max - min) i / bins (e_bins =
 *     max), a value going to the last bin whose lower edge is <= it (all
 *     values in the last bin when min = max). A column with no value has
 *     no bins.
 *
 * The output policy (docs/output-policy.md), with k = min_group_size:
 *   - k >= 2: a (group, column) summary row whose count is below k is
 *     suppressed with its bins (so a group of fewer than k rows is
 *     suppressed entirely; with no group_by the table is the one group);
 *     bins holding fewer than k values are merged, left to right, with
 *     their right-hand neighbours until each holds at least k, a remainder
 *     joining the last bin, so every bin shown holds at least k values and
 *     the bins still add up to count (no suppressed count to difference).
 *   - allow_rows false: a summary row or bin with a count of exactly 1
 *     refuses the whole output (with k >= 2 none is left).
 *
 * Values are read through the fence: cf_stats_run prepares its own
 * SELECT (every name checked against the table's columns first, and
 * always quoted) with cf_sql_prepare and steps it with cf_sql_step, so
 * the task's time budget counts it. One group's values of the columns
 * are held at once (as doubles, in SQLite's capped and wiped heap).
 */
#ifndef COFFER_ENCLAVE_STATS_H
#define COFFER_ENCLAVE_STATS_H

#include <stddef.h>

#include <jansson.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "policy.h"
#include "sql.h"

#define CF_STATS_MAX_COLUMNS 1000
#define CF_STATS_MAX_GROUP_BY 16
#define CF_STATS_MAX_QUANTILES 32
#define CF_STATS_MAX_BINS 1000

/*
 * Checks the function's shape without a database (for the task parser):
 * the members above, kind "stats", anything else refused (also inside
 * "histogram"); names 1 to 1024 bytes, no duplicates (ASCII case
 * ignored), quantiles distinct. CF_ERR_PARSE with why set.
 */
cf_err cf_stats_check(const json_t *function, char *why, size_t whylen) CF_WUR;

/*
 * Computes the statistics and writes their CSV into csv, empty and
 * initialised secret by the caller (cf_buf_init(csv, max, true); its max
 * bounds the output: CF_ERR_TOO_BIG). sql must be armed (cf_sql_arm) with
 * the table allowed. policy may be NULL (none). output_name is used in
 * messages only, which then start "output NAME: " (may be NULL).
 *
 * CF_ERR_PARSE (malformed function, a non-numeric column, a group_by
 * name that clashes with a statistics column of the header),
 * CF_ERR_NOT_FOUND (no such table or column, or no numeric column),
 * CF_ERR_AUTH (allow_rows false and a count of 1, or a table the fence
 * does not allow), CF_ERR_LIMIT (time budget), CF_ERR_TOO_BIG,
 * CF_ERR_NOMEM, CF_ERR_ARG (a NULL argument, csv not secret). why never
 * holds a value from the data. On failure csv is reset (wiped).
 */
cf_err cf_stats_run(cf_sql *sql, const json_t *function, const char *output_name,
		    const cf_policy *policy, cf_buf *csv, char *why, size_t whylen) CF_WUR;

#endif
