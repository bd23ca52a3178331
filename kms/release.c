/*
 * Release: the heart of the KMS. A verified enclave running a task every
 * input owner signed gets the inputs' file keys, wrapped to its own
 * ephemeral key, and the outputs' recipients, signed. Every check that
 * can refuse is named (docs/kms.md, "Task and release"), in the order
 * listed there, so a refusal says exactly what was wrong.
 *
 * Each release also makes a fresh Ed25519 "output key": its seed goes
 * only into the wrapped keys (so only the attested enclave holds it), its
 * public half into a statement the KMS signs ({task_digest, output_key,
 * tee, measurement, issued}). The enclave signs each output's ciphertext
 * hash with it, and a recipient who checks both signatures knows the
 * output came from an enclave the KMS released this task's keys to.
 */
#define CF_LOG_MODULE "kms"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/log.h"
#include "kms_internal.h"

#define MAX_INPUTS 64
#define MAX_APPROVALS 64
#define MAX_OUTPUTS 64
#define MAX_CERT_NAMES 8

/* One input of the task, as the state knows it. */
typedef struct input {
	const char *table;
	const char *dataset;
	char owner[65];
	char key_id[24];
	char key_state[16];
	char *policy;          /* canonical JSON or NULL */
	uint8_t *header;
	size_t header_len;
	uint8_t header_sha256[32];
	uint8_t file_key[CF_AGE_FILE_KEY_LEN]; /* secret, once unwrapped */
	bool approved;
} input;

typedef struct release_ctx {
	input in[MAX_INPUTS];
	size_t n;
	cf_verdict v;
	bool have_verdict;
} release_ctx;

static void release_ctx_free(release_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->in[i].policy);
		free(c->in[i].header);
		cf_wipe(c->in[i].file_key, sizeof(c->in[i].file_key));
	}
	if (c->have_verdict)
		cf_verdict_free(&c->v);
}

/* Consumes a nonce: it must exist, be unexpired, and be used once only. */
static bool take_nonce(kms *k, const uint8_t nonce[32])
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(k->nonces, "DELETE FROM nonces WHERE n = ? AND expires >= ?", -1, &st,
			       NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_blob(st, 1, nonce, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)k->now());
	bool ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(k->nonces) == 1;
	sqlite3_finalize(st);
	return ok;
}

/* "check: expected X, got Y" of the verdict's first failure. */
static void first_failure(const cf_verdict *v, char *out, size_t cap)
{
	const cf_check *c = cf_verdict_first_failure(v);
	if (c)
		snprintf(out, cap, "%s: expected %s, got %s", c->name, c->expected, c->actual);
	else
		snprintf(out, cap, "no verdict");
}


/*
 * Verifies evidence of kind over expected report_data. On success v holds
 * the verdict and actor names the enclave; otherwise *status is set.
 */
