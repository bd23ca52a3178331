#define CF_LOG_MODULE "job"

#include "job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "csv.h"
#include "sql.h"
#if CF_JOB_HAVE_STATS
#include "stats.h"
#endif
#if CF_JOB_HAVE_PSI
#include "psi.h"
#endif


static cf_err bad(char *why, size_t whylen, cf_err rc, const char *fmt, ...) CF_PRINTF(4, 5);
static cf_err bad(char *why, size_t whylen, cf_err rc, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

bool cf_job_valid_output_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 64 || s[0] == '-' || s[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

void cf_job_free(cf_job *j)
{
	if (!j)
		return;
	for (size_t i = 0; j->inputs && i < j->ninputs; i++) {
		free(j->inputs[i].table);
		free(j->inputs[i].dataset);
	}
	free(j->inputs);
	for (size_t i = 0; j->outputs && i < j->noutputs; i++) {
		free(j->outputs[i].name);
		free(j->outputs[i].query);
	}
	free(j->outputs);
	json_decref(j->function);
	free(j->function_json);
	cf_xgb_train_free(&j->train);
	cf_xgb_predict_free(&j->predict);
	memset(j, 0, sizeof(*j));
}

/* Refuses members of obj not in allowed (NULL-terminated). */
static cf_err only(const json_t *obj, const char *const *allowed, const char *what, char *why,
		   size_t whylen)
{
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok)
			return bad(why, whylen, CF_ERR_PARSE, "%s has an unknown member \"%.64s\"", what,
				   key);
	}
	return CF_OK;
}

static cf_err get_uint(const json_t *obj, const char *key, uint64_t lo, uint64_t hi,
		       uint64_t *out, char *why, size_t whylen)
{
	const json_t *v = json_object_get(obj, key);
	if (!v)
		return CF_OK;
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
	    (uint64_t)json_integer_value(v) > hi)
		return bad(why, whylen, CF_ERR_PARSE, "policy.%s must be an integer from %llu to %llu",
			   key, (unsigned long long)lo, (unsigned long long)hi);
	*out = (uint64_t)json_integer_value(v);
	return CF_OK;
}

static cf_err parse_policy(const json_t *p, cf_job *j, char *why, size_t whylen)
{
	static const char *const members[] = { "min_group_size", "allow_rows",
						"time_budget_seconds", "max_result_rows", NULL };
	uint64_t budget = CF_SQL_DEFAULT_BUDGET_SECONDS;
	cf_err rc;
	j->policy.min_group_size = 1;
	j->policy.allow_rows = true;
	j->max_result_rows = CF_JOB_DEFAULT_MAX_ROWS;
	if (!p) {
		j->time_budget_seconds = (unsigned)budget;
		return CF_OK;
	}
	if (!json_is_object(p))
		return bad(why, whylen, CF_ERR_PARSE, "policy must be an object");
	if ((rc = only(p, members, "policy", why, whylen)) != CF_OK ||
	    (rc = get_uint(p, "min_group_size", 1, CF_POLICY_MAX_K, &j->policy.min_group_size,
			   why, whylen)) != CF_OK ||
	    (rc = get_uint(p, "time_budget_seconds", 1, CF_SQL_MAX_BUDGET_SECONDS, &budget, why,
			   whylen)) != CF_OK ||
	    (rc = get_uint(p, "max_result_rows", 1, CF_JOB_MAX_ROWS, &j->max_result_rows, why,
			   whylen)) != CF_OK)
		return rc;
	const json_t *rows = json_object_get(p, "allow_rows");
	if (rows && !json_is_boolean(rows))
		return bad(why, whylen, CF_ERR_PARSE, "policy.allow_rows must be true or false");
	if (rows)
		j->policy.allow_rows = json_is_true(rows);
	j->time_budget_seconds = (unsigned)budget;
	return CF_OK;
}

