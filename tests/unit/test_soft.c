/*
 * Unit tests for lib/tee/: the soft TEE report (encode, sign, strict parse,
 * verify), the platform key directory, sealing keys, the launcher<->enclave
 * protocol client and the provider table. Hostile input throughout: every
 * single-bit flip of a report, structurally invalid reports re-signed with
 * the right key, swapped and over-readable key files, oversize replies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/soft.h"
#include "coffer/tee.h"

/* --- helpers --- */

struct fixture {
	char root[64];
	char dir_a[128], dir_b[128];
	cf_soft_platform a, b;
	cf_buf cert_a, cert_b;
};

static struct fixture fx;

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tmpdir(char *out, size_t cap)
{
	snprintf(out, cap, "/tmp/coffer-test-soft-XXXXXX");
	assert_non_null(mkdtemp(out));
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static size_t read_file(const char *path, uint8_t *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, out, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 13);
}

static void sample_report(cf_soft_report *r, const uint8_t platform_id[32])
{
	memset(r, 0, sizeof(*r));
	r->version = CF_SOFT_REPORT_VERSION;
	r->flags = CF_SOFT_FLAG_DEBUG;
	r->launch_time = 0x0123456789abcdefull;
	fill(r->instance_id, 16, 1);
	fill(r->measurement, 48, 2);
	fill(r->report_data, 64, 3);
	memcpy(r->platform_id, platform_id, 32);
	strcpy(r->launcher_version, "0.1.0");
}

/* Signs a hand-crafted signed region exactly as the platform would. */
static void sign_region(EVP_PKEY *key, const uint8_t region[CF_SOFT_SIGNED_LEN],
			uint8_t out[CF_SOFT_REPORT_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[160];
	size_t derlen = sizeof(der);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, der, &derlen, region, CF_SOFT_SIGNED_LEN), 1);
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	assert_non_null(sig);
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(sig, &r, &s);
	memcpy(out, region, CF_SOFT_SIGNED_LEN);
	assert_int_equal(BN_bn2binpad(r, out + CF_SOFT_SIGNED_LEN, 48), 48);
	assert_int_equal(BN_bn2binpad(s, out + CF_SOFT_SIGNED_LEN + 48, 48), 48);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
}

/* A self-signed certificate (PEM, malloc'd) for key. */
static char *self_signed_pem(EVP_PKEY *key, const EVP_MD *md, size_t *len)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	X509_NAME *name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)"test", -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, key, md) > 0);
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	assert_true(n > 0);
	char *out = malloc((size_t)n + 1);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	out[n] = 0;
	*len = (size_t)n;
	BIO_free(bio);
	X509_free(x);
	return out;
}

static int group_setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.root, sizeof(fx.root), "/tmp/coffer-test-soft-XXXXXX");
	if (!mkdtemp(fx.root))
		return -1;
	snprintf(fx.dir_a, sizeof(fx.dir_a), "%s/a", fx.root);
	snprintf(fx.dir_b, sizeof(fx.dir_b), "%s/b", fx.root);
	cf_buf_init(&fx.cert_a, 1 << 16, false);
	cf_buf_init(&fx.cert_b, 1 << 16, false);
	if (cf_soft_platform_init(fx.dir_a, "host-a", false) != CF_OK ||
	    cf_soft_platform_init(fx.dir_b, "host-b", false) != CF_OK ||
	    cf_soft_platform_load(fx.dir_a, &fx.a) != CF_OK ||
	    cf_soft_platform_load(fx.dir_b, &fx.b) != CF_OK ||
	    cf_soft_platform_cert(fx.dir_a, &fx.cert_a) != CF_OK ||
	    cf_soft_platform_cert(fx.dir_b, &fx.cert_b) != CF_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cf_soft_platform_free(&fx.a);
	cf_soft_platform_free(&fx.b);
	cf_buf_free(&fx.cert_a);
	cf_buf_free(&fx.cert_b);
	rm_rf(fx.root);
	return 0;
}

static cf_err verify_a(const uint8_t *data, size_t len, cf_soft_report *out)
{
	return cf_soft_report_verify(data, len, (const char *)fx.cert_a.data, fx.cert_a.len, out);
}

/* --- reports --- */

static void test_report_encode_layout(void **state)
{
	(void)state;
	cf_soft_report r;
	uint8_t out[CF_SOFT_SIGNED_LEN];
	sample_report(&r, fx.a.platform_id);
	memset(out, 0xaa, sizeof(out));
	cf_soft_report_encode(&r, out);
	assert_memory_equal(out, "CFSR", 4);
	assert_int_equal(out[4], 1);
	assert_int_equal(out[5], 0);
	assert_int_equal(out[6], CF_TEE_SOFT);
	assert_int_equal(out[7], 0);
	static const uint8_t flags[4] = { 1, 0, 0, 0 };
	assert_memory_equal(out + 8, flags, 4);
	static const uint8_t zero[56] = { 0 };
	assert_memory_equal(out + 12, zero, 4);
	static const uint8_t t[8] = { 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01 };
	assert_memory_equal(out + 16, t, 8);
	assert_memory_equal(out + 24, r.instance_id, 16);
	assert_memory_equal(out + 40, r.measurement, 48);
	assert_memory_equal(out + 88, r.report_data, 64);
	assert_memory_equal(out + 152, r.platform_id, 32);
	assert_memory_equal(out + 184, "0.1.0\0\0\0\0\0\0\0\0\0\0\0", 16);
	assert_memory_equal(out + 200, zero, 56);
}

static void test_report_roundtrip(void **state)
{
	(void)state;
	cf_soft_report r, got;
	uint8_t rep[CF_SOFT_REPORT_LEN];
	sample_report(&r, fx.a.platform_id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);
	assert_int_equal(got.version, 1);
	assert_int_equal(got.flags, CF_SOFT_FLAG_DEBUG);
	assert_true(got.launch_time == r.launch_time);
	assert_memory_equal(got.instance_id, r.instance_id, 16);
	assert_memory_equal(got.measurement, r.measurement, 48);
	assert_memory_equal(got.report_data, r.report_data, 64);
	assert_memory_equal(got.platform_id, fx.a.platform_id, 32);
	assert_string_equal(got.launcher_version, "0.1.0");

	/* Parse alone agrees. */
	cf_soft_report parsed;
	assert_int_equal(cf_soft_report_parse(rep, sizeof(rep), &parsed), CF_OK);
	assert_memory_equal(&parsed, &got, sizeof(got));

	/* Non-debug, extreme time, a full 16-character version, empty version. */
	r.flags = 0;
	r.launch_time = UINT64_MAX;
	strcpy(r.launcher_version, "0123456789abcdef");
	memset(r.report_data, 0xff, 64);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);
	assert_int_equal(got.flags, 0);
	assert_true(got.launch_time == UINT64_MAX);
	assert_string_equal(got.launcher_version, "0123456789abcdef");
	assert_memory_equal(got.report_data, r.report_data, 64);
	r.launcher_version[0] = 0;
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);
	assert_string_equal(got.launcher_version, "");

	/* ECDSA is randomised: two signatures differ, both verify. */
	uint8_t rep2[CF_SOFT_REPORT_LEN];
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep2), CF_OK);
	assert_memory_equal(rep, rep2, CF_SOFT_SIGNED_LEN);
	assert_memory_not_equal(rep + CF_SOFT_SIGNED_LEN, rep2 + CF_SOFT_SIGNED_LEN, CF_SOFT_SIG_LEN);
	assert_int_equal(verify_a(rep2, sizeof(rep2), &got), CF_OK);
}

