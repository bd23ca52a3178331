/*
 * Unit tests for lib/age/armor.c: the ASCII armor writer and the strict
 * armor reader, as stream adapters, with every rule of the format broken
 * once and reads of every granularity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/age.h"
#include "coffer/enc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define END "-----END AGE ENCRYPTED FILE-----"
/* 48 bytes (0..47) as one full line, and a short last line (bytes 0..2). */
#define LINE64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
#define SHORT "AAEC"

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		p[i] = (uint8_t)(seed >> 24);
	}
}

/* Armors data, writing it in pieces of `piece` bytes (0: all at once). */
static void armor(const uint8_t *data, size_t n, size_t piece, cf_buf *out)
{
	cf_buf_init(out, 1u << 24, false);
	cf_armor_writer *a = NULL;
	assert_int_equal(cf_armor_writer_new(cf_buf_writer(out), &a), CF_OK);
	cf_writer w = cf_armor_writer_as_writer(a);
	size_t off = 0;
	while (off < n) {
		size_t k = piece && n - off > piece ? piece : n - off;
		assert_int_equal(w.write(w.ctx, data + off, k), CF_OK);
		off += k;
	}
	assert_int_equal(cf_armor_writer_finish(a), CF_OK);
	cf_armor_writer_free(a);
}

/*
 * Decodes len bytes (from an exact-size heap copy) through the armor
 * reader: the source gives at most src_max bytes per read (0: no limit),
 * and we ask for read_size bytes at a time. Everything read goes to out.
 */
static cf_err dearmor(const void *text, size_t len, size_t src_max, size_t read_size, cf_buf *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, text, len);
	cf_mem_reader mr = { .data = copy, .len = len, .max_read = src_max };
	cf_armor_reader *a = NULL;
	assert_int_equal(cf_armor_reader_new(cf_mem_reader_of(&mr), &a), CF_OK);
	cf_reader r = cf_armor_reader_as_reader(a);
	uint8_t *buf = malloc(read_size);
	assert_non_null(buf);
	cf_buf_init(out, 1u << 24, false);
	cf_err rc;
	for (;;) {
		size_t got = 12345;
		rc = r.read(r.ctx, buf, read_size, &got);
		if (rc != CF_OK)
			break;
		assert_true(got <= read_size);
		if (got == 0)
			break;
		assert_int_equal(cf_buf_append(out, buf, got), CF_OK);
	}
	if (rc == CF_OK) {
		/* End of input stays the end. */
		size_t got = 1;
		assert_int_equal(r.read(r.ctx, buf, read_size, &got), CF_OK);
		assert_int_equal(got, 0);
	} else {
		/* A failure is sticky. */
		size_t got = 0;
		assert_int_not_equal(r.read(r.ctx, buf, read_size, &got), CF_OK);
	}
	free(buf);
	cf_armor_reader_free(a);
	free(copy);
	return rc;
}

static cf_err dearmor_str(const char *s)
{
	cf_buf out;
	cf_err rc = dearmor(s, strlen(s), 0, 4096, &out);
	cf_buf_free(&out);
	return rc;
}

static void expect_armor_error(const char *what, const char *s)
{
	static const size_t src_max[] = { 0, 1, 3 };
	static const size_t rsize[] = { 1, 4096 };
	for (size_t i = 0; i < ARRAY_LEN(src_max); i++) {
		for (size_t j = 0; j < ARRAY_LEN(rsize); j++) {
			cf_buf out;
			cf_err rc = dearmor(s, strlen(s), src_max[i], rsize[j], &out);
			cf_buf_free(&out);
			if (rc != CF_ERR_AGE_ARMOR)
				fail_msg("%s (src %zu, read %zu): got %s, want CF_ERR_AGE_ARMOR", what,
					 src_max[i], rsize[j], cf_errname(rc));
		}
	}
}

static void expect_decodes(const char *what, const char *s, const void *want, size_t want_len)
{
	cf_buf out;
	cf_err rc = dearmor(s, strlen(s), 0, 4096, &out);
	if (rc != CF_OK)
		fail_msg("%s: got %s, want CF_OK", what, cf_errname(rc));
	assert_int_equal(out.len, want_len);
	if (want_len)
		assert_memory_equal(out.data, want, want_len);
	cf_buf_free(&out);
}

