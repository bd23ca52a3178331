/*
 * run: the enclave's side of cofferd's run endpoints (docs/api.md,
 * "Tasks and runs"), on libcoffer's cofferd client (coffer/cofferd_client.h:
 * TLS 1.3 trusting only the CA of the run parameters, no redirects, the
 * run token wiped when the client is freed).
 *
 * cofferd is untrusted: this layer only moves bytes, and the caller checks
 * what they are against the KMS's answer (the task by its digest, each
 * input by its header hash and age's authentication). Input blobs stream
 * through a cf_reader, so the decryptor pulls ciphertext and never holds
 * a whole file; an output's ciphertext is uploaded in parts of at most
 * 8 MiB and committed with its size, SHA-256 and the enclave's signature
 * over them (the release's output key, docs/kms.md). The token goes to the
 * cofferd of the run parameters and nowhere else: of a blob's URL only
 * the path is used.
 */
#ifndef COFFER_ENCLAVE_RUN_H
#define COFFER_ENCLAVE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "coffer/cofferd_client.h"
#include "coffer/err.h"
#include "coffer/kms_client.h"

#define CF_RUN_MAX_BLOB_PATH 512

typedef struct cf_run cf_run;

/*
 * A client for run `run_id` ("run-" + 16 hex digits) of the cofferd at url
 * ("https://HOST[:PORT]"), trusting only the PEM CA, with the run token.
 */
cf_err cf_run_open(const char *url, const void *ca_pem, size_t ca_len, const char *token,
		   const char *run_id, cf_run **out) CF_WUR;
void cf_run_free(cf_run *r);
/* The last failure: HTTP status, cofferd's code and message, or the transport's. */
const char *cf_run_error(cf_run *r);

/* GET /v1/runs/RUN/spec: {task, approvals, inputs: [...], ...}. */
cf_err cf_run_spec(cf_run *r, json_t **spec) CF_WUR;

/*
 * The path of a blob URL: the URL itself if it is a path ("/v1/..."), or
 * what follows the host of an https URL. It must start with "/v1/";
 * CF_ERR_ARG otherwise, CF_ERR_TOO_BIG if it does not fit in cap.
 */
cf_err cf_run_blob_path(const char *blob_url, char *path, size_t cap) CF_WUR;
/*
 * Opens the download of blob_url's path from this run's cofferd, at most
 * max bytes. A refusal comes back here, before any byte; read the bytes
 * through cf_cofferd_stream_reader, free with cf_cofferd_stream_free.
 */
cf_err cf_run_blob_open(cf_run *r, const char *blob_url, uint64_t max,
			cf_cofferd_stream **out) CF_WUR;

/*
 * Uploads an output's ciphertext (PUT .../outputs/NAME?offset=N in parts)
 * and commits it (POST .../outputs/NAME/commit {size, sha256,
 * attestation}), the attestation signed with the output key of rel, the
 * KMS's release for this task (cf_kms_output_attestation over the
 * SHA-256 of the bytes uploaded): what lets a recipient tell this output
 * from one cofferd made up. name is an output name of the task
 * (cf_job_valid_output_name); rel must hold an output key (CF_ERR_ARG,
 * before anything is sent).
 */
cf_err cf_run_output_put(cf_run *r, const char *name, const uint8_t *data, size_t len,
			 const cf_kms_release_result *rel) CF_WUR;

/* POST /v1/runs/RUN/finish {status: "succeeded"|"failed", message}. */
cf_err cf_run_finish(cf_run *r, bool succeeded, const char *message) CF_WUR;

#endif
