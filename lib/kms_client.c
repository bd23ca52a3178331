/*
 * The client side of coffer-kms (docs/kms.md): the signing rules shared
 * with the KMS, signing key files, the pinned HTTPS JSON client on
 * libcurl, organisation requests, the enclave's side of a release and
 * the client profile.
 */
#include "coffer/kms_client.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "https.h"

#define SIGKEY_FILE_MAX 4096u
#define CA_FILE_MAX (256u * 1024)
#define PROFILE_FILE_MAX (64u * 1024)
#define MAX_EVIDENCE (256u * 1024)
#define MAX_URL CF_HTTPS_MAX_URL

bool cf_kms_valid_name(const char *s)
{
	if (!s)
		return false;
	size_t n = strlen(s);
	if (n < 1 || n > CF_KMS_MAX_ORG_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

/* --- signatures under a context --- */

/* Ed25519 over context || data. */
static cf_err sign_with_context(const uint8_t seed[static CF_ED25519_SEED_LEN], const char *context,
				const void *data, size_t len, uint8_t sig[static CF_ED25519_SIG_LEN])
{
	size_t clen = strlen(context);
	cf_buf msg;
	cf_buf_init(&msg, clen + len + 1, false);
	cf_err rc = cf_buf_append(&msg, context, clen);
	if (rc == CF_OK)
		rc = cf_buf_append(&msg, data, len);
	if (rc == CF_OK)
		rc = cf_ed25519_sign(seed, msg.data, msg.len, sig);
	cf_buf_free(&msg);
	return rc;
}

static cf_err verify_with_context(const uint8_t pub[static CF_ED25519_PUB_LEN], const char *context,
				  const void *data, size_t len,
				  const uint8_t sig[static CF_ED25519_SIG_LEN])
{
	size_t clen = strlen(context);
	cf_buf msg;
	cf_buf_init(&msg, clen + len + 1, false);
	cf_err rc = cf_buf_append(&msg, context, clen);
	if (rc == CF_OK)
		rc = cf_buf_append(&msg, data, len);
	if (rc == CF_OK)
		rc = cf_ed25519_verify(pub, msg.data, msg.len, sig);
	cf_buf_free(&msg);
	return rc;
}

/* Exactly n bytes of padded base64 (n > 0). */
static cf_err b64_exact(const char *s, uint8_t *out, size_t n)
{
	size_t len = strlen(s), got = 0;
	if (len != cf_b64_encoded_len(n, true))
		return CF_ERR_ENCODING;
	cf_err rc = cf_b64_decode(s, len, true, out, n, &got);
	if (rc == CF_ERR_TOO_BIG)
		rc = CF_ERR_ENCODING;
	if (rc == CF_OK && got != n)
		rc = CF_ERR_ENCODING;
	return rc;
}

/* Exactly n bytes of lower-case hex. */
static cf_err hex_exact(const char *s, uint8_t *out, size_t n)
{
	size_t len = strlen(s), got = 0;
	if (len != 2 * n)
		return CF_ERR_ENCODING;
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 'A' && s[i] <= 'F')
			return CF_ERR_ENCODING;
	}
	cf_err rc = cf_hex_decode(s, len, out, n, &got);
	if (rc == CF_OK && got != n)
		rc = CF_ERR_ENCODING;
	return rc;
}

cf_err cf_kms_sign(const uint8_t seed[static CF_ED25519_SEED_LEN], const char *context,
		   const json_t *obj, char sig_b64[static CF_KMS_SIG_B64_LEN + 1])
{
	if (!context || !obj)
		return CF_ERR_ARG;
	char *canon = NULL;
	size_t len = 0;
	uint8_t sig[CF_ED25519_SIG_LEN];
	cf_err rc = cf_json_canonical(obj, &canon, &len);
	if (rc != CF_OK)
		goto out;
	if ((rc = sign_with_context(seed, context, canon, len, sig)) != CF_OK)
		goto out;
	cf_b64_encode(sig, sizeof(sig), true, sig_b64);
out:
	free(canon);
	return rc;
}

cf_err cf_kms_verify_sig(const uint8_t pub[static CF_ED25519_PUB_LEN], const char *context,
			 const json_t *obj, const char *sig_b64)
{
	if (!context || !obj || !sig_b64)
		return CF_ERR_ARG;
	uint8_t sig[CF_ED25519_SIG_LEN];
	char *canon = NULL;
	size_t len = 0;
	cf_err rc = b64_exact(sig_b64, sig, sizeof(sig));
	if (rc != CF_OK)
		return rc;
	if ((rc = cf_json_canonical(obj, &canon, &len)) != CF_OK)
		return rc;
	rc = verify_with_context(pub, context, canon, len, sig);
	free(canon);
	return rc;
}

cf_err cf_enroll_token_sign(const uint8_t admin_seed[static CF_ED25519_SEED_LEN],
			    const json_t *token, char sig_b64[static CF_KMS_SIG_B64_LEN + 1])
{
	return cf_kms_sign(admin_seed, CF_KMS_CTX_ENROLL, token, sig_b64);
}

cf_err cf_enroll_token_make(const char *org, const char *sign_pub_b64, const char *age_recipient,
			    long long expires, json_t **token)
{
	uint8_t pub[CF_ED25519_PUB_LEN], apub[32];
	if (!cf_kms_valid_name(org) || !sign_pub_b64 || !age_recipient || expires <= 0)
		return CF_ERR_ARG;
	if (b64_exact(sign_pub_b64, pub, sizeof(pub)) != CF_OK)
		return CF_ERR_ARG;
	if (cf_age_recipient_parse(age_recipient, apub) != CF_OK)
		return CF_ERR_ARG;
	json_t *t = json_pack("{s:s, s:s, s:s, s:I}", "org", org, "sign_pub", sign_pub_b64,
			      "age_recipient", age_recipient, "expires", (json_int_t)expires);
	if (!t)
		return CF_ERR_NOMEM;
	*token = t;
	return CF_OK;
}

/* --- tasks and approvals --- */

cf_err cf_task_digest(const json_t *task, uint8_t out[static CF_SHA256_LEN])
{
	if (!task)
		return CF_ERR_ARG;
	char *canon = NULL;
	size_t len = 0;
	cf_err rc = cf_json_canonical(task, &canon, &len);
	if (rc != CF_OK)
		return rc;
	rc = cf_hash(CF_SHA256, canon, len, out);
	free(canon);
	return rc;
}

static cf_err task_fail(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static cf_err task_fail(char *why, size_t whylen, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return CF_ERR_PARSE;
}

/* "ORG/NAME" with both parts valid names. */
static bool valid_dataset_name(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) > CF_KMS_MAX_ORG_NAME)
		return false;
	char org[CF_KMS_MAX_ORG_NAME + 1];
	memcpy(org, s, (size_t)(slash - s));
	org[slash - s] = '\0';
	return cf_kms_valid_name(org) && cf_kms_valid_name(slash + 1);
}

