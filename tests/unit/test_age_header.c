/*
 * Unit tests for lib/age/header.c: the strict age header parser and
 * encoder, against a real header (the CCTV "x25519" vector) and hostile
 * variants of it: every rule of the format broken once, every
 * truncation, too many stanzas, and the 48-byte body edge case.
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

#define VERSION "age-encryption.org/v1\n"
#define SHARE "TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc"
#define BODY32 "hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE"
#define MAC43 "WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg"
#define MACLINE "--- " MAC43 "\n"
/* 48 bytes of base64: exactly one full 64-column line. */
#define LINE64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"

/* The header of the CCTV "x25519" vector, read from the test data. */
static uint8_t *good;
static size_t good_len;
/* The whole vector body (header, nonce and payload). */
static uint8_t *file_body;
static size_t file_body_len;

static int load_vector(void **state)
{
	(void)state;
	const char *td = getenv("COFFER_TESTDATA");
	char path[4096];
	snprintf(path, sizeof(path), "%s/age/cctv/testdata/x25519", td ? td : "tests/data");
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	static uint8_t data[1 << 16];
	size_t len = fread(data, 1, sizeof(data), f);
	fclose(f);
	/* The vector's own metadata ends at the first blank line. */
	uint8_t *start = NULL;
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] == '\n' && data[i + 1] == '\n') {
			start = data + i + 2;
			break;
		}
	}
	if (!start)
		return -1;
	file_body_len = len - (size_t)(start - data);
	file_body = malloc(file_body_len);
	if (!file_body)
		return -1;
	memcpy(file_body, start, file_body_len);
	/* The header ends with the "--- " line. */
	uint8_t *mac = NULL;
	for (size_t i = 0; i + 4 <= file_body_len; i++) {
		if ((i == 0 || file_body[i - 1] == '\n') && memcmp(file_body + i, "--- ", 4) == 0) {
			mac = file_body + i;
			break;
		}
	}
	if (!mac)
		return -1;
	uint8_t *nl = memchr(mac, '\n', file_body_len - (size_t)(mac - file_body));
	if (!nl)
		return -1;
	good_len = (size_t)(nl + 1 - file_body);
	good = malloc(good_len);
	if (!good)
		return -1;
	memcpy(good, file_body, good_len);
	return 0;
}

static int free_vector(void **state)
{
	(void)state;
	free(good);
	free(file_body);
	return 0;
}

/* Parses exactly len bytes from a heap copy of that size (ASan sees any overread). */
static cf_err parse_exact(const void *data, size_t len, cf_age_header *h, size_t *consumed)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, data, len);
	cf_err rc = cf_age_header_parse(copy, len, h, consumed);
	free(copy);
	return rc;
}

static cf_err parse_str(const char *s)
{
	cf_age_header h;
	size_t consumed = 0;
	cf_err rc = parse_exact(s, strlen(s), &h, &consumed);
	if (rc == CF_OK)
		cf_age_header_free(&h);
	else
		assert_null(h.stanzas);
	return rc;
}

static void expect_header_error(const char *what, const char *s)
{
	cf_err rc = parse_str(s);
	if (rc != CF_ERR_AGE_HEADER)
		fail_msg("%s: got %s, want CF_ERR_AGE_HEADER", what, cf_errname(rc));
}

static void expect_ok(const char *what, const char *s)
{
	cf_err rc = parse_str(s);
	if (rc != CF_OK)
		fail_msg("%s: got %s, want CF_OK", what, cf_errname(rc));
}

/* Parses s, then checks that encoding gives back exactly s. */
static void expect_round_trip(const char *s)
{
	cf_age_header h;
	size_t consumed = 0;
	size_t len = strlen(s);
	assert_int_equal(parse_exact(s, len, &h, &consumed), CF_OK);
	assert_int_equal(consumed, len);
	cf_buf out;
	cf_buf_init(&out, 1u << 22, false);
	assert_int_equal(cf_age_header_encode(&h, true, &out), CF_OK);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, s, len);
	cf_buf_free(&out);
	cf_age_header_free(&h);
}

/* --- a real header --- */

