/*
 * Unit tests for the SEV-SNP verifier (lib/evidence/snp*.c) on real
 * reports and AMD certificates (testdata/README.md "SEV-SNP": S1, S2, S3,
 * S6, the two invalid VCEKs, the Turin chain), and on chains made here
 * with OpenSSL: an RSA-PSS "ARK-Milan" that is not AMD's, so that a report
 * re-signed under it passes every check but ark_pinned, which lets the
 * tests reach the paths no staged report covers (debug, v5, Turin layout,
 * product mismatch). Hostile input throughout: every bit of S1 flipped,
 * every truncation, wrong keys, swapped roots, expired certificates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "coffer/enc.h"
#include "coffer/evidence.h"

#include "../../lib/evidence/snp_internal.h"

/* --- data --- */

typedef struct bytes {
	uint8_t *data;
	size_t len;
} bytes;

static struct {
	bytes s1, s2, s3, s6;                       /* reports */
	bytes vcek_s1, vcek_s2, vlek_s3, vcek_s6;   /* leaf certificates (DER) */
	bytes vcek_bad_legacy, vcek_bad_new, vcek_turin;
	bytes milan, milan_vlek, genoa, turin;      /* go-sev-guest trust/ (ASK|ASVK, ARK) */
	bytes trustee_milan;                        /* ASK, ARK, ASVK */
	bytes virtee_milan, virtee_turin;
	cf_snp_certs *c1, *c2, *c3, *c6;            /* loaded once */
} d;

static time_t utc(int y, int mo, int day)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = day;
	return timegm(&tm);
}

static bytes slurp(const char *rel)
{
	const char *root = getenv("COFFER_TESTDATA");
	char path[512];
	bytes b = { NULL, 0 };
	if (!root)
		fail_msg("COFFER_TESTDATA is not set");
	snprintf(path, sizeof(path), "%s/snp/%s", root, rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	b.data = malloc((size_t)n + 1); /* NUL-terminated, for the PEM texts */
	assert_non_null(b.data);
	assert_int_equal(fread(b.data, 1, (size_t)n, f), (size_t)n);
	b.data[n] = 0;
	fclose(f);
	b.len = (size_t)n;
	return b;
}

/* The hex text of report_milan.hex (whitespace ignored) as bytes. */
static bytes slurp_hex(const char *rel)
{
	bytes t = slurp(rel), b;
	char *clean = malloc(t.len + 1);
	size_t n = 0;
	assert_non_null(clean);
	for (size_t i = 0; i < t.len; i++)
		if (t.data[i] != '\n' && t.data[i] != '\r' && t.data[i] != ' ')
			clean[n++] = (char)t.data[i];
	b.data = malloc(n / 2);
	assert_non_null(b.data);
	assert_int_equal(cf_hex_decode(clean, n, b.data, n / 2, &b.len), CF_OK);
	free(clean);
	free(t.data);
	return b;
}

static cf_blob blob(bytes b)
{
	cf_blob x = { b.data, b.len };
	return x;
}

static cf_snp_certs *load(bytes vek, bytes chain)
{
	cf_snp_certs *c = NULL;
	char why[200];
	cf_blob v = blob(vek), ch = blob(chain);
	cf_err rc = cf_snp_certs_load(&v, &ch, &c, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("certs: %s (%s)", cf_strerror(rc), why);
	return c;
}

static int setup(void **state)
{
	(void)state;
	d.s1 = slurp("go-sev-guest/attestation.bin");
	d.s2 = slurp("trustee/test-report.bin");
	d.s3 = slurp("trustee/test-vlek-report.bin");
	d.s6 = slurp_hex("virtee-sev/report_milan.hex");
	d.vcek_s1 = slurp("go-sev-guest/vcek.testcer");
	d.vcek_s2 = slurp("trustee/test-vcek.der");
	d.vlek_s3 = slurp("trustee/test-vlek.der");
	d.vcek_s6 = slurp("virtee-sev/vcek_milan.der");
	d.vcek_bad_legacy = slurp("trustee/test-vcek-invalid-legacy.der");
	d.vcek_bad_new = slurp("trustee/test-vcek-invalid-new.der");
	d.vcek_turin = slurp("virtee-sev/vcek_turin.der");
	d.milan = slurp("go-sev-guest/trust/ask_ark_milan.pem");
	d.milan_vlek = slurp("go-sev-guest/trust/ask_ark_milan_vlek.pem");
	d.genoa = slurp("go-sev-guest/trust/ask_ark_genoa.pem");
	d.turin = slurp("go-sev-guest/trust/ask_ark_turin_vcek.pem");
	d.trustee_milan = slurp("trustee/certs/milan_ask_ark_asvk.pem");
	d.virtee_milan = slurp("virtee-sev/cert_chain_milan");
	d.virtee_turin = slurp("virtee-sev/cert_chain_turin");
	d.c1 = load(d.vcek_s1, d.milan);
	d.c2 = load(d.vcek_s2, d.trustee_milan);
	d.c3 = load(d.vlek_s3, d.trustee_milan);
	d.c6 = load(d.vcek_s6, d.virtee_milan);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bytes *all[] = { &d.s1, &d.s2, &d.s3, &d.s6, &d.vcek_s1, &d.vcek_s2, &d.vlek_s3,
			 &d.vcek_s6, &d.vcek_bad_legacy, &d.vcek_bad_new, &d.vcek_turin, &d.milan,
			 &d.milan_vlek, &d.genoa, &d.turin, &d.trustee_milan, &d.virtee_milan,
			 &d.virtee_turin };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		free(all[i]->data);
	cf_snp_certs_free(d.c1);
	cf_snp_certs_free(d.c2);
	cf_snp_certs_free(d.c3);
	cf_snp_certs_free(d.c6);
	return 0;
}

/* --- verdict helpers --- */

static const cf_check *check(const cf_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nchecks; i++)
		if (strcmp(v->checks[i].name, name) == 0)
			return &v->checks[i];
	return NULL;
}

static cf_check_state state_of(const cf_verdict *v, const char *name)
{
	const cf_check *c = check(v, name);
	if (!c)
		fail_msg("no check %s", name);
	return c->state;
}

static void dump(const cf_verdict *v)
{
	for (size_t i = 0; i < v->nchecks; i++)
		print_message("  %-20s %-4s expected [%s] actual [%s]\n", v->checks[i].name,
			      v->checks[i].state == CF_CHECK_PASS   ? "pass"
			      : v->checks[i].state == CF_CHECK_FAIL ? "FAIL"
								    : "skip",
			      v->checks[i].expected, v->checks[i].actual);
}

static void assert_verified(const cf_verdict *v)
{
	if (!cf_verdict_ok(v)) {
		dump(v);
		fail_msg("not verified");
	}
}

/* Every failed check is in the list (NULL-terminated), and each listed one failed. */
static void assert_fails_exactly(const cf_verdict *v, const char *const *names)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		bool listed = false;
		for (const char *const *n = names; *n; n++)
			listed |= strcmp(*n, v->checks[i].name) == 0;
		if (listed != (v->checks[i].state == CF_CHECK_FAIL)) {
			dump(v);
			fail_msg("check %s: %s", v->checks[i].name,
				 listed ? "expected to fail" : "unexpectedly failed");
		}
	}
	for (const char *const *n = names; *n; n++)
		assert_non_null(check(v, *n));
}

