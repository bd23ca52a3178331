/* Unit tests for lib/buf.c: bounded buffers, secret wiping, cursors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/buf.h"

/* --- owning buffers --- */

static void test_init_state(void **state)
{
	(void)state;
	cf_buf b;
	memset(&b, 0xA5, sizeof(b));
	cf_buf_init(&b, 100, true);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 100);
	assert_true(b.secret);
	cf_buf_free(&b);
	assert_null(b.data);
}

static void test_append_and_grow_to_max(void **state)
{
	(void)state;
	enum { MAX = 1000 };
	cf_buf b;
	cf_buf_init(&b, MAX, false);
	for (size_t i = 0; i < MAX; i++) {
		assert_int_equal(cf_buf_append_byte(&b, (uint8_t)i), CF_OK);
		assert_int_equal(b.len, i + 1);
		assert_true(b.cap > b.len); /* room for the terminator */
		assert_true(b.cap <= MAX + 1);
	}
	/* At the hard max: one more byte, any amount, is refused. */
	assert_int_equal(cf_buf_append_byte(&b, 1), CF_ERR_TOO_BIG);
	assert_int_equal(cf_buf_append(&b, "xy", 2), CF_ERR_TOO_BIG);
	assert_int_equal(cf_buf_append_str(&b, "z"), CF_ERR_TOO_BIG);
	assert_int_equal(cf_buf_reserve(&b, 1), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, MAX);
	for (size_t i = 0; i < MAX; i++)
		assert_int_equal(b.data[i], (uint8_t)i);
	/* Reserving nothing and appending nothing still work at the limit. */
	assert_int_equal(cf_buf_reserve(&b, 0), CF_OK);
	assert_int_equal(cf_buf_append(&b, NULL, 0), CF_OK);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_int_equal(b.data[MAX], 0);
	assert_int_equal(b.len, MAX);
	cf_buf_free(&b);
}

static void test_append_exact_fit_then_refuse(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 5, false);
	assert_int_equal(cf_buf_append(&b, "abc", 3), CF_OK);
	assert_int_equal(cf_buf_append(&b, "def", 3), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, 3);
	assert_int_equal(cf_buf_append(&b, "de", 2), CF_OK);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "abcde", 5);
	cf_buf_free(&b);

	/* A zero maximum accepts nothing but can still be terminated. */
	cf_buf_init(&b, 0, false);
	assert_int_equal(cf_buf_append_byte(&b, 'x'), CF_ERR_TOO_BIG);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_non_null(b.data);
	assert_int_equal(b.data[0], 0);
	assert_int_equal(b.len, 0);
	cf_buf_free(&b);
}

static void test_size_overflow_attempts(void **state)
{
	(void)state;
	static const uint8_t src[16] = { 1, 2, 3 };
	static const size_t maxes[] = { 0, 1, 100, SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX };
	for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		cf_buf b;
		cf_buf_init(&b, maxes[m], false);
		/* Empty buffer: SIZE_MAX bytes can never fit (the +1 for the NUL overflows). */
		assert_int_equal(cf_buf_append(&b, src, SIZE_MAX), CF_ERR_TOO_BIG);
		assert_int_equal(cf_buf_reserve(&b, SIZE_MAX), CF_ERR_TOO_BIG);
		assert_int_equal(b.len, 0);
		if (maxes[m] >= 10) {
			assert_int_equal(cf_buf_append(&b, src, 10), CF_OK);
			/* len + extra wraps, or len + extra + 1 wraps. */
			assert_int_equal(cf_buf_append(&b, src, SIZE_MAX), CF_ERR_TOO_BIG);
			assert_int_equal(cf_buf_append(&b, src, SIZE_MAX - 9), CF_ERR_TOO_BIG);
			assert_int_equal(cf_buf_append(&b, src, SIZE_MAX - 10), CF_ERR_TOO_BIG);
			assert_int_equal(cf_buf_reserve(&b, SIZE_MAX - 10), CF_ERR_TOO_BIG);
			assert_int_equal(b.len, 10);
			assert_memory_equal(b.data, src, 10);
		}
		cf_buf_free(&b);
	}
}