static int verify_enclave(kms *k, const json_t *req, const uint8_t report_data[64], const char *op,
			  const char *object, cf_verdict *v, bool *have, char *actor, size_t acap,
			  json_t **out)
{
	const char *tee, *ev_b64;
	cf_tee_kind kind;
	if (cf_json_get_string(req, "tee", &tee) != CF_OK || cf_tee_kind_parse(tee, &kind) != CF_OK ||
	    kind == CF_TEE_NONE)
		return kms_fail(out, 400, "request", "tee must name a TEE kind");
	if (cf_json_get_string(req, "evidence", &ev_b64) != CF_OK)
		return kms_fail(out, 400, "request", "evidence is missing");
	size_t blen = strlen(ev_b64), elen = 0;
	if (cf_b64_decoded_max(blen) > CF_RATLS_MAX_EVIDENCE)
		return kms_fail(out, 413, "request", "evidence over %u bytes", CF_RATLS_MAX_EVIDENCE);
	uint8_t *ev = malloc(cf_b64_decoded_max(blen) + 1);
	if (!ev)
		return kms_fail(out, 500, "internal", "out of memory");
	if (cf_b64_decode(ev_b64, blen, true, ev, cf_b64_decoded_max(blen), &elen) != CF_OK) {
		free(ev);
		return kms_fail(out, 400, "request", "evidence is not base64");
	}
	snprintf(actor, acap, "enclave:%s", cf_tee_kind_name(kind));

	cf_evidence_input in = k->collateral;
	in.kind = kind;
	in.evidence = (cf_blob){ ev, elen };
	in.at = k->now();
	cf_err rc = cf_evidence_verify(&in, v);
	free(ev);
	if (rc != CF_OK)
		return kms_fail(out, 500, "internal", "evidence verification failed: %s", cf_strerror(rc));
	*have = true;
	if (!cf_verdict_ok(v)) {
		char why[600];
		first_failure(v, why, sizeof(why));
		return kms_refuse(k, out, 403, actor, op, object, "evidence", "%s", why);
	}
	json_t *ms = json_object_get(v->claims, "measurements");
	const char *m = json_string_value(json_object_get(ms, kms_measurement_claim(kind)));
	snprintf(actor, acap, "enclave:%s:%.16s", cf_tee_kind_name(kind), m ? m : "?");

	char want[129];
	cf_hex_encode(report_data, 64, want);
	const char *got = json_string_value(json_object_get(v->claims, "report_data"));
	if (!got || strcmp(got, want) != 0)
		return kms_refuse(k, out, 403, actor, op, object, "report_data",
			      "expected %s (this nonce, this request), got %.128s", want,
			      got ? got : "(none)");
	if (v->debug)
		return kms_refuse(k, out, 403, actor, op, object, "debug",
			      "the TEE is in debug mode: its memory is readable by the host");
	return 0;
}

static bool string_in(const json_t *array, const char *s, bool hex)
{
	size_t i;
	json_t *e;
	json_array_foreach(array, i, e) {
		const char *x = json_string_value(e);
		if (x && (hex ? strcasecmp(x, s) == 0 : strcmp(x, s) == 0))
			return true;
	}
	return false;
}

