#define CF_LOG_MODULE "xgb"

#include "xgb.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <xgboost/c_api.h>

#include "coffer/log.h"
#include "csv.h"
#include "output.h"

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

/* --- parsing --- */

/*
 * The parameters a task may set (besides num_round). Anything that
 * writes files, prints, or picks a device is left out; verbosity is
 * always 0.
 */
static const char *const allowed_params[] = {
	"objective", "eval_metric", "base_score", "num_class", "seed", "nthread", "booster",
	"max_depth", "eta", "learning_rate", "gamma", "min_split_loss", "min_child_weight",
	"max_delta_step", "subsample", "sampling_method", "colsample_bytree",
	"colsample_bylevel", "colsample_bynode", "lambda", "reg_lambda", "alpha", "reg_alpha",
	"tree_method", "max_bin", "grow_policy", "max_leaves", "scale_pos_weight",
	"num_parallel_tree", "monotone_constraints", "max_cat_to_onehot", "huber_slope",
	"tweedie_variance_power", "quantile_alpha", "rate_drop", "skip_drop", "one_drop",
	"sample_type", "normalize_type", "feature_selector", "top_k", "updater_seed", NULL
};

static bool member_of(const char *key, const char *const *list)
{
	for (size_t i = 0; list[i]; i++) {
		if (strcmp(key, list[i]) == 0)
			return true;
	}
	return false;
}

static cf_err only(const json_t *obj, const char *const *allowed, const char *what, char *why,
		   size_t whylen)
{
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		if (!member_of(key, allowed))
			return bad(why, whylen, CF_ERR_PARSE, "%s has an unknown member \"%.64s\"",
				   what, key);
	}
	return CF_OK;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static cf_err get_query(const json_t *fn, char **out, char *why, size_t whylen)
{
	const json_t *q = json_object_get(fn, "query");
	if (!json_is_string(q) || json_string_length(q) == 0)
		return bad(why, whylen, CF_ERR_PARSE, "function.query must be a non-empty string");
	if (json_string_length(q) > CF_SQL_MAX_QUERY)
		return bad(why, whylen, CF_ERR_TOO_BIG, "function.query is longer than %u bytes",
			   CF_SQL_MAX_QUERY);
	return (*out = strdup(json_string_value(q))) ? CF_OK : CF_ERR_NOMEM;
}

/* A column name of the task: what the loader would accept. */
static bool column_name_ok(const json_t *v)
{
	return json_is_string(v) &&
	       cf_csv_valid_column(json_string_value(v), json_string_length(v)) &&
	       strlen(json_string_value(v)) == json_string_length(v);
}

static cf_err get_column(const json_t *fn, const char *key, bool required, char **out,
			 char *why, size_t whylen)
{
	const json_t *v = json_object_get(fn, key);
	*out = NULL;
	if (!v && !required)
		return CF_OK;
	if (!column_name_ok(v))
		return bad(why, whylen, CF_ERR_PARSE, "function.%s must be a column name", key);
	return (*out = strdup(json_string_value(v))) ? CF_OK : CF_ERR_NOMEM;
}

static cf_err get_features(const json_t *fn, char ***out, size_t *n, char *why, size_t whylen)
{
	const json_t *f = json_object_get(fn, "features"), *v;
	size_t i;
	*out = NULL;
	*n = 0;
	if (!f)
		return CF_OK;
	if (!json_is_array(f) || json_array_size(f) == 0 ||
	    json_array_size(f) > CF_XGB_MAX_FEATURES)
		return bad(why, whylen, CF_ERR_PARSE, "function.features must be an array of 1 to "
			   "%u column names", CF_XGB_MAX_FEATURES);
	if (!(*out = calloc(json_array_size(f), sizeof(char *))))
		return CF_ERR_NOMEM;
	json_array_foreach(f, i, v) {
		if (!column_name_ok(v))
			return bad(why, whylen, CF_ERR_PARSE, "function.features[%zu] is not a column "
				   "name", i);
		for (size_t k = 0; k < i; k++) {
			if (sqlite3_stricmp((*out)[k], json_string_value(v)) == 0)
				return bad(why, whylen, CF_ERR_PARSE, "function.features[%zu] repeats "
					   "function.features[%zu]", i, k);
		}
		if (!((*out)[i] = strdup(json_string_value(v))))
			return CF_ERR_NOMEM;
		(*n)++;
	}
	return CF_OK;
}

/* A string parameter: 1 to 64 of a plain alphabet (objective names, lists of numbers). */
static bool param_string_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("_:@.,()-+ ", c)))
			return false;
	}
	return true;
}

static cf_err parse_params(const json_t *p, cf_xgb_train *t, char *why, size_t whylen)
{
	const char *key;
	const json_t *v;
	t->rounds = CF_XGB_DEFAULT_ROUNDS;
	if (!p)
		return CF_OK;
	if (!json_is_object(p))
		return bad(why, whylen, CF_ERR_PARSE, "function.params must be an object");
	const json_t *em = json_object_get(p, "eval_metric");
	size_t n = json_object_size(p) + (json_is_array(em) ? json_array_size(em) : 0) + 1;
	t->keys = calloc(n, sizeof(char *));
	t->values = calloc(n, sizeof(char *));
	if (!t->keys || !t->values)
		return CF_ERR_NOMEM;
	json_object_foreach((json_t *)p, key, v) {
		char val[80];
		if (strcmp(key, "num_round") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > CF_XGB_MAX_ROUNDS)
				return bad(why, whylen, CF_ERR_PARSE, "function.params.num_round must "
					   "be an integer from 1 to %d", CF_XGB_MAX_ROUNDS);
			t->rounds = (unsigned)json_integer_value(v);
			continue;
		}
		if (!member_of(key, allowed_params))
			return bad(why, whylen, CF_ERR_PARSE, "function.params has a parameter this "
				   "enclave does not allow: \"%.64s\"", key);
		if (strcmp(key, "eval_metric") == 0 && json_is_array(v)) {
			/* Several metrics: XGBoost adds one per setting. */
			size_t i;
			const json_t *m;
			if (json_array_size(v) == 0 || json_array_size(v) > 16)
				return bad(why, whylen, CF_ERR_PARSE, "function.params.eval_metric must "
					   "be a metric's name or 1 to 16 of them");
			json_array_foreach(v, i, m) {
				if (!json_is_string(m) || !param_string_ok(json_string_value(m)))
					return bad(why, whylen, CF_ERR_PARSE, "function.params."
						   "eval_metric[%zu] is not a metric's name", i);
				if (!(t->keys[t->nparams] = strdup(key)) ||
				    !(t->values[t->nparams] = strdup(json_string_value(m))))
					return CF_ERR_NOMEM;
				t->nparams++;
			}
			continue;
		}
		if (json_is_integer(v))
			snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
		else if (json_is_real(v) && isfinite(json_real_value(v)))
			snprintf(val, sizeof(val), "%.17g", json_real_value(v));
		else if (json_is_string(v) && param_string_ok(json_string_value(v)))
			snprintf(val, sizeof(val), "%s", json_string_value(v));
		else
			return bad(why, whylen, CF_ERR_PARSE, "function.params.%s must be a number "
				   "or a short plain string", key);
		if (!(t->keys[t->nparams] = strdup(key)) || !(t->values[t->nparams] = strdup(val)))
			return CF_ERR_NOMEM;
		t->nparams++;
	}
	return CF_OK;
}