static const char *claim_str(const cf_verdict *v, const char *key)
{
	json_t *j = json_object_get(v->claims, key);
	assert_true(json_is_string(j));
	return json_string_value(j);
}

static json_int_t claim_int(const cf_verdict *v, const char *key)
{
	json_t *j = json_object_get(v->claims, key);
	assert_true(json_is_integer(j));
	return json_integer_value(j);
}

static void verify_full(bytes report, bytes vek, bytes chain, time_t at, cf_verdict *v)
{
	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_SNP;
	in.evidence = blob(report);
	in.vcek = blob(vek);
	in.snp_chain = blob(chain);
	in.at = at;
	assert_int_equal(cf_evidence_verify(&in, v), CF_OK);
}

static void verify_cached(const cf_snp_certs *c, const uint8_t *p, size_t n, time_t at,
			  cf_verdict *v)
{
	assert_int_equal(cf_snp_verify_report(c, NULL, p, n, at, v), CF_OK);
}

static const char *const every_check[] = {
	"format", "certificates", "ark_pinned", "ark_self_signature", "ask_signature",
	"vcek_signature", "cert_validity", "signing_key", "product", "vcek_product",
	"report_signature", "vcek_tcb", "chip_id", NULL,
};

/* --- the staged sets --- */

static void test_s1_verifies(void **state)
{
	(void)state;
	cf_verdict v;
	verify_full(d.s1, d.vcek_s1, d.milan, utc(2025, 6, 1), &v);
	assert_verified(&v);
	for (const char *const *n = every_check; *n; n++)
		assert_non_null(check(&v, *n));
	/* v2 has no CPUID: product is "not checked", never a pass. */
	assert_int_equal(state_of(&v, "product"), CF_CHECK_SKIPPED);
	assert_int_equal(v.tee, CF_TEE_SNP);
	assert_int_equal(v.tcb_status, CF_TCB_UNKNOWN);
	/*
	 * S1's POLICY is 0xb0000: bits 16 (SMT), 17 (reserved, one) and 19
	 * (DEBUG). testdata/PROVENANCE.md says "DEBUG=0"; the bits say otherwise
	 * (ABI 56860 GUEST_POLICY; go-sev-guest policyDebugBit = 19).
	 */
	assert_true(v.debug);

	/* Claims: the measurement is the file's bytes at 0x90. */
	char hex[97];
	cf_hex_encode(d.s1.data + 0x90, 48, hex);
	json_t *m = json_object_get(v.claims, "measurements");
	assert_string_equal(json_string_value(json_object_get(m, "measurement")), hex);
	char rd[129];
	cf_hex_encode(d.s1.data + 0x50, 64, rd);
	assert_string_equal(claim_str(&v, "report_data"), rd);
	assert_non_null(json_object_get(m, "host_data"));
	assert_non_null(json_object_get(m, "id_key_digest"));
	assert_non_null(json_object_get(m, "author_key_digest"));
	assert_non_null(json_object_get(m, "family_id"));
	assert_non_null(json_object_get(m, "image_id"));
	assert_true(json_is_true(json_object_get(v.claims, "debug")));
	assert_string_equal(claim_str(&v, "tee"), "snp");
	assert_string_equal(claim_str(&v, "signing_key"), "vcek");
	assert_string_equal(claim_str(&v, "product"), "Milan");
	assert_int_equal(claim_int(&v, "version"), 2);
	assert_int_equal(claim_int(&v, "vmpl"), 0);
	assert_int_equal(claim_int(&v, "guest_svn"), 0);
	json_t *pol = json_object_get(v.claims, "policy");
	assert_true(json_is_object(pol));
	assert_true(json_is_true(json_object_get(pol, "debug")));
	assert_true(json_is_true(json_object_get(pol, "smt")));
	assert_true(json_is_false(json_object_get(pol, "migrate_ma")));
	assert_int_equal(json_integer_value(json_object_get(pol, "abi_major")), 0);
	assert_string_equal(json_string_value(json_object_get(pol, "raw")), "0x00000000000b0000");
	json_t *tcb = json_object_get(v.claims, "reported_tcb");
	assert_int_equal(json_integer_value(json_object_get(tcb, "bootloader")), 2);
	assert_int_equal(json_integer_value(json_object_get(tcb, "tee")), 0);
	assert_int_equal(json_integer_value(json_object_get(tcb, "snp")), 5);
	assert_int_equal(json_integer_value(json_object_get(tcb, "microcode")), 68);
	assert_null(json_object_get(tcb, "fmc"));
	assert_true(json_equal(tcb, json_object_get(v.claims, "tcb")));
	assert_non_null(json_object_get(v.claims, "current_tcb"));
	assert_non_null(json_object_get(v.claims, "committed_tcb"));
	assert_non_null(json_object_get(v.claims, "launch_tcb"));
	assert_true(json_is_true(json_object_get(json_object_get(v.claims, "platform_info"),
						 "smt_enabled")));
	cf_hex_encode(d.s1.data + 0x1A0, 64, rd);
	assert_string_equal(claim_str(&v, "chip_id"), rd);

	/* The policy adds debug: refused by default, accepted when allowed. */
	assert_int_equal(cf_policy_apply(NULL, utc(2025, 6, 1), &v), CF_OK);
	assert_int_equal(state_of(&v, "debug"), CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	verify_full(d.s1, d.vcek_s1, d.milan, utc(2025, 6, 1), &v);
	json_t *allow = json_pack("{s:b}", "allow_debug", 1);
	assert_int_equal(cf_policy_apply(allow, utc(2025, 6, 1), &v), CF_OK);
	json_decref(allow);
	assert_int_equal(state_of(&v, "debug"), CF_CHECK_PASS);
	assert_verified(&v);

	json_t *j = cf_verdict_json(&v, true);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "tee")), "snp");
	assert_string_equal(json_string_value(json_object_get(j, "tcb_status")), "Unknown");
	assert_true(json_array_size(json_object_get(j, "checks")) >= 14);
	json_decref(j);
	cf_verdict_free(&v);
}

