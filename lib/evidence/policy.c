/*
 * Reference-value policies (docs/evidence.md). Every rule becomes a check
 * in the verdict, so a refusal names the rule and the values involved.
 */
#include <string.h>

#include "coffer/enc.h"
#include "coffer/evidence.h"

static const char *const policy_keys[] = { "tee", "measurements", "min_tcb_status", "allow_debug",
					   "report_data", "max_age_seconds" };

static bool known_key(const char *k)
{
	for (size_t i = 0; i < sizeof(policy_keys) / sizeof(policy_keys[0]); i++) {
		if (strcmp(k, policy_keys[i]) == 0)
			return true;
	}
	return false;
}

/* Case-insensitive hex equality (claims are lower case). */
static bool hex_equal(const char *a, const char *b)
{
	size_t n = strlen(a);
	if (n != strlen(b))
		return false;
	for (size_t i = 0; i < n; i++) {
		char x = a[i] >= 'A' && a[i] <= 'F' ? (char)(a[i] + 32) : a[i];
		char y = b[i] >= 'A' && b[i] <= 'F' ? (char)(b[i] + 32) : b[i];
		if (x != y)
			return false;
	}
	return true;
}

cf_err cf_policy_apply(const json_t *policy, time_t now, cf_verdict *v)
{
	json_t *allow_debug = policy ? json_object_get(policy, "allow_debug") : NULL;
	bool debug_ok = allow_debug && json_is_true(allow_debug);
	if (policy && !json_is_object(policy))
		return CF_ERR_PARSE;
	if (policy) {
		const char *k;
		json_t *val;
		json_object_foreach((json_t *)policy, k, val) {
			if (!known_key(k)) {
				cf_verdict_fail(v, "policy", "known policy fields", "unknown field \"%s\"", k);
				return CF_OK;
			}
		}
	}
	/* Debug is refused unless the policy allows it, with or without a policy. */
	cf_verdict_expect(v, "debug", !v->debug || debug_ok,
			  debug_ok ? "debug allowed by policy" : "debug off",
			  "%s", v->debug ? "debug on" : "debug off");
	if (!policy)
		return CF_OK;

	json_t *tee = json_object_get(policy, "tee");
	if (tee) {
		const char *mine = cf_tee_kind_name(v->tee);
		bool found = false;
		size_t i;
		json_t *t;
		char list[200] = "";
		json_array_foreach(tee, i, t) {
			if (!json_is_string(t))
				return CF_ERR_PARSE;
			found |= strcmp(json_string_value(t), mine) == 0;
			if (strlen(list) + strlen(json_string_value(t)) + 2 < sizeof(list)) {
				strcat(list, i ? "," : "");
				strcat(list, json_string_value(t));
			}
		}
		cf_verdict_expect(v, "policy_tee", found, list, "%s", mine);
	}

	json_t *ms = json_object_get(policy, "measurements");
	if (ms) {
		json_t *have = v->claims ? json_object_get(v->claims, "measurements") : NULL;
		const char *name;
		json_t *allowed;
		if (!json_is_object(ms))
			return CF_ERR_PARSE;
		json_object_foreach(ms, name, allowed) {
			json_t *actual = have ? json_object_get(have, name) : NULL;
			char check[64];
			snprintf(check, sizeof(check), "policy_measurement_%s", name);
			if (!json_is_array(allowed))
				return CF_ERR_PARSE;
			if (!actual || !json_is_string(actual)) {
				cf_verdict_fail(v, check, "one of the allowed values",
						"this evidence has no %s", name);
				continue;
			}
			bool ok = false;
			size_t i;
			json_t *a;
			json_array_foreach(allowed, i, a) {
				if (!json_is_string(a))
					return CF_ERR_PARSE;
				ok |= hex_equal(json_string_value(a), json_string_value(actual));
			}
			cf_verdict_expect(v, check, ok, "one of the allowed values", "%s",
					  json_string_value(actual));
		}
	}

	json_t *min = json_object_get(policy, "min_tcb_status");
	if (min) {
		cf_tcb_status want;
		if (!json_is_string(min) || cf_tcb_status_parse(json_string_value(min), &want) != CF_OK)
			return CF_ERR_PARSE;
		cf_verdict_expect(v, "policy_tcb_status",
				  cf_tcb_status_rank(v->tcb_status) <= cf_tcb_status_rank(want),
				  json_string_value(min), "%s", cf_tcb_status_name(v->tcb_status));
	}

	json_t *rd = json_object_get(policy, "report_data");
	if (rd) {
		json_t *actual = v->claims ? json_object_get(v->claims, "report_data") : NULL;
		if (!json_is_string(rd))
			return CF_ERR_PARSE;
		cf_verdict_expect(v, "policy_report_data",
				  actual && json_is_string(actual) &&
					  hex_equal(json_string_value(rd), json_string_value(actual)),
				  json_string_value(rd), "%s",
				  actual && json_is_string(actual) ? json_string_value(actual) : "(none)");
	}

	json_t *age = json_object_get(policy, "max_age_seconds");
	if (age) {
		json_t *t = v->claims ? json_object_get(v->claims, "evidence_time") : NULL;
		if (!json_is_integer(age) || json_integer_value(age) < 0)
			return CF_ERR_PARSE;
		if (!t || !json_is_integer(t)) {
			cf_verdict_fail(v, "policy_max_age", "evidence with a time",
					"this kind of evidence carries no time: freshness needs a "
					"nonce in report_data");
		} else {
			long long when = json_integer_value(t);
			long long max = json_integer_value(age);
			cf_verdict_expect(v, "policy_max_age", when <= (long long)now + 300 &&
						  (long long)now - when <= max,
					  "at most the policy's age", "%lld s old",
					  (long long)now - when);
		}
	}
	return CF_OK;
}