static void test_report_every_bit_flip(void **state)
{
	(void)state;
	cf_soft_report r, got;
	uint8_t rep[CF_SOFT_REPORT_LEN];
	sample_report(&r, fx.a.platform_id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);
	size_t auth = 0, parse = 0;
	for (size_t bit = 0; bit < CF_SOFT_REPORT_LEN * 8; bit++) {
		rep[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cf_soft_report tmp;
		cf_err prc = cf_soft_report_parse(rep, sizeof(rep), &tmp);
		cf_err rc = verify_a(rep, sizeof(rep), &got);
		if (rc == CF_OK)
			fail_msg("bit %zu flipped still verifies", bit);
		/* A flip that still parses must be caught by the signature (or id). */
		if (prc == CF_OK) {
			assert_int_equal(rc, CF_ERR_AUTH);
			auth++;
		} else {
			assert_int_equal(rc, prc);
			parse++;
		}
		rep[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(auth + parse, CF_SOFT_REPORT_LEN * 8);
	assert_true(parse > 0 && auth > 0);
	/* Unchanged at the end. */
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);
}

static void test_report_lengths(void **state)
{
	(void)state;
	cf_soft_report r, got;
	uint8_t rep[CF_SOFT_REPORT_LEN + 1];
	sample_report(&r, fx.a.platform_id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	rep[CF_SOFT_REPORT_LEN] = 0;
	assert_int_equal(cf_soft_report_parse(rep, 351, &got), CF_ERR_TRUNCATED);
	assert_int_equal(cf_soft_report_parse(rep, 353, &got), CF_ERR_TRAILING);
	assert_int_equal(cf_soft_report_parse(rep, 0, &got), CF_ERR_TRUNCATED);
	assert_int_equal(cf_soft_report_parse(NULL, 0, &got), CF_ERR_TRUNCATED);
	assert_int_equal(cf_soft_report_parse(rep, CF_SOFT_SIGNED_LEN, &got), CF_ERR_TRUNCATED);
	assert_int_equal(verify_a(rep, 351, &got), CF_ERR_TRUNCATED);
	assert_int_equal(verify_a(rep, 353, &got), CF_ERR_TRAILING);
	assert_int_equal(verify_a(rep, 0, &got), CF_ERR_TRUNCATED);
	assert_int_equal(verify_a(rep, SIZE_MAX, &got), CF_ERR_TRAILING);
	assert_int_equal(verify_a(rep, CF_SOFT_REPORT_LEN, &got), CF_OK);
}

/*
 * Structurally invalid signed regions, correctly signed with the platform
 * key: only the parser can reject them.
 */
static void expect_parser_rejects(const uint8_t region[CF_SOFT_SIGNED_LEN], cf_err want,
				  const char *what)
{
	uint8_t rep[CF_SOFT_REPORT_LEN];
	cf_soft_report got;
	sign_region(fx.a.key, region, rep);
	cf_err rc = verify_a(rep, sizeof(rep), &got);
	if (rc != want)
		fail_msg("%s: verify gave %s, want %s", what, cf_errname(rc), cf_errname(want));
	assert_int_equal(cf_soft_report_parse(rep, sizeof(rep), &got), want);
}

static void test_report_strict_resigned(void **state)
{
	(void)state;
	cf_soft_report r;
	uint8_t good[CF_SOFT_SIGNED_LEN], region[CF_SOFT_SIGNED_LEN], rep[CF_SOFT_REPORT_LEN];
	char what[64];
	sample_report(&r, fx.a.platform_id);
	cf_soft_report_encode(&r, good);

	/* Control: the hand signing is right, so rejections below are the parser's. */
	cf_soft_report got;
	sign_region(fx.a.key, good, rep);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);

	/* Reserved u32 at 12 and the 56 reserved bytes at 200. */
	for (size_t i = 12; i < 16; i++) {
		memcpy(region, good, sizeof(region));
		region[i] = 0x01;
		snprintf(what, sizeof(what), "reserved byte %zu", i);
		expect_parser_rejects(region, CF_ERR_PARSE, what);
	}
	for (size_t i = 200; i < 256; i++) {
		memcpy(region, good, sizeof(region));
		region[i] = (uint8_t)(i == 255 ? 0x80 : 0x01);
		snprintf(what, sizeof(what), "reserved byte %zu", i);
		expect_parser_rejects(region, CF_ERR_PARSE, what);
	}
	/* Every unknown flag bit. */
	for (unsigned bit = 1; bit < 32; bit++) {
		memcpy(region, good, sizeof(region));
		uint32_t flags = CF_SOFT_FLAG_DEBUG | (1u << bit);
		for (int i = 0; i < 4; i++)
			region[8 + i] = (uint8_t)(flags >> (8 * i));
		snprintf(what, sizeof(what), "flag bit %u", bit);
		expect_parser_rejects(region, CF_ERR_PARSE, what);
	}
	/* Magic. */
	static const char *const magics[] = { "cfsr", "CFS\0", "\0\0\0\0", "RSFC", "CFSQ" };
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		memcpy(region, good, sizeof(region));
		memcpy(region, magics[i], 4);
		expect_parser_rejects(region, CF_ERR_PARSE, "magic");
	}
	/* Version 0, 2, 0x100, 0xffff. */
	static const uint16_t versions[] = { 0, 2, 0x100, 0xffff };
	for (size_t i = 0; i < 4; i++) {
		memcpy(region, good, sizeof(region));
		region[4] = (uint8_t)versions[i];
		region[5] = (uint8_t)(versions[i] >> 8);
		expect_parser_rejects(region, CF_ERR_UNSUPPORTED, "version");
	}
	/* tee: none, sgx, snp, and soft in the high byte. */
	static const uint16_t tees[] = { 0, 2, 4, 0x100, 0x0101 };
	for (size_t i = 0; i < sizeof(tees) / sizeof(tees[0]); i++) {
		memcpy(region, good, sizeof(region));
		region[6] = (uint8_t)tees[i];
		region[7] = (uint8_t)(tees[i] >> 8);
		expect_parser_rejects(region, CF_ERR_PARSE, "tee");
	}
	/* launcher_version: control characters, DEL, high bytes, junk after the NUL. */
	static const uint8_t bad_chars[] = { 0x01, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc3, 0xff };
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		for (size_t pos = 0; pos < 16; pos += 5) {
			memcpy(region, good, sizeof(region));
			memset(region + 184, 'v', 16);
			region[184 + pos] = bad_chars[i];
			snprintf(what, sizeof(what), "version char 0x%02x at %zu", bad_chars[i], pos);
			expect_parser_rejects(region, CF_ERR_PARSE, what);
		}
	}
	static const char *const not_padded[] = { "0.1\0x", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0y",
						  "\0a", "0.1.0\0\0\0\0\0\0\0\0\0\0\x01" };
	static const size_t not_padded_len[] = { 5, 16, 2, 16 };
	for (size_t i = 0; i < 4; i++) {
		memcpy(region, good, sizeof(region));
		memset(region + 184, 0, 16);
		memcpy(region + 184, not_padded[i], not_padded_len[i]);
		snprintf(what, sizeof(what), "version not NUL-padded #%zu", i);
		expect_parser_rejects(region, CF_ERR_PARSE, what);
	}
	/* Edge: space and tilde are printable, and accepted. */
	memcpy(region, good, sizeof(region));
	memcpy(region + 184, " ~ ~ ~ ~ ~ ~ ~ ~", 16);
	sign_region(fx.a.key, region, rep);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_OK);
	assert_string_equal(got.launcher_version, " ~ ~ ~ ~ ~ ~ ~ ~");
}

