/*
 * enclave/csv: the RFC 4180 reader against well-formed and hostile input
 * (every split of the input, quotes, CRLF, embedded newlines, BOM, NUL,
 * CR-only lines, bad UTF-8, limits), its two paths (in place and copied)
 * against each other on random documents, and the loader: header checks
 * (duplicate, empty, reserved and odd names), ragged rows, type
 * inference with its exact grammars, batching, and that no error message
 * ever carries a value or a column name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "coffer/buf.h"
#include "csv.h"
#include "sql.h"

/* --- the reader --- */

typedef struct collected {
	cf_buf out;
	uint64_t lines[64];
	size_t n;
} collected;

/* Records as "[f1][f2]\n", quoted fields marked with a leading '"'. */
static cf_err collect(void *arg, const cf_csv_field *f, size_t n, uint64_t record, uint64_t line)
{
	collected *c = arg;
	(void)record;
	if (c->n < 64)
		c->lines[c->n] = line;
	c->n++;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(cf_buf_append_byte(&c->out, '['), CF_OK);
		if (f[i].quoted)
			assert_int_equal(cf_buf_append_byte(&c->out, '"'), CF_OK);
		assert_int_equal(cf_buf_append(&c->out, f[i].data, f[i].len), CF_OK);
		assert_int_equal(cf_buf_append_byte(&c->out, ']'), CF_OK);
	}
	assert_int_equal(cf_buf_append_byte(&c->out, '\n'), CF_OK);
	return CF_OK;
}

/* Parses in (len bytes) fed in pieces of `step` bytes (0: all at once). */
static cf_err parse(const char *in, size_t len, size_t step, const cf_csv_limits *lim,
		    collected *c, char *why, size_t whylen)
{
	cf_csv_reader *r = NULL;
	memset(c, 0, sizeof(*c));
	cf_buf_init(&c->out, 1u << 20, false);
	assert_int_equal(cf_csv_reader_new(lim, collect, c, &r), CF_OK);
	cf_err rc = CF_OK;
	size_t off = 0;
	while (rc == CF_OK && off < len) {
		size_t n = step && step < len - off ? step : len - off;
		rc = cf_csv_reader_feed(r, (const uint8_t *)in + off, n);
		off += n;
	}
	if (rc == CF_OK)
		rc = cf_csv_reader_finish(r);
	if (why)
		snprintf(why, whylen, "%s", cf_csv_reader_error(r));
	if (rc == CF_OK)
		assert_int_equal(cf_buf_terminate(&c->out), CF_OK);
	cf_csv_reader_free(r);
	return rc;
}

static void expect(const char *in, size_t len, const char *want)
{
	/* Every split gives the same records: the state machine has no seams. */
	for (size_t step = 0; step <= len; step++) {
		collected c;
		assert_int_equal(parse(in, len, step, NULL, &c, NULL, 0), CF_OK);
		assert_string_equal((const char *)c.out.data, want);
		cf_buf_free(&c.out);
	}
}

#define EXPECT(lit, want) expect(lit, sizeof(lit) - 1, want)

static void expect_fail(const char *in, size_t len, cf_err want, const char *msg_part)
{
	for (size_t step = 0; step <= len; step++) {
		collected c;
		char why[200] = "";
		assert_int_equal(parse(in, len, step, NULL, &c, why, sizeof(why)), want);
		if (msg_part && !strstr(why, msg_part))
			fail_msg("\"%s\" does not say \"%s\"", why, msg_part);
		cf_buf_free(&c.out);
	}
}

#define EXPECT_FAIL(lit, rc, msg) expect_fail(lit, sizeof(lit) - 1, rc, msg)

static void test_reader_basic(void **state)
{
	(void)state;
	EXPECT("a,b\n1,2\n", "[a][b]\n[1][2]\n");
	EXPECT("a,b\r\n1,2\r\n", "[a][b]\n[1][2]\n");
	EXPECT("a,b\n1,2", "[a][b]\n[1][2]\n");
	EXPECT("a,b\r\n1,2", "[a][b]\n[1][2]\n");
	EXPECT("", "");
	EXPECT("x", "[x]\n");
	EXPECT(",,\n", "[][][]\n");
	EXPECT("a,\n", "[a][]\n");
	EXPECT("a,", "[a][]\n");
	/* An empty line is a record of one empty field; a last line break is not. */
	EXPECT("a\n\nb\n", "[a]\n[]\n[b]\n");
	EXPECT("a\r\n\r\nb", "[a]\n[]\n[b]\n");
	EXPECT("\n", "[]\n");
	/* Spaces are data. */
	EXPECT(" a , b \n", "[ a ][ b ]\n");
}

static void test_reader_quotes(void **state)
{
	(void)state;
	EXPECT("\"x,y\",\"he said \"\"hi\"\"\",z\n", "[\"x,y][\"he said \"hi\"][z]\n");
	EXPECT("\"\",\"\"\"\"\n", "[\"][\"\"]\n");
	EXPECT("\"a\"", "[\"a]\n");
	EXPECT("\"line1\nline2\",b\n", "[\"line1\nline2][b]\n");
	EXPECT("\"cr\r\nlf\",b\r\n", "[\"cr\r\nlf][b]\n");
	EXPECT("\"a\"\r\n", "[\"a]\n");
	EXPECT("\"\"\n", "[\"]\n");
	/* Line numbers count the breaks inside quotes. */
	collected c;
	static const char in[] = "h\n\"1\n2\n3\"\nnext\n";
	assert_int_equal(parse(in, sizeof(in) - 1, 0, NULL, &c, NULL, 0), CF_OK);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.lines[0], 1);
	assert_int_equal(c.lines[1], 2);
	assert_int_equal(c.lines[2], 5);
	cf_buf_free(&c.out);
}