static void test_append_str_and_printf(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 64, false);
	assert_int_equal(cf_buf_append_str(&b, "n="), CF_OK);
	assert_int_equal(cf_buf_printf(&b, "%d:%s:%02x", 42, "abc", 0xf), CF_OK);
	assert_int_equal(b.len, strlen("n=42:abc:0f"));
	assert_memory_equal(b.data, "n=42:abc:0f", b.len);
	/* printf always leaves the NUL it wrote just past len. */
	assert_int_equal(b.data[b.len], 0);
	assert_int_equal(cf_buf_printf(&b, "%s", ""), CF_OK);
	assert_int_equal(b.len, strlen("n=42:abc:0f"));

	/* Output that would pass the max is refused whole. */
	char big[100];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	size_t before = b.len;
	assert_int_equal(cf_buf_printf(&b, "%s", big), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, before);
	assert_memory_equal(b.data, "n=42:abc:0f", b.len);
	/* Exactly up to the max is fine. */
	assert_int_equal(cf_buf_printf(&b, "%.*s", (int)(64 - before), big), CF_OK);
	assert_int_equal(b.len, 64);
	assert_int_equal(cf_buf_printf(&b, "%c", 'x'), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, 64);
	cf_buf_free(&b);

	/* printf into an empty buffer. */
	cf_buf_init(&b, 16, false);
	assert_int_equal(cf_buf_printf(&b, "%s", ""), CF_OK);
	assert_int_equal(b.len, 0);
	assert_int_equal(cf_buf_printf(&b, "%u", 123456789u), CF_OK);
	assert_string_equal((char *)b.data, "123456789");
	cf_buf_free(&b);
}

static void test_terminate(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 8, false);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_string_equal((char *)b.data, "");
	assert_int_equal(cf_buf_append(&b, "abcdefgh", 8), CF_OK);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_int_equal(b.len, 8);
	assert_string_equal((char *)b.data, "abcdefgh");
	/* Terminating twice changes nothing. */
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_int_equal(b.len, 8);
	assert_string_equal((char *)b.data, "abcdefgh");
	cf_buf_free(&b);
}

static void test_secret_reset_wipes(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 4096, true);
	uint8_t key[300];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(0x80 | i);
	assert_int_equal(cf_buf_append(&b, key, sizeof(key)), CF_OK);
	uint8_t *p = b.data;
	size_t cap = b.cap;
	assert_true(cap > sizeof(key));
	cf_buf_reset(&b);
	/* The allocation is kept (and still ours to read), its bytes are gone. */
	assert_ptr_equal(b.data, p);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.len, 0);
	for (size_t i = 0; i < cap; i++)
		assert_int_equal(b.data[i], 0);
	/* Reusable after reset. */
	assert_int_equal(cf_buf_append(&b, "k", 1), CF_OK);
	assert_int_equal(b.len, 1);
	cf_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.max, 4096);
	assert_true(b.secret);
	/* Reusable after free, and still secret. */
	assert_int_equal(cf_buf_append(&b, key, 10), CF_OK);
	char out[64];
	assert_string_equal(cf_buf_display(&b, out, sizeof(out)), "(hidden)");
	cf_buf_free(&b);
	cf_buf_free(&b); /* idempotent */
	assert_null(b.data);
}

static void test_nonsecret_reset_keeps_allocation(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 100, false);
	assert_int_equal(cf_buf_append(&b, "hello", 5), CF_OK);
	uint8_t *p = b.data;
	cf_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, p);
	cf_buf_reset(&b);
	cf_buf_free(&b);
	/* reset of a never-allocated buffer is harmless */
	cf_buf_init(&b, 100, true);
	cf_buf_reset(&b);
	assert_null(b.data);
	cf_buf_free(&b);
}

static void test_wipe(void **state)
{
	(void)state;
	uint8_t k[33];
	memset(k, 0xff, sizeof(k));
	cf_wipe(k + 1, 31);
	assert_int_equal(k[0], 0xff);
	for (size_t i = 1; i < 32; i++)
		assert_int_equal(k[i], 0);
	assert_int_equal(k[32], 0xff);
	cf_wipe(NULL, 10); /* no crash */
	cf_wipe(k, 0);
	assert_int_equal(k[0], 0xff);
}

