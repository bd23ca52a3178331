/*
 * kms_client: the signing rules shared with coffer-kms (digests, context
 * separation, approvals, report_data, checked against values computed
 * here with OpenSSL directly), hostile JSON, key files and the profile;
 * then the HTTPS client against a local TLS 1.3 server in a thread
 * (pinning, refusals, size limit, signed requests) and the enclave's
 * side of a release against a fake KMS that lies in every way it can.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "coffer/age.h"
#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

static char tmpdir[64];
static int pki_setup(void);
static void pki_free(void);
static uint8_t seed_a[32], pub_a[32], seed_b[32], pub_b[32];

static json_t *parse(const char *text)
{
	json_t *v = NULL;
	assert_int_equal(cf_json_parse(text, strlen(text), NULL, &v), CF_OK);
	return v;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int group_setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < 32; i++) {
		seed_a[i] = (uint8_t)(i + 1);
		seed_b[i] = (uint8_t)(0x80 + i);
	}
	if (cf_ed25519_public(seed_a, pub_a) != CF_OK || cf_ed25519_public(seed_b, pub_b) != CF_OK)
		return -1;
	/* The test server writes to clients that may have hung up (the size limit). */
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/coffer-test-kmsc-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return pki_setup();
}

static int group_teardown(void **state)
{
	(void)state;
	pki_free();
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- independent computations with OpenSSL --- */

static void sha(const EVP_MD *md, const void *p, size_t n, uint8_t *out)
{
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(p, n, out, &len, md, NULL), 1);
}

/* Ed25519 verification of msg with OpenSSL's EVP directly. */
static bool ossl_verify(const uint8_t pub[32], const void *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_non_null(k);
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k), 1);
	int ok = EVP_DigestVerify(ctx, sig, 64, msg, len);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return ok == 1;
}

static void b64dec(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;
	assert_int_equal(cf_b64_decode(s, strlen(s), true, out, n, &got), CF_OK);
	assert_int_equal(got, n);
}

/* --- names --- */

static void test_valid_name(void **state)
{
	(void)state;
	char long_name[80];
	memset(long_name, 'a', sizeof(long_name));
	long_name[64] = '\0';
	assert_true(cf_kms_valid_name("a"));
	assert_true(cf_kms_valid_name("org-1"));
	assert_true(cf_kms_valid_name(long_name));
	long_name[64] = 'a';
	long_name[65] = '\0';
	assert_false(cf_kms_valid_name(long_name));
	assert_false(cf_kms_valid_name(""));
	assert_false(cf_kms_valid_name("Org"));
	assert_false(cf_kms_valid_name("a/b"));
	assert_false(cf_kms_valid_name("a b"));
	assert_false(cf_kms_valid_name("a_b"));
	assert_false(cf_kms_valid_name("\xc3\xa9"));
	assert_false(cf_kms_valid_name(NULL));
}

/* --- task digests --- */

static const char TASK[] =
	"{\"inputs\": {\"sales\": {\"dataset\": \"a/sales\"}, \"crm\": {\"dataset\": \"b/crm\"}},"
	" \"outputs\": [{\"name\": \"result\", \"recipients\": [{\"org\": \"a\", \"recipient\":"
	" \"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"}]}],"
	" \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00ff\"]},"
	" \"job\": {\"sql\": \"SELECT count(*) FROM sales JOIN crm USING (id)\"}}";

static void test_digest_known_value(void **state)
{
	(void)state;
	/* Canonical form by hand: sorted keys, no whitespace. */
	static const char canon[] = "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{\"d\":\"e\"}}";
	json_t *v = parse("{ \"c\" : { \"d\" : \"e\" },\n \"b\": [true, null, \"x\"],\t\"a\": 1 }");
	uint8_t got[32], want[32];
	assert_int_equal(cf_task_digest(v, got), CF_OK);
	sha(EVP_sha256(), canon, strlen(canon), want);
	assert_memory_equal(got, want, 32);
	json_decref(v);
	assert_int_equal(cf_task_digest(NULL, got), CF_ERR_ARG);
}

static void test_digest_stable_under_order_and_space(void **state)
{
	(void)state;
	json_t *a = parse(TASK);
	/* The same task, members reordered at every level, other whitespace. */
	json_t *b = parse(
		"{\"tee\":{\"measurements\":[\"00ff\"],\"kinds\":[\"soft\"]},\"job\":{\"sql\":"
		"\"SELECT count(*) FROM sales JOIN crm USING (id)\"},\n\n  \"outputs\":[{\"recipients\""
		":[{\"recipient\":\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\","
		"\"org\":\"a\"}],\"name\":\"result\"}],\"inputs\":{\"crm\":{\"dataset\":\"b/crm\"},"
		"\"sales\":{\"dataset\":\"a/sales\"}}}");
	uint8_t da[32], db[32];
	assert_int_equal(cf_task_digest(a, da), CF_OK);
	assert_int_equal(cf_task_digest(b, db), CF_OK);
	assert_memory_equal(da, db, 32);
	json_decref(a);
	json_decref(b);
}

static void test_digest_changes_with_any_value(void **state)
{
	(void)state;
	/* Each differs from TASK in one value (or its type, or an array's order). */
	static const char *const from[] = {
		"\"a/sales\"", "\"result\"", "\"soft\"", "\"00ff\"", "count(*)", "\"org\": \"a\"",
		"[\"soft\"]",
	};
	static const char *const to[] = {
		"\"a/sales2\"", "\"Result\"", "\"sgx\"", "\"00fe\"", "count(1)", "\"org\": \"b\"",
		"[\"soft\", \"soft\"]",
	};
	json_t *base = parse(TASK);
	uint8_t d0[32];
	assert_int_equal(cf_task_digest(base, d0), CF_OK);
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		char text[sizeof(TASK) + 64];
		const char *at = strstr(TASK, from[i]);
		assert_non_null(at);
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - TASK), TASK, to[i],
			 at + strlen(from[i]));
		json_t *v = parse(text);
		uint8_t d[32];
		assert_int_equal(cf_task_digest(v, d), CF_OK);
		assert_memory_not_equal(d, d0, 32);
		json_decref(v);
	}
	/* Types matter: 1, "1", 1.0 and true are different tasks. */
	static const char *const typed[] = { "{\"x\":1}", "{\"x\":\"1\"}", "{\"x\":1.0}",
					     "{\"x\":true}", "{\"x\":[1]}", "{\"x\":{}}" };
	uint8_t seen[6][32];
	for (size_t i = 0; i < 6; i++) {
		json_t *v = parse(typed[i]);
		assert_int_equal(cf_task_digest(v, seen[i]), CF_OK);
		for (size_t j = 0; j < i; j++)
			assert_memory_not_equal(seen[i], seen[j], 32);
		json_decref(v);
	}
	/* An added member changes it too. */
	json_t *more = json_deep_copy(base);
	json_object_set_new(more, "note", json_string(""));
	uint8_t dm[32];
	assert_int_equal(cf_task_digest(more, dm), CF_OK);
	assert_memory_not_equal(dm, d0, 32);
	json_decref(more);
	json_decref(base);
}

/* --- signatures under a context --- */

static void test_sign_context_separation(void **state)
{
	(void)state;
	static const char *const ctx[] = { CF_KMS_CTX_ENROLL, CF_KMS_CTX_REQUEST, CF_KMS_CTX_APPROVAL,
					   CF_KMS_CTX_RECIPIENTS };
	json_t *obj = parse("{\"op\": \"key.list\", \"org\": \"a\", \"time\": 1, \"id\": \"00\"}");
	for (size_t i = 0; i < 4; i++) {
		char sig[CF_KMS_SIG_B64_LEN + 1];
		assert_int_equal(cf_kms_sign(seed_a, ctx[i], obj, sig), CF_OK);
		assert_int_equal(strlen(sig), CF_KMS_SIG_B64_LEN);
		for (size_t j = 0; j < 4; j++)
			assert_int_equal(cf_kms_verify_sig(pub_a, ctx[j], obj, sig),
					 i == j ? CF_OK : CF_ERR_AUTH);
		/* Another key, or no context at all, does not verify. */
		assert_int_equal(cf_kms_verify_sig(pub_b, ctx[i], obj, sig), CF_ERR_AUTH);
		assert_int_equal(cf_kms_verify_sig(pub_a, "", obj, sig), CF_ERR_AUTH);

		/* The message is exactly context || canonical JSON (checked with OpenSSL). */
		char *canon = NULL;
		size_t clen = 0;
		assert_int_equal(cf_json_canonical(obj, &canon, &clen), CF_OK);
		char msg[512];
		int mlen = snprintf(msg, sizeof(msg), "%s%s", ctx[i], canon);
		uint8_t raw[64];
		b64dec(sig, raw, sizeof(raw));
		assert_true(ossl_verify(pub_a, msg, (size_t)mlen, raw));
		assert_false(ossl_verify(pub_a, canon, clen, raw));
		free(canon);
	}
	json_decref(obj);
}

