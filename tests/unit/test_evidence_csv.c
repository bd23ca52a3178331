/*
 * Unit tests for the Hygon CSV verifier (lib/evidence/csv*.c) on the real
 * staged set C1 (testdata/csv/csv-rs: HRK, HSK || CEK, a V1 report in raw
 * firmware form from chip NZA9T14052605). The chain verifies completely;
 * every single-bit flip of the report, the HRK, the HSK and the CEK fails
 * the matching check; truncation and extension fail cleanly; a root that
 * signs the same chain but is not the pinned HRK fails only hrk_pinned;
 * the unsigned anonce lets the decoded fields shift, which the mnonce
 * claim exposes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "coffer/evidence.h"

#include "../../lib/evidence/csv_internal.h"

/* Launch digest and policy of C1 (FORMATS.md, README.md "Hygon CSV"). */
#define C1_DIGEST "1178dadbf826ec7a07444ba358376d81c312cb53d703f9da83b26c1eee2ea052"
#define C1_MNONCE "67c6697351ff4aec29cdbaabf2fbe346"
#define C1_POLICY 0x40000001

static struct {
	uint8_t *report, *hrk, *hsk_cek;
	size_t report_len, hrk_len, hsk_cek_len;
} d;

static uint8_t *slurp(const char *name, size_t *len)
{
	const char *td = getenv("COFFER_TESTDATA");
	char path[4096];
	assert_non_null(td);
	snprintf(path, sizeof(path), "%s/csv/csv-rs/%s", td, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)sz + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*len = (size_t)sz;
	return p;
}

static int setup(void **state)
{
	(void)state;
	d.report = slurp("report.cert", &d.report_len);
	d.hrk = slurp("hrk.cert", &d.hrk_len);
	d.hsk_cek = slurp("hsk_cek.cert", &d.hsk_cek_len);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(d.report);
	free(d.hrk);
	free(d.hsk_cek);
	return 0;
}

static void verify(const uint8_t *rep, size_t rl, const uint8_t *hrk, size_t hl, const uint8_t *hc,
		   size_t hcl, cf_verdict *v)
{
	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_CSV;
	in.evidence = (cf_blob){ rep, rl };
	in.hrk = (cf_blob){ hrk, hl };
	in.hsk_cek = (cf_blob){ hc, hcl };
	in.at = 1700000000;
	assert_int_equal(cf_evidence_verify(&in, v), CF_OK);
}

static void verify_c1(cf_verdict *v)
{
	verify(d.report, d.report_len, d.hrk, d.hrk_len, d.hsk_cek, d.hsk_cek_len, v);
}

static const cf_check *check(const cf_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		if (strcmp(v->checks[i].name, name) == 0)
			return &v->checks[i];
	}
	fail_msg("no check named %s", name);
	return NULL;
}

static cf_check_state state(const cf_verdict *v, const char *name)
{
	return check(v, name)->state;
}

static const char *claim_str(const cf_verdict *v, const char *key)
{
	json_t *s = json_object_get(v->claims, key);
	assert_true(json_is_string(s));
	return json_string_value(s);
}

static const char *measurement(const cf_verdict *v, const char *key)
{
	json_t *m = json_object_get(v->claims, "measurements");
	assert_true(json_is_object(m));
	json_t *s = json_object_get(m, key);
	assert_true(json_is_string(s));
	return json_string_value(s);
}

static void dump_failures(const cf_verdict *v)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		if (v->checks[i].state == CF_CHECK_FAIL)
			print_message("  %s: want %s, got %s\n", v->checks[i].name,
				      v->checks[i].expected, v->checks[i].actual);
	}
}

/* --- the complete, valid set --- */

