#define CF_LOG_MODULE "csv"

#include "csv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/buf.h"
#include "coffer/log.h"
#include "sql.h"

void cf_csv_limits_default(cf_csv_limits *l)
{
	l->max_field = CF_CSV_DEFAULT_MAX_FIELD;
	l->max_record = CF_CSV_DEFAULT_MAX_RECORD;
	l->max_columns = CF_CSV_DEFAULT_MAX_COLUMNS;
	l->max_rows = CF_CSV_DEFAULT_MAX_ROWS;
}

/* --- values and names --- */

bool cf_csv_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t need;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1fu;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0fu;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3fu);
		}
		/* Overlong forms, surrogates, beyond Unicode. */
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += need + 1;
	}
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool cf_csv_is_integer(const char *p, size_t n)
{
	size_t i = 0;
	bool neg = false;
	if (n > 0 && p[0] == '-') {
		neg = true;
		i = 1;
	}
	size_t digits = n - i;
	if (digits == 0 || digits > 19)
		return false;
	/* "0" only alone: "007" is an identifier, "-0" is not 0's spelling. */
	if (p[i] == '0')
		return digits == 1 && !neg;
	for (size_t k = i; k < n; k++) {
		if (!is_digit(p[k]))
			return false;
	}
	if (digits < 19)
		return true;
	const char *limit = neg ? "9223372036854775808" : "9223372036854775807";
	return memcmp(p + i, limit, 19) <= 0;
}

bool cf_csv_is_real(const char *p, size_t n)
{
	size_t i = 0;
	bool frac = false, exp = false;
	if (i < n && p[i] == '-')
		i++;
	if (i >= n || !is_digit(p[i]))
		return false;
	size_t int_start = i;
	if (p[i] == '0') {
		i++;
	} else {
		while (i < n && is_digit(p[i]))
			i++;
	}
	size_t int_digits = i - int_start;
	if (i < n && p[i] == '.') {
		i++;
		size_t start = i;
		while (i < n && is_digit(p[i]))
			i++;
		if (i == start)
			return false;
		frac = true;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t start = i;
		while (i < n && is_digit(p[i]))
			i++;
		if (i == start)
			return false;
		exp = true;
	}
	/* Integer syntax is the integer grammar's to judge (so 2^64 stays TEXT). */
	if (i != n || (!frac && !exp))
		return false;
	/* Without an exponent, up to 308 integer digits stay below DBL_MAX (1.8e308). */
	if (!exp && int_digits <= 308)
		return true;
	/* Finite as a double: 1e999 would become Inf. */
	char small[64], *copy = n < sizeof(small) ? small : malloc(n + 1);
	if (!copy)
		return false;
	memcpy(copy, p, n);
	copy[n] = '\0';
	errno = 0;
	double v = strtod(copy, NULL);
	bool ok = isfinite(v);
	if (copy != small)
		free(copy);
	return ok;
}

static bool prefix_ci(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && sqlite3_strnicmp(s, prefix, (int)k) == 0;
}

static bool equal_ci(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && sqlite3_strnicmp(s, word, (int)n) == 0;
}

