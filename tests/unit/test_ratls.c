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
#include <openssl/x509v3.h>

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

/* --- an attested CA and the leaves it signs (the KMS's chain) --- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static X509 *base_cert(const X509_NAME *issuer, const char *cn, EVP_PKEY *pub)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	uint8_t serial[8];
	time_t now = time(NULL);
	assert_non_null(x);
	assert_non_null(name);
	assert_int_equal(cf_random(serial, sizeof(serial)), CF_OK);
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	assert_non_null(bn);
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	assert_true(X509_set_version(x, X509_VERSION_3));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
					       -1, -1, 0));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, issuer ? issuer : name));
	assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now));
	assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 0, 3600, &now));
	assert_true(X509_set_pubkey(x, pub));
	X509_NAME_free(name);
	return x;
}

/* A CA as kms/ca.c makes it, with key; evidence from s over the key's hash, none if s is NULL. */
static X509 *make_ca_with(struct soft_ev *s, EVP_PKEY *key)
{
	X509 *x = base_cert(NULL, "coffer-kms CA test", key);
	add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
	add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
	add_ext(x, x, NID_subject_key_identifier, "hash");
	if (s) {
		uint8_t rd[CF_REPORT_DATA_LEN];
		cf_buf ev, cbor;
		cf_buf_init(&ev, CF_RATLS_MAX_EVIDENCE, false);
		cf_buf_init(&cbor, CF_RATLS_MAX_EVIDENCE + 32, false);
		assert_int_equal(cf_ratls_key_hash(key, rd), CF_OK);
		assert_int_equal(soft_evidence(s, rd, &ev), CF_OK);
		assert_int_equal(cf_ratls_cbor_encode(CF_RATLS_TAG_SOFT, ev.data, ev.len, &cbor), CF_OK);
		ASN1_OBJECT *oid = OBJ_txt2obj(CF_RATLS_OID, 1);
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		assert_non_null(oid);
		assert_non_null(os);
		assert_true(ASN1_OCTET_STRING_set(os, cbor.data, (int)cbor.len));
		X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
		assert_non_null(e);
		assert_true(X509_add_ext(x, e, -1));
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(os);
		ASN1_OBJECT_free(oid);
		cf_buf_free(&ev);
		cf_buf_free(&cbor);
	}
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static void make_ca(struct soft_ev *s, EVP_PKEY **key, X509 **cert)
{
	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	*cert = make_ca_with(s, *key);
}

/* A serverAuth leaf for san ("DNS:localhost,IP:127.0.0.1"), signed by ca_key as ca. */
static void make_leaf(EVP_PKEY *ca_key, X509 *ca, const char *san, EVP_PKEY **key, X509 **cert)
{
	*key = EVP_EC_gen("P-256");
	assert_non_null(*key);
	X509 *x = base_cert(X509_get_subject_name(ca), "leaf", *key);
	add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(x, ca, NID_key_usage, "critical,digitalSignature");
	add_ext(x, ca, NID_ext_key_usage, "serverAuth");
	add_ext(x, ca, NID_subject_alt_name, san);
	if (X509_get_ext_by_NID(ca, NID_subject_key_identifier, -1) >= 0)
		add_ext(x, ca, NID_authority_key_identifier, "keyid:always");
	assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	*cert = x;
}

static STACK_OF(X509) *chain_of(X509 *leaf, X509 *ca)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	assert_non_null(sk);
	assert_true(sk_X509_push(sk, leaf) > 0);
	if (ca)
		assert_true(sk_X509_push(sk, ca) > 0);
	return sk; /* borrows: free with sk_X509_free */
}

/* Verifies [leaf, ca] for host; want is the first failed check, or NULL for a pass. */
static void expect_chain(X509 *leaf, X509 *ca, const char *host, const json_t *policy,
			 const char *want)
{
	cf_ratls_verifier cfg;
	cf_verdict v = { 0 };
	X509 *found = NULL;
	STACK_OF(X509) *sk = chain_of(leaf, ca);
	verifier_init(&cfg, policy);
	assert_int_equal(cf_ratls_verify_ca_chain(sk, host, &cfg, &v, &found), CF_OK);
	const cf_check *f = cf_verdict_first_failure(&v);
	if (f)
		printf("# %s: %s: expected %s, got %s\n", host, f->name, f->expected, f->actual);
	if (!want) {
		assert_null(f);
		assert_true(cf_verdict_ok(&v));
		assert_non_null(found);
		assert_int_equal(X509_cmp(found, ca), 0);
		static const char *const must[] = { "ratls_ca", "key_binding", "ca_chain", "hostname" };
		for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++) {
			const cf_check *c = find_check(&v, must[i]);
			assert_non_null(c);
			assert_int_equal(c->state, CF_CHECK_PASS);
		}
	} else {
		assert_non_null(f);
		assert_string_equal(f->name, want);
		assert_false(cf_verdict_ok(&v));
	}
	X509_free(found);
	cf_verdict_free(&v);
	sk_X509_free(sk);
}