static void c1_verifies(void **state_)
{
	(void)state_;
	cf_verdict v;
	verify_c1(&v);
	dump_failures(&v);
	assert_true(cf_verdict_ok(&v));
	static const char *const passes[] = { "format", "hrk_pinned", "hrk_self_signature",
					      "hsk_signature", "cek_signature", "pek_signature",
					      "report_signature", "signer_mac", "chip_id" };
	for (size_t i = 0; i < sizeof(passes) / sizeof(passes[0]); i++)
		assert_int_equal(state(&v, passes[i]), CF_CHECK_PASS);
	/* Nothing the formats lack is reported as a pass. */
	assert_int_equal(state(&v, "mnonce"), CF_CHECK_SKIPPED);
	assert_int_equal(state(&v, "cert_validity"), CF_CHECK_SKIPPED);
	assert_int_equal(state(&v, "revocation"), CF_CHECK_SKIPPED);
	assert_non_null(strstr(check(&v, "report_signature")->expected, "HYGON-SSD-PEK"));
	assert_non_null(strstr(check(&v, "pek_signature")->expected, "HYGON-SSD-CEK"));

	assert_int_equal(v.tee, CF_TEE_CSV);
	assert_false(v.debug);
	assert_int_equal(v.tcb_status, CF_TCB_UNKNOWN);
	assert_string_equal(claim_str(&v, "tee"), "csv");
	assert_string_equal(measurement(&v, "digest"), C1_DIGEST);
	assert_string_equal(claim_str(&v, "mnonce"), C1_MNONCE);
	assert_string_equal(claim_str(&v, "chip_id"), "NZA9T14052605");
	assert_string_equal(claim_str(&v, "anonce"), "9b429112");
	assert_string_equal(claim_str(&v, "tcb_status"), "Unknown");
	assert_string_equal(claim_str(&v, "pek_firmware_version"), "1.3");
	/* report_data: "user data" then zeros. */
	assert_memory_equal(claim_str(&v, "report_data"), "757365722064617461000000", 24);
	assert_int_equal(strlen(claim_str(&v, "report_data")), 128);
	json_t *pol = json_object_get(v.claims, "policy");
	assert_true(json_is_object(pol));
	assert_int_equal(json_integer_value(json_object_get(pol, "value")), C1_POLICY);
	assert_true(json_is_true(json_object_get(pol, "nodbg")));
	assert_true(json_is_false(json_object_get(pol, "noks")));
	assert_int_equal(json_integer_value(json_object_get(pol, "api_minor")), 0x40);
	assert_int_equal(json_integer_value(json_object_get(pol, "api_major")), 0);
	assert_true(json_is_false(json_object_get(v.claims, "debug")));

	/* A policy on the digest and report_data holds. */
	json_error_t err;
	json_t *policy = json_loads("{\"tee\":[\"csv\"],\"measurements\":{\"digest\":[\"" C1_DIGEST
				    "\"]},\"allow_debug\":false}",
				    0, &err);
	assert_non_null(policy);
	assert_int_equal(cf_policy_apply(policy, 1700000000, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	json_decref(policy);
	cf_verdict_free(&v);

	/* The same chain again comes from the memo and gives the same verdict. */
	verify_c1(&v);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
}

/* --- single-bit flips --- */

static void report_bitflips(void **state_)
{
	(void)state_;
	uint8_t *r = malloc(d.report_len);
	assert_non_null(r);
	for (size_t i = 0; i < d.report_len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(r, d.report, d.report_len);
			r[i] ^= (uint8_t)(1u << b);
			cf_verdict v;
			verify(r, d.report_len, d.hrk, d.hrk_len, d.hsk_cek, d.hsk_cek_len, &v);
			if (cf_verdict_ok(&v))
				fail_msg("flip of report byte %zu bit %d still verifies", i, b);
			/* The chain is untouched. */
			assert_int_equal(state(&v, "cek_signature"), CF_CHECK_PASS);
			if (i < CSV_REPORT_SIGNED_LEN) {
				/* user_pubkey_digest .. policy: signed */
				assert_int_equal(state(&v, "format"), CF_CHECK_PASS);
				assert_int_equal(state(&v, "report_signature"), CF_CHECK_FAIL);
				assert_int_equal(state(&v, "pek_signature"), CF_CHECK_PASS);
				if (i >= 0x80 && i < 0x90) /* mnonce: also the MAC key */
					assert_int_equal(state(&v, "signer_mac"), CF_CHECK_FAIL);
				else
					assert_int_equal(state(&v, "signer_mac"), CF_CHECK_PASS);
			} else if (i < 0xC0) {
				/* sig_usage, sig_algo, anonce: unsigned, but must decode right */
				assert_int_equal(state(&v, "format"), CF_CHECK_FAIL);
			} else if (i < CSV_TEE_INFO_LEN) {
				/* r and s: high bytes must be zero, low bytes are the signature */
				size_t k = (i - 0xC0) % 72;
				assert_int_equal(state(&v, "format"),
						 k < 32 ? CF_CHECK_PASS : CF_CHECK_FAIL);
				if (k < 32)
					assert_int_equal(state(&v, "report_signature"), CF_CHECK_FAIL);
			} else {
				/* PEK || SN || reserved || mac: the MAC binds them (the CEK the PEK) */
				if (state(&v, "format") == CF_CHECK_PASS)
					assert_int_equal(state(&v, "signer_mac"), CF_CHECK_FAIL);
				else
					assert_true(i < CSV_TEE_INFO_LEN + CSV_CERT_LEN);
				if (i < CSV_TEE_INFO_LEN + CSV_CERT_BODY_LEN &&
				    state(&v, "format") == CF_CHECK_PASS)
					assert_true(state(&v, "pek_signature") == CF_CHECK_FAIL ||
						    state(&v, "report_signature") == CF_CHECK_FAIL);
			}
			cf_verdict_free(&v);
		}
	}
	free(r);
}

static void hrk_bitflips(void **state_)
{
	(void)state_;
	uint8_t *h = malloc(d.hrk_len);
	assert_non_null(h);
	for (size_t i = 0; i < d.hrk_len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(h, d.hrk, d.hrk_len);
			h[i] ^= (uint8_t)(1u << b);
			cf_verdict v;
			verify(d.report, d.report_len, h, d.hrk_len, d.hsk_cek, d.hsk_cek_len, &v);
			assert_false(cf_verdict_ok(&v));
			assert_int_equal(state(&v, "hrk_pinned"), CF_CHECK_FAIL);
			/* Every byte of the HRK is signed, reserved-zero or its signature. */
			if (state(&v, "hrk_self_signature") != CF_CHECK_FAIL)
				fail_msg("HRK byte %zu bit %d: self-signature still %s", i, b,
					 check(&v, "hrk_self_signature")->actual);
			cf_verdict_free(&v);
		}
	}
	free(h);
}

