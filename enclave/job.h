/*
 * job: what coffer-enclave does for a task (docs/tasks.md).
 *
 * The task JSON is what every data owner signed (its digest); the KMS
 * checks its inputs, outputs and TEE, and this module the rest: the
 * function (sql, xgboost.train, xgboost.predict, stats, psi), the inputs'
 * formats, each output's query (its own, the function's, or none: the
 * function's result), and the output policy. Parsing is strict: an
 * unknown member of an input, function, outputs or policy is refused,
 * because a misspelt "min_group_size" must not silently mean "no policy".
 */
#ifndef COFFER_ENCLAVE_JOB_H
#define COFFER_ENCLAVE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "coffer/err.h"
#include "policy.h"
#include "xgb.h"

/*
 * The functions "stats" and "psi" are built in when their modules are
 * there (enclave/stats.h, psi.h; enclave/meson.build compiles them);
 * without them the kinds are refused as unsupported.
 */
#if defined(__has_include)
#if __has_include("stats.h")
#define CF_JOB_HAVE_STATS 1
#endif
#if __has_include("psi.h")
#define CF_JOB_HAVE_PSI 1
#endif
#endif
#ifndef CF_JOB_HAVE_STATS
#define CF_JOB_HAVE_STATS 0
#endif
#ifndef CF_JOB_HAVE_PSI
#define CF_JOB_HAVE_PSI 0
#endif

#define CF_JOB_MAX_OUTPUTS 16
#define CF_JOB_DEFAULT_MAX_ROWS 1000000u
#define CF_JOB_MAX_ROWS 10000000u

/* What an input's plaintext is: a CSV table, or an XGBoost model kept as bytes. */
typedef enum cf_job_format { CF_INPUT_CSV = 0, CF_INPUT_XGB_MODEL = 1 } cf_job_format;

typedef struct cf_job_input {
	char *table;
	char *dataset;  /* "ORG/NAME" */
	cf_job_format format;
	bool direct;    /* CSV read straight into xgboost.predict's matrix (function.table) */
} cf_job_input;

/* What an output without a query of its own receives from the function. */
typedef enum cf_job_result { CF_RESULT_MAIN = 0, CF_RESULT_METRICS = 1 } cf_job_result;

typedef struct cf_job_output {
	char *name;
	/*
	 * The output's own query, or the function's (kind sql). NULL for
	 * another kind's output without a query: it gets the function's
	 * result (`result`).
	 */
	char *query;
	cf_job_result result;
} cf_job_output;

typedef enum cf_job_fn {
	CF_FN_SQL = 0,
	CF_FN_XGB_TRAIN,
	CF_FN_XGB_PREDICT,
	CF_FN_STATS,
	CF_FN_PSI,
} cf_job_fn;

typedef struct cf_job {
	cf_job_fn kind;
	json_t *function;        /* the task's function object (a reference) */
	char *function_json;     /* the same, compact JSON */
	cf_xgb_train train;      /* kind xgboost.train */
	cf_xgb_predict predict;  /* kind xgboost.predict */
	cf_job_input *inputs;
	size_t ninputs;
	cf_job_output *outputs;
	size_t noutputs;
	cf_policy policy;
	unsigned time_budget_seconds;
	uint64_t max_result_rows;
} cf_job;

/*
 * Parses and checks a task: version 1, cf_task_check's members, inputs
 * {"dataset", "format"?} with table names (cf_csv_valid_table, distinct
 * ignoring case) and format "csv" (the default) or "xgboost-json",
 * the function (docs/tasks.md: kind "sql" {"query"}, "xgboost.train"
 * (xgb.h), "xgboost.predict" (xgb.h; its "model" must be the one
 * xgboost-json input), "stats" and "psi" (checked by their own modules
 * when they run), outputs [{"name", "recipients", "query"?}] with
 * distinct names (cf_job_valid_output_name), policy {"min_group_size",
 * "allow_rows", "time_budget_seconds", "max_result_rows"} (each
 * optional). CF_ERR_PARSE, or CF_ERR_UNSUPPORTED for another function
 * kind, with why set.
 */
cf_err cf_job_parse(const json_t *task, cf_job *out, char *why, size_t whylen) CF_WUR;
void cf_job_free(cf_job *j);

/* An output name: 1 to 64 of [a-z0-9_-], starting with a letter or digit. */
bool cf_job_valid_output_name(const char *s);

#endif