static void test_steal(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 100, false);
	assert_int_equal(cf_buf_append(&b, "abc", 3), CF_OK);
	size_t len = 0;
	uint8_t *p = cf_buf_steal(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "abc", 3);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(p);
	/* Stealing an empty buffer gives NULL and length 0. */
	len = 99;
	assert_null(cf_buf_steal(&b, &len));
	assert_int_equal(len, 0);
	assert_null(cf_buf_steal(&b, NULL));
	cf_buf_free(&b);
}

static void test_display(void **state)
{
	(void)state;
	cf_buf b;
	char out[64];
	cf_buf_init(&b, 100, false);
	assert_int_equal(cf_buf_append(&b, "\x01\xab\xff\x00\x7f", 5), CF_OK);
	assert_string_equal(cf_buf_display(&b, out, sizeof(out)), "01abff007f");

	/* Tiny outputs: never write past outlen, always NUL-terminate, whole bytes only. */
	static const struct {
		size_t outlen;
		const char *want;
	} cases[] = {
		{ 1, "" }, { 2, "" }, { 3, "01" }, { 4, "01" }, { 5, "01ab" },
		{ 10, "01abff00" }, { 11, "01abff007f" }, { 12, "01abff007f" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, '#', sizeof(out));
		const char *r = cf_buf_display(&b, out, cases[i].outlen);
		assert_ptr_equal(r, out);
		assert_string_equal(r, cases[i].want);
		for (size_t j = cases[i].outlen; j < sizeof(out); j++)
			assert_int_equal(out[j], '#');
	}
	/* outlen 0: nothing is written, the result is still a string. */
	memset(out, '#', sizeof(out));
	const char *r = cf_buf_display(&b, out, 0);
	assert_non_null(r);
	assert_string_equal(r, "");
	assert_int_equal(out[0], '#');
	assert_string_equal(cf_buf_display(&b, NULL, 10), "");

	/* Empty, unallocated buffer. */
	cf_buf e;
	cf_buf_init(&e, 10, false);
	assert_string_equal(cf_buf_display(&e, out, sizeof(out)), "");
	cf_buf_free(&e);
	cf_buf_free(&b);

	/* Secret: "(hidden)", never hex, even truncated. */
	cf_buf_init(&b, 100, true);
	assert_int_equal(cf_buf_append(&b, "\x01\xab", 2), CF_OK);
	assert_string_equal(cf_buf_display(&b, out, sizeof(out)), "(hidden)");
	for (size_t n = 0; n <= 9; n++) {
		memset(out, '#', sizeof(out));
		r = cf_buf_display(&b, out, n);
		assert_non_null(r);
		assert_true(strlen(r) < (n ? n : 1));
		assert_true(strncmp(r, "(hidden)", strlen(r)) == 0);
		assert_null(strstr(r, "01"));
		for (size_t j = n; j < sizeof(out); j++)
			assert_int_equal(out[j], '#');
	}
	cf_buf_free(&b);
}

/* --- cursors --- */

static const uint8_t ints[8] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x88 };

static void test_cursor_integers(void **state)
{
	(void)state;
	cf_cursor c;
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	cf_cursor_init(&c, ints, sizeof(ints));
	assert_int_equal(cf_cursor_remaining(&c), 8);
	assert_int_equal(cf_cursor_u8(&c, &v8), CF_OK);
	assert_int_equal(v8, 0x01);
	assert_int_equal(cf_cursor_u16le(&c, &v16), CF_OK);
	assert_int_equal(v16, 0x0302);
	assert_int_equal(cf_cursor_u16be(&c, &v16), CF_OK);
	assert_int_equal(v16, 0x0405);
	assert_int_equal(cf_cursor_remaining(&c), 3);

	cf_cursor_init(&c, ints, sizeof(ints));
	assert_int_equal(cf_cursor_u32le(&c, &v32), CF_OK);
	assert_int_equal(v32, 0x04030201u);
	assert_int_equal(cf_cursor_u32be(&c, &v32), CF_OK);
	assert_int_equal(v32, 0x05060788u);
	assert_int_equal(cf_cursor_expect_end(&c), CF_OK);

	cf_cursor_init(&c, ints, sizeof(ints));
	assert_int_equal(cf_cursor_u64le(&c, &v64), CF_OK);
	assert_true(v64 == 0x8807060504030201ull);
	cf_cursor_init(&c, ints, sizeof(ints));
	assert_int_equal(cf_cursor_u64be(&c, &v64), CF_OK);
	assert_true(v64 == 0x0102030405060788ull);
	assert_int_equal(cf_cursor_remaining(&c), 0);

	/* High bit set in every byte: no sign extension anywhere. */
	static const uint8_t ff[8] = { 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8 };
	cf_cursor_init(&c, ff, sizeof(ff));
	assert_int_equal(cf_cursor_u16be(&c, &v16), CF_OK);
	assert_int_equal(v16, 0xfffe);
	assert_int_equal(cf_cursor_u16le(&c, &v16), CF_OK);
	assert_int_equal(v16, 0xfcfd);
	assert_int_equal(cf_cursor_u32be(&c, &v32), CF_OK);
	assert_int_equal(v32, 0xfbfaf9f8u);
	cf_cursor_init(&c, ff, sizeof(ff));
	assert_int_equal(cf_cursor_u64le(&c, &v64), CF_OK);
	assert_true(v64 == 0xf8f9fafbfcfdfeffull);
}

