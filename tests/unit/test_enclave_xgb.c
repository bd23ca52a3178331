/*
 * enclave/xgb (xgboost.train, xgboost.predict) against libxgboost called
 * directly: a model trained by the module predicts what one trained by
 * hand on the same rows, parameters and seed predicts (within 1e-6), and
 * the module's predictions are XGBoosterPredictFromDMatrix's. Then the
 * failures: a malformed model, a model for other features, a missing
 * label column, a non-numeric feature, a NULL label, parameters outside
 * the allowlist; none of the messages quotes a value. Then the task
 * parser for the new kinds and input formats, and both kinds end to end
 * through the worker (encrypted inputs, a model input, encrypted outputs).
 *
 * nthread is 1 everywhere: libxgboost is not instrumented, and one thread
 * keeps ASan runs short and the training exactly reproducible.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <xgboost/c_api.h>

#include "coffer/age.h"
#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "csv.h"
#include "job.h"
#include "sql.h"
#include "worker.h"
#include "xgb.h"

#define N 240
#define NF 3

/* The rows: id, x1 (real), x2 (integer), x3 (real, some NULL), s (text), y (real). */
static float X[N * NF], Y[N];
static char *csv_text;

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

static int group_setup(void **state)
{
	(void)state;
	uint32_t s = 42;
	cf_buf b;
	cf_buf_init(&b, 1u << 20, false);
	assert_int_equal(cf_buf_append_str(&b, "id,x1,x2,x3,s,y\n"), CF_OK);
	for (int i = 0; i < N; i++) {
		/* Multiples of 1/8: exact as text, as double and as float. */
		double x1 = (double)(lcg(&s) % 801) / 8.0 - 50.0;
		int x2 = (int)(lcg(&s) % 7);
		bool null3 = lcg(&s) % 10 == 0;
		double x3 = (double)(lcg(&s) % 161) / 8.0;
		double y = 0.5 * x1 + (x2 >= 3 ? 10.0 : -4.0) + (null3 ? 7.0 : x3 * 0.25) +
			   (double)(lcg(&s) % 17) / 8.0;
		X[i * NF + 0] = (float)x1;
		X[i * NF + 1] = (float)x2;
		X[i * NF + 2] = null3 ? NAN : (float)x3;
		Y[i] = (float)y;
		char x3s[32] = "";
		if (!null3)
			snprintf(x3s, sizeof(x3s), "%.3f", x3);
		assert_int_equal(cf_buf_printf(&b, "%d,%.3f,%d,%s,VALUE-%d,%.5f\n", 1000 + i, x1, x2, x3s,
					       i, y), CF_OK);
	}
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	size_t len;
	csv_text = (char *)cf_buf_steal(&b, &len);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(csv_text);
	return 0;
}

static json_t *parse(const char *text)
{
	json_t *v = NULL;
	if (cf_json_parse(text, strlen(text), NULL, &v) != CF_OK)
		fail_msg("not JSON: %s", text);
	return v;
}

/* A fenced database with table t of the rows. */
static cf_sql *open_db(void)
{
	cf_sql *db;
	cf_csv_load *l;
	assert_int_equal(cf_sql_open(&db), CF_OK);
	assert_int_equal(cf_csv_load_new(cf_sql_db(db), "t", NULL, &l), CF_OK);
	cf_writer w = cf_csv_load_writer(l);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)csv_text, strlen(csv_text)), CF_OK);
	assert_int_equal(cf_csv_load_finish(l, NULL), CF_OK);
	cf_csv_load_free(l);
	assert_int_equal(cf_sql_allow_table(db, "t"), CF_OK);
	assert_int_equal(cf_sql_arm(db, 60), CF_OK);
	return db;
}