void cf_xgb_train_free(cf_xgb_train *t)
{
	if (!t)
		return;
	free(t->query);
	free(t->label);
	free_strings(t->features, t->nfeatures);
	for (size_t i = 0; t->keys && i < t->nparams; i++)
		free(t->keys[i]);
	for (size_t i = 0; t->values && i < t->nparams; i++)
		free(t->values[i]);
	/* A key without its value (allocation failed mid-pair). */
	if (t->keys && t->keys[t->nparams])
		free(t->keys[t->nparams]);
	free(t->keys);
	free(t->values);
	memset(t, 0, sizeof(*t));
}

cf_err cf_xgb_train_parse(const json_t *fn, cf_xgb_train *out, char *why, size_t whylen)
{
	static const char *const members[] = { "kind", "query", "label", "features", "params",
						NULL };
	cf_err rc;
	memset(out, 0, sizeof(*out));
	if ((rc = only(fn, members, "function", why, whylen)) != CF_OK ||
	    (rc = get_query(fn, &out->query, why, whylen)) != CF_OK ||
	    (rc = get_column(fn, "label", true, &out->label, why, whylen)) != CF_OK ||
	    (rc = get_features(fn, &out->features, &out->nfeatures, why, whylen)) != CF_OK ||
	    (rc = parse_params(json_object_get(fn, "params"), out, why, whylen)) != CF_OK)
		goto out;
	for (size_t i = 0; i < out->nfeatures; i++) {
		if (sqlite3_stricmp(out->features[i], out->label) == 0) {
			rc = bad(why, whylen, CF_ERR_PARSE, "function.features[%zu] is the label", i);
			goto out;
		}
	}
out:
	if (rc != CF_OK)
		cf_xgb_train_free(out);
	return rc;
}

void cf_xgb_predict_free(cf_xgb_predict *p)
{
	if (!p)
		return;
	free(p->model);
	free(p->query);
	free(p->table);
	free_strings(p->features, p->nfeatures);
	free(p->id);
	memset(p, 0, sizeof(*p));
}

cf_err cf_xgb_predict_parse(const json_t *fn, cf_xgb_predict *out, char *why, size_t whylen)
{
	static const char *const members[] = { "kind", "model", "query", "table", "features",
						"id", "nthread", NULL };
	const json_t *m = json_object_get(fn, "model"), *nt = json_object_get(fn, "nthread");
	cf_err rc;
	memset(out, 0, sizeof(*out));
	if ((rc = only(fn, members, "function", why, whylen)) != CF_OK)
		goto out;
	if (!json_is_string(m) || !cf_csv_valid_table(json_string_value(m))) {
		rc = bad(why, whylen, CF_ERR_PARSE, "function.model must name the input holding "
			 "the model");
		goto out;
	}
	if (nt && (!json_is_integer(nt) || json_integer_value(nt) < 1 ||
		   json_integer_value(nt) > 1024)) {
		rc = bad(why, whylen, CF_ERR_PARSE, "function.nthread must be an integer from 1 "
			 "to 1024");
		goto out;
	}
	out->nthread = nt ? (int)json_integer_value(nt) : 0;
	if (!(out->model = strdup(json_string_value(m)))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	const json_t *table = json_object_get(fn, "table");
	if (!table == !json_object_get(fn, "query")) {
		rc = bad(why, whylen, CF_ERR_PARSE, "xgboost.predict takes its rows from a query or "
			 "a table: one of function.query and function.table");
		goto out;
	}
	if (table && (!json_is_string(table) || !cf_csv_valid_table(json_string_value(table)))) {
		rc = bad(why, whylen, CF_ERR_PARSE, "function.table must name an input");
		goto out;
	}
	if (table && !(out->table = strdup(json_string_value(table)))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((!table && (rc = get_query(fn, &out->query, why, whylen)) != CF_OK) ||
	    (rc = get_column(fn, "id", false, &out->id, why, whylen)) != CF_OK ||
	    (rc = get_features(fn, &out->features, &out->nfeatures, why, whylen)) != CF_OK)
		goto out;
	for (size_t i = 0; out->id && i < out->nfeatures; i++) {
		if (sqlite3_stricmp(out->features[i], out->id) == 0) {
			rc = bad(why, whylen, CF_ERR_PARSE, "function.features[%zu] is the id", i);
			goto out;
		}
	}
out:
	if (rc != CF_OK)
		cf_xgb_predict_free(out);
	return rc;
}

/* --- the matrix --- */

/* Floats on the heap, wiped whenever a block is released. */
typedef struct fmat {
	float *v;
	size_t len, cap; /* in floats */
} fmat;

static void fmat_free(fmat *m)
{
	if (m->v) {
		OPENSSL_cleanse(m->v, m->cap * sizeof(float));
		free(m->v);
	}
	memset(m, 0, sizeof(*m));
}

/* Room for n more floats; grows by doubling, wiping the old block. */
static cf_err fmat_reserve(fmat *m, size_t n)
{
	if (m->cap - m->len >= n)
		return CF_OK;
	size_t cap = m->cap ? m->cap : 4096;
	while (cap - m->len < n) {
		if (cap > (SIZE_MAX / sizeof(float)) / 2)
			return CF_ERR_TOO_BIG;
		cap *= 2;
	}
	float *v = malloc(cap * sizeof(float));
	if (!v)
		return CF_ERR_NOMEM;
	if (m->v) {
		memcpy(v, m->v, m->len * sizeof(float));
		OPENSSL_cleanse(m->v, m->cap * sizeof(float));
		free(m->v);
	}
	m->v = v;
	m->cap = cap;
	return CF_OK;
}

/* The index of result column `name` (ignoring case, as SQL does), or -1; -2 if two match. */
static int find_column(sqlite3_stmt *st, const char *name)
{
	int found = -1;
	for (int i = 0; i < sqlite3_column_count(st); i++) {
		const char *c = sqlite3_column_name(st, i);
		if (c && sqlite3_stricmp(c, name) == 0) {
			if (found >= 0)
				return -2;
			found = i;
		}
	}
	return found;
}

/*
 * The result columns of the features: those named, or every column but
 * `skip` (the label or the id; -1 for none).
 */
static cf_err map_features(sqlite3_stmt *st, char *const *names, size_t n, int skip,
			   int **cols, size_t *ncols, char *why, size_t whylen)
{
	int count = sqlite3_column_count(st);
	*cols = NULL;
	*ncols = 0;
	if (names) {
		if (!(*cols = calloc(n, sizeof(int))))
			return CF_ERR_NOMEM;
		for (size_t i = 0; i < n; i++) {
			int c = find_column(st, names[i]);
			if (c == -1)
				return bad(why, whylen, CF_ERR_PARSE, "the query's result has no column "
					   "function.features[%zu] (\"%.64s\")", i, names[i]);
			if (c == -2)
				return bad(why, whylen, CF_ERR_PARSE, "the query's result has two "
					   "columns named function.features[%zu]", i);
			(*cols)[i] = c;
		}
		*ncols = n;
		return CF_OK;
	}
	if (count - (skip >= 0) < 1)
		return bad(why, whylen, CF_ERR_PARSE, "the query's result has no feature column");
	if ((size_t)count > CF_XGB_MAX_FEATURES + 1)
		return bad(why, whylen, CF_ERR_TOO_BIG, "the query's result has more than %u "
			   "feature columns", CF_XGB_MAX_FEATURES);
	if (!(*cols = calloc((size_t)count, sizeof(int))))
		return CF_ERR_NOMEM;
	for (int i = 0; i < count; i++) {
		if (i != skip)
			(*cols)[(*ncols)++] = i;
	}
	return CF_OK;
}

/* Column c of the current row as a float: NaN for NULL; CF_ERR_PARSE for text or a blob. */
static bool value_of(sqlite3_stmt *st, int c, float *out)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_NULL:
		*out = NAN;
		return true;
	case SQLITE_INTEGER:
		*out = (float)sqlite3_column_int64(st, c);
		return true;
	case SQLITE_FLOAT:
		*out = (float)sqlite3_column_double(st, c);
		return true;
	default:
		return false;
	}
}