static void test_reader_bom(void **state)
{
	(void)state;
	EXPECT("\xef\xbb\xbf" "a,b\n", "[a][b]\n");
	EXPECT("\xef\xbb\xbf", "");
	EXPECT("\xef\xbb\xbf\"q\"", "[\"q]\n");
	/* Only at the start: later it is data (valid UTF-8: U+FEFF). */
	EXPECT("a\n\xef\xbb\xbf" "b\n", "[a]\n[\xef\xbb\xbf" "b]\n");
	/* A partial BOM is data, and not UTF-8. */
	EXPECT_FAIL("\xef\xbb" "a\n", CF_ERR_PARSE, "not UTF-8");
	EXPECT_FAIL("\xef", CF_ERR_PARSE, "not UTF-8");
}

static void test_reader_hostile(void **state)
{
	(void)state;
	EXPECT_FAIL("a\n\"abc", CF_ERR_PARSE, "line 2: the quote opened on line 2 is never closed");
	EXPECT_FAIL("\"abc\nd\ne", CF_ERR_PARSE, "opened on line 1 is never closed");
	EXPECT_FAIL("ab\"c\n", CF_ERR_PARSE, "a quote inside unquoted field 1");
	EXPECT_FAIL("x,\"ab\"c\n", CF_ERR_PARSE, "text after the closing quote of field 2");
	EXPECT_FAIL("\"ab\" ,c\n", CF_ERR_PARSE, "text after the closing quote");
	EXPECT_FAIL("a\0b\n", CF_ERR_PARSE, "a NUL byte");
	EXPECT_FAIL("\"a\0b\"\n", CF_ERR_PARSE, "a NUL byte");
	EXPECT_FAIL("a,b\rc,d\r", CF_ERR_PARSE, "CR-only");
	EXPECT_FAIL("a\r", CF_ERR_PARSE, "CR-only");
	EXPECT_FAIL("a\r\r\n", CF_ERR_PARSE, "CR-only");
	EXPECT_FAIL("\xff\n", CF_ERR_PARSE, "field 1 is not UTF-8");
	EXPECT_FAIL("a,\xc0\xaf\n", CF_ERR_PARSE, "field 2 is not UTF-8");     /* overlong '/' */
	EXPECT_FAIL("\xed\xa0\x80\n", CF_ERR_PARSE, "not UTF-8");              /* surrogate */
	EXPECT_FAIL("\xf4\x90\x80\x80\n", CF_ERR_PARSE, "not UTF-8");          /* > U+10FFFF */
	EXPECT_FAIL("\xe2\x82\n", CF_ERR_PARSE, "not UTF-8");                  /* truncated */
	EXPECT_FAIL("ok\n\"\xe2\x82\"\n", CF_ERR_PARSE, "line 2: field 1 is not UTF-8");
	EXPECT("\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x80\n", "[\xc3\xa9][\xe2\x82\xac][\xf0\x9f\x98\x80]\n");
}

static void test_reader_limits(void **state)
{
	(void)state;
	cf_csv_limits lim = { .max_field = 8, .max_record = 20, .max_columns = 3, .max_rows = 10 };
	collected c;
	char why[200];
	assert_int_equal(parse("12345678,b\n", 11, 0, &lim, &c, why, sizeof(why)), CF_OK);
	cf_buf_free(&c.out);
	for (size_t step = 0; step < 12; step++) {
		assert_int_equal(parse("123456789,b\n", 12, step, &lim, &c, why, sizeof(why)),
				 CF_ERR_TOO_BIG);
		assert_non_null(strstr(why, "line 1: field 1 is longer than 8 bytes"));
		cf_buf_free(&c.out);
	}
	assert_int_equal(parse("a\n\"12345\n6789\"\n", 16, 1, &lim, &c, why, sizeof(why)),
			 CF_ERR_TOO_BIG);
	cf_buf_free(&c.out);
	assert_int_equal(parse("a,b,c,d\n", 8, 0, &lim, &c, why, sizeof(why)), CF_ERR_TOO_BIG);
	assert_non_null(strstr(why, "more than 3 fields"));
	cf_buf_free(&c.out);
	assert_int_equal(parse("a,b,c\n", 6, 0, &lim, &c, why, sizeof(why)), CF_OK);
	cf_buf_free(&c.out);
	assert_int_equal(parse("12345678,12345678,123456\n", 25, 0, &lim, &c, why, sizeof(why)),
			 CF_ERR_TOO_BIG);
	assert_non_null(strstr(why, "the record is longer than 20 bytes"));
	cf_buf_free(&c.out);
	/* A huge field with the default limit: 1 MiB + 1 refused, inside quotes too. */
	size_t big = CF_CSV_DEFAULT_MAX_FIELD + 1;
	char *huge = malloc(big + 3);
	assert_non_null(huge);
	huge[0] = '"';
	memset(huge + 1, 'x', big);
	huge[big + 1] = '"';
	huge[big + 2] = '\n';
	assert_int_equal(parse(huge, big + 3, 4096, NULL, &c, why, sizeof(why)), CF_ERR_TOO_BIG);
	cf_buf_free(&c.out);
	free(huge);
}

static cf_err stop_at_two(void *arg, const cf_csv_field *f, size_t n, uint64_t record,
			  uint64_t line)
{
	(void)arg;
	(void)f;
	(void)n;
	(void)line;
	return record == 2 ? CF_ERR_AUTH : CF_OK;
}