#define XGB_OK(call)                                                           \
	do {                                                                   \
		if ((call) != 0)                                               \
			fail_msg("%s: %s", #call, XGBGetLastError());          \
	} while (0)

static const char *const params[][2] = {
	{ "objective", "reg:squarederror" }, { "max_depth", "3" }, { "eta", "0.3" },
	{ "seed", "7" }, { "nthread", "1" }, { "subsample", "0.8" },
	{ "colsample_bytree", "0.9" },
};
#define PARAMS_JSON                                                              \
	"{\"objective\": \"reg:squarederror\", \"max_depth\": 3, \"eta\": 0.3, "     \
	"\"seed\": 7, \"nthread\": 1, \"subsample\": 0.8, \"colsample_bytree\": 0.9, " \
	"\"num_round\": 12}"
#define ROUNDS 12

static DMatrixHandle direct_matrix(void)
{
	DMatrixHandle dm;
	XGB_OK(XGDMatrixCreateFromMat(X, N, NF, NAN, &dm));
	XGB_OK(XGDMatrixSetFloatInfo(dm, "label", Y, N));
	return dm;
}

/* The model trained by hand: same rows, parameters, seed and rounds. */
static BoosterHandle direct_train(DMatrixHandle dm)
{
	BoosterHandle b;
	XGB_OK(XGBoosterCreate(&dm, 1, &b));
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		XGB_OK(XGBoosterSetParam(b, params[i][0], params[i][1]));
	for (int i = 0; i < ROUNDS; i++)
		XGB_OK(XGBoosterUpdateOneIter(b, i, dm));
	return b;
}

static const float *predict(BoosterHandle b, DMatrixHandle dm)
{
	static const char cfg[] = "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
				  "\"iteration_end\":0,\"strict_shape\":false,\"cache_id\":0}";
	const bst_ulong *shape;
	bst_ulong dim;
	const float *out;
	XGB_OK(XGBoosterPredictFromDMatrix(b, dm, cfg, &shape, &dim, &out));
	assert_int_equal(shape[0], N);
	return out;
}

static BoosterHandle load(const uint8_t *json, size_t len)
{
	BoosterHandle b;
	XGB_OK(XGBoosterCreate(NULL, 0, &b));
	XGB_OK(XGBoosterLoadModelFromBuffer(b, json, len));
	return b;
}

static void train_spec(const char *fn_json, cf_xgb_train *t)
{
	json_t *fn = parse(fn_json);
	char why[256];
	cf_err rc = cf_xgb_train_parse(fn, t, why, sizeof(why));
	json_decref(fn);
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
}

static const char train_fn[] =
	"{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, x2, x3, y FROM t ORDER BY id\","
	" \"label\": \"y\", \"params\": " PARAMS_JSON "}";

/* Checks that model (JSON) predicts as the hand-trained booster does. */
static void assert_same_model(const cf_buf *model)
{
	DMatrixHandle dm = direct_matrix();
	BoosterHandle direct = direct_train(dm);
	float want[N];
	memcpy(want, predict(direct, dm), sizeof(want));
	BoosterHandle mine = load(model->data, model->len);
	const float *got = predict(mine, dm);
	bool varied = false;
	for (int i = 0; i < N; i++) {
		if (fabsf(got[i] - want[i]) > 1e-6f)
			fail_msg("row %d: %.9g, directly %.9g", i, (double)got[i], (double)want[i]);
		varied |= fabsf(want[i] - want[0]) > 1.0f;
	}
	assert_true(varied); /* a model that learnt something */
	XGBoosterFree(mine);
	XGBoosterFree(direct);
	XGDMatrixFree(dm);
}

static void test_train_matches_direct(void **state)
{
	(void)state;
	cf_xgb_train t;
	cf_buf model, metrics;
	char why[256];
	uint64_t rows = 0;
	train_spec(train_fn, &t);
	assert_int_equal(t.rounds, ROUNDS);
	assert_null(t.features);
	cf_sql *db = open_db();
	cf_buf_init(&model, 1u << 24, true);
	cf_buf_init(&metrics, 1u << 20, true);
	cf_err rc = cf_xgb_train_run(db, &t, &model, &metrics, &rows, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(rows, N);
	assert_true(model.len > 100 && model.data[0] == '{');
	assert_int_equal(cf_buf_terminate(&model), CF_OK);
	/* XGBoost JSON, with the features named as the query names them. */
	assert_non_null(strstr((char *)model.data, "\"learner\""));
	if (!strstr((char *)model.data, "\"feature_names\":[\"x1\",\"x2\",\"x3\"]"))
		fail_msg("%.300s", strstr((char *)model.data, "feature_names"));
	assert_same_model(&model);
	/* The metrics: a header, then one line per round. */
	assert_int_equal(cf_buf_terminate(&metrics), CF_OK);
	const char *m = (const char *)metrics.data;
	assert_true(strncmp(m, "round,train-rmse\r\n0,", 20) == 0);
	int lines = 0;
	for (const char *p = m; (p = strstr(p, "\r\n")); p += 2)
		lines++;
	assert_int_equal(lines, 1 + ROUNDS);
	assert_non_null(strstr(m, "\r\n11,"));
	cf_buf_free(&model);
	cf_buf_free(&metrics);

	/* Named features, the same columns: the same model. */
	cf_xgb_train_free(&t);
	train_spec("{\"kind\": \"xgboost.train\", \"query\": \"SELECT y AS target, s, x1, x2, x3 "
		   "FROM t ORDER BY id\", \"label\": \"TARGET\", \"features\": [\"x1\", \"x2\", "
		   "\"x3\"], \"params\": " PARAMS_JSON "}", &t);
	cf_buf_init(&model, 1u << 24, true);
	rc = cf_xgb_train_run(db, &t, &model, NULL, NULL, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_same_model(&model);
	cf_buf_free(&model);
	cf_xgb_train_free(&t);
	cf_sql_close(db);
}

/* A model trained by hand, as JSON. */
static void direct_model(cf_buf *out)
{
	DMatrixHandle dm = direct_matrix();
	BoosterHandle b = direct_train(dm);
	bst_ulong len;
	const char *json;
	XGB_OK(XGBoosterSaveModelToBuffer(b, "{\"format\":\"json\"}", &len, &json));
	cf_buf_init(out, 1u << 24, true);
	assert_int_equal(cf_buf_append(out, json, len), CF_OK);
	XGBoosterFree(b);
	XGDMatrixFree(dm);
}

static void predict_spec(const char *fn_json, cf_xgb_predict *p)
{
	json_t *fn = parse(fn_json);
	char why[256];
	cf_err rc = cf_xgb_predict_parse(fn, p, why, sizeof(why));
	json_decref(fn);
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
}

/* Checks csv ("id,prediction" or "prediction") against the direct predictions. */
static void assert_predictions(const char *csv, bool with_id)
{
	cf_buf model;
	direct_model(&model);
	DMatrixHandle dm = direct_matrix();
	BoosterHandle b = load(model.data, model.len);
	const float *want = predict(b, dm);
	const char *p = csv;
	const char *head = with_id ? "id,prediction\r\n" : "prediction\r\n";
	assert_true(strncmp(p, head, strlen(head)) == 0);
	p += strlen(head);
	for (int i = 0; i < N; i++) {
		char *end;
		if (with_id) {
			long id = strtol(p, &end, 10);
			assert_int_equal(id, 1000 + i);
			assert_int_equal(*end, ',');
			p = end + 1;
		}
		double v = strtod(p, &end);
		assert_true(end > p);
		if (fabs(v - (double)want[i]) > 1e-6)
			fail_msg("row %d: %.9g, directly %.9g", i, v, (double)want[i]);
		assert_true(strncmp(end, "\r\n", 2) == 0);
		p = end + 2;
	}
	assert_int_equal(*p, '\0');
	XGBoosterFree(b);
	XGDMatrixFree(dm);
	cf_buf_free(&model);
}

static void test_predict_matches_direct(void **state)
{
	(void)state;
	cf_xgb_predict p;
	cf_buf model, csv;
	char why[256];
	uint64_t rows = 0;
	direct_model(&model);
	cf_sql *db = open_db();
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"SELECT id, x1, "
		     "x2, x3 FROM t ORDER BY id\", \"id\": \"id\", \"nthread\": 1}", &p);
	cf_buf_init(&csv, 1u << 24, true);
	cf_err rc = cf_xgb_predict_run(db, &p, model.data, model.len, 1000000, &csv, &rows, why,
				       sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(rows, N);
	assert_int_equal(cf_buf_terminate(&csv), CF_OK);
	assert_predictions((const char *)csv.data, true);
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);

	/* Named features, no id. */
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"SELECT s, x3, "
		     "x2, x1 FROM t ORDER BY id\", \"features\": [\"x1\", \"x2\", \"x3\"]}", &p);
	cf_buf_init(&csv, 1u << 24, true);
	rc = cf_xgb_predict_run(db, &p, model.data, model.len, 1000000, &csv, NULL, why,
				sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(cf_buf_terminate(&csv), CF_OK);
	assert_predictions((const char *)csv.data, false);
	cf_buf_free(&csv);

	/* The row cap (policy.max_result_rows). */
	cf_buf_init(&csv, 1u << 24, true);
	assert_int_equal(cf_xgb_predict_run(db, &p, model.data, model.len, N - 1, &csv, NULL, why,
					    sizeof(why)), CF_ERR_LIMIT);
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	cf_buf_free(&model);
	cf_sql_close(db);
}

/* Feeds text to a rows reader in pieces of step bytes, then finishes it. */
static cf_err feed_rows(cf_xgb_rows *r, const char *text, size_t step, char *why, size_t whylen)
{
	cf_writer w = cf_xgb_rows_writer(r);
	size_t n = strlen(text);
	for (size_t off = 0; off < n; off += step) {
		size_t k = n - off < step ? n - off : step;
		cf_err rc = w.write(w.ctx, (const uint8_t *)text + off, k);
		if (rc != CF_OK) {
			snprintf(why, whylen, "%s", cf_xgb_rows_error(r));
			return rc;
		}
	}
	return cf_xgb_rows_finish(r, why, whylen);
}

/* A rows reader over model m that predicts into *csv (fresh, 16 MiB max). */
static cf_xgb_rows *rows_new(const cf_xgb_predict *p, const cf_buf *model, uint64_t max_rows,
			     cf_buf *csv)
{
	cf_xgb_rows *r;
	char why[256];
	cf_buf_init(csv, 1u << 24, true);
	cf_err rc = cf_xgb_rows_new(p, model->data, model->len, max_rows, csv, &r, why,
				    sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	return r;
}

/* The predictions of text (its rows already known to be 0..N-1 of csv_text), fed in steps. */
static void predict_table_equal(const cf_xgb_predict *p, const cf_buf *model, const char *text,
				size_t step)
{
	cf_buf csv;
	char why[256];
	cf_xgb_rows *r = rows_new(p, model, 1000000, &csv);
	cf_err rc = feed_rows(r, text, step, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(cf_xgb_rows_count(r), N);
	cf_xgb_rows_free(r);
	assert_int_equal(cf_buf_terminate(&csv), CF_OK);
	/* The id column is named as the task names it. */
	assert_true(strncmp((char *)csv.data, "ID,", 3) == 0);
	csv.data[0] = 'i';
	csv.data[1] = 'd';
	assert_predictions((const char *)csv.data, true);
	cf_buf_free(&csv);
}

static void test_predict_from_table(void **state)
{
	(void)state;
	cf_xgb_predict p;
	cf_xgb_rows *r;
	cf_buf model, csv;
	char why[256];
	direct_model(&model);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"X2\", \"x3\"], \"id\": \"ID\", \"nthread\": 1}", &p);
	assert_null(p.query);
	assert_string_equal(p.table, "t");
	predict_table_equal(&p, &model, csv_text, 777);
	predict_table_equal(&p, &model, csv_text, strlen(csv_text));

	/* A text column among the features: the line, never the value. */
	cf_xgb_predict_free(&p);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"s\", \"x3\"]}", &p);
	r = rows_new(&p, &model, 1000000, &csv);
	assert_int_equal(feed_rows(r, csv_text, 4096, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "line 2 (record 2): feature 2 (column 5) is not a number");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);

	/* A model XGBoost does not load: refused before any row. */
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\"}", &p);
	cf_buf_init(&csv, 1u << 24, true);
	assert_int_equal(cf_xgb_rows_new(&p, (const uint8_t *)"{\"learner\": 1}", 14, 10, &csv,
					 &r, why, sizeof(why)), CF_ERR_PARSE);
	assert_null(r);
	assert_string_equal(why, "the model input m is not an XGBoost JSON model (XGBoost does "
			    "not load it)");
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);

	/* No such column; the row cap; a model for other features; no header at all. */
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"x9\"]}", &p);
	r = rows_new(&p, &model, 1000000, &csv);
	assert_int_equal(feed_rows(r, csv_text, 4096, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "no column is named function.features[1] (\"x9\")");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"x2\", \"x3\"]}", &p);
	r = rows_new(&p, &model, N - 1, &csv);
	assert_int_equal(feed_rows(r, csv_text, 4096, why, sizeof(why)), CF_ERR_LIMIT);
	assert_string_equal(why, "the rows: more rows than policy.max_result_rows");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	/* Predictions larger than the output may be: refused, nothing half-written counts. */
	cf_buf_init(&csv, 1000, true);
	assert_int_equal(cf_xgb_rows_new(&p, model.data, model.len, N, &csv, &r, why, sizeof(why)),
			 CF_OK);
	assert_int_equal(feed_rows(r, csv_text, 4096, why, sizeof(why)), CF_ERR_TOO_BIG);
	assert_string_equal(why, "the predictions: the outputs are larger than 1000 bytes together");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"x2\"]}", &p);
	r = rows_new(&p, &model, N, &csv);
	assert_int_equal(feed_rows(r, csv_text, 4096, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the model takes 3 features; input t gives 2");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	r = rows_new(&p, &model, N, &csv);
	assert_int_equal(feed_rows(r, "", 1, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the input is empty (no header)");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"x2\", \"x3\"]}", &p);
	r = rows_new(&p, &model, N, &csv);
	assert_int_equal(feed_rows(r, "x1,x2,x3\n1,2,3\n3\n", 100, why, sizeof(why)),
			 CF_ERR_PARSE);
	assert_string_equal(why, "line 3 (record 3): 1 fields; the header has 3");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	/* Empty ids (a block whose ids hold no byte at all): each line starts with the comma. */
	cf_xgb_predict_free(&p);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"x2\", \"x3\"], \"id\": \"id\"}", &p);
	r = rows_new(&p, &model, N, &csv);
	assert_int_equal(feed_rows(r, "id,x1,x2,x3\n,1,2,3\n,4,5,\n", 100, why, sizeof(why)), CF_OK);
	cf_xgb_rows_free(r);
	assert_int_equal(cf_buf_terminate(&csv), CF_OK);
	assert_true(strncmp((const char *)csv.data, "id,prediction\r\n,", 16) == 0);
	assert_non_null(strstr((const char *)csv.data + 15, "\r\n,"));
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"features\": [\"x1\", \"x2\", \"x3\"]}", &p);
	/* A header and no rows: the header of the predictions alone. */
	r = rows_new(&p, &model, N, &csv);
	assert_int_equal(feed_rows(r, "x1,x2,x3\r\n", 100, why, sizeof(why)), CF_OK);
	cf_xgb_rows_free(r);
	assert_int_equal(cf_buf_terminate(&csv), CF_OK);
	assert_string_equal((const char *)csv.data, "prediction\r\n");
	cf_buf_free(&csv);
	/* The loader's grammars: numbers are what it would type INTEGER or REAL. */
	static const char *const good[] = { "0", "-12", "1.5", "-0.0", "1e3", "2.5E-3",
					    "9223372036854775807", "-9223372036854775808",
					    "123456789012345678901234.0" };
	static const char *const bad_num[] = { "007", "+5", "-", "-0", "1.", ".5", "0x10",
					       "1e999", "inf", "nan", " 1",
					       "9223372036854775808" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[96];
		snprintf(text, sizeof(text), "x1,x2,x3\n%s,,1\n", good[i]);
		r = rows_new(&p, &model, N, &csv);
		if (feed_rows(r, text, 100, why, sizeof(why)) != CF_OK)
			fail_msg("%s refused: %s", good[i], why);
		cf_xgb_rows_free(r);
		cf_buf_free(&csv);
	}
	for (size_t i = 0; i < sizeof(bad_num) / sizeof(bad_num[0]); i++) {
		char text[96];
		snprintf(text, sizeof(text), "x1,x2,x3\n1,%s,1\n", bad_num[i]);
		r = rows_new(&p, &model, N, &csv);
		if (feed_rows(r, text, 100, why, sizeof(why)) != CF_ERR_PARSE)
			fail_msg("%s taken for a number", bad_num[i]);
		assert_string_equal(why, "line 2 (record 2): feature 2 (column 2) is not a number");
		cf_xgb_rows_free(r);
		cf_buf_free(&csv);
	}
	cf_xgb_predict_free(&p);
	cf_buf_free(&model);
}