static void test_report_other_platform(void **state)
{
	(void)state;
	cf_soft_report r, got;
	uint8_t rep[CF_SOFT_REPORT_LEN];
	/* A's report, B's certificate: the platform id does not name B. */
	sample_report(&r, fx.a.platform_id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)fx.cert_b.data,
					       fx.cert_b.len, &got),
			 CF_ERR_AUTH);
	/* A claims B's platform id: the signature does not verify under B. */
	sample_report(&r, fx.b.platform_id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)fx.cert_b.data,
					       fx.cert_b.len, &got),
			 CF_ERR_AUTH);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_ERR_AUTH);
	/* B's own report verifies under B only. */
	assert_int_equal(cf_soft_report_sign(fx.b.key, &r, rep), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)fx.cert_b.data,
					       fx.cert_b.len, &got),
			 CF_OK);
	assert_int_equal(verify_a(rep, sizeof(rep), &got), CF_ERR_AUTH);
	/* All-zero and all-ones signatures. */
	memset(rep + CF_SOFT_SIGNED_LEN, 0, CF_SOFT_SIG_LEN);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)fx.cert_b.data,
					       fx.cert_b.len, &got),
			 CF_ERR_AUTH);
	memset(rep + CF_SOFT_SIGNED_LEN, 0xff, CF_SOFT_SIG_LEN);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)fx.cert_b.data,
					       fx.cert_b.len, &got),
			 CF_ERR_AUTH);
}

static void test_report_p256_cert(void **state)
{
	(void)state;
	EVP_PKEY *k256 = EVP_EC_gen("P-256");
	assert_non_null(k256);
	size_t len;
	char *pem = self_signed_pem(k256, EVP_sha256(), &len);
	uint8_t id[32];
	/* The id of any certificate can be computed ... */
	assert_int_equal(cf_soft_cert_platform_id(pem, len, id), CF_OK);
	/* ... but a report naming a P-256 key and signed by it is refused. */
	cf_soft_report r, got;
	uint8_t region[CF_SOFT_SIGNED_LEN], rep[CF_SOFT_REPORT_LEN];
	sample_report(&r, id);
	cf_soft_report_encode(&r, region);
	sign_region(k256, region, rep);
	cf_err rc = cf_soft_report_verify(rep, sizeof(rep), pem, len, &got);
	assert_int_not_equal(rc, CF_OK);
	assert_int_equal(rc, CF_ERR_PARSE);
	/* And a P-384 certificate of a non-platform key still works (control). */
	EVP_PKEY *k384 = EVP_EC_gen("P-384");
	assert_non_null(k384);
	size_t len384;
	char *pem384 = self_signed_pem(k384, EVP_sha384(), &len384);
	assert_int_equal(cf_soft_cert_platform_id(pem384, len384, id), CF_OK);
	sample_report(&r, id);
	assert_int_equal(cf_soft_report_sign(k384, &r, rep), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), pem384, len384, &got), CF_OK);
	/* An Ed25519 certificate is refused too. */
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ed);
	size_t lened;
	char *pemed = self_signed_pem(ed, NULL, &lened);
	assert_int_equal(cf_soft_cert_platform_id(pemed, lened, id), CF_OK);
	sample_report(&r, id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), pemed, lened, &got), CF_ERR_PARSE);
	free(pemed);
	EVP_PKEY_free(ed);
	free(pem384);
	EVP_PKEY_free(k384);
	free(pem);
	EVP_PKEY_free(k256);
}

static void test_report_garbage_pem(void **state)
{
	(void)state;
	cf_soft_report r, got;
	uint8_t rep[CF_SOFT_REPORT_LEN], id[32];
	sample_report(&r, fx.a.platform_id);
	assert_int_equal(cf_soft_report_sign(fx.a.key, &r, rep), CF_OK);

	uint8_t keypem[8192];
	char kpath[256];
	path_in(kpath, sizeof(kpath), fx.dir_a, "key.pem");
	size_t klen = read_file(kpath, keypem, sizeof(keypem));
	char random_bytes[300];
	fill((uint8_t *)random_bytes, sizeof(random_bytes), 77);
	static const char bad_b64[] = "-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n";
	static const char empty_cert[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	struct {
		const char *pem;
		size_t len;
	} cases[] = {
		{ "", 0 },
		{ "garbage", 7 },
		{ bad_b64, sizeof(bad_b64) - 1 },
		{ empty_cert, sizeof(empty_cert) - 1 },
		{ random_bytes, sizeof(random_bytes) },
		{ (const char *)fx.cert_a.data, fx.cert_a.len / 2 }, /* truncated */
		{ (const char *)fx.cert_a.data, 30 },
		{ (const char *)keypem, klen }, /* a private key is not a certificate */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cf_err rc = cf_soft_report_verify(rep, sizeof(rep), cases[i].pem, cases[i].len, &got);
		if (rc != CF_ERR_PARSE)
			fail_msg("case %zu: %s", i, cf_errname(rc));
		assert_int_equal(cf_soft_cert_platform_id(cases[i].pem, cases[i].len, id), CF_ERR_PARSE);
	}
	cf_wipe(keypem, sizeof(keypem));
	/* A length beyond int: refused before OpenSSL sees a truncated (or -1) length. */
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), "garbage", (size_t)UINT32_MAX, &got),
			 CF_ERR_TOO_BIG);
	assert_int_equal(cf_soft_cert_platform_id("garbage", (size_t)INT32_MAX + 1, id),
			 CF_ERR_TOO_BIG);
	/* The real certificate with junk after it: the first certificate counts. */
	cf_buf b;
	cf_buf_init(&b, 1 << 16, false);
	assert_int_equal(cf_buf_append(&b, fx.cert_a.data, fx.cert_a.len), CF_OK);
	assert_int_equal(cf_buf_append_str(&b, "junk"), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)b.data, b.len, &got),
			 CF_OK);
	cf_buf_free(&b);
}

/* --- platform --- */

