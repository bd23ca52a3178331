/*
 * The KMS's state, secrets, audit and the small entry points (info,
 * nonce). The secrets (signing seed, CA key, transport identity) are
 * created at the first start and live only in the sealed database.
 */
#define CF_LOG_MODULE "kms"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/log.h"
#include "kms_internal.h"

/*
 * Messages quote request values cut to a length (%.64s), which can split
 * a UTF-8 sequence; JSON and the audit log take only valid UTF-8. So any
 * byte that is not part of a valid sequence becomes '?'.
 */
static void utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2
			 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4 : 0;
		size_t i = 1;
		while (i < n && (p[i] & 0xc0) == 0x80)
			i++;
		/* Overlong 3/4-byte forms, surrogates and > U+10FFFF are refused too. */
		bool bad = n == 0 || i < n ||
			   (n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) ||
			   (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)));
		if (bad) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

/* At most max bytes of s into out, whole UTF-8 characters only, cleaned. */
static const char *audit_field(const char *s, char *out, size_t max)
{
	size_t n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = 0;
	utf8_clean(out);
	return out;
}

int kms_fail(json_t **out, int status, const char *check, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_clean(msg);
	*out = json_pack("{s:{s:s,s:s}}", "error", "check", check, "message", msg);
	return status;
}

int kms_refuse(kms *k, json_t **out, int status, const char *actor, const char *op,
	       const char *object, const char *check, const char *fmt, ...)
{
	char msg[600], result[96];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(result, sizeof(result), "denied: %s", check);
	if (kms_audit(k, actor, op, object, result) != CF_OK)
		return kms_fail(out, 500, "audit", "the audit log cannot be written");
	log_info("%s %s %s refused: %s: %s", actor, op, object, check, msg);
	return kms_fail(out, status, check, "%s", msg);
}

cf_err kms_audit(kms *k, const char *actor, const char *op, const char *object, const char *result)
{
	/* Fields may quote request values: bounded and valid, never a reason to fail. */
	char a[160], o[160], r[160], x[300];
	cf_err rc = cf_audit_append(k->audit, audit_field(actor, a, 128), audit_field(op, o, 128),
				    audit_field(object ? object : "", x, 256),
				    audit_field(result, r, 128));
	if (rc != CF_OK)
		log_error("audit append failed: %s", cf_strerror(rc));
	return rc;
}

cf_err kms_commit(kms *k)
{
	cf_err rc = cf_sealdb_commit(k->state);
	if (rc != CF_OK)
		log_error("sealing the state failed: %s", cf_strerror(rc));
	return rc;
}

cf_err kms_get_b64(const json_t *obj, const char *name, uint8_t *out, size_t n)
{
	const char *s;
	uint8_t tmp[160];
	size_t got = 0;
	if (cf_json_get_string(obj, name, &s) != CF_OK)
		return CF_ERR_PARSE;
	size_t len = strlen(s);
	/* Fixed-size values only (keys, signatures): decode via a bounded scratch. */
	if (n > sizeof(tmp) - 3 || cf_b64_decoded_max(len) > sizeof(tmp) ||
	    cf_b64_decode(s, len, true, tmp, sizeof(tmp), &got) != CF_OK || got != n) {
		cf_wipe(tmp, sizeof(tmp));
		return CF_ERR_ENCODING;
	}
	memcpy(out, tmp, n);
	cf_wipe(tmp, sizeof(tmp));
	return CF_OK;
}

cf_err kms_get_hex(const json_t *obj, const char *name, uint8_t *out, size_t n)
{
	const char *s;
	size_t got = 0;
	if (cf_json_get_string(obj, name, &s) != CF_OK)
		return CF_ERR_PARSE;
	if (strlen(s) != 2 * n || cf_hex_decode(s, 2 * n, out, n, &got) != CF_OK)
		return CF_ERR_ENCODING;
	return CF_OK;
}