/*
 * A TLS 1.3 handshake: the server sends leaf and ca (if any), the client
 * verifies in CA mode for host (none if NULL). Returns whether it passed;
 * *check gets the client's failed check.
 */
static bool handshake_ca(EVP_PKEY *key, X509 *leaf, X509 *ca, const char *host, char *check,
			 size_t checklen)
{
	int sv[2];
	bool sdone = false, cdone = false, ok = false;
	cf_ratls_verifier cfg;
	verifier_init(&cfg, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(sctx);
	assert_non_null(cctx);
	assert_true(SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION));
	assert_true(SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION));
	assert_int_equal(cf_ratls_ssl_ctx_use(sctx, key, leaf), CF_OK);
	if (ca)
		assert_int_equal(SSL_CTX_add1_chain_cert(sctx, ca), 1);
	assert_int_equal(cf_ratls_ssl_ctx_setup_ca(cctx, &cfg), CF_OK);
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	assert_non_null(s);
	assert_non_null(c);
	if (host)
		assert_int_equal(cf_ratls_ssl_set_host(c, host), CF_OK);
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
	const char *f = cf_ratls_last_check(c);
	const char *why = cf_ratls_last_error(c);
	snprintf(check, checklen, "%s", f ? f : "");
	if (why)
		printf("# handshake refused: %s\n", why);
	if (ok) {
		assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
		assert_null(f);
		assert_non_null(cf_ratls_peer_ca(c));
		assert_int_equal(X509_cmp(cf_ratls_peer_ca(c), ca), 0);
		const json_t *vj = cf_ratls_last_verdict(c);
		assert_non_null(vj);
		assert_true(json_is_true(json_object_get(vj, "verified")));
	} else {
		assert_non_null(why);
		assert_null(cf_ratls_peer_ca(c));
	}
	ERR_clear_error();
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

static void test_ca_chain_ok(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *ca_key, *key;
	X509 *ca, *leaf;
	char check[64];
	make_ca(&s, &ca_key, &ca);
	make_leaf(ca_key, ca, "DNS:localhost,IP:127.0.0.1,IP:::1", &key, &leaf);
	char mhex[97];
	cf_hex_encode(MEASUREMENT, 48, mhex);
	json_t *policy = json_pack("{s:[s], s:{s:[s]}}", "tee", "soft", "measurements",
				   "measurement", mhex);
	assert_non_null(policy);
	expect_chain(leaf, ca, "localhost", policy, NULL);
	expect_chain(leaf, ca, "LocalHost", NULL, NULL);
	expect_chain(leaf, ca, "127.0.0.1", NULL, NULL);
	expect_chain(leaf, ca, "::1", NULL, NULL);
	assert_true(handshake_ca(key, leaf, ca, "127.0.0.1", check, sizeof(check)));
	assert_true(handshake_ca(key, leaf, ca, "localhost", check, sizeof(check)));
	/* The policy applies to the CA's evidence. */
	char zero[97];
	memset(zero, '0', 96);
	zero[96] = 0;
	json_t *wrong = json_pack("{s:{s:[s]}}", "measurements", "measurement", zero);
	assert_non_null(wrong);
	expect_chain(leaf, ca, "localhost", wrong, "policy_measurement_measurement");
	json_decref(wrong);
	json_decref(policy);
	EVP_PKEY_free(key);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
}

static void test_ca_chain_other_ca(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *ca_key, *other_key, *key;
	X509 *ca, *other, *leaf;
	char check[64];
	make_ca(&s, &ca_key, &ca);
	make_ca(&s, &other_key, &other); /* attested too, but not the one sent */
	make_leaf(other_key, other, "DNS:localhost,IP:127.0.0.1", &key, &leaf);
	expect_chain(leaf, ca, "localhost", NULL, "ca_chain");
	assert_false(handshake_ca(key, leaf, ca, "localhost", check, sizeof(check)));
	assert_string_equal(check, "ca_chain");
	EVP_PKEY_free(key);
	X509_free(leaf);
	EVP_PKEY_free(other_key);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
}

static void test_ca_chain_hostname(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *ca_key, *key;
	X509 *ca, *leaf;
	char check[64];
	make_ca(&s, &ca_key, &ca);
	make_leaf(ca_key, ca, "DNS:localhost,IP:127.0.0.1", &key, &leaf);
	expect_chain(leaf, ca, "example.com", NULL, "hostname");
	expect_chain(leaf, ca, "127.0.0.2", NULL, "hostname");
	expect_chain(leaf, ca, "::1", NULL, "hostname");
	/* The subject CN is never a name: "leaf" is only the CN. */
	expect_chain(leaf, ca, "leaf", NULL, "hostname");
	assert_false(handshake_ca(key, leaf, ca, "kms.example.com", check, sizeof(check)));
	assert_string_equal(check, "hostname");
	/* A client that never said which host it wants is refused, not waved through. */
	assert_false(handshake_ca(key, leaf, ca, NULL, check, sizeof(check)));
	assert_string_equal(check, "hostname");
	EVP_PKEY_free(key);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
}

