/*
 * Unit tests for the Intel DCAP verifier (lib/evidence/dcap*.c) on the
 * staged real quotes and collateral (testdata/README.md, tables "Intel
 * TDX" and "Intel SGX"): the documented outcome of every set, every
 * collateral time window, every bit of the signed header and body and of
 * the QE report, truncation at every length, trailing bytes, wrong kinds,
 * tampered collateral, and Intel's TCB status algorithm on synthetic TCB
 * Info. Collateral files are read once (group setup).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "coffer/json.h"
#include "../../lib/evidence/dcap_internal.h"

/* --- files --- */

#define MAX_FILES 64

static struct {
	char name[160];
	uint8_t *data;
	size_t len;
} files[MAX_FILES];
static size_t nfiles;

static cf_blob load(const char *rel)
{
	for (size_t i = 0; i < nfiles; i++) {
		if (strcmp(files[i].name, rel) == 0)
			return (cf_blob){ files[i].data, files[i].len };
	}
	const char *root = getenv("COFFER_TESTDATA");
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", root ? root : "../shared/testdata", rel);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "missing test file %s\n", path);
		fail();
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	assert_true(n >= 0 && nfiles < MAX_FILES);
	uint8_t *d = malloc((size_t)n + 1);
	assert_non_null(d);
	assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	d[n] = 0;
	snprintf(files[nfiles].name, sizeof(files[nfiles].name), "%s", rel);
	files[nfiles].data = d;
	files[nfiles].len = (size_t)n;
	nfiles++;
	return (cf_blob){ d, (size_t)n };
}

#define T1_QUOTE "tdx/dcap-qvl/tdx_quote"
#define T1_COLL "tdx/dcap-qvl/tdx_quote_collateral.json"
#define T1_SPLIT "tdx/dcap-qvl/tdx_quote.collateral.derived/"
#define T2_QUOTE "tdx/dcap-qvl/tdx_quote_outdated"
#define T2_COLL "tdx/dcap-qvl/tdx_quote_outdated_collateral.json"
#define G1_QUOTE "sgx/dcap-qvl/sgx_quote"
#define G1_COLL "sgx/dcap-qvl/sgx_quote_collateral.json"
#define G1_SPLIT "sgx/dcap-qvl/sgx_quote.collateral.derived/"
#define ROOT_DER "tdx/dcap-qvl/TrustedRootCA.der"
#define GTG "tdx/go-tdx-guest/"
#define T4_QUOTE "tdx/trustee/tdx_quote_4.dat"
#define T5_QUOTE GTG "tdx_prod_quote_SPR_E4.dat"
#define COS_QUOTE GTG "cos-113-tdx-quote.dat"
#define OCC_QUOTE "sgx/trustee/occlum_quote.dat"

static time_t iso(const char *s)
{
	time_t t = 0;
	assert_int_equal(dcap_parse_iso_time(s, &t), CF_OK);
	return t;
}

static int group_setup(void **state)
{
	(void)state;
	const char *all[] = { T1_QUOTE, T1_COLL, T2_QUOTE, T2_COLL, G1_QUOTE, G1_COLL, ROOT_DER,
			      T4_QUOTE, T5_QUOTE, COS_QUOTE, OCC_QUOTE };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		(void)load(all[i]);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].data);
	nfiles = 0;
	dcap_cache_flush();
	return 0;
}

/* --- verdict helpers --- */

static void dump(const cf_verdict *v)
{
	json_t *j = cf_verdict_json(v, cf_verdict_ok(v));
	char *s = json_dumps(j, JSON_INDENT(1));
	fprintf(stderr, "%s\n", s ? s : "(null)");
	free(s);
	json_decref(j);
}

static const cf_check *find(const cf_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		if (strcmp(v->checks[i].name, name) == 0)
			return &v->checks[i];
	}
	return NULL;
}

static void expect_state(const cf_verdict *v, const char *name, cf_check_state st)
{
	const cf_check *c = find(v, name);
	if (!c || c->state != st) {
		fprintf(stderr, "check %s: expected state %d, got %d\n", name, (int)st,
			c ? (int)c->state : -1);
		dump(v);
		fail();
	}
}

static void expect_actual_contains(const cf_verdict *v, const char *name, const char *needle)
{
	const cf_check *c = find(v, name);
	if (!c || !strstr(c->actual, needle)) {
		fprintf(stderr, "check %s: actual lacks \"%s\"\n", name, needle);
		dump(v);
		fail();
	}
}

static void expect_all_pass(const cf_verdict *v)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		if (v->checks[i].state != CF_CHECK_PASS) {
			fprintf(stderr, "check %s is not a pass\n", v->checks[i].name);
			dump(v);
			fail();
		}
	}
}

static const char *claim_str(const cf_verdict *v, const char *key)
{
	json_t *c = json_object_get(v->claims, key);
	return json_is_string(c) ? json_string_value(c) : NULL;
}

static const char *measurement(const cf_verdict *v, const char *key)
{
	json_t *m = json_object_get(v->claims, "measurements");
	json_t *c = json_object_get(m, key);
	return json_is_string(c) ? json_string_value(c) : NULL;
}

static void run(const cf_evidence_input *in, cf_verdict *v)
{
	assert_int_equal(cf_evidence_verify(in, v), CF_OK);
}

static cf_evidence_input bundle_input(cf_tee_kind kind, const char *quote, const char *coll,
				      const char *when)
{
	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.evidence = load(quote);
	if (coll)
		in.collateral = load(coll);
	in.at = iso(when);
	return in;
}

/* T4/T5 collateral: go-tdx-guest's PCS responses, CRLs and chains. */
static cf_evidence_input gtg_input(const char *quote)
{
	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_TDX;
	in.evidence = load(quote);
	in.tcb_info = load(GTG "sample_tcbInfo_response");
	in.qe_identity = load(GTG "sample_qeIdentity_response");
	in.tcb_chain = load(GTG "tcb_info_issuer_chain.derived.pem");
	in.pck_crl = load(GTG "pckcrl");
	in.root_crl = load(GTG "rootcrl.der");
	in.root_ca = load(GTG "trusted_root.pem");
	in.at = iso("2023-06-20T00:00:00Z");
	return in;
}

/* A PCS body {"<member>":<json file>,"signature":"<hex of sig file>"} (caller frees). */
static uint8_t *pcs_body(const char *json_rel, const char *sig_rel, const char *member, size_t *len)
{
	cf_blob j = load(json_rel), s = load(sig_rel);
	assert_int_equal(s.len, 64);
	char hex[129];
	cf_hex_encode(s.data, 64, hex);
	size_t cap = j.len + 256;
	char *out = malloc(cap);
	assert_non_null(out);
	int n = snprintf(out, cap, "{\"%s\":%.*s,\"signature\":\"%s\"}", member, (int)j.len,
			 (const char *)j.data, hex);
	assert_true(n > 0 && (size_t)n < cap);
	*len = (size_t)n;
	return (uint8_t *)out;
}

/* Same outcome, claims and check states (the texts may name the root differently). */
static bool same_outcome(const cf_verdict *a, const cf_verdict *b)
{
	bool same = cf_verdict_ok(a) == cf_verdict_ok(b) && a->tcb_status == b->tcb_status &&
		    a->debug == b->debug && json_equal(a->claims, b->claims) &&
		    a->nchecks == b->nchecks;
	for (size_t i = 0; same && i < a->nchecks; i++)
		same = strcmp(a->checks[i].name, b->checks[i].name) == 0 &&
		       a->checks[i].state == b->checks[i].state;
	if (!same) {
		dump(a);
		dump(b);
	}
	return same;
}

static bool same_verdict(const cf_verdict *a, const cf_verdict *b)
{
	json_t *x = cf_verdict_json(a, cf_verdict_ok(a)), *y = cf_verdict_json(b, cf_verdict_ok(b));
	bool same = json_equal(x, y);
	if (!same) {
		dump(a);
		dump(b);
	}
	json_decref(x);
	json_decref(y);
	return same;
}

