/*
 * cofferd's state: the state directory and what lives in it (database,
 * blobs, run logs, the audit log and its Ed25519 key, the TLS
 * certificate), the first admin, and the audit helpers. The audit key is
 * cofferd's own: it proves what cofferd recorded, nothing more.
 */
#define CF_LOG_MODULE "cofferd"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <argon2.h>

#include "coffer/buf.h"
#include "coffer/enc.h"
#include "coffer/kms_client.h"
#include "coffer/log.h"
#include "internal.h"
#include "tls.h"

#define PEM_MAX (64u * 1024u)

/* --- audit --- */

/* Audit fields quote request values, which must never make an append fail. */
const char *clean_utf8(const char *s, char *out, size_t max)
{
	size_t n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(out, s, n);
	out[n] = 0;
	unsigned char *p = (unsigned char *)out;
	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2
			   : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4 : 0;
		size_t i = 1;
		while (i < len && (p[i] & 0xc0) == 0x80)
			i++;
		/* Overlong forms, surrogates and code points over U+10FFFF too. */
		bool bad = len == 0 || i < len ||
			   (len == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) ||
			   (len == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)));
		if (bad) {
			*p++ = '?';
			continue;
		}
		p += len;
	}
	return out;
}

static cf_err audit_reopen(cofferd *d)
{
	cf_audit_close(d->audit);
	d->audit = NULL;
	cf_err rc = cf_audit_open(d->audit_path, d->audit_seed, d->audit_pub, &d->audit);
	if (rc != CF_OK)
		log_error("cannot reopen the audit log %s: %s", d->audit_path, cf_strerror(rc));
	return rc;
}

cf_err cofferd_audit(cofferd *d, const char *actor, const char *op, const char *object,
		     const char *result)
{
	char a[160], o[160], x[300], r[160];
	cf_err rc = CF_ERR_IO;
	pthread_mutex_lock(&d->audit_lock);
	if (!d->audit_broken && d->audit)
		rc = cf_audit_append(d->audit, clean_utf8(actor, a, 128), clean_utf8(op, o, 128),
				     clean_utf8(object ? object : "", x, 256),
				     clean_utf8(result, r, 128));
	if (rc != CF_OK) {
		log_error("audit append failed: %s: refusing changes until the log is back",
			  cf_strerror(rc));
		d->audit_broken = true;
	}
	pthread_mutex_unlock(&d->audit_lock);
	return rc;
}

bool cofferd_audit_ready(cofferd *d)
{
	pthread_mutex_lock(&d->audit_lock);
	if (d->audit_broken && audit_reopen(d) == CF_OK)
		d->audit_broken = false;
	bool ready = !d->audit_broken;
	pthread_mutex_unlock(&d->audit_lock);
	return ready;
}