static void test_cursor_truncated_does_not_move(void **state)
{
	(void)state;
	cf_cursor c;
	uint8_t v8 = 0x5a;
	uint16_t v16 = 0x5a5a;
	uint32_t v32 = 0x5a5a5a5a;
	uint64_t v64 = 0x5a5a5a5a5a5a5a5aull;
	uint8_t out[16] = { 0 };
	const uint8_t *p = NULL;

	for (size_t len = 0; len < 8; len++) {
		for (size_t pre = 0; pre <= len; pre++) {
			cf_cursor_init(&c, ints, len);
			assert_int_equal(cf_cursor_skip(&c, pre), CF_OK);
			size_t left = len - pre;
			size_t off = c.off;
			if (left < 1)
				assert_int_equal(cf_cursor_u8(&c, &v8), CF_ERR_TRUNCATED);
			if (left < 2) {
				assert_int_equal(cf_cursor_u16le(&c, &v16), CF_ERR_TRUNCATED);
				assert_int_equal(cf_cursor_u16be(&c, &v16), CF_ERR_TRUNCATED);
			}
			if (left < 4) {
				assert_int_equal(cf_cursor_u32le(&c, &v32), CF_ERR_TRUNCATED);
				assert_int_equal(cf_cursor_u32be(&c, &v32), CF_ERR_TRUNCATED);
			}
			assert_int_equal(cf_cursor_u64le(&c, &v64), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_u64be(&c, &v64), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_read(&c, out, left + 1), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_borrow(&c, left + 1, &p), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_skip(&c, left + 1), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_zeros(&c, left + 1), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_skip(&c, SIZE_MAX), CF_ERR_TRUNCATED);
			assert_int_equal(cf_cursor_read(&c, out, SIZE_MAX), CF_ERR_TRUNCATED);
			assert_int_equal(c.off, off);
			assert_int_equal(cf_cursor_remaining(&c), left);
		}
	}
	/* Failed reads leave the outputs alone. */
	assert_int_equal(v8, 0x5a);
	assert_int_equal(v16, 0x5a5a);
	assert_int_equal(v32, 0x5a5a5a5au);
	assert_true(v64 == 0x5a5a5a5a5a5a5a5aull);
	assert_null(p);
}

static void test_cursor_read_borrow_skip(void **state)
{
	(void)state;
	cf_cursor c;
	uint8_t out[4];
	const uint8_t *p;
	cf_cursor_init(&c, ints, sizeof(ints));
	assert_int_equal(cf_cursor_read(&c, out, 3), CF_OK);
	assert_memory_equal(out, ints, 3);
	assert_int_equal(cf_cursor_borrow(&c, 2, &p), CF_OK);
	assert_ptr_equal(p, ints + 3);
	assert_int_equal(cf_cursor_skip(&c, 2), CF_OK);
	assert_int_equal(cf_cursor_remaining(&c), 1);
	assert_int_equal(cf_cursor_expect_end(&c), CF_ERR_TRAILING);
	assert_int_equal(cf_cursor_read(&c, out, 0), CF_OK);
	assert_int_equal(cf_cursor_skip(&c, 1), CF_OK);
	assert_int_equal(cf_cursor_expect_end(&c), CF_OK);
	assert_int_equal(cf_cursor_read(&c, out, 0), CF_OK);
	assert_int_equal(cf_cursor_skip(&c, 0), CF_OK);
	assert_int_equal(cf_cursor_expect_end(&c), CF_OK);
}