static cf_err parse_inputs(const json_t *inputs, cf_job *j, char *why, size_t whylen)
{
	static const char *const members[] = { "dataset", "format", NULL };
	const char *table;
	const json_t *spec;
	j->inputs = calloc(json_object_size(inputs), sizeof(*j->inputs));
	if (!j->inputs)
		return CF_ERR_NOMEM;
	json_object_foreach((json_t *)inputs, table, spec) {
		const char *ds;
		if (!cf_csv_valid_table(table))
			return bad(why, whylen, CF_ERR_PARSE, "input \"%.64s\" is not a usable table "
				   "name (1 to 64 of A-Z a-z 0-9 _, not a digit first, not sqlite_ or "
				   "__coffer first)", table);
		for (size_t i = 0; i < j->ninputs; i++) {
			if (sqlite3_stricmp(j->inputs[i].table, table) == 0)
				return bad(why, whylen, CF_ERR_PARSE, "inputs %s and %s are the same "
					   "table to SQL", j->inputs[i].table, table);
		}
		if (cf_json_get_string(spec, "dataset", &ds) != CF_OK)
			return bad(why, whylen, CF_ERR_PARSE, "input %s names no dataset", table);
		char what[80];
		snprintf(what, sizeof(what), "input %s", table);
		cf_err rc = only(spec, members, what, why, whylen);
		if (rc != CF_OK)
			return rc;
		const json_t *fmt = json_object_get(spec, "format");
		cf_job_format format = CF_INPUT_CSV;
		if (fmt && json_is_string(fmt) && strcmp(json_string_value(fmt), "xgboost-json") == 0)
			format = CF_INPUT_XGB_MODEL;
		else if (fmt && !(json_is_string(fmt) && strcmp(json_string_value(fmt), "csv") == 0))
			return bad(why, whylen, CF_ERR_PARSE, "input %s: format must be \"csv\" or "
				   "\"xgboost-json\"", table);
		cf_job_input *in = &j->inputs[j->ninputs++];
		in->format = format;
		in->table = strdup(table);
		in->dataset = strdup(ds);
		if (!in->table || !in->dataset)
			return CF_ERR_NOMEM;
	}
	return CF_OK;
}

static cf_err parse_outputs(const json_t *outputs, const char *query, cf_job *j, char *why,
			    size_t whylen)
{
	static const char *const members[] = { "name", "recipients", "query", NULL };
	size_t n = json_array_size(outputs), i;
	const json_t *o;
	cf_err rc;
	if (n == 0 || n > CF_JOB_MAX_OUTPUTS)
		return bad(why, whylen, CF_ERR_PARSE, "a task has 1 to %d outputs", CF_JOB_MAX_OUTPUTS);
	if (!(j->outputs = calloc(n, sizeof(*j->outputs))))
		return CF_ERR_NOMEM;
	json_array_foreach(outputs, i, o) {
		const char *name, *q = query;
		if ((rc = only(o, members, "an output", why, whylen)) != CF_OK)
			return rc;
		if (cf_json_get_string(o, "name", &name) != CF_OK || !cf_job_valid_output_name(name))
			return bad(why, whylen, CF_ERR_PARSE, "output %zu has no usable name (1 to 64 "
				   "of a-z 0-9 - _)", i + 1);
		for (size_t k = 0; k < j->noutputs; k++) {
			if (strcmp(j->outputs[k].name, name) == 0)
				return bad(why, whylen, CF_ERR_PARSE, "two outputs are named %s", name);
		}
		const json_t *own = json_object_get(o, "query");
		if (own && (!json_is_string(own) || json_string_length(own) == 0))
			return bad(why, whylen, CF_ERR_PARSE, "output %s has a query that is not "
				   "a string", name);
		if (own)
			q = json_string_value(own);
		cf_job_output *out = &j->outputs[j->noutputs++];
		if (!(out->name = strdup(name)))
			return CF_ERR_NOMEM;
		if (!q) {
			/* Another kind's result; a train's "metrics" is its metrics. */
			out->result = j->kind == CF_FN_XGB_TRAIN && strcmp(name, "metrics") == 0
					      ? CF_RESULT_METRICS : CF_RESULT_MAIN;
			continue;
		}
		if (strlen(q) > CF_SQL_MAX_QUERY)
			return bad(why, whylen, CF_ERR_TOO_BIG, "the query of output %s is longer "
				   "than %u bytes", name, CF_SQL_MAX_QUERY);
		if (!(out->query = strdup(q)))
			return CF_ERR_NOMEM;
	}
	return CF_OK;
}