static void test_platform_init_modes(void **state)
{
	(void)state;
	char tmp[64], dir[128], p[256];
	make_tmpdir(tmp, sizeof(tmp));
	path_in(dir, sizeof(dir), tmp, "platform");
	mode_t old = umask(0);
	cf_err rc = cf_soft_platform_init(dir, "host", false);
	umask(old);
	assert_int_equal(rc, CF_OK);
	assert_int_equal(mode_of(dir), 0700);
	path_in(p, sizeof(p), dir, "key.pem");
	assert_int_equal(mode_of(p), 0600);
	path_in(p, sizeof(p), dir, "seal.secret");
	assert_int_equal(mode_of(p), 0600);
	uint8_t secret[64];
	assert_int_equal(read_file(p, secret, sizeof(secret)), 32);
	path_in(p, sizeof(p), dir, "cert.pem");
	assert_int_equal(mode_of(p), 0644);

	/* The certificate: self-signed, P-384, names the host, id = SHA-256(SPKI). */
	cf_buf cert;
	cf_buf_init(&cert, 1 << 16, false);
	assert_int_equal(cf_soft_platform_cert(dir, &cert), CF_OK);
	BIO *bio = BIO_new_mem_buf(cert.data, (int)cert.len);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	assert_non_null(x);
	EVP_PKEY *pub = X509_get0_pubkey(x);
	assert_int_equal(EVP_PKEY_get_base_id(pub), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(pub), 384);
	assert_int_equal(X509_verify(x, pub), 1);
	char cn[256];
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_non_null(strstr(cn, "host"));
	unsigned char *der = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	assert_true(n > 0);
	uint8_t want[32], id[32];
	assert_int_equal(cf_hash(CF_SHA256, der, (size_t)n, want), CF_OK);
	OPENSSL_free(der);
	assert_int_equal(cf_soft_cert_platform_id((const char *)cert.data, cert.len, id), CF_OK);
	assert_memory_equal(id, want, 32);

	/* Load: the platform id is the certificate's, and reports carry it. */
	cf_soft_platform pl;
	assert_int_equal(cf_soft_platform_load(dir, &pl), CF_OK);
	assert_memory_equal(pl.platform_id, want, 32);
	assert_memory_equal(pl.seal_secret, secret, 32);
	cf_soft_report r, got;
	uint8_t rep[CF_SOFT_REPORT_LEN];
	sample_report(&r, pl.platform_id);
	assert_int_equal(cf_soft_report_sign(pl.key, &r, rep), CF_OK);
	assert_int_equal(cf_soft_report_verify(rep, sizeof(rep), (const char *)cert.data, cert.len,
					       &got),
			 CF_OK);
	assert_memory_equal(got.platform_id, id, 32);
	cf_soft_platform_free(&pl);
	assert_null(pl.key);

	X509_free(x);
	BIO_free(bio);
	cf_buf_free(&cert);
	rm_rf(tmp);
}

static void test_platform_init_overwrite(void **state)
{
	(void)state;
	char tmp[64], kpath[256], spath[256], cpath[256];
	make_tmpdir(tmp, sizeof(tmp));
	/* mkdtemp's existing directory is fine for init. */
	assert_int_equal(cf_soft_platform_init(tmp, NULL, false), CF_OK);
	path_in(kpath, sizeof(kpath), tmp, "key.pem");
	path_in(spath, sizeof(spath), tmp, "seal.secret");
	path_in(cpath, sizeof(cpath), tmp, "cert.pem");
	cf_soft_platform p1, p2;
	assert_int_equal(cf_soft_platform_load(tmp, &p1), CF_OK);
	uint8_t key1[8192], key2[8192];
	size_t k1 = read_file(kpath, key1, sizeof(key1));

	assert_int_equal(cf_soft_platform_init(tmp, "again", false), CF_ERR_ARG);
	size_t k2 = read_file(kpath, key2, sizeof(key2));
	assert_int_equal(k1, k2);
	assert_memory_equal(key1, key2, k1);
	assert_int_equal(cf_soft_platform_load(tmp, &p2), CF_OK);
	assert_memory_equal(p1.platform_id, p2.platform_id, 32);
	cf_soft_platform_free(&p2);

	/* Only seal.secret left over: still refused. */
	assert_int_equal(unlink(kpath), 0);
	assert_int_equal(cf_soft_platform_init(tmp, "again", false), CF_ERR_ARG);

	/* force replaces everything: a new key and a new secret. */
	assert_int_equal(cf_soft_platform_init(tmp, "forced", true), CF_OK);
	assert_int_equal(cf_soft_platform_load(tmp, &p2), CF_OK);
	assert_memory_not_equal(p1.platform_id, p2.platform_id, 32);
	assert_memory_not_equal(p1.seal_secret, p2.seal_secret, 32);
	assert_int_equal(mode_of(kpath), 0600);
	assert_int_equal(mode_of(spath), 0600);
	assert_int_equal(mode_of(cpath), 0644);
	cf_soft_platform_free(&p1);
	cf_soft_platform_free(&p2);

	/* A stale cert.pem alone: init fails and leaves no half platform. */
	assert_int_equal(unlink(kpath), 0);
	assert_int_equal(unlink(spath), 0);
	assert_int_not_equal(cf_soft_platform_init(tmp, "stale", false), CF_OK);
	assert_int_equal(access(kpath, F_OK), -1);
	assert_int_equal(access(spath, F_OK), -1);

	/* Missing parents are created (as `mkdir -p`); path too long is refused. */
	char deep[256];
	path_in(deep, sizeof(deep), tmp, "no/such/dir");
	assert_int_equal(cf_soft_platform_init(deep, "x", false), CF_OK);
	assert_int_equal(mode_of(deep), 0700);
	char *longdir = malloc(5000);
	assert_non_null(longdir);
	memset(longdir, 'a', 4999);
	longdir[0] = '/';
	longdir[4999] = 0;
	assert_int_equal(cf_soft_platform_init(longdir, "x", false), CF_ERR_TOO_BIG);
	cf_soft_platform pl;
	assert_int_equal(cf_soft_platform_load(longdir, &pl), CF_ERR_TOO_BIG);
	free(longdir);

	/*
	 * Long hostnames (cloud FQDNs exceed the 39 characters left after the
	 * CN prefix) and hostile bytes: the CN is cut to X.520's 64 and made
	 * printable, init does not fail.
	 */
	char host[2000];
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	const char *const hosts[] = { "ip-10-0-12-34.eu-west-1.compute.internal.example",
				      "bad\nhost\x01\xff\xc3\xa9", host };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cf_soft_platform_init(tmp, hosts[i], true), CF_OK);
		assert_int_equal(cf_soft_platform_load(tmp, &pl), CF_OK);
		cf_soft_platform_free(&pl);
		cf_buf cert;
		cf_buf_init(&cert, 1 << 16, false);
		assert_int_equal(cf_soft_platform_cert(tmp, &cert), CF_OK);
		BIO *bio = BIO_new_mem_buf(cert.data, (int)cert.len);
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		assert_non_null(x);
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
						  sizeof(cn));
		assert_true(n > 0 && n <= 64);
		for (int j = 0; j < n; j++)
			assert_true(cn[j] >= 0x20 && cn[j] <= 0x7e);
		assert_non_null(strstr(cn, "coffer soft TEE platform "));
		X509_free(x);
		BIO_free(bio);
		cf_buf_free(&cert);
	}
	rm_rf(tmp);
}

static void test_platform_load_refuses_readable(void **state)
{
	(void)state;
	char tmp[64], kpath[256], spath[256];
	cf_soft_platform p;
	make_tmpdir(tmp, sizeof(tmp));
	assert_int_equal(cf_soft_platform_init(tmp, "h", false), CF_OK);
	path_in(kpath, sizeof(kpath), tmp, "key.pem");
	path_in(spath, sizeof(spath), tmp, "seal.secret");
	static const mode_t bad[] = { 0640, 0604, 0620, 0602, 0610, 0601, 0644, 0666 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(kpath, bad[i]), 0);
		assert_int_not_equal(cf_soft_platform_load(tmp, &p), CF_OK);
		assert_null(p.key);
		assert_int_equal(chmod(kpath, 0600), 0);
		assert_int_equal(chmod(spath, bad[i]), 0);
		assert_int_not_equal(cf_soft_platform_load(tmp, &p), CF_OK);
		assert_null(p.key);
		assert_int_equal(chmod(spath, 0600), 0);
	}
	/* 0400 (read-only for the owner) is fine. */
	assert_int_equal(chmod(kpath, 0400), 0);
	assert_int_equal(chmod(spath, 0400), 0);
	assert_int_equal(cf_soft_platform_load(tmp, &p), CF_OK);
	cf_soft_platform_free(&p);
	/* The certificate is public: a 0644 cert is expected, 0600 works too. */
	char cpath[256];
	path_in(cpath, sizeof(cpath), tmp, "cert.pem");
	assert_int_equal(chmod(cpath, 0600), 0);
	assert_int_equal(cf_soft_platform_load(tmp, &p), CF_OK);
	cf_soft_platform_free(&p);
	rm_rf(tmp);
}

