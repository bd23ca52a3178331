/*
 * Fuzzes coffer-enclave's task parser (enclave/job.c): the enclave reads
 * the task cofferd hands it before any key is released, so every function
 * kind's members (sql, xgboost.train, xgboost.predict, stats, psi), the
 * outputs, inputs and policy are parsed from bytes an attacker chooses.
 * A parse either fails with a reason or yields a job whose outputs and
 * inputs are all named; cf_job_free must release both.
 * Corpus: corpus/enclave_job/ (the example tasks of docs/tasks.md and
 * hostile variants).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/json.h"
#include "job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *task = NULL;
	if (cf_json_parse((const char *)data, size, NULL, &task) != CF_OK)
		return 0;
	cf_job job;
	char why[256];
	memset(&job, 0, sizeof(job));
	cf_err rc = cf_job_parse(task, &job, why, sizeof(why));
	if (rc == CF_OK) {
		for (size_t i = 0; i < job.noutputs; i++)
			if (!job.outputs[i].name || !cf_job_valid_output_name(job.outputs[i].name))
				abort();
		for (size_t i = 0; i < job.ninputs; i++)
			if (!job.inputs[i].table || !job.inputs[i].dataset)
				abort();
	} else if (!memchr(why, '\0', sizeof(why)) || why[0] == '\0') {
		abort(); /* every refusal says why */
	}
	cf_job_free(&job);
	json_decref(task);
	return 0;
}