static void test_parse_known_good(void **state)
{
	(void)state;
	/* Sanity: the vector's header is what we expect it to be. */
	static const char expected[] = VERSION "-> X25519 " SHARE "\n" BODY32 "\n" MACLINE;
	assert_int_equal(good_len, strlen(expected));
	assert_memory_equal(good, expected, good_len);

	cf_age_header h;
	size_t consumed = 0;
	assert_int_equal(parse_exact(good, good_len, &h, &consumed), CF_OK);
	assert_int_equal(consumed, good_len);
	assert_int_equal(h.nstanzas, 1);
	assert_int_equal(h.stanzas[0].nargs, 2);
	assert_string_equal(h.stanzas[0].args[0], "X25519");
	assert_string_equal(h.stanzas[0].args[1], SHARE);
	assert_int_equal(h.stanzas[0].bodylen, 32);
	uint8_t body[32], mac[32];
	size_t n = 0;
	assert_int_equal(cf_b64_decode(BODY32, strlen(BODY32), false, body, 32, &n), CF_OK);
	assert_memory_equal(h.stanzas[0].body, body, 32);
	assert_int_equal(cf_b64_decode(MAC43, strlen(MAC43), false, mac, 32, &n), CF_OK);
	assert_memory_equal(h.mac, mac, 32);
	/* The MAC covers everything up to and including "---", not the space. */
	assert_int_equal(h.mac_input_len, good_len - 1 - 43 - 1);
	assert_memory_equal(good + h.mac_input_len - 3, "---", 3);

	/* Re-encoding gives the input back, with and without the MAC. */
	cf_buf out;
	cf_buf_init(&out, 1u << 20, false);
	assert_int_equal(cf_age_header_encode(&h, true, &out), CF_OK);
	assert_int_equal(out.len, good_len);
	assert_memory_equal(out.data, good, good_len);
	cf_buf_reset(&out);
	assert_int_equal(cf_age_header_encode(&h, false, &out), CF_OK);
	assert_int_equal(out.len, h.mac_input_len);
	assert_memory_equal(out.data, good, h.mac_input_len);
	cf_buf_free(&out);
	cf_age_header_free(&h);
	/* Freeing twice is harmless. */
	cf_age_header_free(&h);

	/* The payload that follows is not consumed. */
	assert_int_equal(parse_exact(file_body, file_body_len, &h, &consumed), CF_OK);
	assert_int_equal(consumed, good_len);
	assert_int_equal(h.nstanzas, 1);
	cf_age_header_free(&h);
}

static void test_truncated_everywhere(void **state)
{
	(void)state;
	for (size_t len = 0; len < good_len; len++) {
		cf_age_header h;
		size_t consumed = 777;
		cf_err rc = parse_exact(good, len, &h, &consumed);
		if (rc != CF_ERR_TRUNCATED && rc != CF_ERR_AGE_HEADER)
			fail_msg("truncated at %zu of %zu: %s", len, good_len, cf_errname(rc));
		assert_null(h.stanzas);
		assert_int_equal(consumed, 777);
	}
	/* A richer header: several stanzas, multi-line and empty bodies. */
	static const char rich[] = VERSION "-> X25519 " SHARE "\n" BODY32 "\n"
					   "-> grease a b c\n" LINE64 "\n" LINE64 "\nAAEC\n"
					   "-> empty\n\n"
					   "-> full 1\n" LINE64 "\n\n" MACLINE;
	expect_round_trip(rich);
	for (size_t len = 0; len < strlen(rich); len++) {
		cf_age_header h;
		size_t consumed = 0;
		cf_err rc = parse_exact(rich, len, &h, &consumed);
		if (rc != CF_ERR_TRUNCATED && rc != CF_ERR_AGE_HEADER)
			fail_msg("rich truncated at %zu: %s", len, cf_errname(rc));
	}
	/* Cut at a line end is "ran out of input", not "malformed". */
	for (size_t len = 1; len < strlen(rich); len++) {
		if (rich[len - 1] != '\n')
			continue;
		cf_age_header h;
		size_t consumed = 0;
		assert_int_equal(parse_exact(rich, len, &h, &consumed), CF_ERR_TRUNCATED);
	}
	/* Empty input, with a NULL pointer too. */
	cf_age_header h;
	size_t consumed = 0;
	assert_int_equal(parse_exact("", 0, &h, &consumed), CF_ERR_TRUNCATED);
	assert_int_equal(cf_age_header_parse(NULL, 0, &h, &consumed), CF_ERR_TRUNCATED);
}

/* --- every strict rule broken once --- */