static bool nonempty_string_array(const json_t *a)
{
	if (!json_is_array(a) || json_array_size(a) == 0)
		return false;
	size_t i;
	const json_t *v;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0)
			return false;
	}
	return true;
}

cf_err cf_task_check(const json_t *task, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = '\0';
	if (!json_is_object(task))
		return task_fail(why, whylen, "a task is a JSON object");
	const json_t *inputs = json_object_get(task, "inputs");
	if (!json_is_object(inputs) || json_object_size(inputs) == 0)
		return task_fail(why, whylen, "\"inputs\" must be a non-empty object");
	const char *table;
	const json_t *in;
	json_object_foreach((json_t *)inputs, table, in) {
		const char *ds;
		if (strlen(table) == 0)
			return task_fail(why, whylen, "an input has an empty table name");
		if (cf_json_get_string(in, "dataset", &ds) != CF_OK || !valid_dataset_name(ds))
			return task_fail(why, whylen, "input \"%.64s\": \"dataset\" must be ORG/NAME",
					 table);
	}
	const json_t *outputs = json_object_get(task, "outputs");
	if (!json_is_array(outputs))
		return task_fail(why, whylen, "\"outputs\" must be an array");
	size_t i;
	const json_t *o;
	json_array_foreach(outputs, i, o) {
		const char *name;
		if (cf_json_get_string(o, "name", &name) != CF_OK || !*name)
			return task_fail(why, whylen, "output %zu: \"name\" must be a string", i);
		const json_t *rcpts = json_object_get(o, "recipients");
		if (!json_is_array(rcpts) || json_array_size(rcpts) == 0)
			return task_fail(why, whylen, "output \"%.64s\": \"recipients\" must be a "
					 "non-empty array", name);
		size_t j;
		const json_t *r;
		json_array_foreach(rcpts, j, r) {
			const char *org, *rc;
			uint8_t pub[32];
			if (cf_json_get_string(r, "org", &org) != CF_OK || !cf_kms_valid_name(org))
				return task_fail(why, whylen, "output \"%.64s\": recipient %zu: "
						 "\"org\" must be an organisation name", name, j);
			if (cf_json_get_string(r, "recipient", &rc) != CF_OK ||
			    cf_age_recipient_parse(rc, pub) != CF_OK)
				return task_fail(why, whylen, "output \"%.64s\": recipient %zu: "
						 "\"recipient\" must be an age1... recipient", name, j);
		}
	}
	const json_t *tee = json_object_get(task, "tee");
	if (!json_is_object(tee))
		return task_fail(why, whylen, "\"tee\" must be an object");
	if (!nonempty_string_array(json_object_get(tee, "kinds")))
		return task_fail(why, whylen, "\"tee.kinds\" must be a non-empty array of strings");
	if (!nonempty_string_array(json_object_get(tee, "measurements")))
		return task_fail(why, whylen,
				 "\"tee.measurements\" must be a non-empty array of strings");
	return CF_OK;
}

cf_err cf_task_approve(const uint8_t seed[static CF_ED25519_SEED_LEN],
		       const uint8_t digest[static CF_SHA256_LEN], const char *org,
		       json_t **approval)
{
	if (!cf_kms_valid_name(org))
		return CF_ERR_ARG;
	uint8_t sig[CF_ED25519_SIG_LEN];
	char b64[CF_KMS_SIG_B64_LEN + 1];
	cf_err rc = sign_with_context(seed, CF_KMS_CTX_APPROVAL, digest, CF_SHA256_LEN, sig);
	if (rc != CF_OK)
		return rc;
	cf_b64_encode(sig, sizeof(sig), true, b64);
	json_t *a = json_pack("{s:s, s:s}", "org", org, "sig", b64);
	if (!a)
		return CF_ERR_NOMEM;
	*approval = a;
	return CF_OK;
}

cf_err cf_task_approval_verify(const uint8_t pub[static CF_ED25519_PUB_LEN],
			       const uint8_t digest[static CF_SHA256_LEN], const json_t *approval)
{
	const char *org, *sig_b64;
	uint8_t sig[CF_ED25519_SIG_LEN];
	if (cf_json_get_string(approval, "org", &org) != CF_OK || !cf_kms_valid_name(org) ||
	    cf_json_get_string(approval, "sig", &sig_b64) != CF_OK ||
	    b64_exact(sig_b64, sig, sizeof(sig)) != CF_OK)
		return CF_ERR_PARSE;
	return verify_with_context(pub, CF_KMS_CTX_APPROVAL, digest, CF_SHA256_LEN, sig);
}

/* --- report_data --- */

static cf_err report_data(const char *context, const uint8_t *a, size_t alen, const uint8_t *b,
			  size_t blen, const uint8_t *c, size_t clen,
			  uint8_t out[static CF_REPORT_DATA_LEN])
{
	static const uint8_t zero = 0;
	cf_hash_ctx *h = NULL;
	cf_err rc = cf_hash_new(CF_SHA512, &h);
	if (rc == CF_OK)
		rc = cf_hash_update(h, context, strlen(context));
	if (rc == CF_OK)
		rc = cf_hash_update(h, &zero, 1);
	if (rc == CF_OK)
		rc = cf_hash_update(h, a, alen);
	if (rc == CF_OK)
		rc = cf_hash_update(h, b, blen);
	if (rc == CF_OK && c)
		rc = cf_hash_update(h, c, clen);
	if (rc == CF_OK)
		rc = cf_hash_final(h, out);
	cf_hash_free(h);
	return rc;
}

cf_err cf_release_report_data(const uint8_t nonce[static CF_KMS_NONCE_LEN],
			      const uint8_t digest[static CF_SHA256_LEN],
			      const uint8_t wrap_pub[static CF_X25519_LEN],
			      uint8_t out[static CF_REPORT_DATA_LEN])
{
	return report_data(CF_KMS_RD_RELEASE, nonce, CF_KMS_NONCE_LEN, digest, CF_SHA256_LEN,
			   wrap_pub, CF_X25519_LEN, out);
}

cf_err cf_certify_report_data(const uint8_t nonce[static CF_KMS_NONCE_LEN],
			      const uint8_t spki_sha256[static CF_SHA256_LEN],
			      uint8_t out[static CF_REPORT_DATA_LEN])
{
	return report_data(CF_KMS_RD_CERTIFY, nonce, CF_KMS_NONCE_LEN, spki_sha256, CF_SHA256_LEN,
			   NULL, 0, out);
}

/* --- signing key files --- */

static cf_err write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return CF_ERR_IO;
		p += w;
		n -= (size_t)w;
	}
	return CF_OK;
}