static void test_reader_sticky_failure(void **state)
{
	(void)state;
	cf_csv_reader *r = NULL;
	assert_int_equal(cf_csv_reader_new(NULL, stop_at_two, NULL, &r), CF_OK);
	assert_int_equal(cf_csv_reader_feed(r, (const uint8_t *)"a\nb\nc\n", 6), CF_ERR_AUTH);
	assert_int_equal(cf_csv_reader_feed(r, (const uint8_t *)"d\n", 2), CF_ERR_AUTH);
	assert_int_equal(cf_csv_reader_finish(r), CF_ERR_AUTH);
	cf_csv_reader_free(r);
	assert_int_equal(cf_csv_reader_new(NULL, stop_at_two, NULL, &r), CF_OK);
	assert_int_equal(cf_csv_reader_finish(r), CF_OK);
	assert_int_equal(cf_csv_reader_finish(r), CF_ERR_ARG);
	assert_int_equal(cf_csv_reader_feed(r, (const uint8_t *)"x", 1), CF_ERR_ARG);
	cf_csv_reader_free(r);
	cf_csv_limits bad = { 0 };
	assert_int_equal(cf_csv_reader_new(&bad, stop_at_two, NULL, &r), CF_ERR_ARG);
	assert_int_equal(cf_csv_reader_new(NULL, NULL, NULL, &r), CF_ERR_ARG);
	cf_csv_reader_free(NULL);
}

/*
 * --- the reader, differentially ---
 *
 * The reader has two paths: records of plain bytes that lie whole in one
 * write are handed over in place, anything else goes through the byte by
 * byte state machine, which copies. Random documents (fixed seeds) are
 * read at once (mostly in place), a byte per write (never in place but
 * for empty lines) and in random pieces; the three must say exactly the
 * same: each record's number, line and fields, and the end (the return
 * code and the error text). Valid documents are also checked against
 * what the generator meant, and their exact limits must pass while one
 * less must fail.
 */

/* splitmix64: every document comes from a fixed seed, so a failure replays. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
	return (size_t)(rnd(s) % n);
}

static void put(cf_buf *b, const void *p, size_t n)
{
	assert_int_equal(cf_buf_append(b, p, n), CF_OK);
}

#define PUT(b, lit) put(b, lit, sizeof(lit) - 1)

/* Everything the reader says of a document, as text. */
typedef struct trace {
	cf_buf out;
	uintptr_t lo, hi;  /* the input: fields pointing into it were handed over in place */
	size_t in_place;   /* non-empty fields handed over in place */
	size_t copied;     /* and from the reader's copy */
} trace;

static cf_err trace_record(void *arg, const cf_csv_field *f, size_t n, uint64_t record,
			   uint64_t line)
{
	trace *t = arg;
	assert_int_equal(cf_buf_printf(&t->out, "record %llu line %llu fields %zu\n",
				       (unsigned long long)record, (unsigned long long)line, n),
			 CF_OK);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(cf_buf_printf(&t->out, " %c%zu:", f[i].quoted ? 'q' : 'u',
					       f[i].len), CF_OK);
		put(&t->out, f[i].data, f[i].len);
		PUT(&t->out, "\n");
		uintptr_t a = (uintptr_t)f[i].data;
		if (f[i].len && a >= t->lo && a + f[i].len <= t->hi)
			t->in_place++;
		else if (f[i].len)
			t->copied++;
	}
	return CF_OK;
}

/* How a document is written to the reader; STEPS: in pieces of `seed` bytes. */
enum { AT_ONCE, BYTEWISE, PIECES, STEPS };

static void run(const cf_buf *doc, const cf_csv_limits *lim, int mode, uint64_t seed, trace *t)
{
	cf_csv_reader *r = NULL;
	const uint8_t *p = doc->data;
	size_t len = doc->len, off = 0;
	cf_err rc = CF_OK;
	memset(t, 0, sizeof(*t));
	cf_buf_init(&t->out, 1u << 26, false);
	t->lo = (uintptr_t)p;
	t->hi = t->lo + len;
	assert_int_equal(cf_csv_reader_new(lim, trace_record, t, &r), CF_OK);
	while (rc == CF_OK && off < len) {
		size_t k = len - off;
		if (mode == BYTEWISE)
			k = 1;
		else if (mode == PIECES)
			k = 1 + below(&seed, below(&seed, 4) ? 24 : 400);
		else if (mode == STEPS)
			k = (size_t)seed;
		if (k > len - off)
			k = len - off;
		rc = cf_csv_reader_feed(r, p + off, k);
		off += k;
	}
	if (rc == CF_OK)
		rc = cf_csv_reader_finish(r);
	assert_int_equal(cf_buf_printf(&t->out, "end %d: %s\n", (int)rc, cf_csv_reader_error(r)),
			 CF_OK);
	cf_csv_reader_free(r);
}

typedef struct doc {
	cf_buf text;        /* the CSV */
	cf_buf want;        /* what trace_record must say of it, unless broken */
	size_t max_field;   /* the largest field, record (field bytes) and column count in it */
	size_t max_record;
	size_t max_columns;
	bool broken;        /* hazards put in: only the reads are compared */
} doc;

/* Non-ASCII pieces; U+FEFF only in quotes (at the start it would be a BOM). */
static const char *const utf8_pieces[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
					   "\xef\xbb\xbf" };

static void gen_unquoted(uint64_t *s, cf_buf *v, bool ascii)
{
	static const char chars[] = "0123456789012345678901234567890123456789-.eE abcxyz";
	size_t n = below(s, 5) == 0 ? 0 : 1 + below(s, below(s, 8) ? 9 : 40);
	for (size_t i = 0; i < n; i++) {
		if (!ascii && below(s, 4) == 0) {
			const char *u = utf8_pieces[below(s, 3)];
			put(v, u, strlen(u));
		} else {
			put(v, &chars[below(s, sizeof(chars) - 1)], 1);
		}
	}
}

