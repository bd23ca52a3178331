/*
 * Fuzzes xgboost.predict straight from a CSV input (enclave/xgb.c's
 * cf_xgb_rows: header matching, the number grammar, blocks of rows, the
 * worker threads, the predictions' CSV), which reads a party's decrypted
 * rows. The model is a small one trained once on 3 features (a, b, c).
 * The first byte picks the options, the second how the rest is split into
 * writes (1 to 256 bytes, 0: at once):
 *   bit 0: an id column ("id"); bit 1: 2 worker threads, else 1;
 *   bit 2: at most 5 rows (the row cap); bit 3: predictions at most 64
 *   bytes (the output cap); bit 4: features named, else every column but
 *   the id.
 * On success the predictions' CSV, read back with the CSV reader, has
 * one record per row plus the header, each of 1 or 2 fields (with the
 * id), and no more rows than the cap; on failure there is a reason. Every path frees and wipes (ASan's leak check).
 * Corpus: corpus/enclave_xgb_rows/ (option bytes + well-formed rows,
 * empty and missing values, the grammar's edge cases, ragged records,
 * quoted fields, a BOM, headers that miss or repeat a name).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xgboost/c_api.h>

#include "coffer/buf.h"
#include "coffer/log.h"
#include "csv.h"
#include "xgb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *model;
static size_t model_len;

/* A 3-feature model, trained once: 4 rounds of depth 2 on 64 made-up rows. */
static void make_model(void)
{
	float x[64 * 3], y[64];
	DMatrixHandle dm;
	BoosterHandle b;
	bst_ulong len;
	const char *json;
	for (int i = 0; i < 64; i++) {
		x[i * 3] = (float)(i % 7);
		x[i * 3 + 1] = i % 5 ? (float)(i * 3 % 11) : NAN;
		x[i * 3 + 2] = (float)i / 8.0f;
		y[i] = (float)(i % 7 > 3);
	}
	if (XGDMatrixCreateFromMat(x, 64, 3, NAN, &dm) != 0 ||
	    XGDMatrixSetFloatInfo(dm, "label", y, 64) != 0 || XGBoosterCreate(&dm, 1, &b) != 0 ||
	    XGBoosterSetParam(b, "objective", "binary:logistic") != 0 ||
	    XGBoosterSetParam(b, "max_depth", "2") != 0 ||
	    XGBoosterSetParam(b, "nthread", "1") != 0)
		abort();
	for (int i = 0; i < 4; i++) {
		if (XGBoosterUpdateOneIter(b, i, dm) != 0)
			abort();
	}
	if (XGBoosterSaveModelToBuffer(b, "{\"format\":\"json\"}", &len, &json) != 0 ||
	    !(model = malloc(len)))
		abort();
	memcpy(model, json, len);
	model_len = len;
	XGBoosterFree(b);
	XGDMatrixFree(dm);
}

/* The predictions' CSV read back: its records, each of `fields` fields. */
typedef struct readback {
	size_t fields, records;
	bool ragged;
} readback;

static cf_err count_record(void *arg, const cf_csv_field *f, size_t n, uint64_t record,
			   uint64_t line)
{
	readback *b = arg;
	(void)f;
	(void)record;
	(void)line;
	b->records++;
	b->ragged |= n != b->fields;
	return CF_OK;
}

static size_t records_of(const cf_buf *csv, size_t fields)
{
	readback b = { .fields = fields };
	cf_csv_reader *r;
	if (cf_csv_reader_new(NULL, count_record, &b, &r) != CF_OK ||
	    cf_csv_reader_feed(r, csv->data, csv->len) != CF_OK ||
	    cf_csv_reader_finish(r) != CF_OK || b.ragged)
		abort(); /* the predictions are not the CSV they should be */
	cf_csv_reader_free(r);
	return b.records;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!model) {
		cf_log_set_level(CF_LOG_ERROR);
		(void)XGBSetGlobalConfig("{\"verbosity\":0}");
		make_model();
	}
	if (size < 2)
		return 0;
	unsigned opt = data[0], split = data[1];
	data += 2;
	size -= 2;
	uint64_t max_rows = opt & 4 ? 5 : 1000000;
	json_t *fn = json_pack("{s:s, s:s, s:s, s:i}", "kind", "xgboost.predict", "model", "m",
			       "table", "t", "nthread", opt & 2 ? 2 : 1);
	if (!fn)
		abort();
	if (opt & 1)
		json_object_set_new(fn, "id", json_string("id"));
	if (opt & 16)
		json_object_set_new(fn, "features", json_pack("[s,s,s]", "a", "b", "c"));
	cf_xgb_predict p;
	char why[256];
	if (cf_xgb_predict_parse(fn, &p, why, sizeof(why)) != CF_OK)
		abort();
	json_decref(fn);

	cf_buf csv;
	cf_buf_init(&csv, opt & 8 ? 64 : 16u << 20, true);
	cf_xgb_rows *r;
	if (cf_xgb_rows_new(&p, model, model_len, max_rows, &csv, &r, why, sizeof(why)) != CF_OK)
		abort();
	cf_writer w = cf_xgb_rows_writer(r);
	cf_err rc = CF_OK;
	for (size_t off = 0; rc == CF_OK && off < size;) {
		size_t n = split ? split : size;
		if (n > size - off)
			n = size - off;
		rc = w.write(w.ctx, data + off, n);
		off += n;
	}
	if (rc == CF_OK)
		rc = cf_xgb_rows_finish(r, why, sizeof(why));
	else if (!cf_xgb_rows_error(r)[0])
		abort(); /* a refusal always says why */
	uint64_t rows = cf_xgb_rows_count(r);
	cf_xgb_rows_free(r);
	if (rc == CF_OK) {
		/* The model gives one value a row: id and prediction, or the prediction. */
		if (rows > max_rows || csv.len < 2 || memcmp(csv.data + csv.len - 2, "\r\n", 2) != 0 ||
		    records_of(&csv, opt & 1 ? 2 : 1) != rows + 1)
			abort();
	} else if (!why[0] && rc != CF_ERR_PARSE && rc != CF_ERR_TOO_BIG && rc != CF_ERR_LIMIT) {
		abort();
	}
	cf_buf_free(&csv);
	cf_xgb_predict_free(&p);
	return 0;
}
