#define CF_LOG_MODULE "output"

#include "output.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/json.h"

static void set_why(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

cf_err cf_output_csv_field(cf_buf *out, const uint8_t *p, size_t n)
{
	/* A leading BOM would be taken for the file's own by a reader: keep it data. */
	bool quote = n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf;
	for (size_t i = 0; i < n && !quote; i++)
		quote = p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n';
	if (!quote)
		return n ? cf_buf_append(out, p, n) : CF_OK;
	cf_err rc = cf_buf_append_byte(out, '"');
	size_t start = 0;
	for (size_t i = 0; rc == CF_OK && i < n; i++) {
		if (p[i] != '"')
			continue;
		/* Up to and including the quote, then the quote again. */
		rc = cf_buf_append(out, p + start, i - start + 1);
		if (rc == CF_OK)
			rc = cf_buf_append_byte(out, '"');
		start = i + 1;
	}
	if (rc == CF_OK && start < n)
		rc = cf_buf_append(out, p + start, n - start);
	if (rc == CF_OK)
		rc = cf_buf_append_byte(out, '"');
	return rc;
}

cf_err cf_output_csv_header(cf_buf *out, sqlite3_stmt *st, int ncols)
{
	cf_err rc = CF_OK;
	for (int i = 0; rc == CF_OK && i < ncols; i++) {
		const char *name = sqlite3_column_name(st, i);
		if (!name)
			return CF_ERR_NOMEM;
		if (i)
			rc = cf_buf_append_byte(out, ',');
		if (rc == CF_OK)
			rc = cf_output_csv_field(out, (const uint8_t *)name, strlen(name));
	}
	return rc == CF_OK ? cf_buf_append(out, "\r\n", 2) : rc;
}

static cf_err put_value(cf_buf *out, sqlite3_stmt *st, int i)
{
	static const char hex[] = "0123456789abcdef";
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return CF_OK;
	case SQLITE_INTEGER:
		return cf_buf_printf(out, "%lld", (long long)sqlite3_column_int64(st, i));
	case SQLITE_BLOB: {
		const uint8_t *p = sqlite3_column_blob(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		cf_err rc = cf_buf_reserve(out, 2 * n);
		for (size_t k = 0; rc == CF_OK && k < n; k++) {
			out->data[out->len++] = (uint8_t)hex[p[k] >> 4];
			out->data[out->len++] = (uint8_t)hex[p[k] & 15];
		}
		return rc;
	}
	case SQLITE_TEXT: {
		const uint8_t *p = sqlite3_column_text(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		if (!p)
			return CF_ERR_NOMEM;
		/* The empty string is not NULL: say so with quotes. */
		return n ? cf_output_csv_field(out, p, n) : cf_buf_append(out, "\"\"", 2);
	}
	default: { /* SQLITE_FLOAT: SQLite's own rendering, as the sqlite3 shell prints it */
		const uint8_t *p = sqlite3_column_text(st, i);
		if (!p)
			return CF_ERR_NOMEM;
		return cf_output_csv_field(out, p, (size_t)sqlite3_column_bytes(st, i));
	}
	}
}

cf_err cf_output_csv_row(cf_buf *out, sqlite3_stmt *st, int ncols)
{
	cf_err rc = CF_OK;
	for (int i = 0; rc == CF_OK && i < ncols; i++) {
		if (i)
			rc = cf_buf_append_byte(out, ',');
		if (rc == CF_OK)
			rc = put_value(out, st, i);
	}
	return rc == CF_OK ? cf_buf_append(out, "\r\n", 2) : rc;
}

cf_err cf_output_recipients(const json_t *statement, const char *name, cf_age_recipient **out,
			    size_t *n, char *why, size_t whylen)
{
	const json_t *outputs = json_object_get(statement, "outputs");
	const json_t *found = NULL, *o;
	cf_age_recipient *r = NULL;
	cf_err rc = CF_OK;
	size_t i;
	*out = NULL;
	*n = 0;
	if (!json_is_array(outputs) || !name) {
		set_why(why, whylen, "the KMS's statement lists no outputs");
		return CF_ERR_PARSE;
	}
	json_array_foreach(outputs, i, o) {
		const char *s;
		if (cf_json_get_string(o, "name", &s) == CF_OK && strcmp(s, name) == 0) {
			if (found) {
				set_why(why, whylen, "the KMS's statement names output %.64s twice", name);
				return CF_ERR_PARSE;
			}
			found = o;
		}
	}
	if (!found) {
		set_why(why, whylen, "the KMS's statement has no output %.64s", name);
		return CF_ERR_NOT_FOUND;
	}
	const json_t *list = json_object_get(found, "recipients");
	size_t count = json_array_size(list);
	if (!json_is_array(list) || count == 0 || count > CF_OUTPUT_MAX_RECIPIENTS) {
		set_why(why, whylen, "output %.64s has no recipients (or more than %d) in the KMS's "
			"statement", name, CF_OUTPUT_MAX_RECIPIENTS);
		return CF_ERR_PARSE;
	}
	if (!(r = calloc(count, sizeof(*r))))
		return CF_ERR_NOMEM;
	json_array_foreach(list, i, o) {
		const char *s;
		r[i].kind = CF_AGE_X25519;
		if (cf_json_get_string(o, "recipient", &s) != CF_OK ||
		    cf_age_recipient_parse(s, r[i].pub) != CF_OK) {
			set_why(why, whylen, "recipient %zu of output %.64s is not an age X25519 "
				"recipient", i + 1, name);
			rc = CF_ERR_PARSE;
			goto out;
		}
	}
	*out = r;
	*n = count;
	r = NULL;
out:
	free(r);
	return rc;
}

cf_err cf_output_encrypt(const cf_age_recipient *rcpts, size_t n, const cf_buf *csv,
			 cf_writer out)
{
	if (!rcpts || n == 0 || !csv)
		return CF_ERR_ARG;
	cf_age_encrypt_opts opts = { .armor = false };
	cf_mem_reader m = { .data = csv->data, .len = csv->len };
	return cf_age_encrypt(rcpts, n, &opts, cf_mem_reader_of(&m), out);
}