static void gen_quoted(uint64_t *s, cf_buf *text, cf_buf *v, uint64_t *line)
{
	size_t n = below(s, 7);
	PUT(text, "\"");
	for (size_t i = 0; i < n; i++) {
		switch (below(s, 8)) {
		case 0:
			PUT(text, ",");
			PUT(v, ",");
			break;
		case 1:
			PUT(text, "\n");
			PUT(v, "\n");
			++*line;
			break;
		case 2:
			PUT(text, "\r\n");
			PUT(v, "\r\n");
			++*line;
			break;
		case 3:
			PUT(text, "\"\"");
			PUT(v, "\"");
			break;
		case 4: {
			const char *u = utf8_pieces[below(s, 4)];
			put(text, u, strlen(u));
			put(v, u, strlen(u));
			break;
		}
		default: {
			cf_buf plain;
			cf_buf_init(&plain, 1024, false);
			gen_unquoted(s, &plain, true);
			put(text, plain.data, plain.len);
			put(v, plain.data, plain.len);
			cf_buf_free(&plain);
			break;
		}
		}
	}
	PUT(text, "\"");
}

/* Puts bytes at a random place in the text. */
static void insert(uint64_t *s, cf_buf *text, const void *p, size_t n)
{
	cf_buf out;
	size_t at = below(s, text->len + 1);
	cf_buf_init(&out, text->max, false);
	if (at)
		put(&out, text->data, at);
	put(&out, p, n);
	if (text->len > at)
		put(&out, text->data + at, text->len - at);
	cf_buf_free(text);
	*text = out;
}

static void gen_doc(uint64_t *s, doc *d)
{
	uint64_t line = 1;
	cf_buf v;
	memset(d, 0, sizeof(*d));
	cf_buf_init(&d->text, 1u << 24, false);
	cf_buf_init(&d->want, 1u << 24, false);
	cf_buf_init(&v, 1u << 20, false);
	if (below(s, 8) == 0)
		PUT(&d->text, "\xef\xbb\xbf");
	size_t nrec = below(s, 6) == 0 ? below(s, 300) : below(s, 12);
	for (size_t k = 0; k < nrec; k++) {
		/* 0: an empty line; 1-5: plain (numbers); 6-7: some quoted; 8-9: some UTF-8. */
		size_t kind = below(s, 10), total = 0;
		size_t nf = kind == 0 ? 1 : 1 + below(s, below(s, 8) ? 6 : 45);
		uint64_t first = line;
		bool empty = false;
		cf_buf fields;
		cf_buf_init(&fields, 1u << 20, false);
		for (size_t i = 0; i < nf; i++) {
			bool quoted = kind >= 6 && kind <= 7 && below(s, 3) == 0;
			cf_buf_reset(&v);
			if (i)
				PUT(&d->text, ",");
			if (quoted) {
				gen_quoted(s, &d->text, &v, &line);
			} else {
				if (kind != 0)
					gen_unquoted(s, &v, kind < 8 || below(s, 2));
				if (v.len)
					put(&d->text, v.data, v.len);
			}
			empty = nf == 1 && !quoted && v.len == 0;
			assert_int_equal(cf_buf_printf(&fields, " %c%zu:", quoted ? 'q' : 'u', v.len),
					 CF_OK);
			if (v.len)
				put(&fields, v.data, v.len);
			PUT(&fields, "\n");
			total += v.len;
			if (v.len > d->max_field)
				d->max_field = v.len;
		}
		/* The last line break is optional, but for an empty line: it would be no record. */
		if (k + 1 < nrec || below(s, 2) || empty) {
			if (below(s, 3) == 0)
				PUT(&d->text, "\r\n");
			else
				PUT(&d->text, "\n");
			line++;
		}
		assert_int_equal(cf_buf_printf(&d->want, "record %zu line %llu fields %zu\n", k + 1,
					       (unsigned long long)first, nf), CF_OK);
		if (fields.len)
			put(&d->want, fields.data, fields.len);
		cf_buf_free(&fields);
		if (total > d->max_record)
			d->max_record = total;
		if (nf > d->max_columns)
			d->max_columns = nf;
	}
	PUT(&d->want, "end 0: \n");
	cf_buf_free(&v);
	/* A third of the documents get hazards: each read must fail (or not) the same way. */
	if (below(s, 3) == 0) {
		static const char *const hazards[] = { "\r", "\"", "x", "\xff", "\xe2\x82",
						       "\xed\xa0\x80", "\xc0\xaf", "\n", ",", "\"x" };
		size_t nh = 1 + below(s, 3);
		d->broken = true;
		for (size_t i = 0; i < nh; i++) {
			size_t h = below(s, 12);
			if (h == 10)
				insert(s, &d->text, "", 1); /* NUL */
			else if (h == 11 && d->text.len)
				d->text.len = below(s, d->text.len); /* cut short */
			else if (h < 10)
				insert(s, &d->text, hazards[h], strlen(hazards[h]));
		}
	}
}

static void same(const trace *a, const trace *b, uint64_t seed, size_t lim, int mode)
{
	if (a->out.len == b->out.len && memcmp(a->out.data, b->out.data, a->out.len) == 0)
		return;
	fail_msg("document %llu, limits %zu, read %d:\n--- want\n%.*s--- got\n%.*s",
		 (unsigned long long)seed, lim, mode, (int)a->out.len, (const char *)a->out.data,
		 (int)b->out.len, (const char *)b->out.data);
}