static void test_sign_covers_the_object(void **state)
{
	(void)state;
	json_t *obj = parse("{\"b\": [1, 2], \"a\": \"x\"}");
	json_t *same = parse("{\"a\":\"x\",\"b\":[1,2]}");
	json_t *other = parse("{\"a\":\"x\",\"b\":[2,1]}");
	char sig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_sign(seed_a, CF_KMS_CTX_REQUEST, obj, sig), CF_OK);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, same, sig), CF_OK);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, other, sig), CF_ERR_AUTH);
	/* A flipped bit anywhere in the signature. */
	uint8_t raw[64];
	b64dec(sig, raw, sizeof(raw));
	for (size_t i = 0; i < 64; i += 7) {
		char bad[CF_KMS_SIG_B64_LEN + 1];
		raw[i] ^= 0x01;
		cf_b64_encode(raw, 64, true, bad);
		assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, obj, bad), CF_ERR_AUTH);
		raw[i] ^= 0x01;
	}
	json_decref(obj);
	json_decref(same);
	json_decref(other);
}

static void test_sig_encoding_hostile(void **state)
{
	(void)state;
	json_t *obj = parse("{}");
	char sig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_sign(seed_a, CF_KMS_CTX_REQUEST, obj, sig), CF_OK);
	char unpadded[CF_KMS_SIG_B64_LEN + 1];
	snprintf(unpadded, sizeof(unpadded), "%.86s", sig);
	char bad_char[CF_KMS_SIG_B64_LEN + 1];
	memcpy(bad_char, sig, sizeof(bad_char));
	bad_char[10] = '*';
	uint8_t long_raw[65] = { 0 };
	char too_long[100];
	cf_b64_encode(long_raw, sizeof(long_raw), true, too_long);
	const char *const bad[] = { "", "AAAA", unpadded, bad_char, too_long };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, obj, bad[i]),
				 CF_ERR_ENCODING);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, NULL, sig), CF_ERR_ARG);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, obj, NULL), CF_ERR_ARG);
	assert_int_equal(cf_kms_verify_sig(pub_a, NULL, obj, sig), CF_ERR_ARG);
	assert_int_equal(cf_kms_sign(seed_a, CF_KMS_CTX_REQUEST, NULL, sig), CF_ERR_ARG);
	json_decref(obj);
}

/* --- approvals --- */

static void test_approval(void **state)
{
	(void)state;
	json_t *task = parse(TASK), *ap = NULL;
	uint8_t digest[32];
	assert_int_equal(cf_task_digest(task, digest), CF_OK);
	assert_int_equal(cf_task_approve(seed_a, digest, "a", &ap), CF_OK);
	assert_string_equal(json_string_value(json_object_get(ap, "org")), "a");
	assert_int_equal(json_object_size(ap), 2);
	assert_int_equal(cf_task_approval_verify(pub_a, digest, ap), CF_OK);

	/* Independently: Ed25519 over "coffer-task-approval-v1:" || the 32 digest bytes. */
	uint8_t raw[64], msg[64];
	b64dec(json_string_value(json_object_get(ap, "sig")), raw, sizeof(raw));
	memcpy(msg, "coffer-task-approval-v1:", 24);
	memcpy(msg + 24, digest, 32);
	assert_true(ossl_verify(pub_a, msg, 56, raw));

	/* Any flipped digest bit, another key, another task: refused. */
	for (size_t bit = 0; bit < 256; bit += 13) {
		digest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(cf_task_approval_verify(pub_a, digest, ap), CF_ERR_AUTH);
		digest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(cf_task_approval_verify(pub_b, digest, ap), CF_ERR_AUTH);
	json_t *other = json_deep_copy(task);
	json_object_set_new(json_object_get(other, "tee"), "kinds", json_pack("[s]", "sgx"));
	uint8_t d2[32];
	assert_int_equal(cf_task_digest(other, d2), CF_OK);
	assert_int_equal(cf_task_approval_verify(pub_a, d2, ap), CF_ERR_AUTH);
	json_decref(other);

	/* Only valid organisation names sign. */
	other = NULL;
	assert_int_equal(cf_task_approve(seed_a, digest, "Bad Org", &other), CF_ERR_ARG);
	assert_null(other);
	json_decref(ap);
	json_decref(task);
}

static void test_approval_hostile(void **state)
{
	(void)state;
	uint8_t digest[32] = { 1 };
	json_t *good = NULL;
	assert_int_equal(cf_task_approve(seed_a, digest, "a", &good), CF_OK);
	const char *sig = json_string_value(json_object_get(good, "sig"));
	char text[256];
	const char *const shapes[] = {
		"null", "[]", "\"sig\"", "{}", "{\"org\": \"a\"}", "{\"sig\": \"%s\"}",
		"{\"org\": 1, \"sig\": \"%s\"}", "{\"org\": \"a\", \"sig\": 5}",
		"{\"org\": \"a\", \"sig\": [\"%s\"]}", "{\"org\": \"A\", \"sig\": \"%s\"}",
		"{\"org\": \"a\", \"sig\": \"not base64!\"}", "{\"org\": \"\", \"sig\": \"%s\"}",
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		/* Each "%s" in the shape stands for a good signature. */
		const char *at = strstr(shapes[i], "%s");
		if (at)
			snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - shapes[i]), shapes[i], sig,
				 at + 2);
		else
			snprintf(text, sizeof(text), "%s", shapes[i]);
		json_t *v = parse(text);
		assert_int_equal(cf_task_approval_verify(pub_a, digest, v), CF_ERR_PARSE);
		json_decref(v);
	}
	assert_int_equal(cf_task_approval_verify(pub_a, digest, NULL), CF_ERR_PARSE);
	json_decref(good);
}

/* --- report_data --- */

static void test_report_data(void **state)
{
	(void)state;
	uint8_t nonce[32], digest[32], wrap[32], spki[32], got[64], want[64];
	for (int i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)i;
		digest[i] = (uint8_t)(0x40 + i);
		wrap[i] = (uint8_t)(0xc0 ^ i);
		spki[i] = (uint8_t)(0x99 - i);
	}
	uint8_t m[18 + 96];
	memcpy(m, "coffer-release-v1", 17);
	m[17] = 0;
	memcpy(m + 18, nonce, 32);
	memcpy(m + 50, digest, 32);
	memcpy(m + 82, wrap, 32);
	sha(EVP_sha512(), m, sizeof(m), want);
	assert_int_equal(cf_release_report_data(nonce, digest, wrap, got), CF_OK);
	assert_memory_equal(got, want, 64);

	memcpy(m, "coffer-certify-v1", 17);
	m[17] = 0;
	memcpy(m + 18, nonce, 32);
	memcpy(m + 50, spki, 32);
	sha(EVP_sha512(), m, 82, want);
	assert_int_equal(cf_certify_report_data(nonce, spki, got), CF_OK);
	assert_memory_equal(got, want, 64);

	/* Each field is bound: any change gives another value. */
	uint8_t base[64], other[64];
	assert_int_equal(cf_release_report_data(nonce, digest, wrap, base), CF_OK);
	uint8_t *fields[] = { nonce, digest, wrap };
	for (int f = 0; f < 3; f++) {
		fields[f][31] ^= 0x80;
		assert_int_equal(cf_release_report_data(nonce, digest, wrap, other), CF_OK);
		assert_memory_not_equal(base, other, 64);
		fields[f][31] ^= 0x80;
	}
	/* A release and a certification never share report_data. */
	assert_int_equal(cf_certify_report_data(nonce, digest, other), CF_OK);
	assert_memory_not_equal(base, other, 64);
}

/* --- task shape --- */

static void test_task_check(void **state)
{
	(void)state;
	char why[160];
	json_t *good = parse(TASK);
	assert_int_equal(cf_task_check(good, why, sizeof(why)), CF_OK);
	assert_string_equal(why, "");
	json_decref(good);

	static const char *const bad[] = {
		"[]", "null", "\"task\"", "{}",
		"{\"inputs\": {}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": [], \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": \"a/x\"}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": 5}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"ax\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"A/x\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x/y\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"\": {\"dataset\": \"a/x\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": {}, \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [{\"name\": \"r\"}], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [{\"name\": \"r\", \"recipients\": []}], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [{\"name\": \"r\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"age1nope\"}]}], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [{\"name\": 1, \"recipients\": []}], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [], \"tee\": [\"soft\"]}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [], \"tee\": {\"kinds\": [], \"measurements\": [\"00\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [1]}}",
		"{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\", null], \"measurements\": [\"00\"]}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v = parse(bad[i]);
		why[0] = '\0';
		assert_int_equal(cf_task_check(v, why, sizeof(why)), CF_ERR_PARSE);
		assert_true(strlen(why) > 0);
		/* why may be NULL. */
		assert_int_equal(cf_task_check(v, NULL, 0), CF_ERR_PARSE);
		json_decref(v);
	}
	assert_int_equal(cf_task_check(NULL, why, sizeof(why)), CF_ERR_PARSE);
	/* No outputs is a valid task (a job that only checks something). */
	json_t *v = parse("{\"inputs\": {\"t\": {\"dataset\": \"a/x\"}}, \"outputs\": [],"
			  " \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}");
	assert_int_equal(cf_task_check(v, why, sizeof(why)), CF_OK);
	json_decref(v);
}

/* --- enrollment tokens and requests --- */

static void test_enroll_token(void **state)
{
	(void)state;
	char pub[CF_KMS_PUB_B64_LEN + 1], sig[CF_KMS_SIG_B64_LEN + 1];
	const char *rcpt = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
	cf_b64_encode(pub_b, 32, true, pub);
	json_t *t = NULL;
	assert_int_equal(cf_enroll_token_make("bank-2", pub, rcpt, 2000000000, &t), CF_OK);
	assert_string_equal(json_string_value(json_object_get(t, "org")), "bank-2");
	assert_int_equal(json_integer_value(json_object_get(t, "expires")), 2000000000);
	assert_int_equal(json_object_size(t), 4);
	assert_int_equal(cf_enroll_token_sign(seed_a, t, sig), CF_OK);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_ENROLL, t, sig), CF_OK);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, t, sig), CF_ERR_AUTH);
	/* A changed expiry is another token. */
	json_object_set_new(t, "expires", json_integer(2000000001));
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_ENROLL, t, sig), CF_ERR_AUTH);
	json_decref(t);

	json_t *n = NULL;
	assert_int_equal(cf_enroll_token_make("Bank", pub, rcpt, 1, &n), CF_ERR_ARG);
	assert_int_equal(cf_enroll_token_make("bank", "AAAA", rcpt, 1, &n), CF_ERR_ARG);
	assert_int_equal(cf_enroll_token_make("bank", pub, "age1xyz", 1, &n), CF_ERR_ARG);
	assert_int_equal(cf_enroll_token_make("bank", pub, rcpt, 0, &n), CF_ERR_ARG);
	assert_int_equal(cf_enroll_token_make(NULL, pub, rcpt, 1, &n), CF_ERR_ARG);
	assert_null(n);
}