static void test_version_line(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"age-encryption.org/v2\n",  "age-encryption.org/v1 \n", " age-encryption.org/v1\n",
		"Age-encryption.org/v1\n",  "age-encryption.org/v\n",   "age-encryption.org/v10\n",
		"age-encryption.org/v1\r\n", "age-encryption.org\n",    "\n",
		"age-encryption.org/v1\0\n",
	};
	char buf[512];
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		snprintf(buf, sizeof(buf), "%s-> X25519 " SHARE "\n" BODY32 "\n" MACLINE, bad[i]);
		expect_header_error(bad[i], buf);
	}
	/* A version line with an embedded NUL (parsed by length, not as a C string). */
	static const char nul[] = "age-encryption.org/v1\0\n-> a\n\n" MACLINE;
	cf_age_header h;
	size_t consumed = 0;
	assert_int_equal(parse_exact(nul, sizeof(nul) - 1, &h, &consumed), CF_ERR_AGE_HEADER);
	/* No version line at all: the stanza is in its place. */
	expect_header_error("missing version", "-> X25519 " SHARE "\n" BODY32 "\n" MACLINE);
}

static void test_crlf(void **state)
{
	(void)state;
	/* CRLF everywhere, and on each line alone. */
	expect_header_error("all CRLF", "age-encryption.org/v1\r\n-> X25519 " SHARE "\r\n" BODY32
					"\r\n--- " MAC43 "\r\n");
	expect_header_error("CRLF stanza", VERSION "-> X25519 " SHARE "\r\n" BODY32 "\n" MACLINE);
	expect_header_error("CRLF body", VERSION "-> X25519 " SHARE "\n" BODY32 "\r\n" MACLINE);
	expect_header_error("CRLF empty body", VERSION "-> X25519 " SHARE "\n\r\n" MACLINE);
	expect_header_error("CRLF mac", VERSION "-> X25519 " SHARE "\n" BODY32 "\n--- " MAC43 "\r\n");
	expect_header_error("CR inside body", VERSION "-> a\nAAAA\rAAAA\n" MACLINE);
}

static void test_stanza_line(void **state)
{
	(void)state;
	static const struct {
		const char *what, *line;
	} bad[] = {
		{ "no args", "->" },
		{ "no args, space", "-> " },
		{ "no args, two spaces", "->  " },
		{ "no space after arrow", "->X25519 " SHARE },
		{ "tab after arrow", "->\tX25519 " SHARE },
		{ "double space", "-> X25519  " SHARE },
		{ "leading double space", "->  X25519 " SHARE },
		{ "trailing space", "-> X25519 " SHARE " " },
		{ "tab separator", "-> X25519\t" SHARE },
		{ "control char", "-> X25519 " SHARE "\x01" },
		{ "control char in type", "-> X25\x1f" "519 " SHARE },
		{ "escape", "-> \x1b[31m" },
		{ "DEL", "-> X25519 \x7f" },
		{ "DEL in type", "-> X\x7f" },
		{ "high byte", "-> X25519 \x80" },
		{ "0xff", "-> \xff" },
		{ "UTF-8", "-> caf\xc3\xa9" },
		{ "single dash", "- X25519 " SHARE },
		{ "no dash", "> X25519 " SHARE },
		{ "bare word", "X25519 " SHARE },
		{ "arrow reversed", "<- X25519 " SHARE },
		{ "empty line", "" },
		{ "space", " " },
		{ "two dashes", "-- X25519" },
	};
	char buf[512];
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		snprintf(buf, sizeof(buf), VERSION "%s\n" BODY32 "\n" MACLINE, bad[i].line);
		expect_header_error(bad[i].what, buf);
		/* The same broken stanza after a good one. */
		snprintf(buf, sizeof(buf), VERSION "-> X25519 " SHARE "\n" BODY32 "\n%s\n" BODY32 "\n" MACLINE,
			 bad[i].line);
		expect_header_error(bad[i].what, buf);
	}
	/* A NUL inside an argument (the header is bytes, not a C string). */
	static const char nul[] = VERSION "-> X25519 ab\0cd\n" BODY32 "\n" MACLINE;
	cf_age_header h;
	size_t consumed = 0;
	assert_int_equal(parse_exact(nul, sizeof(nul) - 1, &h, &consumed), CF_ERR_AGE_HEADER);

	/* The printable range is allowed, edges included. */
	expect_ok("printable", VERSION "-> ! ~ !\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~\n\n" MACLINE);
	expect_round_trip(VERSION "-> ! ~ -> ---\n\n" MACLINE);
	/* A single argument and many arguments are fine. */
	expect_round_trip(VERSION "-> x\n\n" MACLINE);
	expect_round_trip(VERSION "-> a b c d e f g h\nAAAA\n" MACLINE);
	/* Sixteen (type and 15 arguments) is fine. The spec sets no limit at all. */
	expect_round_trip(VERSION "-> grease 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n\n" MACLINE);
}