/* The audit key: made at the first start, 0600, its public half beside it. */
static cf_err load_audit_key(cofferd *d)
{
	char path[COFFERD_PATH_MAX + 16], pub_path[COFFERD_PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/audit.key", d->state_dir);
	snprintf(pub_path, sizeof(pub_path), "%s/audit.pub", d->state_dir);
	cf_err rc = cf_sigkey_read(path, d->audit_seed);
	if (rc == CF_ERR_NOT_FOUND) {
		rc = cf_ed25519_keygen(d->audit_seed, d->audit_pub);
		if (rc == CF_OK)
			rc = cf_sigkey_write(path, d->audit_seed, "cofferd audit log signing key");
		if (rc == CF_OK)
			log_info("made the audit signing key %s", path);
	}
	if (rc != CF_OK) {
		log_error("the audit key %s: %s", path,
			  rc == CF_ERR_AUTH ? "readable by others" : cf_strerror(rc));
		return rc;
	}
	if ((rc = cf_ed25519_public(d->audit_seed, d->audit_pub)) != CF_OK)
		return rc;
	/* The public key for `coffer audit verify --key-file`, rewritten every start. */
	char b64[CF_KMS_PUB_B64_LEN + 1];
	cf_b64_encode(d->audit_pub, sizeof(d->audit_pub), true, b64);
	FILE *f = fopen(pub_path, "w");
	if (!f || fprintf(f, "%s\n", b64) < 0 || fclose(f) != 0) {
		log_warn("cannot write %s: %s", pub_path, strerror(errno));
		if (f)
			fclose(f);
	}
	return CF_OK;
}

/* --- files given to enclaves --- */

static cf_err read_pem(const char *path, char **out)
{
	cf_buf b;
	cf_buf_init(&b, PEM_MAX, false);
	cf_err rc = CF_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot read %s: %s", path, strerror(errno));
		return CF_ERR_IO;
	}
	for (;;) {
		uint8_t chunk[4096];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				rc = CF_ERR_IO;
			break;
		}
		if ((rc = cf_buf_append(&b, chunk, (size_t)n)) != CF_OK)
			break;
	}
	close(fd);
	/* Terminated before strstr, which reads up to the NUL. */
	if (rc == CF_OK && (b.len == 0 || !memchr(b.data, 0, b.len)))
		rc = cf_buf_terminate(&b);
	else if (rc == CF_OK)
		rc = CF_ERR_PARSE;
	if (rc == CF_OK && !strstr((char *)b.data, "-----BEGIN"))
		rc = CF_ERR_PARSE;
	if (rc != CF_OK) {
		log_error("%s: not a PEM file of at most 64 KiB (%s)", path, cf_strerror(rc));
		cf_buf_free(&b);
		return rc;
	}
	size_t len;
	*out = (char *)cf_buf_steal(&b, &len);
	return CF_OK;
}

static cf_err make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		log_error("cannot create %s: %s", path, strerror(errno));
		return CF_ERR_IO;
	}
	return CF_OK;
}