cf_err kms_org_pub(kms *k, const char *org, uint8_t pub[32], char *recipient, size_t rcap)
{
	sqlite3_stmt *st = NULL;
	cf_err rc = CF_ERR_NOT_FOUND;
	if (sqlite3_prepare_v2(k->db, "SELECT sign_pub, age_recipient FROM orgs WHERE name = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return CF_ERR_IO;
	sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(pub, sqlite3_column_blob(st, 0), 32);
		if (recipient)
			snprintf(recipient, rcap, "%s", (const char *)sqlite3_column_text(st, 1));
		rc = CF_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

const char *kms_measurement_claim(cf_tee_kind kind)
{
	switch (kind) {
	case CF_TEE_SGX: return "mr_enclave";
	case CF_TEE_TDX: return "mr_td";
	case CF_TEE_CSV: return "digest";
	default: return "measurement"; /* soft, snp */
	}
}

/* --- secrets in the sealed state --- */

static cf_err meta_get(sqlite3 *db, const char *key, cf_buf *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc = CF_ERR_NOT_FOUND;
	if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k = ?", -1, &st, NULL) != SQLITE_OK)
		return CF_ERR_IO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		rc = cf_buf_append(out, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	return rc;
}

static cf_err meta_put(sqlite3 *db, const char *key, const void *v, size_t n)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(k, v) VALUES (?, ?)", -1, &st,
			       NULL) != SQLITE_OK)
		return CF_ERR_IO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, v, (int)n, SQLITE_STATIC);
	cf_err rc = sqlite3_step(st) == SQLITE_DONE ? CF_OK : CF_ERR_IO;
	sqlite3_finalize(st);
	return rc;
}

/* Loads a fixed-size secret, creating it with gen() at the first start. */
static cf_err meta_secret(sqlite3 *db, const char *key, uint8_t *out, size_t n, bool *created)
{
	cf_buf b;
	cf_buf_init(&b, 4096, true);
	cf_err rc = meta_get(db, key, &b);
	if (rc == CF_OK) {
		rc = b.len == n ? CF_OK : CF_ERR_PARSE;
		if (rc == CF_OK)
			memcpy(out, b.data, n);
	} else if (rc == CF_ERR_NOT_FOUND) {
		rc = cf_random(out, n);
		if (rc == CF_OK)
			rc = meta_put(db, key, out, n);
		*created = true;
	}
	cf_buf_free(&b);
	return rc;
}

static cf_err load_admin(kms *k, const kms_config *cfg, bool *created)
{
	cf_buf b;
	cf_buf_init(&b, 64, false);
	cf_err rc = meta_get(k->db, "admin_pub", &b);
	if (rc == CF_ERR_NOT_FOUND) {
		if (!cfg->admin_pub) {
			log_error("first start: the platform admin's public key is needed (--admin-pub)");
			rc = CF_ERR_ARG;
		} else {
			rc = meta_put(k->db, "admin_pub", cfg->admin_pub, 32);
			*created = true;
		}
	} else if (rc == CF_OK && cfg->admin_pub && (b.len != 32 || memcmp(b.data, cfg->admin_pub, 32))) {
		/* The admin key is trust state: changing it is not a restart option. */
		log_error("--admin-pub differs from the admin key in the sealed state; refusing");
		rc = CF_ERR_AUTH;
	}
	cf_buf_free(&b);
	return rc;
}

static cf_err load_ca(kms *k, bool *created)
{
	cf_buf der;
	cf_buf_init(&der, 8192, true);
	cf_err rc = meta_get(k->db, "ca_key", &der);
	if (rc == CF_OK) {
		rc = kms_ca_load(der.data, der.len, &k->ca);
	} else if (rc == CF_ERR_NOT_FOUND) {
		rc = kms_ca_generate(&k->ca);
		if (rc == CF_OK)
			rc = kms_ca_export_key(k->ca, &der);
		if (rc == CF_OK)
			rc = meta_put(k->db, "ca_key", der.data, der.len);
		*created = true;
	}
	cf_buf_free(&der);
	return rc;
}