static void test_s2_verifies(void **state)
{
	(void)state;
	cf_verdict v;
	/* The trustee bundle holds ASK, ARK and ASVK: the ASK is picked by issuer. */
	verify_full(d.s2, d.vcek_s2, d.trustee_milan, utc(2025, 6, 1), &v);
	assert_verified(&v);
	assert_int_equal(claim_int(&v, "guest_svn"), 4);
	assert_false(v.debug); /* POLICY 0x3001f */
	assert_true(json_is_false(json_object_get(v.claims, "debug")));
	json_t *pol = json_object_get(v.claims, "policy");
	assert_int_equal(json_integer_value(json_object_get(pol, "abi_minor")), 0x1f);
	assert_int_equal(cf_policy_apply(NULL, utc(2025, 6, 1), &v), CF_OK);
	assert_int_equal(state_of(&v, "debug"), CF_CHECK_PASS);
	assert_verified(&v);
	cf_verdict_free(&v);
	verify_full(d.s2, d.vcek_s2, d.milan, utc(2023, 2, 1), &v);
	assert_verified(&v);
	cf_verdict_free(&v);
	verify_cached(d.c2, d.s2.data, d.s2.len, utc(2030, 1, 1), &v);
	assert_verified(&v);
	cf_verdict_free(&v);
}

static void test_s6_verifies(void **state)
{
	(void)state;
	cf_verdict v;
	assert_int_equal(d.s6.len, CF_SNP_REPORT_LEN);
	verify_full(d.s6, d.vcek_s6, d.virtee_milan, utc(2025, 6, 1), &v);
	assert_verified(&v);
	assert_false(v.debug); /* POLICY 0x30000 */
	char hex[97];
	cf_hex_encode(d.s6.data + 0x90, 48, hex);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(v.claims, "measurements"),
						  "measurement")),
		hex);
	cf_verdict_free(&v);
	verify_cached(d.c6, d.s6.data, d.s6.len, utc(2023, 4, 4), &v);
	assert_verified(&v);
	cf_verdict_free(&v);
}

static void test_s3_vlek(void **state)
{
	(void)state;
	cf_verdict v;
	verify_full(d.s3, d.vlek_s3, d.trustee_milan, utc(2025, 6, 1), &v);
	assert_verified(&v);
	assert_int_equal(state_of(&v, "product"), CF_CHECK_PASS); /* v3: CPUID 19h/01h */
	const cf_check *chip = check(&v, "chip_id");
	assert_int_equal(chip->state, CF_CHECK_PASS);
	assert_non_null(strstr(chip->actual, "not applicable (VLEK)"));
	assert_string_equal(claim_str(&v, "signing_key"), "vlek");
	assert_string_equal(claim_str(&v, "product"), "Milan");
	assert_int_equal(claim_int(&v, "version"), 3);
	assert_int_equal(claim_int(&v, "vmpl"), 1);
	json_t *cpuid = json_object_get(v.claims, "cpuid");
	assert_int_equal(json_integer_value(json_object_get(cpuid, "family")), 0x19);
	assert_int_equal(json_integer_value(json_object_get(cpuid, "model")), 0x01);
	assert_int_equal(json_integer_value(json_object_get(cpuid, "stepping")), 0x01);
	cf_verdict_free(&v);

	/* go-sev-guest's ASVK + ARK file works too. */
	verify_full(d.s3, d.vlek_s3, d.milan_vlek, utc(2025, 6, 1), &v);
	assert_verified(&v);
	cf_verdict_free(&v);

	/* The VLEK expired on 2025-12-10: now, and any later time, it fails there only. */
	time_t now = time(NULL);
	time_t later[] = { now > utc(2025, 12, 11) ? now : utc(2026, 1, 1), utc(2026, 6, 1) };
	for (size_t i = 0; i < 2; i++) {
		verify_cached(d.c3, d.s3.data, d.s3.len, later[i], &v);
		static const char *const f[] = { "cert_validity", NULL };
		assert_fails_exactly(&v, f);
		assert_non_null(strstr(check(&v, "cert_validity")->actual, "VLEK expired"));
		cf_verdict_free(&v);
	}

	/* A VLEK-signed report with the VCEK's ASK: the VLEK's issuer is missing. */
	verify_full(d.s3, d.vlek_s3, d.milan, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "vcek_signature"), CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
}

