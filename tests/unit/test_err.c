/* Unit tests for lib/err.c: names, texts and stable numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/err.h"

static const cf_err all_codes[] = {
	CF_OK,
	CF_ERR_NOMEM,
	CF_ERR_ARG,
	CF_ERR_TOO_BIG,
	CF_ERR_TRUNCATED,
	CF_ERR_PARSE,
	CF_ERR_IO,
	CF_ERR_CRYPTO,
	CF_ERR_AUTH,
	CF_ERR_UNSUPPORTED,
	CF_ERR_NOT_FOUND,
	CF_ERR_ENCODING,
	CF_ERR_TRAILING,
	CF_ERR_WEAK_KEY,
	CF_ERR_LIMIT,
	CF_ERR_AGE_HEADER,
	CF_ERR_AGE_NO_MATCH,
	CF_ERR_AGE_HMAC,
	CF_ERR_AGE_PAYLOAD,
	CF_ERR_AGE_TRUNCATED,
	CF_ERR_AGE_ARMOR,
	CF_ERR_AGE_TRAILING,
	CF_ERR_AGE_IDENTITY,
	CF_ERR_AGE_SCRYPT_MIXED,
	CF_ERR_AGE_WORK_FACTOR,
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void test_stable_numbers(void **state)
{
	(void)state;
	/* These numbers appear in logs and JSON output: they must never move. */
	assert_int_equal(CF_OK, 0);
	assert_int_equal(CF_ERR_NOMEM, 1);
	assert_int_equal(CF_ERR_ARG, 2);
	assert_int_equal(CF_ERR_TOO_BIG, 3);
	assert_int_equal(CF_ERR_TRUNCATED, 4);
	assert_int_equal(CF_ERR_PARSE, 5);
	assert_int_equal(CF_ERR_IO, 6);
	assert_int_equal(CF_ERR_CRYPTO, 7);
	assert_int_equal(CF_ERR_AUTH, 8);
	assert_int_equal(CF_ERR_UNSUPPORTED, 9);
	assert_int_equal(CF_ERR_NOT_FOUND, 10);
	assert_int_equal(CF_ERR_ENCODING, 11);
	assert_int_equal(CF_ERR_TRAILING, 12);
	assert_int_equal(CF_ERR_WEAK_KEY, 13);
	assert_int_equal(CF_ERR_LIMIT, 14);
	assert_int_equal(CF_ERR_AGE_HEADER, 20);
	assert_int_equal(CF_ERR_AGE_NO_MATCH, 21);
	assert_int_equal(CF_ERR_AGE_HMAC, 22);
	assert_int_equal(CF_ERR_AGE_PAYLOAD, 23);
	assert_int_equal(CF_ERR_AGE_TRUNCATED, 24);
	assert_int_equal(CF_ERR_AGE_ARMOR, 25);
	assert_int_equal(CF_ERR_AGE_TRAILING, 26);
	assert_int_equal(CF_ERR_AGE_IDENTITY, 27);
	assert_int_equal(CF_ERR_AGE_SCRYPT_MIXED, 28);
	assert_int_equal(CF_ERR_AGE_WORK_FACTOR, 29);
}

static void test_names_distinct_and_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODES; i++) {
		const char *name = cf_errname(all_codes[i]);
		assert_non_null(name);
		assert_true(strncmp(name, "CF_", 3) == 0);
		assert_string_not_equal(name, "CF_ERR_UNKNOWN");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(name, cf_errname(all_codes[j]));
	}
	/* Spot checks that name and code line up. */
	assert_string_equal(cf_errname(CF_OK), "CF_OK");
	assert_string_equal(cf_errname(CF_ERR_AUTH), "CF_ERR_AUTH");
	assert_string_equal(cf_errname(CF_ERR_AGE_HMAC), "CF_ERR_AGE_HMAC");
	assert_string_equal(cf_errname(CF_ERR_AGE_WORK_FACTOR), "CF_ERR_AGE_WORK_FACTOR");
	assert_string_equal(cf_errname(CF_ERR_LIMIT), "CF_ERR_LIMIT");
}

static void test_texts_non_empty_and_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODES; i++) {
		const char *text = cf_strerror(all_codes[i]);
		assert_non_null(text);
		assert_true(strlen(text) > 0);
		assert_string_not_equal(text, "unknown error");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(text, cf_strerror(all_codes[j]));
	}
}

static void test_unknown_codes(void **state)
{
	(void)state;
	static const int unknown[] = { -1, 15, 19, 30, 1000, INT32_MAX, INT32_MIN };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		cf_err e = (cf_err)unknown[i];
		assert_string_equal(cf_strerror(e), "unknown error");
		assert_string_equal(cf_errname(e), "CF_ERR_UNKNOWN");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stable_numbers),
		cmocka_unit_test(test_names_distinct_and_match),
		cmocka_unit_test(test_texts_non_empty_and_distinct),
		cmocka_unit_test(test_unknown_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
