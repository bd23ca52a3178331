/*
 * Fuzzes coffer-enclave's CSV reader (enclave/csv.c), which reads every
 * decrypted dataset. The first byte picks the mode, the second how the
 * rest is split into writes (1 to 256 bytes, 0: at once):
 *   0: the reader with the default limits; every field it yields must be
 *      UTF-8 without NUL, and writing the records back as CSV (the
 *      output module's quoting) and reading them again must give the same
 *      records: the writer and the reader agree on every input.
 *   1: the reader with tiny limits (8-byte fields, 3 columns, 24-byte
 *      records), so the limit paths run on short inputs.
 *   2: the loader into a fresh in-memory database (header checks, type
 *      inference, the second pass's typed inserts); a loaded table must have the rows
 *      the loader reported.
 * Corpus: corpus/enclave_csv/ (mode bytes + well-formed and hostile CSV:
 * quotes, CRLF, BOM, NUL, CR-only, ragged rows, bad UTF-8, odd headers).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/buf.h"
#include "csv.h"
#include "output.h"
#include "sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct records {
	cf_buf csv;     /* the records written back */
	cf_buf flat;    /* the records as length-prefixed fields, to compare */
	size_t n;
} records;

static cf_err keep(void *arg, const cf_csv_field *f, size_t n, uint64_t record, uint64_t line)
{
	records *r = arg;
	cf_err rc = CF_OK;
	(void)record;
	(void)line;
	r->n++;
	for (size_t i = 0; i < n; i++) {
		if (!cf_csv_utf8_valid((const uint8_t *)f[i].data, f[i].len) ||
		    memchr(f[i].data, 0, f[i].len))
			abort();
		uint32_t len = (uint32_t)f[i].len;
		if (rc == CF_OK && i)
			rc = cf_buf_append_byte(&r->csv, ',');
		if (rc == CF_OK)
			rc = cf_output_csv_field(&r->csv, (const uint8_t *)f[i].data, f[i].len);
		if (rc == CF_OK)
			rc = cf_buf_append(&r->flat, &len, sizeof(len));
		if (rc == CF_OK)
			rc = cf_buf_append(&r->flat, f[i].data, f[i].len);
	}
	if (rc == CF_OK)
		rc = cf_buf_append(&r->csv, "\r\n", 2);
	if (rc == CF_OK)
		rc = cf_buf_append(&r->flat, "\xff\xff\xff\xff", 4);
	return rc;
}

static cf_err feed(cf_writer w, const uint8_t *p, size_t n, size_t step)
{
	cf_err rc = CF_OK;
	size_t off = 0;
	while (rc == CF_OK && off < n) {
		size_t k = step && step < n - off ? step : n - off;
		rc = w.write(w.ctx, p + off, k);
		off += k;
	}
	return rc;
}

static cf_err read_all(const uint8_t *p, size_t n, size_t step, const cf_csv_limits *lim,
		       records *out)
{
	cf_csv_reader *r = NULL;
	cf_err rc = cf_csv_reader_new(lim, keep, out, &r);
	if (rc != CF_OK)
		return rc;
	rc = feed(cf_csv_reader_writer(r), p, n, step);
	if (rc == CF_OK)
		rc = cf_csv_reader_finish(r);
	if (rc == CF_ERR_PARSE && !cf_csv_reader_error(r)[0])
		abort(); /* every refusal of malformed input says why */
	cf_csv_reader_free(r);
	return rc;
}

static void round_trip(const uint8_t *p, size_t n, size_t step)
{
	records a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	cf_buf_init(&a.csv, 64u << 20, true);
	cf_buf_init(&a.flat, 64u << 20, true);
	cf_buf_init(&b.csv, 64u << 20, true);
	cf_buf_init(&b.flat, 64u << 20, true);
	if (read_all(p, n, step, NULL, &a) == CF_OK) {
		/* What the writer wrote, the reader reads back the same. */
		if (read_all(a.csv.data, a.csv.len, 0, NULL, &b) != CF_OK || a.n != b.n ||
		    a.flat.len != b.flat.len || (a.flat.len && memcmp(a.flat.data, b.flat.data, a.flat.len)))
			abort();
	}
	cf_buf_free(&a.csv);
	cf_buf_free(&a.flat);
	cf_buf_free(&b.csv);
	cf_buf_free(&b.flat);
}

static void tiny(const uint8_t *p, size_t n, size_t step)
{
	cf_csv_limits lim = { .max_field = 8, .max_record = 24, .max_columns = 3, .max_rows = 4 };
	records a;
	memset(&a, 0, sizeof(a));
	cf_buf_init(&a.csv, 1u << 20, true);
	cf_buf_init(&a.flat, 1u << 20, true);
	(void)read_all(p, n, step, &lim, &a);
	cf_buf_free(&a.csv);
	cf_buf_free(&a.flat);
}

static void load(const uint8_t *p, size_t n, size_t step)
{
	cf_sql *s = NULL;
	cf_csv_load *l = NULL;
	cf_csv_table info;
	cf_csv_limits lim;
	cf_csv_limits_default(&lim);
	lim.max_rows = 10000;
	memset(&info, 0, sizeof(info));
	if (cf_sql_open(&s) != CF_OK)
		abort();
	if (cf_csv_load_new(cf_sql_db(s), "t", &lim, &l) != CF_OK)
		abort();
	cf_err rc = feed(cf_csv_load_writer(l), p, n, step);
	if (rc == CF_OK)
		rc = cf_csv_load_finish(l, &info);
	if (rc == CF_OK) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(cf_sql_db(s), "SELECT count(*) FROM t", -1, &st, NULL) !=
			    SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW ||
		    (uint64_t)sqlite3_column_int64(st, 0) != info.rows)
			abort();
		sqlite3_finalize(st);
	} else if (rc == CF_ERR_PARSE && !cf_csv_load_error(l)[0]) {
		abort();
	}
	cf_csv_table_free(&info);
	cf_csv_load_free(l);
	cf_sql_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t step = data[1];
	switch (data[0] % 3) {
	case 0: round_trip(data + 2, size - 2, step); break;
	case 1: tiny(data + 2, size - 2, step); break;
	default: load(data + 2, size - 2, step); break;
	}
	return 0;
}