static void test_reader_differential(void **state)
{
	(void)state;
	size_t in_place = 0, copied = 0, over = 0;
	for (uint64_t seed = 1; seed <= 3000; seed++) {
		uint64_t s = seed;
		doc d;
		gen_doc(&s, &d);
		/* The defaults; the document's own maxima; one of them less one; tiny ones. */
		cf_csv_limits lims[4];
		cf_csv_limits_default(&lims[0]);
		lims[1] = lims[0];
		lims[1].max_field = d.max_field ? d.max_field : 1;
		lims[1].max_record = d.max_record ? d.max_record : 1;
		lims[1].max_columns = d.max_columns ? d.max_columns : 1;
		lims[2] = lims[1];
		size_t which = below(&s, 3);
		bool less = (which == 0 && lims[2].max_field > 1) ||
			    (which == 1 && lims[2].max_record > 1) ||
			    (which == 2 && lims[2].max_columns > 1);
		if (less) {
			if (which == 0)
				lims[2].max_field--;
			else if (which == 1)
				lims[2].max_record--;
			else
				lims[2].max_columns--;
		}
		lims[3] = lims[0];
		lims[3].max_field = 1 + below(&s, 16);
		lims[3].max_record = 1 + below(&s, 48);
		lims[3].max_columns = 1 + below(&s, 8);
		for (size_t l = 0; l < 4; l++) {
			trace t[4];
			run(&d.text, &lims[l], AT_ONCE, 0, &t[0]);
			run(&d.text, &lims[l], BYTEWISE, 0, &t[1]);
			run(&d.text, &lims[l], PIECES, seed, &t[2]);
			run(&d.text, &lims[l], PIECES, ~seed, &t[3]);
			for (int m = 1; m < 4; m++)
				same(&t[0], &t[m], seed, l, m);
			if (!d.broken && l < 2)
				same(&(trace){ .out = d.want }, &t[0], seed, l, AT_ONCE);
			if (!d.broken && l == 2 && less) {
				char end[64];
				snprintf(end, sizeof(end), "end %d: line ", (int)CF_ERR_TOO_BIG);
				if (!memmem(t[0].out.data, t[0].out.len, end, strlen(end)))
					fail_msg("document %llu: one under its maxima passes",
						 (unsigned long long)seed);
				over++;
			}
			/* Byte by byte, only an empty line ever ends within one write. */
			assert_int_equal(t[1].in_place, 0);
			in_place += t[0].in_place;
			copied += t[0].copied;
			for (int m = 0; m < 4; m++)
				cf_buf_free(&t[m].out);
		}
		cf_buf_free(&d.text);
		cf_buf_free(&d.want);
	}
	/* Both paths ran, and the limits were crossed. */
	assert_true(in_place > 1000);
	assert_true(copied > 1000);
	assert_true(over > 500);
}

/* Which records are handed over in place: only plain ones that end within a write. */
static void test_reader_in_place(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t step;
		size_t in_place, copied;
	} cases[] = {
		{ "a,b\n1,22\r\n\n,x\n", 0, 5, 0 },
		{ "a,b\n1,22\r\n\n,x\n", 1, 0, 5 },
		{ "a,b\n1,22\r\n\n,x\n", 5, 3, 2 },   /* "a,b\n1" ",22\r\n" "\n,x\n" */
		{ "a,\"q\"\nb,c\n", 0, 2, 2 },         /* a quote: that record is copied */
		{ "\xc3\xa9\nb,c\r\n", 0, 2, 1 },      /* non-ASCII */
		{ "c\na\rb\n", 0, 1, 0 },              /* a bare CR: refused in the copy */
		{ "a\nb", 0, 1, 1 },                   /* no last line break: read at the end */
		{ "\xef\xbb\xbf" "a,b\n", 0, 2, 0 },   /* after a BOM */
		{ "d\nab\"c\ne\n", 0, 1, 0 },          /* refused in the copy, nothing after */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cf_buf in;
		trace t;
		cf_buf_init(&in, 1024, false);
		put(&in, cases[i].in, strlen(cases[i].in));
		run(&in, NULL, cases[i].step ? STEPS : AT_ONCE, cases[i].step, &t);
		if (t.in_place != cases[i].in_place || t.copied != cases[i].copied)
			fail_msg("case %zu: %zu in place, %zu copied:\n%.*s", i, t.in_place, t.copied,
				 (int)t.out.len, (const char *)t.out.data);
		cf_buf_free(&t.out);
		cf_buf_free(&in);
	}
}

/* --- values and names --- */