/* Replaces every LF of s by CRLF. */
static char *to_crlf(const char *s, size_t len, size_t *outlen)
{
	char *o = malloc(2 * len + 1);
	assert_non_null(o);
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			o[k++] = '\r';
		o[k++] = s[i];
	}
	o[k] = 0;
	*outlen = k;
	return o;
}

/* --- round trips --- */

static const size_t sizes[] = { 0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 1000, 100000 };

static void test_round_trip(void **state)
{
	(void)state;
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		size_t n = sizes[si];
		uint8_t *data = malloc(n ? n : 1);
		assert_non_null(data);
		fill(data, n, (uint32_t)n);
		cf_buf text;
		armor(data, n, 0, &text);
		static const size_t rsize[] = { 1, 4096 };
		static const size_t src_max[] = { 0, 1, 7 };
		for (size_t r = 0; r < ARRAY_LEN(rsize); r++) {
			for (size_t m = 0; m < ARRAY_LEN(src_max); m++) {
				if (n > 1000 && src_max[m] == 1 && rsize[r] == 1)
					continue; /* slow and adds nothing */
				cf_buf out;
				cf_err rc = dearmor(text.data, text.len, src_max[m], rsize[r], &out);
				if (rc != CF_OK)
					fail_msg("size %zu read %zu src %zu: %s", n, rsize[r], src_max[m],
						 cf_errname(rc));
				assert_int_equal(out.len, n);
				if (n)
					assert_memory_equal(out.data, data, n);
				cf_buf_free(&out);
			}
		}
		/* CRLF line endings decode the same. */
		size_t clen;
		char *crlf = to_crlf((const char *)text.data, text.len, &clen);
		cf_buf out;
		assert_int_equal(dearmor(crlf, clen, 0, 4096, &out), CF_OK);
		assert_int_equal(out.len, n);
		if (n)
			assert_memory_equal(out.data, data, n);
		cf_buf_free(&out);
		free(crlf);
		cf_buf_free(&text);
		free(data);
	}
}

/* The writer's output does not depend on how the data is cut into writes. */
static void test_writer_pieces(void **state)
{
	(void)state;
	uint8_t data[1000];
	fill(data, sizeof(data), 99);
	cf_buf ref;
	armor(data, sizeof(data), 0, &ref);
	static const size_t pieces[] = { 1, 2, 47, 48, 49, 100, 999 };
	for (size_t i = 0; i < ARRAY_LEN(pieces); i++) {
		cf_buf t;
		armor(data, sizeof(data), pieces[i], &t);
		assert_int_equal(t.len, ref.len);
		assert_memory_equal(t.data, ref.data, ref.len);
		cf_buf_free(&t);
	}
	cf_buf_free(&ref);
	/* Empty writes change nothing. */
	cf_buf out;
	cf_buf_init(&out, 1u << 20, false);
	cf_armor_writer *a = NULL;
	assert_int_equal(cf_armor_writer_new(cf_buf_writer(&out), &a), CF_OK);
	cf_writer w = cf_armor_writer_as_writer(a);
	static const uint8_t three[] = { 0, 1, 2 };
	assert_int_equal(w.write(w.ctx, three, 0), CF_OK);
	assert_int_equal(w.write(w.ctx, three, 3), CF_OK);
	assert_int_equal(w.write(w.ctx, three + 3, 0), CF_OK);
	assert_int_equal(cf_armor_writer_finish(a), CF_OK);
	cf_armor_writer_free(a);
	static const char want[] = BEGIN "\n" SHORT "\n" END "\n";
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.data, want, out.len);
	cf_buf_free(&out);
}