static void test_body_lines(void **state)
{
	(void)state;
	static const struct {
		const char *what, *body;
	} bad[] = {
		/* 65 columns. */
		{ "65 chars", LINE64 "A" },
		{ "65 chars then short", LINE64 "A\nAAAA" },
		{ "100 chars", LINE64 LINE64 },
		/* Padding is not allowed anywhere. */
		{ "padded 32 bytes", BODY32 "=" },
		{ "padded 1 byte", "AA==" },
		{ "padded 2 bytes", "AAA=" },
		{ "padding only", "====" },
		{ "padded full line", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4=" },
		/* Non-canonical: unused low bits set in the last character. */
		{ "low bits 32", "hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLF" },
		{ "low bits 32b", "hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLH" },
		{ "low bits 1", "AB" },
		{ "low bits 1b", "AP" },
		{ "low bits 2", "AAB" },
		{ "low bits 2b", "AAD" },
		/* Impossible lengths and characters. */
		{ "one char", "A" },
		{ "five chars", "AAAAA" },
		{ "url alphabet", "AA-_" },
		{ "space inside", "AA AA" },
		{ "leading space", " AAAA" },
		{ "trailing space", "AAAA " },
		{ "tab", "AAAA\t" },
		{ "dot", "AA.A" },
		{ "high byte", "AA\xc3\xa9" },
		/* A 64-column line must be followed by another line, not by "---". */
		{ "missing final short line", LINE64 },
		{ "missing final short line x2", LINE64 "\n" LINE64 },
	};
	char buf[1024];
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		snprintf(buf, sizeof(buf), VERSION "-> X25519 " SHARE "\n%s\n" MACLINE, bad[i].body);
		expect_header_error(bad[i].what, buf);
		/* And in a second stanza, followed by another stanza. */
		snprintf(buf, sizeof(buf), VERSION "-> a\n\n-> b\n%s\n-> c\n\n" MACLINE, bad[i].body);
		expect_header_error(bad[i].what, buf);
	}
	/* A missing final line followed by another stanza. */
	expect_header_error("full line then stanza", VERSION "-> a\n" LINE64 "\n-> b\n\n" MACLINE);
	/* No body line at all. */
	expect_header_error("no body", VERSION "-> X25519 " SHARE "\n" MACLINE);
	/* A short line must end the body: a second short line is a stanza line, and bad. */
	expect_header_error("two short lines", VERSION "-> a\nAAAA\nAAAA\n" MACLINE);
	expect_header_error("empty then short", VERSION "-> a\n\nAAAA\n" MACLINE);

	/* Edge lengths that are fine. */
	expect_round_trip(VERSION "-> a\nAA\n" MACLINE);
	expect_round_trip(VERSION "-> a\nAAA\n" MACLINE);
	expect_round_trip(VERSION "-> a\nAAAA\n" MACLINE);
	expect_round_trip(VERSION "-> a\n" LINE64 "\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ\n" MACLINE);
}