/*
 * Many blocks: 100000 rows (more than the predictor's ring holds, so the
 * reader waits for it) predicted as XGBoost predicts them directly, in
 * order with their ids; a failure in a later block (the output full, a
 * bad value) stops the thread cleanly.
 */
#define MANY 100000
static char *many_rows(int bad_at)
{
	cf_buf b;
	cf_buf_init(&b, 1u << 26, false);
	assert_int_equal(cf_buf_append_str(&b, "id,x1,x2,x3\r\n"), CF_OK);
	for (int i = 0; i < MANY; i++) {
		const float *x = &X[(i % N) * NF];
		char x3[32] = "";
		if (!isnan(x[2]))
			snprintf(x3, sizeof(x3), "%.3f", (double)x[2]);
		if (i == bad_at)
			assert_int_equal(cf_buf_printf(&b, "%d,%.3f,x,%s\r\n", i, (double)x[0], x3),
					 CF_OK);
		else
			assert_int_equal(cf_buf_printf(&b, "%d,%.3f,%d,%s\r\n", i, (double)x[0],
						       (int)x[1], x3), CF_OK);
	}
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	size_t len;
	return (char *)cf_buf_steal(&b, &len);
}

static void test_predict_table_blocks(void **state)
{
	(void)state;
	cf_xgb_predict p;
	cf_xgb_rows *r;
	cf_buf model, csv;
	char why[256];
	direct_model(&model);
	DMatrixHandle dm = direct_matrix();
	BoosterHandle b = load(model.data, model.len);
	const float *want = predict(b, dm);
	char *text = many_rows(-1);
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", "
		     "\"id\": \"id\", \"nthread\": 2}", &p);
	r = rows_new(&p, &model, MANY, &csv);
	cf_err rc = feed_rows(r, text, 65536, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(cf_xgb_rows_count(r), MANY);
	cf_xgb_rows_free(r);
	assert_int_equal(cf_buf_terminate(&csv), CF_OK);
	const char *at = (const char *)csv.data;
	assert_true(strncmp(at, "id,prediction\r\n", 15) == 0);
	at += 15;
	for (int i = 0; i < MANY; i++) {
		char *end, line[64];
		assert_int_equal(strtol(at, &end, 10), i);
		assert_int_equal(*end, ',');
		int n = snprintf(line, sizeof(line), "%.9g\r\n", (double)want[i % N]);
		if (strncmp(end + 1, line, (size_t)n) != 0)
			fail_msg("row %d: %.20s, not %s", i, end + 1, line);
		at = end + 1 + n;
	}
	assert_int_equal(*at, '\0');
	cf_buf_free(&csv);

	/* The output full after a few blocks: the thread's reason, the reader stopped. */
	cf_buf_init(&csv, 1u << 20, true);
	assert_int_equal(cf_xgb_rows_new(&p, model.data, model.len, MANY, &csv, &r, why,
					 sizeof(why)), CF_OK);
	assert_int_equal(feed_rows(r, text, 65536, why, sizeof(why)), CF_ERR_TOO_BIG);
	assert_string_equal(why, "the predictions: the outputs are larger than 1 MiB together");
	assert_true(cf_xgb_rows_count(r) < MANY);
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	free(text);

	/* A bad value far in, while the thread predicts: the line; the thread stopped by free. */
	text = many_rows(90000);
	r = rows_new(&p, &model, MANY, &csv);
	assert_int_equal(feed_rows(r, text, 65536, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "line 90002 (record 90002): feature 2 (column 3) is not a number");
	cf_xgb_rows_free(r);
	cf_buf_free(&csv);
	free(text);
	XGBoosterFree(b);
	XGDMatrixFree(dm);
	cf_xgb_predict_free(&p);
	cf_buf_free(&model);
}

/* No message quotes a value of the rows. */
static void assert_no_data(const char *why)
{
	assert_null(strstr(why, "VALUE-"));
	assert_true(why[0] != '\0');
}

static void test_malformed_model(void **state)
{
	(void)state;
	cf_xgb_predict p;
	cf_buf model, csv;
	char why[256];
	direct_model(&model);
	cf_sql *db = open_db();
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"SELECT x1, x2, "
		     "x3 FROM t\", \"nthread\": 1}", &p);
	const struct {
		const char *text;
		size_t len;
	} bad[] = {
		{ "", 0 },
		{ "not a model", 11 },
		{ "{}", 2 },
		{ "{\"learner\": 1}", 14 },
		{ "{\"learner\": {\"attributes\": {}, \"feature_names\": []", 50 },
		{ (const char *)model.data, model.len / 2 },
		{ (const char *)model.data, model.len - 1 },
		{ "\x00\x01\x02", 3 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf_buf_init(&csv, 1u << 24, true);
		cf_err rc = cf_xgb_predict_run(db, &p, (const uint8_t *)bad[i].text, bad[i].len,
					       1000000, &csv, NULL, why, sizeof(why));
		if (rc != CF_ERR_PARSE)
			fail_msg("case %zu: %s: %s", i, cf_errname(rc), why);
		assert_non_null(strstr(why, "the model input m is not an XGBoost JSON model"));
		assert_int_equal(csv.len, 0);
		cf_buf_free(&csv);
	}
	cf_xgb_predict_free(&p);

	/* A model for three features, two given. */
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"SELECT x1, x2 "
		     "FROM t\"}", &p);
	cf_buf_init(&csv, 1u << 24, true);
	assert_int_equal(cf_xgb_predict_run(db, &p, model.data, model.len, 1000000, &csv, NULL, why,
					    sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the model takes 3 features; the query gives 2");
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);

	/* Text among the features. */
	predict_spec("{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"SELECT x1, s, "
		     "x3 FROM t\"}", &p);
	cf_buf_init(&csv, 1u << 24, true);
	assert_int_equal(cf_xgb_predict_run(db, &p, model.data, model.len, 1000000, &csv, NULL, why,
					    sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "result row 1: feature 2 (result column 2) is not a number");
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	cf_buf_free(&model);
	cf_sql_close(db);
}

static cf_err train_fails(cf_sql *db, const char *fn_json, char *why, size_t whylen)
{
	cf_xgb_train t;
	cf_buf model;
	train_spec(fn_json, &t);
	cf_buf_init(&model, 1u << 24, true);
	cf_err rc = cf_xgb_train_run(db, &t, &model, NULL, NULL, why, whylen);
	assert_int_equal(model.len, 0);
	cf_buf_free(&model);
	cf_xgb_train_free(&t);
	return rc;
}

static void test_train_errors(void **state)
{
	(void)state;
	char why[256];
	cf_sql *db = open_db();
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, x2 "
				     "FROM t\", \"label\": \"y\"}", why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the query's result has no label column (function.label \"y\")");
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, s, "
				     "y FROM t\", \"label\": \"y\", \"params\": {\"nthread\": 1}}",
				     why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "result row 1: feature 2 (result column 2) is not a number");
	assert_no_data(why);
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, s AS "
				     "y FROM t\", \"label\": \"y\"}", why, sizeof(why)),
			 CF_ERR_PARSE);
	assert_string_equal(why, "result row 1: the label is not a number");
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, x3 "
				     "AS y FROM t ORDER BY x3 NULLS FIRST\", \"label\": \"y\"}", why,
				     sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "result row 1: the label is NULL");
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, x2, "
				     "y FROM t\", \"label\": \"y\", \"features\": [\"x1\", \"x9\"]}",
				     why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the query's result has no column function.features[1] (\"x9\")");
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, y "
				     "FROM t WHERE 0\", \"label\": \"y\"}", why, sizeof(why)),
			 CF_ERR_PARSE);
	assert_string_equal(why, "the training query gave no rows");
	/* The fence holds: the query is a task's query. */
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT name AS "
				     "y, 1 AS x FROM sqlite_master\", \"label\": \"y\"}", why,
				     sizeof(why)), CF_ERR_AUTH);
	/* Labels the objective refuses: XGBoost's own message is not repeated. */
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, x2, "
				     "y FROM t\", \"label\": \"y\", \"params\": {\"objective\": "
				     "\"binary:logistic\", \"nthread\": 1}}", why, sizeof(why)),
			 CF_ERR_PARSE);
	assert_non_null(strstr(why, "XGBoost fails in training round 0"));
	assert_int_equal(train_fails(db, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, y "
				     "FROM t\", \"label\": \"y\", \"params\": {\"max_depth\": "
				     "\"deep\"}}", why, sizeof(why)), CF_ERR_PARSE);
	cf_sql_close(db);
}