cf_err cf_sigkey_write(const char *path, const uint8_t seed[static CF_ED25519_SEED_LEN],
		       const char *comment)
{
	uint8_t pub[CF_ED25519_PUB_LEN];
	char pub_b64[CF_KMS_PUB_B64_LEN + 1], seed_b64[CF_KMS_PUB_B64_LEN + 1];
	cf_buf text;
	cf_buf_init(&text, SIGKEY_FILE_MAX, true);
	int fd = -1;
	cf_err rc = cf_ed25519_public(seed, pub);
	if (rc != CF_OK)
		goto out;
	cf_b64_encode(pub, sizeof(pub), true, pub_b64);
	cf_b64_encode(seed, CF_ED25519_SEED_LEN, true, seed_b64);
	if (comment && (strchr(comment, '\n') || strchr(comment, '\r'))) {
		rc = CF_ERR_ARG;
		goto out;
	}
	rc = cf_buf_printf(&text, "# %s\n# public key: %s\n%s\n",
			   comment ? comment : "coffer Ed25519 signing key", pub_b64, seed_b64);
	if (rc != CF_OK)
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = errno == EEXIST ? CF_ERR_ARG : CF_ERR_IO;
		goto out;
	}
	rc = write_all(fd, text.data, text.len);
	if (rc == CF_OK && fsync(fd) != 0)
		rc = CF_ERR_IO;
	if (close(fd) != 0 && rc == CF_OK)
		rc = CF_ERR_IO;
	if (rc != CF_OK)
		unlink(path);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	cf_wipe(seed_b64, sizeof(seed_b64));
	cf_buf_free(&text);
	return rc;
}

cf_err cf_sigkey_read(const char *path, uint8_t seed[static CF_ED25519_SEED_LEN])
{
	cf_buf text;
	cf_buf_init(&text, SIGKEY_FILE_MAX, true);
	uint8_t chunk[512];
	struct stat st;
	bool found = false;
	cf_err rc = CF_OK;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = CF_ERR_IO;
		goto out;
	}
	if (st.st_mode & 077) {
		rc = CF_ERR_AUTH; /* a secret others can read is no longer a secret */
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = CF_ERR_IO;
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = cf_buf_append(&text, chunk, (size_t)n)) != CF_OK)
			goto out;
	}
	/* Comment lines, blank lines and exactly one base64 seed line. */
	size_t off = 0;
	while (off < text.len) {
		size_t end = off;
		while (end < text.len && text.data[end] != '\n')
			end++;
		size_t len = end - off;
		if (len && text.data[off + len - 1] == '\r')
			len--;
		const char *line = (const char *)text.data + off;
		if (len && line[0] != '#') {
			size_t got = 0;
			if (found || len != cf_b64_encoded_len(CF_ED25519_SEED_LEN, true) ||
			    cf_b64_decode(line, len, true, seed, CF_ED25519_SEED_LEN, &got) != CF_OK ||
			    got != CF_ED25519_SEED_LEN) {
				rc = CF_ERR_PARSE;
				goto out;
			}
			found = true;
		}
		off = end + 1;
	}
	if (!found)
		rc = CF_ERR_PARSE;
out:
	if (rc != CF_OK)
		cf_wipe(seed, CF_ED25519_SEED_LEN);
	if (fd >= 0)
		close(fd);
	cf_wipe(chunk, sizeof(chunk));
	cf_buf_free(&text);
	return rc;
}

/* --- the HTTPS JSON client --- */

struct cf_kms_client {
	CURL *curl;
	char *url;             /* without a trailing '/' */
	uint8_t *ca_pem;
	size_t ca_len;
	cf_buf reply;
	bool reply_too_big;
	char curl_error[CURL_ERROR_SIZE];
	cf_kms_error err;
};

static void client_error(cf_kms_client *c, long status, const char *check, const char *fmt, ...)
	CF_PRINTF(4, 5);
static void client_error(cf_kms_client *c, long status, const char *check, const char *fmt, ...)
{
	c->err.status = status;
	snprintf(c->err.check, sizeof(c->err.check), "%s", check ? check : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err.message, sizeof(c->err.message), fmt, ap);
	va_end(ap);
	/* The text may come from the network: keep it printable and on one line. */
	for (char *p = c->err.check; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	for (char *p = c->err.message; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	cf_kms_client *c = arg;
	size_t n = size * nmemb;
	if (cf_buf_append(&c->reply, ptr, n) != CF_OK) {
		c->reply_too_big = true;
		return 0; /* aborts the transfer */
	}
	return n;
}

cf_err cf_kms_client_open_pem(const char *url, const void *ca_pem, size_t len, cf_kms_client **out)
{
	size_t keep = 0;
	cf_err rc;
	if (!url || !ca_pem || len == 0 || len > CA_FILE_MAX)
		return CF_ERR_ARG;
	if ((rc = cf_https_check_url(url, &keep)) != CF_OK)
		return rc;
	if ((rc = cf_https_global_init()) != CF_OK)
		return rc;
	cf_kms_client *c = calloc(1, sizeof(*c));
	if (!c)
		return CF_ERR_NOMEM;
	cf_buf_init(&c->reply, CF_KMS_MAX_REPLY, false);
	c->url = strndup(url, keep);
	c->ca_pem = malloc(len);
	c->curl = curl_easy_init();
	if (!c->url || !c->ca_pem || !c->curl) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	memcpy(c->ca_pem, ca_pem, len);
	c->ca_len = len;

	struct curl_blob blob = { .data = c->ca_pem, .len = c->ca_len, .flags = CURL_BLOB_NOCOPY };
	CURL *h = c->curl;
	/* The pinned CA and the protocol policy shared with every client (https.h). */
	CURLcode e = cf_https_pin(h, &blob, c->curl_error);
	if (!e) e = curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	if (!e) e = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CF_KMS_MAX_REPLY);
	if (!e) e = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	if (!e) e = curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	if (e) {
		rc = e == CURLE_OUT_OF_MEMORY ? CF_ERR_NOMEM : CF_ERR_UNSUPPORTED;
		goto out;
	}
	*out = c;
	c = NULL;
	rc = CF_OK;
out:
	cf_kms_client_free(c);
	return rc;
}

cf_err cf_kms_client_open(const char *url, const char *ca_pem_path, cf_kms_client **out)
{
	if (!ca_pem_path)
		return CF_ERR_ARG;
	cf_buf pem;
	cf_buf_init(&pem, CA_FILE_MAX, false);
	cf_err rc = CF_OK;
	FILE *f = fopen(ca_pem_path, "rbe");
	if (!f)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if ((rc = cf_buf_append(&pem, chunk, n)) != CF_OK)
			goto out;
	}
	if (ferror(f)) {
		rc = CF_ERR_IO;
		goto out;
	}
	if (pem.len == 0) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	rc = cf_kms_client_open_pem(url, pem.data, pem.len, out);
out:
	fclose(f);
	cf_buf_free(&pem);
	return rc;
}

void cf_kms_client_free(cf_kms_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->url);
	free(c->ca_pem);
	cf_buf_free(&c->reply);
	free(c);
}

const char *cf_kms_client_url(const cf_kms_client *c)
{
	return c->url;
}

const cf_kms_error *cf_kms_client_error(const cf_kms_client *c)
{
	return &c->err;
}