static void test_invalid_vceks(void **state)
{
	(void)state;
	const bytes *bad[] = { &d.vcek_bad_legacy, &d.vcek_bad_new };
	for (size_t i = 0; i < 2; i++) {
		cf_verdict v;
		verify_full(d.s2, *bad[i], d.milan, utc(2025, 6, 1), &v);
		assert_int_equal(state_of(&v, "vcek_signature"), CF_CHECK_FAIL);
		assert_false(cf_verdict_ok(&v));
		/* Both hwID encodings (raw, OCTET STRING) decode to 00 01 .. 3f. */
		const cf_check *chip = check(&v, "chip_id");
		assert_int_equal(chip->state, CF_CHECK_FAIL);
		assert_non_null(strstr(chip->expected, "000102030405060708090a0b0c0d0e0f"));
		cf_verdict_free(&v);
	}
}

static void test_turin_chain_only(void **state)
{
	(void)state;
	cf_snp_certs *c = load(d.vcek_turin, d.virtee_turin);
	cf_verdict v;
	assert_int_equal(cf_snp_certs_product(c), CF_SNP_PRODUCT_TURIN);
	assert_false(cf_snp_certs_is_vlek(c));
	cf_verdict_init(&v, CF_TEE_SNP);
	cf_snp_certs_check(c, utc(2025, 6, 1), &v);
	assert_verified(&v);
	assert_int_equal(v.nchecks, 6);
	cf_verdict_free(&v);
	cf_verdict_init(&v, CF_TEE_SNP);
	cf_snp_certs_check(c, utc(2024, 1, 1), &v); /* the VCEK is from 2024-11-06 */
	static const char *const f[] = { "cert_validity", NULL };
	assert_fails_exactly(&v, f);
	assert_non_null(strstr(check(&v, "cert_validity")->actual, "VCEK not valid before"));
	cf_verdict_free(&v);
	cf_snp_certs_free(c);

	/* go-sev-guest's Turin file is the same ASK + ARK. */
	c = load(d.vcek_turin, d.turin);
	cf_verdict_init(&v, CF_TEE_SNP);
	cf_snp_certs_check(c, utc(2025, 6, 1), &v);
	assert_verified(&v);
	cf_verdict_free(&v);
	cf_snp_certs_free(c);

	/* A Milan report against the Turin VCEK fails, and names why. */
	verify_full(d.s1, d.vcek_turin, d.virtee_turin, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "report_signature"), CF_CHECK_FAIL);
	assert_int_equal(state_of(&v, "vcek_product"), CF_CHECK_PASS);
	assert_int_equal(state_of(&v, "chip_id"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
}

/* --- hostile input --- */

static void test_every_bit_of_signed_region(void **state)
{
	(void)state;
	uint8_t r[CF_SNP_REPORT_LEN];
	size_t n_format = 0, n_sig = 0;
	memcpy(r, d.s1.data, sizeof(r));
	for (size_t bit = 0; bit < CF_SNP_SIGNED_LEN * 8; bit++) {
		cf_verdict v;
		r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		verify_cached(d.c1, r, sizeof(r), utc(2025, 6, 1), &v);
		if (cf_verdict_ok(&v))
			fail_msg("bit %zu (byte 0x%03zx) flipped still verifies", bit, bit / 8);
		const cf_check *fmt = check(&v, "format");
		if (fmt->state == CF_CHECK_FAIL) {
			n_format++;
		} else {
			/* Parsed: the signature must be what refuses it. */
			assert_int_equal(state_of(&v, "report_signature"), CF_CHECK_FAIL);
			n_sig++;
		}
		cf_verdict_free(&v);
		r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(n_format + n_sig, CF_SNP_SIGNED_LEN * 8);
	assert_true(n_format > 0 && n_sig > 0);
	print_message("signed region: %zu flips refused by format, %zu by the signature\n",
		      n_format, n_sig);
}

static void test_every_bit_of_signature(void **state)
{
	(void)state;
	uint8_t r[CF_SNP_REPORT_LEN];
	memcpy(r, d.s1.data, sizeof(r));
	for (size_t bit = CF_SNP_SIGNED_LEN * 8; bit < CF_SNP_REPORT_LEN * 8; bit++) {
		cf_verdict v;
		r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		verify_cached(d.c1, r, sizeof(r), utc(2025, 6, 1), &v);
		if (cf_verdict_ok(&v))
			fail_msg("bit %zu (byte 0x%03zx) flipped still verifies", bit, bit / 8);
		/* R, S: bad signature; the reserved tail after them: format. */
		assert_int_equal(state_of(&v, bit / 8 < 0x330 ? "report_signature" : "format"),
				 CF_CHECK_FAIL);
		cf_verdict_free(&v);
		r[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

static void test_truncation_and_extension(void **state)
{
	(void)state;
	uint8_t r[CF_SNP_REPORT_LEN + 1];
	memcpy(r, d.s1.data, CF_SNP_REPORT_LEN);
	for (size_t len = 0; len <= CF_SNP_REPORT_LEN + 1; len++) {
		if (len == CF_SNP_REPORT_LEN)
			continue;
		for (int fillbyte = 0; fillbyte < 2; fillbyte++) {
			cf_verdict v;
			r[CF_SNP_REPORT_LEN] = fillbyte ? 0xFF : 0x00;
			/* Heap copy of exactly len bytes so ASan catches any over-read. */
			uint8_t *p = malloc(len ? len : 1);
			assert_non_null(p);
			memcpy(p, r, len);
			verify_cached(d.c1, len ? p : NULL, len, utc(2025, 6, 1), &v);
			const cf_check *first = cf_verdict_first_failure(&v);
			assert_non_null(first);
			assert_string_equal(first->name, "format");
			assert_int_equal(v.nchecks, 1);
			free(p);
			cf_verdict_free(&v);
		}
	}
	/* The same through the public entry, for a few lengths. */
	size_t lens[] = { 0, 1, 0x2A0, CF_SNP_REPORT_LEN - 1, CF_SNP_REPORT_LEN + 1 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		cf_verdict v;
		bytes b = { r, lens[i] };
		verify_full(b, d.vcek_s1, d.milan, utc(2025, 6, 1), &v);
		assert_string_equal(cf_verdict_first_failure(&v)->name, "format");
		assert_non_null(strstr(check(&v, "format")->actual, "bytes"));
		cf_verdict_free(&v);
	}
}

/* One field of S1 changed: the format check fails and names the field. */
static void expect_format(const uint8_t *r, const char *needle)
{
	cf_verdict v;
	verify_cached(d.c1, r, CF_SNP_REPORT_LEN, utc(2025, 6, 1), &v);
	const cf_check *f = check(&v, "format");
	assert_non_null(f);
	assert_int_equal(f->state, CF_CHECK_FAIL);
	if (!strstr(f->actual, needle))
		fail_msg("format says \"%s\", expected \"%s\"", f->actual, needle);
	cf_verdict_free(&v);
}

static void put32(uint8_t *p, uint32_t x)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(x >> (8 * i));
}

static void put64(uint8_t *p, uint64_t x)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(x >> (8 * i));
}

static void test_format_fields(void **state)
{
	(void)state;
	uint8_t r[CF_SNP_REPORT_LEN];
	static const uint32_t bad_versions[] = { 0, 1, 6, 7, 0x100, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
		memcpy(r, d.s1.data, sizeof(r));
		put32(r, bad_versions[i]);
		expect_format(r, "version");
	}
	memcpy(r, d.s1.data, sizeof(r));
	put32(r + 0x34, 2);
	expect_format(r, "SIGNATURE_ALGO");
	put32(r + 0x34, 0);
	expect_format(r, "SIGNATURE_ALGO");

	memcpy(r, d.s1.data, sizeof(r));
	put64(r + 8, 0xb0000 & ~(1ull << 17));
	expect_format(r, "bit 17");
	for (int bit = 26; bit < 64; bit++) {
		put64(r + 8, 0xb0000 | (1ull << bit));
		expect_format(r, "63:26");
	}
	memcpy(r, d.s1.data, sizeof(r));
	for (int bit = 8; bit < 64; bit++) {
		put64(r + 0x40, 1 | (1ull << bit));
		expect_format(r, "PLATFORM_INFO");
	}
	memcpy(r, d.s1.data, sizeof(r));
	for (int bit = 5; bit < 32; bit++) {
		put32(r + 0x48, 1u << bit);
		expect_format(r, "31:5");
	}
	for (uint32_t sk = 2; sk <= 6; sk++) {
		put32(r + 0x48, sk << 2);
		expect_format(r, "SIGNING_KEY");
	}
	/* Every reserved byte, one at a time (v2 layout). */
	static const struct {
		size_t lo, hi;
	} mbz[] = { { 0x4C, 0x50 }, { 0x188, 0x1A0 }, { 0x1EB, 0x1EC }, { 0x1EF, 0x1F0 },
		    { 0x1F8, 0x2A0 }, { 0x330, 0x4A0 } };
	for (size_t i = 0; i < sizeof(mbz) / sizeof(mbz[0]); i++) {
		for (size_t off = mbz[i].lo; off < mbz[i].hi; off++) {
			memcpy(r, d.s1.data, sizeof(r));
			r[off] = 0x80;
			expect_format(r, "reserved");
		}
	}
	/* v3: 0x188..0x18A are CPUID, 0x18B.. still reserved; v5: 0x1F8..0x207 are vectors. */
	memcpy(r, d.s3.data, sizeof(r));
	r[0x18B] = 1;
	expect_format(r, "0x18b");
	memcpy(r, d.s3.data, sizeof(r));
	r[0x1F8] = 1;
	expect_format(r, "0x1f8");
	put32(r, 4);
	expect_format(r, "0x1f8");
	put32(r, 5); /* parses now (and fails its signature) */
	cf_verdict v;
	verify_cached(d.c3, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "format"), CF_CHECK_PASS);
	assert_int_equal(state_of(&v, "report_signature"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	r[0x208] = 1;
	expect_format(r, "0x208");
}

static void test_wrong_keys_and_roots(void **state)
{
	(void)state;
	cf_verdict v;
	/* S2's VCEK for S1: the signature, the TCB and the chip all differ. */
	verify_full(d.s1, d.vcek_s2, d.milan, utc(2025, 6, 1), &v);
	static const char *const f1[] = { "report_signature", "vcek_tcb", "chip_id", NULL };
	assert_fails_exactly(&v, f1);
	cf_verdict_free(&v);

	/* S1's VCEK with the VLEK chain (ASVK + ARK): no issuer for the VCEK. */
	verify_full(d.s1, d.vcek_s1, d.milan_vlek, utc(2025, 6, 1), &v);
	static const char *const f2[] = { "vcek_signature", "signing_key", NULL };
	assert_fails_exactly(&v, f2);
	cf_verdict_free(&v);

	/* Milan's ASK under Genoa's (pinned) ARK: the ARK passes, the ASK does not. */
	char *swapped = malloc(d.milan.len + d.genoa.len + 1);
	assert_non_null(swapped);
	const char *ask_end = strstr((const char *)d.milan.data, "-----END CERTIFICATE-----");
	const char *genoa_ark = strstr((const char *)d.genoa.data + 30, "-----BEGIN CERTIFICATE");
	assert_non_null(ask_end);
	assert_non_null(genoa_ark);
	size_t ask_len = (size_t)(ask_end - (const char *)d.milan.data) + 26;
	size_t ark_len = d.genoa.len - (size_t)(genoa_ark - (const char *)d.genoa.data);
	memcpy(swapped, d.milan.data, ask_len);
	memcpy(swapped + ask_len, genoa_ark, ark_len);
	bytes sw = { (uint8_t *)swapped, ask_len + ark_len };
	verify_full(d.s1, d.vcek_s1, sw, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "ark_pinned"), CF_CHECK_PASS);
	assert_int_equal(state_of(&v, "ask_signature"), CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	free(swapped);

	/* Outside the validity of the certificates. */
	verify_cached(d.c1, d.s1.data, d.s1.len, utc(2029, 9, 25), &v);
	static const char *const f3[] = { "cert_validity", NULL };
	assert_fails_exactly(&v, f3);
	assert_non_null(strstr(check(&v, "cert_validity")->actual, "VCEK expired 2029-09-24"));
	cf_verdict_free(&v);
	verify_cached(d.c1, d.s1.data, d.s1.len, utc(2020, 1, 1), &v);
	assert_fails_exactly(&v, f3);
	assert_non_null(strstr(check(&v, "cert_validity")->actual, "ASK not valid before"));
	cf_verdict_free(&v);
	verify_cached(d.c1, d.s1.data, d.s1.len, utc(2050, 1, 1), &v);
	assert_fails_exactly(&v, f3);
	assert_non_null(strstr(check(&v, "cert_validity")->actual, "ARK expired"));
	cf_verdict_free(&v);
}

static void test_missing_or_bad_collateral(void **state)
{
	(void)state;
	cf_verdict v;
	bytes none = { NULL, 0 };
	verify_full(d.s1, none, d.milan, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	assert_int_equal(state_of(&v, "report_signature"), CF_CHECK_SKIPPED);
	assert_false(cf_verdict_ok(&v));
	/* The report still parsed: its claims are there. */
	assert_non_null(json_object_get(json_object_get(v.claims, "measurements"), "measurement"));
	cf_verdict_free(&v);
	verify_full(d.s1, d.vcek_s1, none, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	cf_verdict_free(&v);

	uint8_t junk[64];
	memset(junk, 0x30, sizeof(junk));
	bytes j = { junk, sizeof(junk) };
	verify_full(d.s1, j, d.milan, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	verify_full(d.s1, d.vcek_s1, j, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	cf_verdict_free(&v);

	/* DER with a trailing byte; a chain of one certificate; a VCEK as a chain. */
	uint8_t *der = malloc(d.vcek_s1.len + 1);
	assert_non_null(der);
	memcpy(der, d.vcek_s1.data, d.vcek_s1.len);
	der[d.vcek_s1.len] = 0;
	bytes t = { der, d.vcek_s1.len + 1 };
	verify_full(d.s1, t, d.milan, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	free(der);
	const char *second = strstr((const char *)d.milan.data + 30, "-----BEGIN");
	assert_non_null(second);
	bytes ark_only = { (uint8_t *)second,
			   d.milan.len - (size_t)(second - (const char *)d.milan.data) };
	verify_full(d.s1, d.vcek_s1, ark_only, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	/* The VCEK as PEM works; two PEM certificates as the VCEK do not. */
	X509 *x = NULL;
	const unsigned char *p = d.vcek_s1.data;
	assert_non_null(x = d2i_X509(NULL, &p, (long)d.vcek_s1.len));
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	char *pem;
	long pemlen = BIO_get_mem_data(bio, &pem);
	bytes pb = { (uint8_t *)pem, (size_t)pemlen };
	verify_full(d.s1, pb, d.milan, utc(2025, 6, 1), &v);
	assert_verified(&v);
	cf_verdict_free(&v);
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	pemlen = BIO_get_mem_data(bio, &pem);
	bytes pb2 = { (uint8_t *)pem, (size_t)pemlen };
	verify_full(d.s1, pb2, d.milan, utc(2025, 6, 1), &v);
	assert_int_equal(state_of(&v, "certificates"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	BIO_free(bio);
	X509_free(x);
}

/* --- a chain made here: everything but the pin --- */

typedef struct fake {
	EVP_PKEY *root_key, *leaf_key;
	bytes leaf_der, chain_pem;
} fake;

static X509_NAME *amd_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();
	assert_non_null(n);
	static const char *const kv[][2] = { { "OU", "Engineering" }, { "C", "US" },
					     { "L", "Santa Clara" }, { "ST", "CA" },
					     { "O", "Advanced Micro Devices" } };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(n, kv[i][0], MBSTRING_ASC,
							    (const unsigned char *)kv[i][1], -1, -1, 0),
				 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0),
			 1);
	return n;
}

static void add_ext(X509 *x, const char *oid, const uint8_t *val, size_t n)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	assert_non_null(obj);
	assert_non_null(os);
	assert_int_equal(ASN1_OCTET_STRING_set(os, val, (int)n), 1);
	X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
}

static void add_spl(X509 *x, int k, int value)
{
	char oid[40];
	uint8_t der[4] = { 0x02, 0x01, (uint8_t)value };
	size_t n = 3;
	if (value >= 0x80) {
		der[1] = 2;
		der[2] = 0;
		der[3] = (uint8_t)value;
		n = 4;
	}
	snprintf(oid, sizeof(oid), "1.3.6.1.4.1.3704.1.3.%d", k);
	add_ext(x, oid, der, n);
}

static X509 *make_cert(const char *cn, const char *issuer_cn, EVP_PKEY *key)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0), 1);
	X509_NAME *s = amd_name(cn), *i = amd_name(issuer_cn);
	assert_int_equal(X509_set_subject_name(x, s), 1);
	assert_int_equal(X509_set_issuer_name(x, i), 1);
	X509_NAME_free(s);
	X509_NAME_free(i);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), utc(2020, 1, 1)));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), utc(2040, 1, 1)));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	return x;
}