/* Training stops once the task's time budget is spent, between rounds. */
static void test_train_budget(void **state)
{
	(void)state;
	cf_xgb_train t;
	cf_buf model, metrics;
	char why[256];
	struct timespec t0, t1;
	cf_sql *db = open_db();
	train_spec("{\"kind\": \"xgboost.train\", \"query\": \"SELECT x1, x2, x3, y FROM t\", "
		   "\"label\": \"y\", \"params\": {\"num_round\": 10000, \"max_depth\": 8, "
		   "\"eta\": 0.01, \"nthread\": 1, \"eval_metric\": [\"rmse\", \"mae\", "
		   "\"mape\"]}}", &t);
	t.budget_seconds = 1;
	cf_buf_init(&model, 1u << 24, true);
	cf_buf_init(&metrics, 64u << 20, true);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cf_err rc = cf_xgb_train_run(db, &t, &model, &metrics, NULL, why, sizeof(why));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rc == CF_OK) {
		/* A machine that trains 10000 rounds within a second: nothing to stop. */
		assert_true(s < 1.5);
	} else {
		assert_int_equal(rc, CF_ERR_LIMIT);
		assert_non_null(strstr(why, "the training ran out of its time budget after "));
		assert_int_equal(model.len, 0);
		assert_true(s < 3.0);
	}
	cf_buf_free(&model);
	cf_buf_free(&metrics);
	cf_xgb_train_free(&t);
	cf_sql_close(db);
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const char *const bad_train[] = {
		"{\"kind\": \"xgboost.train\", \"query\": \"SELECT 1\"}",
		"{\"kind\": \"xgboost.train\", \"label\": \"y\"}",
		"{\"kind\": \"xgboost.train\", \"query\": \"\", \"label\": \"y\"}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"extra\": 1}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"features\": []}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"features\": [1]}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"features\": [\"a\", \"A\"]}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"features\": [\"y\"]}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": []}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"updater\": \"prune\"}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"verbosity\": 3}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"max_depth\": true}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"objective\": \"a\\\"b\"}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"num_round\": 0}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"num_round\": 10001}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": {\"eval_metric\": []}}",
		"{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"rowid\"}",
	};
	static const char *const bad_predict[] = {
		"{\"kind\": \"xgboost.predict\", \"query\": \"q\"}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"1m\", \"query\": \"q\"}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\"}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"q\", \"label\": \"y\"}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"q\", \"id\": 3}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"q\", \"id\": \"a\", \"features\": [\"a\"]}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"q\", \"nthread\": 0}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"q\", \"table\": \"t\"}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t x\"}",
		"{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": 1}",
	};
	char why[256];
	for (size_t i = 0; i < sizeof(bad_train) / sizeof(bad_train[0]); i++) {
		cf_xgb_train t;
		json_t *fn = parse(bad_train[i]);
		why[0] = '\0';
		if (cf_xgb_train_parse(fn, &t, why, sizeof(why)) != CF_ERR_PARSE)
			fail_msg("accepted: %s", bad_train[i]);
		assert_true(why[0] != '\0');
		json_decref(fn);
	}
	for (size_t i = 0; i < sizeof(bad_predict) / sizeof(bad_predict[0]); i++) {
		cf_xgb_predict p;
		json_t *fn = parse(bad_predict[i]);
		why[0] = '\0';
		if (cf_xgb_predict_parse(fn, &p, why, sizeof(why)) != CF_ERR_PARSE)
			fail_msg("accepted: %s", bad_predict[i]);
		assert_true(why[0] != '\0');
		json_decref(fn);
	}
	/* Several metrics; numbers as XGBoost takes them. */
	cf_xgb_train t;
	train_spec("{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"params\": "
		   "{\"eval_metric\": [\"rmse\", \"mae\"], \"eta\": 0.25, \"max_depth\": 4}}", &t);
	assert_int_equal(t.nparams, 4);
	assert_int_equal(t.rounds, CF_XGB_DEFAULT_ROUNDS);
	assert_string_equal(t.keys[0], "eval_metric");
	assert_string_equal(t.values[1], "mae");
	assert_string_equal(t.values[2], "0.25");
	assert_string_equal(t.values[3], "4");
	cf_xgb_train_free(&t);
}

