/*
 * Organisations, keys and datasets: enrollment under the admin's token,
 * then requests signed by each organisation's current key (docs/kms.md).
 */
#define CF_LOG_MODULE "kms"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/log.h"
#include "kms_internal.h"

cf_err kms_schema(sqlite3 *db)
{
	static const char schema[] =
		"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);"
		"CREATE TABLE IF NOT EXISTS orgs(name TEXT PRIMARY KEY, sign_pub BLOB NOT NULL,"
		" age_recipient TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS keys(id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
		" state TEXT NOT NULL CHECK (state IN ('enabled','disabled','destroyed')),"
		" policy TEXT, current INTEGER NOT NULL, created INTEGER NOT NULL);"
		/* secret is NULL once destroyed; the recipient stays for the record. */
		"CREATE TABLE IF NOT EXISTS key_versions(key_id TEXT NOT NULL, version INTEGER NOT NULL,"
		" secret BLOB, recipient TEXT NOT NULL, created INTEGER NOT NULL,"
		" PRIMARY KEY (key_id, version));"
		"CREATE TABLE IF NOT EXISTS datasets(id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
		" key_id TEXT NOT NULL, version INTEGER NOT NULL, header BLOB NOT NULL,"
		" header_sha256 BLOB NOT NULL, created INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS seen_requests(id TEXT PRIMARY KEY, expires INTEGER NOT NULL);";
	char *err = NULL;
	if (sqlite3_exec(db, schema, NULL, NULL, &err) != SQLITE_OK) {
		log_error("state schema: %s", err ? err : "?");
		sqlite3_free(err);
		return CF_ERR_IO;
	}
	return CF_OK;
}

/* --- small statement helpers --- */

static int exec_bind(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return SQLITE_ERROR;
	va_list ap;
	va_start(ap, fmt);
	for (int i = 1; fmt[i - 1]; i++) {
		switch (fmt[i - 1]) {
		case 's': sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT); break;
		case 'i': sqlite3_bind_int64(st, i, va_arg(ap, sqlite3_int64)); break;
		case 'b': {
			const void *p = va_arg(ap, const void *);
			int n = va_arg(ap, int);
			sqlite3_bind_blob(st, i, p, n, SQLITE_TRANSIENT);
			break;
		}
		}
	}
	va_end(ap);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

static char *actor_of(const char *org)
{
	static char buf[80];
	snprintf(buf, sizeof(buf), "org:%s", org);
	return buf;
}


/* Audits success, seals the state, and returns 200 with ans. */
static int done(kms *k, json_t **out, json_t *ans, const char *actor, const char *op,
		const char *object, bool changed)
{
	if (!ans)
		return kms_fail(out, 500, "internal", "out of memory");
	if (changed && kms_commit(k) != CF_OK) {
		json_decref(ans);
		return kms_fail(out, 500, "state", "the state could not be sealed");
	}
	if (kms_audit(k, actor, op, object, "ok") != CF_OK) {
		json_decref(ans);
		return kms_fail(out, 500, "audit", "the audit log cannot be written");
	}
	*out = ans;
	return 200;
}

/* --- enrollment --- */