/* The kinds this enclave runs; stats and psi when their modules are built in. */
static const struct {
	const char *name;
	cf_job_fn kind;
} kinds[] = {
	{ "sql", CF_FN_SQL },
	{ "xgboost.train", CF_FN_XGB_TRAIN },
	{ "xgboost.predict", CF_FN_XGB_PREDICT },
#if CF_JOB_HAVE_STATS
	{ "stats", CF_FN_STATS },
#endif
#if CF_JOB_HAVE_PSI
	{ "psi", CF_FN_PSI },
#endif
};

static cf_err parse_function(const json_t *fn, cf_job *j, const char **query, char *why,
			     size_t whylen)
{
	static const char *const sql_members[] = { "kind", "query", NULL };
	const char *kind;
	cf_err rc;
	*query = NULL;
	if (!json_is_object(fn) || cf_json_get_string(fn, "kind", &kind) != CF_OK)
		return bad(why, whylen, CF_ERR_PARSE, "the task needs a function {\"kind\", ...}");
	size_t k = 0;
	while (k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k].name, kind) != 0)
		k++;
	if (k == sizeof(kinds) / sizeof(kinds[0])) {
		char list[96] = "";
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", kinds[i].name);
		return bad(why, whylen, CF_ERR_UNSUPPORTED, "function kind \"%.32s\" is not one "
			   "this enclave runs (%s)", kind, list);
	}
	j->kind = kinds[k].kind;
	j->function = json_incref((json_t *)fn);
	if (!(j->function_json = json_dumps(fn, JSON_COMPACT | JSON_SORT_KEYS)))
		return CF_ERR_NOMEM;
	switch (j->kind) {
	case CF_FN_SQL:
		if ((rc = only(fn, sql_members, "function", why, whylen)) != CF_OK)
			return rc;
		if (cf_json_get_string(fn, "query", query) != CF_OK || !**query)
			return bad(why, whylen, CF_ERR_PARSE, "function.query must be a non-empty "
				   "string");
		if (strlen(*query) > CF_SQL_MAX_QUERY)
			return bad(why, whylen, CF_ERR_TOO_BIG, "function.query is longer than %u "
				   "bytes", CF_SQL_MAX_QUERY);
		return CF_OK;
	case CF_FN_XGB_TRAIN:
		return cf_xgb_train_parse(fn, &j->train, why, whylen);
	case CF_FN_XGB_PREDICT:
		return cf_xgb_predict_parse(fn, &j->predict, why, whylen);
#if CF_JOB_HAVE_STATS
	case CF_FN_STATS:
		return cf_stats_check(fn, why, whylen);
#endif
#if CF_JOB_HAVE_PSI
	case CF_FN_PSI:
		return cf_psi_check(fn, why, whylen);
#endif
	default:
		return bad(why, whylen, CF_ERR_UNSUPPORTED, "function kind \"%.32s\" is not built "
			   "into this enclave", kind);
	}
}