static void test_cursor_zeros(void **state)
{
	(void)state;
	static const uint8_t d[] = { 0, 0, 0, 1, 0, 0 };
	cf_cursor c;
	cf_cursor_init(&c, d, sizeof(d));
	assert_int_equal(cf_cursor_zeros(&c, 0), CF_OK);
	assert_int_equal(cf_cursor_zeros(&c, 3), CF_OK);
	assert_int_equal(c.off, 3);
	assert_int_equal(cf_cursor_zeros(&c, 1), CF_ERR_PARSE);
	assert_int_equal(c.off, 3); /* not consumed */
	assert_int_equal(cf_cursor_zeros(&c, 3), CF_ERR_PARSE);
	assert_int_equal(cf_cursor_zeros(&c, 4), CF_ERR_TRUNCATED);
	assert_int_equal(c.off, 3);
	assert_int_equal(cf_cursor_skip(&c, 1), CF_OK);
	assert_int_equal(cf_cursor_zeros(&c, 2), CF_OK);
	assert_int_equal(cf_cursor_expect_end(&c), CF_OK);

	/* A non-zero byte at the very end of the span is still seen. */
	static const uint8_t last[] = { 0, 0, 0, 0, 0, 0, 0, 0x80 };
	cf_cursor_init(&c, last, sizeof(last));
	assert_int_equal(cf_cursor_zeros(&c, 8), CF_ERR_PARSE);
	assert_int_equal(cf_cursor_zeros(&c, 7), CF_OK);
}

static void test_cursor_null_data(void **state)
{
	(void)state;
	cf_cursor c;
	uint8_t out[4];
	uint32_t v32;
	const uint8_t *p = (const uint8_t *)"sentinel";
	/* NULL data with a non-zero length must not be readable. */
	cf_cursor_init(&c, NULL, 100);
	assert_int_equal(cf_cursor_remaining(&c), 0);
	assert_int_equal(cf_cursor_expect_end(&c), CF_OK);
	assert_int_equal(cf_cursor_u32le(&c, &v32), CF_ERR_TRUNCATED);
	assert_int_equal(cf_cursor_read(&c, out, 1), CF_ERR_TRUNCATED);
	assert_int_equal(cf_cursor_skip(&c, 1), CF_ERR_TRUNCATED);
	assert_int_equal(cf_cursor_zeros(&c, 1), CF_ERR_TRUNCATED);
	assert_int_equal(cf_cursor_borrow(&c, 1, &p), CF_ERR_TRUNCATED);
	/* Zero-length operations on a NULL span succeed without touching memory. */
	assert_int_equal(cf_cursor_read(&c, out, 0), CF_OK);
	assert_int_equal(cf_cursor_skip(&c, 0), CF_OK);
	assert_int_equal(cf_cursor_zeros(&c, 0), CF_OK);
	assert_int_equal(cf_cursor_borrow(&c, 0, &p), CF_OK);
	assert_int_equal(c.off, 0);

	/* Empty non-NULL span. */
	cf_cursor_init(&c, ints, 0);
	assert_int_equal(cf_cursor_remaining(&c), 0);
	assert_int_equal(cf_cursor_u8(&c, out), CF_ERR_TRUNCATED);
	assert_int_equal(cf_cursor_expect_end(&c), CF_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_state),
		cmocka_unit_test(test_append_and_grow_to_max),
		cmocka_unit_test(test_append_exact_fit_then_refuse),
		cmocka_unit_test(test_size_overflow_attempts),
		cmocka_unit_test(test_append_str_and_printf),
		cmocka_unit_test(test_terminate),
		cmocka_unit_test(test_secret_reset_wipes),
		cmocka_unit_test(test_nonsecret_reset_keeps_allocation),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_steal),
		cmocka_unit_test(test_display),
		cmocka_unit_test(test_cursor_integers),
		cmocka_unit_test(test_cursor_truncated_does_not_move),
		cmocka_unit_test(test_cursor_read_borrow_skip),
		cmocka_unit_test(test_cursor_zeros),
		cmocka_unit_test(test_cursor_null_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