/* The output is BEGIN, 64-column lines of padded base64 and a shorter last one, END. */
static void test_writer_format(void **state)
{
	(void)state;
	for (size_t si = 0; si < ARRAY_LEN(sizes); si++) {
		size_t n = sizes[si];
		uint8_t *data = malloc(n ? n : 1);
		assert_non_null(data);
		fill(data, n, 7);
		cf_buf text;
		armor(data, n, 0, &text);
		assert_non_null(text.data);
		assert_int_equal(text.data[text.len - 1], '\n');
		char *b64 = malloc(cf_b64_encoded_len(n, true) + 1);
		assert_non_null(b64);
		cf_b64_encode(data, n, true, b64);
		size_t b64_len = strlen(b64);

		const char *t = (const char *)text.data;
		size_t off = 0, lineno = 0, body_off = 0;
		size_t nlines = (n + 47) / 48;
		while (off < text.len) {
			const char *nl = memchr(t + off, '\n', text.len - off);
			assert_non_null(nl);
			size_t ll = (size_t)(nl - (t + off));
			assert_null(memchr(t + off, '\r', ll));
			if (lineno == 0) {
				assert_int_equal(ll, strlen(BEGIN));
				assert_memory_equal(t + off, BEGIN, ll);
			} else if (lineno == nlines + 1) {
				assert_int_equal(ll, strlen(END));
				assert_memory_equal(t + off, END, ll);
				assert_int_equal(off + ll + 1, text.len);
			} else {
				assert_true(lineno <= nlines);
				if (lineno < nlines)
					assert_int_equal(ll, 64);
				else
					assert_true(ll >= 4 && ll <= 64);
				assert_memory_equal(t + off, b64 + body_off, ll);
				body_off += ll;
			}
			off += ll + 1;
			lineno++;
		}
		assert_int_equal(lineno, nlines + 2);
		assert_int_equal(body_off, b64_len);
		free(b64);
		cf_buf_free(&text);
		free(data);
	}
}

/* --- what the reader tolerates --- */

static void test_whitespace_around(void **state)
{
	(void)state;
	static const uint8_t three[] = { 0, 1, 2 };
	expect_decodes("plain", BEGIN "\n" SHORT "\n" END "\n", three, 3);
	expect_decodes("no final newline", BEGIN "\n" SHORT "\n" END, three, 3);
	expect_decodes("leading", " \t\r\n\n  " BEGIN "\n" SHORT "\n" END "\n", three, 3);
	expect_decodes("trailing", BEGIN "\n" SHORT "\n" END "\n\n \t\r\n  ", three, 3);
	expect_decodes("both", "\n" BEGIN "\r\n" SHORT "\r\n" END "\r\n\r\n", three, 3);
}

static void test_whitespace_limit(void **state)
{
	(void)state;
	static const char body[] = BEGIN "\n" SHORT "\n" END "\n";
	static const size_t counts[] = { 1000, 1024, 1025, 2000, 100000 };
	for (size_t i = 0; i < ARRAY_LEN(counts); i++) {
		size_t n = counts[i];
		char *s = malloc(n + sizeof(body));
		assert_non_null(s);
		for (size_t k = 0; k < n; k++)
			s[k] = " \t\r\n"[k % 4];
		memcpy(s + n, body, sizeof(body));
		cf_buf out;
		cf_err rc = dearmor(s, strlen(s), 0, 4096, &out);
		cf_buf_free(&out);
		if (n <= 1024)
			assert_int_equal(rc, CF_OK);
		else
			assert_int_equal(rc, CF_ERR_AGE_ARMOR);
		free(s);
	}
	/* A lot of trailing whitespace is refused too. */
	size_t n = 5000;
	char *s = malloc(sizeof(body) + n);
	assert_non_null(s);
	memcpy(s, body, sizeof(body) - 1);
	memset(s + sizeof(body) - 1, ' ', n);
	s[sizeof(body) - 1 + n] = 0;
	assert_int_equal(dearmor_str(s), CF_ERR_AGE_ARMOR);
	free(s);
}

/* Decoding the mixed-endings case above, for real. */
static void test_mixed_line_endings(void **state)
{
	(void)state;
	uint8_t want[51];
	for (size_t i = 0; i < 48; i++)
		want[i] = (uint8_t)i;
	want[48] = 0;
	want[49] = 1;
	want[50] = 2;
	expect_decodes("mixed", BEGIN "\r\n" LINE64 "\n" SHORT "\r\n" END "\n", want, sizeof(want));
	/* A full last line is fine. */
	expect_decodes("full last", BEGIN "\n" LINE64 "\n" END "\n", want, 48);
	/* A padded short last line. */
	static const uint8_t one[] = { 0 };
	expect_decodes("padded last", BEGIN "\n" "AA==" "\n" END "\n", one, 1);
}

/* --- what the reader refuses --- */