static void test_mac_line(void **state)
{
	(void)state;
	static const struct {
		const char *what, *line;
	} bad[] = {
		{ "42 chars", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcN" },
		{ "44 chars", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNgA" },
		{ "44 chars padded", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg=" },
		{ "missing space", "---WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg" },
		{ "missing space, 44", "---WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNgA" },
		{ "four dashes", "----WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg" },
		{ "two spaces", "---  WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcN" },
		{ "tab", "---\tWyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg" },
		{ "trailing space", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg " },
		{ "low bits set", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNh" },
		{ "low bits set 2", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNj" },
		{ "bad char", "--- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwh*cNg" },
		{ "url alphabet", "--- WyJp9F_9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNg" },
		{ "no mac", "---" },
		{ "no mac, space", "--- " },
		{ "dashes only", "----" },
	};
	char buf[512];
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		snprintf(buf, sizeof(buf), VERSION "-> X25519 " SHARE "\n" BODY32 "\n%s\n", bad[i].line);
		expect_header_error(bad[i].what, buf);
	}
	/* A MAC line with no newline is not yet complete. */
	cf_age_header h;
	size_t consumed = 0;
	assert_int_equal(parse_exact(good, good_len - 1, &h, &consumed), CF_ERR_TRUNCATED);
	/* Zero stanzas. */
	expect_header_error("zero stanzas", VERSION MACLINE);
	expect_header_error("zero stanzas, bare", VERSION "---\n");
}

static void test_max_stanzas(void **state)
{
	(void)state;
	static const char stanza[] = "-> a\n\n";
	for (size_t count = CF_AGE_MAX_STANZAS - 1; count <= CF_AGE_MAX_STANZAS + 2; count++) {
		cf_buf b;
		cf_buf_init(&b, 1u << 22, false);
		assert_int_equal(cf_buf_append_str(&b, VERSION), CF_OK);
		for (size_t i = 0; i < count; i++)
			assert_int_equal(cf_buf_append_str(&b, stanza), CF_OK);
		assert_int_equal(cf_buf_append_str(&b, MACLINE), CF_OK);
		cf_age_header h;
		size_t consumed = 0;
		cf_err rc = parse_exact(b.data, b.len, &h, &consumed);
		if (count <= CF_AGE_MAX_STANZAS) {
			assert_int_equal(rc, CF_OK);
			assert_int_equal(h.nstanzas, count);
			assert_int_equal(consumed, b.len);
			cf_buf out;
			cf_buf_init(&out, 1u << 22, false);
			assert_int_equal(cf_age_header_encode(&h, true, &out), CF_OK);
			assert_int_equal(out.len, b.len);
			assert_memory_equal(out.data, b.data, b.len);
			cf_buf_free(&out);
			cf_age_header_free(&h);
		} else {
			assert_int_equal(rc, CF_ERR_AGE_HEADER);
			assert_null(h.stanzas);
		}
		cf_buf_free(&b);
	}
}

static void test_body_48_bytes(void **state)
{
	(void)state;
	/* Exactly 48 bytes: one full line and then an empty line. */
	static const char ok[] = VERSION "-> X25519 " SHARE "\n" LINE64 "\n\n" MACLINE;
	cf_age_header h;
	size_t consumed = 0;
	assert_int_equal(parse_exact(ok, strlen(ok), &h, &consumed), CF_OK);
	assert_int_equal(h.nstanzas, 1);
	assert_int_equal(h.stanzas[0].bodylen, 48);
	for (size_t i = 0; i < 48; i++)
		assert_int_equal(h.stanzas[0].body[i], i);
	cf_age_header_free(&h);
	expect_round_trip(ok);
	/* Without the empty line the MAC line is read as body and refused. */
	expect_header_error("48 without empty line", VERSION "-> X25519 " SHARE "\n" LINE64 "\n" MACLINE);
	/* 96 bytes likewise. */
	expect_round_trip(VERSION "-> a\n" LINE64 "\n" LINE64 "\n\n" MACLINE);
	expect_header_error("96 without empty line", VERSION "-> a\n" LINE64 "\n" LINE64 "\n" MACLINE);
	/* An empty body is a single empty line. */
	expect_round_trip(VERSION "-> a\n\n" MACLINE);
}

/* Encoding stanzas built in memory, for every body length up to 200, parses back. */
static void test_encode_parse_round_trip(void **state)
{
	(void)state;
	uint8_t body[200];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + 3);
	char a0[] = "X25519", a1[] = "arg", a2[] = "+/=";
	char *args[] = { a0, a1, a2 };
	for (size_t blen = 0; blen <= sizeof(body); blen++) {
		cf_age_stanza st[2] = {
			{ .args = args, .nargs = 3, .body = blen ? body : NULL, .bodylen = blen },
			{ .args = args, .nargs = 1, .body = body, .bodylen = sizeof(body) - blen },
		};
		cf_age_header h = { .stanzas = st, .nstanzas = 2 };
		for (size_t i = 0; i < 32; i++)
			h.mac[i] = (uint8_t)(blen + i);
		cf_buf out;
		cf_buf_init(&out, 1u << 20, false);
		assert_int_equal(cf_age_header_encode(&h, true, &out), CF_OK);
		cf_age_header p;
		size_t consumed = 0;
		assert_int_equal(parse_exact(out.data, out.len, &p, &consumed), CF_OK);
		assert_int_equal(consumed, out.len);
		assert_int_equal(p.nstanzas, 2);
		assert_int_equal(p.stanzas[0].nargs, 3);
		assert_string_equal(p.stanzas[0].args[2], "+/=");
		assert_int_equal(p.stanzas[0].bodylen, blen);
		if (blen)
			assert_memory_equal(p.stanzas[0].body, body, blen);
		assert_int_equal(p.stanzas[1].nargs, 1);
		assert_int_equal(p.stanzas[1].bodylen, sizeof(body) - blen);
		assert_memory_equal(p.stanzas[1].body, body, sizeof(body) - blen);
		assert_memory_equal(p.mac, h.mac, 32);
		/* Every body line except the last is 64 columns. */
		const char *text = (const char *)out.data;
		assert_int_equal(p.mac_input_len, out.len - 45);
		assert_memory_equal(text + p.mac_input_len - 3, "---", 3);
		cf_age_header_free(&p);
		cf_buf_free(&out);
	}
}

/* Single-byte corruptions of a good header never crash and never give garbage consumed. */
static void test_mutations(void **state)
{
	(void)state;
	static const char rich[] = VERSION "-> X25519 " SHARE "\n" BODY32 "\n"
					   "-> grease a b c\n" LINE64 "\n" LINE64 "\nAAEC\n"
					   "-> empty\n\n" MACLINE;
	size_t len = strlen(rich);
	uint8_t *m = malloc(len);
	assert_non_null(m);
	static const uint8_t repl[] = { 0, '\n', '\r', ' ', '-', '>', '=', 'A', '/', 0x7f, 0xff };
	for (size_t pos = 0; pos < len; pos++) {
		for (size_t r = 0; r < sizeof(repl); r++) {
			memcpy(m, rich, len);
			if (m[pos] == repl[r])
				continue;
			m[pos] = repl[r];
			cf_age_header h;
			size_t consumed = 0;
			cf_err rc = cf_age_header_parse(m, len, &h, &consumed);
			if (rc == CF_OK) {
				/* Some changes stay valid (e.g. another base64 letter): consistent. */
				assert_true(consumed <= len);
				assert_true(h.nstanzas >= 1);
				assert_true(h.mac_input_len < consumed);
				cf_age_header_free(&h);
			} else {
				assert_true(rc == CF_ERR_AGE_HEADER || rc == CF_ERR_TRUNCATED);
				assert_null(h.stanzas);
			}
		}
		/* Deleting the byte at pos. */
		memcpy(m, rich, pos);
		memcpy(m + pos, rich + pos + 1, len - pos - 1);
		cf_age_header h;
		size_t consumed = 0;
		cf_err rc = cf_age_header_parse(m, len - 1, &h, &consumed);
		if (rc == CF_OK)
			cf_age_header_free(&h);
		else
			assert_true(rc == CF_ERR_AGE_HEADER || rc == CF_ERR_TRUNCATED);
	}
	free(m);
}

/* Bigger than CF_AGE_MAX_HEADER with no MAC line in reach: malformed, not truncated. */
static void test_oversized(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 4u << 20, false);
	assert_int_equal(cf_buf_append_str(&b, VERSION "-> big\n"), CF_OK);
	while (b.len <= CF_AGE_MAX_HEADER + 4096)
		assert_int_equal(cf_buf_append_str(&b, LINE64 "\n"), CF_OK);
	assert_int_equal(cf_buf_append_str(&b, "\n" MACLINE), CF_OK);
	cf_age_header h;
	size_t consumed = 0;
	cf_err rc = cf_age_header_parse(b.data, b.len, &h, &consumed);
	if (rc != CF_ERR_AGE_HEADER)
		fail_msg("oversized header: got %s, want CF_ERR_AGE_HEADER", cf_errname(rc));
	assert_null(h.stanzas);
	cf_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_known_good),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_version_line),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_stanza_line),
		cmocka_unit_test(test_body_lines),
		cmocka_unit_test(test_mac_line),
		cmocka_unit_test(test_max_stanzas),
		cmocka_unit_test(test_body_48_bytes),
		cmocka_unit_test(test_encode_parse_round_trip),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_oversized),
	};
	return cmocka_run_group_tests(tests, load_vector, free_vector);
}