/* --- the task parser --- */

static cf_age_identity org_a, kms_id;
static char rcpt_a[CF_AGE_RECIPIENT_STRLEN + 1];

static int keys_setup(void **state)
{
	(void)state;
	memset(&org_a, 0, sizeof(org_a));
	memset(&kms_id, 0, sizeof(kms_id));
	org_a.kind = kms_id.kind = CF_AGE_X25519;
	if (cf_age_keygen(&org_a.key) != CF_OK || cf_age_keygen(&kms_id.key) != CF_OK ||
	    cf_age_recipient_format(org_a.key.pub, rcpt_a) != CF_OK)
		return -1;
	return group_setup(state);
}

static int keys_teardown(void **state)
{
	cf_age_key_wipe(&org_a.key);
	cf_age_key_wipe(&kms_id.key);
	return group_teardown(state);
}

/* A task: inputs, function and outputs as JSON text (outputs' recipients filled in). */
static json_t *make_task(const char *inputs, const char *function, const char *outputs,
			 const char *policy)
{
	char text[8192], outs[2048] = "[";
	/* Each output name in outputs ("a,b") gets org a as its recipient. */
	char names[256];
	snprintf(names, sizeof(names), "%s", outputs);
	for (char *n = strtok(names, ","); n; n = strtok(NULL, ",")) {
		char *q = strchr(n, '=');
		if (q)
			*q++ = '\0';
		snprintf(outs + strlen(outs), sizeof(outs) - strlen(outs),
			 "%s{\"name\": \"%s\", %s%s%s\"recipients\": [{\"org\": \"a\", "
			 "\"recipient\": \"%s\"}]}", outs[1] ? ", " : "", n, q ? "\"query\": \"" : "",
			 q ? q : "", q ? "\", " : "", rcpt_a);
	}
	strcat(outs, "]");
	snprintf(text, sizeof(text),
		 "{\"version\": 1, \"inputs\": %s, \"function\": %s, \"outputs\": %s%s%s,"
		 " \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		 inputs, function, outs, policy ? ", \"policy\": " : "", policy ? policy : "");
	return parse(text);
}