static int load_input(kms *k, input *in, json_t **out)
{
	sqlite3_stmt *st = NULL;
	int found = 0;
	if (sqlite3_prepare_v2(k->db,
			       "SELECT d.owner, d.key_id, d.header, d.header_sha256, k.state, k.policy "
			       "FROM datasets d JOIN keys k ON k.id = d.key_id WHERE d.id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return kms_fail(out, 500, "state", "query failed");
	sqlite3_bind_text(st, 1, in->dataset, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(in->owner, sizeof(in->owner), "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(in->key_id, sizeof(in->key_id), "%s", (const char *)sqlite3_column_text(st, 1));
		in->header_len = (size_t)sqlite3_column_bytes(st, 2);
		in->header = malloc(in->header_len ? in->header_len : 1);
		if (in->header)
			memcpy(in->header, sqlite3_column_blob(st, 2), in->header_len);
		memcpy(in->header_sha256, sqlite3_column_blob(st, 3), 32);
		snprintf(in->key_state, sizeof(in->key_state), "%s",
			 (const char *)sqlite3_column_text(st, 4));
		const char *p = (const char *)sqlite3_column_text(st, 5);
		in->policy = p ? strdup(p) : NULL;
		found = in->header && (!p || in->policy) ? 1 : -1;
	}
	sqlite3_finalize(st);
	if (found < 0)
		return kms_fail(out, 500, "internal", "out of memory");
	return found ? 0 : -404;
}

void kms_forget_key(kms *k, const char *key_id)
{
	for (size_t i = 0; i < KMS_CACHE_SLOTS; i++) {
		if (k->file_keys[i].used && strcmp(k->file_keys[i].key_id, key_id) == 0)
			cf_wipe(&k->file_keys[i], sizeof(k->file_keys[i]));
	}
}

static bool approval_seen(kms *k, const uint8_t id[32])
{
	for (size_t i = 0; i < KMS_CACHE_SLOTS; i++) {
		if (memcmp(k->approvals_seen[i], id, 32) == 0)
			return true;
	}
	return false;
}

/* Verifies an approval, or finds that these exact bytes verified before. */
static cf_err check_approval(kms *k, const uint8_t pub[32], const uint8_t digest[32],
			     const json_t *a)
{
	const char *sig = json_string_value(json_object_get(a, "sig"));
	uint8_t id[32];
	cf_hash_ctx *h = NULL;
	cf_err rc = sig ? cf_hash_new(CF_SHA256, &h) : CF_ERR_PARSE;
	if (rc == CF_OK && (rc = cf_hash_update(h, pub, 32)) == CF_OK &&
	    (rc = cf_hash_update(h, digest, 32)) == CF_OK &&
	    (rc = cf_hash_update(h, sig, strlen(sig))) == CF_OK)
		rc = cf_hash_final(h, id);
	cf_hash_free(h);
	if (rc != CF_OK)
		return rc;
	if (approval_seen(k, id))
		return CF_OK;
	if ((rc = cf_task_approval_verify(pub, digest, a)) != CF_OK)
		return rc;
	memcpy(k->approvals_seen[k->approvals_next], id, 32);
	k->approvals_next = (k->approvals_next + 1) % KMS_CACHE_SLOTS;
	return CF_OK;
}

static cf_err unwrap_versions(kms *k, const input *in, uint8_t file_key[CF_AGE_FILE_KEY_LEN]);

/* An input's file key: from the cache, or unwrapped (and then cached). */
static cf_err unwrap_input(kms *k, const input *in, uint8_t file_key[CF_AGE_FILE_KEY_LEN])
{
	for (size_t i = 0; i < KMS_CACHE_SLOTS; i++) {
		const kms_fk_slot *s = &k->file_keys[i];
		if (s->used && memcmp(s->header_sha256, in->header_sha256, 32) == 0 &&
		    strcmp(s->key_id, in->key_id) == 0) {
			memcpy(file_key, s->file_key, CF_AGE_FILE_KEY_LEN);
			return CF_OK;
		}
	}
	cf_err rc = unwrap_versions(k, in, file_key);
	if (rc != CF_OK)
		return rc;
	kms_fk_slot *s = &k->file_keys[k->file_keys_next];
	k->file_keys_next = (k->file_keys_next + 1) % KMS_CACHE_SLOTS;
	cf_wipe(s, sizeof(*s));
	s->used = true;
	memcpy(s->header_sha256, in->header_sha256, 32);
	snprintf(s->key_id, sizeof(s->key_id), "%s", in->key_id);
	memcpy(s->file_key, file_key, CF_AGE_FILE_KEY_LEN);
	return CF_OK;
}

/* Unwraps with every version of the input's key that still has material. */
static cf_err unwrap_versions(kms *k, const input *in, uint8_t file_key[CF_AGE_FILE_KEY_LEN])
{
	sqlite3_stmt *st = NULL;
	cf_age_identity ids[16];
	size_t n = 0;
	cf_err rc = CF_ERR_NOT_FOUND;
	/* Newest first: datasets are mostly under the current version. */
	if (sqlite3_prepare_v2(k->db,
			       "SELECT secret FROM key_versions WHERE key_id = ? AND secret IS NOT NULL "
			       "ORDER BY version DESC LIMIT 16",
			       -1, &st, NULL) != SQLITE_OK)
		return CF_ERR_IO;
	sqlite3_bind_text(st, 1, in->key_id, -1, SQLITE_STATIC);
	while (n < 16 && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != 32)
			continue;
		ids[n].kind = CF_AGE_X25519;
		memcpy(ids[n].key.secret, sqlite3_column_blob(st, 0), 32);
		if (cf_x25519_public(ids[n].key.secret, ids[n].key.pub) == CF_OK)
			n++;
	}
	sqlite3_finalize(st);
	if (n)
		rc = cf_age_unwrap_header(ids, n, in->header, in->header_len, file_key);
	for (size_t i = 0; i < n; i++)
		cf_age_key_wipe(&ids[i].key);
	return rc;
}

/*
 * The file keys and the output key's seed as JSON, built in a secret
 * buffer (no copies in jansson), age-encrypted.
 */
static cf_err wrap_keys(release_ctx *c, const char *digest_hex, const uint8_t wrap_pub[32],
			const uint8_t output_seed[CF_ED25519_SEED_LEN], char **b64_out)
{
	cf_buf plain, sealed;
	cf_buf_init(&plain, 64 * 1024, true);
	cf_buf_init(&sealed, 128 * 1024, false);
	cf_err rc = cf_buf_printf(&plain, "{\"inputs\":[");
	for (size_t i = 0; rc == CF_OK && i < c->n; i++) {
		char fk64[32];
		cf_b64_encode(c->in[i].file_key, CF_AGE_FILE_KEY_LEN, true, fk64);
		json_t *t = json_string(c->in[i].table), *d = json_string(c->in[i].dataset);
		char *ts = t ? json_dumps(t, JSON_ENCODE_ANY) : NULL;
		char *ds = d ? json_dumps(d, JSON_ENCODE_ANY) : NULL;
		rc = ts && ds ? cf_buf_printf(&plain, "%s{\"dataset\":%s,\"file_key\":\"%s\",\"table\":%s}",
					      i ? "," : "", ds, fk64, ts)
			      : CF_ERR_NOMEM;
		free(ts);
		free(ds);
		json_decref(t);
		json_decref(d);
		cf_wipe(fk64, sizeof(fk64));
	}
	if (rc == CF_OK) {
		char seed64[CF_KMS_PUB_B64_LEN + 1];
		cf_b64_encode(output_seed, CF_ED25519_SEED_LEN, true, seed64);
		rc = cf_buf_printf(&plain, "],\"output_seed\":\"%s\",\"task_digest\":\"%s\"}",
				   seed64, digest_hex);
		cf_wipe(seed64, sizeof(seed64));
	}
	if (rc == CF_OK) {
		cf_age_recipient r = { .kind = CF_AGE_X25519 };
		memcpy(r.pub, wrap_pub, 32);
		cf_mem_reader m = { .data = plain.data, .len = plain.len };
		rc = cf_age_encrypt(&r, 1, NULL, cf_mem_reader_of(&m), cf_buf_writer(&sealed));
	}
	if (rc == CF_OK) {
		*b64_out = malloc(cf_b64_encoded_len(sealed.len, true) + 1);
		if (*b64_out)
			cf_b64_encode(sealed.data, sealed.len, true, *b64_out);
		else
			rc = CF_ERR_NOMEM;
	}
	cf_buf_free(&plain);
	cf_buf_free(&sealed);
	return rc;
}

/* The outputs with their recipients, as the KMS vouches for them. */
static json_t *recipient_statement(kms *k, const char *digest_hex, const json_t *outputs)
{
	json_t *st = json_pack("{s:s,s:O,s:I}", "task_digest", digest_hex, "outputs", outputs,
			       "issued", (json_int_t)k->now());
	if (!st)
		return NULL;
	char sig[96];
	if (cf_kms_sign(k->sign_seed, CF_KMS_CTX_RECIPIENTS, st, sig) != CF_OK) {
		json_decref(st);
		return NULL;
	}
	return json_pack("{s:o,s:s}", "statement", st, "sig", sig);
}

/*
 * The output key's public half as the KMS vouches for it: issued for this
 * task to the enclave whose evidence was just verified.
 */
static json_t *output_key_statement(kms *k, const char *digest_hex,
				    const uint8_t pub[CF_ED25519_PUB_LEN], const char *tee,
				    const char *measurement)
{
	char pub64[CF_KMS_PUB_B64_LEN + 1], sig[CF_KMS_SIG_B64_LEN + 1];
	cf_b64_encode(pub, CF_ED25519_PUB_LEN, true, pub64);
	json_t *st = json_pack("{s:s,s:s,s:s,s:s,s:I}", "task_digest", digest_hex, "output_key",
			       pub64, "tee", tee, "measurement", measurement, "issued",
			       (json_int_t)k->now());
	if (!st)
		return NULL;
	if (cf_kms_sign(k->sign_seed, CF_KMS_CTX_OUTPUT_KEY, st, sig) != CF_OK) {
		json_decref(st);
		return NULL;
	}
	return json_pack("{s:o,s:s}", "statement", st, "sig", sig);
}

int kms_release(kms *k, const json_t *req, json_t **out)
{
	release_ctx c = { 0 };
	const json_t *task = json_object_get(req, "task");
	const json_t *approvals = json_object_get(req, "approvals");
	const char *wrap;
	uint8_t nonce[32], digest[32], wrap_pub[32], rd[64];
	uint8_t output_seed[CF_ED25519_SEED_LEN], output_pub[CF_ED25519_PUB_LEN];
	char digest_hex[65], object[80], actor[96] = "enclave", *keys_b64 = NULL;
	char audit_object[160], output_pub64[CF_KMS_PUB_B64_LEN + 1];
	int status = 0;
	bool locked = false;

	memset(output_seed, 0, sizeof(output_seed));
	if (kms_get_hex(req, "nonce", nonce, 32) != CF_OK || !json_is_object(task) ||
	    !json_is_array(approvals) || json_array_size(approvals) > MAX_APPROVALS ||
	    cf_json_get_string(req, "wrap_recipient", &wrap) != CF_OK ||
	    cf_age_recipient_parse(wrap, wrap_pub) != CF_OK)
		return kms_fail(out, 400, "request",
				"need {nonce, tee, evidence, task, approvals, wrap_recipient}");
	const json_t *inputs = json_object_get(task, "inputs");
	const json_t *outputs = json_object_get(task, "outputs");
	const json_t *tee = json_object_get(task, "tee");
	const json_t *kinds = json_object_get(tee, "kinds");
	const json_t *measurements = json_object_get(tee, "measurements");
	if (!json_is_object(inputs) || json_object_size(inputs) == 0 ||
	    json_object_size(inputs) > MAX_INPUTS || !json_is_array(outputs) ||
	    json_array_size(outputs) > MAX_OUTPUTS || !json_is_array(kinds) ||
	    !json_is_array(measurements))
		return kms_fail(out, 400, "request",
				"the task needs inputs (1-64), outputs, tee.kinds and tee.measurements");
	if (cf_task_digest(task, digest) != CF_OK)
		return kms_fail(out, 400, "request", "the task cannot be canonicalised");
	cf_hex_encode(digest, 32, digest_hex);
	snprintf(object, sizeof(object), "task:%s", digest_hex);

	pthread_mutex_lock(&k->lock);
	bool fresh = take_nonce(k, nonce);
	pthread_mutex_unlock(&k->lock);
	if (!fresh)
		return kms_refuse(k, out, 403, actor, "release", object, "nonce",
			      "the nonce is unknown, expired or already used (replay)");
	if (cf_release_report_data(nonce, digest, wrap_pub, rd) != CF_OK)
		return kms_fail(out, 500, "internal", "hash failed");
	if ((status = verify_enclave(k, req, rd, "release", object, &c.v, &c.have_verdict, actor,
				     sizeof(actor), out)))
		goto out;

	/* The evidence is checked; from here to the keys, the state is read under the lock. */
	pthread_mutex_lock(&k->lock);
	locked = true;
	const char *kind = cf_tee_kind_name(c.v.tee);
	if (!string_in(kinds, kind, false)) {
		status = kms_refuse(k, out, 403, actor, "release", object, "tee_kind",
				"the task allows %s TEEs; this is %s", "other", kind);
		goto out;
	}
	const char *claim = kms_measurement_claim(c.v.tee);
	const char *m = json_string_value(
		json_object_get(json_object_get(c.v.claims, "measurements"), claim));
	if (!m || !string_in(measurements, m, true)) {
		status = kms_refuse(k, out, 403, actor, "release", object, "measurement",
				"%s %s is not in the task's allowed measurements", claim,
				m ? m : "(none)");
		goto out;
	}

	const char *table;
	json_t *spec;
	json_object_foreach((json_t *)inputs, table, spec) {
		input *in = &c.in[c.n];
		in->table = table;
		if (cf_json_get_string(spec, "dataset", &in->dataset) != CF_OK) {
			status = kms_fail(out, 400, "request", "input %s has no dataset", table);
			goto out;
		}
		c.n++;
		int r = load_input(k, in, out);
		if (r == -404) {
			status = kms_refuse(k, out, 403, actor, "release", object, "dataset",
					"input %s names unknown dataset %.140s", table, in->dataset);
			goto out;
		}
		if (r) {
			status = r;
			goto out;
		}
	}

	size_t i;
	json_t *a;
	json_array_foreach(approvals, i, a) {
		const char *org, *sig;
		uint8_t pub[32];
		if (cf_json_get_string(a, "org", &org) != CF_OK ||
		    cf_json_get_string(a, "sig", &sig) != CF_OK) {
			status = kms_fail(out, 400, "request", "approvals are {org, sig}");
			goto out;
		}
		bool owner = false;
		for (size_t j = 0; j < c.n; j++)
			owner |= strcmp(c.in[j].owner, org) == 0;
		if (!owner || kms_org_pub(k, org, pub, NULL, 0) != CF_OK) {
			status = kms_refuse(k, out, 403, actor, "release", object, "approval_owner",
					"%.64s owns no input of this task", org);
			goto out;
		}
		if (check_approval(k, pub, digest, a) != CF_OK) {
			status = kms_refuse(k, out, 403, actor, "release", object, "approval_signature",
					"%s's approval does not verify for task %s", org, digest_hex);
			goto out;
		}
		for (size_t j = 0; j < c.n; j++) {
			if (strcmp(c.in[j].owner, org) == 0)
				c.in[j].approved = true;
		}
	}
	for (size_t j = 0; j < c.n; j++) {
		if (!c.in[j].approved) {
			status = kms_refuse(k, out, 403, actor, "release", object, "approval_missing",
					"%s (owner of %s) has not approved task %s", c.in[j].owner,
					c.in[j].dataset, digest_hex);
			goto out;
		}
	}

	json_t *o;
	json_array_foreach(outputs, i, o) {
		const json_t *rs = json_object_get(o, "recipients");
		size_t j;
		json_t *r;
		if (!json_is_array(rs) || json_array_size(rs) == 0) {
			status = kms_fail(out, 400, "request", "output %zu has no recipients", i);
			goto out;
		}
		json_array_foreach(rs, j, r) {
			const char *org, *rcpt;
			uint8_t pub[32];
			char registered[CF_AGE_RECIPIENT_STRLEN + 1] = "";
			if (cf_json_get_string(r, "org", &org) != CF_OK ||
			    cf_json_get_string(r, "recipient", &rcpt) != CF_OK) {
				status = kms_fail(out, 400, "request", "recipients are {org, recipient}");
				goto out;
			}
			if (kms_org_pub(k, org, pub, registered, sizeof(registered)) != CF_OK ||
			    strcmp(registered, rcpt) != 0) {
				status = kms_refuse(k, out, 403, actor, "release", object, "recipient_key",
						"output recipient for %.64s is %.80s; %.64s's registered "
						"recipient is %s",
						org, rcpt, org, registered[0] ? registered : "(none)");
				goto out;
			}
		}
	}

	for (size_t j = 0; j < c.n; j++) {
		if (strcmp(c.in[j].key_state, "enabled") != 0) {
			const char *check = strcmp(c.in[j].key_state, "destroyed") == 0 ? "key_destroyed"
											  : "key_disabled";
			status = kms_refuse(k, out, 403, actor, "release", object, check,
					"key %s of dataset %s is %s", c.in[j].key_id, c.in[j].dataset,
					c.in[j].key_state);
			goto out;
		}
	}
	for (size_t j = 0; j < c.n; j++) {
		if (!c.in[j].policy)
			continue;
		json_t *policy = json_loads(c.in[j].policy, 0, NULL);
		cf_err rc = policy ? cf_policy_apply(policy, k->now(), &c.v) : CF_ERR_PARSE;
		json_decref(policy);
		if (rc != CF_OK || !cf_verdict_ok(&c.v)) {
			char why[600];
			first_failure(&c.v, why, sizeof(why));
			status = kms_refuse(k, out, 403, actor, "release", object, "key_policy",
					"key %s of %s: %s", c.in[j].key_id, c.in[j].owner, why);
			goto out;
		}
	}

	for (size_t j = 0; j < c.n; j++) {
		if (unwrap_input(k, &c.in[j], c.in[j].file_key) != CF_OK) {
			log_error("dataset %s: its header does not open", c.in[j].dataset);
			status = kms_fail(out, 500, "internal", "a registered dataset does not open");
			goto out;
		}
	}
	pthread_mutex_unlock(&k->lock);
	locked = false;

	/* This release's output key: the seed to the enclave only, the public half signed. */
	if (cf_ed25519_keygen(output_seed, output_pub) != CF_OK) {
		status = kms_fail(out, 500, "internal", "cannot make the output key");
		goto out;
	}
	if (wrap_keys(&c, digest_hex, wrap_pub, output_seed, &keys_b64) != CF_OK) {
		status = kms_fail(out, 500, "internal", "cannot wrap the file keys");
		goto out;
	}
	cf_wipe(output_seed, sizeof(output_seed));
	json_t *list = json_array();
	for (size_t j = 0; list && j < c.n; j++) {
		char h[65];
		cf_hex_encode(c.in[j].header_sha256, 32, h);
		json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "table", c.in[j].table,
						      "dataset", c.in[j].dataset, "header_sha256", h));
	}
	json_t *stmt = recipient_statement(k, digest_hex, outputs);
	json_t *okey = output_key_statement(k, digest_hex, output_pub, kind, m);
	json_t *ans = list && stmt && okey
			      ? json_pack("{s:s,s:s,s:o,s:o,s:o}", "task_digest", digest_hex, "keys",
					  keys_b64, "inputs", list, "recipients", stmt, "output_key", okey)
			      : NULL;
	if (!ans) {
		if (!(list && stmt && okey)) {
			json_decref(list);
			json_decref(stmt);
			json_decref(okey);
		}
		status = kms_fail(out, 500, "internal", "out of memory");
		goto out;
	}
	/* The audit names the output key, so a signed output can be traced to its release. */
	cf_b64_encode(output_pub, sizeof(output_pub), true, output_pub64);
	snprintf(audit_object, sizeof(audit_object), "%s output_key:%s", object, output_pub64);
	if (kms_audit(k, actor, "release", audit_object, "ok") != CF_OK) {
		json_decref(ans);
		status = kms_fail(out, 500, "audit", "the audit log cannot be written");
		goto out;
	}
	*out = ans;
	status = 200;
out:
	if (locked)
		pthread_mutex_unlock(&k->lock);
	cf_wipe(output_seed, sizeof(output_seed));
	free(keys_b64);
	release_ctx_free(&c);
	return status;
}