static void test_grammars(void **state)
{
	(void)state;
	static const char *const ints[] = { "0", "1", "-1", "42", "9223372036854775807",
					    "-9223372036854775808" };
	static const char *const not_ints[] = { "", "-", "+1", "007", "-0", "00", "1.0", "1e3",
						" 1", "1 ", "9223372036854775808",
						"-9223372036854775809", "12345678901234567890",
						"0x10", "1_000", "\xd9\xa1" };
	static const char *const reals[] = { "0.5", "-0.5", "1.25", "1e3", "1E-3", "-2.5e+10",
					     "0.0", "-0.0", "123456789012345678901.5" };
	static const char *const not_reals[] = { "1", "-7", ".5", "5.", "1e", "1e+", "inf", "nan",
						 "Infinity", "1e999", "-1e400", "00.5", "1.5x", "",
						 "0x1p3", "1,5", " 1.5" };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		assert_true(cf_csv_is_integer(ints[i], strlen(ints[i])));
	for (size_t i = 0; i < sizeof(not_ints) / sizeof(not_ints[0]); i++) {
		if (cf_csv_is_integer(not_ints[i], strlen(not_ints[i])))
			fail_msg("\"%s\" is not an integer", not_ints[i]);
	}
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
		assert_true(cf_csv_is_real(reals[i], strlen(reals[i])));
	for (size_t i = 0; i < sizeof(not_reals) / sizeof(not_reals[0]); i++) {
		if (cf_csv_is_real(not_reals[i], strlen(not_reals[i])))
			fail_msg("\"%s\" is not a real", not_reals[i]);
	}
	/* A long decimal. */
	char longnum[400];
	memset(longnum, '9', sizeof(longnum));
	longnum[1] = '.';
	assert_true(cf_csv_is_real(longnum, 200));
	/* With an exponent it goes through the heap path of the finiteness check. */
	longnum[197] = 'e';
	assert_true(cf_csv_is_real(longnum, 200));
	longnum[197] = '9';
	/* Without one, 308 integer digits are finite without strtod; 309 are not. */
	memset(longnum, '9', sizeof(longnum));
	longnum[308] = '.';
	assert_true(cf_csv_is_real(longnum, 310));
	memset(longnum, '9', sizeof(longnum));
	longnum[309] = '.';
	assert_false(cf_csv_is_real(longnum, 311));
	/* 309 digits ask strtod: 1e308 is finite, 2e308 is not. */
	longnum[0] = '1';
	memset(longnum + 1, '0', 308);
	assert_true(cf_csv_is_real(longnum, 311));
	longnum[0] = '2';
	assert_false(cf_csv_is_real(longnum, 311));

	assert_true(cf_csv_valid_table("t"));
	assert_true(cf_csv_valid_table("Sales_2024"));
	assert_true(cf_csv_valid_table("_x"));
	assert_false(cf_csv_valid_table(""));
	assert_false(cf_csv_valid_table(NULL));
	assert_false(cf_csv_valid_table("1t"));
	assert_false(cf_csv_valid_table("a-b"));
	assert_false(cf_csv_valid_table("a b"));
	assert_false(cf_csv_valid_table("sqlite_master"));
	assert_false(cf_csv_valid_table("SQLITE_x"));
	assert_false(cf_csv_valid_table("__coffer_stage"));
	assert_false(cf_csv_valid_table("t\"x"));
	char long_name[70];
	memset(long_name, 'a', sizeof(long_name));
	long_name[64] = '\0';
	assert_true(cf_csv_valid_table(long_name));
	long_name[64] = 'a';
	long_name[65] = '\0';
	assert_false(cf_csv_valid_table(long_name));

	static const char *const good_cols[] = { "a", "select", "a b", "x\"y", "\xc3\xbcn\xc3\xaf",
						 "1", "rowids", "Order" };
	static const char *const bad_cols[] = { "", " a", "a ", "a\tb", "rowid", "ROWID", "oid",
						"_rowid_", "__coffer_rows_0", "__COFFER", "a\x7f" };
	for (size_t i = 0; i < sizeof(good_cols) / sizeof(good_cols[0]); i++)
		assert_true(cf_csv_valid_column(good_cols[i], strlen(good_cols[i])));
	for (size_t i = 0; i < sizeof(bad_cols) / sizeof(bad_cols[0]); i++) {
		if (cf_csv_valid_column(bad_cols[i], strlen(bad_cols[i])))
			fail_msg("\"%s\" is not a usable column name", bad_cols[i]);
	}
	char wide[CF_CSV_MAX_NAME + 2];
	memset(wide, 'c', sizeof(wide));
	assert_true(cf_csv_valid_column(wide, CF_CSV_MAX_NAME));
	assert_false(cf_csv_valid_column(wide, CF_CSV_MAX_NAME + 1));
}

/* --- the loader --- */

static cf_sql *db_open(void)
{
	cf_sql *s = NULL;
	assert_int_equal(cf_sql_open(&s), CF_OK);
	return s;
}

/* Loads text as table; why gets the loader's message. */
static cf_err load(cf_sql *s, const char *table, const char *text, size_t len, size_t step,
		   const cf_csv_limits *lim, cf_csv_table *info, char *why, size_t whylen)
{
	cf_csv_load *l = NULL;
	cf_err rc = cf_csv_load_new(cf_sql_db(s), table, lim, &l);
	if (rc != CF_OK)
		return rc;
	cf_writer w = cf_csv_load_writer(l);
	size_t off = 0;
	while (rc == CF_OK && off < len) {
		size_t n = step && step < len - off ? step : len - off;
		rc = w.write(w.ctx, (const uint8_t *)text + off, n);
		off += n;
	}
	if (rc == CF_OK)
		rc = cf_csv_load_finish(l, info);
	if (why)
		snprintf(why, whylen, "%s", cf_csv_load_error(l));
	cf_csv_load_free(l);
	return rc;
}

#define LOAD(s, table, lit, info, why) load(s, table, lit, sizeof(lit) - 1, 0, NULL, info, why, sizeof(why))