static cf_err open_nonces(kms *k)
{
	if (sqlite3_open_v2(":memory:", &k->nonces, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK)
		return CF_ERR_NOMEM;
	return sqlite3_exec(k->nonces,
			    "CREATE TABLE nonces(n BLOB PRIMARY KEY, purpose TEXT NOT NULL, "
			    "expires INTEGER NOT NULL) WITHOUT ROWID;"
			    "CREATE INDEX nonces_expires ON nonces(expires);",
			    NULL, NULL, NULL) == SQLITE_OK
		       ? CF_OK
		       : CF_ERR_IO;
}

static cf_err make_tls(kms *k, const kms_config *cfg, cf_tee_kind kind, cf_ratls_evidence_fn fn,
		       void *arg)
{
	static const char *const default_names[] = { "localhost", "127.0.0.1" };
	const char *const *names = cfg->nnames ? cfg->names : default_names;
	size_t nnames = cfg->nnames ? cfg->nnames : 2;
	time_t now = k->now();
	cf_err rc = kms_ca_certify_self(k->ca, kind, fn, arg, now);
	if (rc != CF_OK)
		return rc;
	/* A few days: the leaf is reissued at every start anyway. */
	rc = kms_ca_issue_server(k->ca, names, nnames, now, 7 * 24 * 3600, &k->tls_key,
				 &k->tls_cert);
	if (rc != CF_OK)
		return rc;
	rc = kms_ca_ssl_ctx(k->ca, k->tls_key, k->tls_cert, &k->ssl);
	if (rc != CF_OK)
		return rc;

	cf_buf pem;
	cf_buf_init(&pem, 256 * 1024, false);
	rc = kms_ca_cert_pem(k->ca, &pem);
	if (rc == CF_OK)
		rc = cf_buf_terminate(&pem);
	if (rc == CF_OK && !(k->ca_pem = strdup((const char *)pem.data)))
		rc = CF_ERR_NOMEM;
	cf_buf_free(&pem);
	if (rc == CF_OK)
		rc = kms_ca_fingerprint(k->ca, k->ca_sha256);
	return rc;
}

cf_err kms_open(const kms_config *cfg, const uint8_t seal_key[static 32], cf_tee_kind tee_kind,
		const uint8_t measurement[48], cf_ratls_evidence_fn evidence_fn, void *evidence_arg,
		kms **out)
{
	char path[4096];
	bool created = false;
	cf_err rc;
	kms *k = calloc(1, sizeof(*k));
	if (!k)
		return CF_ERR_NOMEM;
	k->now = NULL;
	k->tee_kind = tee_kind;
	memcpy(k->measurement, measurement, 48);
	k->collateral = cfg->collateral;
	k->certify_policy = cfg->certify_policy;
	k->transport.kind = CF_AGE_X25519;
	pthread_mutex_init(&k->lock, NULL);
	kms_set_clock(k, NULL);

	if (mkdir(cfg->state_dir, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", cfg->state_dir, strerror(errno));
		rc = CF_ERR_IO;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/kms.db.sealed", cfg->state_dir);
	if ((rc = cf_sealdb_open(path, seal_key, &k->state)) != CF_OK) {
		log_error("cannot open the sealed state %s: %s", path, cf_strerror(rc));
		goto out;
	}
	k->db = cf_sealdb_handle(k->state);
	if ((rc = kms_schema(k->db)) != CF_OK)
		goto out;
	if ((rc = load_admin(k, cfg, &created)) != CF_OK)
		goto out;
	if ((rc = meta_secret(k->db, "sign_seed", k->sign_seed, sizeof(k->sign_seed), &created)) != CF_OK)
		goto out;
	if ((rc = cf_ed25519_public(k->sign_seed, k->sign_pub)) != CF_OK)
		goto out;
	if ((rc = meta_secret(k->db, "transport", k->transport.key.secret, 32, &created)) != CF_OK)
		goto out;
	if ((rc = cf_x25519_public(k->transport.key.secret, k->transport.key.pub)) != CF_OK)
		goto out;
	if ((rc = cf_age_recipient_format(k->transport.key.pub, k->transport_recipient)) != CF_OK)
		goto out;
	if ((rc = load_ca(k, &created)) != CF_OK)
		goto out;
	if (created && (rc = kms_commit(k)) != CF_OK)
		goto out;

	snprintf(path, sizeof(path), "%s/audit.log", cfg->state_dir);
	if ((rc = cf_audit_open(path, k->sign_seed, k->sign_pub, &k->audit)) != CF_OK) {
		log_error("cannot open the audit log %s: %s", path, cf_strerror(rc));
		goto out;
	}
	if ((rc = open_nonces(k)) != CF_OK)
		goto out;
	if ((rc = make_tls(k, cfg, tee_kind, evidence_fn, evidence_arg)) != CF_OK) {
		log_error("cannot make the attested TLS certificates: %s", cf_strerror(rc));
		goto out;
	}
	char gen[32];
	snprintf(gen, sizeof(gen), "generation %llu",
		 (unsigned long long)cf_sealdb_generation(k->state));
	if ((rc = kms_audit(k, "kms", created ? "kms.init" : "kms.start", gen, "ok")) != CF_OK)
		goto out;
	*out = k;
	k = NULL;
out:
	kms_close(k);
	return rc;
}

void kms_close(kms *k)
{
	if (!k)
		return;
	cf_audit_close(k->audit);
	sqlite3_close(k->nonces);
	cf_sealdb_close(k->state);
	kms_ca_free(k->ca);
	EVP_PKEY_free(k->tls_key);
	X509_free(k->tls_cert);
	SSL_CTX_free(k->ssl);
	free(k->ca_pem);
	cf_wipe(k->sign_seed, sizeof(k->sign_seed));
	cf_age_key_wipe(&k->transport.key);
	pthread_mutex_destroy(&k->lock);
	cf_wipe(k, sizeof(*k));
	free(k);
}

static time_t system_now(void)
{
	return time(NULL);
}

void kms_set_clock(kms *k, time_t (*now)(void))
{
	k->now = now ? now : system_now;
}

SSL_CTX *kms_ssl_ctx(kms *k)
{
	return k->ssl;
}

const char *kms_ca_pem(kms *k)
{
	return k->ca_pem;
}

static int kms_info_body(kms *k, json_t **out)
{
	char pub[64], meas[97], ca[65];
	cf_b64_encode(k->sign_pub, sizeof(k->sign_pub), true, pub);
	cf_hex_encode(k->measurement, sizeof(k->measurement), meas);
	cf_hex_encode(k->ca_sha256, sizeof(k->ca_sha256), ca);
	*out = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s}", "version", COFFER_VERSION, "tee",
			 cf_tee_kind_name(k->tee_kind), "measurement", meas, "kms_pub", pub,
			 "transport_recipient", k->transport_recipient, "ca_sha256", ca, "generation",
			 (json_int_t)cf_sealdb_generation(k->state), "ca", k->ca_pem);
	return *out ? 200 : kms_fail(out, 500, "internal", "out of memory");
}

static int kms_nonce_body(kms *k, json_t **out)
{
	uint8_t n[32];
	char hex[65];
	sqlite3_stmt *st = NULL;
	time_t now = k->now();
	if (cf_random(n, sizeof(n)) != CF_OK)
		return kms_fail(out, 500, "internal", "no randomness");
	/* Forget expired nonces now and then: the table stays about 60 s of traffic. */
	if (sqlite3_prepare_v2(k->nonces, "DELETE FROM nonces WHERE expires < ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(k->nonces, "INSERT INTO nonces(n, purpose, expires) VALUES (?, '', ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return kms_fail(out, 500, "internal", "nonce store");
	sqlite3_bind_blob(st, 1, n, sizeof(n), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(now + KMS_NONCE_TTL));
	int step = sqlite3_step(st);
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return kms_fail(out, 500, "internal", "nonce store");
	cf_hex_encode(n, sizeof(n), hex);
	*out = json_pack("{s:s,s:I}", "nonce", hex, "expires", (json_int_t)(now + KMS_NONCE_TTL));
	return 200;
}

int kms_info(kms *k, json_t **out)
{
	pthread_mutex_lock(&k->lock);
	int status = kms_info_body(k, out);
	pthread_mutex_unlock(&k->lock);
	return status;
}

int kms_nonce(kms *k, json_t **out)
{
	pthread_mutex_lock(&k->lock);
	int status = kms_nonce_body(k, out);
	pthread_mutex_unlock(&k->lock);
	return status;
}