static void hsk_cek_bitflips(void **state_)
{
	(void)state_;
	uint8_t *h = malloc(d.hsk_cek_len);
	assert_non_null(h);
	for (size_t i = 0; i < d.hsk_cek_len; i++) {
		for (int b = 0; b < 8; b++) {
			memcpy(h, d.hsk_cek, d.hsk_cek_len);
			h[i] ^= (uint8_t)(1u << b);
			cf_verdict v;
			verify(d.report, d.report_len, d.hrk, d.hrk_len, h, d.hsk_cek_len, &v);
			assert_false(cf_verdict_ok(&v));
			assert_int_equal(state(&v, "hrk_pinned"), CF_CHECK_PASS);
			const char *want = i < CSV_CA_CERT_LEN ? "hsk_signature" : "cek_signature";
			if (state(&v, want) != CF_CHECK_FAIL)
				fail_msg("HSK||CEK byte %zu bit %d: %s still %s", i, b, want,
					 check(&v, want)->actual);
			/* The report is untouched. */
			assert_int_equal(state(&v, "format"), CF_CHECK_PASS);
			assert_int_equal(state(&v, "report_signature"), CF_CHECK_PASS);
			cf_verdict_free(&v);
		}
	}
	free(h);
}

/* --- truncation and extension --- */

static void report_truncation_extension(void **state_)
{
	(void)state_;
	uint8_t *big = calloc(1, 4096 + 1);
	assert_non_null(big);
	memcpy(big, d.report, d.report_len);
	for (size_t n = 0; n < d.report_len; n++) {
		cf_verdict v;
		/* From a copy of exactly n bytes, so ASan sees any over-read. */
		uint8_t *t = malloc(n ? n : 1);
		assert_non_null(t);
		memcpy(t, d.report, n);
		verify(n ? t : NULL, n, d.hrk, d.hrk_len, d.hsk_cek, d.hsk_cek_len, &v);
		assert_false(cf_verdict_ok(&v));
		assert_int_equal(state(&v, "format"), CF_CHECK_FAIL);
		assert_int_equal(state(&v, "report_signature"), CF_CHECK_SKIPPED);
		/* The chain is still judged on its own. */
		assert_int_equal(state(&v, "cek_signature"), CF_CHECK_PASS);
		cf_verdict_free(&v);
		free(t);
	}
	static const size_t ext[] = { 1, 2, 4, 100, 4096 - 2548, 4096 - 2548 + 1 };
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		cf_verdict v;
		verify(big, d.report_len + ext[i], d.hrk, d.hrk_len, d.hsk_cek, d.hsk_cek_len, &v);
		assert_false(cf_verdict_ok(&v));
		assert_int_equal(state(&v, "format"), CF_CHECK_FAIL);
		cf_verdict_free(&v);
	}
	/* An extended (V2/V3) wrapper is refused by name. */
	memcpy(big, "ATTESTATION_EXT", 16);
	cf_verdict v;
	verify(big, 4096 + 1, d.hrk, d.hrk_len, d.hsk_cek, d.hsk_cek_len, &v);
	assert_int_equal(state(&v, "format"), CF_CHECK_FAIL);
	assert_non_null(strstr(check(&v, "format")->actual, "V2/V3"));
	cf_verdict_free(&v);
	free(big);
}

