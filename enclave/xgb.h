/*
 * xgb: the task functions "xgboost.train" and "xgboost.predict"
 * (docs/tasks.md), on libxgboost's C API (1.7).
 *
 * Both read their rows with a query run under the fence (sql.h), like
 * any SQL task's (predict also straight from a CSV input), as dense
 * floats (NULL is a missing value, NaN; an integer or real is converted
 * to float; text or a blob is refused): train into one matrix, predict
 * into blocks of rows (below). Matrix and blocks hold plaintext: they are
 * on the heap (secretmem under the soft TEE) and wiped before they are
 * freed, on every path; every XGBoost handle is freed on every path too. XGBoost's
 * own copies (its DMatrix pages, its model buffers) live in the same heap
 * and are freed by XGBoost without a wipe.
 *
 * train: the model, in XGBoost's JSON format (loadable by any XGBoost),
 * is the result; optionally the training metric after each round as CSV
 * (round,train-METRIC...). The output policy's min_group_size and
 * allow_rows do not apply to a model: the owners approve the query and
 * the parameters, which are an allowlist (CF_XGB_PARAMS).
 *
 * predict: a model input (its plaintext bytes, never a table) applied to
 * the rows of the query, block by block on worker threads while the
 * query's next rows are read, in place over each block (XGBoost's array
 * interface: no DMatrix, so no second copy of the rows); the result is
 * CSV: the id column if one is named, then "prediction" (or
 * prediction_0..K-1 for K values per row).
 *
 * Messages (why) never hold data: not a value, not XGBoost's own message
 * (it can quote a label or a piece of the model); column names only as
 * the task writes them.
 */
#ifndef COFFER_ENCLAVE_XGB_H
#define COFFER_ENCLAVE_XGB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "coffer/io.h"
#include "sql.h"

#define CF_XGB_MAX_FEATURES 1000u
#define CF_XGB_MAX_ROUNDS 10000
#define CF_XGB_DEFAULT_ROUNDS 10
#define CF_XGB_MAX_MODEL (256u * 1024u * 1024u) /* bytes of a model input */

typedef struct cf_xgb_train {
	char *query;
	char *label;
	char **features;   /* NULL: every result column but the label */
	size_t nfeatures;
	unsigned rounds;   /* params.num_round */
	char **keys;       /* the other params, as XGBoosterSetParam strings */
	char **values;
	size_t nparams;
	/*
	 * The task's time budget (policy.time_budget_seconds; job.c sets it,
	 * 0 for none): the queries' time so far plus the training's may not
	 * pass it, checked after every round.
	 */
	unsigned budget_seconds;
} cf_xgb_train;

typedef struct cf_xgb_predict {
	char *model;       /* the input table holding the model */
	char *query;       /* the rows: a query, or */
	char *table;       /* a CSV input read straight into the matrix (no SQL) */
	char **features;   /* NULL: every result column but the id */
	size_t nfeatures;
	char *id;          /* NULL: no id column */
	int nthread;       /* 0: XGBoost's default */
} cf_xgb_predict;

/*
 * Function {"kind": "xgboost.train", "query", "label", "features"?,
 * "params"?}: params members num_round (1 to CF_XGB_MAX_ROUNDS, default
 * CF_XGB_DEFAULT_ROUNDS) and those of the allowlist, numbers or strings
 * (booleans refused). CF_ERR_PARSE with why for anything else.
 */
cf_err cf_xgb_train_parse(const json_t *fn, cf_xgb_train *out, char *why, size_t whylen) CF_WUR;
void cf_xgb_train_free(cf_xgb_train *t);

/*
 * Function {"kind": "xgboost.predict", "model", "query" or "table",
 * "features"?, "id"?, "nthread"?}.
 */
cf_err cf_xgb_predict_parse(const json_t *fn, cf_xgb_predict *out, char *why,
			    size_t whylen) CF_WUR;
void cf_xgb_predict_free(cf_xgb_predict *p);

/*
 * Trains on the rows of t->query (db armed). model gets the JSON model,
 * metrics (if non-NULL) the CSV of the training metric per round; both
 * should be secret buffers, their max applies. *rows (if non-NULL) the
 * training rows. CF_ERR_PARSE (SQL, a missing column, a non-numeric
 * value, XGBoost refusing the data or parameters), CF_ERR_LIMIT (time
 * budget), CF_ERR_TOO_BIG, CF_ERR_NOMEM, with why set.
 */
cf_err cf_xgb_train_run(cf_sql *db, const cf_xgb_train *t, cf_buf *model, cf_buf *metrics,
			uint64_t *rows, char *why, size_t whylen) CF_WUR;

/*
 * Predicts with the model (its bytes) over the rows of p->query into csv.
 * At most max_rows rows (CF_ERR_LIMIT past it). A model XGBoost does not
 * load, or one for another number of features: CF_ERR_PARSE.
 */
cf_err cf_xgb_predict_run(cf_sql *db, const cf_xgb_predict *p, const uint8_t *model,
			  size_t model_len, uint64_t max_rows, cf_buf *csv, uint64_t *rows,
			  char *why, size_t whylen) CF_WUR;

/*
 * Predicting straight from a CSV input (function.table), as it is
 * decrypted: the model is loaded by cf_xgb_rows_new (a bad one fails
 * before any row is read); the plaintext written to cf_xgb_rows_writer is
 * parsed as the loader parses CSV (csv.h) and each record's features go
 * into a block of rows (the loader's integer and decimal grammars; empty
 * is missing; anything else fails, with the line), its id into a CSV
 * field; no table, no SQL. The header is matched against the names in the
 * function (ignoring ASCII case, as SQL would), and must give as many
 * features as the model takes. Worker threads (function.nthread, else
 * one per core the process may use) predict the full blocks while the
 * next ones are read, and wipe them; their lines reach csv in order: the
 * whole matrix never exists (both predict functions work so). model and
 * csv must outlive cf_xgb_rows_finish or _free (workers load the model;
 * csv is theirs until then); finish leaves csv complete (as
 * cf_xgb_predict_run's). At most max_rows rows (CF_ERR_LIMIT); csv's max
 * bounds the predictions (CF_ERR_TOO_BIG).
 */
typedef struct cf_xgb_rows cf_xgb_rows;
cf_err cf_xgb_rows_new(const cf_xgb_predict *p, const uint8_t *model, size_t model_len,
		       uint64_t max_rows, cf_buf *csv, cf_xgb_rows **out, char *why,
		       size_t whylen) CF_WUR;
cf_writer cf_xgb_rows_writer(cf_xgb_rows *r);
/* Ends the input, waits for the last predictions: CF_ERR_PARSE (with the line) and the like, why set. */
cf_err cf_xgb_rows_finish(cf_xgb_rows *r, char *why, size_t whylen) CF_WUR;
/* What failed and where (never a value); "" if nothing did. */
const char *cf_xgb_rows_error(const cf_xgb_rows *r);
uint64_t cf_xgb_rows_count(const cf_xgb_rows *r);
/* Stops the predictor if it still runs; wipes and frees the blocks. */
void cf_xgb_rows_free(cf_xgb_rows *r);

#endif