static cf_err status_err(long status)
{
	switch (status) {
	case 400: return CF_ERR_PARSE;
	case 403: return CF_ERR_AUTH;
	case 404: return CF_ERR_NOT_FOUND;
	case 409: return CF_ERR_ARG;
	case 413: return CF_ERR_TOO_BIG;
	default: return CF_ERR_IO;
	}
}

/* One exchange; body NULL is a GET. */
static cf_err exchange(cf_kms_client *c, const char *path, const json_t *body, json_t **reply,
		       long *status)
{
	char url[MAX_URL + 256];
	char *text = NULL;
	struct curl_slist *headers = NULL;
	long code = 0;
	cf_err rc = CF_OK;
	*reply = NULL;
	*status = 0;
	memset(&c->err, 0, sizeof(c->err));
	if (!path || path[0] != '/' || strlen(path) > 255) {
		rc = CF_ERR_ARG;
		goto out;
	}
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	cf_buf_reset(&c->reply);
	c->reply_too_big = false;
	c->curl_error[0] = '\0';

	CURL *h = c->curl;
	CURLcode e = curl_easy_setopt(h, CURLOPT_URL, url);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (body) {
		size_t len = 0;
		if ((rc = cf_json_canonical(body, &text, &len)) != CF_OK)
			goto out;
		if (len > CF_KMS_MAX_REPLY) {
			client_error(c, 0, NULL, "the request is larger than 1 MiB");
			rc = CF_ERR_TOO_BIG;
			goto out;
		}
		if (headers)
			headers = curl_slist_append(headers, "Content-Type: application/json");
		if (headers)
			headers = curl_slist_append(headers, "Expect:");
		if (!e) e = curl_easy_setopt(h, CURLOPT_POST, 1L);
		if (!e) e = curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
		if (!e) e = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		if (!e) e = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (!headers) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if (!e) e = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (e) {
		client_error(c, 0, NULL, "%s", curl_easy_strerror(e));
		rc = CF_ERR_NOMEM;
		goto out;
	}
	e = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (c->reply_too_big || e == CURLE_FILESIZE_EXCEEDED) {
		client_error(c, code, NULL, "the answer is larger than 1 MiB");
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	if (e != CURLE_OK) {
		client_error(c, 0, NULL, "%s: %s", c->url,
			     c->curl_error[0] ? c->curl_error : curl_easy_strerror(e));
		rc = CF_ERR_IO;
		goto out;
	}
	*status = code;
	if (cf_json_parse((const char *)(c->reply.data ? (const char *)c->reply.data : ""),
			  c->reply.len, NULL, reply) != CF_OK) {
		client_error(c, code, NULL, "the answer is not JSON");
		rc = code >= 200 && code < 300 ? CF_ERR_PARSE : status_err(code);
		goto out;
	}
	if (code < 200 || code >= 300) {
		const json_t *err = json_object_get(*reply, "error");
		const char *check = "", *message = "";
		if (cf_json_get_string(err, "check", &check) != CF_OK)
			check = "";
		if (cf_json_get_string(err, "message", &message) != CF_OK)
			message = "";
		client_error(c, code, check, "%s", message);
	}
out:
	/* The request and answer may hold key material (wrapped, but still). */
	if (text) {
		cf_wipe(text, strlen(text));
		free(text);
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(headers);
	cf_buf_reset(&c->reply);
	return rc;
}

cf_err cf_kms_get(cf_kms_client *c, const char *path, json_t **reply, long *status)
{
	return exchange(c, path, NULL, reply, status);
}

cf_err cf_kms_post(cf_kms_client *c, const char *path, const json_t *body, json_t **reply,
		   long *status)
{
	if (!body)
		return CF_ERR_ARG;
	return exchange(c, path, body, reply, status);
}

static cf_err call(cf_kms_client *c, const char *path, const json_t *body, json_t **reply)
{
	json_t *r = NULL;
	long status = 0;
	*reply = NULL;
	cf_err rc = exchange(c, path, body, &r, &status);
	if (rc != CF_OK)
		return rc;
	if (status < 200 || status >= 300) {
		if (!c->err.message[0])
			client_error(c, status, c->err.check, "HTTP %ld", status);
		json_decref(r);
		return status_err(status);
	}
	if (!json_is_object(r)) {
		client_error(c, status, NULL, "the answer is not a JSON object");
		json_decref(r);
		return CF_ERR_PARSE;
	}
	*reply = r;
	return CF_OK;
}

cf_err cf_kms_call(cf_kms_client *c, const char *path, const json_t *body, json_t **reply)
{
	if (!body)
		return CF_ERR_ARG;
	return call(c, path, body, reply);
}

cf_err cf_kms_call_get(cf_kms_client *c, const char *path, json_t **reply)
{
	return call(c, path, NULL, reply);
}

/* --- organisation requests --- */

cf_err cf_kms_request_make(const char *org, const char *op, const json_t *fields, time_t now,
			   json_t **request)
{
	static const char *const reserved[] = { "op", "org", "time", "id" };
	uint8_t id[CF_KMS_REQUEST_ID_LEN];
	char id_hex[2 * CF_KMS_REQUEST_ID_LEN + 1];
	json_t *r = NULL;
	cf_err rc = CF_OK;
	if (!cf_kms_valid_name(org) || !op || !*op || (fields && !json_is_object(fields)))
		return CF_ERR_ARG;
	for (size_t i = 0; fields && i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (json_object_get(fields, reserved[i]))
			return CF_ERR_ARG;
	}
	if ((rc = cf_random(id, sizeof(id))) != CF_OK)
		return rc;
	cf_hex_encode(id, sizeof(id), id_hex);
	r = fields ? json_deep_copy(fields) : json_object();
	if (!r || json_object_set_new(r, "op", json_string(op)) ||
	    json_object_set_new(r, "org", json_string(org)) ||
	    json_object_set_new(r, "time", json_integer((json_int_t)now)) ||
	    json_object_set_new(r, "id", json_string(id_hex))) {
		json_decref(r);
		return CF_ERR_NOMEM;
	}
	*request = r;
	return CF_OK;
}

cf_err cf_kms_signed_request(cf_kms_client *c, const char *org,
			     const uint8_t seed[static CF_ED25519_SEED_LEN], const char *op,
			     const json_t *fields, json_t **reply)
{
	json_t *request = NULL, *body = NULL;
	char sig[CF_KMS_SIG_B64_LEN + 1];
	*reply = NULL;
	memset(&c->err, 0, sizeof(c->err));
	cf_err rc = cf_kms_request_make(org, op, fields, time(NULL), &request);
	if (rc != CF_OK)
		goto out;
	if ((rc = cf_kms_sign(seed, CF_KMS_CTX_REQUEST, request, sig)) != CF_OK)
		goto out;
	body = json_pack("{s:O, s:s}", "request", request, "sig", sig);
	if (!body) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	rc = call(c, "/v1/request", body, reply);
out:
	json_decref(body);
	json_decref(request);
	return rc;
}

/* --- the enclave's side of a release --- */

/*
 * jansson frees with plain free(): while the released keys are parsed and
 * held, frees wipe first, so no copy of a file key (the lexer's scratch
 * buffers included) is left behind in freed memory. Only installed when
 * jansson uses the C library's allocator, whose blocks know their size.
 */
static void wiping_free(void *p)
{
	if (p) {
		cf_wipe(p, malloc_usable_size(p));
		free(p);
	}
}

typedef struct json_wipe_scope {
	json_malloc_t saved_malloc;
	json_free_t saved_free;
	bool installed;
} json_wipe_scope;

static void json_wipe_begin(json_wipe_scope *s)
{
	json_get_alloc_funcs(&s->saved_malloc, &s->saved_free);
	s->installed = s->saved_malloc == malloc && s->saved_free == free;
	if (s->installed)
		json_set_alloc_funcs(malloc, wiping_free);
}

static void json_wipe_end(json_wipe_scope *s)
{
	if (s->installed)
		json_set_alloc_funcs(s->saved_malloc, s->saved_free);
	s->installed = false;
}

/* Wipes a string value in place (a file key's base64) before it is freed. */
static void wipe_string_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_string(v))
		cf_wipe((char *)json_string_value(v), json_string_length(v));
}

void cf_kms_release_result_free(cf_kms_release_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ninputs && r->inputs; i++) {
		free(r->inputs[i].table);
		free(r->inputs[i].dataset);
		cf_wipe(r->inputs[i].file_key, sizeof(r->inputs[i].file_key));
	}
	free(r->inputs);
	json_decref(r->recipients);
	json_decref(r->output_key);
	cf_wipe(r->output_seed, sizeof(r->output_seed));
	cf_wipe(r, sizeof(*r));
}