static void test_request_make(void **state)
{
	(void)state;
	json_t *fields = parse("{\"key\": \"k-1\", \"policy\": {\"allow_debug\": false}}");
	json_t *r1 = NULL, *r2 = NULL;
	assert_int_equal(cf_kms_request_make("a", "key.policy", fields, 1700000000, &r1), CF_OK);
	assert_int_equal(cf_kms_request_make("a", "key.policy", fields, 1700000000, &r2), CF_OK);
	assert_string_equal(json_string_value(json_object_get(r1, "op")), "key.policy");
	assert_string_equal(json_string_value(json_object_get(r1, "org")), "a");
	assert_int_equal(json_integer_value(json_object_get(r1, "time")), 1700000000);
	assert_string_equal(json_string_value(json_object_get(r1, "key")), "k-1");
	assert_true(json_is_object(json_object_get(r1, "policy")));
	const char *id = json_string_value(json_object_get(r1, "id"));
	assert_non_null(id);
	assert_int_equal(strlen(id), 32);
	for (const char *p = id; *p; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	assert_string_not_equal(id, json_string_value(json_object_get(r2, "id")));
	/* The caller's fields are not modified. */
	assert_int_equal(json_object_size(fields), 2);
	json_decref(r1);
	json_decref(r2);

	json_t *r = NULL, *reserved = parse("{\"org\": \"b\"}"), *arr = parse("[]");
	assert_int_equal(cf_kms_request_make("a", "key.list", reserved, 1, &r), CF_ERR_ARG);
	assert_int_equal(cf_kms_request_make("a", "key.list", arr, 1, &r), CF_ERR_ARG);
	assert_int_equal(cf_kms_request_make("A", "key.list", NULL, 1, &r), CF_ERR_ARG);
	assert_int_equal(cf_kms_request_make("a", "", NULL, 1, &r), CF_ERR_ARG);
	assert_null(r);
	assert_int_equal(cf_kms_request_make("a", "key.list", NULL, 1, &r), CF_OK);
	assert_int_equal(json_object_size(r), 4);
	json_decref(r);
	json_decref(reserved);
	json_decref(arr);
	json_decref(fields);
}

/* --- key files --- */

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_sigkey_file(void **state)
{
	(void)state;
	char path[128];
	uint8_t seed[32];
	snprintf(path, sizeof(path), "%s/sig.key", tmpdir);
	unlink(path);
	assert_int_equal(cf_sigkey_write(path, seed_a, "test key"), CF_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(cf_sigkey_read(path, seed), CF_OK);
	assert_memory_equal(seed, seed_a, 32);
	/* The public key is in a comment; the seed's base64 is on its own line. */
	char pub[CF_KMS_PUB_B64_LEN + 1], line[128];
	cf_b64_encode(pub_a, 32, true, pub);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	bool saw_pub = false;
	while (fgets(line, sizeof(line), f))
		saw_pub |= strstr(line, pub) != NULL && line[0] == '#';
	fclose(f);
	assert_true(saw_pub);
	/* Never overwritten. */
	assert_int_equal(cf_sigkey_write(path, seed_b, NULL), CF_ERR_ARG);
	assert_int_equal(cf_sigkey_read(path, seed), CF_OK);
	assert_memory_equal(seed, seed_a, 32);
	/* Readable by others: refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cf_sigkey_read(path, seed), CF_ERR_AUTH);
	/* Comment lines in the comment are refused at write time. */
	snprintf(path, sizeof(path), "%s/sig2.key", tmpdir);
	assert_int_equal(cf_sigkey_write(path, seed_a, "two\nlines"), CF_ERR_ARG);

	static const char *const bad[] = {
		"", "# only a comment\n", "AAAA\n",
		"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n",
		"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\n",
		" AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i], 0600);
		memset(seed, 0x55, sizeof(seed));
		assert_int_equal(cf_sigkey_read(path, seed), CF_ERR_PARSE);
		uint8_t zero[32] = { 0 };
		assert_memory_equal(seed, zero, 32); /* wiped on failure */
	}
	write_file(path, "# c\r\n\r\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\r\n", 0600);
	assert_int_equal(cf_sigkey_read(path, seed), CF_OK);
	assert_memory_equal(seed, seed_a, 32);
	snprintf(path, sizeof(path), "%s/absent.key", tmpdir);
	assert_int_equal(cf_sigkey_read(path, seed), CF_ERR_NOT_FOUND);
}

/* --- a local TLS server --- */

typedef struct http_reply {
	int status;
	char *body; /* malloc'd */
	size_t len;
} http_reply;

typedef void (*handler_fn)(const char *method, const char *path, const char *body, size_t len,
			   http_reply *out);

static struct {
	int listen_fd;
	unsigned port;
	SSL_CTX *ctx;
	pthread_t thread;
	volatile int stop;
	handler_fn handler;
	int requests;
	char last_body[1 << 16];
} srv;

static struct {
	EVP_PKEY *ca_key, *leaf_key, *other_ca_key;
	X509 *ca, *leaf, *other_ca;
	char ca_path[128], other_ca_path[128];
	cf_buf ca_pem;
} pki;

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, bool ca)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	const char *exts[][2] = {
		{ "basicConstraints", ca ? "critical,CA:TRUE" : "critical,CA:FALSE" },
		{ "keyUsage", ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature" },
		{ "subjectAltName", ca ? NULL : "DNS:localhost,IP:127.0.0.1" },
	};
	for (size_t i = 0; i < 3; i++) {
		if (!exts[i][1])
			continue;
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static void write_pem(const char *path, X509 *x, cf_buf *copy)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	if (copy) {
		BIO *b = BIO_new(BIO_s_mem());
		PEM_write_bio_X509(b, x);
		char *p;
		long n = BIO_get_mem_data(b, &p);
		assert_int_equal(cf_buf_append(copy, p, (size_t)n), CF_OK);
		BIO_free(b);
	}
}

static int pki_setup(void)
{
	pki.ca_key = EVP_EC_gen("P-256");
	pki.leaf_key = EVP_EC_gen("P-256");
	pki.other_ca_key = EVP_EC_gen("P-256");
	if (!pki.ca_key || !pki.leaf_key || !pki.other_ca_key)
		return -1;
	pki.ca = make_cert(pki.ca_key, pki.ca_key, NULL, "test KMS CA", true);
	pki.leaf = make_cert(pki.leaf_key, pki.ca_key, pki.ca, "localhost", false);
	pki.other_ca = make_cert(pki.other_ca_key, pki.other_ca_key, NULL, "test KMS CA", true);
	snprintf(pki.ca_path, sizeof(pki.ca_path), "%s/ca.pem", tmpdir);
	snprintf(pki.other_ca_path, sizeof(pki.other_ca_path), "%s/other-ca.pem", tmpdir);
	cf_buf_init(&pki.ca_pem, 1 << 16, false);
	write_pem(pki.ca_path, pki.ca, &pki.ca_pem);
	write_pem(pki.other_ca_path, pki.other_ca, NULL);
	return 0;
}

static void pki_free(void)
{
	X509_free(pki.ca);
	X509_free(pki.leaf);
	X509_free(pki.other_ca);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.leaf_key);
	EVP_PKEY_free(pki.other_ca_key);
	cf_buf_free(&pki.ca_pem);
}

static bool ssl_read_request(SSL *ssl, char *method, char *path, cf_buf *body)
{
	char head[8192];
	size_t n = 0;
	char *end = NULL;
	while (!end) {
		if (n == sizeof(head) - 1)
			return false;
		int r = SSL_read(ssl, head + n, (int)(sizeof(head) - 1 - n));
		if (r <= 0)
			return false;
		n += (size_t)r;
		head[n] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (sscanf(head, "%15s %255s", method, path) != 2)
		return false;
	size_t clen = 0;
	const char *cl = strcasestr(head, "\r\nContent-Length:");
	if (cl)
		clen = strtoul(cl + 17, NULL, 10);
	size_t have = n - (size_t)(end + 4 - head);
	if (cf_buf_append(body, end + 4, have) != CF_OK)
		return false;
	while (body->len < clen) {
		char chunk[4096];
		int r = SSL_read(ssl, chunk, sizeof(chunk));
		if (r <= 0 || cf_buf_append(body, chunk, (size_t)r) != CF_OK)
			return false;
	}
	return cf_buf_terminate(body) == CF_OK;
}

static void serve_one(int fd)
{
	SSL *ssl = SSL_new(srv.ctx);
	char method[16], path[256];
	cf_buf body;
	cf_buf_init(&body, 1 << 20, false);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1 && ssl_read_request(ssl, method, path, &body)) {
		http_reply rep = { 500, NULL, 0 };
		srv.requests++;
		snprintf(srv.last_body, sizeof(srv.last_body), "%s",
			 body.data ? (const char *)body.data : "");
		srv.handler(method, path, body.data ? (const char *)body.data : "", body.len, &rep);
		char head[256];
		int hl = snprintf(head, sizeof(head),
				  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				  rep.status, rep.len);
		SSL_write(ssl, head, hl);
		size_t off = 0;
		while (off < rep.len) {
			int w = SSL_write(ssl, rep.body + off, (int)(rep.len - off));
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		free(rep.body);
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	cf_buf_free(&body);
	close(fd);
}

static void *server_main(void *arg)
{
	(void)arg;
	while (!srv.stop) {
		struct pollfd p = { .fd = srv.listen_fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(srv.listen_fd, NULL, NULL);
		if (fd >= 0)
			serve_one(fd);
	}
	return NULL;
}

/* Starts a server with the leaf certificate; tls12_only for the downgrade test. */
static void server_start(handler_fn h, bool tls12_only, bool other_ca)
{
	memset(&srv, 0, sizeof(srv));
	srv.handler = h;
	srv.ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(srv.ctx);
	if (tls12_only)
		SSL_CTX_set_max_proto_version(srv.ctx, TLS1_2_VERSION);
	if (other_ca) {
		/* A certificate for the right name from a CA the client does not pin. */
		X509 *leaf = make_cert(pki.leaf_key, pki.other_ca_key, pki.other_ca, "localhost", false);
		assert_int_equal(SSL_CTX_use_certificate(srv.ctx, leaf), 1);
		X509_free(leaf);
	} else {
		assert_int_equal(SSL_CTX_use_certificate(srv.ctx, pki.leaf), 1);
	}
	assert_int_equal(SSL_CTX_use_PrivateKey(srv.ctx, pki.leaf_key), 1);
	srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv.listen_fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv.listen_fd, 8), 0);
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(srv.listen_fd, (struct sockaddr *)&a, &alen), 0);
	srv.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
}

static void server_stop(void)
{
	srv.stop = 1;
	pthread_join(srv.thread, NULL);
	close(srv.listen_fd);
	SSL_CTX_free(srv.ctx);
}

static void url_of(char *out, size_t cap, const char *host)
{
	snprintf(out, cap, "https://%s:%u", host, srv.port);
}

static void reply_json(http_reply *out, int status, json_t *v)
{
	out->status = status;
	out->body = json_dumps(v, JSON_COMPACT);
	out->len = out->body ? strlen(out->body) : 0;
	json_decref(v);
}

/* --- the HTTPS client --- */

static void h_echo(const char *method, const char *path, const char *body, size_t len,
		   http_reply *out)
{
	(void)body;
	if (strcmp(path, "/v1/refuse") == 0) {
		reply_json(out, 403, json_pack("{s:{s:s,s:s}}", "error", "check", "signature",
					       "message", "not signed\nby a's key"));
		return;
	}
	if (strcmp(path, "/v1/big") == 0) {
		/* A valid JSON string just over the limit. */
		size_t n = CF_KMS_MAX_REPLY + 16;
		out->status = 200;
		out->body = malloc(n);
		memset(out->body, 'a', n);
		out->body[0] = '"';
		out->body[n - 1] = '"';
		out->len = n;
		return;
	}
	if (strcmp(path, "/v1/text") == 0) {
		out->status = 200;
		out->body = strdup("<html>");
		out->len = 6;
		return;
	}
	if (strcmp(path, "/v1/html413") == 0) {
		out->status = 413;
		out->body = strdup("<HTML>Request Entity Too Large</HTML>");
		out->len = strlen(out->body);
		return;
	}
	if (strcmp(path, "/v1/teapot") == 0) {
		out->status = 502;
		out->body = strdup("bad gateway");
		out->len = 11;
		return;
	}
	reply_json(out, 200, json_pack("{s:s, s:s, s:I}", "method", method, "path", path, "len",
				       (json_int_t)len));
}

static void test_client_urls(void **state)
{
	(void)state;
	cf_kms_client *c = NULL;
	const char pem[] = "x";
	const char *const bad[] = {
		"http://localhost:1", "https://", "https:///", "https://h/path", "https://h?q",
		"https://user@h", "https://h h", "ftp://h", "localhost:8443", "https://h#f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cf_kms_client_open_pem(bad[i], pem, 1, &c), CF_ERR_ARG);
	assert_int_equal(cf_kms_client_open_pem("https://localhost:8443/", pem, 1, &c), CF_OK);
	assert_string_equal(cf_kms_client_url(c), "https://localhost:8443");
	cf_kms_client_free(c);
	assert_int_equal(cf_kms_client_open("https://h", "/nonexistent/ca.pem", &c),
			 CF_ERR_NOT_FOUND);
}

static void test_client_exchange(void **state)
{
	(void)state;
	char url[64];
	cf_kms_client *c = NULL;
	json_t *reply = NULL, *body = parse("{\"x\": [1, 2]}");
	long status = 0;
	server_start(h_echo, false, false);
	url_of(url, sizeof(url), "localhost");
	assert_int_equal(cf_kms_client_open(url, pki.ca_path, &c), CF_OK);

	assert_int_equal(cf_kms_get(c, "/v1/info", &reply, &status), CF_OK);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(reply, "method")), "GET");
	json_decref(reply);

	assert_int_equal(cf_kms_post(c, "/v1/nonce", body, &reply, &status), CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "method")), "POST");
	assert_string_equal(srv.last_body, "{\"x\":[1,2]}");
	json_decref(reply);

	/* A refusal: the error object is the reply; cf_kms_call maps it and keeps it. */
	assert_int_equal(cf_kms_post(c, "/v1/refuse", body, &reply, &status), CF_OK);
	assert_int_equal(status, 403);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(reply, "error"), "check")),
		"signature");
	json_decref(reply);
	reply = NULL;
	assert_int_equal(cf_kms_call(c, "/v1/refuse", body, &reply), CF_ERR_AUTH);
	assert_null(reply);
	const cf_kms_error *e = cf_kms_client_error(c);
	assert_int_equal(e->status, 403);
	assert_string_equal(e->check, "signature");
	assert_string_equal(e->message, "not signed?by a's key"); /* one printable line */

	/* Over 1 MiB: refused, whatever it is. */
	assert_int_equal(cf_kms_get(c, "/v1/big", &reply, &status), CF_ERR_TOO_BIG);
	assert_null(reply);
	/* Not JSON. */
	assert_int_equal(cf_kms_get(c, "/v1/text", &reply, &status), CF_ERR_PARSE);
	assert_int_equal(cf_kms_get(c, "/v1/teapot", &reply, &status), CF_ERR_IO);
	assert_int_equal(cf_kms_client_error(c)->status, 502);
	/* A refusal that is not JSON still maps by its status. */
	assert_int_equal(cf_kms_get(c, "/v1/html413", &reply, &status), CF_ERR_TOO_BIG);
	assert_int_equal(status, 413);
	assert_string_equal(cf_kms_client_error(c)->message, "the answer is not JSON");
	/* The same client still works, and errors are cleared by a success. */
	assert_int_equal(cf_kms_call_get(c, "/v1/info", &reply), CF_OK);
	assert_int_equal(cf_kms_client_error(c)->status, 0);
	json_decref(reply);
	assert_int_equal(cf_kms_get(c, "no-slash", &reply, &status), CF_ERR_ARG);
	cf_kms_client_free(c);

	/* By IP address too (the certificate names 127.0.0.1). */
	url_of(url, sizeof(url), "127.0.0.1");
	assert_int_equal(cf_kms_client_open_pem(url, pki.ca_pem.data, pki.ca_pem.len, &c), CF_OK);
	assert_int_equal(cf_kms_call_get(c, "/v1/info", &reply), CF_OK);
	json_decref(reply);
	cf_kms_client_free(c);
	server_stop();
	json_decref(body);
}

