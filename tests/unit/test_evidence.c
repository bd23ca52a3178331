/*
 * The verdict, claims and policy framework (lib/evidence/{verdict,policy}.c)
 * and the soft adapter, with a real soft report signed by a platform made
 * in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "coffer/enc.h"
#include "coffer/evidence.h"
#include "coffer/json.h"
#include "coffer/soft.h"

static json_t *policy_of(const char *text)
{
	json_t *p = NULL;
	assert_int_equal(cf_json_parse(text, strlen(text), NULL, &p), CF_OK);
	return p;
}

static const cf_check *find(const cf_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		if (strcmp(v->checks[i].name, name) == 0)
			return &v->checks[i];
	}
	return NULL;
}

static void test_tcb_names(void **state)
{
	static const char *names[] = { "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
				       "ConfigurationAndSWHardeningNeeded", "OutOfDate",
				       "OutOfDateConfigurationNeeded", "Revoked" };
	int prev = -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cf_tcb_status s;
		assert_int_equal(cf_tcb_status_parse(names[i], &s), CF_OK);
		assert_string_equal(cf_tcb_status_name(s), names[i]);
		assert_true(cf_tcb_status_rank(s) > prev);
		prev = cf_tcb_status_rank(s);
	}
	cf_tcb_status s;
	assert_int_not_equal(cf_tcb_status_parse("uptodate", &s), CF_OK);
	assert_true(cf_tcb_status_rank(CF_TCB_UNKNOWN) > cf_tcb_status_rank(CF_TCB_REVOKED));
}

static void test_verdict_states(void **state)
{
	cf_verdict v;
	cf_verdict_init(&v, CF_TEE_SNP);
	assert_false(cf_verdict_ok(&v)); /* no checks: not verified */
	cf_verdict_pass(&v, "a", "value %d", 1);
	cf_verdict_skip(&v, "crl", "no CRL given");
	assert_true(cf_verdict_ok(&v));
	cf_verdict_expect(&v, "b", false, "x", "got %s", "y");
	cf_verdict_fail(&v, "c", "p", "q");
	assert_false(cf_verdict_ok(&v));
	assert_string_equal(cf_verdict_first_failure(&v)->name, "b");
	assert_string_equal(find(&v, "a")->actual, "value 1");
	assert_string_equal(find(&v, "b")->actual, "got y");
	json_t *j = cf_verdict_json(&v, false);
	assert_non_null(j);
	assert_false(json_is_true(json_object_get(j, "verified")));
	assert_string_equal(json_string_value(json_object_get(j, "tee")), "snp");
	json_t *checks = json_object_get(j, "checks");
	assert_int_equal(json_array_size(checks), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(checks, 1), "result")),
			    "not checked");
	json_decref(j);
	/* Many checks: growth keeps them all. */
	for (int i = 0; i < 100; i++)
		cf_verdict_pass(&v, "many", NULL);
	assert_int_equal(v.nchecks, 104);
	cf_verdict_free(&v);
}