static void sign_pss(X509 *x, EVP_PKEY *signer)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, signer), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()), 1);
	assert_true(X509_sign_ctx(x, md) > 0);
	EVP_MD_CTX_free(md);
}

static bytes der_of(X509 *x)
{
	bytes b = { NULL, 0 };
	int n = i2d_X509(x, &b.data);
	assert_true(n > 0);
	b.len = (size_t)n;
	return b;
}

/*
 * A product's chain under a root of our own: ARK-<p> -> SEV-<p> -> SEV-VCEK
 * with the given TCB (spl[1..9], -1 to omit) and hwID.
 */
static fake make_fake(const char *product, const char *product_name, const int spl[10],
		      const uint8_t *hwid, size_t hwid_len)
{
	fake f;
	char ark_cn[32], ask_cn[32];
	snprintf(ark_cn, sizeof(ark_cn), "ARK-%s", product);
	snprintf(ask_cn, sizeof(ask_cn), "SEV-%s", product);
	f.root_key = EVP_RSA_gen(2048);
	f.leaf_key = EVP_EC_gen("P-384");
	assert_non_null(f.root_key);
	assert_non_null(f.leaf_key);
	X509 *ark = make_cert(ark_cn, ark_cn, f.root_key);
	sign_pss(ark, f.root_key);
	X509 *ask = make_cert(ask_cn, ark_cn, f.root_key); /* one key for both */
	sign_pss(ask, f.root_key);
	X509 *vcek = make_cert("SEV-VCEK", ask_cn, f.leaf_key);
	uint8_t sv[] = { 0x02, 0x01, 0x00 };
	add_ext(vcek, "1.3.6.1.4.1.3704.1.1", sv, sizeof(sv));
	uint8_t pn[40] = { 0x16, (uint8_t)strlen(product_name) };
	memcpy(pn + 2, product_name, strlen(product_name));
	add_ext(vcek, "1.3.6.1.4.1.3704.1.2", pn, 2 + strlen(product_name));
	for (int k = 1; k <= 9; k++)
		if (spl[k] >= 0)
			add_spl(vcek, k, spl[k]);
	add_ext(vcek, "1.3.6.1.4.1.3704.1.4", hwid, hwid_len);
	sign_pss(vcek, f.root_key);
	f.leaf_der = der_of(vcek);
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(bio, ask), 1);
	assert_int_equal(PEM_write_bio_X509(bio, ark), 1);
	char *pem;
	long n = BIO_get_mem_data(bio, &pem);
	f.chain_pem.data = malloc((size_t)n);
	assert_non_null(f.chain_pem.data);
	memcpy(f.chain_pem.data, pem, (size_t)n);
	f.chain_pem.len = (size_t)n;
	BIO_free(bio);
	X509_free(ark);
	X509_free(ask);
	X509_free(vcek);
	return f;
}