static void test_ca_chain_no_extension(void **state)
{
	(void)state;
	EVP_PKEY *ca_key, *key;
	X509 *ca, *leaf;
	char check[64];
	make_ca(NULL, &ca_key, &ca);
	make_leaf(ca_key, ca, "DNS:localhost", &key, &leaf);
	expect_chain(leaf, ca, "localhost", NULL, "ratls_extension");
	assert_false(handshake_ca(key, leaf, ca, "localhost", check, sizeof(check)));
	assert_string_equal(check, "ratls_extension");
	EVP_PKEY_free(key);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
}

static void test_ca_chain_other_key(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a, .other_key = true };
	EVP_PKEY *ca_key, *key;
	X509 *ca, *leaf;
	char check[64];
	make_ca(&s, &ca_key, &ca);
	make_leaf(ca_key, ca, "DNS:localhost", &key, &leaf);
	expect_chain(leaf, ca, "localhost", NULL, "key_binding");
	assert_false(handshake_ca(key, leaf, ca, "localhost", check, sizeof(check)));
	assert_string_equal(check, "key_binding");
	EVP_PKEY_free(key);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
}

static void test_ca_chain_no_ca(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *ca_key, *key;
	X509 *ca, *leaf;
	char check[64];
	make_ca(&s, &ca_key, &ca);
	make_leaf(ca_key, ca, "DNS:localhost", &key, &leaf);
	/* The leaf alone: nothing attested to anchor it. */
	expect_chain(leaf, NULL, "localhost", NULL, "ratls_ca");
	assert_false(handshake_ca(key, leaf, NULL, "localhost", check, sizeof(check)));
	assert_string_equal(check, "ratls_ca");
	/* A plain RA-TLS server certificate is not a CA, whatever it signs. */
	struct soft_ev s2 = { .platform = &fx.a };
	EVP_PKEY *rkey, *lkey;
	X509 *rcert, *lcert;
	make_soft_cert(&s2, &rkey, &rcert);
	make_leaf(rkey, rcert, "DNS:localhost", &lkey, &lcert);
	expect_chain(lcert, rcert, "localhost", NULL, "ca_chain");
	EVP_PKEY_free(lkey);
	X509_free(lcert);
	EVP_PKEY_free(rkey);
	X509_free(rcert);
	/* Bad arguments are errors, not verdicts. */
	cf_ratls_verifier cfg;
	cf_verdict v = { 0 };
	STACK_OF(X509) *sk = chain_of(leaf, ca);
	verifier_init(&cfg, NULL);
	assert_int_equal(cf_ratls_verify_ca_chain(sk, NULL, &cfg, &v, NULL), CF_ERR_ARG);
	assert_int_equal(cf_ratls_verify_ca_chain(sk, "", &cfg, &v, NULL), CF_ERR_ARG);
	sk_X509_free(sk);
	EVP_PKEY_free(key);
	X509_free(leaf);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
}

/* The KMS reissues its CA at each start with the same key: old pins keep working. */
static void test_ca_reissued(void **state)
{
	(void)state;
	struct soft_ev s = { .platform = &fx.a };
	EVP_PKEY *ca_key, *key;
	X509 *old_ca, *new_ca, *leaf;
	make_ca(&s, &ca_key, &old_ca);
	new_ca = make_ca_with(&s, ca_key);
	assert_int_not_equal(X509_cmp(old_ca, new_ca), 0);
	make_leaf(ca_key, new_ca, "DNS:localhost", &key, &leaf);
	expect_chain(leaf, old_ca, "localhost", NULL, NULL);
	/* As curl --cacert old.pem sees it: the new CA arrives untrusted, the old one is pinned. */
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = chain_of(new_ca, NULL);
	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, old_ca), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
	int ok = X509_verify_cert(ctx);
	if (ok != 1)
		printf("# %s\n", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	assert_int_equal(ok, 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_free(untrusted);
	EVP_PKEY_free(key);
	X509_free(leaf);
	X509_free(new_ca);
	EVP_PKEY_free(ca_key);
	X509_free(old_ca);
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
		cmocka_unit_test(test_ca_chain_ok),
		cmocka_unit_test(test_ca_chain_other_ca),
		cmocka_unit_test(test_ca_chain_hostname),
		cmocka_unit_test(test_ca_chain_no_extension),
		cmocka_unit_test(test_ca_chain_other_key),
		cmocka_unit_test(test_ca_chain_no_ca),
		cmocka_unit_test(test_ca_reissued),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