/* The one element of an array of objects whose "table" is table; NULL if none or several. */
static const json_t *find_table(const json_t *arr, const char *table)
{
	const json_t *found = NULL, *v;
	size_t i;
	json_array_foreach(arr, i, v) {
		const char *t;
		if (cf_json_get_string(v, "table", &t) == CF_OK && strcmp(t, table) == 0) {
			if (found)
				return NULL;
			found = v;
		}
	}
	return found;
}

static cf_err bad_reply(cf_kms_client *c, const char *fmt, ...) CF_PRINTF(2, 3);
static cf_err bad_reply(cf_kms_client *c, const char *fmt, ...)
{
	char msg[sizeof(c->err.message)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	client_error(c, 0, "release_reply", "%s", msg);
	return CF_ERR_AUTH;
}

/* Decrypts the "keys" age file into a secret buffer. */
static cf_err open_keys(const cf_age_identity *id, const char *keys_b64, cf_buf *plain)
{
	cf_buf wrapped;
	cf_buf_init(&wrapped, CF_KMS_MAX_REPLY, false);
	size_t len = strlen(keys_b64), got = 0;
	cf_err rc = cf_buf_reserve(&wrapped, cf_b64_decoded_max(len));
	if (rc != CF_OK)
		goto out;
	if ((rc = cf_b64_decode(keys_b64, len, true, wrapped.data, wrapped.cap, &got)) != CF_OK)
		goto out;
	wrapped.len = got;
	cf_mem_reader m = { .data = wrapped.data, .len = wrapped.len };
	rc = cf_age_decrypt(id, 1, cf_mem_reader_of(&m), cf_buf_writer(plain));
	if (rc == CF_OK)
		rc = cf_buf_terminate(plain);
out:
	cf_buf_free(&wrapped);
	return rc;
}

/* Fills out from the decrypted keys, the reply's inputs and the task. */
static cf_err collect_inputs(cf_kms_client *c, const json_t *task, const json_t *keys,
			     const json_t *reply_inputs, cf_kms_release_result *out)
{
	const json_t *task_inputs = json_object_get(task, "inputs");
	const json_t *key_inputs = json_object_get(keys, "inputs");
	size_t n = json_object_size(task_inputs);
	if (!json_is_array(key_inputs) || json_array_size(key_inputs) != n)
		return bad_reply(c, "the released keys are not one per input of the task");
	if (!json_is_array(reply_inputs) || json_array_size(reply_inputs) != n)
		return bad_reply(c, "the answer's inputs are not one per input of the task");
	out->inputs = calloc(n ? n : 1, sizeof(*out->inputs));
	if (!out->inputs)
		return CF_ERR_NOMEM;
	const char *table;
	const json_t *tin;
	json_object_foreach((json_t *)task_inputs, table, tin) {
		const char *want_ds, *ds, *ds2, *fk, *hs;
		const json_t *k = find_table(key_inputs, table);
		const json_t *r = find_table(reply_inputs, table);
		cf_kms_input *in = &out->inputs[out->ninputs];
		if (cf_json_get_string(tin, "dataset", &want_ds) != CF_OK)
			return bad_reply(c, "input \"%.64s\" of the task names no dataset", table);
		if (!k || !r)
			return bad_reply(c, "no single key for input \"%.64s\"", table);
		if (cf_json_get_string(k, "dataset", &ds) != CF_OK || strcmp(ds, want_ds) != 0 ||
		    cf_json_get_string(r, "dataset", &ds2) != CF_OK || strcmp(ds2, want_ds) != 0)
			return bad_reply(c, "the key for input \"%.64s\" is not for dataset %.130s",
					 table, want_ds);
		if (cf_json_get_string(k, "file_key", &fk) != CF_OK ||
		    b64_exact(fk, in->file_key, sizeof(in->file_key)) != CF_OK)
			return bad_reply(c, "the file key of input \"%.64s\" is malformed", table);
		if (cf_json_get_string(r, "header_sha256", &hs) != CF_OK ||
		    hex_exact(hs, in->header_sha256, sizeof(in->header_sha256)) != CF_OK)
			return bad_reply(c, "header_sha256 of input \"%.64s\" is malformed", table);
		in->table = strdup(table);
		in->dataset = strdup(want_ds);
		out->ninputs++;
		if (!in->table || !in->dataset)
			return CF_ERR_NOMEM;
	}
	return CF_OK;
}

static cf_err check_digest_member(const json_t *obj, const char *key,
				  const uint8_t digest[static CF_SHA256_LEN])
{
	const char *s;
	uint8_t got[CF_SHA256_LEN];
	if (cf_json_get_string(obj, key, &s) != CF_OK || hex_exact(s, got, sizeof(got)) != CF_OK)
		return CF_ERR_PARSE;
	return memcmp(got, digest, CF_SHA256_LEN) == 0 ? CF_OK : CF_ERR_AUTH;
}

/* The KMS's signature over the recipients statement, and its digest. */
static cf_err check_recipients(cf_kms_client *c, const uint8_t kms_pub[static CF_ED25519_PUB_LEN],
			       const json_t *recipients, const uint8_t digest[static CF_SHA256_LEN],
			       json_t **statement_out)
{
	const json_t *statement = json_object_get(recipients, "statement");
	const char *sig;
	long long issued;
	if (!json_is_object(statement) || cf_json_get_string(recipients, "sig", &sig) != CF_OK)
		return bad_reply(c, "the recipients statement is missing or malformed");
	if (cf_kms_verify_sig(kms_pub, CF_KMS_CTX_RECIPIENTS, statement, sig) != CF_OK)
		return bad_reply(c, "the recipients statement is not signed by the KMS");
	if (check_digest_member(statement, "task_digest", digest) != CF_OK)
		return bad_reply(c, "the recipients statement is for another task");
	if (!json_is_array(json_object_get(statement, "outputs")) ||
	    cf_json_get_int(statement, "issued", &issued) != CF_OK)
		return bad_reply(c, "the recipients statement is malformed");
	*statement_out = json_deep_copy(statement);
	return *statement_out ? CF_OK : CF_ERR_NOMEM;
}

/*
 * The output key: its seed from the wrapped keys, and the KMS's statement
 * of its public half, which must verify, be for this task and this TEE
 * kind, and name the very key of the seed.
 */
static cf_err check_output_key(cf_kms_client *c, const uint8_t kms_pub[static CF_ED25519_PUB_LEN],
			       const json_t *keys, const json_t *okey,
			       const uint8_t digest[static CF_SHA256_LEN], cf_tee_kind kind,
			       cf_kms_release_result *out)
{
	const json_t *statement = json_object_get(okey, "statement");
	const char *sig, *seed64, *pub64, *tee, *m;
	uint8_t pub[CF_ED25519_PUB_LEN], derived[CF_ED25519_PUB_LEN];
	long long issued;
	if (cf_json_get_string(keys, "output_seed", &seed64) != CF_OK ||
	    b64_exact(seed64, out->output_seed, sizeof(out->output_seed)) != CF_OK)
		return bad_reply(c, "the released keys hold no valid output key seed");
	if (!json_is_object(statement) || cf_json_get_string(okey, "sig", &sig) != CF_OK)
		return bad_reply(c, "the output key statement is missing or malformed");
	if (cf_kms_verify_sig(kms_pub, CF_KMS_CTX_OUTPUT_KEY, statement, sig) != CF_OK)
		return bad_reply(c, "the output key statement is not signed by the KMS");
	if (check_digest_member(statement, "task_digest", digest) != CF_OK)
		return bad_reply(c, "the output key statement is for another task");
	if (cf_json_get_string(statement, "output_key", &pub64) != CF_OK ||
	    b64_exact(pub64, pub, sizeof(pub)) != CF_OK ||
	    cf_json_get_string(statement, "tee", &tee) != CF_OK ||
	    cf_json_get_string(statement, "measurement", &m) != CF_OK ||
	    cf_json_get_int(statement, "issued", &issued) != CF_OK)
		return bad_reply(c, "the output key statement is malformed");
	if (strcmp(tee, cf_tee_kind_name(kind)) != 0)
		return bad_reply(c, "the output key statement names a %.16s TEE, this is %s", tee,
				 cf_tee_kind_name(kind));
	cf_err rc = cf_ed25519_public(out->output_seed, derived);
	if (rc != CF_OK)
		return rc;
	if (memcmp(derived, pub, sizeof(pub)) != 0)
		return bad_reply(c, "the output key statement names another key than the released seed's");
	out->output_key = json_deep_copy(okey);
	return out->output_key ? CF_OK : CF_ERR_NOMEM;
}

cf_err cf_kms_info_pub(cf_kms_client *c, uint8_t pub[static CF_ED25519_PUB_LEN])
{
	json_t *info = NULL;
	const char *s;
	if (!c)
		return CF_ERR_ARG;
	cf_err rc = cf_kms_call_get(c, "/v1/info", &info);
	if (rc != CF_OK)
		return rc;
	if (cf_json_get_string(info, "kms_pub", &s) != CF_OK ||
	    b64_exact(s, pub, CF_ED25519_PUB_LEN) != CF_OK) {
		client_error(c, 0, "info", "/v1/info has no valid kms_pub");
		rc = CF_ERR_AUTH;
	}
	json_decref(info);
	return rc;
}

cf_err cf_kms_release(cf_kms_client *c, const cf_tee_provider *tee, const json_t *task,
		      const json_t *approvals, cf_kms_release_result *out)
{
	uint8_t digest[CF_SHA256_LEN], nonce[CF_KMS_NONCE_LEN], kms_pub[CF_ED25519_PUB_LEN];
	uint8_t rd[CF_REPORT_DATA_LEN];
	char digest_hex[2 * CF_SHA256_LEN + 1], wrap[CF_AGE_RECIPIENT_STRLEN + 1];
	char why[160];
	cf_age_identity id;
	cf_buf evidence, plain;
	json_t *nreply = NULL, *empty = NULL, *req = NULL, *reply = NULL;
	json_t *keys = NULL;
	char *ev_b64 = NULL;
	json_wipe_scope scope = { 0 };
	const char *s;
	cf_err rc;

	memset(&id, 0, sizeof(id));
	id.kind = CF_AGE_X25519;
	cf_buf_init(&evidence, MAX_EVIDENCE, false);
	cf_buf_init(&plain, CF_KMS_MAX_REPLY, true);
	if (out)
		memset(out, 0, sizeof(*out));
	if (!c || !tee || !tee->evidence || !task || !json_is_array(approvals) || !out) {
		rc = CF_ERR_ARG;
		goto out;
	}
	memset(&c->err, 0, sizeof(c->err));
	if ((rc = cf_task_check(task, why, sizeof(why))) != CF_OK) {
		client_error(c, 0, "task", "%s", why);
		rc = CF_ERR_ARG;
		goto out;
	}
	if ((rc = cf_task_digest(task, digest)) != CF_OK)
		goto out;
	cf_hex_encode(digest, sizeof(digest), digest_hex);

	/* The KMS's signing key: trusted because the channel ends at the pinned CA. */
	if ((rc = cf_kms_info_pub(c, kms_pub)) != CF_OK) {
		if (rc == CF_ERR_AUTH)
			rc = bad_reply(c, "/v1/info has no valid kms_pub");
		goto out;
	}

	if (!(empty = json_object())) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_kms_call(c, "/v1/nonce", empty, &nreply)) != CF_OK)
		goto out;
	if (cf_json_get_string(nreply, "nonce", &s) != CF_OK ||
	    hex_exact(s, nonce, sizeof(nonce)) != CF_OK) {
		rc = bad_reply(c, "/v1/nonce gave no valid nonce");
		goto out;
	}

	/* The ephemeral wrapping key, bound into the evidence. */
	if ((rc = cf_age_keygen(&id.key)) != CF_OK)
		goto out;
	if ((rc = cf_age_recipient_format(id.key.pub, wrap)) != CF_OK)
		goto out;
	if ((rc = cf_release_report_data(nonce, digest, id.key.pub, rd)) != CF_OK)
		goto out;
	if ((rc = tee->evidence(rd, &evidence)) != CF_OK) {
		client_error(c, 0, "evidence", "the TEE gave no evidence: %s", cf_strerror(rc));
		goto out;
	}
	ev_b64 = malloc(cf_b64_encoded_len(evidence.len, true) + 1);
	if (!ev_b64) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	cf_b64_encode(evidence.data, evidence.len, true, ev_b64);
	char nonce_hex[2 * CF_KMS_NONCE_LEN + 1];
	cf_hex_encode(nonce, sizeof(nonce), nonce_hex);
	req = json_pack("{s:s, s:s, s:s, s:O, s:O, s:s}", "nonce", nonce_hex, "tee",
			cf_tee_kind_name(tee->kind), "evidence", ev_b64, "task", task, "approvals",
			approvals, "wrap_recipient", wrap);
	if (!req) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_kms_call(c, "/v1/release", req, &reply)) != CF_OK)
		goto out;

	if (check_digest_member(reply, "task_digest", digest) != CF_OK) {
		rc = bad_reply(c, "the answer is for another task");
		goto out;
	}
	if (cf_json_get_string(reply, "keys", &s) != CF_OK) {
		rc = bad_reply(c, "the answer has no keys");
		goto out;
	}
	if ((rc = open_keys(&id, s, &plain)) != CF_OK) {
		rc = bad_reply(c, "the released keys do not open with the wrapping key: %s",
			       cf_strerror(rc));
		goto out;
	}
	json_wipe_begin(&scope);
	if (cf_json_parse((const char *)plain.data, plain.len, NULL, &keys) != CF_OK ||
	    !json_is_object(keys)) {
		rc = bad_reply(c, "the released keys are not a JSON object");
		goto out;
	}
	if (check_digest_member(keys, "task_digest", digest) != CF_OK) {
		rc = bad_reply(c, "the released keys are for another task");
		goto out;
	}
	if ((rc = collect_inputs(c, task, keys, json_object_get(reply, "inputs"), out)) != CF_OK)
		goto out;
	memcpy(out->task_digest, digest, sizeof(digest));
	if ((rc = check_recipients(c, kms_pub, json_object_get(reply, "recipients"), digest,
				   &out->recipients)) != CF_OK)
		goto out;
	rc = check_output_key(c, kms_pub, keys, json_object_get(reply, "output_key"), digest,
			      tee->kind, out);