static int kms_enroll_body(kms *k, const json_t *req, json_t **out)
{
	const json_t *token = json_object_get(req, "token");
	const char *org = NULL, *recipient = NULL, *sig = NULL;
	long long expires = 0;
	uint8_t admin[32], sign_pub[32], age_pub[32];
	if (!json_is_object(token) || cf_json_get_string(token, "org", &org) != CF_OK ||
	    cf_json_get_string(token, "age_recipient", &recipient) != CF_OK ||
	    cf_json_get_int(token, "expires", &expires) != CF_OK ||
	    kms_get_b64(token, "sign_pub", sign_pub, 32) != CF_OK ||
	    cf_json_get_string(req, "token_sig", &sig) != CF_OK)
		return kms_fail(out, 400, "request",
				"need {token: {org, sign_pub, age_recipient, expires}, token_sig}");
	if (!cf_kms_valid_name(org))
		return kms_fail(out, 400, "request", "org names are 1-64 characters of [a-z0-9-]");
	if (cf_age_recipient_parse(recipient, age_pub) != CF_OK)
		return kms_fail(out, 400, "request", "age_recipient is not an age X25519 recipient");

	cf_buf b;
	cf_buf_init(&b, 64, false);
	cf_err rc = CF_ERR_NOT_FOUND;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(k->db, "SELECT v FROM meta WHERE k = 'admin_pub'", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(admin, sqlite3_column_blob(st, 0), 32);
		rc = CF_OK;
	}
	sqlite3_finalize(st);
	cf_buf_free(&b);
	if (rc != CF_OK)
		return kms_fail(out, 500, "internal", "no admin key in the state");

	if (cf_kms_verify_sig(admin, CF_KMS_CTX_ENROLL, token, sig) != CF_OK)
		return kms_refuse(k, out, 403, "admin", "org.enroll", org, "token_signature",
			      "the enrollment token is not signed by the platform admin");
	if (expires < (long long)k->now())
		return kms_refuse(k, out, 403, "admin", "org.enroll", org, "token_expired",
			      "the enrollment token expired at %lld", expires);
	uint8_t existing[32];
	if (kms_org_pub(k, org, existing, NULL, 0) == CF_OK)
		return kms_refuse(k, out, 409, "admin", "org.enroll", org, "org_exists",
			      "organisation %s is registered; changes must be signed by its key", org);
	time_t now = k->now();
	if (exec_bind(k->db,
		      "INSERT INTO orgs(name, sign_pub, age_recipient, created, updated) "
		      "VALUES (?, ?, ?, ?, ?)",
		      "sbsii", org, sign_pub, 32, recipient, (sqlite3_int64)now,
		      (sqlite3_int64)now) != SQLITE_DONE)
		return kms_fail(out, 500, "state", "cannot store the organisation");
	return done(k, out, json_pack("{s:s}", "org", org), "admin", "org.enroll", org, true);
}

/* --- keys --- */

static cf_err new_key_id(char out[24])
{
	uint8_t r[8];
	char hex[17];
	cf_err rc = cf_random(r, sizeof(r));
	if (rc != CF_OK)
		return rc;
	cf_hex_encode(r, sizeof(r), hex);
	snprintf(out, 24, "k-%s", hex);
	return CF_OK;
}

static cf_err add_version(kms *k, const char *id, int version, const cf_age_x25519_key *key,
			  char recipient[CF_AGE_RECIPIENT_STRLEN + 1])
{
	cf_err rc = cf_age_recipient_format(key->pub, recipient);
	if (rc != CF_OK)
		return rc;
	return exec_bind(k->db,
			 "INSERT INTO key_versions(key_id, version, secret, recipient, created) "
			 "VALUES (?, ?, ?, ?, ?)",
			 "sibsi", id, (sqlite3_int64)version, key->secret, 32, recipient,
			 (sqlite3_int64)k->now()) == SQLITE_DONE
		       ? CF_OK
		       : CF_ERR_IO;
}

/* Checks a policy parses as an evidence policy (cf_policy_apply refuses unknown members). */
static bool valid_policy(const json_t *policy)
{
	if (!policy)
		return true;
	if (!json_is_object(policy))
		return false;
	cf_verdict v;
	cf_verdict_init(&v, CF_TEE_SOFT);
	cf_err rc = cf_policy_apply(policy, 0, &v);
	const cf_check *bad = cf_verdict_first_failure(&v);
	bool ok = rc == CF_OK && !(bad && strcmp(bad->name, "policy") == 0);
	cf_verdict_free(&v);
	return ok;
}