static double since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void quiet_xgboost(void)
{
	/* XGBoost's warnings go to stderr, the run's log: none of them. */
	(void)XGBSetGlobalConfig("{\"verbosity\":0}");
}

/* Two integers from a small file (the second may be missing); false if unreadable. */
static bool read_pair(const char *path, long long *a, long long *b)
{
	FILE *f = fopen(path, "r");
	char text[64] = "";
	if (!f)
		return false;
	bool ok = fgets(text, sizeof(text), f) != NULL;
	fclose(f);
	*a = -1;
	*b = 0;
	/* cgroup v2's cpu.max says "max PERIOD" when unlimited: a stays -1. */
	return ok && (sscanf(text, "%lld %lld", a, b) >= 1 || strncmp(text, "max", 3) == 0);
}

/*
 * The cores the CPU controller grants this process (a soft TEE instance's
 * --cores is a CFS quota, not an affinity), rounded up; 0 if unlimited or
 * unknown. cgroup v1 (cpu.cfs_quota_us over cpu.cfs_period_us) or v2
 * (cpu.max), the process's own cgroup only.
 */
static long quota_cores(void)
{
	static const char *const v1_roots[] = { "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" };
	static const char *const v2_roots[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[1024], path[1200];
	long cores = 0;
	if (!f)
		return 0;
	while (cores == 0 && fgets(line, sizeof(line), f)) {
		/* "ID:CONTROLLERS:PATH": v1 lists its controllers, v2 none. */
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		long long quota, period;
		if (!c2)
			continue;
		*c2 = '\0';
		char *controllers = c1 + 1, *cg = c2 + 1;
		cg[strcspn(cg, "\n")] = '\0';
		bool v2 = controllers[0] == '\0', cpu = false;
		for (char *save = NULL, *t = strtok_r(controllers, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			cpu |= strcmp(t, "cpu") == 0;
		for (size_t i = 0; cpu && i < 2 && cores == 0; i++) {
			snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", v1_roots[i], cg);
			long long unused;
			if (!read_pair(path, &quota, &unused))
				continue;
			snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", v1_roots[i], cg);
			if (quota > 0 && read_pair(path, &period, &unused) && period > 0)
				cores = (long)((quota + period - 1) / period);
			break;
		}
		for (size_t i = 0; v2 && i < 2 && cores == 0; i++) {
			snprintf(path, sizeof(path), "%s%s/cpu.max", v2_roots[i], cg);
			if (read_pair(path, &quota, &period) && quota > 0 && period > 0)
				cores = (long)((quota + period - 1) / period);
		}
	}
	fclose(f);
	return cores;
}

/* The cores this process may run on: its affinity, within its CPU quota. */
static long cores_allowed(void)
{
	cpu_set_t set;
	long quota = quota_cores();
	long n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	return quota > 0 && quota < n ? quota : n;
}

/* --- train --- */

/* params.nthread, if the task sets it; 0 if not. */
static int nthread_of(const cf_xgb_train *t)
{
	for (size_t i = 0; i < t->nparams; i++) {
		if (strcmp(t->keys[i], "nthread") == 0)
			return atoi(t->values[i]);
	}
	return 0;
}

/*
 * Appends one line of the metrics CSV from XGBoost's evaluation string
 * "[i]\ttrain-m1:v1\ttrain-m2:v2": the header (round,train-m1,...) if
 * header, else the round and the values.
 */
static cf_err metrics_line(cf_buf *out, unsigned round, const char *eval, bool header)
{
	cf_err rc = header ? cf_buf_append_str(out, "round") : cf_buf_printf(out, "%u", round);
	for (const char *q = strchr(eval, '\t'); rc == CF_OK && q; q = strchr(q, '\t')) {
		q++;
		size_t n = strcspn(q, "\t");
		const char *colon = NULL;
		for (size_t i = 0; i < n; i++) {
			if (q[i] == ':')
				colon = q + i;
		}
		if (!colon)
			return CF_ERR_PARSE;
		rc = cf_buf_append_byte(out, ',');
		if (rc == CF_OK && header)
			rc = cf_output_csv_field(out, (const uint8_t *)q, (size_t)(colon - q));
		else if (rc == CF_OK)
			rc = cf_output_csv_field(out, (const uint8_t *)colon + 1,
						 n - (size_t)(colon + 1 - q));
	}
	return rc == CF_OK ? cf_buf_append(out, "\r\n", 2) : rc;
}

cf_err cf_xgb_train_run(cf_sql *db, const cf_xgb_train *t, cf_buf *model, cf_buf *metrics,
			uint64_t *rows_out, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	DMatrixHandle dm = NULL;
	BoosterHandle b = NULL;
	fmat x = { 0 }, y = { 0 };
	int *cols = NULL;
	char **fnames = NULL;
	size_t ncols = 0;
	uint64_t rows = 0;
	char msg[320];
	bool row;
	struct timespec t0;
	cf_err rc;
	if (why && whylen)
		why[0] = '\0';
	if (!db || !t || !model)
		return CF_ERR_ARG;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	quiet_xgboost();
	if ((rc = cf_sql_prepare(db, t->query, &st, msg, sizeof(msg))) != CF_OK) {
		bad(why, whylen, rc, "function.query: %s", msg);
		goto out;
	}
	int label = find_column(st, t->label);
	if (label < 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, label == -1 ? "the query's result has no label "
			 "column (function.label \"%.64s\")" : "the query's result has two label "
			 "columns (function.label \"%.64s\")", t->label);
		goto out;
	}
	if ((rc = map_features(st, t->features, t->nfeatures, label, &cols, &ncols, why,
			       whylen)) != CF_OK)
		goto out;
	for (;;) {
		if ((rc = cf_sql_step(db, st, &row, msg, sizeof(msg))) != CF_OK) {
			bad(why, whylen, rc, "function.query: %s", msg);
			goto out;
		}
		if (!row)
			break;
		rows++;
		if ((rc = fmat_reserve(&x, ncols)) != CF_OK || (rc = fmat_reserve(&y, 1)) != CF_OK) {
			bad(why, whylen, rc, "the training matrix does not fit: %s", cf_strerror(rc));
			goto out;
		}
		float v;
		if (!value_of(st, label, &v) || isnan(v)) {
			rc = bad(why, whylen, CF_ERR_PARSE, "result row %llu: the label is %s",
				 (unsigned long long)rows,
				 sqlite3_column_type(st, label) == SQLITE_NULL ? "NULL"
									     : "not a number");
			goto out;
		}
		y.v[y.len++] = v;
		for (size_t i = 0; i < ncols; i++) {
			if (!value_of(st, cols[i], &x.v[x.len++])) {
				rc = bad(why, whylen, CF_ERR_PARSE, "result row %llu: feature %zu "
					 "(result column %d) is not a number", (unsigned long long)rows,
					 i + 1, cols[i] + 1);
				goto out;
			}
		}
	}
	if (rows == 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, "the training query gave no rows");
		goto out;
	}
	/* The model names its features as the query's result does. */
	if (!(fnames = calloc(ncols, sizeof(char *)))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < ncols; i++) {
		const char *name = sqlite3_column_name(st, cols[i]);
		if (!name || !(fnames[i] = strdup(name))) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	/* Without params.nthread, the cores the instance grants (OpenMP would take the host's). */
	int nthread = nthread_of(t) > 0 ? nthread_of(t) : (int)cores_allowed();
	char nthread_text[16];
	snprintf(nthread_text, sizeof(nthread_text), "%d", nthread);
	if (XGDMatrixCreateFromMat_omp(x.v, rows, ncols, NAN, &dm, nthread) != 0 ||
	    XGDMatrixSetFloatInfo(dm, "label", y.v, rows) != 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost does not take the training matrix");
		goto out;
	}
	/* XGBoost holds its own copy now. */
	fmat_free(&x);
	fmat_free(&y);
	if (XGBoosterCreate(&dm, 1, &b) != 0) {
		rc = bad(why, whylen, CF_ERR_NOMEM, "XGBoost does not create a booster");
		goto out;
	}
	if (XGBoosterSetStrFeatureInfo(b, "feature_name", (const char **)fnames, ncols) != 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost does not take the feature names");
		goto out;
	}
	if (XGBoosterSetParam(b, "nthread", nthread_text) != 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost refuses nthread %d", nthread);
		goto out;
	}
	for (size_t i = 0; i < t->nparams; i++) {
		if (XGBoosterSetParam(b, t->keys[i], t->values[i]) != 0) {
			rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost refuses function.params.%s",
				 t->keys[i]);
			goto out;
		}
	}
	const char *names[] = { "train" };
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (unsigned i = 0; i < t->rounds; i++) {
		if (i && t->budget_seconds &&
		    (double)cf_sql_spent_ms(db) / 1000 + since(&t1) > (double)t->budget_seconds) {
			rc = bad(why, whylen, CF_ERR_LIMIT, "the training ran out of its time budget "
				 "after %u of %u rounds (policy.time_budget_seconds)", i, t->rounds);
			goto out;
		}
		if (XGBoosterUpdateOneIter(b, (int)i, dm) != 0) {
			/* Its message can quote a label: not repeated. */
			rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost fails in training round %u "
				 "(labels that do not suit the objective, or parameters that do not "
				 "go together)", i);
			goto out;
		}
		if (metrics) {
			const char *eval;
			if (XGBoosterEvalOneIter(b, (int)i, &dm, names, 1, &eval) != 0 ||
			    (i == 0 && (rc = metrics_line(metrics, i, eval, true)) != CF_OK) ||
			    (rc = metrics_line(metrics, i, eval, false)) != CF_OK) {
				rc = bad(why, whylen, rc == CF_ERR_TOO_BIG ? rc : CF_ERR_PARSE,
					 "the training metrics of round %u: %s", i,
					 rc == CF_ERR_TOO_BIG ? "too big" : "XGBoost gives none");
				goto out;
			}
		}
	}
	bst_ulong len;
	const char *json;
	if (XGBoosterSaveModelToBuffer(b, "{\"format\":\"json\"}", &len, &json) != 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost does not save the model");
		goto out;
	}
	if ((rc = cf_buf_append(model, json, len)) != CF_OK) {
		bad(why, whylen, rc, "the model: %s", cf_strerror(rc));
		goto out;
	}
	log_info("xgboost.train: %llu rows, %zu features, %u rounds in %.2f s",
		 (unsigned long long)rows, ncols, t->rounds, since(&t0));
	rc = CF_OK;
out:
	if (rows_out)
		*rows_out = rows;
	sqlite3_finalize(st);
	if (b)
		XGBoosterFree(b);
	if (dm)
		XGDMatrixFree(dm);
	fmat_free(&x);
	fmat_free(&y);
	for (size_t i = 0; fnames && i < ncols; i++)
		free(fnames[i]);
	free(fnames);
	free(cols);
	return rc;
}

