/*
 * ratls: the CBOR wrapper on well-formed and hostile input, and real
 * TLS 1.3 handshakes over a socketpair between a server holding an
 * RA-TLS certificate with soft evidence and a client that verifies it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "coffer/ratls.h"
#include "coffer/soft.h"

/* --- fixture: two soft platforms --- */

static struct {
	char root[64];
	char dir_a[128], dir_b[128];
	cf_soft_platform a, b;
	cf_buf cert_a;
} fx;

static const uint8_t MEASUREMENT[48] = { 0x11, 0x22, 0x33, 0x44 };

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int group_setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.root, sizeof(fx.root), "/tmp/coffer-test-ratls-XXXXXX");
	if (!mkdtemp(fx.root))
		return -1;
	snprintf(fx.dir_a, sizeof(fx.dir_a), "%s/a", fx.root);
	snprintf(fx.dir_b, sizeof(fx.dir_b), "%s/b", fx.root);
	cf_buf_init(&fx.cert_a, 1 << 16, false);
	if (cf_soft_platform_init(fx.dir_a, "host-a", false) != CF_OK ||
	    cf_soft_platform_init(fx.dir_b, "host-b", false) != CF_OK ||
	    cf_soft_platform_load(fx.dir_a, &fx.a) != CF_OK ||
	    cf_soft_platform_load(fx.dir_b, &fx.b) != CF_OK ||
	    cf_soft_platform_cert(fx.dir_a, &fx.cert_a) != CF_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cf_soft_platform_free(&fx.a);
	cf_soft_platform_free(&fx.b);
	cf_buf_free(&fx.cert_a);
	nftw(fx.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* --- soft evidence, as coffer-launch's agent would produce it --- */

struct soft_ev {
	cf_soft_platform *platform;
	uint32_t flags;
	bool other_key; /* bind the hash of some other key */
};

static cf_err soft_evidence(void *arg, const uint8_t rd[CF_REPORT_DATA_LEN], cf_buf *out)
{
	struct soft_ev *s = arg;
	cf_soft_report r;
	uint8_t rep[CF_SOFT_REPORT_LEN];
	memset(&r, 0, sizeof(r));
	r.version = CF_SOFT_REPORT_VERSION;
	r.flags = s->flags;
	r.launch_time = (uint64_t)time(NULL);
	memset(r.instance_id, 0x5a, sizeof(r.instance_id));
	memcpy(r.measurement, MEASUREMENT, sizeof(r.measurement));
	memcpy(r.report_data, rd, CF_REPORT_DATA_LEN);
	if (s->other_key) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		assert_non_null(k);
		assert_int_equal(cf_ratls_key_hash(k, r.report_data), CF_OK);
		EVP_PKEY_free(k);
	}
	memcpy(r.platform_id, s->platform->platform_id, 32);
	snprintf(r.launcher_version, sizeof(r.launcher_version), "0.1.0");
	cf_err rc = cf_soft_report_sign(s->platform->key, &r, rep);
	if (rc != CF_OK)
		return rc;
	return cf_buf_append(out, rep, sizeof(rep));
}

static void make_soft_cert(struct soft_ev *s, EVP_PKEY **key, X509 **cert)
{
	assert_int_equal(cf_ratls_make_cert_with(CF_TEE_SOFT, soft_evidence, s, time(NULL), 3600,
						 key, cert),
			 CF_OK);
}

static void verifier_init(cf_ratls_verifier *cfg, const json_t *policy)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->collateral.platform_cert.data = fx.cert_a.data;
	cfg->collateral.platform_cert.len = fx.cert_a.len;
	cfg->policy = policy;
}

/* --- a TLS 1.3 handshake over a socketpair, both ends non-blocking --- */