static void test_client_pins_the_ca(void **state)
{
	(void)state;
	char url[64];
	cf_kms_client *c = NULL;
	json_t *reply = NULL;
	long status = 0;

	/* The server's certificate is from another CA: no request is ever sent. */
	server_start(h_echo, false, true);
	url_of(url, sizeof(url), "localhost");
	assert_int_equal(cf_kms_client_open(url, pki.ca_path, &c), CF_OK);
	assert_int_equal(cf_kms_get(c, "/v1/info", &reply, &status), CF_ERR_IO);
	assert_null(reply);
	assert_int_equal(cf_kms_client_error(c)->status, 0);
	assert_true(strlen(cf_kms_client_error(c)->message) > 0);
	cf_kms_client_free(c);
	assert_int_equal(srv.requests, 0);
	server_stop();

	/* The right CA but the client pins another one. */
	server_start(h_echo, false, false);
	url_of(url, sizeof(url), "localhost");
	assert_int_equal(cf_kms_client_open(url, pki.other_ca_path, &c), CF_OK);
	assert_int_equal(cf_kms_get(c, "/v1/info", &reply, &status), CF_ERR_IO);
	cf_kms_client_free(c);
	/* A name the certificate does not carry. */
	char bad_name[64];
	snprintf(bad_name, sizeof(bad_name), "https://127.0.0.2:%u", srv.port);
	assert_int_equal(cf_kms_client_open(bad_name, pki.ca_path, &c), CF_OK);
	assert_int_equal(cf_kms_get(c, "/v1/info", &reply, &status), CF_ERR_IO);
	cf_kms_client_free(c);
	assert_int_equal(srv.requests, 0);
	server_stop();

	/* TLS 1.2 only: refused. */
	server_start(h_echo, true, false);
	url_of(url, sizeof(url), "localhost");
	assert_int_equal(cf_kms_client_open(url, pki.ca_path, &c), CF_OK);
	assert_int_equal(cf_kms_get(c, "/v1/info", &reply, &status), CF_ERR_IO);
	cf_kms_client_free(c);
	assert_int_equal(srv.requests, 0);
	server_stop();
}

