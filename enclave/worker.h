/*
 * worker: one task from released keys to encrypted outputs, with the
 * transport left to the caller.
 *
 * Given the parsed task, the KMS's release (file keys, header hashes and
 * the signed recipients statement) and a cf_worker_io that opens each
 * input's ciphertext and takes each output's ciphertext, the worker
 *
 *   1. decrypts every input with its released file key, refusing a file
 *      whose header is not the one the KMS registered, straight into the
 *      CSV loader (plaintext only ever in the heap: secretmem under the
 *      soft TEE);
 *   2. arms the fence (sql.h) over exactly the task's tables;
 *   3. runs the task's function (xgb.c, stats.c, psi.c for kinds other
 *      than sql; a model input is decrypted into secret bytes, not a
 *      table) and every output's query under the fence and the output
 *      policy into CSV, all of them before anything leaves, so a refusal
 *      of one output releases none;
 *   4. encrypts each CSV to the recipients of the KMS's statement and
 *      hands the ciphertext to the caller, which uploads and commits it.
 *
 * coffer-enclave's main.c plugs cofferd in; the tests plug in memory. The
 * message in why is for cofferd's run record: it never holds data (no
 * value, no column name from a file), only what failed and where.
 */
#ifndef COFFER_ENCLAVE_WORKER_H
#define COFFER_ENCLAVE_WORKER_H

#include <stddef.h>

#include "coffer/err.h"
#include "coffer/io.h"
#include "coffer/kms_client.h"
#include "csv.h"
#include "job.h"

/* All outputs' CSV together, held before any is encrypted. */
#define CF_WORKER_MAX_RESULT_BYTES (256u * 1024u * 1024u)

typedef struct cf_worker_io {
	void *arg;
	/* The ciphertext of input `table` (its dataset in the task). */
	cf_err (*input_open)(void *arg, const cf_job_input *in, cf_reader *out);
	void (*input_close)(void *arg, const cf_job_input *in);
	/* A sink for output `name`'s ciphertext; commit once it is all written. */
	cf_err (*output_open)(void *arg, const char *name, cf_writer *out);
	cf_err (*output_commit)(void *arg, const char *name);
	void (*output_abort)(void *arg, const char *name);
} cf_worker_io;

typedef struct cf_worker_stats {
	uint64_t input_rows;
	uint64_t output_rows;
	uint64_t suppressed_rows;
	size_t outputs;
} cf_worker_stats;

/*
 * Runs job. rel must be the release of this very task (cf_kms_release
 * checked the digest). limits NULL for the CSV defaults. On failure the
 * result is one of: CF_ERR_AUTH (a header not the registered one, the
 * fence or the policy refused), CF_ERR_PARSE (a malformed file, SQL that
 * does not compile), CF_ERR_LIMIT (time budget), CF_ERR_TOO_BIG (a limit),
 * CF_ERR_IO (the transport), with why set.
 */
cf_err cf_worker_run(const cf_job *job, const cf_kms_release_result *rel, const cf_worker_io *io,
		     const cf_csv_limits *limits, cf_worker_stats *stats, char *why,
		     size_t whylen) CF_WUR;

#endif