out:
	if (keys) {
		const json_t *arr = json_object_get(keys, "inputs");
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v)
			wipe_string_member(v, "file_key");
		wipe_string_member(keys, "output_seed");
		json_decref(keys);
	}
	json_wipe_end(&scope);
	if (rc != CF_OK && out)
		cf_kms_release_result_free(out);
	cf_age_key_wipe(&id.key);
	cf_wipe(rd, sizeof(rd));
	cf_buf_free(&plain);
	cf_buf_free(&evidence);
	free(ev_b64);
	json_decref(reply);
	json_decref(req);
	json_decref(empty);
	json_decref(nreply);
	return rc;
}

/* --- outputs signed by the enclave --- */

static void why_set(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* digest || name || 0x00 || ct_sha256: the name has no NUL, the ends are fixed. */
static cf_err output_message(const uint8_t digest[static CF_SHA256_LEN], const char *name,
			     const uint8_t ct_sha256[static CF_SHA256_LEN], cf_buf *msg)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > CF_KMS_MAX_OUTPUT_NAME)
		return CF_ERR_ARG;
	cf_err rc = cf_buf_append(msg, digest, CF_SHA256_LEN);
	if (rc == CF_OK)
		rc = cf_buf_append(msg, name, n + 1); /* with its NUL */
	if (rc == CF_OK)
		rc = cf_buf_append(msg, ct_sha256, CF_SHA256_LEN);
	return rc;
}