/* --- predict --- */

/* Appends column c of the current row as a CSV field (as output.c prints values). */
static cf_err id_field(cf_buf *out, sqlite3_stmt *st, int c)
{
	static const char hex[] = "0123456789abcdef";
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_NULL:
		return CF_OK;
	case SQLITE_INTEGER:
		return cf_buf_printf(out, "%lld", (long long)sqlite3_column_int64(st, c));
	case SQLITE_FLOAT: {
		char tmp[64];
		sqlite3_snprintf(sizeof(tmp), tmp, "%!.15g", sqlite3_column_double(st, c));
		return cf_buf_append_str(out, tmp);
	}
	case SQLITE_BLOB: {
		const uint8_t *p = sqlite3_column_blob(st, c);
		size_t n = (size_t)sqlite3_column_bytes(st, c);
		cf_err rc = cf_buf_reserve(out, 2 * n);
		for (size_t k = 0; rc == CF_OK && k < n; k++) {
			out->data[out->len++] = (uint8_t)hex[p[k] >> 4];
			out->data[out->len++] = (uint8_t)hex[p[k] & 15];
		}
		return rc;
	}
	default: {
		const uint8_t *p = sqlite3_column_text(st, c);
		size_t n = (size_t)sqlite3_column_bytes(st, c);
		if (n == 0)
			return cf_buf_append(out, "\"\"", 2);
		return p ? cf_output_csv_field(out, p, n) : CF_ERR_NOMEM;
	}
	}
}

/* libxgboost 1.7.4 wants every member, cache_id too; missing for in-place prediction. */
static const char predict_config[] = "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
				     "\"iteration_end\":0,\"strict_shape\":false,\"cache_id\":0,"
				     "\"missing\":NaN}";

/* Loads the model: CF_ERR_PARSE if XGBoost does not. */
static cf_err load_model(const cf_xgb_predict *p, const uint8_t *model, size_t model_len,
			 BoosterHandle *out, bst_ulong *nfeat, char *why, size_t whylen)
{
	BoosterHandle b = NULL;
	size_t k = 0;
	*out = NULL;
	while (k < model_len && (model[k] == ' ' || model[k] == '\t' || model[k] == '\r' ||
				 model[k] == '\n'))
		k++;
	if (k == model_len || model[k] != '{' || model_len > CF_XGB_MAX_MODEL ||
	    XGBoosterCreate(NULL, 0, &b) != 0 ||
	    XGBoosterLoadModelFromBuffer(b, model, model_len) != 0 ||
	    XGBoosterGetNumFeature(b, nfeat) != 0) {
		if (b)
			XGBoosterFree(b);
		return bad(why, whylen, CF_ERR_PARSE, "the model input %s is not an XGBoost JSON "
			   "model (XGBoost does not load it)", p->model);
	}
	if (p->nthread) {
		char n[16];
		snprintf(n, sizeof(n), "%d", p->nthread);
		if (XGBoosterSetParam(b, "nthread", n) != 0) {
			XGBoosterFree(b);
			return bad(why, whylen, CF_ERR_PARSE, "XGBoost refuses function.nthread");
		}
	}
	*out = b;
	return CF_OK;
}

