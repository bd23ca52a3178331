#define CF_LOG_MODULE "run"

#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "job.h"

struct cf_run {
	cf_cofferd_client *c;
	char id[32];
	char error[640];
};

cf_err cf_run_open(const char *url, const void *ca_pem, size_t ca_len, const char *token,
		   const char *run_id, cf_run **out)
{
	cf_err rc;
	*out = NULL;
	if (!cf_cofferd_valid_id(run_id, "run") || !cf_cofferd_valid_token(token))
		return CF_ERR_ARG;
	cf_run *r = calloc(1, sizeof(*r));
	if (!r)
		return CF_ERR_NOMEM;
	snprintf(r->id, sizeof(r->id), "%s", run_id);
	if ((rc = cf_cofferd_client_open_pem(url, ca_pem, ca_len, &r->c)) != CF_OK ||
	    (rc = cf_cofferd_set_token(r->c, token)) != CF_OK) {
		cf_run_free(r);
		return rc;
	}
	*out = r;
	return CF_OK;
}

void cf_run_free(cf_run *r)
{
	if (!r)
		return;
	cf_cofferd_client_free(r->c);
	free(r);
}

const char *cf_run_error(cf_run *r)
{
	const cf_cofferd_error *e = cf_cofferd_client_error(r->c);
	if (e->status)
		snprintf(r->error, sizeof(r->error), "HTTP %ld%s%s%s%s", e->status,
			 e->code[0] ? ": " : "", e->code, e->message[0] ? ": " : "", e->message);
	else
		snprintf(r->error, sizeof(r->error), "%s", e->message[0] ? e->message : "no answer");
	return r->error;
}

cf_err cf_run_spec(cf_run *r, json_t **spec)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/runs/%s/spec", r->id);
	return cf_cofferd_call(r->c, "GET", path, NULL, spec);
}

cf_err cf_run_blob_path(const char *blob_url, char *path, size_t cap)
{
	const char *p = blob_url;
	if (!p)
		return CF_ERR_ARG;
	/* Only the path: the host is whatever cofferd calls itself, the token stays here. */
	if (strncmp(p, "https://", 8) == 0) {
		p += 8;
		p += strcspn(p, "/");
	}
	if (strncmp(p, "/v1/", 4) != 0)
		return CF_ERR_ARG;
	size_t n = strlen(p);
	if (n >= cap || n >= CF_RUN_MAX_BLOB_PATH)
		return CF_ERR_TOO_BIG;
	memcpy(path, p, n + 1);
	return CF_OK;
}

cf_err cf_run_blob_open(cf_run *r, const char *blob_url, uint64_t max, cf_cofferd_stream **out)
{
	char path[CF_RUN_MAX_BLOB_PATH];
	cf_err rc = cf_run_blob_path(blob_url, path, sizeof(path));
	*out = NULL;
	if (rc != CF_OK)
		return rc;
	/* Unhashed: the age header the KMS registered and the AEAD check every byte. */
	return cf_cofferd_stream_open(r->c, path, max, false, out);
}

cf_err cf_run_output_put(cf_run *r, const char *name, const uint8_t *data, size_t len,
			 const cf_kms_release_result *rel)
{
	char path[160], hex[2 * CF_SHA256_LEN + 1];
	uint8_t digest[CF_SHA256_LEN];
	json_t *body = NULL, *att = NULL;
	cf_err rc;
	if (!cf_job_valid_output_name(name) || (!data && len) || !rel || !rel->output_key)
		return CF_ERR_ARG;
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/%s", r->id, name);
	cf_mem_reader m = { .data = data, .len = len };
	if ((rc = cf_cofferd_upload(r->c, path, cf_mem_reader_of(&m), len, NULL, NULL, digest)) !=
	    CF_OK)
		goto out;
	cf_hex_encode(digest, sizeof(digest), hex);
	/* Signed over the hash of what was sent, computed here: cofferd's word counts for nothing. */
	if ((rc = cf_kms_output_attestation(rel, name, digest, &att)) != CF_OK)
		goto out;
	if (!(body = json_pack("{s:I, s:s, s:O}", "size", (json_int_t)len, "sha256", hex,
			       "attestation", att))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/%s/commit", r->id, name);
	rc = cf_cofferd_call(r->c, "POST", path, body, NULL);
out:
	json_decref(att);
	json_decref(body);
	return rc;
}

cf_err cf_run_finish(cf_run *r, bool succeeded, const char *message)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/runs/%s/finish", r->id);
	json_t *body = json_pack("{s:s, s:s}", "status", succeeded ? "succeeded" : "failed",
				 "message", message ? message : "");
	if (!body)
		return CF_ERR_NOMEM;
	cf_err rc = cf_cofferd_call(r->c, "POST", path, body, NULL);
	json_decref(body);
	return rc;
}