static cf_err job_of(const char *inputs, const char *function, const char *outputs,
		     const char *policy, cf_job *job, char *why, size_t whylen)
{
	json_t *task = make_task(inputs, function, outputs, policy);
	cf_err rc = cf_job_parse(task, job, why, whylen);
	json_decref(task);
	return rc;
}

#define IN_T "{\"t\": {\"dataset\": \"a/t\"}}"
#define IN_TM "{\"t\": {\"dataset\": \"a/t\"}, \"m\": {\"dataset\": \"a/model\", \"format\": \"xgboost-json\"}}"
#define FN_PREDICT "{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"query\": \"SELECT id, x1, x2, x3 FROM t ORDER BY id\", \"id\": \"id\", \"nthread\": 1}"

#define FN_PREDICT_TABLE "{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"t\", \"features\": [\"x1\", \"x2\", \"x3\"], \"id\": \"id\", \"nthread\": 1}"

static void test_job_parse(void **state)
{
	(void)state;
	cf_job job;
	char why[256];
	cf_err rc;

	rc = job_of(IN_T, train_fn, "model,metrics,sizes=SELECT count(*) AS n FROM t", NULL, &job,
		    why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(job.kind, CF_FN_XGB_TRAIN);
	assert_string_equal(job.train.label, "y");
	assert_int_equal(job.train.rounds, ROUNDS);
	assert_int_equal(job.train.budget_seconds, CF_SQL_DEFAULT_BUDGET_SECONDS);
	assert_non_null(job.function);
	assert_non_null(strstr(job.function_json, "\"kind\":\"xgboost.train\""));
	assert_int_equal(job.inputs[0].format, CF_INPUT_CSV);
	assert_null(job.outputs[0].query);
	assert_int_equal(job.outputs[0].result, CF_RESULT_MAIN);
	assert_null(job.outputs[1].query);
	assert_int_equal(job.outputs[1].result, CF_RESULT_METRICS);
	assert_string_equal(job.outputs[2].query, "SELECT count(*) AS n FROM t");
	cf_job_free(&job);

	rc = job_of(IN_TM, FN_PREDICT, "predictions", NULL, &job, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(job.kind, CF_FN_XGB_PREDICT);
	assert_string_equal(job.predict.model, "m");
	assert_string_equal(job.predict.id, "id");
	assert_int_equal(job.ninputs, 2);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(job.inputs[i].format, strcmp(job.inputs[i].table, "m") == 0
								? CF_INPUT_XGB_MODEL : CF_INPUT_CSV);
	assert_null(job.outputs[0].query);
	assert_false(job.inputs[0].direct || job.inputs[1].direct);
	cf_job_free(&job);

	rc = job_of(IN_TM, FN_PREDICT_TABLE, "predictions", NULL, &job, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(job.inputs[i].direct, strcmp(job.inputs[i].table, "t") == 0);
	cf_job_free(&job);

	/* sql is as it was: an output without a query runs the function's. */
	rc = job_of("{\"t\": {\"dataset\": \"a/t\", \"format\": \"csv\"}}",
		    "{\"kind\": \"sql\", \"query\": \"SELECT 1 AS one\"}", "r", NULL, &job, why,
		    sizeof(why));
	assert_int_equal(rc, CF_OK);
	assert_int_equal(job.kind, CF_FN_SQL);
	assert_string_equal(job.outputs[0].query, "SELECT 1 AS one");
	cf_job_free(&job);

	const struct {
		const char *inputs, *function, *outputs, *policy, *why;
		cf_err rc;
	} bad[] = {
		{ IN_T, "{\"kind\": \"xgboost.train\", \"query\": \"q\"}", "m", NULL,
		  "function.label must be a column name", CF_ERR_PARSE },
		{ IN_T, "{\"kind\": \"xgboost.train\", \"query\": \"q\", \"label\": \"y\", \"x\": 1}",
		  "m", NULL, "function has an unknown member \"x\"", CF_ERR_PARSE },
		{ IN_TM, "{\"kind\": \"sql\", \"query\": \"SELECT 1\"}", "r", NULL,
		  "input m is a model: only an xgboost.predict function takes one", CF_ERR_PARSE },
		{ IN_TM, train_fn, "m", NULL,
		  "input m is a model: only an xgboost.predict function takes one", CF_ERR_PARSE },
		{ IN_T, FN_PREDICT, "p", NULL, "function.model must name an input with \"format\": "
		  "\"xgboost-json\"", CF_ERR_PARSE },
		{ "{\"t\": {\"dataset\": \"a/t\"}, \"n\": {\"dataset\": \"a/model\", \"format\": "
		  "\"xgboost-json\"}}", FN_PREDICT, "p", NULL,
		  "input n is a model, but function.model names m", CF_ERR_PARSE },
		{ "{\"m\": {\"dataset\": \"a/model\", \"format\": \"xgboost-json\"}}", FN_PREDICT, "p",
		  NULL, "xgboost.predict needs an input of rows besides the model", CF_ERR_PARSE },
		{ IN_TM, FN_PREDICT, "p", "{\"allow_rows\": false}",
		  "xgboost.predict gives one row per input row: the policy (allow_rows false or "
		  "min_group_size above 1) forbids it", CF_ERR_AUTH },
		{ IN_TM, FN_PREDICT, "p", "{\"min_group_size\": 5}",
		  "xgboost.predict gives one row per input row: the policy (allow_rows false or "
		  "min_group_size above 1) forbids it", CF_ERR_AUTH },
		{ "{\"t\": {\"dataset\": \"a/t\", \"format\": \"parquet\"}}",
		  "{\"kind\": \"sql\", \"query\": \"SELECT 1\"}", "r", NULL,
		  "input t: format must be \"csv\" or \"xgboost-json\"", CF_ERR_PARSE },
		{ "{\"t\": {\"dataset\": \"a/t\", \"fromat\": \"csv\"}}",
		  "{\"kind\": \"sql\", \"query\": \"SELECT 1\"}", "r", NULL,
		  "input t has an unknown member \"fromat\"", CF_ERR_PARSE },
		{ IN_T, "{\"kind\": \"sql\", \"query\": \"SELECT 1\", \"label\": \"y\"}", "r", NULL,
		  "function has an unknown member \"label\"", CF_ERR_PARSE },
		{ IN_T, "{\"kind\": \"xgboost.cluster\"}", "r", NULL, NULL, CF_ERR_UNSUPPORTED },
		{ IN_TM, "{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"m\"}",
		  "p", NULL, "function.table must name a CSV input", CF_ERR_PARSE },
		{ IN_TM, "{\"kind\": \"xgboost.predict\", \"model\": \"m\", \"table\": \"u\"}",
		  "p", NULL, "function.table must name a CSV input", CF_ERR_PARSE },
#if !CF_JOB_HAVE_STATS
		{ IN_T, "{\"kind\": \"stats\"}", "r", NULL, NULL, CF_ERR_UNSUPPORTED },
#endif
#if !CF_JOB_HAVE_PSI
		{ IN_T, "{\"kind\": \"psi\"}", "r", NULL, NULL, CF_ERR_UNSUPPORTED },
#endif
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = job_of(bad[i].inputs, bad[i].function, bad[i].outputs, bad[i].policy, &job, why,
			    sizeof(why));
		if (rc != bad[i].rc)
			fail_msg("case %zu: %s (%s)", i, cf_errname(rc), why);
		if (bad[i].why)
			assert_string_equal(why, bad[i].why);
		assert_null(job.inputs);
		assert_null(job.function);
	}
}

/* --- end to end through the worker --- */

typedef struct dataset {
	cf_buf ct;
	uint8_t file_key[CF_AGE_FILE_KEY_LEN];
	uint8_t header_sha256[CF_SHA256_LEN];
} dataset;

static void make_dataset(const uint8_t *pt, size_t len, dataset *d)
{
	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	cf_age_encrypt_opts opts = { .armor = false };
	cf_age_header h;
	size_t consumed = 0;
	memcpy(r.pub, kms_id.key.pub, 32);
	cf_buf_init(&d->ct, 1u << 24, false);
	cf_mem_reader m = { .data = pt, .len = len };
	assert_int_equal(cf_age_encrypt(&r, 1, &opts, cf_mem_reader_of(&m), cf_buf_writer(&d->ct)),
			 CF_OK);
	assert_int_equal(cf_age_header_parse(d->ct.data, d->ct.len, &h, &consumed), CF_OK);
	cf_age_header_free(&h);
	assert_int_equal(cf_hash(CF_SHA256, d->ct.data, consumed, d->header_sha256), CF_OK);
	assert_int_equal(cf_age_unwrap_header(&kms_id, 1, d->ct.data, consumed, d->file_key), CF_OK);
}

typedef struct mem_io {
	const dataset *t, *m;
	cf_mem_reader reader;
	char names[4][64];
	cf_buf outs[4];
	size_t nouts;
} mem_io;

static cf_err io_input_open(void *arg, const cf_job_input *in, cf_reader *out)
{
	mem_io *m = arg;
	const dataset *d = strcmp(in->table, "m") == 0 ? m->m : m->t;
	m->reader = (cf_mem_reader){ .data = d->ct.data, .len = d->ct.len, .max_read = 4000 };
	*out = cf_mem_reader_of(&m->reader);
	return CF_OK;
}

static cf_err io_output_open(void *arg, const char *name, cf_writer *out)
{
	mem_io *m = arg;
	assert_true(m->nouts < 4);
	snprintf(m->names[m->nouts], sizeof(m->names[0]), "%s", name);
	cf_buf_init(&m->outs[m->nouts], 1u << 24, false);
	*out = cf_buf_writer(&m->outs[m->nouts]);
	m->nouts++;
	return CF_OK;
}

static cf_err io_output_commit(void *arg, const char *name)
{
	(void)arg;
	(void)name;
	return CF_OK;
}

/* Runs task with the datasets; output i's plaintext into plain[i]. */
static cf_err run_task(json_t *task, const dataset *t, const dataset *model, cf_buf *plain,
		       size_t *nplain, char *why, size_t whylen)
{
	cf_job job;
	cf_kms_release_result rel;
	mem_io m = { .t = t, .m = model };
	char jwhy[256];
	cf_err rc = cf_job_parse(task, &job, jwhy, sizeof(jwhy));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), jwhy);
	memset(&rel, 0, sizeof(rel));
	rel.inputs = calloc(job.ninputs, sizeof(*rel.inputs));
	assert_non_null(rel.inputs);
	for (size_t i = 0; i < job.ninputs; i++) {
		const dataset *d = strcmp(job.inputs[i].table, "m") == 0 ? model : t;
		rel.inputs[i].table = strdup(job.inputs[i].table);
		rel.inputs[i].dataset = strdup(job.inputs[i].dataset);
		memcpy(rel.inputs[i].file_key, d->file_key, CF_AGE_FILE_KEY_LEN);
		memcpy(rel.inputs[i].header_sha256, d->header_sha256, CF_SHA256_LEN);
		rel.ninputs++;
	}
	assert_int_equal(cf_task_digest(task, rel.task_digest), CF_OK);
	rel.recipients = json_pack("{s:s, s:O, s:i}", "task_digest", "00", "outputs",
				   json_object_get(task, "outputs"), "issued", 1);
	cf_worker_io io = { .arg = &m, .input_open = io_input_open,
			    .output_open = io_output_open, .output_commit = io_output_commit };
	rc = cf_worker_run(&job, &rel, &io, NULL, NULL, why, whylen);
	*nplain = m.nouts;
	for (size_t i = 0; i < m.nouts; i++) {
		cf_buf_init(&plain[i], 1u << 24, true);
		cf_mem_reader r = { .data = m.outs[i].data, .len = m.outs[i].len };
		assert_int_equal(cf_age_decrypt(&org_a, 1, cf_mem_reader_of(&r),
						cf_buf_writer(&plain[i])), CF_OK);
		assert_int_equal(cf_buf_terminate(&plain[i]), CF_OK);
		cf_buf_free(&m.outs[i]);
	}
	cf_kms_release_result_free(&rel);
	cf_job_free(&job);
	json_decref(task);
	return rc;
}

static void test_worker_end_to_end(void **state)
{
	(void)state;
	dataset t, model;
	cf_buf plain[4];
	size_t n = 0;
	char why[512];
	make_dataset((const uint8_t *)csv_text, strlen(csv_text), &t);

	/* Train: the model (twice), its metrics, and an ordinary SQL output beside them. */
	cf_err rc = run_task(make_task(IN_T, train_fn, "model,metrics,sizes=SELECT count(*) AS n "
				       "FROM t,copy", NULL), &t, NULL, plain, &n, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(n, 4);
	assert_same_model(&plain[0]);
	assert_true(strncmp((char *)plain[1].data, "round,train-rmse\r\n", 18) == 0);
	assert_string_equal((char *)plain[2].data, "n\r\n240\r\n");
	assert_int_equal(plain[3].len, plain[0].len);
	assert_memory_equal(plain[3].data, plain[0].data, plain[0].len);

	/* Predict with that model as an input. */
	make_dataset(plain[0].data, plain[0].len, &model);
	for (size_t i = 0; i < n; i++)
		cf_buf_free(&plain[i]);
	rc = run_task(make_task(IN_TM, FN_PREDICT, "predictions", NULL), &t, &model, plain, &n, why,
		      sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(n, 1);
	assert_predictions((const char *)plain[0].data, true);
	cf_buf_free(&plain[0]);

	/* The same straight from the CSV input, without SQL; an ordinary output beside it fails. */
	rc = run_task(make_task(IN_TM, FN_PREDICT_TABLE, "predictions", NULL), &t, &model, plain,
		      &n, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(n, 1);
	assert_predictions((const char *)plain[0].data, true);
	cf_buf_free(&plain[0]);
	rc = run_task(make_task(IN_TM, FN_PREDICT_TABLE, "predictions,n=SELECT count(*) AS n FROM t",
				NULL), &t, &model, plain, &n, why, sizeof(why));
	assert_int_equal(rc, CF_ERR_PARSE);
	assert_non_null(strstr(why, "no such table"));
	assert_int_equal(n, 0);
	cf_buf_free(&model.ct);

	/* A model that is not one: the task fails, nothing leaves. */
	make_dataset((const uint8_t *)"{\"learner\": [1, 2", 17, &model);
	rc = run_task(make_task(IN_TM, FN_PREDICT, "predictions", NULL), &t, &model, plain, &n, why,
		      sizeof(why));
	assert_int_equal(rc, CF_ERR_PARSE);
	assert_string_equal(why, "the model input m is not an XGBoost JSON model (XGBoost does not "
			    "load it)");
	assert_int_equal(n, 0);
	cf_buf_free(&model.ct);

	/* A non-numeric feature fails the training: no output, no value in the message. */
	rc = run_task(make_task(IN_T, "{\"kind\": \"xgboost.train\", \"query\": \"SELECT s, y FROM "
				"t\", \"label\": \"y\"}", "model", NULL), &t, NULL, plain, &n, why,
		      sizeof(why));
	assert_int_equal(rc, CF_ERR_PARSE);
	assert_no_data(why);
	assert_int_equal(n, 0);
	cf_buf_free(&t.ct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_train_matches_direct),
		cmocka_unit_test(test_predict_matches_direct),
		cmocka_unit_test(test_predict_from_table),
		cmocka_unit_test(test_predict_table_blocks),
		cmocka_unit_test(test_malformed_model),
		cmocka_unit_test(test_train_errors),
		cmocka_unit_test(test_train_budget),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_job_parse),
		cmocka_unit_test(test_worker_end_to_end),
	};
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