static void collateral_truncation_extension(void **state_)
{
	(void)state_;
	uint8_t *big = calloc(1, d.hsk_cek_len + 64);
	assert_non_null(big);
	memcpy(big, d.hsk_cek, d.hsk_cek_len);
	for (size_t n = 0; n < d.hsk_cek_len; n += (n < 840 || n > 2900) ? 1 : 37) {
		cf_verdict v;
		uint8_t *t = malloc(n ? n : 1);
		assert_non_null(t);
		memcpy(t, d.hsk_cek, n);
		verify(d.report, d.report_len, d.hrk, d.hrk_len, t, n, &v);
		assert_false(cf_verdict_ok(&v));
		assert_int_equal(state(&v, n < CSV_CA_CERT_LEN ? "hsk_signature" : "cek_signature"),
				 CF_CHECK_FAIL);
		assert_int_equal(state(&v, "format"), CF_CHECK_PASS);
		cf_verdict_free(&v);
		free(t);
	}
	for (size_t e = 1; e < 64; e += 7) {
		cf_verdict v;
		verify(d.report, d.report_len, d.hrk, d.hrk_len, big, d.hsk_cek_len + e, &v);
		assert_false(cf_verdict_ok(&v));
		assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_PASS);
		assert_int_equal(state(&v, "cek_signature"), CF_CHECK_FAIL);
		cf_verdict_free(&v);
	}
	/* HRK: short, long, empty. */
	uint8_t hbig[CSV_CA_CERT_LEN + 8] = { 0 };
	memcpy(hbig, d.hrk, d.hrk_len);
	static const size_t hl[] = { 1, 4, 575, 576, 720, 831, 833, 840 };
	for (size_t i = 0; i < sizeof(hl) / sizeof(hl[0]); i++) {
		cf_verdict v;
		verify(d.report, d.report_len, hbig, hl[i], d.hsk_cek, d.hsk_cek_len, &v);
		assert_false(cf_verdict_ok(&v));
		assert_int_equal(state(&v, "hrk_pinned"), CF_CHECK_FAIL);
		assert_int_equal(state(&v, "hrk_self_signature"), CF_CHECK_FAIL);
		cf_verdict_free(&v);
	}
	/* CEK || HSK (the wrong order) and HSK alone. */
	uint8_t *swapped = malloc(d.hsk_cek_len);
	assert_non_null(swapped);
	memcpy(swapped, d.hsk_cek + CSV_CA_CERT_LEN, CSV_CERT_LEN);
	memcpy(swapped + CSV_CERT_LEN, d.hsk_cek, CSV_CA_CERT_LEN);
	cf_verdict v;
	verify(d.report, d.report_len, d.hrk, d.hrk_len, swapped, d.hsk_cek_len, &v);
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_FAIL);
	assert_int_equal(state(&v, "cek_signature"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	free(swapped);
	free(big);
}

static void missing_collateral(void **state_)
{
	(void)state_;
	cf_verdict v;
	verify(d.report, d.report_len, NULL, 0, d.hsk_cek, d.hsk_cek_len, &v);
	assert_false(cf_verdict_ok(&v));
	assert_int_equal(state(&v, "hrk_pinned"), CF_CHECK_FAIL);
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_SKIPPED);
	/* What does not depend on the HRK is still judged. */
	assert_int_equal(state(&v, "cek_signature"), CF_CHECK_PASS);
	assert_int_equal(state(&v, "report_signature"), CF_CHECK_PASS);
	cf_verdict_free(&v);

	verify(d.report, d.report_len, d.hrk, d.hrk_len, NULL, 0, &v);
	assert_false(cf_verdict_ok(&v));
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_FAIL);
	assert_int_equal(state(&v, "cek_signature"), CF_CHECK_SKIPPED);
	assert_int_equal(state(&v, "pek_signature"), CF_CHECK_SKIPPED);
	assert_int_equal(state(&v, "report_signature"), CF_CHECK_PASS);
	cf_verdict_free(&v);

	/* The HSK alone: no CEK follows it. */
	verify(d.report, d.report_len, d.hrk, d.hrk_len, d.hsk_cek, CSV_CA_CERT_LEN, &v);
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_PASS);
	assert_int_equal(state(&v, "cek_signature"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
}

/* --- a different root --- */

static void different_hrk_key(void **state_)
{
	(void)state_;
	uint8_t h[CSV_CA_CERT_LEN];
	memcpy(h, d.hrk, sizeof(h));
	h[0x44] ^= 0x5a; /* public key x, first byte */
	cf_verdict v;
	verify(d.report, d.report_len, h, sizeof(h), d.hsk_cek, d.hsk_cek_len, &v);
	assert_false(cf_verdict_ok(&v));
	assert_int_equal(state(&v, "hrk_pinned"), CF_CHECK_FAIL);
	assert_string_equal(check(&v, "hrk_pinned")->expected,
			    "296efa97580464aca0ab5eefe42199ee05862182508d1629f29cf4dc175b10cd");
	assert_int_equal(state(&v, "hrk_self_signature"), CF_CHECK_FAIL);
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
}

static void le32_put(uint8_t *p, uint32_t x)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(x >> (8 * i));
}

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* SM2/SM3 signature with distinguishing ID, written as r, s 32-byte LE. */
static void sm2_sign(EVP_PKEY *k, const char *id, const uint8_t *msg, size_t len, uint8_t *r_out,
		     uint8_t *s_out)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	uint8_t der[128];
	size_t derlen = sizeof(der);
	assert_non_null(m);
	assert_int_equal(EVP_DigestSignInit_ex(m, &pc, "SM3", NULL, NULL, k, NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set1_id(pc, id, (int)strlen(id)), 1);
	assert_int_equal(EVP_DigestSign(m, der, &derlen, msg, len), 1);
	const uint8_t *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	assert_non_null(sig);
	assert_true(BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), r_out, 32) == 32);
	assert_true(BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), s_out, 32) == 32);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(m);
}