cf_err cf_kms_output_sign(const uint8_t seed[static CF_ED25519_SEED_LEN],
			  const uint8_t digest[static CF_SHA256_LEN], const char *name,
			  const uint8_t ct_sha256[static CF_SHA256_LEN],
			  char sig_b64[static CF_KMS_SIG_B64_LEN + 1])
{
	uint8_t sig[CF_ED25519_SIG_LEN];
	cf_buf msg;
	cf_buf_init(&msg, 2 * CF_SHA256_LEN + CF_KMS_MAX_OUTPUT_NAME + 1, false);
	cf_err rc = output_message(digest, name, ct_sha256, &msg);
	if (rc == CF_OK)
		rc = sign_with_context(seed, CF_KMS_CTX_OUTPUT, msg.data, msg.len, sig);
	if (rc == CF_OK)
		cf_b64_encode(sig, sizeof(sig), true, sig_b64);
	cf_buf_free(&msg);
	return rc;
}

cf_err cf_kms_output_attestation(const cf_kms_release_result *rel, const char *name,
				 const uint8_t ct_sha256[static CF_SHA256_LEN], json_t **out)
{
	char sig[CF_KMS_SIG_B64_LEN + 1];
	if (!out)
		return CF_ERR_ARG;
	*out = NULL;
	if (!rel || !json_is_object(rel->output_key))
		return CF_ERR_ARG;
	cf_err rc = cf_kms_output_sign(rel->output_seed, rel->task_digest, name, ct_sha256, sig);
	if (rc != CF_OK)
		return rc;
	*out = json_pack("{s:O,s:s}", "output_key", rel->output_key, "sig", sig);
	return *out ? CF_OK : CF_ERR_NOMEM;
}