static void free_fake(fake *f)
{
	EVP_PKEY_free(f->root_key);
	EVP_PKEY_free(f->leaf_key);
	OPENSSL_free(f->leaf_der.data);
	free(f->chain_pem.data);
}

/* Signs bytes 0..0x29F as the firmware would (R, S little-endian, 72 bytes each). */
static void resign(uint8_t *r, EVP_PKEY *key)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[160];
	size_t derlen = sizeof(der);
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(md, der, &derlen, r, CF_SNP_SIGNED_LEN), 1);
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	assert_non_null(sig);
	const BIGNUM *sr, *ss;
	ECDSA_SIG_get0(sig, &sr, &ss);
	assert_int_equal(BN_bn2lebinpad(sr, r + 0x2A0, 72), 72);
	assert_int_equal(BN_bn2lebinpad(ss, r + 0x2E8, 72), 72);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
}

static const char *const only_pin[] = { "ark_pinned", NULL };

static void test_unpinned_ark(void **state)
{
	(void)state;
	/* S1's TCB (bl 2, tee 0, snp 5, ucode 68) and chip. */
	int spl[10] = { -1, 2, 0, 5, 0, 0, 0, 0, 68, -1 };
	fake f = make_fake("Milan", "Milan-B0", spl, d.s1.data + 0x1A0, 64);
	uint8_t r[CF_SNP_REPORT_LEN];
	cf_verdict v;
	memcpy(r, d.s1.data, sizeof(r));
	resign(r, f.leaf_key);
	bytes rb = { r, sizeof(r) };
	verify_full(rb, f.leaf_der, f.chain_pem, utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, only_pin);
	assert_non_null(strstr(check(&v, "ark_pinned")->actual, "unknown ARK CN=ARK-Milan"));
	cf_verdict_free(&v);
	/* The real S1 signature does not verify under our VCEK. */
	verify_full(d.s1, f.leaf_der, f.chain_pem, utc(2025, 6, 1), &v);
	static const char *const f2[] = { "ark_pinned", "report_signature", NULL };
	assert_fails_exactly(&v, f2);
	cf_verdict_free(&v);

	cf_snp_certs *c = load(f.leaf_der, f.chain_pem);
	/* DEBUG (bit 19): the report verifies, v->debug is set, the policy refuses. */
	memcpy(r, d.s1.data, sizeof(r));
	put64(r + 8, 0xb0000 | (1ull << 19));
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, only_pin);
	assert_true(v.debug);
	assert_true(json_is_true(json_object_get(v.claims, "debug")));
	assert_true(json_is_true(json_object_get(json_object_get(v.claims, "policy"), "debug")));
	assert_int_equal(cf_policy_apply(NULL, utc(2025, 6, 1), &v), CF_OK);
	assert_int_equal(state_of(&v, "debug"), CF_CHECK_FAIL);
	cf_verdict_free(&v);

	/* v5 on Milan: CPUID and the mitigation vectors. */
	memcpy(r, d.s1.data, sizeof(r));
	put32(r, 5);
	r[0x188] = 0x19;
	r[0x189] = 0x01;
	r[0x18A] = 0x01;
	put64(r + 0x1F8, 0x11);
	put64(r + 0x200, 0x13);
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, only_pin);
	assert_int_equal(state_of(&v, "product"), CF_CHECK_PASS);
	assert_string_equal(claim_str(&v, "launch_mit_vector"), "0x0000000000000011");
	assert_string_equal(claim_str(&v, "current_mit_vector"), "0x0000000000000013");
	cf_verdict_free(&v);

	/* A Genoa CPU (19h/11h) under a Milan chain; an unknown CPU. */
	r[0x189] = 0x11;
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	static const char *const f3[] = { "ark_pinned", "product", NULL };
	assert_fails_exactly(&v, f3);
	assert_string_equal(claim_str(&v, "product"), "Genoa");
	cf_verdict_free(&v);
	r[0x188] = 0x17;
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, f3);
	cf_verdict_free(&v);

	/* SIGNING_KEY says VLEK, or none; MASK_CHIP_KEY set. */
	static const uint32_t flags[] = { 1u << 2, 7u << 2, 2u };
	for (size_t i = 0; i < 3; i++) {
		memcpy(r, d.s1.data, sizeof(r));
		put32(r + 0x48, flags[i]);
		resign(r, f.leaf_key);
		verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
		static const char *const f4[] = { "ark_pinned", "signing_key", NULL };
		assert_fails_exactly(&v, f4);
		cf_verdict_free(&v);
	}

	/* A different REPORTED_TCB, each part, and a reserved byte of it. */
	static const size_t tcb_bytes[] = { 0, 1, 2, 5, 6, 7 };
	for (size_t i = 0; i < sizeof(tcb_bytes) / sizeof(tcb_bytes[0]); i++) {
		memcpy(r, d.s1.data, sizeof(r));
		r[0x180 + tcb_bytes[i]] ^= 1;
		resign(r, f.leaf_key);
		verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
		static const char *const f5[] = { "ark_pinned", "vcek_tcb", NULL };
		assert_fails_exactly(&v, f5);
		cf_verdict_free(&v);
	}
	/* A different or masked CHIP_ID. */
	memcpy(r, d.s1.data, sizeof(r));
	r[0x1DF] ^= 0x40;
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	static const char *const f6[] = { "ark_pinned", "chip_id", NULL };
	assert_fails_exactly(&v, f6);
	cf_verdict_free(&v);
	memset(r + 0x1A0, 0, 64);
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, f6);
	assert_non_null(strstr(check(&v, "chip_id")->actual, "masked"));
	cf_verdict_free(&v);
	cf_snp_certs_free(c);
	free_fake(&f);
}

