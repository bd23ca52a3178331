/*
 * job: what coffer-enclave does for a task (docs/tasks.md).
 *
 * The task JSON is what every data owner signed (its digest); the KMS
 * checks its inputs, outputs and TEE, and this module the rest: a SQL
 * function, each output's query (its own, or the function's), and the
 * output policy. Parsing is strict: an unknown member of function,
 * outputs or policy is refused, because a misspelt "min_group_size"
 * must not silently mean "no policy".
 */
#ifndef COFFER_ENCLAVE_JOB_H
#define COFFER_ENCLAVE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "coffer/err.h"
#include "policy.h"

#define CF_JOB_MAX_OUTPUTS 16
#define CF_JOB_DEFAULT_MAX_ROWS 1000000u
#define CF_JOB_MAX_ROWS 10000000u

typedef struct cf_job_input {
	char *table;
	char *dataset;  /* "ORG/NAME" */
} cf_job_input;

typedef struct cf_job_output {
	char *name;
	char *query;    /* the output's own, or the function's */
} cf_job_output;

typedef struct cf_job {
	cf_job_input *inputs;
	size_t ninputs;
	cf_job_output *outputs;
	size_t noutputs;
	cf_policy policy;
	unsigned time_budget_seconds;
	uint64_t max_result_rows;
} cf_job;

/*
 * Parses and checks a task: version 1, cf_task_check's members, table
 * names (cf_csv_valid_table, distinct ignoring case), function {"kind":
 * "sql", "query"}, outputs [{"name", "recipients", "query"?}] with
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