static int kms_certify_body(kms *k, const json_t *req, json_t **out)
{
	const char *csr;
	const json_t *names = json_object_get(req, "names");
	const char *list[MAX_CERT_NAMES];
	uint8_t nonce[32], spki[32], rd[64];
	char actor[96] = "enclave", object[80] = "certificate";
	cf_verdict v;
	bool have = false;
	X509 *cert = NULL;
	int status;
	if (kms_get_hex(req, "nonce", nonce, 32) != CF_OK ||
	    cf_json_get_string(req, "csr", &csr) != CF_OK || !json_is_array(names) ||
	    json_array_size(names) == 0 || json_array_size(names) > MAX_CERT_NAMES)
		return kms_fail(out, 400, "request", "need {nonce, tee, evidence, csr, names (1-8)}");
	size_t i;
	json_t *nm;
	json_array_foreach(names, i, nm) {
		list[i] = json_string_value(nm);
		if (!list[i] || strlen(list[i]) == 0 || strlen(list[i]) > 253)
			return kms_fail(out, 400, "request", "names are DNS names or IP addresses");
	}
	/*
	 * Whoever pinned the CA trusts every certificate it issues, so only
	 * enclaves the operator named by measurement get one: without a
	 * policy, "verified" would include any program the host launches.
	 */
	const json_t *ms = json_object_get(k->certify_policy, "measurements");
	if (!json_is_object(ms) || json_object_size(ms) == 0)
		return kms_fail(out, 403, "certify_disabled",
				"this KMS issues certificates only under a --certify-policy that "
				"names measurements");
	if (kms_ca_csr_key_hash((const uint8_t *)csr, strlen(csr), spki) != CF_OK)
		return kms_fail(out, 400, "request", "csr is not a PEM certificate request with a P-256 key");
	if (!take_nonce(k, nonce))
		return kms_refuse(k, out, 403, actor, "certify", object, "nonce",
			      "the nonce is unknown, expired or already used (replay)");
	if (cf_certify_report_data(nonce, spki, rd) != CF_OK)
		return kms_fail(out, 500, "internal", "hash failed");
	if ((status = verify_enclave(k, req, rd, "certify", object, &v, &have, actor, sizeof(actor),
				     out)))
		goto out;
	{
		if (cf_policy_apply(k->certify_policy, k->now(), &v) != CF_OK || !cf_verdict_ok(&v)) {
			char why[600];
			first_failure(&v, why, sizeof(why));
			status = kms_refuse(k, out, 403, actor, "certify", object, "policy", "%s", why);
			goto out;
		}
	}
	char cn[64];
	snprintf(cn, sizeof(cn), "%s", actor);
	if (kms_ca_issue_csr(k->ca, (const uint8_t *)csr, strlen(csr), cn, list,
			     json_array_size(names), k->now(), KMS_CERT_LIFETIME, &cert) != CF_OK) {
		status = kms_fail(out, 400, "request", "the certificate could not be issued from this CSR");
		goto out;
	}
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = 0;
	if (bio && PEM_write_bio_X509(bio, cert))
		n = BIO_get_mem_data(bio, &p);
	json_t *ans = n > 0 ? json_pack("{s:s%,s:s}", "cert", p, (size_t)n, "ca", k->ca_pem) : NULL;
	BIO_free(bio);
	if (!ans) {
		status = kms_fail(out, 500, "internal", "out of memory");
		goto out;
	}
	if (kms_audit(k, actor, "certify", cn, "ok") != CF_OK) {
		json_decref(ans);
		status = kms_fail(out, 500, "audit", "the audit log cannot be written");
		goto out;
	}
	*out = ans;
	status = 200;
out:
	X509_free(cert);
	if (have)
		cf_verdict_free(&v);
	return status;
}

int kms_certify(kms *k, const json_t *req, json_t **out)
{
	pthread_mutex_lock(&k->lock);
	int status = kms_certify_body(k, req, out);
	pthread_mutex_unlock(&k->lock);
	return status;
}