/*
 * A root with the HRK's key id and user id but another key, self-signed,
 * that re-signs the real HSK: the whole chain verifies except the pin.
 */
static void foreign_root_fails_only_pin(void **state_)
{
	(void)state_;
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
	EVP_PKEY *k = NULL;
	assert_non_null(kc);
	assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
	assert_int_equal(EVP_PKEY_generate(kc, &k), 1);
	uint8_t pub[65];
	size_t publen = 0;
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub,
							 sizeof(pub), &publen), 1);
	assert_int_equal(publen, 65);

	uint8_t hrk[CSV_CA_CERT_LEN];
	uint8_t *hc = malloc(d.hsk_cek_len);
	assert_non_null(hc);
	memcpy(hrk, d.hrk, sizeof(hrk));
	memcpy(hc, d.hsk_cek, d.hsk_cek_len);
	for (int i = 0; i < 32; i++) {
		hrk[0x44 + i] = pub[1 + 31 - i];            /* x, LE */
		hrk[0x44 + 72 + i] = pub[1 + 32 + 31 - i];  /* y, LE */
	}
	sm2_sign(k, "HYGON-SSD-HRK", hrk, CSV_CA_BODY_LEN, hrk + 576, hrk + 576 + 72);
	sm2_sign(k, "HYGON-SSD-HRK", hc, CSV_CA_BODY_LEN, hc + 576, hc + 576 + 72);

	cf_verdict v;
	verify(d.report, d.report_len, hrk, sizeof(hrk), hc, d.hsk_cek_len, &v);
	assert_false(cf_verdict_ok(&v));
	for (size_t i = 0; i < v.nchecks; i++) {
		if (strcmp(v.checks[i].name, "hrk_pinned") == 0)
			assert_int_equal(v.checks[i].state, CF_CHECK_FAIL);
		else if (v.checks[i].state == CF_CHECK_FAIL)
			fail_msg("%s failed: %s", v.checks[i].name, v.checks[i].actual);
	}
	assert_int_equal(state(&v, "hrk_self_signature"), CF_CHECK_PASS);
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_PASS);
	cf_verdict_free(&v);

	/* Signed with the default SM2 ID instead of the signer's user id: refused. */
	sm2_sign(k, "1234567812345678", hc, CSV_CA_BODY_LEN, hc + 576, hc + 576 + 72);
	verify(d.report, d.report_len, hrk, sizeof(hrk), hc, d.hsk_cek_len, &v);
	assert_int_equal(state(&v, "hsk_signature"), CF_CHECK_FAIL);
	cf_verdict_free(&v);

	free(hc);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(kc);
}