/*
 * --- the predictor: blocks of rows predicted while the next are read ---
 *
 * The reader (a query's rows, or a CSV input as it is decrypted) fills
 * blocks of rows in a ring; worker threads, one per core the task allows
 * (function.nthread), each with its own single-threaded booster, take the
 * full blocks in turn, predict each in place (XGBoost's array interface:
 * no DMatrix copy), write its lines and wipe it; the lines are committed
 * to the CSV in block order. So reading overlaps predicting with every
 * core busy (no OpenMP team waiting on a preempted member), and the rows'
 * matrix never exists whole: memory holds the ring, whatever the input's
 * size. The reader waits while the ring is full.
 */
enum { BLOCK_MAX_ROWS = 16384, BLOCK_BYTES = 4 << 20, BLOCK_MIN_ROWS = 64, MAX_WORKERS = 16 };

enum { SLOT_FREE, SLOT_READY, SLOT_BUSY, SLOT_DONE };

typedef struct block {
	int state;      /* FREE while the reader fills it */
	float *x;       /* block_rows x ncols, NaN = missing */
	size_t rows;
	cf_buf ids;     /* the rows' ids as CSV fields, back to back */
	size_t *id_end; /* the end of each row's id in ids */
	cf_buf out;     /* its lines of the CSV, until committed */
	bst_ulong per;  /* values per row */
} block;

typedef struct predictor predictor;

typedef struct worker {
	predictor *pr;
	BoosterHandle booster;
	pthread_t thread;
	bool running;
} worker;