static void test_signed_request(void **state)
{
	(void)state;
	char url[64];
	cf_kms_client *c = NULL;
	json_t *reply = NULL, *fields = parse("{\"key\": \"k-1\"}");
	server_start(h_echo, false, false);
	url_of(url, sizeof(url), "localhost");
	assert_int_equal(cf_kms_client_open(url, pki.ca_path, &c), CF_OK);
	time_t before = time(NULL);
	assert_int_equal(cf_kms_signed_request(c, "a", seed_a, "key.rotate", fields, &reply), CF_OK);
	assert_string_equal(json_string_value(json_object_get(reply, "path")), "/v1/request");
	json_decref(reply);

	/* What went on the wire: {request, sig}, the signature over the request. */
	json_t *sent = parse(srv.last_body);
	json_t *req = json_object_get(sent, "request");
	const char *sig = json_string_value(json_object_get(sent, "sig"));
	assert_int_equal(json_object_size(sent), 2);
	assert_non_null(sig);
	assert_int_equal(cf_kms_verify_sig(pub_a, CF_KMS_CTX_REQUEST, req, sig), CF_OK);
	assert_int_equal(cf_kms_verify_sig(pub_b, CF_KMS_CTX_REQUEST, req, sig), CF_ERR_AUTH);
	assert_string_equal(json_string_value(json_object_get(req, "op")), "key.rotate");
	assert_string_equal(json_string_value(json_object_get(req, "org")), "a");
	assert_string_equal(json_string_value(json_object_get(req, "key")), "k-1");
	json_int_t t = json_integer_value(json_object_get(req, "time"));
	assert_true(t >= before && t <= time(NULL));
	assert_int_equal(strlen(json_string_value(json_object_get(req, "id"))), 32);
	json_decref(sent);

	/* Reserved members in the fields are refused before anything is sent. */
	json_t *bad = parse("{\"op\": \"x\"}");
	assert_int_equal(cf_kms_signed_request(c, "a", seed_a, "key.list", bad, &reply), CF_ERR_ARG);
	assert_null(reply);
	json_decref(bad);
	cf_kms_client_free(c);
	server_stop();
	json_decref(fields);
}

/* --- the profile --- */

static void test_profile(void **state)
{
	(void)state;
	char home[128], dir[256], path[300], url[64];
	cf_kms_client *c = NULL;
	snprintf(home, sizeof(home), "%s/profile", tmpdir);
	setenv("COFFER_HOME", home, 1);
	assert_int_equal(cf_profile_dir(dir, sizeof(dir)), CF_OK);
	assert_string_equal(dir, home);
	assert_int_equal(cf_profile_mkdir(dir, sizeof(dir)), CF_OK);
	struct stat st;
	assert_int_equal(stat(home, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char small[8];
	assert_int_equal(cf_profile_dir(small, sizeof(small)), CF_ERR_TOO_BIG);

	/* Not attested. */
	assert_int_equal(cf_kms_client_open_profile(NULL, NULL, &c), CF_ERR_NOT_FOUND);

	/* Pinned: kms.json and the CA, which must hash to ca_sha256. */
	server_start(h_echo, false, false);
	url_of(url, sizeof(url), "localhost");
	unsigned char *der = NULL;
	int dlen = i2d_X509(pki.ca, &der);
	uint8_t h[32];
	char hex[65], text[512];
	sha(EVP_sha256(), der, (size_t)dlen, h);
	OPENSSL_free(der);
	cf_hex_encode(h, 32, hex);
	snprintf(path, sizeof(path), "%s/kms-ca.pem", home);
	write_pem(path, pki.ca, NULL);
	snprintf(path, sizeof(path), "%s/kms.json", home);
	snprintf(text, sizeof(text), "{\"url\": \"%s\", \"ca\": \"kms-ca.pem\", \"ca_sha256\": \"%s\"}",
		 url, hex);
	write_file(path, text, 0600);
	assert_int_equal(cf_kms_client_open_profile(NULL, NULL, &c), CF_OK);
	json_t *reply = NULL;
	assert_int_equal(cf_kms_call_get(c, "/v1/info", &reply), CF_OK);
	json_decref(reply);
	cf_kms_client_free(c);

	/* A replaced CA file no longer matches its pin. */
	snprintf(path, sizeof(path), "%s/kms-ca.pem", home);
	write_pem(path, pki.other_ca, NULL);
	assert_int_equal(cf_kms_client_open_profile(NULL, NULL, &c), CF_ERR_AUTH);
	/* ... unless the caller overrides it explicitly. */
	assert_int_equal(cf_kms_client_open_profile(NULL, pki.ca_path, &c), CF_OK);
	cf_kms_client_free(c);
	/* Both overrides: no profile needed at all. */
	setenv("COFFER_HOME", "/nonexistent", 1);
	assert_int_equal(cf_kms_client_open_profile(url, pki.ca_path, &c), CF_OK);
	cf_kms_client_free(c);
	setenv("COFFER_HOME", home, 1);

	/* Malformed kms.json. */
	static const char *const bad[] = { "", "[]", "{\"ca\": \"kms-ca.pem\"}", "{\"url\": 5}",
					   "{\"url\": \"https://h\", \"ca_sha256\": \"zz\"}",
					   "{\"url\": \"https://h\", \"ca_sha256\": 7}" };
	snprintf(path, sizeof(path), "%s/kms.json", home);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i], 0600);
		assert_int_equal(cf_kms_client_open_profile(NULL, NULL, &c), CF_ERR_PARSE);
	}
	server_stop();
	unsetenv("COFFER_HOME");
}

/* --- release, against a fake KMS --- */

enum fake_mode {
	FAKE_OK,
	FAKE_REFUSE,
	FAKE_REPLY_DIGEST,    /* the answer names another task */
	FAKE_KEYS_DIGEST,     /* the keys file names another task */
	FAKE_STATEMENT_SIG,   /* the statement is not signed by the KMS */
	FAKE_STATEMENT_DIGEST,/* the statement is (validly signed) for another task */
	FAKE_MISSING_INPUT,   /* one key left out */
	FAKE_EXTRA_INPUT,     /* a key for a table the task does not have */
	FAKE_WRONG_DATASET,   /* a key for another dataset */
	FAKE_WRONG_WRAP,      /* keys encrypted to someone else */
	FAKE_SHORT_KEY,       /* a 15-byte file key */
	FAKE_NONCE_BAD,       /* a nonce that is not 32 bytes of hex */
	FAKE_HEADER_HASH,     /* header_sha256 not hex */
	FAKE_NO_SEED,         /* the keys file has no output seed */
	FAKE_OKEY_SIG,        /* the output key statement is not signed by the KMS */
	FAKE_OKEY_DIGEST,     /* the output key statement is for another task */
	FAKE_OKEY_OTHER_KEY,  /* the statement names another key than the seed's */
	FAKE_OKEY_TEE,        /* the statement names another TEE kind */
	FAKE_OKEY_MISSING,    /* no output key statement */
};

static struct {
	enum fake_mode mode;
	uint8_t kms_seed[32], kms_pub[32];
	uint8_t nonce[32];
	uint8_t file_keys[2][16];
	uint8_t headers[2][32];
	uint8_t output_seed[32], output_pub[32];
	uint8_t last_rd[64];
	bool rd_ok;
	bool evidence_failed;
} fake;

static cf_err fake_evidence(const uint8_t report_data[CF_REPORT_DATA_LEN], cf_buf *out)
{
	if (fake.evidence_failed)
		return CF_ERR_IO;
	memcpy(fake.last_rd, report_data, 64);
	/* "Evidence" of the fake TEE: its report_data, tagged. */
	cf_err rc = cf_buf_append(out, "FAKE", 4);
	if (rc == CF_OK)
		rc = cf_buf_append(out, report_data, 64);
	return rc;
}

static const cf_tee_provider fake_tee = { .kind = CF_TEE_SOFT, .evidence = fake_evidence };

static char *b64_of(const uint8_t *p, size_t n)
{
	char *s = malloc(cf_b64_encoded_len(n, true) + 1);
	assert_non_null(s);
	cf_b64_encode(p, n, true, s);
	return s;
}