/* The real signatures check only under the signer's user id. */
static void sm2_distinguishing_id(void **state_)
{
	(void)state_;
	csv_ca_cert hrk;
	char why[CSV_WHY_LEN];
	assert_int_equal(csv_ca_cert_parse(d.hrk, d.hrk_len, CSV_USAGE_HRK, &hrk, why), CF_OK);
	assert_int_equal(csv_sm2_verify(&hrk.key, hrk.uid, hrk.uid_len, hrk.body, CSV_CA_BODY_LEN,
					&hrk.sig, false),
			 CF_OK);
	assert_int_equal(csv_sm2_verify(&hrk.key, (const uint8_t *)"1234567812345678", 16, hrk.body,
					CSV_CA_BODY_LEN, &hrk.sig, false),
			 CF_ERR_AUTH);
	/* A point off the curve is a key error, not a crash. */
	hrk.key.y[0] ^= 1;
	assert_int_equal(csv_sm2_verify(&hrk.key, hrk.uid, hrk.uid_len, hrk.body, CSV_CA_BODY_LEN,
					&hrk.sig, true),
			 CF_ERR_PARSE);
	/* r = 0 and s = n are out of range. */
	assert_int_equal(csv_ca_cert_parse(d.hrk, d.hrk_len, CSV_USAGE_HRK, &hrk, why), CF_OK);
	memset(hrk.sig.r, 0, sizeof(hrk.sig.r));
	assert_int_equal(csv_sm2_verify(&hrk.key, hrk.uid, hrk.uid_len, hrk.body, CSV_CA_BODY_LEN,
					&hrk.sig, false),
			 CF_ERR_AUTH);
}

/*
 * anonce is not signed: re-encoding the unsigned parts under another
 * anonce keeps every signature valid while the decoded fields shift. The
 * verdict cannot tell without the mnonce the relying party sent; the
 * claims show it (mnonce changes), and here the shift clears NODBG, which
 * the debug check refuses.
 */
static void anonce_shift_is_visible(void **state_)
{
	(void)state_;
	const uint32_t delta = 0x00000001;
	uint8_t *r = malloc(d.report_len);
	assert_non_null(r);
	memcpy(r, d.report, d.report_len);
	uint32_t anonce = le32_get(r + 0xBC) ^ delta;
	le32_put(r + 0xBC, anonce);
	le32_put(r + 0xB4, le32_get(r + 0xB4) ^ delta); /* sig_usage */
	le32_put(r + 0xB8, le32_get(r + 0xB8) ^ delta); /* sig_algo */
	for (size_t i = 0; i < CSV_CERT_LEN + CSV_SN_LEN; i++)
		r[CSV_TEE_INFO_LEN + i] ^= (uint8_t)(delta >> (8 * (i % 4)));
	uint8_t key[16];
	for (size_t i = 0; i < 16; i++)
		key[i] = r[0x80 + i] ^ (uint8_t)(anonce >> (8 * (i % 4)));
	size_t maclen = 0;
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SM3", NULL, key, sizeof(key),
				  r + CSV_TEE_INFO_LEN, CSV_SIGNER_MAC_DATA_LEN,
				  r + CSV_TEE_INFO_LEN + CSV_SIGNER_MAC_DATA_LEN, 32, &maclen));

	cf_verdict v;
	verify(r, d.report_len, d.hrk, d.hrk_len, d.hsk_cek, d.hsk_cek_len, &v);
	dump_failures(&v);
	assert_true(cf_verdict_ok(&v)); /* every signature and the MAC hold */
	assert_true(v.debug);           /* 0x40000001 ^ 1: NODBG clear */
	assert_string_not_equal(claim_str(&v, "mnonce"), C1_MNONCE);
	assert_string_not_equal(measurement(&v, "digest"), C1_DIGEST);
	assert_int_equal(cf_policy_apply(NULL, 0, &v), CF_OK);
	assert_false(cf_verdict_ok(&v));
	assert_int_equal(state(&v, "debug"), CF_CHECK_FAIL);
	cf_verdict_free(&v);
	free(r);
}