/* The program beside our own executable (coffer-launch, coffer-enclave). */
static void beside_self(const char *name, char *out, size_t cap)
{
	char self[COFFERD_PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	out[0] = 0;
	if (n <= 0)
		return;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	if ((size_t)snprintf(out, cap, "%s/%s", self, name) >= cap)
		out[0] = 0;
}

static time_t system_now(void)
{
	return time(NULL);
}

void cofferd_set_clock(cofferd *d, time_t (*now)(void))
{
	d->now = now ? now : system_now;
}

SSL_CTX *cofferd_ssl_ctx(cofferd *d)
{
	return d->ssl;
}

void cofferd_set_url(cofferd *d, const char *url)
{
	pthread_mutex_lock(&d->url_lock);
	snprintf(d->url, sizeof(d->url), "%s", url);
	pthread_mutex_unlock(&d->url_lock);
}

static bool fits(const char *s, size_t cap)
{
	return s && strlen(s) < cap;
}

cf_err cofferd_open(const cofferd_config *cfg, cofferd **out)
{
	char path[COFFERD_PATH_MAX + 32];
	cf_err rc = CF_ERR_ARG;
	cofferd *d = calloc(1, sizeof(*d));
	if (!d)
		return CF_ERR_NOMEM;
	pthread_mutex_init(&d->audit_lock, NULL);
	pthread_mutex_init(&d->url_lock, NULL);
	cofferd_set_clock(d, NULL);
	if (!fits(cfg->state_dir, sizeof(d->state_dir) - 64) ||
	    (cfg->launch_path && !fits(cfg->launch_path, sizeof(d->launch_path))) ||
	    (cfg->enclave_path && !fits(cfg->enclave_path, sizeof(d->enclave_path))) ||
	    (cfg->kms_url && !fits(cfg->kms_url, sizeof(d->kms_url))) ||
	    (!cfg->cert_path != !cfg->key_path)) {
		log_error("bad configuration (a path too long, or --cert without --key)");
		goto out;
	}
	snprintf(d->state_dir, sizeof(d->state_dir), "%s", cfg->state_dir);
	snprintf(d->blobs_dir, sizeof(d->blobs_dir), "%s/blobs", cfg->state_dir);
	snprintf(d->runs_dir, sizeof(d->runs_dir), "%s/runs", cfg->state_dir);
	snprintf(d->audit_path, sizeof(d->audit_path), "%s/audit.log", cfg->state_dir);
	snprintf(d->kms_url, sizeof(d->kms_url), "%s", cfg->kms_url ? cfg->kms_url : "");
	if (cfg->launch_path)
		snprintf(d->launch_path, sizeof(d->launch_path), "%s", cfg->launch_path);
	else
		beside_self("coffer-launch", d->launch_path, sizeof(d->launch_path));
	d->warm_spares = !cfg->no_warm_spares;
	if (cfg->enclave_path)
		snprintf(d->enclave_path, sizeof(d->enclave_path), "%s", cfg->enclave_path);
	else
		beside_self("coffer-enclave", d->enclave_path, sizeof(d->enclave_path));
	d->max_dataset = cfg->max_dataset ? cfg->max_dataset : COFFERD_DEFAULT_MAX_DATASET;
	d->argon2_t = cfg->argon2_t ? cfg->argon2_t : 3;
	d->argon2_m_kib = cfg->argon2_m_kib ? cfg->argon2_m_kib : 64 * 1024;
	snprintf(d->url, sizeof(d->url), "https://127.0.0.1:8080");

	if ((rc = make_dir(d->state_dir)) != CF_OK || (rc = make_dir(d->blobs_dir)) != CF_OK ||
	    (rc = make_dir(d->runs_dir)) != CF_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/cofferd.db", d->state_dir);
	if ((rc = store_open(path, &d->db)) != CF_OK)
		goto out;
	if ((rc = load_audit_key(d)) != CF_OK)
		goto out;
	if ((rc = cf_audit_open(d->audit_path, d->audit_seed, d->audit_pub, &d->audit)) != CF_OK) {
		log_error("cannot open the audit log %s: %s%s", d->audit_path, cf_strerror(rc),
			  rc == CF_ERR_IO && errno == EWOULDBLOCK ? " (another cofferd holds it)" : "");
		goto out;
	}
	if ((rc = tls_setup(d, cfg)) != CF_OK)
		goto out;
	if (cfg->kms_ca_path && (rc = read_pem(cfg->kms_ca_path, &d->kms_ca_pem)) != CF_OK)
		goto out;
	if (cfg->platform_cert_path &&
	    (rc = read_pem(cfg->platform_cert_path, &d->platform_cert_pem)) != CF_OK)
		goto out;

	/* A hash to verify against for unknown users: the same cost as a real one. */
	uint8_t salt[16], pw[16];
	if ((rc = cf_random(salt, sizeof(salt))) != CF_OK || (rc = cf_random(pw, sizeof(pw))) != CF_OK)
		goto out;
	if (argon2id_hash_encoded(d->argon2_t, d->argon2_m_kib, 1, pw, sizeof(pw), salt, sizeof(salt),
				  32, d->dummy_hash, sizeof(d->dummy_hash)) != ARGON2_OK) {
		rc = CF_ERR_CRYPTO;
		goto out;
	}
	if ((rc = ensure_admin(d, cfg->admin_password_file)) != CF_OK)
		goto out;
	rc = store_meta_get(d->db, "host_id", d->host_id, sizeof(d->host_id));
	if (rc == CF_ERR_NOT_FOUND && (rc = make_id("host", d->host_id)) == CF_OK)
		rc = store_meta_put(d->db, "host_id", d->host_id);
	if (rc != CF_OK)
		goto out;
	/* Runs of a previous process lost their watcher: they cannot finish now. */
	if ((rc = store_run_fail_orphans(d->db, "cofferd restarted while the run was going",
					 (int64_t)d->now())) != CF_OK)
		goto out;
	if ((rc = runner_new(d, &d->runs)) != CF_OK)
		goto out;
	if ((rc = cofferd_audit(d, "cofferd", "cofferd.start", "", "ok")) != CF_OK)
		goto out;
	*out = d;
	d = NULL;
out:
	cofferd_close(d);
	return rc;
}

void cofferd_close(cofferd *d)
{
	if (!d)
		return;
	runner_free(d->runs);
	cf_audit_close(d->audit);
	store_close(d->db);
	SSL_CTX_free(d->ssl);
	free(d->cert_pem);
	free(d->kms_ca_pem);
	free(d->platform_cert_pem);
	pthread_mutex_destroy(&d->audit_lock);
	pthread_mutex_destroy(&d->url_lock);
	cf_wipe(d, sizeof(*d));
	free(d);
}