static void fake_release(const char *body, http_reply *out)
{
	json_t *req = parse(body);
	const json_t *task = json_object_get(req, "task");
	const char *wrap = json_string_value(json_object_get(req, "wrap_recipient"));
	const char *ev = json_string_value(json_object_get(req, "evidence"));
	uint8_t digest[32], wrap_pub[32], rd[64], evb[68];
	char hex[65];
	assert_string_equal(json_string_value(json_object_get(req, "tee")), "soft");
	assert_true(json_is_array(json_object_get(req, "approvals")));
	assert_int_equal(cf_task_digest(task, digest), CF_OK);
	assert_int_equal(cf_age_recipient_parse(wrap, wrap_pub), CF_OK);
	/* The evidence binds nonce, task and wrapping key. */
	b64dec(ev, evb, sizeof(evb));
	assert_int_equal(cf_release_report_data(fake.nonce, digest, wrap_pub, rd), CF_OK);
	fake.rd_ok = memcmp(evb + 4, rd, 64) == 0;
	if (fake.mode == FAKE_REFUSE || !fake.rd_ok) {
		reply_json(out, 403, json_pack("{s:{s:s,s:s}}", "error", "check", "approval_missing",
					       "message", "b did not approve"));
		json_decref(req);
		return;
	}
	uint8_t d_lie[32];
	memcpy(d_lie, digest, 32);
	d_lie[0] ^= 1;
	char lie[65];
	cf_hex_encode(digest, 32, hex);
	cf_hex_encode(d_lie, 32, lie);

	/* The keys file: one entry per input (sales, crm). */
	static const char *const tables[] = { "sales", "crm" };
	static const char *const datasets[] = { "a/sales", "b/crm" };
	json_t *kin = json_array(), *rin = json_array();
	for (int i = 0; i < 2; i++) {
		if (fake.mode == FAKE_MISSING_INPUT && i == 1)
			break;
		char *fk = b64_of(fake.file_keys[i], fake.mode == FAKE_SHORT_KEY ? 15 : 16);
		char hh[65];
		cf_hex_encode(fake.headers[i], 32, hh);
		const char *ds = fake.mode == FAKE_WRONG_DATASET && i == 0 ? "a/other" : datasets[i];
		json_array_append_new(kin, json_pack("{s:s,s:s,s:s}", "table", tables[i], "dataset",
						     ds, "file_key", fk));
		json_array_append_new(rin, json_pack("{s:s,s:s,s:s}", "table", tables[i], "dataset",
						     ds, "header_sha256",
						     fake.mode == FAKE_HEADER_HASH ? "xyz" : hh));
		free(fk);
	}
	if (fake.mode == FAKE_EXTRA_INPUT) {
		char *fk = b64_of(fake.file_keys[0], 16);
		json_array_append_new(kin, json_pack("{s:s,s:s,s:s}", "table", "extra", "dataset",
						     "a/extra", "file_key", fk));
		json_array_append_new(rin, json_pack("{s:s,s:s,s:s}", "table", "extra", "dataset",
						     "a/extra", "header_sha256", hex));
		free(fk);
	}
	json_t *keys = json_pack("{s:s,s:o}", "task_digest",
				 fake.mode == FAKE_KEYS_DIGEST ? lie : hex, "inputs", kin);
	if (fake.mode != FAKE_NO_SEED) {
		char *seed64 = b64_of(fake.output_seed, 32);
		json_object_set_new(keys, "output_seed", json_string(seed64));
		free(seed64);
	}
	char *plain = json_dumps(keys, JSON_COMPACT);
	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	memcpy(r.pub, wrap_pub, 32);
	if (fake.mode == FAKE_WRONG_WRAP)
		r.pub[5] ^= 0x40;
	cf_buf wrapped;
	cf_buf_init(&wrapped, 1 << 20, false);
	cf_mem_reader m = { .data = (const uint8_t *)plain, .len = strlen(plain) };
	assert_int_equal(cf_age_encrypt(&r, 1, NULL, cf_mem_reader_of(&m), cf_buf_writer(&wrapped)),
			 CF_OK);
	char *keys_b64 = b64_of(wrapped.data, wrapped.len);

	json_t *statement = json_pack("{s:s,s:O,s:I}", "task_digest",
				      fake.mode == FAKE_STATEMENT_DIGEST ? lie : hex, "outputs",
				      json_object_get(task, "outputs"), "issued", (json_int_t)time(NULL));
	char sig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_sign(fake.mode == FAKE_STATEMENT_SIG ? seed_b : fake.kms_seed,
				     CF_KMS_CTX_RECIPIENTS, statement, sig),
			 CF_OK);
	uint8_t other_pub[32];
	memcpy(other_pub, fake.output_pub, 32);
	other_pub[3] ^= 1;
	char *opub = b64_of(fake.mode == FAKE_OKEY_OTHER_KEY ? other_pub : fake.output_pub, 32);
	json_t *ostatement = json_pack("{s:s,s:s,s:s,s:s,s:I}", "task_digest",
				       fake.mode == FAKE_OKEY_DIGEST ? lie : hex, "output_key", opub,
				       "tee", fake.mode == FAKE_OKEY_TEE ? "sgx" : "soft",
				       "measurement", "ab12", "issued", (json_int_t)time(NULL));
	free(opub);
	char osig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_sign(fake.mode == FAKE_OKEY_SIG ? seed_b : fake.kms_seed,
				     CF_KMS_CTX_OUTPUT_KEY, ostatement, osig),
			 CF_OK);
	json_t *answer = json_pack("{s:s,s:s,s:o,s:{s:o,s:s}}", "task_digest",
				   fake.mode == FAKE_REPLY_DIGEST ? lie : hex, "keys", keys_b64, "inputs",
				   rin, "recipients", "statement", statement, "sig", sig);
	if (fake.mode != FAKE_OKEY_MISSING)
		json_object_set_new(answer, "output_key",
				    json_pack("{s:o,s:s}", "statement", ostatement, "sig", osig));
	else
		json_decref(ostatement);
	reply_json(out, 200, answer);
	free(keys_b64);
	cf_buf_free(&wrapped);
	free(plain);
	json_decref(keys);
	json_decref(req);
}

static void h_fake_kms(const char *method, const char *path, const char *body, size_t len,
		       http_reply *out)
{
	(void)len;
	char pub[CF_KMS_PUB_B64_LEN + 1], hex[65];
	if (strcmp(method, "GET") == 0 && strcmp(path, "/v1/info") == 0) {
		cf_b64_encode(fake.kms_pub, 32, true, pub);
		reply_json(out, 200, json_pack("{s:s,s:s}", "kms_pub", pub, "tee", "soft"));
	} else if (strcmp(path, "/v1/nonce") == 0) {
		cf_hex_encode(fake.nonce, 32, hex);
		reply_json(out, 200, json_pack("{s:s,s:I}", "nonce",
					       fake.mode == FAKE_NONCE_BAD ? "abcd" : hex, "expires",
					       (json_int_t)time(NULL) + 60));
	} else if (strcmp(path, "/v1/release") == 0) {
		fake_release(body, out);
	} else {
		reply_json(out, 404, json_pack("{s:{s:s,s:s}}", "error", "check", "path", "message",
					       "no such path"));
	}
}

static cf_err run_release(enum fake_mode mode, cf_kms_release_result *res, cf_kms_client **cp)
{
	char url[64];
	json_t *task = parse(TASK);
	json_t *approvals = parse("[{\"org\": \"a\", \"sig\": \"AAAA\"}]");
	fake.mode = mode;
	url_of(url, sizeof(url), "localhost");
	assert_int_equal(cf_kms_client_open(url, pki.ca_path, cp), CF_OK);
	cf_err rc = cf_kms_release(*cp, &fake_tee, task, approvals, res);
	json_decref(task);
	json_decref(approvals);
	return rc;
}