static void test_policy(void **state)
{
	static const uint8_t m[48] = { 1, 2, 3 };
	char mhex[97];
	char text[1024];
	cf_hex_encode(m, sizeof(m), mhex);
	cf_verdict v;

	/* No policy: only debug is checked. */
	cf_verdict_init(&v, CF_TEE_SNP);
	cf_verdict_pass(&v, "sig", NULL);
	v.debug = true;
	assert_int_equal(cf_policy_apply(NULL, 0, &v), CF_OK);
	assert_false(cf_verdict_ok(&v));
	assert_string_equal(cf_verdict_first_failure(&v)->name, "debug");
	cf_verdict_free(&v);

	/* Everything allowed. */
	cf_verdict_init(&v, CF_TEE_SNP);
	cf_verdict_pass(&v, "sig", NULL);
	cf_claims_measurement(&v, "measurement", m, sizeof(m));
	cf_claims_set_hex(&v, "report_data", m, 8);
	cf_claims_set(&v, "evidence_time", json_integer(1000));
	v.tcb_status = CF_TCB_SW_HARDENING_NEEDED;
	v.debug = true;
	snprintf(text, sizeof(text),
		 "{\"tee\":[\"tdx\",\"snp\"],\"measurements\":{\"measurement\":[\"00\",\"%s\"]},"
		 "\"min_tcb_status\":\"SWHardeningNeeded\",\"allow_debug\":true,"
		 "\"report_data\":\"0102030000000000\",\"max_age_seconds\":60}",
		 mhex);
	json_t *p = policy_of(text);
	assert_int_equal(cf_policy_apply(p, 1030, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	json_decref(p);
	cf_verdict_free(&v);

	/* Each rule, broken alone, fails with its own check name. */
	static const struct {
		const char *policy;
		const char *check;
	} cases[] = {
		{ "{\"tee\":[\"tdx\"]}", "policy_tee" },
		{ "{\"measurements\":{\"measurement\":[\"00\"]}}", "policy_measurement_measurement" },
		{ "{\"measurements\":{\"mr_td\":[\"00\"]}}", "policy_measurement_mr_td" },
		{ "{\"min_tcb_status\":\"UpToDate\"}", "policy_tcb_status" },
		{ "{\"report_data\":\"ff\"}", "policy_report_data" },
		{ "{\"max_age_seconds\":10}", "policy_max_age" },
		{ "{\"allow_debug\":false}", "debug" },
		{ "{\"colour\":1}", "policy" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cf_verdict_init(&v, CF_TEE_SNP);
		cf_verdict_pass(&v, "sig", NULL);
		cf_claims_measurement(&v, "measurement", m, sizeof(m));
		cf_claims_set_hex(&v, "report_data", m, 8);
		cf_claims_set(&v, "evidence_time", json_integer(1000));
		v.tcb_status = CF_TCB_SW_HARDENING_NEEDED;
		v.debug = strcmp(cases[i].check, "debug") == 0;
		p = policy_of(cases[i].policy);
		assert_int_equal(cf_policy_apply(p, 1030, &v), CF_OK);
		const cf_check *f = cf_verdict_first_failure(&v);
		if (!f || strcmp(f->name, cases[i].check) != 0)
			fail_msg("policy %s: expected failure %s, got %s", cases[i].policy,
				 cases[i].check, f ? f->name : "none");
		json_decref(p);
		cf_verdict_free(&v);
	}

	/* Malformed policies are errors, not silent passes. */
	static const char *bad[] = { "{\"tee\":[1]}", "{\"measurements\":[]}",
				     "{\"min_tcb_status\":\"Great\"}", "{\"max_age_seconds\":-1}",
				     "{\"measurements\":{\"m\":\"00\"}}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf_verdict_init(&v, CF_TEE_SNP);
		p = policy_of(bad[i]);
		assert_int_equal(cf_policy_apply(p, 0, &v), CF_ERR_PARSE);
		json_decref(p);
		cf_verdict_free(&v);
	}
}

static void test_soft_adapter(void **state)
{
	char dir[] = "/tmp/coffer-evidence-XXXXXX", pdir[4200], cert_path[4300];
	assert_non_null(mkdtemp(dir));
	snprintf(pdir, sizeof(pdir), "%s/p", dir);
	assert_int_equal(cf_soft_platform_init(pdir, "test", false), CF_OK);
	cf_soft_platform plat;
	assert_int_equal(cf_soft_platform_load(pdir, &plat), CF_OK);
	cf_buf cert;
	cf_buf_init(&cert, 1 << 16, false);
	assert_int_equal(cf_soft_platform_cert(pdir, &cert), CF_OK);

	cf_soft_report r;
	memset(&r, 0, sizeof(r));
	r.version = 1;
	r.launch_time = 5000;
	memset(r.measurement, 0x11, 48);
	memset(r.report_data, 0x22, 64);
	memcpy(r.platform_id, plat.platform_id, 32);
	strcpy(r.launcher_version, "coffer/test");
	uint8_t report[CF_SOFT_REPORT_LEN];
	assert_int_equal(cf_soft_report_sign(plat.key, &r, report), CF_OK);

	cf_evidence_input in;
	memset(&in, 0, sizeof(in));
	in.kind = CF_TEE_SOFT;
	in.evidence = (cf_blob){ report, sizeof(report) };
	in.platform_cert = (cf_blob){ cert.data, cert.len };
	cf_verdict v;
	assert_int_equal(cf_evidence_verify(&in, &v), CF_OK);
	assert_int_equal(cf_policy_apply(NULL, 5000, &v), CF_OK);
	assert_true(cf_verdict_ok(&v));
	json_t *ms = json_object_get(v.claims, "measurements");
	char want[97];
	cf_hex_encode(r.measurement, 48, want);
	assert_string_equal(json_string_value(json_object_get(ms, "measurement")), want);
	assert_false(json_is_true(json_object_get(v.claims, "hardware")));
	cf_verdict_free(&v);

	/* Each bit of the signed part, flipped, is refused. */
	for (size_t bit = 0; bit < CF_SOFT_REPORT_LEN * 8; bit += 7) {
		report[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(cf_evidence_verify(&in, &v), CF_OK);
		assert_false(cf_verdict_ok(&v));
		cf_verdict_free(&v);
		report[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Truncated, extended, no certificate: refused with a reason. */
	in.evidence.len = sizeof(report) - 1;
	assert_int_equal(cf_evidence_verify(&in, &v), CF_OK);
	assert_string_equal(cf_verdict_first_failure(&v)->name, "format");
	cf_verdict_free(&v);
	in.evidence.len = sizeof(report);
	in.platform_cert = (cf_blob){ NULL, 0 };
	assert_int_equal(cf_evidence_verify(&in, &v), CF_OK);
	assert_string_equal(cf_verdict_first_failure(&v)->name, "platform_signature");
	cf_verdict_free(&v);

	cf_buf_free(&cert);
	cf_soft_platform_free(&plat);
	snprintf(cert_path, sizeof(cert_path), "rm -rf '%s'", dir);
	assert_int_equal(system(cert_path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcb_names),
		cmocka_unit_test(test_verdict_states),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_soft_adapter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