struct predictor {
	bool started;
	worker workers[MAX_WORKERS];
	size_t nworkers;
	size_t ncols, block_rows, nslots;
	block *ring;
	const char *id_name;         /* NULL: no id column */
	const char *model_name;
	uint64_t rows, max_rows;
	cf_buf *csv;                 /* the workers' until they are joined */
	bst_ulong per;               /* values per row, from the first block */
	bool header_done;
	uint64_t produced, taken, committed; /* blocks handed over, taken, in the CSV */
	bool input_done, stop;
	cf_err failed;               /* a worker's first failure, and why */
	char why[200];
	char rwhy[200];              /* why the reader's last call failed */
	double predict_s, wait_s;    /* the workers predicting; the reader waiting */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void say(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static cf_err csv_header(predictor *pr)
{
	cf_buf *csv = pr->csv;
	cf_err rc = CF_OK;
	/* The id's name as the task writes it, then the predictions. */
	if (pr->id_name)
		rc = cf_output_csv_field(csv, (const uint8_t *)pr->id_name, strlen(pr->id_name));
	for (bst_ulong c = 0; rc == CF_OK && c < pr->per; c++) {
		if (pr->id_name || c)
			rc = cf_buf_append_byte(csv, ',');
		if (rc == CF_OK)
			rc = pr->per == 1 ? cf_buf_append_str(csv, "prediction")
					  : cf_buf_printf(csv, "prediction_%llu", (unsigned long long)c);
	}
	if (rc == CF_OK)
		rc = cf_buf_append(csv, "\r\n", 2);
	pr->header_done = true;
	return rc;
}

static void csv_full(const cf_buf *csv, cf_err rc, char *why, size_t whylen)
{
	if (rc == CF_ERR_TOO_BIG && csv->max % (1u << 20) == 0)
		say(why, whylen, "the predictions: the outputs are larger than %zu MiB together",
		    csv->max >> 20);
	else if (rc == CF_ERR_TOO_BIG)
		say(why, whylen, "the predictions: the outputs are larger than %zu bytes together",
		    csv->max);
	else
		say(why, whylen, "the predictions: %s", cf_strerror(rc));
}

/* Predicts one block into its lines, then wipes its rows (on a worker, unlocked). */
static cf_err predict_block(const predictor *pr, BoosterHandle booster, block *b, char *why,
			    size_t whylen)
{
	const bst_ulong *shape;
	bst_ulong dim, per = 1;
	const float *res = NULL;
	char array[160];
	cf_err rc = CF_OK;
	snprintf(array, sizeof(array), "{\"data\":[%llu,true],\"shape\":[%zu,%zu],"
		 "\"typestr\":\"<f4\",\"version\":3}",
		 (unsigned long long)(uintptr_t)b->x, b->rows, pr->ncols);
	int failed = XGBoosterPredictFromDense(booster, array, predict_config, NULL, &shape, &dim,
					       &res);
	OPENSSL_cleanse(b->x, b->rows * pr->ncols * sizeof(float));
	if (failed || dim < 1 || shape[0] != b->rows) {
		say(why, whylen, "XGBoost does not predict with the model input %s", pr->model_name);
		return CF_ERR_PARSE;
	}
	for (bst_ulong d = 1; d < dim; d++)
		per *= shape[d];
	if (per == 0) {
		say(why, whylen, "the model predicts nothing");
		return CF_ERR_PARSE;
	}
	b->per = per;
	for (size_t i = 0; rc == CF_OK && i < b->rows; i++) {
		/* An empty id (NULL in SQL, an empty field in a CSV) writes nothing; ids may hold none. */
		size_t start = i && pr->id_name ? b->id_end[i - 1] : 0;
		if (pr->id_name && b->id_end[i] > start)
			rc = cf_buf_append(&b->out, b->ids.data + start, b->id_end[i] - start);
		for (bst_ulong c = 0; rc == CF_OK && c < per; c++) {
			/* ",%.9g": a float32 exactly; the comma only after something. */
			char num[32];
			int n = snprintf(num + 1, sizeof(num) - 1, "%.9g", (double)res[i * per + c]);
			bool comma = pr->id_name || c;
			num[0] = ',';
			rc = cf_buf_append(&b->out, comma ? num : num + 1, (size_t)n + comma);
		}
		if (rc == CF_OK)
			rc = cf_buf_append(&b->out, "\r\n", 2);
	}
	cf_buf_reset(&b->ids);
	if (rc != CF_OK)
		csv_full(pr->csv, rc, why, whylen);
	return rc;
}

/* Appends the finished blocks to the CSV in order, freeing their slots (locked). */
static cf_err commit(predictor *pr, char *why, size_t whylen)
{
	cf_err rc = CF_OK;
	while (rc == CF_OK && pr->committed < pr->taken) {
		block *b = &pr->ring[pr->committed % pr->nslots];
		if (b->state != SLOT_DONE)
			break;
		if (!pr->header_done) {
			pr->per = b->per;
			rc = csv_header(pr);
		} else if (b->per != pr->per) {
			say(why, whylen, "the model's predictions changed shape");
			return CF_ERR_PARSE;
		}
		if (rc == CF_OK)
			rc = cf_buf_append(pr->csv, b->out.data, b->out.len);
		if (rc != CF_OK)
			csv_full(pr->csv, rc, why, whylen);
		cf_buf_reset(&b->out);
		b->rows = 0;
		b->state = SLOT_FREE;
		pr->committed++;
	}
	return rc;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	predictor *pr = w->pr;
	char why[sizeof(pr->why)];
	pthread_mutex_lock(&pr->lock);
	for (;;) {
		while (pr->taken == pr->produced && !pr->input_done && !pr->stop && !pr->failed)
			pthread_cond_wait(&pr->cond, &pr->lock);
		if (pr->stop || pr->failed || pr->taken == pr->produced)
			break;
		block *b = &pr->ring[pr->taken++ % pr->nslots];
		b->state = SLOT_BUSY;
		pthread_mutex_unlock(&pr->lock);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		cf_err rc = predict_block(pr, w->booster, b, why, sizeof(why));
		pthread_mutex_lock(&pr->lock);
		pr->predict_s += since(&t0);
		b->state = SLOT_DONE;
		if (rc == CF_OK)
			rc = commit(pr, why, sizeof(why));
		if (rc != CF_OK && !pr->failed) {
			pr->failed = rc;
			memcpy(pr->why, why, sizeof(why));
		}
		pthread_cond_broadcast(&pr->cond);
	}
	pthread_mutex_unlock(&pr->lock);
	return NULL;
}

/* Stops and joins the workers. */
static void predictor_join(predictor *pr, bool stop)
{
	pthread_mutex_lock(&pr->lock);
	if (stop)
		pr->stop = true;
	pr->input_done = true;
	pthread_cond_broadcast(&pr->cond);
	pthread_mutex_unlock(&pr->lock);
	for (size_t i = 0; i < pr->nworkers; i++) {
		if (pr->workers[i].running)
			pthread_join(pr->workers[i].thread, NULL);
		pr->workers[i].running = false;
	}
}

/* Stops the workers if they run, wipes and frees everything. */
static void predictor_free(predictor *pr)
{
	if (!pr->started)
		return;
	predictor_join(pr, true);
	for (size_t i = 0; pr->ring && i < pr->nslots; i++) {
		block *b = &pr->ring[i];
		if (b->x) {
			OPENSSL_cleanse(b->x, pr->block_rows * pr->ncols * sizeof(float));
			free(b->x);
		}
		free(b->id_end);
		cf_buf_free(&b->ids);
		cf_buf_free(&b->out);
	}
	free(pr->ring);
	for (size_t i = 0; i < pr->nworkers; i++) {
		if (pr->workers[i].booster)
			XGBoosterFree(pr->workers[i].booster);
	}
	pthread_mutex_destroy(&pr->lock);
	pthread_cond_destroy(&pr->cond);
	memset(pr, 0, sizeof(*pr));
}

/* function.nthread, or the cores this process may run on. */
static size_t worker_count(const cf_xgb_predict *p)
{
	long n = p->nthread > 0 ? p->nthread : cores_allowed();
	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (size_t)n;
}

/*
 * Takes the booster (freed with the predictor, on every path), loads one
 * more per further worker, each single-threaded, and starts the workers.
 */
static cf_err predictor_start(predictor *pr, const cf_xgb_predict *p, BoosterHandle booster,
			      const uint8_t *model, size_t model_len, size_t ncols, bool has_id,
			      uint64_t max_rows, cf_buf *csv, char *why, size_t whylen)
{
	bst_ulong nfeat;
	cf_err rc = CF_OK;
	memset(pr, 0, sizeof(*pr));
	pr->started = true;
	pthread_mutex_init(&pr->lock, NULL);
	pthread_cond_init(&pr->cond, NULL);
	pr->nworkers = worker_count(p);
	pr->workers[0].booster = booster;
	for (size_t i = 1; rc == CF_OK && i < pr->nworkers; i++)
		rc = load_model(p, model, model_len, &pr->workers[i].booster, &nfeat, why, whylen);
	for (size_t i = 0; rc == CF_OK && i < pr->nworkers; i++) {
		if (XGBoosterSetParam(pr->workers[i].booster, "nthread", "1") != 0)
			rc = bad(why, whylen, CF_ERR_PARSE, "XGBoost refuses nthread 1");
	}
	if (rc != CF_OK)
		return rc;
	pr->ncols = ncols;
	pr->id_name = has_id ? p->id : NULL;
	pr->model_name = p->model;
	pr->max_rows = max_rows;
	pr->csv = csv;
	size_t rows = BLOCK_BYTES / (ncols * sizeof(float));
	pr->block_rows = rows > BLOCK_MAX_ROWS ? BLOCK_MAX_ROWS
			 : rows < BLOCK_MIN_ROWS ? BLOCK_MIN_ROWS : rows;
	/* A block being filled, two per worker (one predicted, one waiting), one more. */
	pr->nslots = 2 * pr->nworkers + 2;
	if (!(pr->ring = calloc(pr->nslots, sizeof(*pr->ring))))
		return bad(why, whylen, CF_ERR_NOMEM, "the predictions: out of memory");
	for (size_t i = 0; i < pr->nslots; i++) {
		cf_buf_init(&pr->ring[i].ids, csv->max, true);
		cf_buf_init(&pr->ring[i].out, csv->max, true);
	}
	for (size_t i = 0; i < pr->nworkers; i++) {
		pr->workers[i].pr = pr;
		if (pthread_create(&pr->workers[i].thread, NULL, worker_main, &pr->workers[i]) != 0)
			return bad(why, whylen, CF_ERR_NOMEM, "the predictions: no thread");
		pr->workers[i].running = true;
	}
	return CF_OK;
}

/* Hands the filling block over and waits for the next slot: a worker's failure, if any. */
static cf_err handover(predictor *pr)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&pr->lock);
	pr->ring[pr->produced % pr->nslots].state = SLOT_READY;
	pr->produced++;
	pthread_cond_broadcast(&pr->cond);
	while (pr->ring[pr->produced % pr->nslots].state != SLOT_FREE && !pr->failed)
		pthread_cond_wait(&pr->cond, &pr->lock);
	cf_err rc = pr->failed;
	if (rc != CF_OK)
		memcpy(pr->rwhy, pr->why, sizeof(pr->rwhy));
	pr->wait_s += since(&t0);
	pthread_mutex_unlock(&pr->lock);
	return rc;
}

/*
 * Room for one more row (handing a full block over first). CF_ERR_LIMIT
 * past max_rows, or a worker's failure; pr->rwhy says which.
 */
static cf_err predictor_row(predictor *pr, float **row)
{
	if (pr->rows >= pr->max_rows) {
		say(pr->rwhy, sizeof(pr->rwhy), "the rows: more rows than policy.max_result_rows");
		return CF_ERR_LIMIT;
	}
	block *b = &pr->ring[pr->produced % pr->nslots];
	if (b->rows == pr->block_rows) {
		cf_err rc = handover(pr);
		if (rc != CF_OK)
			return rc;
		b = &pr->ring[pr->produced % pr->nslots];
	}
	if (!b->x) {
		b->x = malloc(pr->block_rows * pr->ncols * sizeof(float));
		b->id_end = malloc(pr->block_rows * sizeof(size_t));
		if (!b->x || !b->id_end) {
			say(pr->rwhy, sizeof(pr->rwhy), "the rows: out of memory");
			return CF_ERR_NOMEM;
		}
	}
	*row = b->x + b->rows * pr->ncols;
	b->rows++;
	pr->rows++;
	return CF_OK;
}

/* The current row's id: appended to predictor_ids(), then predictor_id_done(). */
static cf_buf *predictor_ids(predictor *pr)
{
	return &pr->ring[pr->produced % pr->nslots].ids;
}