static int key_create(kms *k, const char *org, const json_t *r, json_t **out, bool import)
{
	const char *op = import ? "key.import" : "key.create";
	const json_t *policy = json_object_get(r, "policy");
	char id[24], recipient[CF_AGE_RECIPIENT_STRLEN + 1], *policy_text = NULL;
	cf_age_x25519_key key = { 0 };
	int status;
	if (!valid_policy(policy))
		return kms_fail(out, 400, "policy", "policy is not a valid evidence policy");
	if (import) {
		cf_age_identity *ids = NULL;
		size_t nids = 0;
		cf_buf wrapped, plain;
		cf_buf_init(&wrapped, 64 * 1024, false);
		cf_buf_init(&plain, 4096, true);
		const char *w;
		cf_err rc = cf_json_get_string(r, "wrapped", &w) == CF_OK ? CF_OK : CF_ERR_PARSE;
		if (rc == CF_OK) {
			size_t len = strlen(w), got = 0;
			rc = len <= 60 * 1024 ? cf_buf_reserve(&wrapped, cf_b64_decoded_max(len))
					      : CF_ERR_TOO_BIG;
			if (rc == CF_OK)
				rc = cf_b64_decode(w, len, true, wrapped.data, wrapped.cap, &got);
			wrapped.len = got;
		}
		if (rc == CF_OK) {
			cf_mem_reader m = { .data = wrapped.data, .len = wrapped.len };
			rc = cf_age_decrypt(&k->transport, 1, cf_mem_reader_of(&m), cf_buf_writer(&plain));
		}
		if (rc == CF_OK)
			rc = cf_buf_terminate(&plain);
		if (rc == CF_OK)
			rc = cf_age_identities_parse((const char *)plain.data, plain.len, &ids, &nids,
						     NULL);
		if (rc == CF_OK && (nids != 1 || ids[0].kind != CF_AGE_X25519))
			rc = CF_ERR_PARSE;
		if (rc == CF_OK)
			key = ids[0].key;
		cf_age_identities_free(ids, nids);
		cf_buf_free(&wrapped);
		cf_buf_free(&plain);
		if (rc != CF_OK)
			return kms_refuse(k, out, 400, actor_of(org), op, "", "wrapped",
				      "wrapped must be an age file to the KMS transport recipient "
				      "holding one AGE-SECRET-KEY-1 line (%s)",
				      cf_strerror(rc));
	} else if (cf_age_keygen(&key) != CF_OK) {
		return kms_fail(out, 500, "internal", "key generation failed");
	}

	if (new_key_id(id) != CF_OK) {
		status = kms_fail(out, 500, "internal", "no randomness");
		goto out;
	}
	if (policy && cf_json_canonical(policy, &policy_text, NULL) != CF_OK) {
		status = kms_fail(out, 500, "internal", "out of memory");
		goto out;
	}
	sqlite3_exec(k->db, "SAVEPOINT kc", NULL, NULL, NULL);
	if (exec_bind(k->db,
		      "INSERT INTO keys(id, owner, state, policy, current, created) "
		      "VALUES (?, ?, 'enabled', ?, 1, ?)",
		      "sssi", id, org, policy_text, (sqlite3_int64)k->now()) != SQLITE_DONE ||
	    add_version(k, id, 1, &key, recipient) != CF_OK) {
		sqlite3_exec(k->db, "ROLLBACK TO kc; RELEASE kc", NULL, NULL, NULL);
		status = kms_fail(out, 500, "state", "cannot store the key");
		goto out;
	}
	sqlite3_exec(k->db, "RELEASE kc", NULL, NULL, NULL);
	status = done(k, out, json_pack("{s:s,s:i,s:s}", "key", id, "version", 1, "recipient", recipient),
		      actor_of(org), op, id, true);
out:
	free(policy_text);
	cf_age_key_wipe(&key);
	return status;
}