static bool step(SSL *ssl, bool *done)
{
	if (*done)
		return true;
	int rc = SSL_do_handshake(ssl);
	if (rc == 1) {
		*done = true;
		return true;
	}
	int e = SSL_get_error(ssl, rc);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Returns whether the handshake succeeded; *check gets the client's failed check. */
static bool handshake(EVP_PKEY *key, X509 *cert, const cf_ratls_verifier *cfg, char *check,
		      size_t checklen)
{
	int sv[2];
	bool sdone = false, cdone = false, ok = false;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(sctx);
	assert_non_null(cctx);
	assert_true(SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION));
	assert_true(SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION));
	assert_int_equal(cf_ratls_ssl_ctx_use(sctx, key, cert), CF_OK);
	assert_int_equal(cf_ratls_ssl_ctx_setup(cctx, cfg), CF_OK);
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	assert_non_null(s);
	assert_non_null(c);
	SSL_set_fd(s, sv[0]);
	SSL_set_fd(c, sv[1]);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 1000; i++) {
		bool cok = step(c, &cdone);
		bool sok = step(s, &sdone);
		if (cdone && sdone) {
			ok = true;
			break;
		}
		if (!cok || !sok)
			break;
	}
	if (ok)
		assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
	const char *f = cf_ratls_last_check(c);
	const char *why = cf_ratls_last_error(c);
	snprintf(check, checklen, "%s", f ? f : "");
	if (why)
		printf("# handshake refused: %s\n", why);
	if (ok)
		assert_null(f);
	else
		assert_non_null(why);
	ERR_clear_error();
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

static void expect_refused(EVP_PKEY *key, X509 *cert, const json_t *policy, const char *name)
{
	cf_ratls_verifier cfg;
	char check[64];
	verifier_init(&cfg, policy);
	assert_false(handshake(key, cert, &cfg, check, sizeof(check)));
	assert_string_equal(check, name);
	/* The same verdict outside TLS. */
	cf_verdict v;
	assert_int_equal(cf_ratls_verify_cert(cert, &cfg, &v), CF_OK);
	assert_false(cf_verdict_ok(&v));
	assert_string_equal(cf_verdict_first_failure(&v)->name, name);
	cf_verdict_free(&v);
}

/* --- handshakes --- */

static const cf_check *find_check(const cf_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nchecks; i++)
		if (strcmp(v->checks[i].name, name) == 0)
			return &v->checks[i];
	return NULL;
}