/* The one value of a query, as text ("NULL" for NULL). */
static char *scalar(cf_sql *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(cf_sql_db(s), sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const unsigned char *v = sqlite3_column_text(st, 0);
	char *out = strdup(v ? (const char *)v : "NULL");
	sqlite3_finalize(st);
	assert_non_null(out);
	return out;
}

static void expect_scalar(cf_sql *s, const char *sql, const char *want)
{
	char *got = scalar(s, sql);
	if (strcmp(got, want) != 0)
		fail_msg("%s gave \"%s\", not \"%s\"", sql, got, want);
	free(got);
}

static void test_load_types(void **state)
{
	(void)state;
	cf_sql *s = db_open();
	cf_csv_table info;
	char why[200];
	static const char text[] =
		"i,r,t,e,mix,zip,big\r\n"
		"1,1.5,abc,,2,007,9223372036854775807\r\n"
		"-20,3,\"x, y\",,2.5,12345,1\r\n"
		"0,-0.25e3,,,q,00501,9223372036854775808\r\n";
	assert_int_equal(LOAD(s, "t", text, &info, why), CF_OK);
	assert_string_equal(info.name, "t");
	assert_int_equal(info.rows, 3);
	assert_int_equal(info.ncolumns, 7);
	static const cf_csv_type want[] = { CF_CSV_INTEGER, CF_CSV_REAL, CF_CSV_TEXT, CF_CSV_TEXT,
					    CF_CSV_TEXT, CF_CSV_TEXT, CF_CSV_TEXT };
	static const char *const names[] = { "i", "r", "t", "e", "mix", "zip", "big" };
	for (size_t i = 0; i < 7; i++) {
		assert_int_equal(info.types[i], want[i]);
		assert_string_equal(info.columns[i], names[i]);
	}
	cf_csv_table_free(&info);
	expect_scalar(s, "SELECT group_concat(typeof(i)) FROM t", "integer,integer,integer");
	expect_scalar(s, "SELECT group_concat(typeof(r)) FROM t", "real,real,real");
	expect_scalar(s, "SELECT sum(i) FROM t", "-19");
	expect_scalar(s, "SELECT r FROM t WHERE rowid = 2", "3.0");
	expect_scalar(s, "SELECT r FROM t WHERE rowid = 3", "-250.0");
	expect_scalar(s, "SELECT t FROM t WHERE rowid = 2", "x, y");
	/* Empty is NULL, in every type. */
	expect_scalar(s, "SELECT count(*) FROM t WHERE t IS NULL", "1");
	expect_scalar(s, "SELECT count(*) FROM t WHERE e IS NULL", "3");
	expect_scalar(s, "SELECT typeof(mix) FROM t WHERE rowid = 1", "text");
	expect_scalar(s, "SELECT zip FROM t WHERE rowid = 1", "007");
	expect_scalar(s, "SELECT big FROM t WHERE rowid = 3", "9223372036854775808");
	/* The declared types are what a query compares with. */
	expect_scalar(s, "SELECT count(*) FROM t WHERE i = '1'", "1");
	expect_scalar(s, "SELECT type FROM pragma_table_info('t') WHERE name = 'r'", "REAL");
	/* The staging table is gone. */
	expect_scalar(s, "SELECT count(*) FROM sqlite_master", "1");
	cf_sql_close(s);
}

static void test_load_values(void **state)
{
	(void)state;
	cf_sql *s = db_open();
	cf_csv_table info;
	char why[200];
	/* Integers bound as such, at both ends of the range; reals as CAST makes them. */
	static const char text[] =
		"i,r,n\n"
		"9223372036854775807,0.1,5\n"
		"-9223372036854775808,840.25,-3\n"
		"0,1e-3,\n"
		"-1,5,12\n"
		",1.7976931348623157e308,0\n";
	assert_int_equal(LOAD(s, "v", text, &info, why), CF_OK);
	assert_int_equal(info.rows, 5);
	assert_int_equal(info.types[0], CF_CSV_INTEGER);
	assert_int_equal(info.types[1], CF_CSV_REAL);
	assert_int_equal(info.types[2], CF_CSV_INTEGER);
	cf_csv_table_free(&info);
	expect_scalar(s, "SELECT i FROM v WHERE rowid = 1", "9223372036854775807");
	expect_scalar(s, "SELECT i FROM v WHERE rowid = 2", "-9223372036854775808");
	expect_scalar(s, "SELECT group_concat(coalesce(i, 'NULL')) FROM v",
		      "9223372036854775807,-9223372036854775808,0,-1,NULL");
	expect_scalar(s, "SELECT group_concat(typeof(r)) FROM v", "real,real,real,real,real");
	expect_scalar(s, "SELECT count(*) FROM v WHERE r = CAST('0.1' AS REAL) AND rowid = 1", "1");
	expect_scalar(s, "SELECT count(*) FROM v WHERE r = CAST('840.25' AS REAL) AND rowid = 2",
		      "1");
	expect_scalar(s, "SELECT count(*) FROM v WHERE r = CAST('1e-3' AS REAL) AND rowid = 3", "1");
	expect_scalar(s, "SELECT r FROM v WHERE rowid = 4", "5.0");
	expect_scalar(s, "SELECT count(*) FROM v WHERE r = CAST('1.7976931348623157e308' AS REAL)",
		      "1");
	expect_scalar(s, "SELECT sum(n) FROM v", "14");
	cf_sql_close(s);
}

static void test_load_header(void **state)
{
	(void)state;
	cf_sql *s = db_open();
	char why[200];
	cf_csv_table info;
	assert_int_equal(LOAD(s, "a", "x,X\n1,2\n", NULL, why), CF_ERR_PARSE);
	assert_string_equal(why, "line 1: columns 1 and 2 have the same name");
	assert_int_equal(LOAD(s, "a", "x,,y\n", NULL, why), CF_ERR_PARSE);
	assert_non_null(strstr(why, "line 1: column 2 has no usable name"));
	assert_int_equal(LOAD(s, "a", "x,rowid\n", NULL, why), CF_ERR_PARSE);
	assert_non_null(strstr(why, "column 2"));
	assert_int_equal(LOAD(s, "a", "__coffer_rows_0\n", NULL, why), CF_ERR_PARSE);
	assert_int_equal(LOAD(s, "a", " x\n", NULL, why), CF_ERR_PARSE);
	assert_int_equal(LOAD(s, "a", "", NULL, why), CF_ERR_PARSE);
	assert_string_equal(why, "the file is empty: no header row");
	assert_int_equal(LOAD(s, "a", "\xef\xbb\xbf", NULL, why), CF_ERR_PARSE);
	/* Nothing half-made stays behind a failed load. */
	expect_scalar(s, "SELECT count(*) FROM sqlite_master", "0");

	/* Odd names are fine: they are always quoted. */
	static const char odd[] = "\"select\",\"a b\",\"x\"\"y\",\xc3\xbcn\xc3\xaf,\"1\"\n1,2,3,4,5\n";
	assert_int_equal(LOAD(s, "odd", odd, &info, why), CF_OK);
	assert_string_equal(info.columns[2], "x\"y");
	cf_csv_table_free(&info);
	expect_scalar(s, "SELECT \"select\" + \"a b\" + \"x\"\"y\" + \"\xc3\xbcn\xc3\xaf\" + \"1\" "
		      "FROM odd", "15");
	/* A header alone: an empty table of TEXT columns. */
	assert_int_equal(LOAD(s, "empty", "p,q\r\n", &info, why), CF_OK);
	assert_int_equal(info.rows, 0);
	assert_int_equal(info.types[0], CF_CSV_TEXT);
	cf_csv_table_free(&info);
	expect_scalar(s, "SELECT count(*) FROM empty", "0");
	/* A table of that name exists already. */
	assert_int_equal(LOAD(s, "empty", "p\n", NULL, why), CF_ERR_PARSE);
	/* Bad table names never reach SQL. */
	cf_csv_load *l = NULL;
	assert_int_equal(cf_csv_load_new(cf_sql_db(s), "x\"; DROP TABLE odd; --", NULL, &l),
			 CF_ERR_ARG);
	assert_int_equal(cf_csv_load_new(cf_sql_db(s), "sqlite_x", NULL, &l), CF_ERR_ARG);
	assert_int_equal(cf_csv_load_new(NULL, "t", NULL, &l), CF_ERR_ARG);
	cf_sql_close(s);
}

static void test_load_rows(void **state)
{
	(void)state;
	cf_sql *s = db_open();
	char why[200];
	/* Ragged rows: the message says where, never what. */
	static const char ragged[] = "name,salary\nalice,10\nSECRETVALUE\n";
	assert_int_equal(LOAD(s, "r", ragged, NULL, why), CF_ERR_PARSE);
	assert_string_equal(why, "line 3 (record 3): 1 fields; the header has 2");
	static const char ragged2[] = "name,salary\n\"multi\nline\",1\nbob,2,SECRETVALUE\n";
	assert_int_equal(LOAD(s, "r", ragged2, NULL, why), CF_ERR_PARSE);
	assert_string_equal(why, "line 4 (record 3): 3 fields; the header has 2");
	/* A headerless file's first row is taken as names: never echoed either. */
	assert_int_equal(LOAD(s, "r", "SECRETVALUE,SECRETVALUE\n1,2\n", NULL, why), CF_ERR_PARSE);
	assert_null(strstr(why, "SECRET"));
	assert_int_equal(LOAD(s, "r", "a\nok\n\"SECRETVALUE\"x\n", NULL, why), CF_ERR_PARSE);
	assert_null(strstr(why, "SECRET"));
	assert_string_equal(why, "line 3: text after the closing quote of field 1");
	/* A blank line is a row of one NULL in a one-column table. */
	cf_csv_table info;
	assert_int_equal(LOAD(s, "one", "v\n1\n\n3\n", &info, why), CF_OK);
	assert_int_equal(info.rows, 3);
	assert_int_equal(info.types[0], CF_CSV_INTEGER);
	cf_csv_table_free(&info);
	expect_scalar(s, "SELECT count(v) || '/' || count(*) FROM one", "2/3");
	/* Row limit. */
	cf_csv_limits lim;
	cf_csv_limits_default(&lim);
	lim.max_rows = 2;
	assert_int_equal(load(s, "lim", "a\n1\n2\n", 6, 0, &lim, NULL, why, sizeof(why)), CF_OK);
	assert_int_equal(load(s, "lim2", "a\n1\n2\n3\n", 8, 0, &lim, NULL, why, sizeof(why)),
			 CF_ERR_TOO_BIG);
	assert_string_equal(why, "more than 2 rows");
	cf_sql_close(s);
}

static void test_load_batches(void **state)
{
	(void)state;
	cf_sql *s = db_open();
	cf_buf text;
	cf_csv_table info;
	char why[200];
	const size_t n = 25013; /* several batches and a partial one */
	cf_buf_init(&text, 8u << 20, true);
	assert_int_equal(cf_buf_append_str(&text, "id,val,label\n"), CF_OK);
	for (size_t i = 1; i <= n; i++)
		assert_int_equal(cf_buf_printf(&text, "%zu,%zu.5,\"row %zu\"\r\n", i, i % 7, i), CF_OK);
	assert_int_equal(load(s, "big", (const char *)text.data, text.len, 65536, NULL, &info, why,
			      sizeof(why)), CF_OK);
	assert_int_equal(info.rows, n);
	assert_int_equal(info.types[0], CF_CSV_INTEGER);
	assert_int_equal(info.types[1], CF_CSV_REAL);
	assert_int_equal(info.types[2], CF_CSV_TEXT);
	cf_csv_table_free(&info);
	expect_scalar(s, "SELECT count(*) FROM big", "25013");
	expect_scalar(s, "SELECT sum(id) FROM big", "312837591");
	/* Input order is row order. */
	expect_scalar(s, "SELECT count(*) FROM big WHERE id <> rowid", "0");
	expect_scalar(s, "SELECT label FROM big WHERE rowid = 25013", "row 25013");
	expect_scalar(s, "SELECT count(*) FROM sqlite_master", "1");
	cf_buf_free(&text);
	cf_sql_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_basic),
		cmocka_unit_test(test_reader_quotes),
		cmocka_unit_test(test_reader_bom),
		cmocka_unit_test(test_reader_hostile),
		cmocka_unit_test(test_reader_limits),
		cmocka_unit_test(test_reader_sticky_failure),
		cmocka_unit_test(test_reader_differential),
		cmocka_unit_test(test_reader_in_place),
		cmocka_unit_test(test_grammars),
		cmocka_unit_test(test_load_types),
		cmocka_unit_test(test_load_values),
		cmocka_unit_test(test_load_header),
		cmocka_unit_test(test_load_rows),
		cmocka_unit_test(test_load_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