static void test_release(void **state)
{
	(void)state;
	memset(&fake, 0, sizeof(fake));
	for (int i = 0; i < 32; i++) {
		fake.kms_seed[i] = (uint8_t)(0x31 * i + 7);
		fake.nonce[i] = (uint8_t)(0xa5 ^ i);
		fake.headers[0][i] = (uint8_t)i;
		fake.headers[1][i] = (uint8_t)(i + 100);
	}
	for (int i = 0; i < 16; i++) {
		fake.file_keys[0][i] = (uint8_t)(0x10 + i);
		fake.file_keys[1][i] = (uint8_t)(0x70 + i);
	}
	assert_int_equal(cf_ed25519_public(fake.kms_seed, fake.kms_pub), CF_OK);
	assert_int_equal(cf_ed25519_keygen(fake.output_seed, fake.output_pub), CF_OK);
	server_start(h_fake_kms, false, false);

	cf_kms_release_result res;
	cf_kms_client *c = NULL;
	assert_int_equal(run_release(FAKE_OK, &res, &c), CF_OK);
	assert_true(fake.rd_ok);
	assert_int_equal(res.ninputs, 2);
	json_t *task = parse(TASK);
	uint8_t digest[32];
	assert_int_equal(cf_task_digest(task, digest), CF_OK);
	assert_memory_equal(res.task_digest, digest, 32);
	for (size_t i = 0; i < res.ninputs; i++) {
		int k = strcmp(res.inputs[i].table, "sales") == 0 ? 0 : 1;
		assert_string_equal(res.inputs[i].dataset, k == 0 ? "a/sales" : "b/crm");
		assert_memory_equal(res.inputs[i].file_key, fake.file_keys[k], 16);
		assert_memory_equal(res.inputs[i].header_sha256, fake.headers[k], 32);
	}
	assert_true(json_is_object(res.recipients));
	assert_true(json_equal(json_object_get(res.recipients, "outputs"),
			       json_object_get(task, "outputs")));
	/* The output key: the seed from the wrapped keys, the statement as signed. */
	assert_memory_equal(res.output_seed, fake.output_seed, 32);
	assert_true(json_is_object(json_object_get(res.output_key, "statement")));
	/* What the enclave uploads with an output verifies for a recipient. */
	uint8_t ct_sha[32];
	memset(ct_sha, 0x42, sizeof(ct_sha));
	json_t *att = NULL;
	assert_int_equal(cf_kms_output_attestation(&res, "result", ct_sha, &att), CF_OK);
	cf_kms_output_origin origin;
	char why[200];
	assert_int_equal(cf_kms_output_verify(fake.kms_pub, att, digest, "result", ct_sha, &origin,
					      why, sizeof(why)),
			 CF_OK);
	assert_string_equal(origin.tee, "soft");
	assert_string_equal(origin.measurement, "ab12");
	json_decref(att);
	json_decref(task);
	cf_kms_release_result_free(&res);
	assert_null(res.inputs);
	assert_null(res.output_key);
	assert_int_equal(res.ninputs, 0);
	uint8_t zero[32] = { 0 };
	assert_memory_equal(res.output_seed, zero, 32);
	cf_kms_client_free(c);

	/* A refusal: the check is kept for the caller. */
	assert_int_equal(run_release(FAKE_REFUSE, &res, &c), CF_ERR_AUTH);
	assert_string_equal(cf_kms_client_error(c)->check, "approval_missing");
	assert_int_equal(cf_kms_client_error(c)->status, 403);
	assert_null(res.inputs);
	cf_kms_client_free(c);

	/* Every lie of the KMS (or of whoever answers in its place) is refused. */
	static const struct {
		enum fake_mode mode;
		const char *why;
	} lies[] = {
		{ FAKE_REPLY_DIGEST, "the answer is for another task" },
		{ FAKE_KEYS_DIGEST, "the released keys are for another task" },
		{ FAKE_STATEMENT_SIG, "not signed by the KMS" },
		{ FAKE_STATEMENT_DIGEST, "statement is for another task" },
		{ FAKE_MISSING_INPUT, "not one per input" },
		{ FAKE_EXTRA_INPUT, "not one per input" },
		{ FAKE_WRONG_DATASET, "is not for dataset a/sales" },
		{ FAKE_WRONG_WRAP, "do not open with the wrapping key" },
		{ FAKE_SHORT_KEY, "file key of input" },
		{ FAKE_NONCE_BAD, "no valid nonce" },
		{ FAKE_HEADER_HASH, "header_sha256 of input" },
		{ FAKE_NO_SEED, "no valid output key seed" },
		{ FAKE_OKEY_SIG, "output key statement is not signed by the KMS" },
		{ FAKE_OKEY_DIGEST, "output key statement is for another task" },
		{ FAKE_OKEY_OTHER_KEY, "another key than the released seed's" },
		{ FAKE_OKEY_TEE, "names a sgx TEE, this is soft" },
		{ FAKE_OKEY_MISSING, "output key statement is missing" },
	};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		memset(&res, 0x5a, sizeof(res));
		assert_int_equal(run_release(lies[i].mode, &res, &c), CF_ERR_AUTH);
		assert_string_equal(cf_kms_client_error(c)->check, "release_reply");
		if (!strstr(cf_kms_client_error(c)->message, lies[i].why))
			fail_msg("lie %zu: '%s' does not say '%s'", i, cf_kms_client_error(c)->message,
				 lies[i].why);
		/* Nothing half-filled is left behind. */
		assert_null(res.inputs);
		assert_null(res.recipients);
		assert_null(res.output_key);
		assert_int_equal(res.ninputs, 0);
		for (size_t k = 0; k < sizeof(res.output_seed); k++)
			assert_int_equal(res.output_seed[k], 0);
		cf_kms_client_free(c);
	}

	/* The TEE gives no evidence. */
	fake.evidence_failed = true;
	assert_int_equal(run_release(FAKE_OK, &res, &c), CF_ERR_IO);
	assert_string_equal(cf_kms_client_error(c)->check, "evidence");
	fake.evidence_failed = false;

	/* Bad arguments: a malformed task never reaches the network. */
	int before = srv.requests;
	json_t *bad_task = parse("{\"inputs\": {}}"), *approvals = parse("[]");
	assert_int_equal(cf_kms_release(c, &fake_tee, bad_task, approvals, &res), CF_ERR_ARG);
	assert_string_equal(cf_kms_client_error(c)->check, "task");
	json_t *good_task = parse(TASK), *not_array = parse("{}");
	assert_int_equal(cf_kms_release(c, &fake_tee, good_task, not_array, &res), CF_ERR_ARG);
	assert_int_equal(cf_kms_release(c, NULL, good_task, approvals, &res), CF_ERR_ARG);
	assert_int_equal(srv.requests, before);
	json_decref(bad_task);
	json_decref(good_task);
	json_decref(approvals);
	json_decref(not_array);
	cf_kms_client_free(c);
	server_stop();
	cf_kms_release_result_free(NULL);
}

/* --- signed outputs: what a recipient checks --- */

/* A statement by the KMS (seed_a) for task digest d, of output key opub. */
static json_t *output_key_of(const uint8_t kms_seed[32], const char *context, const uint8_t d[32],
			     const uint8_t opub[32], const char *tee)
{
	char hex[65], sig[CF_KMS_SIG_B64_LEN + 1];
	cf_hex_encode(d, 32, hex);
	char *pub = b64_of(opub, 32);
	json_t *st = json_pack("{s:s,s:s,s:s,s:s,s:I}", "task_digest", hex, "output_key", pub, "tee",
			       tee, "measurement", "00ff", "issued", (json_int_t)1800000000);
	free(pub);
	assert_int_equal(cf_kms_sign(kms_seed, context, st, sig), CF_OK);
	return json_pack("{s:o,s:s}", "statement", st, "sig", sig);
}

/* tmpl with @D replaced by digest and @K by key. */
static void fill(char *out, size_t cap, const char *tmpl, const char *digest, const char *key)
{
	size_t n = 0;
	for (const char *p = tmpl; *p && n + 1 < cap; p++) {
		const char *with = p[0] == '@' && p[1] == 'D' ? digest : p[0] == '@' && p[1] == 'K' ? key : NULL;
		if (!with) {
			out[n++] = *p;
			continue;
		}
		for (; *with && n + 1 < cap; with++)
			out[n++] = *with;
		p++;
	}
	out[n] = '\0';
}

static cf_err verify_att(const uint8_t kms_pub[32], const json_t *att, const uint8_t d[32],
			 const char *name, const uint8_t sha[32], const char *want_why)
{
	char why[256];
	cf_kms_output_origin origin;
	memset(&origin, 0x55, sizeof(origin));
	cf_err rc = cf_kms_output_verify(kms_pub, att, d, name, sha, &origin, why, sizeof(why));
	if (rc == CF_OK) {
		assert_string_equal(why, "");
	} else {
		/* Nothing of a failed check is reported as an origin. */
		assert_string_equal(origin.tee, "");
		assert_string_equal(origin.measurement, "");
		if (want_why && !strstr(why, want_why))
			fail_msg("'%s' does not say '%s'", why, want_why);
	}
	return rc;
}