/* Model inputs: only xgboost.predict takes one, the one its "model" names. */
static cf_err check_formats(cf_job *j, char *why, size_t whylen)
{
	size_t models = 0, csvs = 0;
	for (size_t i = 0; i < j->ninputs; i++) {
		const cf_job_input *in = &j->inputs[i];
		if (in->format == CF_INPUT_CSV) {
			csvs++;
			continue;
		}
		models++;
		if (j->kind != CF_FN_XGB_PREDICT)
			return bad(why, whylen, CF_ERR_PARSE, "input %s is a model: only an "
				   "xgboost.predict function takes one", in->table);
		if (strcmp(in->table, j->predict.model) != 0)
			return bad(why, whylen, CF_ERR_PARSE, "input %s is a model, but "
				   "function.model names %s", in->table, j->predict.model);
	}
#if CF_JOB_HAVE_PSI
	/* Every psi output without a query of its own is granted a form by the function. */
	for (size_t o = 0; j->kind == CF_FN_PSI && o < j->noutputs; o++) {
		cf_psi_form form;
		if (!j->outputs[o].query &&
		    cf_psi_output_form(j->function, j->outputs[o].name, &form, why, whylen) != CF_OK)
			return bad(why, whylen, CF_ERR_PARSE, "output %s: function.outputs grants it "
				   "nothing", j->outputs[o].name);
	}
#endif
	if (j->kind == CF_FN_XGB_PREDICT && j->predict.table) {
		size_t i = 0;
		while (i < j->ninputs && strcmp(j->inputs[i].table, j->predict.table) != 0)
			i++;
		if (i == j->ninputs || j->inputs[i].format != CF_INPUT_CSV)
			return bad(why, whylen, CF_ERR_PARSE, "function.table must name a CSV input");
		j->inputs[i].direct = true;
	}
	if (j->kind == CF_FN_XGB_PREDICT) {
		if (models != 1)
			return bad(why, whylen, CF_ERR_PARSE, "function.model must name an input "
				   "with \"format\": \"xgboost-json\"");
		if (csvs == 0)
			return bad(why, whylen, CF_ERR_PARSE, "xgboost.predict needs an input of rows "
				   "besides the model");
		/* Predictions are one row per input row: what the policy's rules forbid. */
		if (!j->policy.allow_rows || j->policy.min_group_size > 1)
			return bad(why, whylen, CF_ERR_AUTH, "xgboost.predict gives one row per input "
				   "row: the policy (allow_rows false or min_group_size above 1) "
				   "forbids it");
	}
	return CF_OK;
}

cf_err cf_job_parse(const json_t *task, cf_job *out, char *why, size_t whylen)
{
	char kwhy[160];
	const char *query;
	long long version;
	cf_err rc;
	if (why && whylen)
		why[0] = '\0';
	if (!out)
		return CF_ERR_ARG;
	memset(out, 0, sizeof(*out));
	if (!json_is_object(task)) {
		rc = bad(why, whylen, CF_ERR_PARSE, "the task is not a JSON object");
		goto out;
	}
	if (cf_json_get_int(task, "version", &version) != CF_OK || version != 1) {
		rc = bad(why, whylen, CF_ERR_PARSE, "the task needs \"version\": 1");
		goto out;
	}
	if (cf_task_check(task, kwhy, sizeof(kwhy)) != CF_OK) {
		rc = bad(why, whylen, CF_ERR_PARSE, "%s", kwhy);
		goto out;
	}
	if ((rc = parse_function(json_object_get(task, "function"), out, &query, why, whylen)) !=
	    CF_OK)
		goto out;
	if ((rc = parse_inputs(json_object_get(task, "inputs"), out, why, whylen)) != CF_OK ||
	    (rc = parse_outputs(json_object_get(task, "outputs"), query, out, why, whylen)) !=
		    CF_OK ||
	    (rc = parse_policy(json_object_get(task, "policy"), out, why, whylen)) != CF_OK ||
	    (rc = check_formats(out, why, whylen)) != CF_OK)
		goto out;
	out->train.budget_seconds = out->time_budget_seconds;
out:
	if (rc != CF_OK)
		cf_job_free(out);
	return rc;
}