static void test_turin_layout(void **state)
{
	(void)state;
	/* Turin: fmc 1, bl 2, tee 3, snp 4, ucode 5; an 8-byte hwID. */
	int spl[10] = { -1, 2, 3, 4, -1, 0, 0, 0, 5, 1 };
	uint8_t hwid[8] = { 0x1E, 0x55, 0x0A, 0x8E, 0xE5, 0xCF, 0x9F, 0x4D };
	fake f = make_fake("Turin", "Turin", spl, hwid, sizeof(hwid));
	uint8_t r[CF_SNP_REPORT_LEN];
	cf_verdict v;
	memcpy(r, d.s3.data, sizeof(r)); /* v3 */
	put32(r + 0x48, 0);              /* VCEK */
	put32(r + 0x30, 0);
	r[0x188] = 0x1A;
	r[0x189] = 0x02;
	r[0x18A] = 0x00;
	static const uint8_t tcb[8] = { 1, 2, 3, 4, 0, 0, 0, 5 };
	memcpy(r + 0x180, tcb, 8);
	memset(r + 0x1A0, 0, 64);
	memcpy(r + 0x1A0, hwid, sizeof(hwid));
	resign(r, f.leaf_key);
	cf_snp_certs *c = load(f.leaf_der, f.chain_pem);
	assert_int_equal(cf_snp_certs_product(c), CF_SNP_PRODUCT_TURIN);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, only_pin);
	json_t *t = json_object_get(v.claims, "reported_tcb");
	assert_int_equal(json_integer_value(json_object_get(t, "fmc")), 1);
	assert_int_equal(json_integer_value(json_object_get(t, "bootloader")), 2);
	assert_int_equal(json_integer_value(json_object_get(t, "tee")), 3);
	assert_int_equal(json_integer_value(json_object_get(t, "snp")), 4);
	assert_int_equal(json_integer_value(json_object_get(t, "microcode")), 5);
	assert_string_equal(claim_str(&v, "product"), "Turin");
	cf_verdict_free(&v);

	/* fmc differs; the chip's 9th byte is not zero. */
	r[0x180] = 9;
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	static const char *const f1[] = { "ark_pinned", "vcek_tcb", NULL };
	assert_fails_exactly(&v, f1);
	cf_verdict_free(&v);
	r[0x180] = 1;
	r[0x1A8] = 1;
	resign(r, f.leaf_key);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	static const char *const f2[] = { "ark_pinned", "chip_id", NULL };
	assert_fails_exactly(&v, f2);
	cf_verdict_free(&v);
	cf_snp_certs_free(c);
	free_fake(&f);

	/* A Turin VCEK without fmcSPL cannot vouch for a Turin TCB. */
	int nofmc[10] = { -1, 2, 3, 4, -1, 0, 0, 0, 5, -1 };
	f = make_fake("Turin", "Turin", nofmc, hwid, sizeof(hwid));
	r[0x1A8] = 0;
	resign(r, f.leaf_key);
	c = load(f.leaf_der, f.chain_pem);
	verify_cached(c, r, sizeof(r), utc(2025, 6, 1), &v);
	assert_fails_exactly(&v, f1);
	cf_verdict_free(&v);
	cf_snp_certs_free(c);
	free_fake(&f);
}

/* --- speed (reported, not asserted) --- */

static void test_speed(void **state)
{
	(void)state;
	const int n = 300;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		cf_verdict v;
		verify_cached(d.c1, d.s1.data, d.s1.len, utc(2025, 6, 1), &v);
		assert_true(cf_verdict_ok(&v));
		cf_verdict_free(&v);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("cached certificates: %.0f verifications/s (this build)\n", n / s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s1_verifies),
		cmocka_unit_test(test_s2_verifies),
		cmocka_unit_test(test_s6_verifies),
		cmocka_unit_test(test_s3_vlek),
		cmocka_unit_test(test_invalid_vceks),
		cmocka_unit_test(test_turin_chain_only),
		cmocka_unit_test(test_every_bit_of_signed_region),
		cmocka_unit_test(test_every_bit_of_signature),
		cmocka_unit_test(test_truncation_and_extension),
		cmocka_unit_test(test_format_fields),
		cmocka_unit_test(test_wrong_keys_and_roots),
		cmocka_unit_test(test_missing_or_bad_collateral),
		cmocka_unit_test(test_unpinned_ark),
		cmocka_unit_test(test_turin_layout),
		cmocka_unit_test(test_speed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