static void test_platform_load_hostile_files(void **state)
{
	(void)state;
	char tmp[64], dir[128], kpath[256], spath[256], cpath[256], other[256];
	cf_soft_platform p;
	make_tmpdir(tmp, sizeof(tmp));
	path_in(dir, sizeof(dir), tmp, "p");

	/* Missing directory. */
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_ERR_NOT_FOUND);
	assert_null(p.key);

	assert_int_equal(cf_soft_platform_init(dir, "h", false), CF_OK);
	path_in(kpath, sizeof(kpath), dir, "key.pem");
	path_in(spath, sizeof(spath), dir, "seal.secret");
	path_in(cpath, sizeof(cpath), dir, "cert.pem");

	/* key.pem swapped for another platform's: the certificate does not match. */
	uint8_t orig_key[8192], other_key[8192];
	size_t olen = read_file(kpath, orig_key, sizeof(orig_key));
	path_in(other, sizeof(other), fx.dir_b, "key.pem");
	size_t blen = read_file(other, other_key, sizeof(other_key));
	write_file(kpath, other_key, blen, 0600);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_ERR_AUTH);
	assert_null(p.key);
	static const uint8_t zero32[32] = { 0 };
	assert_memory_equal(p.seal_secret, zero32, 32);
	/* cert.pem swapped as well: consistent again (the id is the new key's). */
	uint8_t orig_cert[8192];
	size_t oclen = read_file(cpath, orig_cert, sizeof(orig_cert));
	write_file(cpath, fx.cert_b.data, fx.cert_b.len, 0644);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_OK);
	assert_memory_equal(p.platform_id, fx.b.platform_id, 32);
	cf_soft_platform_free(&p);
	write_file(kpath, orig_key, olen, 0600);
	write_file(cpath, orig_cert, oclen, 0644);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_OK);
	cf_soft_platform_free(&p);

	/* A P-256 key.pem. */
	EVP_PKEY *k256 = EVP_EC_gen("P-256");
	assert_non_null(k256);
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(bio, k256, NULL, NULL, 0, NULL, NULL), 1);
	char *kp;
	long kn = BIO_get_mem_data(bio, &kp);
	write_file(kpath, kp, (size_t)kn, 0600);
	BIO_free(bio);
	EVP_PKEY_free(k256);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_ERR_PARSE);
	/* Garbage, empty, and a certificate in place of the key. */
	write_file(kpath, "not a key", 9, 0600);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_ERR_PARSE);
	write_file(kpath, "", 0, 0600);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_ERR_PARSE);
	write_file(kpath, orig_cert, oclen, 0600);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_ERR_PARSE);
	write_file(kpath, orig_key, olen, 0600);
	cf_wipe(orig_key, sizeof(orig_key));
	cf_wipe(other_key, sizeof(other_key));

	/* seal.secret of the wrong size. */
	uint8_t secret[64];
	assert_int_equal(read_file(spath, secret, sizeof(secret)), 32);
	static const size_t sizes[] = { 0, 1, 31, 33, 64, 65, 5000 };
	uint8_t big[5000];
	memset(big, 0x5a, sizeof(big));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		write_file(spath, big, sizes[i], 0600);
		cf_err rc = cf_soft_platform_load(dir, &p);
		if (rc == CF_OK)
			fail_msg("seal.secret of %zu bytes accepted", sizes[i]);
		assert_null(p.key);
	}
	write_file(spath, secret, 32, 0600);
	assert_int_equal(cf_soft_platform_load(dir, &p), CF_OK);
	assert_memory_equal(p.seal_secret, secret, 32);
	cf_soft_platform_free(&p);

	rm_rf(tmp);
}

static void test_platform_missing_pieces(void **state)
{
	(void)state;
	char tmp[64], path[256];
	cf_soft_platform p;
	static const char *const names[] = { "key.pem", "seal.secret", "cert.pem" };
	for (size_t i = 0; i < 3; i++) {
		make_tmpdir(tmp, sizeof(tmp));
		assert_int_equal(cf_soft_platform_init(tmp, "h", false), CF_OK);
		path_in(path, sizeof(path), tmp, names[i]);
		assert_int_equal(unlink(path), 0);
		assert_int_equal(cf_soft_platform_load(tmp, &p), CF_ERR_NOT_FOUND);
		assert_null(p.key);
		/* A directory in its place. */
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_not_equal(cf_soft_platform_load(tmp, &p), CF_OK);
		assert_null(p.key);
		rm_rf(tmp);
	}
	cf_buf b;
	cf_buf_init(&b, 1 << 16, false);
	assert_int_equal(cf_soft_platform_cert("/nonexistent/coffer", &b), CF_ERR_NOT_FOUND);
	cf_buf_free(&b);
}

/* --- sealing --- */