static void test_output_verify(void **state)
{
	(void)state;
	uint8_t d[32], d2[32], sha[32], oseed[32], opub[32], fseed[32], fpub[32];
	for (int i = 0; i < 32; i++) {
		d[i] = (uint8_t)(3 * i + 1);
		d2[i] = d[i];
		sha[i] = (uint8_t)(0xc0 ^ i);
	}
	d2[31] ^= 1;
	assert_int_equal(cf_ed25519_keygen(oseed, opub), CF_OK);
	assert_int_equal(cf_ed25519_keygen(fseed, fpub), CF_OK);

	/* The enclave's side, as cf_kms_output_attestation makes it. */
	cf_kms_release_result rel;
	memset(&rel, 0, sizeof(rel));
	memcpy(rel.task_digest, d, 32);
	memcpy(rel.output_seed, oseed, 32);
	rel.output_key = output_key_of(seed_a, CF_KMS_CTX_OUTPUT_KEY, d, opub, "soft");
	json_t *att = NULL;
	assert_int_equal(cf_kms_output_attestation(&rel, "result", sha, &att), CF_OK);
	cf_kms_output_origin origin;
	assert_int_equal(cf_kms_output_verify(pub_a, att, d, "result", sha, &origin, NULL, 0), CF_OK);
	assert_string_equal(origin.tee, "soft");
	assert_string_equal(origin.measurement, "00ff");
	assert_int_equal(origin.issued, 1800000000);
	char opub64[CF_KMS_PUB_B64_LEN + 1];
	cf_b64_encode(opub, 32, true, opub64);
	assert_string_equal(origin.output_key, opub64);
	assert_int_equal(verify_att(pub_a, att, d, "result", sha, NULL), CF_OK);

	/* The signature covers exactly the task, the name and the ciphertext's hash. */
	assert_int_equal(verify_att(pub_a, att, d2, "result", sha, "for another task"), CF_ERR_AUTH);
	assert_int_equal(verify_att(pub_a, att, d, "sizes", sha, "does not cover"), CF_ERR_AUTH);
	assert_int_equal(verify_att(pub_a, att, d, "resul", sha, "does not cover"), CF_ERR_AUTH);
	assert_int_equal(verify_att(pub_a, att, d, "result2", sha, "does not cover"), CF_ERR_AUTH);
	for (int i = 0; i < 32; i += 31) {
		uint8_t alt[32];
		memcpy(alt, sha, 32);
		alt[i] ^= 0x80;
		assert_int_equal(verify_att(pub_a, att, d, "result", alt, "does not cover"),
				 CF_ERR_AUTH);
	}
	/* Another KMS (or none: whoever cofferd says) is not the pinned one. */
	assert_int_equal(verify_att(pub_b, att, d, "result", sha, "not signed by the pinned KMS"),
			 CF_ERR_AUTH);
	json_decref(att);

	/* cofferd's forgery: its own output key, in a statement it cannot sign as the KMS. */
	json_t *forged_okey = output_key_of(seed_b, CF_KMS_CTX_OUTPUT_KEY, d, fpub, "soft");
	char fsig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_output_sign(fseed, d, "result", sha, fsig), CF_OK);
	att = json_pack("{s:o,s:s}", "output_key", forged_okey, "sig", fsig);
	assert_int_equal(verify_att(pub_a, att, d, "result", sha, "not signed by the pinned KMS"),
			 CF_ERR_AUTH);
	json_decref(att);
	/* The KMS's genuine statement, with a signature by another key. */
	att = json_pack("{s:O,s:s}", "output_key", rel.output_key, "sig", fsig);
	assert_int_equal(verify_att(pub_a, att, d, "result", sha, "does not cover"), CF_ERR_AUTH);
	json_decref(att);
	/* A statement the KMS signed for another purpose (recipients) does not pass. */
	json_t *ctx_okey = output_key_of(seed_a, CF_KMS_CTX_RECIPIENTS, d, opub, "soft");
	char osig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_output_sign(oseed, d, "result", sha, osig), CF_OK);
	att = json_pack("{s:o,s:s}", "output_key", ctx_okey, "sig", osig);
	assert_int_equal(verify_att(pub_a, att, d, "result", sha, "not signed by the pinned KMS"),
			 CF_ERR_AUTH);
	json_decref(att);
	/* An output of another task, with that task's genuine statement. */
	json_t *other = output_key_of(seed_a, CF_KMS_CTX_OUTPUT_KEY, d2, opub, "soft");
	char sig2[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_output_sign(oseed, d2, "result", sha, sig2), CF_OK);
	att = json_pack("{s:o,s:s}", "output_key", other, "sig", sig2);
	assert_int_equal(verify_att(pub_a, att, d2, "result", sha, NULL), CF_OK);
	assert_int_equal(verify_att(pub_a, att, d, "result", sha, "for another task"), CF_ERR_AUTH);
	json_decref(att);
	/* The enclave's signature for task d2 over a statement for d. */
	att = json_pack("{s:O,s:s}", "output_key", rel.output_key, "sig", sig2);
	assert_int_equal(verify_att(pub_a, att, d, "result", sha, "does not cover"), CF_ERR_AUTH);
	json_decref(att);

	/* Malformed attestations. */
	assert_int_equal(verify_att(pub_a, NULL, d, "result", sha, "no attestation"), CF_ERR_PARSE);
	static const char *const bad[] = {
		"[]", "{}", "{\"sig\": \"AAAA\"}", "{\"output_key\": {}, \"sig\": \"AAAA\"}",
		"{\"output_key\": {\"statement\": {}}, \"sig\": \"AAAA\"}",
		"{\"output_key\": {\"statement\": [], \"sig\": \"AAAA\"}, \"sig\": \"AAAA\"}",
		"{\"output_key\": {\"statement\": {}, \"sig\": 5}, \"sig\": \"AAAA\"}",
		"{\"output_key\": {\"statement\": {}, \"sig\": \"AAAA\"}, \"sig\": null}",
		"{\"output_key\": {\"statement\": {}, \"sig\": \"AAAA\"}, \"sig\": \"AAAA\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		att = parse(bad[i]);
		cf_err rc = verify_att(pub_a, att, d, "result", sha, NULL);
		if (rc != CF_ERR_PARSE && rc != CF_ERR_AUTH)
			fail_msg("bad[%zu]: %s", i, cf_strerror(rc));
		json_decref(att);
	}
	/* The enclave's signature that is not 64 bytes of base64. */
	static const char *const bad_sigs[] = { "", "AAAA", "!!!!", "not base64 at all" };
	for (size_t i = 0; i < sizeof(bad_sigs) / sizeof(bad_sigs[0]); i++) {
		att = json_pack("{s:O,s:s}", "output_key", rel.output_key, "sig", bad_sigs[i]);
		assert_int_equal(verify_att(pub_a, att, d, "result", sha, "not 64 bytes"), CF_ERR_PARSE);
		json_decref(att);
	}
	{ /* one byte short, padded right */
		char *s63 = b64_of((const uint8_t *)osig, 63);
		att = json_pack("{s:O,s:s}", "output_key", rel.output_key, "sig", s63);
		assert_int_equal(verify_att(pub_a, att, d, "result", sha, "not 64 bytes"), CF_ERR_PARSE);
		json_decref(att);
		free(s63);
	}
	/* A statement the KMS signed but lacking members, or naming no TEE. */
	static const char *const thin[] = {
		"{\"task_digest\": \"@D\"}",
		"{\"task_digest\": \"@D\", \"output_key\": \"AAAA\", \"tee\": \"soft\", \"measurement\": \"00\", \"issued\": 1}",
		"{\"task_digest\": \"@D\", \"output_key\": \"@K\", \"tee\": \"none\", \"measurement\": \"00\", \"issued\": 1}",
		"{\"task_digest\": \"@D\", \"output_key\": \"@K\", \"tee\": \"soft\", \"issued\": 1}",
		"{\"task_digest\": \"@D\", \"output_key\": \"@K\", \"tee\": \"soft\", \"measurement\": \"00\"}",
		"{\"task_digest\": \"@D\", \"output_key\": \"@K\", \"tee\": \"soft\", \"measurement\": \"00\", \"issued\": \"1\"}",
	};
	char hex[65];
	cf_hex_encode(d, 32, hex);
	char upper[65];
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
	for (size_t i = 0; i < sizeof(thin) / sizeof(thin[0]) + 1; i++) {
		char text[512], ksig[CF_KMS_SIG_B64_LEN + 1];
		if (i < sizeof(thin) / sizeof(thin[0]))
			fill(text, sizeof(text), thin[i], hex, opub64);
		else /* the digest in upper case: not the canonical spelling */
			snprintf(text, sizeof(text), "{\"task_digest\": \"%s\", \"output_key\": \"%s\", "
				 "\"tee\": \"soft\", \"measurement\": \"00\", \"issued\": 1}", upper, opub64);
		json_t *st = parse(text);
		assert_int_equal(cf_kms_sign(seed_a, CF_KMS_CTX_OUTPUT_KEY, st, ksig), CF_OK);
		att = json_pack("{s:{s:o,s:s},s:s}", "output_key", "statement", st, "sig", ksig, "sig",
				osig);
		assert_int_equal(verify_att(pub_a, att, d, "result", sha, "statement is malformed"),
				 CF_ERR_PARSE);
		json_decref(att);
	}

	/* Names: 1 to 128 bytes, both to sign and to verify. */
	char long_name[CF_KMS_MAX_OUTPUT_NAME + 2];
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(cf_kms_output_sign(oseed, d, "", sha, osig), CF_ERR_ARG);
	assert_int_equal(cf_kms_output_sign(oseed, d, NULL, sha, osig), CF_ERR_ARG);
	assert_int_equal(cf_kms_output_sign(oseed, d, long_name, sha, osig), CF_ERR_ARG);
	long_name[CF_KMS_MAX_OUTPUT_NAME] = '\0';
	assert_int_equal(cf_kms_output_sign(oseed, d, long_name, sha, osig), CF_OK);
	att = json_pack("{s:O,s:s}", "output_key", rel.output_key, "sig", osig);
	assert_int_equal(verify_att(pub_a, att, d, long_name, sha, NULL), CF_OK);
	assert_int_equal(verify_att(pub_a, att, d, "", sha, "empty or too long"), CF_ERR_ARG);
	assert_int_equal(verify_att(pub_a, att, d, NULL, sha, "empty or too long"), CF_ERR_ARG);
	json_decref(att);
	/* No release, no attestation. */
	cf_kms_release_result none;
	memset(&none, 0, sizeof(none));
	assert_int_equal(cf_kms_output_attestation(&none, "result", sha, &att), CF_ERR_ARG);
	assert_null(att);
	assert_int_equal(cf_kms_output_attestation(&rel, "", sha, &att), CF_ERR_ARG);
	assert_null(att);
	cf_kms_release_result_free(&rel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_name),
		cmocka_unit_test(test_digest_known_value),
		cmocka_unit_test(test_digest_stable_under_order_and_space),
		cmocka_unit_test(test_digest_changes_with_any_value),
		cmocka_unit_test(test_sign_context_separation),
		cmocka_unit_test(test_sign_covers_the_object),
		cmocka_unit_test(test_sig_encoding_hostile),
		cmocka_unit_test(test_approval),
		cmocka_unit_test(test_approval_hostile),
		cmocka_unit_test(test_report_data),
		cmocka_unit_test(test_task_check),
		cmocka_unit_test(test_enroll_token),
		cmocka_unit_test(test_request_make),
		cmocka_unit_test(test_sigkey_file),
		cmocka_unit_test(test_client_urls),
		cmocka_unit_test(test_client_exchange),
		cmocka_unit_test(test_client_pins_the_ca),
		cmocka_unit_test(test_signed_request),
		cmocka_unit_test(test_profile),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_output_verify),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