static void predictor_id_done(predictor *pr)
{
	block *b = &pr->ring[pr->produced % pr->nslots];
	b->id_end[b->rows - 1] = b->ids.len;
}

/* Hands over the last block and waits for every prediction: the CSV is complete. */
static cf_err predictor_finish(predictor *pr, char *why, size_t whylen)
{
	pthread_mutex_lock(&pr->lock);
	if (pr->ring[pr->produced % pr->nslots].rows) {
		pr->ring[pr->produced % pr->nslots].state = SLOT_READY;
		pr->produced++;
	}
	pthread_mutex_unlock(&pr->lock);
	predictor_join(pr, false);
	if (pr->failed)
		return bad(why, whylen, pr->failed, "%s", pr->why);
	if (pr->committed != pr->produced)
		return bad(why, whylen, CF_ERR_IO, "the predictions: %llu of %llu blocks done",
			   (unsigned long long)pr->committed, (unsigned long long)pr->produced);
	if (!pr->header_done) {
		pr->per = 1;
		cf_err rc = csv_header(pr);
		if (rc != CF_OK) {
			csv_full(pr->csv, rc, pr->why, sizeof(pr->why));
			return bad(why, whylen, rc, "%s", pr->why);
		}
	}
	return CF_OK;
}

cf_err cf_xgb_predict_run(cf_sql *db, const cf_xgb_predict *p, const uint8_t *model,
			  size_t model_len, uint64_t max_rows, cf_buf *csv, uint64_t *rows_out,
			  char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	BoosterHandle b = NULL;
	predictor pr = { 0 };
	int *cols = NULL;
	size_t ncols = 0;
	bst_ulong nfeat = 0;
	char msg[320];
	bool row;
	struct timespec t0;
	cf_err rc;
	if (why && whylen)
		why[0] = '\0';
	if (rows_out)
		*rows_out = 0;
	if (!db || !p || !p->query || !csv || (!model && model_len))
		return CF_ERR_ARG;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	quiet_xgboost();

	/* The model first: a bad one fails before any row is read. */
	if ((rc = load_model(p, model, model_len, &b, &nfeat, why, whylen)) != CF_OK)
		goto out;
	if ((rc = cf_sql_prepare(db, p->query, &st, msg, sizeof(msg))) != CF_OK) {
		bad(why, whylen, rc, "function.query: %s", msg);
		goto out;
	}
	int id = -1;
	if (p->id && (id = find_column(st, p->id)) < 0) {
		rc = bad(why, whylen, CF_ERR_PARSE, id == -1 ? "the query's result has no id column "
			 "(function.id \"%.64s\")" : "the query's result has two id columns "
			 "(function.id \"%.64s\")", p->id);
		goto out;
	}
	if ((rc = map_features(st, p->features, p->nfeatures, id, &cols, &ncols, why, whylen)) !=
	    CF_OK)
		goto out;
	if (nfeat != ncols) {
		rc = bad(why, whylen, CF_ERR_PARSE, "the model takes %llu features; the query gives "
			 "%zu", (unsigned long long)nfeat, ncols);
		goto out;
	}
	rc = predictor_start(&pr, p, b, model, model_len, ncols, id >= 0, max_rows, csv, why,
			     whylen);
	b = NULL;
	if (rc != CF_OK)
		goto out;
	for (;;) {
		float *v;
		if ((rc = cf_sql_step(db, st, &row, msg, sizeof(msg))) != CF_OK) {
			bad(why, whylen, rc, "function.query: %s", msg);
			goto out;
		}
		if (!row)
			break;
		if ((rc = predictor_row(&pr, &v)) != CF_OK) {
			bad(why, whylen, rc, "%s", pr.rwhy);
			goto out;
		}
		for (size_t i = 0; i < ncols; i++) {
			if (!value_of(st, cols[i], &v[i])) {
				rc = bad(why, whylen, CF_ERR_PARSE, "result row %llu: feature %zu "
					 "(result column %d) is not a number",
					 (unsigned long long)pr.rows, i + 1, cols[i] + 1);
				goto out;
			}
		}
		if (id >= 0) {
			if ((rc = id_field(predictor_ids(&pr), st, id)) != CF_OK) {
				bad(why, whylen, rc, "the ids: %s", cf_strerror(rc));
				goto out;
			}
			predictor_id_done(&pr);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	double query_s = since(&t0);
	if ((rc = predictor_finish(&pr, why, whylen)) != CF_OK)
		goto out;
	log_info("xgboost.predict: %llu rows, %zu features in %.2f s (the query's rows until "
		 "%.2f s; predicting %.2f s alongside, on %zu thread%s)", (unsigned long long)pr.rows,
		 ncols, since(&t0), query_s, pr.predict_s, pr.nworkers, pr.nworkers == 1 ? "" : "s");
out:
	if (rows_out)
		*rows_out = pr.rows;
	sqlite3_finalize(st);
	if (b)
		XGBoosterFree(b);
	predictor_free(&pr);
	free(cols);
	return rc;
}

/* --- predict straight from a CSV input --- */

struct cf_xgb_rows {
	const cf_xgb_predict *p;
	BoosterHandle booster;  /* until the predictor takes it */
	const uint8_t *model;   /* the caller's, until finish: more workers load it */
	size_t model_len;
	bst_ulong nfeat;        /* the model's */
	cf_buf *csv;
	uint64_t max_rows;
	predictor pr;           /* started by the header */
	cf_csv_reader *reader;
	int *cols;              /* header index of each feature */
	size_t ncols;
	int id;                 /* header index of the id, or -1 */
	size_t nheader;
	struct timespec t0;
	char error[240];
};

static cf_err rows_fail(cf_xgb_rows *r, cf_err rc, const char *fmt, ...) CF_PRINTF(3, 4);
static cf_err rows_fail(cf_xgb_rows *r, cf_err rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	return rc;
}

/* The header: where each feature and the id are; then the predictor starts. */
static cf_err rows_header(cf_xgb_rows *r, const cf_csv_field *f, size_t n)
{
	const cf_xgb_predict *p = r->p;
	char name[CF_CSV_MAX_NAME + 1];
	r->nheader = n;
	/* Column i's name as a C string, or "" (a name the loader would refuse matches nothing). */
#define NAME(i)                                                                          \
	(f[i].len <= CF_CSV_MAX_NAME && cf_csv_valid_column(f[i].data, f[i].len)       \
		 ? (memcpy(name, f[i].data, f[i].len), name[f[i].len] = '\0', name)    \
		 : "")
	if (p->id) {
		for (size_t i = 0; i < n; i++) {
			if (sqlite3_stricmp(NAME(i), p->id) != 0)
				continue;
			if (r->id >= 0)
				return rows_fail(r, CF_ERR_PARSE, "two columns are named function.id");
			r->id = (int)i;
		}
		if (r->id < 0)
			return rows_fail(r, CF_ERR_PARSE, "no column is named function.id (\"%.64s\")",
					 p->id);
	}
	if (!(r->cols = calloc(n ? n : 1, sizeof(int))))
		return rows_fail(r, CF_ERR_NOMEM, "out of memory");
	if (!p->features) {
		for (size_t i = 0; i < n; i++) {
			if ((int)i != r->id)
				r->cols[r->ncols++] = (int)i;
		}
		if (r->ncols == 0)
			return rows_fail(r, CF_ERR_PARSE, "the input has no feature column");
	}
	for (size_t k = 0; p->features && k < p->nfeatures; k++) {
		int at = -1;
		for (size_t i = 0; i < n; i++) {
			if (sqlite3_stricmp(NAME(i), p->features[k]) != 0)
				continue;
			if (at >= 0)
				return rows_fail(r, CF_ERR_PARSE, "two columns are named "
						 "function.features[%zu]", k);
			at = (int)i;
		}
		if (at < 0)
			return rows_fail(r, CF_ERR_PARSE, "no column is named function.features[%zu] "
					 "(\"%.64s\")", k, p->features[k]);
		r->cols[r->ncols++] = at;
	}
#undef NAME
	if (r->nfeat != r->ncols)
		return rows_fail(r, CF_ERR_PARSE, "the model takes %llu features; input %s gives %zu",
				 (unsigned long long)r->nfeat, p->table, r->ncols);
	cf_err rc = predictor_start(&r->pr, p, r->booster, r->model, r->model_len, r->ncols,
				    r->id >= 0, r->max_rows, r->csv, r->error, sizeof(r->error));
	r->booster = NULL;
	return rc;
}

/* A field as a float: NaN if empty; the loader's number grammars, else false. */
static bool field_value(const cf_csv_field *f, float *out)
{
	if (f->len == 0) {
		*out = NAN;
		return true;
	}
	const char *d = f->data;
	size_t i = d[0] == '-', n = f->len;
	/*
	 * The commonest case first: a canonical non-negative integer of at
	 * most 9 digits, one test per byte (a digit check folded into `bad`),
	 * in 32 bits, exact in a double, so one rounding to float as strtod's.
	 */
	if (n <= 9 && (d[0] != '0' || n == 1)) {
		uint32_t v = 0;
		unsigned bad = 0;
		for (size_t k = 0; k < n; k++) {
			unsigned c = (unsigned char)d[k] - '0';
			bad |= c > 9;
			v = v * 10 + c;
		}
		if (!bad) {
			*out = (float)v;
			return true;
		}
	}
	/*
	 * A canonical integer of at most 18 digits (cf_csv_is_integer's
	 * grammar, so exact in an int64) in one pass, without strtod.
	 */
	if (n - i >= 1 && n - i <= 18 && (d[i] != '0' || (n - i == 1 && i == 0))) {
		int64_t v = 0;
		size_t k = i;
		while (k < n && d[k] >= '0' && d[k] <= '9')
			v = v * 10 + (d[k++] - '0');
		if (k == n) {
			*out = (float)(i ? -v : v);
			return true;
		}
	}
	/* Otherwise what the loader would type INTEGER (19 digits) or REAL. */
	char tmp[352];
	if (f->len >= sizeof(tmp) ||
	    !(cf_csv_is_integer(f->data, f->len) || cf_csv_is_real(f->data, f->len)))
		return false;
	memcpy(tmp, f->data, f->len);
	tmp[f->len] = '\0';
	*out = (float)strtod(tmp, NULL);
	return true;
}

static cf_err rows_record(void *arg, const cf_csv_field *f, size_t n, uint64_t record,
			  uint64_t line)
{
	cf_xgb_rows *r = arg;
	float *v;
	cf_err rc;
	if (record == 1)
		return rows_header(r, f, n);
	if (n != r->nheader)
		return rows_fail(r, CF_ERR_PARSE, "line %llu (record %llu): %zu fields; the header "
				 "has %zu", (unsigned long long)line, (unsigned long long)record, n,
				 r->nheader);
	if ((rc = predictor_row(&r->pr, &v)) != CF_OK)
		return rows_fail(r, rc, "%s", r->pr.rwhy);
	for (size_t i = 0; i < r->ncols; i++) {
		if (!field_value(&f[r->cols[i]], &v[i]))
			return rows_fail(r, CF_ERR_PARSE, "line %llu (record %llu): feature %zu "
					 "(column %d) is not a number", (unsigned long long)line,
					 (unsigned long long)record, i + 1, r->cols[i] + 1);
	}
	if (r->id >= 0) {
		const cf_csv_field *id = &f[r->id];
		if ((rc = cf_output_csv_field(predictor_ids(&r->pr), (const uint8_t *)id->data,
					      id->len)) != CF_OK)
			return rows_fail(r, rc, "the ids: %s", cf_strerror(rc));
		predictor_id_done(&r->pr);
	}
	return CF_OK;
}

cf_err cf_xgb_rows_new(const cf_xgb_predict *p, const uint8_t *model, size_t model_len,
		       uint64_t max_rows, cf_buf *csv, cf_xgb_rows **out, char *why,
		       size_t whylen)
{
	cf_xgb_rows *r;
	cf_err rc;
	*out = NULL;
	if (why && whylen)
		why[0] = '\0';
	if (!p || !p->table || !csv || (!model && model_len))
		return CF_ERR_ARG;
	if (!(r = calloc(1, sizeof(*r))))
		return CF_ERR_NOMEM;
	r->p = p;
	r->model = model;
	r->model_len = model_len;
	r->csv = csv;
	r->max_rows = max_rows;
	r->id = -1;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	quiet_xgboost();
	/* The model first: a bad one fails before any row is read. */
	if ((rc = load_model(p, model, model_len, &r->booster, &r->nfeat, why, whylen)) != CF_OK ||
	    (rc = cf_csv_reader_new(NULL, rows_record, r, &r->reader)) != CF_OK) {
		cf_xgb_rows_free(r);
		return rc;
	}
	*out = r;
	return CF_OK;
}

cf_writer cf_xgb_rows_writer(cf_xgb_rows *r)
{
	return cf_csv_reader_writer(r->reader);
}

cf_err cf_xgb_rows_finish(cf_xgb_rows *r, char *why, size_t whylen)
{
	cf_err rc = cf_csv_reader_finish(r->reader);
	if (rc == CF_OK && r->nheader == 0)
		rc = rows_fail(r, CF_ERR_PARSE, "the input is empty (no header)");
	if (rc != CF_OK)
		return bad(why, whylen, rc, "%s", cf_xgb_rows_error(r));
	double read_s = since(&r->t0);
	if ((rc = predictor_finish(&r->pr, why, whylen)) != CF_OK) {
		snprintf(r->error, sizeof(r->error), "%s", r->pr.why);
		return rc;
	}
	log_info("xgboost.predict: %llu rows, %zu features of input %s in %.2f s (the input "
		 "read by %.2f s, %.2f s of it waiting for the predictor; predicting %.2f s "
		 "alongside, on %zu thread%s)", (unsigned long long)r->pr.rows, r->ncols, r->p->table,
		 since(&r->t0), read_s, r->pr.wait_s, r->pr.predict_s, r->pr.nworkers,
		 r->pr.nworkers == 1 ? "" : "s");
	return CF_OK;
}

const char *cf_xgb_rows_error(const cf_xgb_rows *r)
{
	if (r->error[0])
		return r->error;
	return cf_csv_reader_error(r->reader);
}

uint64_t cf_xgb_rows_count(const cf_xgb_rows *r)
{
	return r ? r->pr.rows : 0;
}

void cf_xgb_rows_free(cf_xgb_rows *r)
{
	if (!r)
		return;
	predictor_free(&r->pr);
	if (r->booster)
		XGBoosterFree(r->booster);
	cf_csv_reader_free(r->reader);
	free(r->cols);
	free(r);
}