static void test_seal_key(void **state)
{
	(void)state;
	uint8_t secret[32], meas[48], k1[32], k2[32];
	fill(secret, 32, 9);
	fill(meas, 48, 10);
	assert_int_equal(cf_soft_seal_key(secret, meas, "data", k1), CF_OK);
	assert_int_equal(cf_soft_seal_key(secret, meas, "data", k2), CF_OK);
	assert_memory_equal(k1, k2, 32);

	/* The documented construction. */
	uint8_t want[32];
	static const char info[] = "coffer-soft-seal-v1data";
	assert_int_equal(cf_hkdf_sha256(secret, 32, meas, 48, info, sizeof(info) - 1, want, 32), CF_OK);
	assert_memory_equal(k1, want, 32);

	/* Any measurement bit changes the key. */
	for (size_t i = 0; i < 48; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			meas[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(cf_soft_seal_key(secret, meas, "data", k2), CF_OK);
			assert_memory_not_equal(k1, k2, 32);
			meas[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Any secret byte. */
	for (size_t i = 0; i < 32; i++) {
		secret[i] ^= 1;
		assert_int_equal(cf_soft_seal_key(secret, meas, "data", k2), CF_OK);
		assert_memory_not_equal(k1, k2, 32);
		secret[i] ^= 1;
	}
	/* Labels: different, prefix, case. */
	static const char *const labels[] = { "datb", "dat", "data ", "Data", "d", "data\n" };
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		assert_int_equal(cf_soft_seal_key(secret, meas, labels[i], k2), CF_OK);
		assert_memory_not_equal(k1, k2, 32);
	}
	/* Label bounds. */
	char label[80];
	memset(label, 'L', sizeof(label));
	label[64] = 0;
	assert_int_equal(cf_soft_seal_key(secret, meas, label, k2), CF_OK);
	label[63] = 0;
	uint8_t k3[32];
	assert_int_equal(cf_soft_seal_key(secret, meas, label, k3), CF_OK);
	assert_memory_not_equal(k2, k3, 32);
	label[63] = 'L';
	label[65] = 0;
	label[64] = 'L';
	assert_int_equal(cf_soft_seal_key(secret, meas, label, k2), CF_ERR_ARG);
	memset(label, 'L', sizeof(label) - 1);
	label[sizeof(label) - 1] = 0;
	assert_int_equal(cf_soft_seal_key(secret, meas, label, k2), CF_ERR_ARG);
	assert_int_equal(cf_soft_seal_key(secret, meas, "", k2), CF_ERR_ARG);

	/* Two platforms, one program: different keys. */
	assert_int_equal(cf_soft_seal_key(fx.a.seal_secret, meas, "data", k1), CF_OK);
	assert_int_equal(cf_soft_seal_key(fx.b.seal_secret, meas, "data", k2), CF_OK);
	assert_memory_not_equal(k1, k2, 32);
}

/* --- the protocol client --- */

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* Queues the agent's reply before the call: SEQPACKET keeps it whole. */
static void agent_reply(int agent, uint8_t status, const void *payload, size_t len)
{
	uint8_t msg[4096];
	assert_true(len < sizeof(msg));
	msg[0] = status;
	if (len)
		memcpy(msg + 1, payload, len);
	assert_int_equal(send(agent, msg, len + 1, 0), (ssize_t)(len + 1));
}

static void test_call_roundtrip(void **state)
{
	(void)state;
	int sv[2];
	pair(sv);
	uint8_t rd[64], reply[400], got[1024];
	size_t len = 12345;
	fill(rd, 64, 4);
	uint8_t payload[CF_SOFT_REPORT_LEN];
	fill(payload, sizeof(payload), 5);
	agent_reply(sv[1], 0, payload, sizeof(payload));
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_REPORT, rd, 64, reply, sizeof(reply), &len),
			 CF_OK);
	assert_int_equal(len, CF_SOFT_REPORT_LEN);
	assert_memory_equal(reply, payload, len);
	/* What the agent received: [version, type, payload]. */
	ssize_t n = recv(sv[1], got, sizeof(got), 0);
	assert_int_equal(n, 66);
	assert_int_equal(got[0], CF_SOFT_PROTO_VERSION);
	assert_int_equal(got[1], CF_SOFT_MSG_REPORT);
	assert_memory_equal(got + 2, rd, 64);

	/* Empty request, empty reply, NULL buffers. */
	agent_reply(sv[1], 0, NULL, 0);
	len = 99;
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, NULL, 0, &len), CF_OK);
	assert_int_equal(len, 0);
	n = recv(sv[1], got, sizeof(got), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[1], CF_SOFT_MSG_INFO);

	/* Reply exactly the capacity. */
	agent_reply(sv[1], 0, payload, 32);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_SEAL, "l", 1, reply, 32, &len), CF_OK);
	assert_int_equal(len, 32);
	n = recv(sv[1], got, sizeof(got), 0);
	assert_int_equal(n, 3);
	assert_int_equal(got[1], CF_SOFT_MSG_SEAL);
	assert_int_equal(got[2], 'l');

	/* Largest request; one byte more is refused before anything is sent. */
	uint8_t big[600];
	fill(big, sizeof(big), 6);
	agent_reply(sv[1], 0, NULL, 0);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_SEAL, big, 510, reply, sizeof(reply), &len),
			 CF_OK);
	n = recv(sv[1], got, sizeof(got), 0);
	assert_int_equal(n, 512);
	assert_memory_equal(got + 2, big, 510);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_SEAL, big, 511, reply, sizeof(reply), &len),
			 CF_ERR_TOO_BIG);
	assert_int_equal(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

static void test_call_errors(void **state)
{
	(void)state;
	int sv[2];
	uint8_t reply[64], payload[1024];
	size_t len = 0;
	fill(payload, sizeof(payload), 8);
	pair(sv);

	/* A status byte is the error. */
	static const uint8_t statuses[] = { CF_ERR_ARG, CF_ERR_TOO_BIG, CF_ERR_CRYPTO, CF_ERR_AUTH,
					    0xff };
	for (size_t i = 0; i < sizeof(statuses); i++) {
		agent_reply(sv[1], statuses[i], payload, 10);
		assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_SEAL, "x", 1, reply, sizeof(reply), &len),
				 statuses[i]);
		assert_int_equal(recv(sv[1], payload + 512, 16, 0), 3);
	}
	/* A reply longer than the buffer. */
	agent_reply(sv[1], 0, payload, 65);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, reply, 64, &len),
			 CF_ERR_TOO_BIG);
	assert_int_equal(recv(sv[1], payload + 512, 16, 0), 2);
	agent_reply(sv[1], 0, payload, 1);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, reply, 0, &len),
			 CF_ERR_TOO_BIG);
	assert_int_equal(recv(sv[1], payload + 512, 16, 0), 2);
	/*
	 * A reply longer than the client's message buffer, with room for it in
	 * the caller's: must not be silently cut to the first bytes.
	 */
	uint8_t large[2048];
	agent_reply(sv[1], 0, payload, 600);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, large, sizeof(large), &len),
			 CF_ERR_TOO_BIG);
	assert_int_equal(recv(sv[1], payload + 512, 16, 0), 2);
	/* The largest reply that fits the client's buffer still works. */
	agent_reply(sv[1], 0, payload, 511);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, large, sizeof(large), &len),
			 CF_OK);
	assert_int_equal(len, 511);
	assert_memory_equal(large, payload, 511);
	assert_int_equal(recv(sv[1], payload + 512, 16, 0), 2);

	/* Peer shuts down its side after the request: end of stream. */
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, reply, 64, &len), CF_ERR_IO);
	/* Peer closed: the send fails (no SIGPIPE). */
	close(sv[1]);
	assert_int_equal(cf_soft_call(sv[0], CF_SOFT_MSG_INFO, NULL, 0, reply, 64, &len), CF_ERR_IO);
	close(sv[0]);
	/* Not a socket at all, and a closed fd. */
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(cf_soft_call(fd, CF_SOFT_MSG_INFO, NULL, 0, reply, 64, &len), CF_ERR_IO);
	close(fd);
	assert_int_equal(cf_soft_call(fd, CF_SOFT_MSG_INFO, NULL, 0, reply, 64, &len), CF_ERR_IO);
	assert_int_equal(cf_soft_call(-1, CF_SOFT_MSG_INFO, NULL, 0, reply, 64, &len), CF_ERR_IO);
}

static void test_soft_fd_env(void **state)
{
	(void)state;
	int fd = -7;
	assert_int_equal(unsetenv(CF_SOFT_FD_ENV), 0);
	assert_int_equal(cf_soft_fd(&fd), CF_ERR_NOT_FOUND);
	assert_int_equal(fd, -7);
	assert_int_equal(setenv(CF_SOFT_FD_ENV, "", 1), 0);
	assert_int_equal(cf_soft_fd(&fd), CF_ERR_NOT_FOUND);
	static const struct {
		const char *s;
		int fd;
	} good[] = { { "0", 0 }, { "3", 3 }, { "42", 42 }, { "65535", 65535 } };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(setenv(CF_SOFT_FD_ENV, good[i].s, 1), 0);
		assert_int_equal(cf_soft_fd(&fd), CF_OK);
		assert_int_equal(fd, good[i].fd);
	}
	static const char *const bad[] = { "-1", "-0x1", "abc", "3x", "3 ", "0x3", "65536",
					   "99999999999999999999", "-99999999999999999999",
					   "1e3", "3.0", "--3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = -7;
		assert_int_equal(setenv(CF_SOFT_FD_ENV, bad[i], 1), 0);
		cf_err rc = cf_soft_fd(&fd);
		if (rc == CF_OK)
			fail_msg("COFFER_TEE_FD=\"%s\" accepted as %d", bad[i], fd);
		assert_int_equal(fd, -7);
	}
	assert_int_equal(unsetenv(CF_SOFT_FD_ENV), 0);
}