static void test_rejects(void **state)
{
	(void)state;
	static const struct {
		const char *what, *text;
	} bad[] = {
		{ "empty input", "" },
		{ "whitespace only", " \n\t\r\n" },
		{ "garbage after END", BEGIN "\n" SHORT "\n" END "\nx" },
		{ "garbage after END, same line", BEGIN "\n" SHORT "\n" END "x\n" },
		{ "garbage after blank lines", BEGIN "\n" SHORT "\n" END "\n\n\n  garbage\n" },
		{ "second armor block", BEGIN "\n" SHORT "\n" END "\n" BEGIN "\n" SHORT "\n" END "\n" },
		{ "NUL after END", BEGIN "\n" SHORT "\n" END "\n\x01" },
		{ "empty line in body", BEGIN "\n" LINE64 "\n\n" SHORT "\n" END "\n" },
		{ "empty line after BEGIN", BEGIN "\n\n" SHORT "\n" END "\n" },
		{ "empty line before END", BEGIN "\n" SHORT "\n\n" END "\n" },
		{ "empty line after full line", BEGIN "\n" LINE64 "\n\n" END "\n" },
		{ "CRLF empty line after full line", BEGIN "\r\n" LINE64 "\r\n\r\n" END "\r\n" },
		{ "whitespace line in body", BEGIN "\n" LINE64 "\n \n" SHORT "\n" END "\n" },
		{ "short line not last", BEGIN "\n" SHORT "\n" LINE64 "\n" END "\n" },
		{ "two short lines", BEGIN "\n" SHORT "\n" SHORT "\n" END "\n" },
		{ "63 columns not last", BEGIN "\n" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4" "\n" LINE64 "\n" END "\n" },
		{ "65 columns", BEGIN "\n" LINE64 "A\n" END "\n" },
		{ "68 columns", BEGIN "\n" LINE64 "AAAA\n" END "\n" },
		{ "very long line", BEGIN "\n" LINE64 LINE64 LINE64 "\n" END "\n" },
		{ "trailing space on body line", BEGIN "\n" SHORT " \n" END "\n" },
		{ "leading space on body line", BEGIN "\n " SHORT "\n" END "\n" },
		{ "padding on a non-last line", BEGIN "\n" "AA==" "\n" SHORT "\n" END "\n" },
		{ "padded full line not last", BEGIN "\n" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==" "\n" SHORT "\n" END "\n" },
		{ "padding in the middle", BEGIN "\n" "AA==AAAA" "\n" END "\n" },
		{ "unpadded short line", BEGIN "\n" "AA" "\n" END "\n" },
		{ "unpadded short line 2", BEGIN "\n" "AAA" "\n" END "\n" },
		{ "non-canonical padding bits", BEGIN "\n" "AB==" "\n" END "\n" },
		{ "non-canonical padding bits 2", BEGIN "\n" "AAB=" "\n" END "\n" },
		{ "missing END", BEGIN "\n" SHORT "\n" },
		{ "missing END, no newline", BEGIN "\n" SHORT },
		{ "missing END, full line", BEGIN "\n" LINE64 "\n" },
		{ "only BEGIN", BEGIN "\n" },
		{ "only BEGIN, no newline", BEGIN },
		{ "truncated END", BEGIN "\n" SHORT "\n-----END AGE ENCRYPTED FILE----\n" },
		{ "END with trailing space", BEGIN "\n" SHORT "\n" END " \n" },
		{ "END with leading space", BEGIN "\n" SHORT "\n " END "\n" },
		{ "lower-case BEGIN", "-----begin age encrypted file-----\n" SHORT "\n" END "\n" },
		{ "lower-case END", BEGIN "\n" SHORT "\n-----end age encrypted file-----\n" },
		{ "wrong label", "-----BEGIN AGE ENCRYPTED FILES-----\n" SHORT "\n" END "\n" },
		{ "wrong label 2", "-----BEGIN PGP MESSAGE-----\n" SHORT "\n" END "\n" },
		{ "wrong END label", BEGIN "\n" SHORT "\n-----END PGP MESSAGE-----\n" },
		{ "BEGIN with trailing space", BEGIN " \n" SHORT "\n" END "\n" },
		{ "BEGIN with trailing tab", BEGIN "\t\n" SHORT "\n" END "\n" },
		{ "four-dash BEGIN", "----BEGIN AGE ENCRYPTED FILE-----\n" SHORT "\n" END "\n" },
		{ "BEGIN and data on one line", BEGIN SHORT "\n" END "\n" },
		{ "no BEGIN", SHORT "\n" END "\n" },
		{ "binary age file", "age-encryption.org/v1\n-> X25519 abc\n" },
		{ "invalid character", BEGIN "\n" "AA*A" "\n" END "\n" },
		{ "invalid character in full line", BEGIN "\n" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4." "\n" SHORT "\n" END "\n" },
		{ "URL-safe alphabet", BEGIN "\n" "AA-_" "\n" END "\n" },
		{ "high byte", BEGIN "\n" "AA\xc3\xa9" "\n" END "\n" },
		{ "DEL", BEGIN "\n" "AAA\x7f" "\n" END "\n" },
		{ "tab inside", BEGIN "\n" "AA\tA" "\n" END "\n" },
		{ "bare CR in body", BEGIN "\n" SHORT "\r" END "\n" },
		{ "bare CR after BEGIN", BEGIN "\r" SHORT "\n" END "\n" },
		{ "CR CR LF", BEGIN "\r\r\n" SHORT "\n" END "\n" },
		{ "CR at end of input", BEGIN "\n" SHORT "\n" END "\r" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		expect_armor_error(bad[i].what, bad[i].text);

	/* A NUL byte in a line (not expressible in the table above). */
	static const char nul[] = BEGIN "\nAA\0A\n" END "\n";
	cf_buf out;
	assert_int_equal(dearmor(nul, sizeof(nul) - 1, 0, 4096, &out), CF_ERR_AGE_ARMOR);
	cf_buf_free(&out);
	static const char nul_after[] = BEGIN "\nAAAA\n" END "\n\0";
	assert_int_equal(dearmor(nul_after, sizeof(nul_after) - 1, 0, 4096, &out), CF_ERR_AGE_ARMOR);
	cf_buf_free(&out);
}

/* Every proper prefix of a good armored file is refused (no END line). */
static void test_truncated(void **state)
{
	(void)state;
	uint8_t data[200];
	fill(data, sizeof(data), 5);
	cf_buf text;
	armor(data, sizeof(data), 0, &text);
	size_t end_at = text.len - strlen(END) - 1;
	for (size_t len = 0; len < text.len; len++) {
		cf_buf out;
		cf_err rc = dearmor(text.data, len, 0, 4096, &out);
		/* Only the cut of the final newline after END still decodes. */
		if (len == text.len - 1)
			assert_int_equal(rc, CF_OK);
		else if (rc != CF_ERR_AGE_ARMOR)
			fail_msg("prefix %zu of %zu (END at %zu): %s", len, text.len, end_at,
				 cf_errname(rc));
		/* Never more than the data, and only the data. */
		assert_true(out.len <= sizeof(data));
		if (out.len)
			assert_memory_equal(out.data, data, out.len);
		cf_buf_free(&out);
	}
	cf_buf_free(&text);
}

struct failing_src {
	const char *text;
	size_t len, off;
};

/* Serves text, then fails with CF_ERR_IO instead of reporting end of input. */
static cf_err failing_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	struct failing_src *f = ctx;
	if (f->off == f->len)
		return CF_ERR_IO;
	size_t n = f->len - f->off < cap ? f->len - f->off : cap;
	if (n > 5)
		n = 5;
	memcpy(buf, f->text + f->off, n);
	f->off += n;
	*got = n;
	return CF_OK;
}

/* An I/O error from the source is passed on as is, never turned into success or EOF. */
static void test_source_error(void **state)
{
	(void)state;
	static const char text[] = BEGIN "\n" LINE64 "\n" LINE64 "\n" SHORT "\n" END "\n";
	size_t full = sizeof(text) - 1;
	for (size_t len = 0; len <= full; len++) {
		struct failing_src f = { text, len, 0 };
		cf_armor_reader *a = NULL;
		assert_int_equal(cf_armor_reader_new((cf_reader){ failing_read, &f }, &a), CF_OK);
		cf_reader r = cf_armor_reader_as_reader(a);
		uint8_t buf[4096];
		size_t got = 0, total = 0;
		cf_err rc;
		while ((rc = r.read(r.ctx, buf, sizeof(buf), &got)) == CF_OK && got > 0)
			total += got;
		if (rc != CF_ERR_IO)
			fail_msg("source failing after %zu bytes: got %s, want CF_ERR_IO", len,
				 cf_errname(rc));
		assert_true(total <= 99);
		cf_armor_reader_free(a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_writer_pieces),
		cmocka_unit_test(test_writer_format),
		cmocka_unit_test(test_whitespace_around),
		cmocka_unit_test(test_whitespace_limit),
		cmocka_unit_test(test_mixed_line_endings),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_source_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