static void test_handshake_ok(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *key;
	X509 *cert;
	cf_ratls_verifier cfg;
	char check[64];
	make_soft_cert(&s, &key, &cert);
	char mhex[97];
	cf_hex_encode(MEASUREMENT, 48, mhex);
	json_t *policy = json_pack("{s:[s], s:{s:[s]}}", "tee", "soft", "measurements",
				   "measurement", mhex);
	assert_non_null(policy);
	verifier_init(&cfg, policy);
	assert_true(handshake(key, cert, &cfg, check, sizeof(check)));

	cf_verdict v;
	assert_int_equal(cf_ratls_verify_cert(cert, &cfg, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	assert_int_equal(v.tee, CF_TEE_SOFT);
	const cf_check *kb = find_check(&v, "key_binding");
	assert_non_null(kb);
	assert_int_equal(kb->state, CF_CHECK_PASS);
	assert_non_null(find_check(&v, "platform_signature"));
	assert_non_null(find_check(&v, "policy_measurement_measurement"));
	cf_verdict_free(&v);

	/* The certificate: non-critical extension, P-256 key. */
	ASN1_OBJECT *oid = OBJ_txt2obj(CF_RATLS_OID, 1);
	int idx = X509_get_ext_by_OBJ(cert, oid, -1);
	assert_true(idx >= 0);
	assert_false(X509_EXTENSION_get_critical(X509_get_ext(cert, idx)));
	ASN1_OBJECT_free(oid);
	assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	json_decref(policy);
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void test_handshake_other_key(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a, .other_key = true };
	EVP_PKEY *key;
	X509 *cert;
	make_soft_cert(&s, &key, &cert);
	expect_refused(key, cert, NULL, "key_binding");
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void test_handshake_other_platform(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.b };
	EVP_PKEY *key;
	X509 *cert;
	make_soft_cert(&s, &key, &cert);
	expect_refused(key, cert, NULL, "platform_id");
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void test_handshake_wrong_measurement(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *key;
	X509 *cert;
	make_soft_cert(&s, &key, &cert);
	char zero[97];
	memset(zero, '0', 96);
	zero[96] = 0;
	json_t *policy = json_pack("{s:{s:[s]}}", "measurements", "measurement", zero);
	assert_non_null(policy);
	expect_refused(key, cert, policy, "policy_measurement_measurement");
	json_decref(policy);
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void test_handshake_debug(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a, .flags = CF_SOFT_FLAG_DEBUG };
	EVP_PKEY *key;
	X509 *cert;
	make_soft_cert(&s, &key, &cert);
	expect_refused(key, cert, NULL, "debug");
	/* Allowed by policy, the same certificate passes. */
	json_t *policy = json_pack("{s:b}", "allow_debug", 1);
	cf_ratls_verifier cfg;
	char check[64];
	verifier_init(&cfg, policy);
	assert_true(handshake(key, cert, &cfg, check, sizeof(check)));
	json_decref(policy);
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void test_handshake_no_extension(void **state)
{
	(void)state;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert;
	assert_non_null(key);
	assert_int_equal(cf_ratls_sign_cert(key, NULL, 0, time(NULL), 3600, &cert), CF_OK);
	expect_refused(key, cert, NULL, "ratls_extension");
	EVP_PKEY_free(key);
	X509_free(cert);
}

static void test_handshake_bad_cbor(void **state)
{
	(void)state;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert;
	assert_non_null(key);
	/* An indefinite-length byte string under the soft tag. */
	static const uint8_t bad[] = { 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x5f, 0x41, 0x00, 0xff };
	assert_int_equal(cf_ratls_sign_cert(key, bad, sizeof(bad), time(NULL), 3600, &cert), CF_OK);
	expect_refused(key, cert, NULL, "ratls_cbor");
	X509_free(cert);
	/* Well-formed CBOR, unknown tag. */
	static const uint8_t unk[] = { 0xda, 0x00, 0x1a, 0x75, 0xff, 0x41, 0x00 };
	assert_int_equal(cf_ratls_sign_cert(key, unk, sizeof(unk), time(NULL), 3600, &cert), CF_OK);
	expect_refused(key, cert, NULL, "ratls_tag");
	X509_free(cert);
	/* The soft tag over garbage: the evidence verifier's "format". */
	static const uint8_t junk[] = { 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x43, 1, 2, 3 };
	assert_int_equal(cf_ratls_sign_cert(key, junk, sizeof(junk), time(NULL), 3600, &cert),
			 CF_OK);
	expect_refused(key, cert, NULL, "format");
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void test_verify_expired(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *key;
	X509 *cert;
	make_soft_cert(&s, &key, &cert);
	cf_ratls_verifier cfg;
	verifier_init(&cfg, NULL);
	cfg.now = time(NULL) + 7200;
	cf_verdict v;
	assert_int_equal(cf_ratls_verify_cert(cert, &cfg, &v), CF_OK);
	assert_false(cf_verdict_ok(&v));
	assert_string_equal(cf_verdict_first_failure(&v)->name, "ratls_cert_validity");
	cf_verdict_free(&v);
	EVP_PKEY_free(key);
	X509_free(cert);
}

/* --- CBOR --- */

static void decode_ok(const uint8_t *in, size_t len, uint64_t want_tag, size_t want_len)
{
	uint64_t tag;
	cf_blob ev;
	assert_int_equal(cf_ratls_cbor_decode(in, len, &tag, &ev), CF_OK);
	assert_true(tag == want_tag);
	assert_int_equal(ev.len, want_len);
}

static void decode_err(const uint8_t *in, size_t len, cf_err want)
{
	uint64_t tag;
	cf_blob ev;
	assert_int_equal(cf_ratls_cbor_decode(in, len, &tag, &ev), want);
}

static void test_cbor_roundtrip(void **state)
{
	(void)state;
	static const uint64_t tags[] = { 0, 23, 24, 255, 256, 0xffff, 0x10000, CF_RATLS_TAG_SOFT,
					 0xffffffffu, 0x100000000ull, UINT64_MAX };
	static const size_t lens[] = { 0, 1, 23, 24, 255, 256, 65535, 65536 };
	uint8_t *data = calloc(1, 65536);
	assert_non_null(data);
	for (size_t i = 0; i < 65536; i++)
		data[i] = (uint8_t)i;
	for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
		for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
			cf_buf b;
			uint64_t tag;
			cf_blob ev;
			cf_buf_init(&b, 1 << 20, false);
			assert_int_equal(cf_ratls_cbor_encode(tags[t], data, lens[l], &b), CF_OK);
			assert_int_equal(cf_ratls_cbor_decode(b.data, b.len, &tag, &ev), CF_OK);
			assert_true(tag == tags[t]);
			assert_int_equal(ev.len, lens[l]);
			if (lens[l])
				assert_memory_equal(ev.data, data, lens[l]);
			cf_buf_free(&b);
		}
	}
	free(data);
	/* The exact bytes of the soft tag: 0xda 001a75c0, then a bstr head. */
	cf_buf b;
	cf_buf_init(&b, 64, false);
	assert_int_equal(cf_ratls_cbor_encode(CF_RATLS_TAG_SOFT, (const uint8_t *)"ab", 2, &b),
			 CF_OK);
	static const uint8_t want[] = { 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x42, 'a', 'b' };
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	cf_buf_free(&b);
	static const uint8_t small[] = { 0xc6, 0x40 };
	decode_ok(small, sizeof(small), 6, 0);
}

static void test_cbor_hostile(void **state)
{
	(void)state;
#define E(want, ...)                                                      \
	do {                                                              \
		static const uint8_t in_[] = { __VA_ARGS__ };             \
		decode_err(in_, sizeof(in_), want);                       \
	} while (0)
	decode_err(NULL, 0, CF_ERR_TRUNCATED);
	/* Truncated heads. */
	E(CF_ERR_TRUNCATED, 0xd8);
	E(CF_ERR_TRUNCATED, 0xd9, 0x01);
	E(CF_ERR_TRUNCATED, 0xda, 0x00, 0x1a, 0x75);
	E(CF_ERR_TRUNCATED, 0xdb, 0, 0, 0, 1, 0, 0, 0);
	E(CF_ERR_TRUNCATED, 0xda, 0x00, 0x1a, 0x75, 0xc0);
	E(CF_ERR_TRUNCATED, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x59, 0x01);
	E(CF_ERR_TRUNCATED, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x5b, 0, 0, 0, 0);
	/* Lengths beyond the input. */
	E(CF_ERR_TRUNCATED, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x44, 1, 2, 3);
	E(CF_ERR_TRUNCATED, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x5a, 0x00, 0x01, 0x00, 0x00, 1);
	/* 8-byte lengths: beyond the limit, and 2^64-1. */
	E(CF_ERR_TOO_BIG, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x5b, 0, 0, 0, 1, 0, 0, 0, 0, 1);
	E(CF_ERR_TOO_BIG, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0xff, 0xff, 1);
	/* Indefinite lengths and reserved additional information. */
	E(CF_ERR_PARSE, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x5f, 0x41, 0x00, 0xff);
	E(CF_ERR_PARSE, 0xdf, 0x40);
	E(CF_ERR_PARSE, 0xdc, 0x40);
	E(CF_ERR_PARSE, 0xdd, 0x40);
	E(CF_ERR_PARSE, 0xde, 0x40);
	E(CF_ERR_PARSE, 0xc6, 0x5c);
	/* Trailing bytes. */
	E(CF_ERR_TRAILING, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x41, 0x00, 0x00);
	E(CF_ERR_TRAILING, 0xc6, 0x40, 0xc6, 0x40);
	/* Wrong major types: a bare bstr, a tagged text string, a nested tag, an int. */
	E(CF_ERR_PARSE, 0x41, 0x00);
	E(CF_ERR_PARSE, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x61, 'a');
	E(CF_ERR_PARSE, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0xc6, 0x40);
	E(CF_ERR_PARSE, 0x00);
	E(CF_ERR_PARSE, 0xda, 0x00, 0x1a, 0x75, 0xc0, 0x80);
	/* Non-minimal heads, in the tag and in the length. */
	E(CF_ERR_PARSE, 0xd8, 0x06, 0x40);
	E(CF_ERR_PARSE, 0xd8, 0x17, 0x40);
	E(CF_ERR_PARSE, 0xd9, 0x00, 0xff, 0x40);
	E(CF_ERR_PARSE, 0xda, 0x00, 0x00, 0xff, 0xff, 0x40);
	E(CF_ERR_PARSE, 0xdb, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1a, 0x75, 0xc0, 0x40);
	E(CF_ERR_PARSE, 0xc6, 0x58, 0x01, 0xaa);
	E(CF_ERR_PARSE, 0xc6, 0x59, 0x00, 0x01, 0xaa);
	E(CF_ERR_PARSE, 0xc6, 0x5a, 0x00, 0x00, 0x00, 0x01, 0xaa);
	E(CF_ERR_PARSE, 0xc6, 0x5b, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa);
#undef E
	/* Minimal boundary values are accepted. */
	static const uint8_t b24[] = { 0xd8, 0x18, 0x40 };
	decode_ok(b24, sizeof(b24), 24, 0);
}

static void test_tags(void **state)
{
	(void)state;
	uint64_t t;
	cf_tee_kind k;
	assert_int_equal(cf_ratls_tag_of(CF_TEE_SOFT, &t), CF_OK);
	assert_true(t == 0x1a75c0);
	assert_int_equal(cf_ratls_tag_of(CF_TEE_SNP, &t), CF_OK);
	assert_true(t == 0x1a7504);
	assert_int_equal(cf_ratls_tag_of(CF_TEE_TDX, &t), CF_OK);
	assert_true(t == 0x1a7501);
	assert_int_equal(cf_ratls_tag_of(CF_TEE_CSV, &t), CF_OK);
	assert_true(t == 0x1a75c1);
	assert_int_equal(cf_ratls_tag_of(CF_TEE_NONE, &t), CF_ERR_UNSUPPORTED);
	static const uint8_t tdx[8] = { 4, 0, 2, 0, 0x81, 0, 0, 0 };
	static const uint8_t sgx[8] = { 3, 0, 2, 0, 0, 0, 0, 0 };
	assert_int_equal(cf_ratls_kind_of(CF_RATLS_TAG_INTEL, tdx, 8, &k), CF_OK);
	assert_int_equal(k, CF_TEE_TDX);
	assert_int_equal(cf_ratls_kind_of(CF_RATLS_TAG_INTEL, sgx, 8, &k), CF_OK);
	assert_int_equal(k, CF_TEE_SGX);
	assert_int_equal(cf_ratls_kind_of(CF_RATLS_TAG_INTEL, sgx, 2, &k), CF_OK);
	assert_int_equal(k, CF_TEE_SGX);
	assert_int_equal(cf_ratls_kind_of(CF_RATLS_TAG_SNP, NULL, 0, &k), CF_OK);
	assert_int_equal(k, CF_TEE_SNP);
	assert_int_equal(cf_ratls_kind_of(0x1a75ff, NULL, 0, &k), CF_ERR_UNSUPPORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cbor_roundtrip),
		cmocka_unit_test(test_cbor_hostile),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_handshake_ok),
		cmocka_unit_test(test_handshake_other_key),
		cmocka_unit_test(test_handshake_other_platform),
		cmocka_unit_test(test_handshake_wrong_measurement),
		cmocka_unit_test(test_handshake_debug),
		cmocka_unit_test(test_handshake_no_extension),
		cmocka_unit_test(test_handshake_bad_cbor),
		cmocka_unit_test(test_verify_expired),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