/* The key's owner and state, or a refusal. */
static int own_key(kms *k, const char *org, const json_t *r, const char *op, const char **id,
		   char state[16], int *current, json_t **out)
{
	sqlite3_stmt *st = NULL;
	if (cf_json_get_string(r, "key", id) != CF_OK)
		return kms_fail(out, 400, "request", "%s needs \"key\"", op);
	if (sqlite3_prepare_v2(k->db, "SELECT owner, state, current FROM keys WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return kms_fail(out, 500, "state", "query failed");
	sqlite3_bind_text(st, 1, *id, -1, SQLITE_STATIC);
	int status = 0;
	if (sqlite3_step(st) != SQLITE_ROW) {
		status = kms_refuse(k, out, 404, actor_of(org), op, *id, "key", "no key %s", *id);
	} else if (strcmp((const char *)sqlite3_column_text(st, 0), org) != 0) {
		/* Same answer as "no such key": ids of others' keys are not an oracle. */
		status = kms_refuse(k, out, 404, actor_of(org), op, *id, "key", "no key %s", *id);
	} else {
		snprintf(state, 16, "%s", (const char *)sqlite3_column_text(st, 1));
		*current = sqlite3_column_int(st, 2);
	}
	sqlite3_finalize(st);
	return status;
}

static int key_change(kms *k, const char *org, const char *op, const json_t *r, json_t **out)
{
	const char *id;
	char state[16];
	int current = 0;
	int status = own_key(k, org, r, op, &id, state, &current, out);
	if (status)
		return status;
	if (strcmp(state, "destroyed") == 0)
		return kms_refuse(k, out, 409, actor_of(org), op, id, "key_destroyed",
			      "key %s was destroyed", id);

	if (strcmp(op, "key.rotate") == 0) {
		char recipient[CF_AGE_RECIPIENT_STRLEN + 1];
		cf_age_x25519_key key;
		if (cf_age_keygen(&key) != CF_OK)
			return kms_fail(out, 500, "internal", "key generation failed");
		sqlite3_exec(k->db, "SAVEPOINT kr", NULL, NULL, NULL);
		cf_err rc = add_version(k, id, current + 1, &key, recipient);
		cf_age_key_wipe(&key);
		if (rc != CF_OK || exec_bind(k->db, "UPDATE keys SET current = ? WHERE id = ?", "is",
					     (sqlite3_int64)(current + 1), id) != SQLITE_DONE) {
			sqlite3_exec(k->db, "ROLLBACK TO kr; RELEASE kr", NULL, NULL, NULL);
			return kms_fail(out, 500, "state", "cannot store the key");
		}
		sqlite3_exec(k->db, "RELEASE kr", NULL, NULL, NULL);
		return done(k, out,
			    json_pack("{s:s,s:i,s:s}", "key", id, "version", current + 1, "recipient",
				      recipient),
			    actor_of(org), op, id, true);
	}
	if (strcmp(op, "key.policy") == 0) {
		const json_t *policy = json_object_get(r, "policy");
		char *text = NULL;
		if (!policy || !valid_policy(policy))
			return kms_fail(out, 400, "policy", "policy is not a valid evidence policy");
		if (cf_json_canonical(policy, &text, NULL) != CF_OK)
			return kms_fail(out, 500, "internal", "out of memory");
		int step = exec_bind(k->db, "UPDATE keys SET policy = ? WHERE id = ?", "ss", text, id);
		free(text);
		if (step != SQLITE_DONE)
			return kms_fail(out, 500, "state", "cannot store the policy");
		return done(k, out, json_pack("{s:s}", "key", id), actor_of(org), op, id, true);
	}

	const char *to = strcmp(op, "key.disable") == 0 ? "disabled"
			 : strcmp(op, "key.enable") == 0 ? "enabled"
							 : "destroyed";
	sqlite3_exec(k->db, "SAVEPOINT ks", NULL, NULL, NULL);
	int step = exec_bind(k->db, "UPDATE keys SET state = ? WHERE id = ?", "ss", to, id);
	/* Destroy: the material goes; secure_delete overwrites the freed cells. */
	if (step == SQLITE_DONE && strcmp(to, "destroyed") == 0)
		step = exec_bind(k->db, "UPDATE key_versions SET secret = NULL WHERE key_id = ?", "s", id);
	if (step != SQLITE_DONE) {
		sqlite3_exec(k->db, "ROLLBACK TO ks; RELEASE ks", NULL, NULL, NULL);
		return kms_fail(out, 500, "state", "cannot change the key");
	}
	sqlite3_exec(k->db, "RELEASE ks", NULL, NULL, NULL);
	if (strcmp(to, "enabled") != 0)
		kms_forget_key(k, id);
	if (strcmp(to, "destroyed") == 0)
		sqlite3_exec(k->db, "VACUUM", NULL, NULL, NULL); /* no freed page keeps old cells */
	return done(k, out, json_pack("{s:s,s:s}", "key", id, "state", to), actor_of(org), op, id,
		    true);
}

static int key_list(kms *k, const char *org, json_t **out)
{
	sqlite3_stmt *st = NULL, *vs = NULL;
	json_t *keys = json_array();
	if (!keys ||
	    sqlite3_prepare_v2(k->db,
			       "SELECT id, state, policy, current, created FROM keys WHERE owner = ? "
			       "ORDER BY created, id",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(k->db,
			       "SELECT version, recipient, created, secret IS NULL FROM key_versions "
			       "WHERE key_id = ? ORDER BY version",
			       -1, &vs, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		json_decref(keys);
		return kms_fail(out, 500, "state", "query failed");
	}
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *versions = json_array();
		sqlite3_reset(vs);
		sqlite3_bind_text(vs, 1, (const char *)sqlite3_column_text(st, 0), -1, SQLITE_TRANSIENT);
		while (sqlite3_step(vs) == SQLITE_ROW)
			json_array_append_new(
				versions,
				json_pack("{s:i,s:s,s:I,s:b}", "version", sqlite3_column_int(vs, 0),
					  "recipient", (const char *)sqlite3_column_text(vs, 1),
					  "created", (json_int_t)sqlite3_column_int64(vs, 2),
					  "wiped", sqlite3_column_int(vs, 3)));
		const char *ptext = (const char *)sqlite3_column_text(st, 2);
		json_t *policy = ptext ? json_loads(ptext, 0, NULL) : json_null();
		json_array_append_new(
			keys, json_pack("{s:s,s:s,s:o,s:i,s:I,s:o}", "key",
					(const char *)sqlite3_column_text(st, 0), "state",
					(const char *)sqlite3_column_text(st, 1), "policy",
					policy ? policy : json_null(), "current",
					sqlite3_column_int(st, 3), "created",
					(json_int_t)sqlite3_column_int64(st, 4), "versions", versions));
	}
	sqlite3_finalize(st);
	sqlite3_finalize(vs);
	return done(k, out, json_pack("{s:o}", "keys", keys), actor_of(org), "key.list", "", false);
}

/* --- datasets --- */

static int dataset_register(kms *k, const char *org, const json_t *r, json_t **out)
{
	const char *name, *key_id, *header_b64;
	char id[140];
	uint8_t *header = NULL, file_key[CF_AGE_FILE_KEY_LEN], hash[32];
	size_t hlen = 0;
	int status;
	sqlite3_stmt *st = NULL;
	if (cf_json_get_string(r, "name", &name) != CF_OK ||
	    cf_json_get_string(r, "key", &key_id) != CF_OK ||
	    cf_json_get_string(r, "header", &header_b64) != CF_OK)
		return kms_fail(out, 400, "request", "dataset.register needs name, key and header");
	if (!cf_kms_valid_name(name))
		return kms_fail(out, 400, "request", "dataset names are 1-64 characters of [a-z0-9-]");
	snprintf(id, sizeof(id), "%s/%s", org, name);
	size_t blen = strlen(header_b64);
	if (blen > 64 * 1024)
		return kms_fail(out, 413, "request", "the header is over 48 KiB");
	header = malloc(cf_b64_decoded_max(blen) + 1);
	if (!header)
		return kms_fail(out, 500, "internal", "out of memory");
	if (cf_b64_decode(header_b64, blen, true, header, cf_b64_decoded_max(blen), &hlen) != CF_OK) {
		status = kms_fail(out, 400, "request", "header is not base64");
		goto out;
	}

	const char *kid;
	char state[16];
	int current = 0;
	json_t *probe = json_pack("{s:s}", "key", key_id);
	status = probe ? own_key(k, org, probe, "dataset.register", &kid, state, &current, out)
		       : kms_fail(out, 500, "internal", "out of memory");
	json_decref(probe);
	if (status)
		goto out;
	if (strcmp(state, "enabled") != 0) {
		status = kms_refuse(k, out, 409, actor_of(org), "dataset.register", id,
				strcmp(state, "destroyed") == 0 ? "key_destroyed" : "key_disabled",
				"key %s is %s", key_id, state);
		goto out;
	}
	/* Only the current version encrypts new data; older ones only decrypt. */
	cf_age_identity ident = { .kind = CF_AGE_X25519 };
	cf_err rc = CF_ERR_IO;
	if (sqlite3_prepare_v2(k->db,
			       "SELECT secret FROM key_versions WHERE key_id = ? AND version = ? "
			       "AND secret IS NOT NULL",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, current);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
			memcpy(ident.key.secret, sqlite3_column_blob(st, 0), 32);
			rc = cf_x25519_public(ident.key.secret, ident.key.pub);
		}
	}
	sqlite3_finalize(st);
	if (rc == CF_OK)
		rc = cf_age_unwrap_header(&ident, 1, header, hlen, file_key);
	cf_age_key_wipe(&ident.key);
	cf_wipe(file_key, sizeof(file_key));
	if (rc != CF_OK) {
		status = kms_refuse(k, out, 400, actor_of(org), "dataset.register", id, "header",
				"the header does not open with the current version (%d) of key %s: %s",
				current, key_id, cf_strerror(rc));
		goto out;
	}
	if (cf_hash(CF_SHA256, header, hlen, hash) != CF_OK) {
		status = kms_fail(out, 500, "internal", "hash failed");
		goto out;
	}
	int step = exec_bind(k->db,
			     "INSERT INTO datasets(id, owner, key_id, version, header, header_sha256, "
			     "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
			     "sssibbi", id, org, key_id, (sqlite3_int64)current, header, (int)hlen, hash,
			     32, (sqlite3_int64)k->now());
	if (step == SQLITE_CONSTRAINT) {
		status = kms_refuse(k, out, 409, actor_of(org), "dataset.register", id, "dataset_exists",
				"dataset %s is registered", id);
		goto out;
	}
	if (step != SQLITE_DONE) {
		status = kms_fail(out, 500, "state", "cannot store the dataset");
		goto out;
	}
	char hex[65];
	cf_hex_encode(hash, sizeof(hash), hex);
	status = done(k, out,
		      json_pack("{s:s,s:s,s:i,s:s}", "dataset", id, "key", key_id, "version", current,
				"header_sha256", hex),
		      actor_of(org), "dataset.register", id, true);
out:
	free(header);
	return status;
}

static int dataset_list(kms *k, const char *org, json_t **out)
{
	sqlite3_stmt *st = NULL;
	json_t *list = json_array();
	if (!list || sqlite3_prepare_v2(k->db,
					"SELECT id, key_id, version, hex(header_sha256), created "
					"FROM datasets WHERE owner = ? ORDER BY id",
					-1, &st, NULL) != SQLITE_OK) {
		json_decref(list);
		return kms_fail(out, 500, "state", "query failed");
	}
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		char hex[65];
		snprintf(hex, sizeof(hex), "%s", (const char *)sqlite3_column_text(st, 3));
		for (char *p = hex; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
		json_array_append_new(list, json_pack("{s:s,s:s,s:i,s:s,s:I}", "dataset",
						      (const char *)sqlite3_column_text(st, 0), "key",
						      (const char *)sqlite3_column_text(st, 1),
						      "version", sqlite3_column_int(st, 2),
						      "header_sha256", hex, "created",
						      (json_int_t)sqlite3_column_int64(st, 4)));
	}
	sqlite3_finalize(st);
	return done(k, out, json_pack("{s:o}", "datasets", list), actor_of(org), "dataset.list", "",
		    false);
}

/* --- organisations --- */

static int org_update(kms *k, const char *org, const json_t *r, json_t **out)
{
	uint8_t pub[32], age_pub[32];
	const char *recipient = NULL;
	bool new_pub = json_object_get(r, "sign_pub") != NULL;
	if (new_pub && kms_get_b64(r, "sign_pub", pub, 32) != CF_OK)
		return kms_fail(out, 400, "request", "sign_pub must be 32 bytes of base64");
	if (json_object_get(r, "age_recipient") &&
	    (cf_json_get_string(r, "age_recipient", &recipient) != CF_OK ||
	     cf_age_recipient_parse(recipient, age_pub) != CF_OK))
		return kms_fail(out, 400, "request", "age_recipient is not an age X25519 recipient");
	if (!new_pub && !recipient)
		return kms_fail(out, 400, "request", "org.update needs sign_pub or age_recipient");
	time_t now = k->now();
	if ((new_pub && exec_bind(k->db, "UPDATE orgs SET sign_pub = ?, updated = ? WHERE name = ?",
				  "bis", pub, 32, (sqlite3_int64)now, org) != SQLITE_DONE) ||
	    (recipient &&
	     exec_bind(k->db, "UPDATE orgs SET age_recipient = ?, updated = ? WHERE name = ?", "sis",
		       recipient, (sqlite3_int64)now, org) != SQLITE_DONE))
		return kms_fail(out, 500, "state", "cannot update the organisation");
	return done(k, out, json_pack("{s:s}", "org", org), actor_of(org), "org.update", org, true);
}

/* --- signed requests --- */

/* Refuses a replayed request id; remembers this one (sealed with the state). */
static bool fresh_request_id(kms *k, const char *id, time_t now)
{
	exec_bind(k->db, "DELETE FROM seen_requests WHERE expires < ?", "i", (sqlite3_int64)now);
	return exec_bind(k->db, "INSERT INTO seen_requests(id, expires) VALUES (?, ?)", "si", id,
			 (sqlite3_int64)(now + KMS_REQUEST_ID_TTL)) == SQLITE_DONE;
}

static int kms_request_body(kms *k, const json_t *req, json_t **out)
{
	const json_t *r = json_object_get(req, "request");
	const char *op, *org, *id, *sig;
	long long t;
	uint8_t pub[32], idbytes[16];
	if (!json_is_object(r) || cf_json_get_string(r, "op", &op) != CF_OK ||
	    cf_json_get_string(r, "org", &org) != CF_OK ||
	    cf_json_get_int(r, "time", &t) != CF_OK || cf_json_get_string(r, "id", &id) != CF_OK ||
	    cf_json_get_string(req, "sig", &sig) != CF_OK)
		return kms_fail(out, 400, "request", "need {request: {op, org, time, id, ...}, sig}");
	if (kms_get_hex(r, "id", idbytes, sizeof(idbytes)) != CF_OK)
		return kms_fail(out, 400, "request", "id must be 32 hex digits");
	if (!cf_kms_valid_name(org) || kms_org_pub(k, org, pub, NULL, 0) != CF_OK)
		return kms_fail(out, 403, "org", "no organisation %.64s is registered", org);
	if (cf_kms_verify_sig(pub, CF_KMS_CTX_REQUEST, r, sig) != CF_OK)
		return kms_refuse(k, out, 403, actor_of(org), op, "", "signature",
			      "the request is not signed by %s's current key", org);
	time_t now = k->now();
	if (t < (long long)now - KMS_REQUEST_SKEW || t > (long long)now + KMS_REQUEST_SKEW)
		return kms_refuse(k, out, 403, actor_of(org), op, "", "time",
			      "request time %lld is more than %d s from the KMS's %lld", t,
			      KMS_REQUEST_SKEW, (long long)now);
	if (!fresh_request_id(k, id, now))
		return kms_refuse(k, out, 403, actor_of(org), op, "", "replay",
			      "request id %s was seen before", id);

	if (strcmp(op, "org.update") == 0)
		return org_update(k, org, r, out);
	if (strcmp(op, "key.create") == 0)
		return key_create(k, org, r, out, false);
	if (strcmp(op, "key.import") == 0)
		return key_create(k, org, r, out, true);
	if (strcmp(op, "key.rotate") == 0 || strcmp(op, "key.disable") == 0 ||
	    strcmp(op, "key.enable") == 0 || strcmp(op, "key.destroy") == 0 ||
	    strcmp(op, "key.policy") == 0)
		return key_change(k, org, op, r, out);
	if (strcmp(op, "key.list") == 0)
		return key_list(k, org, out);
	if (strcmp(op, "dataset.register") == 0)
		return dataset_register(k, org, r, out);
	if (strcmp(op, "dataset.list") == 0)
		return dataset_list(k, org, out);
	return kms_fail(out, 400, "request", "unknown op %.64s", op);
}

int kms_enroll(kms *k, const json_t *req, json_t **out)
{
	pthread_mutex_lock(&k->lock);
	int status = kms_enroll_body(k, req, out);
	pthread_mutex_unlock(&k->lock);
	return status;
}

int kms_request(kms *k, const json_t *req, json_t **out)
{
	pthread_mutex_lock(&k->lock);
	int status = kms_request_body(k, req, out);
	pthread_mutex_unlock(&k->lock);
	return status;
}