/* --- the parsers alone --- */

static void parsers_strict(void **state_)
{
	(void)state_;
	char why[CSV_WHY_LEN];
	csv_ca_cert ca;
	csv_cert c;
	csv_report *rep = malloc(sizeof(*rep));
	assert_non_null(rep);
	/* Roles are not interchangeable. */
	assert_int_equal(csv_ca_cert_parse(d.hsk_cek, CSV_CA_CERT_LEN, CSV_USAGE_HRK, &ca, why),
			 CF_ERR_PARSE);
	assert_non_null(strstr(why, "key usage"));
	assert_int_equal(csv_ca_cert_parse(d.hrk, d.hrk_len, CSV_USAGE_HSK, &ca, why), CF_ERR_PARSE);
	assert_int_equal(csv_cert_parse(d.hsk_cek + CSV_CA_CERT_LEN, CSV_CERT_LEN, CSV_USAGE_PEK, &c,
					why),
			 CF_ERR_PARSE);
	assert_int_equal(csv_cert_parse(d.hsk_cek + CSV_CA_CERT_LEN, CSV_CERT_LEN, CSV_USAGE_CEK, &c,
					why),
			 CF_OK);
	assert_int_equal(c.version, 2);
	assert_non_null(csv_cert_slot(&c, CSV_USAGE_HSK));
	assert_null(csv_cert_slot(&c, CSV_USAGE_CEK));
	assert_int_equal(c.slots[1].usage, CSV_USAGE_INVALID);
	/* The report's PEK: signed by the CEK and by the owner (OCA). */
	assert_int_equal(csv_report_parse(d.report, d.report_len, rep, why), CF_OK);
	assert_int_equal(rep->policy, C1_POLICY);
	assert_non_null(csv_cert_slot(&rep->pek, CSV_USAGE_CEK));
	assert_non_null(csv_cert_slot(&rep->pek, CSV_USAGE_OCA));
	assert_int_equal(rep->pek.fw_major, 1);
	assert_int_equal(rep->pek.fw_minor, 3);
	/* Sizes are exact. */
	assert_int_equal(csv_report_parse(d.report, d.report_len - 1, rep, why), CF_ERR_TRUNCATED);
	assert_int_equal(csv_ca_cert_parse(d.hrk, d.hrk_len - 1, CSV_USAGE_HRK, &ca, why),
			 CF_ERR_TRUNCATED);
	/* Non-zero reserved bytes are named by offset. */
	uint8_t h[CSV_CA_CERT_LEN];
	memcpy(h, d.hrk, sizeof(h));
	h[800] = 1;
	assert_int_equal(csv_ca_cert_parse(h, sizeof(h), CSV_USAGE_HRK, &ca, why), CF_ERR_PARSE);
	assert_non_null(strstr(why, "720"));
	/* Serial numbers: printable then NUL padding only. */
	uint8_t sn[CSV_SN_LEN] = "NZA9T14052605";
	char out[2 * CSV_SN_LEN + 1];
	assert_true(csv_sn_string(sn, out));
	assert_string_equal(out, "NZA9T14052605");
	sn[20] = 'x';
	assert_false(csv_sn_string(sn, out));
	memset(sn, 0, sizeof(sn));
	assert_false(csv_sn_string(sn, out));
	free(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(c1_verifies),
		cmocka_unit_test(parsers_strict),
		cmocka_unit_test(sm2_distinguishing_id),
		cmocka_unit_test(missing_collateral),
		cmocka_unit_test(different_hrk_key),
		cmocka_unit_test(foreign_root_fails_only_pin),
		cmocka_unit_test(anonce_shift_is_visible),
		cmocka_unit_test(report_truncation_extension),
		cmocka_unit_test(collateral_truncation_extension),
		cmocka_unit_test(report_bitflips),
		cmocka_unit_test(hrk_bitflips),
		cmocka_unit_test(hsk_cek_bitflips),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