/* --- the documented sets --- */

static void test_t1_up_to_date(void **state)
{
	(void)state;
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	run(&in, &v);
	expect_all_pass(&v);
	static const char *const names[] = {
		"format", "tee", "pck_chain", "cert_validity", "root_crl", "pck_crl",
		"tcb_info_signature", "tcb_info_validity", "fmspc", "tdx_module",
		"qe_report_signature", "qe_binding", "qe_identity_signature",
		"qe_identity_validity", "qe_identity", "quote_signature", "tcb_level",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_state(&v, names[i], CF_CHECK_PASS);
	assert_true(cf_verdict_ok(&v));
	assert_int_equal(v.tcb_status, CF_TCB_UP_TO_DATE);
	assert_false(v.debug);
	assert_string_equal(claim_str(&v, "tcb_status"), "UpToDate");
	json_t *adv = json_object_get(v.claims, "advisories");
	assert_true(json_is_array(adv));
	assert_int_equal(json_array_size(adv), 0);
	assert_string_equal(claim_str(&v, "fmspc"), "b0c06f000000");
	assert_int_equal(json_integer_value(json_object_get(v.claims, "quote_version")), 4);
	assert_int_equal(json_integer_value(json_object_get(v.claims, "pce_svn")), 11);
	assert_int_equal(json_integer_value(json_object_get(v.claims, "trailing_zero_bytes")), 70);
	assert_string_equal(claim_str(&v, "tee_tcb_svn"), "06010300000000000000000000000000");
	assert_string_equal(measurement(&v, "mr_td"),
			    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
			    "de03ae6dc5f87f27428b2538873118b7");
	static const char *const ms[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id",
					  "mr_owner", "mr_owner_config", "mr_seam",
					  "mr_signer_seam" };
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		assert_int_equal(strlen(measurement(&v, ms[i])), 96);
	assert_int_equal(strlen(claim_str(&v, "report_data")), 128);
	assert_non_null(claim_str(&v, "td_attributes"));
	assert_non_null(claim_str(&v, "xfam"));
	assert_non_null(claim_str(&v, "cpu_svn"));
	assert_true(json_is_false(json_object_get(v.claims, "debug")));
	/* No policy: only debug is checked, and it is off. */
	assert_int_equal(cf_policy_apply(NULL, in.at, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
}

static void test_t1_split_files_same_verdict(void **state)
{
	(void)state;
	static const struct {
		cf_tee_kind kind;
		const char *quote, *coll, *split, *when;
	} sets[] = {
		{ CF_TEE_TDX, T1_QUOTE, T1_COLL, T1_SPLIT, "2025-07-01T00:00:00Z" },
		{ CF_TEE_SGX, G1_QUOTE, G1_COLL, G1_SPLIT, "2025-07-01T00:00:00Z" },
	};
	for (size_t k = 0; k < 2; k++) {
		char a[200], b[200];
		cf_verdict v1, v2;
		cf_evidence_input in = bundle_input(sets[k].kind, sets[k].quote, sets[k].coll,
						    sets[k].when);
		in.root_ca = load(ROOT_DER);
		run(&in, &v1);

		cf_evidence_input sp = bundle_input(sets[k].kind, sets[k].quote, NULL, sets[k].when);
		size_t tl, ql;
		snprintf(a, sizeof(a), "%stcb_info.json", sets[k].split);
		snprintf(b, sizeof(b), "%stcb_info.sig.bin", sets[k].split);
		uint8_t *tcb = pcs_body(a, b, "tcbInfo", &tl);
		snprintf(a, sizeof(a), "%sqe_identity.json", sets[k].split);
		snprintf(b, sizeof(b), "%sqe_identity.sig.bin", sets[k].split);
		uint8_t *qe = pcs_body(a, b, "enclaveIdentity", &ql);
		sp.tcb_info = (cf_blob){ tcb, tl };
		sp.qe_identity = (cf_blob){ qe, ql };
		snprintf(a, sizeof(a), "%stcb_info_issuer_chain.pem", sets[k].split);
		sp.tcb_chain = load(a);
		snprintf(a, sizeof(a), "%spck_crl.der", sets[k].split);
		sp.pck_crl = load(a);
		snprintf(a, sizeof(a), "%sroot_ca_crl.der", sets[k].split);
		sp.root_crl = load(a);
		sp.root_ca = load(ROOT_DER);
		run(&sp, &v2);
		assert_true(cf_verdict_ok(&v2));
		assert_true(same_verdict(&v1, &v2));
		/* And both equal the verdict without an explicit root (pinned). */
		cf_verdict v3;
		sp.root_ca = (cf_blob){ NULL, 0 };
		run(&sp, &v3);
		assert_true(same_outcome(&v2, &v3));
		cf_verdict_free(&v1);
		cf_verdict_free(&v2);
		cf_verdict_free(&v3);
		free(tcb);
		free(qe);
	}
}

static void test_g1_configuration_and_sw_hardening(void **state)
{
	(void)state;
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_SGX, G1_QUOTE, G1_COLL, "2025-07-01T00:00:00Z");
	run(&in, &v);
	expect_all_pass(&v);
	assert_null(find(&v, "tdx_module"));
	assert_true(cf_verdict_ok(&v));
	assert_int_equal(v.tcb_status, CF_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
	assert_string_equal(claim_str(&v, "tcb_status"), "ConfigurationAndSWHardeningNeeded");
	json_t *adv = json_object_get(v.claims, "advisories");
	assert_int_equal(json_array_size(adv), 2);
	assert_string_equal(json_string_value(json_array_get(adv, 0)), "INTEL-SA-00289");
	assert_string_equal(json_string_value(json_array_get(adv, 1)), "INTEL-SA-00615");
	assert_string_equal(claim_str(&v, "fmspc"), "00a067110000");
	assert_string_equal(claim_str(&v, "pck_ca"), "processor");
	assert_int_equal(json_integer_value(json_object_get(v.claims, "quote_version")), 3);
	assert_non_null(measurement(&v, "mr_enclave"));
	assert_non_null(measurement(&v, "mr_signer"));
	assert_true(json_is_integer(json_object_get(v.claims, "isv_prod_id")));
	assert_true(json_is_integer(json_object_get(v.claims, "isv_svn")));
	assert_non_null(claim_str(&v, "attributes"));
	assert_false(v.debug);
	/* A policy asking for UpToDate refuses it; one accepting its status passes. */
	json_t *p = json_pack("{s:s}", "min_tcb_status", "UpToDate");
	assert_int_equal(cf_policy_apply(p, in.at, &v), CF_OK);
	assert_false(cf_verdict_ok(&v));
	json_decref(p);
	cf_verdict_free(&v);
	run(&in, &v);
	p = json_pack("{s:s}", "min_tcb_status", "ConfigurationAndSWHardeningNeeded");
	assert_int_equal(cf_policy_apply(p, in.at, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	json_decref(p);
	cf_verdict_free(&v);
}

static void test_t2_no_matching_level(void **state)
{
	(void)state;
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T2_QUOTE, T2_COLL, "2026-03-01T00:00:00Z");
	run(&in, &v);
	for (size_t i = 0; i < v.nchecks; i++) {
		if (strcmp(v.checks[i].name, "tcb_level") != 0)
			expect_state(&v, v.checks[i].name, CF_CHECK_PASS);
	}
	expect_state(&v, "tcb_level", CF_CHECK_FAIL);
	expect_actual_contains(&v, "tcb_level", "No matching TCB level");
	expect_actual_contains(&v, "tcb_level", "SGX component 8: PCK 3 < 5");
	assert_false(cf_verdict_ok(&v));
	assert_int_equal(v.tcb_status, CF_TCB_UNKNOWN);
	assert_int_equal(json_integer_value(json_object_get(v.claims, "quote_version")), 5);
	assert_non_null(claim_str(&v, "tee_tcb_svn2"));
	assert_non_null(measurement(&v, "mr_service_td"));
	cf_verdict_free(&v);
}

static void test_t4_debug_td(void **state)
{
	(void)state;
	cf_verdict v;
	cf_evidence_input in = gtg_input(T4_QUOTE);
	run(&in, &v);
	expect_all_pass(&v);
	assert_int_equal(v.tcb_status, CF_TCB_UP_TO_DATE);
	assert_true(v.debug);
	assert_true(json_is_true(json_object_get(v.claims, "debug")));
	assert_true(cf_verdict_ok(&v)); /* the verifier's checks pass ... */
	assert_int_equal(cf_policy_apply(NULL, in.at, &v), CF_OK);
	expect_state(&v, "debug", CF_CHECK_FAIL); /* ... but no policy accepts a debug TD */
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	run(&in, &v);
	json_t *p = json_pack("{s:b}", "allow_debug", 1);
	assert_int_equal(cf_policy_apply(p, in.at, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	json_decref(p);
	cf_verdict_free(&v);
	/* The same collateral without the explicit root: the pinned one is used. */
	in.root_ca = (cf_blob){ NULL, 0 };
	run(&in, &v);
	expect_all_pass(&v);
	cf_verdict_free(&v);
}

static void test_t5_no_matching_level(void **state)
{
	(void)state;
	cf_verdict v;
	cf_evidence_input in = gtg_input(T5_QUOTE);
	run(&in, &v);
	/*
	 * The staged file ends with 39 bytes "\nextra bytes(only for testing
	 * purpose)\n" (go-tdx-guest's padding test), not zeros: format fails.
	 */
	expect_state(&v, "format", CF_CHECK_FAIL);
	expect_actual_contains(&v, "format", "39 bytes after the signature data, not all zero");
	expect_state(&v, "tcb_level", CF_CHECK_FAIL);
	expect_actual_contains(&v, "tcb_level", "No matching TCB level");
	static const char *const ok[] = { "quote_signature", "qe_report_signature", "qe_binding",
					  "pck_chain", "cert_validity", "pck_crl", "root_crl",
					  "tcb_info_signature", "qe_identity_signature",
					  "qe_identity", "fmspc", "tdx_module" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		expect_state(&v, ok[i], CF_CHECK_PASS);
	cf_verdict_free(&v);
	/* Without the trailing text the quote is well-formed; the TCB still fails. */
	in.evidence.len -= 39;
	run(&in, &v);
	expect_state(&v, "format", CF_CHECK_PASS);
	expect_state(&v, "tcb_level", CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
}

static void test_signature_only_sets(void **state)
{
	(void)state;
	static const struct {
		cf_tee_kind kind;
		const char *quote, *fmspc;
	} sets[] = {
		{ CF_TEE_TDX, COS_QUOTE, "00806f050000" },
		{ CF_TEE_SGX, OCC_QUOTE, "00606a000000" },
	};
	for (size_t k = 0; k < 2; k++) {
		cf_verdict v;
		cf_evidence_input in = bundle_input(sets[k].kind, sets[k].quote, NULL,
						    "2025-01-01T00:00:00Z");
		run(&in, &v);
		static const char *const pass[] = { "format", "tee", "pck_chain", "cert_validity",
						    "qe_report_signature", "qe_binding",
						    "quote_signature" };
		for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
			expect_state(&v, pass[i], CF_CHECK_PASS);
		static const char *const skip[] = { "root_crl", "pck_crl", "tcb_info_signature",
						    "tcb_info_validity", "fmspc", "qe_identity",
						    "qe_identity_signature", "tcb_level" };
		for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			expect_state(&v, skip[i], CF_CHECK_SKIPPED);
		assert_true(cf_verdict_ok(&v)); /* "not checked" is not a pass, nor a failure */
		assert_int_equal(v.tcb_status, CF_TCB_UNKNOWN);
		assert_string_equal(claim_str(&v, "fmspc"), sets[k].fmspc);
		assert_string_equal(claim_str(&v, "pck_ca"), "platform");
		/* ... and a policy that needs a TCB status refuses it. */
		json_t *p = json_pack("{s:s, s:b}", "min_tcb_status", "OutOfDate", "allow_debug", 1);
		assert_int_equal(cf_policy_apply(p, in.at, &v), CF_OK);
		assert_false(cf_verdict_ok(&v));
		json_decref(p);
		cf_verdict_free(&v);
	}
	/* cos-113 is zero-padded to 8000 bytes; occlum is a debug enclave. */
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, COS_QUOTE, NULL, "2025-01-01T00:00:00Z");
	run(&in, &v);
	assert_int_equal(json_integer_value(json_object_get(v.claims, "trailing_zero_bytes")), 3065);
	cf_verdict_free(&v);
	in = bundle_input(CF_TEE_SGX, OCC_QUOTE, NULL, "2025-01-01T00:00:00Z");
	run(&in, &v);
	assert_true(v.debug);
	cf_verdict_free(&v);
}

/* --- collateral time windows --- */

static void test_collateral_time_windows(void **state)
{
	(void)state;
	static const struct {
		const char *when;
		const char *fail[6];
	} cases[] = {
		/* before the TCB Info, QE Identity and PCK CRL were issued */
		{ "2025-06-01T00:00:00Z",
		  { "tcb_info_validity", "qe_identity_validity", "pck_crl", NULL } },
		/* after their nextUpdate */
		{ "2025-08-01T00:00:00Z",
		  { "tcb_info_validity", "qe_identity_validity", "pck_crl", NULL } },
		/* after the Root CA CRL's nextUpdate too */
		{ "2026-05-01T00:00:00Z",
		  { "tcb_info_validity", "qe_identity_validity", "pck_crl", "root_crl", NULL } },
		/* before the PCK certificate (2025-02-06) */
		{ "2025-01-01T00:00:00Z",
		  { "cert_validity", "tcb_info_validity", "qe_identity_validity", "pck_crl",
		    "root_crl", NULL } },
		/* after the PCK certificate and TCB Signing certificate */
		{ "2033-01-01T00:00:00Z",
		  { "cert_validity", "tcb_info_validity", "qe_identity_validity", "pck_crl",
		    "root_crl", NULL } },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		cf_verdict v;
		cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, cases[k].when);
		run(&in, &v);
		size_t nfail = 0;
		for (size_t i = 0; cases[k].fail[i]; i++, nfail++)
			expect_state(&v, cases[k].fail[i], CF_CHECK_FAIL);
		size_t failed = 0;
		for (size_t i = 0; i < v.nchecks; i++)
			failed += v.checks[i].state == CF_CHECK_FAIL;
		if (failed != nfail) {
			fprintf(stderr, "at %s: %zu failures, expected %zu\n", cases[k].when, failed,
				nfail);
			dump(&v);
			fail();
		}
		/* Signatures do not depend on time. */
		expect_state(&v, "quote_signature", CF_CHECK_PASS);
		expect_state(&v, "tcb_info_signature", CF_CHECK_PASS);
		assert_false(cf_verdict_ok(&v));
		cf_verdict_free(&v);
	}
	/* The edges of the TCB Info window are inside it. */
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-06-19T10:32:27Z");
	run(&in, &v);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	in.at = iso("2025-07-19T10:00:35Z");
	run(&in, &v);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	in.at += 1; /* the PCK CRL's nextUpdate passed */
	run(&in, &v);
	expect_state(&v, "pck_crl", CF_CHECK_FAIL);
	cf_verdict_free(&v);
	/* G1 after its collateral expired. */
	in = bundle_input(CF_TEE_SGX, G1_QUOTE, G1_COLL, "2025-07-20T00:00:00Z");
	run(&in, &v);
	expect_state(&v, "tcb_info_validity", CF_CHECK_FAIL);
	expect_state(&v, "qe_identity_validity", CF_CHECK_FAIL);
	expect_state(&v, "pck_crl", CF_CHECK_FAIL);
	cf_verdict_free(&v);
}

/* --- hostile quotes --- */

static uint8_t *copy_of(cf_blob b, size_t extra)
{
	uint8_t *p = malloc(b.len + extra + 1);
	assert_non_null(p);
	memcpy(p, b.data, b.len);
	memset(p + b.len, 0, extra + 1);
	return p;
}

static void expect_refused(cf_evidence_input *in, const char *const *allowed, size_t nallowed,
			   size_t where)
{
	cf_verdict v;
	run(in, &v);
	if (cf_verdict_ok(&v)) {
		fprintf(stderr, "modified byte %zu still verifies\n", where);
		dump(&v);
		fail();
	}
	bool named = false;
	for (size_t i = 0; i < nallowed; i++) {
		const cf_check *c = find(&v, allowed[i]);
		named |= c && c->state == CF_CHECK_FAIL;
	}
	if (!named) {
		fprintf(stderr, "modified byte %zu fails for another reason\n", where);
		dump(&v);
		fail();
	}
	cf_verdict_free(&v);
}

static void test_bit_flips_signed_region(void **state)
{
	(void)state;
	static const char *const sets[][3] = { { T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z" },
					      { G1_QUOTE, G1_COLL, "2025-07-01T00:00:00Z" } };
	static const char *const allowed[] = { "format", "tee", "quote_signature" };
	for (size_t k = 0; k < 2; k++) {
		cf_evidence_input in = bundle_input(k ? CF_TEE_SGX : CF_TEE_TDX, sets[k][0],
						    sets[k][1], sets[k][2]);
		dcap_quote q;
		char why[200];
		assert_int_equal(dcap_quote_parse(in.evidence.data, in.evidence.len, &q, why,
						  sizeof(why)), CF_OK);
		uint8_t *p = copy_of(in.evidence, 0);
		in.evidence.data = p;
		for (size_t i = 0; i < q.signed_len; i++) {
			for (int b = 0; b < 8; b++) {
				p[i] ^= (uint8_t)(1u << b);
				expect_refused(&in, allowed, 3, i);
				p[i] ^= (uint8_t)(1u << b);
			}
		}
		free(p);
	}
}

static void test_bit_flips_qe_report_and_signatures(void **state)
{
	(void)state;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	dcap_quote q;
	char why[200];
	assert_int_equal(dcap_quote_parse(in.evidence.data, in.evidence.len, &q, why, sizeof(why)),
			 CF_OK);
	size_t qe = (size_t)(q.qe_report.raw - in.evidence.data);
	size_t sig = (size_t)(q.signature - in.evidence.data);
	size_t qesig = (size_t)(q.qe_report_sig - in.evidence.data);
	size_t auth = (size_t)(q.qe_auth - in.evidence.data);
	uint8_t *p = copy_of(in.evidence, 0);
	in.evidence.data = p;
	static const char *const qe_fail[] = { "format", "qe_report_signature" };
	for (size_t i = qe; i < qe + DCAP_SGX_REPORT_LEN; i++) {
		for (int b = 0; b < 8; b++) {
			p[i] ^= (uint8_t)(1u << b);
			expect_refused(&in, qe_fail, 2, i);
			p[i] ^= (uint8_t)(1u << b);
		}
	}
	for (size_t i = qesig; i < qesig + 64; i++) {
		p[i] ^= 0x01;
		expect_refused(&in, qe_fail, 2, i);
		p[i] ^= 0x01;
	}
	/* The quote signature and the attestation key. */
	static const char *const sig_fail[] = { "quote_signature", "qe_binding" };
	for (size_t i = sig; i < sig + 128; i++) {
		p[i] ^= 0x80;
		expect_refused(&in, sig_fail, 2, i);
		p[i] ^= 0x80;
	}
	/* The QE authentication data is bound by the QE report. */
	static const char *const auth_fail[] = { "qe_binding" };
	for (size_t i = auth; i < auth + q.qe_auth_len; i++) {
		p[i] ^= 0x04;
		expect_refused(&in, auth_fail, 1, i);
		p[i] ^= 0x04;
	}
	free(p);
}

static void test_truncation(void **state)
{
	(void)state;
	static const struct {
		cf_tee_kind kind;
		const char *quote;
	} sets[] = { { CF_TEE_TDX, T1_QUOTE }, { CF_TEE_TDX, T2_QUOTE }, { CF_TEE_SGX, G1_QUOTE } };
	for (size_t k = 0; k < 3; k++) {
		cf_evidence_input in = bundle_input(sets[k].kind, sets[k].quote, NULL,
						    "2025-07-01T00:00:00Z");
		dcap_quote q;
		char why[200];
		size_t full = in.evidence.len;
		assert_int_equal(dcap_quote_parse(in.evidence.data, full, &q, why, sizeof(why)),
				 CF_OK);
		size_t end = full - q.trailing;
		/* An exact-size copy, so that ASan sees any read past the end. */
		for (size_t len = 0; len < end; len++) {
			uint8_t *p = malloc(len ? len : 1);
			assert_non_null(p);
			memcpy(p, in.evidence.data, len);
			cf_evidence_input t = in;
			t.evidence = (cf_blob){ p, len };
			cf_verdict v;
			run(&t, &v);
			expect_state(&v, "format", CF_CHECK_FAIL);
			assert_false(cf_verdict_ok(&v));
			cf_verdict_free(&v);
			free(p);
		}
		/* Cutting only zero padding leaves a valid quote. */
		for (size_t len = end; len <= full; len += 7) {
			cf_evidence_input t = in;
			t.evidence.len = len;
			cf_verdict v;
			run(&t, &v);
			expect_state(&v, "format", CF_CHECK_PASS);
			cf_verdict_free(&v);
		}
	}
	cf_verdict v;
	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_TDX;
	run(&in, &v); /* no evidence at all */
	expect_state(&v, "format", CF_CHECK_FAIL);
	cf_verdict_free(&v);
}

static void test_trailing_bytes(void **state)
{
	(void)state;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	uint8_t *p = copy_of(in.evidence, 100);
	in.evidence.data = p;
	cf_verdict v;
	for (size_t i = in.evidence.len - 70; i < in.evidence.len; i += 23) {
		p[i] = 0x01; /* one non-zero byte in the padding */
		run(&in, &v);
		expect_state(&v, "format", CF_CHECK_FAIL);
		expect_actual_contains(&v, "format", "not all zero");
		expect_state(&v, "quote_signature", CF_CHECK_PASS); /* the rest is still checked */
		assert_false(cf_verdict_ok(&v));
		cf_verdict_free(&v);
		p[i] = 0;
	}
	in.evidence.len += 100; /* more zeros: fine */
	run(&in, &v);
	assert_true(cf_verdict_ok(&v));
	assert_int_equal(json_integer_value(json_object_get(v.claims, "trailing_zero_bytes")), 170);
	cf_verdict_free(&v);
	p[in.evidence.len - 1] = 0x80; /* a non-zero last byte */
	run(&in, &v);
	expect_state(&v, "format", CF_CHECK_FAIL);
	cf_verdict_free(&v);
	free(p);

	/* G1 has no padding: one appended byte fails, one appended zero passes. */
	in = bundle_input(CF_TEE_SGX, G1_QUOTE, G1_COLL, "2025-07-01T00:00:00Z");
	p = copy_of(in.evidence, 1);
	in.evidence.data = p;
	in.evidence.len++;
	run(&in, &v);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	p[in.evidence.len - 1] = 'x';
	run(&in, &v);
	expect_state(&v, "format", CF_CHECK_FAIL);
	cf_verdict_free(&v);
	free(p);
}

static void test_wrong_kind(void **state)
{
	(void)state;
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_SGX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	run(&in, &v); /* a TDX quote asked to verify as SGX */
	expect_state(&v, "tee", CF_CHECK_FAIL);
	expect_actual_contains(&v, "tee", "tdx quote");
	assert_false(cf_verdict_ok(&v));
	assert_null(json_object_get(v.claims, "measurements"));
	cf_verdict_free(&v);
	in = bundle_input(CF_TEE_TDX, G1_QUOTE, G1_COLL, "2025-07-01T00:00:00Z");
	run(&in, &v);
	expect_state(&v, "tee", CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	in.kind = CF_TEE_SNP; /* straight to the DCAP verifier */
	assert_int_equal(cf_evidence_verify_dcap(&in, &v), CF_OK);
	expect_state(&v, "tee", CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	assert_int_equal(cf_evidence_verify_dcap(NULL, &v), CF_ERR_ARG);
	/* A TDX quote with an SGX collateral set and vice versa. */
	in = bundle_input(CF_TEE_TDX, T1_QUOTE, G1_COLL, "2025-07-01T00:00:00Z");
	run(&in, &v);
	expect_state(&v, "fmspc", CF_CHECK_FAIL);
	expect_state(&v, "qe_identity", CF_CHECK_FAIL);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	in = bundle_input(CF_TEE_SGX, G1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	run(&in, &v);
	expect_state(&v, "fmspc", CF_CHECK_FAIL);
	expect_state(&v, "qe_identity", CF_CHECK_FAIL);
	cf_verdict_free(&v);
}

static void put_u16(uint8_t *p, uint16_t x)
{
	p[0] = (uint8_t)x;
	p[1] = (uint8_t)(x >> 8);
}

static void put_u32(uint8_t *p, uint32_t x)
{
	put_u16(p, (uint16_t)x);
	put_u16(p + 2, (uint16_t)(x >> 16));
}

static void expect_format_fail(const uint8_t *p, size_t len, cf_tee_kind kind, const char *needle)
{
	cf_verdict v;
	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.evidence = (cf_blob){ p, len };
	in.at = iso("2025-07-01T00:00:00Z");
	run(&in, &v);
	expect_state(&v, "format", CF_CHECK_FAIL);
	if (needle)
		expect_actual_contains(&v, "format", needle);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
}

static void test_malformed_structures(void **state)
{
	(void)state;
	cf_blob t1 = load(T1_QUOTE), t2 = load(T2_QUOTE), g1 = load(G1_QUOTE);
	uint8_t *p = copy_of(t1, 0);
	dcap_quote q;
	char why[200];
	assert_int_equal(dcap_quote_parse(t1.data, t1.len, &q, why, sizeof(why)), CF_OK);
	size_t sd = q.signed_len; /* offset of sig_data_len */
	const uint16_t versions[] = { 0, 1, 2, 6, 0xffff };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		put_u16(p, versions[i]);
		expect_format_fail(p, t1.len, CF_TEE_TDX, "quote version");
	}
	memcpy(p, t1.data, t1.len);
	put_u16(p + 2, 3); /* ECDSA P-384 attestation key */
	expect_format_fail(p, t1.len, CF_TEE_TDX, "attestation key type 3");
	memcpy(p, t1.data, t1.len);
	put_u32(p + 4, 0x00000082);
	expect_format_fail(p, t1.len, CF_TEE_TDX, "TEE type");
	memcpy(p, t1.data, t1.len);
	p[12] ^= 0xff;
	expect_format_fail(p, t1.len, CF_TEE_TDX, "QE vendor ID");
	memcpy(p, t1.data, t1.len);
	put_u32(p + sd, 0xffffffffu);
	expect_format_fail(p, t1.len, CF_TEE_TDX, "truncated");
	put_u32(p + sd, q.sig_data_len + 1); /* claims one more byte: eats a padding zero */
	expect_format_fail(p, t1.len, CF_TEE_TDX, "unexplained");
	put_u32(p + sd, q.sig_data_len - 1);
	expect_format_fail(p, t1.len, CF_TEE_TDX, NULL);
	memcpy(p, t1.data, t1.len);
	put_u16(p + sd + 4 + 128, 7); /* certification data type */
	expect_format_fail(p, t1.len, CF_TEE_TDX, "certification data type 7");
	memcpy(p, t1.data, t1.len);
	size_t auth_len_off = (size_t)(q.qe_auth - t1.data) - 2;
	put_u16(p + auth_len_off, 0xffff);
	expect_format_fail(p, t1.len, CF_TEE_TDX, NULL);
	memcpy(p, t1.data, t1.len);
	size_t inner_type = (size_t)(q.pck_pem - t1.data) - 6;
	put_u16(p + inner_type, 4); /* a PPID-encrypted cert type, unsupported */
	expect_format_fail(p, t1.len, CF_TEE_TDX, "type 4");
	memcpy(p, t1.data, t1.len);
	put_u32(p + inner_type + 2, 0);
	expect_format_fail(p, t1.len, CF_TEE_TDX, NULL);
	/* A PCK chain that is not PEM: the structure parses, the chain does not. */
	memcpy(p, t1.data, t1.len);
	p[(size_t)(q.pck_pem - t1.data) + 5] = '#';
	cf_verdict v;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	in.evidence.data = p;
	run(&in, &v);
	expect_state(&v, "pck_chain", CF_CHECK_FAIL);
	expect_state(&v, "qe_report_signature", CF_CHECK_FAIL);
	expect_state(&v, "tcb_level", CF_CHECK_SKIPPED);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	free(p);

	/* v5: body type and size must agree, and fit the TEE type. */
	p = copy_of(t2, 0);
	put_u32(p + 50, 584);
	expect_format_fail(p, t2.len, CF_TEE_TDX, "body type 3 with size 584");
	memcpy(p, t2.data, t2.len);
	put_u16(p + 48, 1);
	expect_format_fail(p, t2.len, CF_TEE_TDX, NULL);
	memcpy(p, t2.data, t2.len);
	put_u16(p + 48, 9);
	expect_format_fail(p, t2.len, CF_TEE_TDX, "body type 9");
	free(p);

	/* v3 must be SGX; reserved bytes of the report bodies must be zero. */
	p = copy_of(g1, 0);
	put_u32(p + 4, 0x81);
	expect_format_fail(p, g1.len, CF_TEE_SGX, "v3 is SGX only");
	memcpy(p, g1.data, g1.len);
	p[48 + 20] = 1;
	expect_format_fail(p, g1.len, CF_TEE_SGX, "reserved");
	memcpy(p, g1.data, g1.len);
	p[48 + 384 + 4 + 128 + 300] = 1; /* QE report reserved 262..303 */
	expect_format_fail(p, g1.len, CF_TEE_SGX, "QE report: reserved");
	free(p);
}

/* --- collateral that is wrong --- */

static uint8_t *replace_once(cf_blob b, const char *from, const char *to, size_t *len)
{
	const char *s = (const char *)b.data;
	const char *at = strstr(s, from);
	assert_non_null(at);
	size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
	uint8_t *out = malloc(b.len - fl + tl + 1);
	assert_non_null(out);
	memcpy(out, s, pre);
	memcpy(out + pre, to, tl);
	memcpy(out + pre + tl, s + pre + fl, b.len - pre - fl);
	*len = b.len - fl + tl;
	out[*len] = 0;
	return out;
}

static void test_tampered_collateral(void **state)
{
	(void)state;
	cf_verdict v;
	size_t len;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	cf_blob coll = in.collateral;

	/* A changed TCB Info byte breaks its signature (its content is still evaluated). */
	uint8_t *c = replace_once(coll, "\\\"tcbEvaluationDataNumber\\\":17", "\\\"tcbEvaluationDataNumber\\\":18", &len);
	in.collateral = (cf_blob){ c, len };
	run(&in, &v);
	expect_state(&v, "tcb_info_signature", CF_CHECK_FAIL);
	expect_state(&v, "qe_identity_signature", CF_CHECK_PASS);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	free(c);

	/* A changed QE Identity signature. */
	c = replace_once(coll, "\"qe_identity_signature\": \"d6", "\"qe_identity_signature\": \"d7", &len);
	in.collateral = (cf_blob){ c, len };
	run(&in, &v);
	expect_state(&v, "qe_identity_signature", CF_CHECK_FAIL);
	expect_state(&v, "tcb_info_signature", CF_CHECK_PASS);
	cf_verdict_free(&v);
	free(c);

	/* Not JSON, or a field missing: the bundle check fails, TCB is not checked. */
	in.collateral = (cf_blob){ (const uint8_t *)"{\"tcb_info\":", 12 };
	run(&in, &v);
	expect_state(&v, "collateral", CF_CHECK_FAIL);
	expect_state(&v, "tcb_level", CF_CHECK_SKIPPED);
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	c = replace_once(coll, "\"qe_identity_issuer_chain\"", "\"qe_identity_issuer_chainX\"", &len);
	in.collateral = (cf_blob){ c, len };
	run(&in, &v);
	expect_state(&v, "collateral", CF_CHECK_FAIL);
	expect_actual_contains(&v, "collateral", "qe_identity_issuer_chain");
	cf_verdict_free(&v);
	free(c);
	in.collateral = coll;

	/* A root that is not the chain's. */
	in.root_ca = load("snp/trustee/test-vcek.der");
	run(&in, &v);
	expect_state(&v, "pck_chain", CF_CHECK_FAIL);
	expect_state(&v, "tcb_info_signature", CF_CHECK_FAIL);
	expect_state(&v, "root_crl", CF_CHECK_FAIL);
	cf_verdict_free(&v);
	in.root_ca = (cf_blob){ (const uint8_t *)"not a certificate", 17 };
	run(&in, &v);
	expect_state(&v, "pck_chain", CF_CHECK_FAIL);
	expect_actual_contains(&v, "pck_chain", "root_ca");
	cf_verdict_free(&v);
	in.root_ca = load(GTG "trusted_root.pem"); /* the same root, PEM */
	run(&in, &v);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	in.root_ca = (cf_blob){ NULL, 0 };

	/* The CRLs swapped, and given separately (overriding the bundle). */
	in.pck_crl = load(T1_SPLIT "root_ca_crl.der");
	in.root_crl = load(T1_SPLIT "pck_crl.der");
	run(&in, &v);
	expect_state(&v, "pck_crl", CF_CHECK_FAIL);
	expect_state(&v, "root_crl", CF_CHECK_FAIL);
	cf_verdict_free(&v);
	in.pck_crl = (cf_blob){ (const uint8_t *)"garbage", 7 };
	in.root_crl = (cf_blob){ NULL, 0 };
	run(&in, &v);
	expect_state(&v, "pck_crl", CF_CHECK_FAIL);
	expect_state(&v, "root_crl", CF_CHECK_PASS);
	cf_verdict_free(&v);
	/* The Root CA CRL as PEM. */
	cf_blob der = load(T1_SPLIT "root_ca_crl.der");
	char *pem = malloc(cf_b64_encoded_len(der.len, true) * 2 + 128);
	char *b64 = malloc(cf_b64_encoded_len(der.len, true) + 1);
	assert_true(pem && b64);
	cf_b64_encode(der.data, der.len, true, b64);
	size_t o = (size_t)sprintf(pem, "-----BEGIN X509 CRL-----\n");
	for (size_t i = 0, n = strlen(b64); i < n; i += 64)
		o += (size_t)sprintf(pem + o, "%.64s\n", b64 + i);
	o += (size_t)sprintf(pem + o, "-----END X509 CRL-----\n");
	in.pck_crl = (cf_blob){ NULL, 0 };
	in.root_crl = (cf_blob){ (const uint8_t *)pem, o };
	run(&in, &v);
	expect_state(&v, "root_crl", CF_CHECK_PASS);
	assert_true(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	free(pem);
	free(b64);
	in.root_crl = (cf_blob){ NULL, 0 };

	/* A TCB chain that is not a TCB Signing chain. */
	in.tcb_chain = load(T1_SPLIT "pck_crl_issuer_chain.pem");
	run(&in, &v);
	expect_state(&v, "tcb_info_signature", CF_CHECK_FAIL);
	expect_state(&v, "qe_identity_signature", CF_CHECK_FAIL);
	cf_verdict_free(&v);
	in.tcb_chain = (cf_blob){ NULL, 0 };

	/* TCB Info without its chain (split form, no tcb_chain). */
	size_t tl;
	uint8_t *tcb = pcs_body(T1_SPLIT "tcb_info.json", T1_SPLIT "tcb_info.sig.bin", "tcbInfo", &tl);
	cf_evidence_input sp = bundle_input(CF_TEE_TDX, T1_QUOTE, NULL, "2025-07-01T00:00:00Z");
	sp.tcb_info = (cf_blob){ tcb, tl };
	run(&sp, &v);
	expect_state(&v, "tcb_info_signature", CF_CHECK_FAIL);
	expect_actual_contains(&v, "tcb_info_signature", "no TCB Signing chain");
	expect_state(&v, "tcb_level", CF_CHECK_PASS); /* evaluated, but not trusted */
	assert_false(cf_verdict_ok(&v));
	cf_verdict_free(&v);
	free(tcb);
	/* Another quote's collateral: FMSPC mismatch. */
	in = bundle_input(CF_TEE_TDX, T1_QUOTE, T2_COLL, "2026-03-01T00:00:00Z");
	run(&in, &v);
	expect_state(&v, "fmspc", CF_CHECK_FAIL);
	expect_actual_contains(&v, "fmspc", "90c06f000000");
	cf_verdict_free(&v);
	/* A PCS body that is not one. */
	in = bundle_input(CF_TEE_TDX, T1_QUOTE, NULL, "2025-07-01T00:00:00Z");
	in.tcb_info = load(T1_SPLIT "tcb_info.json");
	run(&in, &v);
	expect_state(&v, "tcb_info_signature", CF_CHECK_FAIL);
	expect_state(&v, "tcb_level", CF_CHECK_SKIPPED);
	cf_verdict_free(&v);
}

/* --- caching changes nothing; threads --- */

static void test_cache_transparent(void **state)
{
	(void)state;
	cf_verdict a, b;
	cf_evidence_input in = bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
	dcap_cache_flush();
	run(&in, &a);
	run(&in, &b);
	assert_true(same_verdict(&a, &b));
	cf_verdict_free(&b);
	dcap_cache_flush();
	run(&in, &b);
	assert_true(same_verdict(&a, &b));
	cf_verdict_free(&a);
	cf_verdict_free(&b);
}

static void *thread_main(void *arg)
{
	const cf_evidence_input *in = arg;
	for (int i = 0; i < 20; i++) {
		cf_verdict v;
		if (cf_evidence_verify(in, &v) != CF_OK || !cf_verdict_ok(&v))
			return (void *)1;
		cf_verdict_free(&v);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	cf_evidence_input in[4];
	pthread_t t[4];
	dcap_cache_flush();
	for (int i = 0; i < 4; i++) {
		in[i] = i % 2 ? bundle_input(CF_TEE_SGX, G1_QUOTE, G1_COLL, "2025-07-01T00:00:00Z")
			      : bundle_input(CF_TEE_TDX, T1_QUOTE, T1_COLL, "2025-07-01T00:00:00Z");
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, &in[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
}

/* --- Intel's TCB algorithm on synthetic TCB Info --- */

/* A TCB level; sgx/tdx as 16 comma-separated SVNs. */
static void level_json(char *out, size_t cap, const int *sgx, int pce, const int *tdx,
		       const char *status, const char *adv)
{
	size_t o = (size_t)snprintf(out, cap, "{\"tcb\":{\"sgxtcbcomponents\":[");
	for (int i = 0; i < 16; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s{\"svn\":%d}", i ? "," : "", sgx[i]);
	o += (size_t)snprintf(out + o, cap - o, "],\"pcesvn\":%d,\"tdxtcbcomponents\":[", pce);
	for (int i = 0; i < 16; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s{\"svn\":%d}", i ? "," : "", tdx[i]);
	snprintf(out + o, cap - o,
		 "]},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"%s\"%s%s%s}", status,
		 adv ? ",\"advisoryIDs\":[\"" : "", adv ? adv : "", adv ? "\"]" : "");
}

static void tdx_tcb_info(dcap_tcb_info *t, const char *levels, const char *modules)
{
	char *doc = malloc(16384);
	char why[200];
	assert_non_null(doc);
	snprintf(doc, 16384,
		 "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"2025-06-19T10:16:03Z\","
		 "\"nextUpdate\":\"2025-07-19T10:16:03Z\",\"fmspc\":\"B0C06F000000\","
		 "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
		 "\"tdxModule\":{\"mrsigner\":\"%096d\",\"attributes\":\"0000000000000000\","
		 "\"attributesMask\":\"FFFFFFFFFFFFFFFF\"}%s%s%s,\"tcbLevels\":[%s]}",
		 0, modules ? ",\"tdxModuleIdentities\":[" : "", modules ? modules : "",
		 modules ? "]" : "", levels);
	cf_err rc = dcap_tcb_info_parse(doc, strlen(doc), t, why, sizeof(why));
	if (rc != CF_OK)
		fprintf(stderr, "%s\n", why);
	assert_int_equal(rc, CF_OK);
	free(doc);
}

static const char *module_json(const char *id, const char *levels)
{
	static char buf[2048];
	snprintf(buf, sizeof(buf),
		 "{\"id\":\"%s\",\"mrsigner\":\"%096d\",\"attributes\":\"0000000000000000\","
		 "\"attributesMask\":\"FFFFFFFFFFFFFFFF\",\"tcbLevels\":[%s]}", id, 0, levels);
	return buf;
}

static void fake_quote(dcap_quote *q, const uint8_t *svn, const uint8_t *svn2)
{
	memset(q, 0, sizeof(*q));
	q->version = svn2 ? 5 : 4;
	q->tee_type = DCAP_TEE_TDX;
	q->body_type = svn2 ? DCAP_BODY_TD15 : DCAP_BODY_TD10;
	q->td.tee_tcb_svn = svn;
	q->td.tee_tcb_svn2 = svn2;
}

static void test_tcb_algorithm(void **state)
{
	(void)state;
	static const int hi[16] = { 3, 3, 2, 2, 4, 1, 0, 5 }, lo[16] = { 2, 2, 2, 2, 3, 1, 0, 5 };
	static const int mixed[16] = { 4, 1, 2, 2, 3, 1, 0, 5 }; /* lexicographically above hi */
	static const int tdx_hi[16] = { 5, 0, 3 }, tdx_lo[16] = { 5, 0, 2 };
	char l1[1024], l2[1024], l3[1024], levels[4096];
	dcap_tcb_info t;
	dcap_pck_ext pck;
	dcap_quote q;
	dcap_tcb_eval e;
	uint8_t svn[16] = { 6, 1, 3 };

	/* Listed lowest first: sorted highest first all the same. */
	level_json(l1, sizeof(l1), lo, 13, tdx_lo, "OutOfDate", "INTEL-SA-01036");
	level_json(l2, sizeof(l2), hi, 13, tdx_hi, "UpToDate", NULL);
	level_json(l3, sizeof(l3), mixed, 13, tdx_hi, "ConfigurationNeeded", "INTEL-SA-00001");
	snprintf(levels, sizeof(levels), "%s,%s,%s", l1, l2, l3);
	tdx_tcb_info(&t, levels, module_json("TDX_01", "{\"tcb\":{\"isvsvn\":4},\"tcbDate\":"
						    "\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"
						    "{\"tcb\":{\"isvsvn\":2},\"tcbDate\":"
						    "\"2023-08-09T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"}"));
	assert_int_equal(t.levels[0].status, CF_TCB_CONFIGURATION_NEEDED); /* mixed sorts first */
	assert_int_equal(t.levels[1].status, CF_TCB_UP_TO_DATE);
	assert_int_equal(t.levels[2].status, CF_TCB_OUT_OF_DATE);
	memset(&pck, 0, sizeof(pck));
	for (int i = 0; i < 16; i++)
		pck.tcb_comp[i] = (uint8_t)hi[i];
	pck.pce_svn = 13;
	fake_quote(&q, svn, NULL);
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	/* Component-wise: "mixed" (4,1,...) is not <= (3,3,...) although it is lexicographically. */
	assert_int_equal(e.sgx_level, 1);
	assert_int_equal(e.final_status, CF_TCB_UP_TO_DATE);

	/* QE status converges (QVL convergeTcbStatusWithQeTcbStatus). */
	dcap_tcb_evaluate(&t, &pck, &q, CF_TCB_OUT_OF_DATE, &e);
	assert_int_equal(e.final_status, CF_TCB_OUT_OF_DATE);
	dcap_tcb_evaluate(&t, &pck, &q, CF_TCB_REVOKED, &e);
	assert_int_equal(e.final_status, CF_TCB_REVOKED);
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NOT_SUPPORTED, &e);
	assert_int_equal(e.final_status, DCAP_ST_NOT_SUPPORTED);
	pck.tcb_comp[0] = 4;
	pck.tcb_comp[1] = 3; /* now >= mixed too: ConfigurationNeeded */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.final_status, CF_TCB_CONFIGURATION_NEEDED);
	dcap_tcb_evaluate(&t, &pck, &q, CF_TCB_OUT_OF_DATE, &e);
	assert_int_equal(e.final_status, CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
	pck.tcb_comp[0] = 3;

	/* TDX components: with TEE_TCB_SVN[1] > 0 bytes 0 and 1 are skipped. */
	svn[2] = 2; /* below tdx_hi[2] = 3: falls to the OutOfDate level */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.sgx_level, 1);
	assert_int_equal(e.tdx_level, 2);
	assert_int_equal(e.sgx_status, CF_TCB_UP_TO_DATE);
	assert_int_equal(e.final_status, CF_TCB_OUT_OF_DATE);
	svn[2] = 3;
	svn[0] = 0; /* byte 0 (module SVN) below 5 does not matter for the level ... */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.tdx_level, 1);
	assert_int_equal(e.final_status, DCAP_ST_NOT_SUPPORTED); /* ... but TDX_01 has no level 0 */
	svn[0] = 3; /* module OutOfDate (level isvsvn 2) converges */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.module_status, CF_TCB_OUT_OF_DATE);
	assert_int_equal(e.final_status, CF_TCB_OUT_OF_DATE);
	svn[0] = 6;
	svn[1] = 2; /* no TDX_02 identity */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.final_status, DCAP_ST_MODULE_MISMATCH);
	svn[1] = 0; /* major version 0: all 16 bytes compared, no identity needed */
	svn[0] = 5;
	svn[2] = 3;
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.module_status, CF_TCB_UP_TO_DATE);
	assert_int_equal(e.final_status, CF_TCB_UP_TO_DATE);
	svn[0] = 4; /* byte 0 now compared: 4 < 5 everywhere */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.tdx_level, -1);
	assert_int_equal(e.final_status, DCAP_ST_NOT_SUPPORTED);
	/* PCESVN below every level. */
	pck.pce_svn = 12;
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.sgx_level, -1);
	pck.pce_svn = 13;

	/* TD 1.5 relaunch: the TD's TCB is out of date, the platform's (SVN2) is not. */
	uint8_t s1[16] = { 3, 1, 2 }, s2[16] = { 4, 1, 3 };
	fake_quote(&q, s1, s2);
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.module_status, CF_TCB_OUT_OF_DATE);
	assert_true(e.relaunch_advised);
	assert_int_equal(e.final_status, CF_TCB_OUT_OF_DATE);
	s2[0] = 3; /* SVN2 module below the latest module level: no advice */
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_false(e.relaunch_advised);
	dcap_tcb_evaluate(&t, &pck, &q, CF_TCB_OUT_OF_DATE, &e); /* QE out of date: no advice */
	assert_false(e.relaunch_advised);
	dcap_tcb_info_free(&t);

	/* A revoked level. */
	level_json(l1, sizeof(l1), hi, 13, tdx_hi, "Revoked", NULL);
	tdx_tcb_info(&t, l1, NULL);
	uint8_t s3[16] = { 5, 0, 3 };
	fake_quote(&q, s3, NULL);
	dcap_tcb_evaluate(&t, &pck, &q, DCAP_ST_NONE, &e);
	assert_int_equal(e.final_status, CF_TCB_REVOKED);
	dcap_tcb_info_free(&t);

	/* Malformed TCB Info is refused with a reason. */
	char why[200];
	static const char *const bad[] = {
		"{}",
		"[]",
		"{\"id\":\"TDX\",\"version\":2}",
		"{\"id\":\"XYZ\",\"version\":3}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(dcap_tcb_info_parse(bad[i], strlen(bad[i]), &t, why, sizeof(why)),
				     CF_OK);
	level_json(l1, sizeof(l1), hi, 13, tdx_hi, "Unknown", NULL); /* not a TCB status */
	char *doc = malloc(8192);
	assert_non_null(doc);
	snprintf(doc, 8192, "{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-06-19T10:16:03Z\","
			    "\"nextUpdate\":\"2025-07-19T10:16:03Z\",\"fmspc\":\"B0C06F000000\","
			    "\"pceId\":\"0000\",\"tcbEvaluationDataNumber\":17,\"tcbLevels\":[%s]}", l1);
	assert_int_not_equal(dcap_tcb_info_parse(doc, strlen(doc), &t, why, sizeof(why)), CF_OK);
	assert_non_null(strstr(why, "tcbStatus"));
	free(doc);
}

static void test_qe_identity_levels(void **state)
{
	(void)state;
	const char *doc =
		"{\"id\":\"QE\",\"version\":2,\"issueDate\":\"2025-06-19T10:01:18Z\","
		"\"nextUpdate\":\"2025-07-19T10:01:18Z\",\"tcbEvaluationDataNumber\":17,"
		"\"miscselect\":\"00000000\",\"miscselectMask\":\"FFFFFFFF\","
		"\"attributes\":\"11000000000000000000000000000000\","
		"\"attributesMask\":\"FBFFFFFFFFFFFFFF0000000000000000\","
		"\"mrsigner\":\"8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF\","
		"\"isvprodid\":1,\"tcbLevels\":["
		"{\"tcb\":{\"isvsvn\":2},\"tcbDate\":\"2019-05-15T00:00:00Z\",\"tcbStatus\":\"Revoked\"},"
		"{\"tcb\":{\"isvsvn\":8},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"},"
		"{\"tcb\":{\"isvsvn\":6},\"tcbDate\":\"2021-11-10T00:00:00Z\",\"tcbStatus\":"
		"\"SWHardeningNeeded\",\"advisoryIDs\":[\"INTEL-SA-00615\"]}]}";
	dcap_qe_identity qe;
	char why[200];
	long idx;
	assert_int_equal(dcap_qe_identity_parse(doc, strlen(doc), &qe, why, sizeof(why)), CF_OK);
	assert_int_equal(dcap_qe_tcb_status(&qe, 10, &idx), CF_TCB_UP_TO_DATE);
	assert_int_equal(dcap_qe_tcb_status(&qe, 8, &idx), CF_TCB_UP_TO_DATE);
	assert_int_equal(dcap_qe_tcb_status(&qe, 7, &idx), CF_TCB_OUT_OF_DATE); /* any other status */
	assert_int_equal(dcap_qe_tcb_status(&qe, 2, &idx), CF_TCB_REVOKED);
	assert_int_equal(dcap_qe_tcb_status(&qe, 1, &idx), DCAP_ST_NOT_SUPPORTED);
	assert_int_equal(qe.miscselect_mask, 0xffffffffu);
	assert_int_equal(qe.attributes[0], 0x11);
	dcap_qe_identity_free(&qe);
}

static void test_helpers(void **state)
{
	(void)state;
	time_t t;
	assert_int_equal(iso("2025-07-01T00:00:00Z"), 1751328000);
	assert_int_equal(iso("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(iso("2024-02-29T12:00:00Z"), 1709208000);
	static const char *const bad[] = { "2023-02-29T00:00:00Z", "2025-13-01T00:00:00Z",
					   "2025-07-01T00:00:00", "2025-07-01 00:00:00Z",
					   "2025-07-01T24:00:00Z", "2025-7-01T00:00:00Z",
					   "2025-07-01T00:00:00.000Z", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(dcap_parse_iso_time(bad[i], &t), CF_OK);

	/* Raw member spans survive braces and quotes inside strings. */
	const char *j = "{ \"a\" : \"}\\\"{\", \"tcbInfo\" : {\"x\":\"}\",\"y\":[1,{}]} ,"
			"\"signature\":\"00\"}";
	size_t s, e;
	assert_int_equal(dcap_json_member_span(j, strlen(j), "tcbInfo", &s, &e), CF_OK);
	assert_int_equal(e - s, strlen("{\"x\":\"}\",\"y\":[1,{}]}"));
	assert_memory_equal(j + s, "{\"x\":\"}\",\"y\":[1,{}]}", e - s);
	assert_int_equal(dcap_json_member_span(j, strlen(j), "signature", &s, &e), CF_OK);
	assert_memory_equal(j + s, "\"00\"", 4);
	assert_int_equal(dcap_json_member_span(j, strlen(j), "nope", &s, &e), CF_ERR_NOT_FOUND);

	/* PEM chains: CRLF accepted; junk, a fifth certificate, NULs (unless allowed) not. */
	cf_blob chain = load(T1_SPLIT "tcb_info_issuer_chain.pem");
	dcap_chain c;
	char why[200];
	assert_int_equal(dcap_pem_chain(chain.data, chain.len, false, &c, why, sizeof(why)), CF_OK);
	assert_int_equal(c.n, 2);
	dcap_chain_free(&c);
	char *crlf = malloc(chain.len * 2 + 1), *five = malloc(chain.len * 3 + 16);
	assert_true(crlf && five);
	size_t o = 0;
	for (size_t i = 0; i < chain.len; i++) {
		if (chain.data[i] == '\n')
			crlf[o++] = '\r';
		crlf[o++] = (char)chain.data[i];
	}
	assert_int_equal(dcap_pem_chain((uint8_t *)crlf, o, false, &c, why, sizeof(why)), CF_OK);
	dcap_chain_free(&c);
	int n = snprintf(five, chain.len * 3 + 16, "%.*s%.*s%.*s", (int)chain.len,
			 (const char *)chain.data, (int)chain.len, (const char *)chain.data,
			 (int)chain.len, (const char *)chain.data);
	assert_int_not_equal(dcap_pem_chain((uint8_t *)five, (size_t)n, false, &c, why, sizeof(why)),
			     CF_OK);
	memcpy(five, chain.data, chain.len);
	memcpy(five + chain.len, "junk\n", 5);
	assert_int_not_equal(dcap_pem_chain((uint8_t *)five, chain.len + 5, false, &c, why,
					    sizeof(why)), CF_OK);
	five[chain.len] = 0;
	assert_int_not_equal(dcap_pem_chain((uint8_t *)five, chain.len + 1, false, &c, why,
					    sizeof(why)), CF_OK);
	assert_int_equal(dcap_pem_chain((uint8_t *)five, chain.len + 1, true, &c, why, sizeof(why)),
			 CF_OK);
	dcap_chain_free(&c);
	free(crlf);
	free(five);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_t1_up_to_date),
		cmocka_unit_test(test_t1_split_files_same_verdict),
		cmocka_unit_test(test_g1_configuration_and_sw_hardening),
		cmocka_unit_test(test_t2_no_matching_level),
		cmocka_unit_test(test_t4_debug_td),
		cmocka_unit_test(test_t5_no_matching_level),
		cmocka_unit_test(test_signature_only_sets),
		cmocka_unit_test(test_collateral_time_windows),
		cmocka_unit_test(test_bit_flips_signed_region),
		cmocka_unit_test(test_bit_flips_qe_report_and_signatures),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_wrong_kind),
		cmocka_unit_test(test_malformed_structures),
		cmocka_unit_test(test_tampered_collateral),
		cmocka_unit_test(test_cache_transparent),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_tcb_algorithm),
		cmocka_unit_test(test_qe_identity_levels),
		cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