/* --- the provider table --- */

static bool hardware_interface_present(void)
{
	return access("/dev/attestation/quote", R_OK) == 0 ||
	       access("/sys/kernel/config/tsm/report", W_OK) == 0 ||
	       access("/dev/csv-guest", R_OK | W_OK) == 0;
}

static void test_tee_kinds(void **state)
{
	(void)state;
	static const char *const names[] = { "none", "soft", "sgx", "tdx", "snp", "csv" };
	for (int k = CF_TEE_NONE; k <= CF_TEE_CSV; k++) {
		cf_tee_kind got = (cf_tee_kind)99;
		assert_string_equal(cf_tee_kind_name((cf_tee_kind)k), names[k]);
		assert_int_equal(cf_tee_kind_parse(names[k], &got), CF_OK);
		assert_int_equal(got, k);
		const cf_tee_provider *p = cf_tee_provider_of((cf_tee_kind)k);
		assert_non_null(p);
		assert_int_equal(p->kind, k);
	}
	assert_string_equal(cf_tee_kind_name((cf_tee_kind)6), "unknown");
	assert_string_equal(cf_tee_kind_name((cf_tee_kind)-1), "unknown");
	assert_string_equal(cf_tee_kind_name((cf_tee_kind)1000), "unknown");
	static const char *const bad[] = { "", "SOFT", "soft ", " soft", "unknown", "sgx2", "so" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf_tee_kind got = (cf_tee_kind)99;
		assert_int_equal(cf_tee_kind_parse(bad[i], &got), CF_ERR_ARG);
		assert_int_equal(got, 99);
	}
	/* An unknown kind maps to the "none" provider, which detects nothing. */
	const cf_tee_provider *p = cf_tee_provider_of((cf_tee_kind)77);
	assert_non_null(p);
	assert_int_equal(p->kind, CF_TEE_NONE);
	assert_int_equal(p->detect(), CF_ERR_NOT_FOUND);
	p = cf_tee_provider_of((cf_tee_kind)-3);
	assert_int_equal(p->kind, CF_TEE_NONE);
}

static void test_tee_hardware_unsupported(void **state)
{
	(void)state;
	uint8_t rd[64] = { 0 }, key[32];
	cf_tee_info info;
	cf_buf out;
	cf_buf_init(&out, 1 << 16, false);
	static const cf_tee_kind hw[] = { CF_TEE_NONE, CF_TEE_SGX, CF_TEE_TDX, CF_TEE_SNP,
					  CF_TEE_CSV };
	for (size_t i = 0; i < sizeof(hw) / sizeof(hw[0]); i++) {
		const cf_tee_provider *p = cf_tee_provider_of(hw[i]);
		assert_int_equal(p->evidence(rd, &out), CF_ERR_UNSUPPORTED);
		assert_int_equal(out.len, 0);
		assert_int_equal(p->seal_key("label", key), CF_ERR_UNSUPPORTED);
		assert_int_equal(p->describe(&info), CF_ERR_UNSUPPORTED);
	}
	cf_buf_free(&out);
	assert_int_equal(access("/dev/attestation/quote", R_OK) == 0 ? CF_OK : CF_ERR_NOT_FOUND,
			 cf_tee_provider_of(CF_TEE_SGX)->detect());
	assert_int_equal(access("/dev/csv-guest", R_OK | W_OK) == 0 ? CF_OK : CF_ERR_NOT_FOUND,
			 cf_tee_provider_of(CF_TEE_CSV)->detect());
	cf_err tsm = access("/sys/kernel/config/tsm/report", W_OK) == 0 ? CF_OK : CF_ERR_NOT_FOUND;
	assert_int_equal(tsm, cf_tee_provider_of(CF_TEE_TDX)->detect());
	assert_int_equal(tsm, cf_tee_provider_of(CF_TEE_SNP)->detect());
}

static void test_tee_detect(void **state)
{
	(void)state;
	const cf_tee_provider *p = NULL;
	bool hw = hardware_interface_present();
	assert_int_equal(unsetenv(CF_SOFT_FD_ENV), 0);
	if (hw) {
		assert_int_equal(cf_tee_detect(&p), CF_OK);
		assert_int_not_equal(p->kind, CF_TEE_SOFT);
	} else {
		assert_int_equal(cf_tee_detect(&p), CF_ERR_NOT_FOUND);
	}
	assert_int_equal(setenv(CF_SOFT_FD_ENV, "3", 1), 0);
	p = NULL;
	assert_int_equal(cf_tee_detect(&p), CF_OK);
	assert_non_null(p);
	/* Hardware wins over a soft socket. */
	if (hw)
		assert_int_not_equal(p->kind, CF_TEE_SOFT);
	else
		assert_int_equal(p->kind, CF_TEE_SOFT);
	/* A garbage fd variable does not make a soft TEE. */
	assert_int_equal(setenv(CF_SOFT_FD_ENV, "x", 1), 0);
	if (!hw)
		assert_int_not_equal(cf_tee_detect(&p), CF_OK);
	assert_int_equal(unsetenv(CF_SOFT_FD_ENV), 0);
}

/*
 * A fake coffer-launch agent on a thread: answers REPORT with a real
 * report signed by platform A, SEAL with the sealing key, INFO with the
 * measurement and instance id; or with scripted misbehaviour.
 */
enum agent_mode { AGENT_GOOD, AGENT_SHORT, AGENT_LONG_SEAL, AGENT_ERROR };

struct agent {
	int fd;
	enum agent_mode mode;
	int requests;
	uint8_t measurement[48];
	uint8_t instance_id[16];
};

static void *agent_main(void *arg)
{
	struct agent *ag = arg;
	uint8_t req[1024], rep[1 + 1024];
	for (;;) {
		ssize_t n = recv(ag->fd, req, sizeof(req), 0);
		if (n <= 0)
			break;
		ag->requests++;
		size_t len = 0;
		rep[0] = 0;
		if (n < 2 || req[0] != CF_SOFT_PROTO_VERSION) {
			rep[0] = CF_ERR_PARSE;
		} else if (ag->mode == AGENT_ERROR) {
			rep[0] = CF_ERR_CRYPTO;
		} else if (req[1] == CF_SOFT_MSG_REPORT && n == 66) {
			cf_soft_report r;
			sample_report(&r, fx.a.platform_id);
			memcpy(r.report_data, req + 2, 64);
			memcpy(r.measurement, ag->measurement, 48);
			memcpy(r.instance_id, ag->instance_id, 16);
			if (cf_soft_report_sign(fx.a.key, &r, rep + 1) != CF_OK)
				rep[0] = CF_ERR_CRYPTO;
			len = ag->mode == AGENT_SHORT ? CF_SOFT_REPORT_LEN - 1 : CF_SOFT_REPORT_LEN;
		} else if (req[1] == CF_SOFT_MSG_SEAL && n >= 3 && n <= 66) {
			char label[65];
			memcpy(label, req + 2, (size_t)n - 2);
			label[n - 2] = 0;
			if (cf_soft_seal_key(fx.a.seal_secret, ag->measurement, label, rep + 1) != CF_OK)
				rep[0] = CF_ERR_ARG;
			len = ag->mode == AGENT_SHORT ? 31 : ag->mode == AGENT_LONG_SEAL ? 33 : 32;
		} else if (req[1] == CF_SOFT_MSG_INFO && n == 2) {
			memcpy(rep + 1, ag->measurement, 48);
			memcpy(rep + 49, ag->instance_id, 16);
			len = ag->mode == AGENT_SHORT ? 63 : 64;
		} else {
			rep[0] = CF_ERR_PARSE;
		}
		if (rep[0] != 0)
			len = 0;
		if (send(ag->fd, rep, len + 1, MSG_NOSIGNAL) < 0)
			break;
	}
	return NULL;
}