cf_err cf_kms_output_verify(const uint8_t kms_pub[static CF_ED25519_PUB_LEN],
			    const json_t *attestation, const uint8_t digest[static CF_SHA256_LEN],
			    const char *name, const uint8_t ct_sha256[static CF_SHA256_LEN],
			    cf_kms_output_origin *origin, char *why, size_t whylen)
{
	const json_t *okey = json_object_get(attestation, "output_key");
	const json_t *statement = json_object_get(okey, "statement");
	const char *kms_sig, *sig64, *pub64, *tee, *m, *got_hex;
	uint8_t pub[CF_ED25519_PUB_LEN], sig[CF_ED25519_SIG_LEN], got[CF_SHA256_LEN];
	cf_tee_kind kind;
	long long issued;
	cf_buf msg;
	cf_err rc;
	if (origin)
		memset(origin, 0, sizeof(*origin));
	if (why && whylen)
		why[0] = '\0';
	if (!name || !*name || strlen(name) > CF_KMS_MAX_OUTPUT_NAME) {
		why_set(why, whylen, "the output name is empty or too long");
		return CF_ERR_ARG;
	}
	if (!json_is_object(attestation)) {
		why_set(why, whylen, "the output carries no attestation");
		return CF_ERR_PARSE;
	}
	if (!json_is_object(statement) || cf_json_get_string(okey, "sig", &kms_sig) != CF_OK ||
	    cf_json_get_string(attestation, "sig", &sig64) != CF_OK) {
		why_set(why, whylen, "the attestation is malformed (output_key.statement, "
			"output_key.sig and sig are needed)");
		return CF_ERR_PARSE;
	}
	rc = cf_kms_verify_sig(kms_pub, CF_KMS_CTX_OUTPUT_KEY, statement, kms_sig);
	if (rc != CF_OK) {
		why_set(why, whylen, "the output key statement is not signed by the pinned KMS");
		return rc == CF_ERR_NOMEM ? rc : CF_ERR_AUTH;
	}
	/* Signed by the KMS, so well-formed unless the KMS is broken: checked all the same. */
	if (cf_json_get_string(statement, "task_digest", &got_hex) != CF_OK ||
	    hex_exact(got_hex, got, sizeof(got)) != CF_OK ||
	    cf_json_get_string(statement, "output_key", &pub64) != CF_OK ||
	    b64_exact(pub64, pub, sizeof(pub)) != CF_OK ||
	    cf_json_get_string(statement, "tee", &tee) != CF_OK ||
	    cf_tee_kind_parse(tee, &kind) != CF_OK || kind == CF_TEE_NONE ||
	    cf_json_get_string(statement, "measurement", &m) != CF_OK ||
	    strlen(m) >= sizeof(origin->measurement) ||
	    cf_json_get_int(statement, "issued", &issued) != CF_OK) {
		why_set(why, whylen, "the KMS's output key statement is malformed");
		return CF_ERR_PARSE;
	}
	if (memcmp(got, digest, CF_SHA256_LEN) != 0) {
		why_set(why, whylen, "the KMS released the output key for another task (%.64s)",
			got_hex);
		return CF_ERR_AUTH;
	}
	if (b64_exact(sig64, sig, sizeof(sig)) != CF_OK) {
		why_set(why, whylen, "the enclave's signature is not 64 bytes of base64");
		return CF_ERR_PARSE;
	}
	cf_buf_init(&msg, 2 * CF_SHA256_LEN + CF_KMS_MAX_OUTPUT_NAME + 1, false);
	rc = output_message(digest, name, ct_sha256, &msg);
	if (rc == CF_OK)
		rc = verify_with_context(pub, CF_KMS_CTX_OUTPUT, msg.data, msg.len, sig);
	cf_buf_free(&msg);
	if (rc != CF_OK) {
		why_set(why, whylen, "the enclave's signature does not cover this ciphertext as output "
			"%.128s of this task", name);
		return rc == CF_ERR_NOMEM ? rc : CF_ERR_AUTH;
	}
	if (origin) {
		snprintf(origin->tee, sizeof(origin->tee), "%s", cf_tee_kind_name(kind));
		snprintf(origin->measurement, sizeof(origin->measurement), "%s", m);
		snprintf(origin->output_key, sizeof(origin->output_key), "%s", pub64);
		origin->issued = issued;
	}
	return CF_OK;
}

/* --- the client profile --- */

cf_err cf_profile_dir(char *out, size_t cap)
{
	const char *home = getenv("COFFER_HOME");
	int n;
	if (home && *home) {
		n = snprintf(out, cap, "%s", home);
	} else {
		home = getenv("HOME");
		if (!home || !*home)
			return CF_ERR_NOT_FOUND;
		n = snprintf(out, cap, "%s/.config/coffer", home);
	}
	if (n < 0 || (size_t)n >= cap)
		return CF_ERR_TOO_BIG;
	/* No trailing slashes: paths are joined with one. */
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return CF_OK;
}

cf_err cf_profile_mkdir(char *out, size_t cap)
{
	cf_err rc = cf_profile_dir(out, cap);
	if (rc != CF_OK)
		return rc;
	/* Create the parents (~/.config) as needed, the profile itself private. */
	char tmp[4096];
	if (strlen(out) >= sizeof(tmp))
		return CF_ERR_TOO_BIG;
	snprintf(tmp, sizeof(tmp), "%s", out);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return CF_ERR_IO;
		*p = '/';
	}
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return CF_ERR_IO;
	struct stat st;
	if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
		return CF_ERR_IO;
	return CF_OK;
}

/* A small file into b (whose max bounds it). */
static cf_err read_small(const char *path, cf_buf *b)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	cf_err rc = CF_OK;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if ((rc = cf_buf_append(b, chunk, n)) != CF_OK)
			break;
	}
	if (rc == CF_OK && ferror(f))
		rc = CF_ERR_IO;
	fclose(f);
	return rc;
}

/* SHA-256 of the DER of the first certificate in a PEM. */
static cf_err pem_cert_sha256(const uint8_t *pem, size_t len, uint8_t out[static CF_SHA256_LEN])
{
	cf_err rc = CF_ERR_PARSE;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int dlen = x ? i2d_X509(x, &der) : -1;
	if (dlen > 0)
		rc = cf_hash(CF_SHA256, der, (size_t)dlen, out);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
	return rc;
}

cf_err cf_kms_client_open_profile(const char *url, const char *ca_pem_path, cf_kms_client **out)
{
	char dir[4096], path[4200];
	cf_buf text, pem;
	json_t *profile = NULL;
	const char *p_url = NULL, *p_ca = NULL, *p_sha = NULL;
	uint8_t want[CF_SHA256_LEN], got[CF_SHA256_LEN];
	cf_err rc;
	cf_buf_init(&text, PROFILE_FILE_MAX, false);
	cf_buf_init(&pem, CA_FILE_MAX, false);
	if (url && ca_pem_path) {
		rc = cf_kms_client_open(url, ca_pem_path, out);
		goto out;
	}
	if ((rc = cf_profile_dir(dir, sizeof(dir))) != CF_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/kms.json", dir);
	if ((rc = read_small(path, &text)) != CF_OK)
		goto out;
	if (cf_json_parse((const char *)(text.data ? (const char *)text.data : ""), text.len, NULL,
			  &profile) != CF_OK ||
	    cf_json_get_string(profile, "url", &p_url) != CF_OK) {
		rc = CF_ERR_PARSE;
		goto out;
	}
	if (cf_json_get_string(profile, "ca", &p_ca) != CF_OK)
		p_ca = "kms-ca.pem";
	switch (cf_json_get_string(profile, "ca_sha256", &p_sha)) {
	case CF_OK:
		if (hex_exact(p_sha, want, sizeof(want)) != CF_OK) {
			rc = CF_ERR_PARSE;
			goto out;
		}
		break;
	case CF_ERR_NOT_FOUND:
		p_sha = NULL;
		break;
	default:
		rc = CF_ERR_PARSE;
		goto out;
	}
	if (ca_pem_path) {
		rc = cf_kms_client_open(url ? url : p_url, ca_pem_path, out);
		goto out;
	}
	if (p_ca[0] == '/')
		snprintf(path, sizeof(path), "%s", p_ca);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, p_ca);
	if ((rc = read_small(path, &pem)) != CF_OK)
		goto out;
	if (p_sha) {
		if (pem_cert_sha256(pem.data, pem.len, got) != CF_OK ||
		    memcmp(got, want, sizeof(got)) != 0) {
			rc = CF_ERR_AUTH;
			goto out;
		}
	}
	rc = cf_kms_client_open_pem(url ? url : p_url, pem.data, pem.len, out);
out:
	json_decref(profile);
	cf_buf_free(&text);
	cf_buf_free(&pem);
	return rc;
}