bool cf_csv_valid_table(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 64 || is_digit(name[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
			return false;
	}
	return !prefix_ci(name, n, "sqlite_") && !prefix_ci(name, n, "__coffer");
}

bool cf_csv_valid_column(const char *name, size_t len)
{
	if (!name || len == 0 || len > CF_CSV_MAX_NAME)
		return false;
	if (!cf_csv_utf8_valid((const uint8_t *)name, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	if (name[0] == ' ' || name[len - 1] == ' ')
		return false;
	if (equal_ci(name, len, "rowid") || equal_ci(name, len, "oid") ||
	    equal_ci(name, len, "_rowid_"))
		return false;
	return !prefix_ci(name, len, "__coffer");
}

/* --- the reader --- */

enum { S_FIELD, S_UNQUOTED, S_QUOTED, S_QUOTE, S_CR, S_DONE };

typedef struct field_pos {
	size_t off;
	size_t len;
	bool quoted;
} field_pos;

struct cf_csv_reader {
	cf_csv_limits lim;
	cf_csv_record_fn fn;
	void *arg;
	cf_buf rec;            /* secret: the current record's field bytes */
	field_pos *pos;        /* max_columns entries */
	cf_csv_field *view;
	size_t nfields;
	size_t field_start;
	int state;
	bool in_record;
	bool quoted;
	unsigned bom;          /* bytes of a BOM matched so far */
	bool bom_done;
	uint64_t line;
	uint64_t record_line;
	uint64_t quote_line;
	uint64_t records;
	cf_err failed;
	char why[160];
};

static const uint8_t bom_bytes[3] = { 0xef, 0xbb, 0xbf };

/* Bytes that end a run of ordinary bytes in an unquoted field. */
static bool special_unquoted(uint8_t c)
{
	return c == ',' || c == '\n' || c == '\r' || c == '"' || c == '\0';
}

/*
 * What a byte is to the fast path (fast_records): plain data, a field's
 * end, a record's end, or anything that needs the slow path: a quote, NUL,
 * CR (but the one of a CRLF, which fast_byte looks at itself) and every
 * byte of 0x80 and up (UTF-8 to validate).
 */
enum { B_PLAIN, B_COMMA, B_LF, B_SLOW };

#define B_SLOW8 B_SLOW, B_SLOW, B_SLOW, B_SLOW, B_SLOW, B_SLOW, B_SLOW, B_SLOW
#define B_SLOW64 B_SLOW8, B_SLOW8, B_SLOW8, B_SLOW8, B_SLOW8, B_SLOW8, B_SLOW8, B_SLOW8

static const uint8_t byte_class[256] = {
	['\0'] = B_SLOW, ['\n'] = B_LF, ['\r'] = B_SLOW, ['"'] = B_SLOW, [','] = B_COMMA,
	[0x80] = B_SLOW64, B_SLOW64,
};

static cf_err reader_fail(cf_csv_reader *r, cf_err rc, const char *fmt, ...) CF_PRINTF(3, 4);
static cf_err reader_fail(cf_csv_reader *r, cf_err rc, const char *fmt, ...)
{
	int k = snprintf(r->why, sizeof(r->why), "line %llu: ", (unsigned long long)r->line);
	va_list ap;
	va_start(ap, fmt);
	if (k > 0 && (size_t)k < sizeof(r->why))
		vsnprintf(r->why + k, sizeof(r->why) - (size_t)k, fmt, ap);
	va_end(ap);
	r->failed = rc;
	return rc;
}

cf_err cf_csv_reader_new(const cf_csv_limits *limits, cf_csv_record_fn fn, void *arg,
			 cf_csv_reader **out)
{
	*out = NULL;
	if (!fn)
		return CF_ERR_ARG;
	cf_csv_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return CF_ERR_NOMEM;
	if (limits)
		r->lim = *limits;
	else
		cf_csv_limits_default(&r->lim);
	if (r->lim.max_columns == 0 || r->lim.max_field == 0 || r->lim.max_record == 0 ||
	    r->lim.max_columns > 100000) {
		free(r);
		return CF_ERR_ARG;
	}
	r->fn = fn;
	r->arg = arg;
	r->line = 1;
	r->state = S_FIELD;
	cf_buf_init(&r->rec, r->lim.max_record, true);
	r->pos = calloc(r->lim.max_columns, sizeof(*r->pos));
	r->view = calloc(r->lim.max_columns, sizeof(*r->view));
	if (!r->pos || !r->view) {
		cf_csv_reader_free(r);
		return CF_ERR_NOMEM;
	}
	*out = r;
	return CF_OK;
}

void cf_csv_reader_free(cf_csv_reader *r)
{
	if (!r)
		return;
	cf_buf_free(&r->rec);
	free(r->pos);
	free(r->view);
	free(r);
}

const char *cf_csv_reader_error(const cf_csv_reader *r)
{
	return r->why;
}

static cf_err append(cf_csv_reader *r, const uint8_t *p, size_t n)
{
	if (r->rec.len - r->field_start + n > r->lim.max_field)
		return reader_fail(r, CF_ERR_TOO_BIG, "field %zu is longer than %zu bytes",
				   r->nfields + 1, r->lim.max_field);
	if (cf_buf_append(&r->rec, p, n) != CF_OK)
		return reader_fail(r, CF_ERR_TOO_BIG, "the record is longer than %zu bytes",
				   r->lim.max_record);
	return CF_OK;
}

/*
 * How many more bytes the current field can take before a limit refuses
 * one. A run of bytes is cut there, so the limit that refuses is the one
 * the first byte over it crosses, and the line is that byte's, however
 * the input was split (a byte crossing both: the field's, as append()).
 */
static size_t room(const cf_csv_reader *r)
{
	size_t field = r->lim.max_field - (r->rec.len - r->field_start);
	size_t record = r->lim.max_record - r->rec.len;
	return field < record ? field : record;
}

/* The byte one over room(): what append() would say of it. */
static cf_err over_limit(cf_csv_reader *r)
{
	if (r->rec.len - r->field_start == r->lim.max_field)
		return reader_fail(r, CF_ERR_TOO_BIG, "field %zu is longer than %zu bytes",
				   r->nfields + 1, r->lim.max_field);
	return reader_fail(r, CF_ERR_TOO_BIG, "the record is longer than %zu bytes",
			   r->lim.max_record);
}

static cf_err end_field(cf_csv_reader *r)
{
	size_t len = r->rec.len - r->field_start;
	if (!cf_csv_utf8_valid(r->rec.data ? r->rec.data + r->field_start : NULL, len))
		return reader_fail(r, CF_ERR_PARSE, "field %zu is not UTF-8", r->nfields + 1);
	if (r->nfields == r->lim.max_columns)
		return reader_fail(r, CF_ERR_TOO_BIG, "the record has more than %zu fields",
				   r->lim.max_columns);
	r->pos[r->nfields++] = (field_pos){ r->field_start, len, r->quoted };
	r->field_start = r->rec.len;
	r->quoted = false;
	r->state = S_FIELD;
	return CF_OK;
}

static cf_err end_record(cf_csv_reader *r)
{
	for (size_t i = 0; i < r->nfields; i++) {
		const field_pos *f = &r->pos[i];
		r->view[i].data = r->rec.data ? (const char *)r->rec.data + f->off : "";
		r->view[i].len = f->len;
		r->view[i].quoted = f->quoted;
	}
	r->records++;
	cf_err rc = r->fn(r->arg, r->view, r->nfields, r->records, r->record_line);
	cf_buf_reset(&r->rec);
	r->nfields = 0;
	r->field_start = 0;
	r->in_record = false;
	r->state = S_FIELD;
	if (rc != CF_OK) {
		/* The callback's owner says why; the reader only stops. */
		r->failed = rc;
		r->why[0] = '\0';
	}
	return rc;
}

static cf_err end_line(cf_csv_reader *r)
{
	cf_err rc = end_field(r);
	if (rc == CF_OK)
		rc = end_record(r);
	r->line++;
	return rc;
}

/*
 * The fast path: records at the start of p that lie whole in it and hold
 * only plain bytes (byte_class), so that their fields can be handed over
 * in place: no copy into rec (fields are valid during the callback only
 * anyway), no UTF-8 check (ASCII is UTF-8). It holds them to the same
 * limits as the slow path; a record that would break one, or that is not
 * plain, or that does not end in p, is left whole to the slow path, which
 * then says exactly what it always says. Called at a record's start only.
 *
 * It reads p eight bytes at a time and stops only at bytes up to ',' and
 * from 0x80, which hold every byte that is not plain (and a few that
 * are: tab and other controls, space, '!', '#' to '+'). On numeric data (a comma every few
 * bytes, bench/seed_inference) that measured 2.9 ns a field, against
 * 7.0 for a loop over byte_class and 7.7 for memchr to the line end then
 * that loop: the loops pay a mispredicted branch at almost every field.
 */
typedef struct fast_state {
	size_t start;  /* the current field's first byte */
	size_t k;      /* fields so far */
	size_t total;  /* their bytes, as rec.len would be */
	size_t done;   /* bytes of the records handed over */
} fast_state;

/* Byte q of p, which may end a field or the record: false to stop. */
static inline bool fast_byte(cf_csv_reader *r, const uint8_t *p, size_t n, size_t q,
			     fast_state *st, cf_err *rc)
{
	uint8_t c = byte_class[p[q]];
	if (c == B_PLAIN)
		return true;
	/* A CR is fine as the first half of a CRLF only (the LF drops it). */
	if (c == B_SLOW)
		return p[q] == '\r' && q + 1 < n && p[q + 1] == '\n';
	size_t len = q - st->start;
	if (c == B_LF && len > 0 && p[q - 1] == '\r')
		len--;
	/* As end_field() and append() would refuse it. */
	if (st->k == r->lim.max_columns || len > r->lim.max_field ||
	    len > r->lim.max_record - st->total)
		return false;
	st->total += len;
	r->view[st->k++] = (cf_csv_field){ (const char *)p + st->start, len, false };
	st->start = q + 1;
	if (c != B_LF)
		return true;
	/* As end_line() after a slow record; rec is empty and was wiped. */
	r->record_line = r->line;
	r->records++;
	cf_err e = r->fn(r->arg, r->view, st->k, r->records, r->record_line);
	r->line++;
	st->done = q + 1;
	st->k = 0;
	st->total = 0;
	if (e != CF_OK) {
		r->failed = e;
		r->why[0] = '\0';
		*rc = e;
		return false;
	}
	return true;
}

/*
 * Eight bytes, the first in the low bits whatever the machine's order
 * (gcc 12 does not merge a loop of shifts into one load: 4.1 ns a field).
 */
static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

#define ONES 0x0101010101010101ull
#define HIGH 0x8080808080808080ull

/* Returns the bytes consumed; *rc is set if the callback failed. */
static size_t fast_records(cf_csv_reader *r, const uint8_t *p, size_t n, cf_err *rc)
{
	fast_state st = { 0, 0, 0, 0 };
	size_t j = 0;
	for (; n - j >= 8; j += 8) {
		uint64_t w = load_le64(p + j);
		/*
		 * The high bit of each byte up to ',' (0x2c) or from 0x80:
		 * with its high bit cleared, a byte plus 0x53 reaches 0x80
		 * only if it is past ',', and no carry crosses into the next.
		 */
		uint64_t stop = (~((w & ~HIGH) + ONES * 0x53) | w) & HIGH;
		while (stop) {
			size_t q = j + ((size_t)__builtin_ctzll(stop) >> 3);
			stop &= stop - 1;
			if (!fast_byte(r, p, n, q, &st, rc))
				return st.done;
		}
	}
	for (; j < n; j++) {
		if (!fast_byte(r, p, n, j, &st, rc))
			return st.done;
	}
	return st.done;
}

static cf_err process(cf_csv_reader *r, const uint8_t *p, size_t n)
{
	cf_err rc = CF_OK;
	size_t i = 0;
	while (i < n && rc == CF_OK) {
		if (r->state == S_FIELD && !r->in_record && r->nfields == 0 && r->bom_done) {
			i += fast_records(r, p + i, n - i, &rc);
			if (i == n || rc != CF_OK)
				break;
		}
		if (r->state == S_UNQUOTED) {
			size_t j = i, end = n - i > room(r) ? i + room(r) : n;
			while (j < end && !special_unquoted(p[j]))
				j++;
			if (j > i && (rc = append(r, p + i, j - i)) != CF_OK)
				break;
			i = j;
			if (i == n)
				break;
			if (!special_unquoted(p[i])) {
				rc = over_limit(r);
				break;
			}
		} else if (r->state == S_QUOTED) {
			size_t j = i, end = n - i > room(r) ? i + room(r) : n;
			while (j < end && p[j] != '"' && p[j] != '\0') {
				if (p[j] == '\n')
					r->line++;
				j++;
			}
			if (j > i && (rc = append(r, p + i, j - i)) != CF_OK)
				break;
			i = j;
			if (i == n)
				break;
			if (p[i] != '"' && p[i] != '\0') {
				if (p[i] == '\n')
					r->line++;
				rc = over_limit(r);
				break;
			}
		}
		uint8_t c = p[i++];
		if (c == '\0') {
			rc = reader_fail(r, CF_ERR_PARSE, "a NUL byte");
			break;
		}
		switch (r->state) {
		case S_FIELD:
			if (!r->in_record && r->nfields == 0)
				r->record_line = r->line;
			if (c == '"') {
				r->in_record = true;
				r->quoted = true;
				r->quote_line = r->line;
				r->state = S_QUOTED;
			} else if (c == ',') {
				r->in_record = true;
				rc = end_field(r);
			} else if (c == '\n') {
				rc = end_line(r);
			} else if (c == '\r') {
				r->state = S_CR;
			} else {
				r->in_record = true;
				r->state = S_UNQUOTED;
				rc = append(r, &c, 1);
			}
			break;
		case S_UNQUOTED:
			if (c == ',')
				rc = end_field(r);
			else if (c == '\n')
				rc = end_line(r);
			else if (c == '\r')
				r->state = S_CR;
			else
				rc = reader_fail(r, CF_ERR_PARSE, "a quote inside unquoted field %zu",
						 r->nfields + 1);
			break;
		case S_QUOTED:
			r->state = S_QUOTE; /* c is the quote that ended the run */
			break;
		case S_QUOTE:
			if (c == '"') {
				rc = append(r, &c, 1);
				r->state = S_QUOTED;
			} else if (c == ',') {
				rc = end_field(r);
			} else if (c == '\n') {
				rc = end_line(r);
			} else if (c == '\r') {
				r->state = S_CR;
			} else {
				rc = reader_fail(r, CF_ERR_PARSE, "text after the closing quote of field %zu",
						 r->nfields + 1);
			}
			break;
		case S_CR:
			if (c == '\n')
				rc = end_line(r);
			else
				rc = reader_fail(r, CF_ERR_PARSE,
						 "a CR not followed by LF (CR-only line ends are not CSV)");
			break;
		default:
			rc = CF_ERR_ARG;
			break;
		}
	}
	return rc;
}

cf_err cf_csv_reader_feed(cf_csv_reader *r, const uint8_t *data, size_t len)
{
	if (!r)
		return CF_ERR_ARG;
	if (r->failed)
		return r->failed;
	if (r->state == S_DONE)
		return CF_ERR_ARG;
	if (len == 0)
		return CF_OK;
	if (!data)
		return CF_ERR_ARG;
	/* A UTF-8 byte order mark at the very start is not data. */
	while (!r->bom_done && len > 0) {
		if (data[0] == bom_bytes[r->bom]) {
			data++;
			len--;
			if (++r->bom == sizeof(bom_bytes))
				r->bom_done = true;
			continue;
		}
		r->bom_done = true;
		cf_err rc = process(r, bom_bytes, r->bom);
		if (rc != CF_OK)
			return rc;
	}
	return process(r, data, len);
}

cf_err cf_csv_reader_finish(cf_csv_reader *r)
{
	cf_err rc = CF_OK;
	if (!r)
		return CF_ERR_ARG;
	if (r->failed)
		return r->failed;
	if (r->state == S_DONE)
		return CF_ERR_ARG;
	if (!r->bom_done) {
		r->bom_done = true;
		if ((rc = process(r, bom_bytes, r->bom)) != CF_OK)
			return rc;
	}
	switch (r->state) {
	case S_QUOTED:
		return reader_fail(r, CF_ERR_PARSE, "the quote opened on line %llu is never closed",
				   (unsigned long long)r->quote_line);
	case S_CR:
		return reader_fail(r, CF_ERR_PARSE,
				   "a CR not followed by LF (CR-only line ends are not CSV)");
	case S_QUOTE:
	case S_UNQUOTED:
		rc = end_field(r);
		if (rc == CF_OK)
			rc = end_record(r);
		break;
	case S_FIELD:
		if (r->in_record) {
			rc = end_field(r);
			if (rc == CF_OK)
				rc = end_record(r);
		}
		break;
	default:
		rc = CF_ERR_ARG;
		break;
	}
	if (rc == CF_OK)
		r->state = S_DONE;
	return rc;
}

static cf_err reader_write(void *ctx, const uint8_t *buf, size_t len)
{
	return cf_csv_reader_feed(ctx, buf, len);
}

cf_writer cf_csv_reader_writer(cf_csv_reader *r)
{
	return (cf_writer){ reader_write, r };
}

/* --- the loader --- */

struct cf_csv_load {
	sqlite3 *db;
	cf_csv_limits lim;
	cf_csv_reader *reader;  /* the first pass: checks, counts, types */
	char *table;
	char **names;
	size_t ncols;
	bool *can_int;
	bool *can_real;
	bool *nonempty;
	cf_csv_type *types;     /* the second pass binds by these */
	cf_buf *chunks;         /* secret: the plaintext, until the second pass takes it */
	size_t nchunks;
	size_t capchunks;
	sqlite3_stmt *insert;
	uint64_t rows;
	uint64_t inserted;
	bool header;
	bool began;
	char why[200];
};

static cf_err load_fail(cf_csv_load *l, cf_err rc, const char *fmt, ...) CF_PRINTF(3, 4);
static cf_err load_fail(cf_csv_load *l, cf_err rc, const char *fmt, ...)
{
	if (!l->why[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(l->why, sizeof(l->why), fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Runs one of the loader's own statements. */
static cf_err exec(cf_csv_load *l, const char *sql)
{
	int r = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
	if (r != SQLITE_OK)
		return load_fail(l, cf_sql_err(r), "the database refused the load: %s",
				 sqlite3_errstr(r));
	return CF_OK;
}

static cf_err prepare(cf_csv_load *l, const cf_buf *sql, sqlite3_stmt **st)
{
	int r = sqlite3_prepare_v2(l->db, (const char *)sql->data, (int)sql->len, st, NULL);
	if (r != SQLITE_OK)
		return load_fail(l, cf_sql_err(r), "the database refused the load: %s",
				 sqlite3_errstr(r));
	return CF_OK;
}

static cf_err on_header(cf_csv_load *l, const cf_csv_field *f, size_t n, uint64_t line)
{
	l->names = calloc(n, sizeof(*l->names));
	l->can_int = calloc(n, sizeof(bool));
	l->can_real = calloc(n, sizeof(bool));
	l->nonempty = calloc(n, sizeof(bool));
	if (!l->names || !l->can_int || !l->can_real || !l->nonempty)
		return CF_ERR_NOMEM;
	l->ncols = n;
	for (size_t i = 0; i < n; i++) {
		if (!cf_csv_valid_column(f[i].data, f[i].len))
			return load_fail(l, CF_ERR_PARSE,
					 "line %llu: column %zu has no usable name (empty, longer than "
					 "%d bytes, control characters, surrounding spaces, or "
					 "reserved: rowid, oid, _rowid_, __coffer*)",
					 (unsigned long long)line, i + 1, CF_CSV_MAX_NAME);
		/* Not strndup: fields are not NUL-terminated. */
		if (!(l->names[i] = malloc(f[i].len + 1)))
			return CF_ERR_NOMEM;
		memcpy(l->names[i], f[i].data, f[i].len);
		l->names[i][f[i].len] = '\0';
		/* SQLite's identifiers ignore ASCII case: so does the duplicate check. */
		for (size_t j = 0; j < i; j++) {
			if (sqlite3_stricmp(l->names[j], l->names[i]) == 0)
				return load_fail(l, CF_ERR_PARSE,
						 "line %llu: columns %zu and %zu have the same name",
						 (unsigned long long)line, j + 1, i + 1);
		}
		l->can_int[i] = true;
		l->can_real[i] = true;
	}
	l->header = true;
	return CF_OK;
}

/* The first pass over a row: its shape, and what it says about each column's type. */
static cf_err on_row(cf_csv_load *l, const cf_csv_field *f, size_t n, uint64_t record,
		     uint64_t line)
{
	if (n != l->ncols)
		return load_fail(l, CF_ERR_PARSE, "line %llu (record %llu): %zu fields; the header "
				 "has %zu", (unsigned long long)line, (unsigned long long)record,
				 n, l->ncols);
	if (l->rows == l->lim.max_rows)
		return load_fail(l, CF_ERR_TOO_BIG, "more than %llu rows",
				 (unsigned long long)l->lim.max_rows);
	for (size_t i = 0; i < n; i++) {
		if (f[i].len == 0)
			continue;
		l->nonempty[i] = true;
		if (!l->can_real[i])
			continue; /* TEXT already: nothing can change that */
		if (l->can_int[i] && cf_csv_is_integer(f[i].data, f[i].len))
			continue;
		l->can_int[i] = false;
		if (!cf_csv_is_integer(f[i].data, f[i].len) && !cf_csv_is_real(f[i].data, f[i].len))
			l->can_real[i] = false;
	}
	l->rows++;
	return CF_OK;
}

static cf_err on_record(void *arg, const cf_csv_field *f, size_t n, uint64_t record, uint64_t line)
{
	cf_csv_load *l = arg;
	return l->header ? on_row(l, f, n, record, line) : on_header(l, f, n, line);
}

/* A canonical integer (cf_csv_is_integer said so) as its value. */
static sqlite3_int64 integer_value(const char *p, size_t n)
{
	bool neg = n > 0 && p[0] == '-';
	uint64_t u = 0;
	for (size_t i = neg ? 1 : 0; i < n; i++)
		u = u * 10u + (uint64_t)(p[i] - '0');
	/* -2^63 has no positive counterpart: go through u - 1. */
	return neg ? -(sqlite3_int64)(u - 1u) - 1 : (sqlite3_int64)u;
}

/*
 * The second pass over a record (the first is the header): the row goes
 * straight into the typed table. The first pass saw the same bytes, so
 * the shape is known good. INTEGER values are bound as integers; REAL and
 * TEXT ones as the text that was read, which the column's affinity turns
 * into a REAL exactly as CAST(... AS REAL) would. The fields live in the
 * reader's buffer or the chunk being read until the callback returns, so
 * nothing is copied.
 */
static cf_err on_insert(void *arg, const cf_csv_field *f, size_t n, uint64_t record,
			uint64_t line)
{
	cf_csv_load *l = arg;
	(void)line;
	if (record == 1)
		return CF_OK;
	if (n != l->ncols || l->inserted == l->rows)
		return load_fail(l, CF_ERR_IO, "the second pass over the input disagrees with the "
				 "first (record %llu)", (unsigned long long)record);
	for (size_t i = 0; i < n; i++) {
		int r;
		if (f[i].len == 0)
			r = sqlite3_bind_null(l->insert, (int)i + 1);
		else if (l->types[i] == CF_CSV_INTEGER)
			r = sqlite3_bind_int64(l->insert, (int)i + 1,
					       integer_value(f[i].data, f[i].len));
		else
			r = sqlite3_bind_text(l->insert, (int)i + 1, f[i].data, (int)f[i].len,
					      SQLITE_STATIC);
		if (r != SQLITE_OK)
			return load_fail(l, cf_sql_err(r), "the database refused the load: %s",
					 sqlite3_errstr(r));
	}
	int r = sqlite3_step(l->insert);
	sqlite3_reset(l->insert);
	if (r != SQLITE_DONE)
		return load_fail(l, cf_sql_err(r) ? cf_sql_err(r) : CF_ERR_IO,
				 "the database refused the load: %s", sqlite3_errstr(r));
	l->inserted++;
	return CF_OK;
}

/* Keeps the plaintext, in secret chunks, for the second pass. */
#define CHUNK (256u * 1024u)

static cf_err keep(cf_csv_load *l, const uint8_t *p, size_t n)
{
	while (n > 0) {
		cf_buf *c = l->nchunks ? &l->chunks[l->nchunks - 1] : NULL;
		if (!c || c->len == CHUNK) {
			if (l->nchunks == l->capchunks) {
				size_t cap = l->capchunks ? 2 * l->capchunks : 64;
				cf_buf *more = realloc(l->chunks, cap * sizeof(*more));
				if (!more)
					return CF_ERR_NOMEM;
				l->chunks = more;
				l->capchunks = cap;
			}
			c = &l->chunks[l->nchunks++];
			cf_buf_init(c, CHUNK, true);
			if (cf_buf_reserve(c, CHUNK) != CF_OK)
				return CF_ERR_NOMEM;
		}
		size_t k = CHUNK - c->len < n ? CHUNK - c->len : n;
		if (cf_buf_append(c, p, k) != CF_OK)
			return CF_ERR_NOMEM;
		p += k;
		n -= k;
	}
	return CF_OK;
}

static cf_err load_write(void *ctx, const uint8_t *buf, size_t len)
{
	cf_csv_load *l = ctx;
	cf_err rc = cf_csv_reader_feed(l->reader, buf, len);
	if (rc == CF_OK && (rc = keep(l, buf, len)) != CF_OK)
		rc = load_fail(l, rc, "the input does not fit in the enclave's memory");
	return rc;
}

static void free_chunks(cf_csv_load *l)
{
	for (size_t i = 0; i < l->nchunks; i++)
		cf_buf_free(&l->chunks[i]);
	free(l->chunks);
	l->chunks = NULL;
	l->nchunks = l->capchunks = 0;
}

cf_err cf_csv_load_new(sqlite3 *db, const char *table, const cf_csv_limits *limits,
		       cf_csv_load **out)
{
	*out = NULL;
	if (!db || !cf_csv_valid_table(table))
		return CF_ERR_ARG;
	cf_csv_load *l = calloc(1, sizeof(*l));
	if (!l)
		return CF_ERR_NOMEM;
	l->db = db;
	if (limits)
		l->lim = *limits;
	else
		cf_csv_limits_default(&l->lim);
	l->table = strdup(table);
	cf_err rc = l->table ? cf_csv_reader_new(&l->lim, on_record, l, &l->reader) : CF_ERR_NOMEM;
	if (rc != CF_OK) {
		cf_csv_load_free(l);
		return rc;
	}
	*out = l;
	return CF_OK;
}

cf_writer cf_csv_load_writer(cf_csv_load *l)
{
	return (cf_writer){ load_write, l };
}

const char *cf_csv_load_error(const cf_csv_load *l)
{
	return l->why[0] ? l->why : cf_csv_reader_error(l->reader);
}

void cf_csv_load_free(cf_csv_load *l)
{
	if (!l)
		return;
	sqlite3_finalize(l->insert);
	/* A failed load leaves nothing half-made behind. */
	if (l->began)
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	free_chunks(l);
	cf_csv_reader_free(l->reader);
	for (size_t i = 0; l->names && i < l->ncols; i++)
		free(l->names[i]);
	free(l->names);
	free(l->can_int);
	free(l->can_real);
	free(l->nonempty);
	free(l->types);
	free(l->table);
	free(l);
}

void cf_csv_table_free(cf_csv_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->columns && i < t->ncolumns; i++)
		free(t->columns[i]);
	free(t->columns);
	free(t->types);
	free(t->name);
	memset(t, 0, sizeof(*t));
}

static cf_csv_type column_type(const cf_csv_load *l, size_t i)
{
	/* A column with no value at all is TEXT: nothing says it is a number. */
	if (!l->nonempty[i])
		return CF_CSV_TEXT;
	return l->can_int[i] ? CF_CSV_INTEGER : l->can_real[i] ? CF_CSV_REAL : CF_CSV_TEXT;
}

/* The second pass: the kept plaintext, read again, into the typed table. */
static cf_err insert_rows(cf_csv_load *l)
{
	cf_csv_reader *r = NULL;
	cf_buf sql;
	cf_err rc;
	cf_buf_init(&sql, 64u * 1024u * 1024u, false);
	rc = cf_buf_append_str(&sql, "INSERT INTO ");
	if (rc == CF_OK)
		rc = cf_sql_quote_ident(&sql, l->table);
	if (rc == CF_OK)
		rc = cf_buf_append_str(&sql, " VALUES(");
	for (size_t i = 0; rc == CF_OK && i < l->ncols; i++)
		rc = cf_buf_append_str(&sql, i ? ",?" : "?");
	if (rc == CF_OK)
		rc = cf_buf_append_byte(&sql, ')');
	if (rc != CF_OK || (rc = prepare(l, &sql, &l->insert)) != CF_OK)
		goto out;
	if ((rc = cf_csv_reader_new(&l->lim, on_insert, l, &r)) != CF_OK)
		goto out;
	/* Each chunk is wiped and freed once read: the table grows as the plaintext shrinks. */
	for (size_t i = 0; rc == CF_OK && i < l->nchunks; i++) {
		rc = cf_csv_reader_feed(r, l->chunks[i].data, l->chunks[i].len);
		cf_buf_free(&l->chunks[i]);
	}
	if (rc == CF_OK)
		rc = cf_csv_reader_finish(r);
	if (rc == CF_OK && l->inserted != l->rows)
		rc = load_fail(l, CF_ERR_IO, "the second pass over the input disagrees with the "
			       "first (%llu rows, not %llu)", (unsigned long long)l->inserted,
			       (unsigned long long)l->rows);
	if (rc != CF_OK)
		load_fail(l, rc, "the second pass over the input failed: %s", cf_csv_reader_error(r));
out:
	free_chunks(l);
	cf_csv_reader_free(r);
	sqlite3_finalize(l->insert);
	l->insert = NULL;
	cf_buf_free(&sql);
	return rc;
}

cf_err cf_csv_load_finish(cf_csv_load *l, cf_csv_table *info)
{
	cf_buf sql;
	cf_err rc;
	cf_buf_init(&sql, 64u * 1024u * 1024u, false);
	if (info)
		memset(info, 0, sizeof(*info));
	if (!l) {
		rc = CF_ERR_ARG;
		goto out;
	}
	if ((rc = cf_csv_reader_finish(l->reader)) != CF_OK)
		goto out;
	if (!l->header) {
		rc = load_fail(l, CF_ERR_PARSE, "the file is empty: no header row");
		goto out;
	}
	if (!(l->types = calloc(l->ncols, sizeof(*l->types)))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	rc = cf_buf_append_str(&sql, "CREATE TABLE ");
	if (rc == CF_OK)
		rc = cf_sql_quote_ident(&sql, l->table);
	if (rc == CF_OK)
		rc = cf_buf_append_byte(&sql, '(');
	for (size_t i = 0; rc == CF_OK && i < l->ncols; i++) {
		l->types[i] = column_type(l, i);
		if (i)
			rc = cf_buf_append_byte(&sql, ',');
		if (rc == CF_OK)
			rc = cf_sql_quote_ident(&sql, l->names[i]);
		if (rc == CF_OK)
			rc = cf_buf_append_str(&sql, l->types[i] == CF_CSV_INTEGER ? " INTEGER"
						     : l->types[i] == CF_CSV_REAL ? " REAL"
										  : " TEXT");
	}
	if (rc == CF_OK)
		rc = cf_buf_append_byte(&sql, ')');
	if (rc == CF_OK)
		rc = cf_buf_terminate(&sql);
	if (rc != CF_OK)
		goto out;
	/* One transaction: a failure rolls the table back with its rows. */
	if ((rc = exec(l, "BEGIN")) != CF_OK)
		goto out;
	l->began = true;
	if ((rc = exec(l, (const char *)sql.data)) != CF_OK || (rc = insert_rows(l)) != CF_OK ||
	    (rc = exec(l, "COMMIT")) != CF_OK)
		goto out;
	l->began = false;
	if (info) {
		info->name = strdup(l->table);
		info->ncolumns = l->ncols;
		info->rows = l->rows;
		info->types = l->types;
		info->columns = l->names;
		l->types = NULL;
		l->names = NULL;
		if (!info->name) {
			cf_csv_table_free(info);
			rc = CF_ERR_NOMEM;
		}
	}
out:
	cf_buf_free(&sql);
	return rc;
}
