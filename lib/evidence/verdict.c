/*
 * Verdicts: every check a verifier makes, and the normalised claims.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/enc.h"
#include "coffer/evidence.h"

static const char *const tcb_names[] = {
	"Unknown",
	"UpToDate",
	"SWHardeningNeeded",
	"ConfigurationNeeded",
	"ConfigurationAndSWHardeningNeeded",
	"OutOfDate",
	"OutOfDateConfigurationNeeded",
	"Revoked",
};

const char *cf_tcb_status_name(cf_tcb_status s)
{
	if ((unsigned)s < sizeof(tcb_names) / sizeof(tcb_names[0]))
		return tcb_names[s];
	return "Unknown";
}

cf_err cf_tcb_status_parse(const char *name, cf_tcb_status *out)
{
	for (unsigned i = 0; i < sizeof(tcb_names) / sizeof(tcb_names[0]); i++) {
		if (strcmp(name, tcb_names[i]) == 0) {
			*out = (cf_tcb_status)i;
			return CF_OK;
		}
	}
	return CF_ERR_PARSE;
}

int cf_tcb_status_rank(cf_tcb_status s)
{
	switch (s) {
	case CF_TCB_UP_TO_DATE: return 0;
	case CF_TCB_SW_HARDENING_NEEDED: return 1;
	case CF_TCB_CONFIGURATION_NEEDED: return 2;
	case CF_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED: return 3;
	case CF_TCB_OUT_OF_DATE: return 4;
	case CF_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED: return 5;
	case CF_TCB_REVOKED: return 6;
	default: return 7;
	}
}

void cf_verdict_init(cf_verdict *v, cf_tee_kind tee)
{
	memset(v, 0, sizeof(*v));
	v->tee = tee;
	v->claims = json_object();
	if (v->claims)
		json_object_set_new(v->claims, "tee", json_string(cf_tee_kind_name(tee)));
}

void cf_verdict_free(cf_verdict *v)
{
	free(v->checks);
	json_decref(v->claims);
	memset(v, 0, sizeof(*v));
}

static void add_check(cf_verdict *v, const char *name, cf_check_state state, const char *expected,
		      const char *fmt, va_list ap) CF_PRINTF(5, 0);
static void add_check(cf_verdict *v, const char *name, cf_check_state state, const char *expected,
		      const char *fmt, va_list ap)
{
	if (v->nchecks == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		cf_check *grown = realloc(v->checks, cap * sizeof(*grown));
		if (!grown)
			return; /* the verdict stays unverified: see cf_verdict_ok */
		v->checks = grown;
		v->cap = cap;
	}
	cf_check *c = &v->checks[v->nchecks++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->state = state;
	snprintf(c->expected, sizeof(c->expected), "%s", expected ? expected : "");
	if (fmt)
		vsnprintf(c->actual, sizeof(c->actual), fmt, ap);
}

static void add_checkf(cf_verdict *v, const char *name, cf_check_state state,
		       const char *expected, const char *fmt, ...) CF_PRINTF(5, 6);
static void add_checkf(cf_verdict *v, const char *name, cf_check_state state,
		       const char *expected, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_check(v, name, state, expected, fmt, ap);
	va_end(ap);
}

void cf_verdict_pass(cf_verdict *v, const char *name, const char *expected_fmt, ...)
{
	char expected[256] = "";
	if (expected_fmt) {
		va_list ap;
		va_start(ap, expected_fmt);
		vsnprintf(expected, sizeof(expected), expected_fmt, ap);
		va_end(ap);
	}
	/* A pass's actual value is its expected one. */
	add_checkf(v, name, CF_CHECK_PASS, expected, "%s", expected);
}

void cf_verdict_fail(cf_verdict *v, const char *name, const char *expected, const char *actual_fmt,
		     ...)
{
	va_list ap;
	va_start(ap, actual_fmt);
	add_check(v, name, CF_CHECK_FAIL, expected, actual_fmt, ap);
	va_end(ap);
}

void cf_verdict_skip(cf_verdict *v, const char *name, const char *why_fmt, ...)
{
	va_list ap;
	va_start(ap, why_fmt);
	add_check(v, name, CF_CHECK_SKIPPED, "", why_fmt, ap);
	va_end(ap);
}

void cf_verdict_expect(cf_verdict *v, const char *name, bool cond, const char *expected,
		       const char *actual_fmt, ...)
{
	va_list ap;
	va_start(ap, actual_fmt);
	add_check(v, name, cond ? CF_CHECK_PASS : CF_CHECK_FAIL, expected, actual_fmt, ap);
	va_end(ap);
}

bool cf_verdict_ok(const cf_verdict *v)
{
	if (v->nchecks == 0 || !v->claims)
		return false;
	return cf_verdict_first_failure(v) == NULL;
}

const cf_check *cf_verdict_first_failure(const cf_verdict *v)
{
	for (size_t i = 0; i < v->nchecks; i++) {
		if (v->checks[i].state == CF_CHECK_FAIL)
			return &v->checks[i];
	}
	return NULL;
}

json_t *cf_verdict_json(const cf_verdict *v, bool verified)
{
	json_t *checks = json_array();
	for (size_t i = 0; i < v->nchecks; i++) {
		const cf_check *c = &v->checks[i];
		json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:s}", "name", c->name, "result",
				      c->state == CF_CHECK_PASS   ? "pass"
				      : c->state == CF_CHECK_FAIL ? "fail"
								  : "not checked",
				      "pass", c->state == CF_CHECK_PASS, "expected", c->expected,
				      "actual", c->actual);
		json_array_append_new(checks, o);
	}
	return json_pack("{s:b, s:s, s:s, s:O, s:o}", "verified", verified, "tee",
			 cf_tee_kind_name(v->tee), "tcb_status", cf_tcb_status_name(v->tcb_status),
			 "claims", v->claims ? v->claims : json_null(), "checks", checks);
}

void cf_claims_set(cf_verdict *v, const char *key, json_t *value)
{
	if (!v->claims || !value) {
		json_decref(value);
		return;
	}
	json_object_set_new(v->claims, key, value);
}

static json_t *hex_string(const uint8_t *p, size_t n)
{
	char *hex = malloc(2 * n + 1);
	if (!hex)
		return NULL;
	cf_hex_encode(p, n, hex);
	json_t *s = json_string(hex);
	free(hex);
	return s;
}

void cf_claims_set_hex(cf_verdict *v, const char *key, const uint8_t *p, size_t n)
{
	cf_claims_set(v, key, hex_string(p, n));
}

void cf_claims_measurement(cf_verdict *v, const char *name, const uint8_t *p, size_t n)
{
	if (!v->claims)
		return;
	json_t *m = json_object_get(v->claims, "measurements");
	if (!m) {
		m = json_object();
		json_object_set_new(v->claims, "measurements", m);
	}
	json_t *h = hex_string(p, n);
	if (h)
		json_object_set_new(m, name, h);
}