static void agent_start(struct agent *ag, pthread_t *t, int *client, enum agent_mode mode)
{
	int sv[2];
	pair(sv);
	memset(ag, 0, sizeof(*ag));
	ag->fd = sv[1];
	ag->mode = mode;
	fill(ag->measurement, 48, 20);
	fill(ag->instance_id, 16, 21);
	*client = sv[0];
	char num[16];
	snprintf(num, sizeof(num), "%d", sv[0]);
	assert_int_equal(setenv(CF_SOFT_FD_ENV, num, 1), 0);
	assert_int_equal(pthread_create(t, NULL, agent_main, ag), 0);
}

static void agent_stop(struct agent *ag, pthread_t t, int client)
{
	shutdown(client, SHUT_RDWR);
	assert_int_equal(pthread_join(t, NULL), 0);
	close(client);
	close(ag->fd);
	assert_int_equal(unsetenv(CF_SOFT_FD_ENV), 0);
}

static void test_soft_provider(void **state)
{
	(void)state;
	struct agent ag;
	pthread_t t;
	int client;
	agent_start(&ag, &t, &client, AGENT_GOOD);
	const cf_tee_provider *p = cf_tee_provider_of(CF_TEE_SOFT);
	assert_int_equal(p->detect(), CF_OK);

	uint8_t rd[64];
	fill(rd, 64, 30);
	cf_buf ev;
	cf_buf_init(&ev, 1 << 16, false);
	assert_int_equal(p->evidence(rd, &ev), CF_OK);
	assert_int_equal(ev.len, CF_SOFT_REPORT_LEN);
	cf_soft_report got;
	assert_int_equal(verify_a(ev.data, ev.len, &got), CF_OK);
	assert_memory_equal(got.report_data, rd, 64);
	assert_memory_equal(got.measurement, ag.measurement, 48);

	uint8_t key[32], want[32];
	assert_int_equal(p->seal_key("vault", key), CF_OK);
	assert_int_equal(cf_soft_seal_key(fx.a.seal_secret, ag.measurement, "vault", want), CF_OK);
	assert_memory_equal(key, want, 32);
	/* Bad labels never reach the agent. */
	int before = ag.requests;
	char label[70];
	memset(label, 'x', sizeof(label) - 1);
	label[sizeof(label) - 1] = 0;
	assert_int_equal(p->seal_key(label, key), CF_ERR_ARG);
	assert_int_equal(p->seal_key("", key), CF_ERR_ARG);
	label[64] = 0;
	assert_int_equal(p->seal_key(label, key), CF_OK);
	assert_int_equal(ag.requests, before + 1);

	cf_tee_info info;
	assert_int_equal(p->describe(&info), CF_OK);
	assert_int_equal(info.kind, CF_TEE_SOFT);
	assert_false(info.hardware);
	assert_memory_equal(info.measurement, ag.measurement, 48);
	assert_memory_equal(info.instance_id, ag.instance_id, 16);
	assert_true(strlen(info.description) > 0);
	cf_buf_free(&ev);
	agent_stop(&ag, t, client);

	/* Without the variable, nothing works. */
	assert_int_equal(p->detect(), CF_ERR_NOT_FOUND);
	cf_buf_init(&ev, 1 << 16, false);
	assert_int_equal(p->evidence(rd, &ev), CF_ERR_NOT_FOUND);
	assert_int_equal(p->seal_key("vault", key), CF_ERR_NOT_FOUND);
	assert_int_equal(p->describe(&info), CF_ERR_NOT_FOUND);
	cf_buf_free(&ev);
}

static void test_soft_provider_misbehaving_agent(void **state)
{
	(void)state;
	static const uint8_t zero[32] = { 0 };
	const cf_tee_provider *p = cf_tee_provider_of(CF_TEE_SOFT);
	struct agent ag;
	pthread_t t;
	int client;
	uint8_t rd[64] = { 1 }, key[32];
	cf_tee_info info;
	cf_buf ev;
	cf_buf_init(&ev, 1 << 16, false);

	/* Short replies: parse errors, nothing returned, no key left behind. */
	agent_start(&ag, &t, &client, AGENT_SHORT);
	assert_int_equal(p->evidence(rd, &ev), CF_ERR_PARSE);
	assert_int_equal(ev.len, 0);
	memset(key, 0xee, sizeof(key));
	assert_int_equal(p->seal_key("vault", key), CF_ERR_PARSE);
	assert_memory_equal(key, zero, 32);
	assert_int_equal(p->describe(&info), CF_ERR_PARSE);
	agent_stop(&ag, t, client);

	/* A 33-byte "key" does not fit a 32-byte buffer. */
	agent_start(&ag, &t, &client, AGENT_LONG_SEAL);
	memset(key, 0xee, sizeof(key));
	assert_int_equal(p->seal_key("vault", key), CF_ERR_TOO_BIG);
	assert_memory_equal(key, zero, 32);
	agent_stop(&ag, t, client);

	/* The agent refuses. */
	agent_start(&ag, &t, &client, AGENT_ERROR);
	assert_int_equal(p->evidence(rd, &ev), CF_ERR_CRYPTO);
	assert_int_equal(p->seal_key("vault", key), CF_ERR_CRYPTO);
	assert_int_equal(p->describe(&info), CF_ERR_CRYPTO);
	agent_stop(&ag, t, client);
	cf_buf_free(&ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_encode_layout),
		cmocka_unit_test(test_report_roundtrip),
		cmocka_unit_test(test_report_every_bit_flip),
		cmocka_unit_test(test_report_lengths),
		cmocka_unit_test(test_report_strict_resigned),
		cmocka_unit_test(test_report_other_platform),
		cmocka_unit_test(test_report_p256_cert),
		cmocka_unit_test(test_report_garbage_pem),
		cmocka_unit_test(test_platform_init_modes),
		cmocka_unit_test(test_platform_init_overwrite),
		cmocka_unit_test(test_platform_load_refuses_readable),
		cmocka_unit_test(test_platform_load_hostile_files),
		cmocka_unit_test(test_platform_missing_pieces),
		cmocka_unit_test(test_seal_key),
		cmocka_unit_test(test_call_roundtrip),
		cmocka_unit_test(test_call_errors),
		cmocka_unit_test(test_soft_fd_env),
		cmocka_unit_test(test_tee_kinds),
		cmocka_unit_test(test_tee_hardware_unsupported),
		cmocka_unit_test(test_tee_detect),
		cmocka_unit_test(test_soft_provider),
		cmocka_unit_test(test_soft_provider_misbehaving_agent),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
