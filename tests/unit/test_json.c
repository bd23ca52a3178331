/* Unit tests for lib/json.c: limits, strictness, canonical form, getters. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coffer/json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static cf_err parse_str(const char *s, const cf_json_limits *lim)
{
	json_t *v = NULL;
	cf_err rc = cf_json_parse(s, strlen(s), lim, &v);
	if (rc == CF_OK) {
		assert_non_null(v);
		json_decref(v);
	} else {
		assert_null(v);
	}
	return rc;
}

/* Canonical form of a parsed text, which must parse. The caller frees. */
static char *canon_of(const char *s)
{
	json_t *v = NULL;
	assert_int_equal(cf_json_parse(s, strlen(s), NULL, &v), CF_OK);
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(cf_json_canonical(v, &out, &len), CF_OK);
	assert_int_equal(len, strlen(out));
	json_decref(v);
	return out;
}

static void test_parse_ok(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"{}", "[]", "{\"a\":1}", " { \"a\" : [ 1 , 2.5 , -3e2 , true , false , null ] } \n",
		"\"str\"", "42", "null", "{\"\\u00e9\":\"\\ud83d\\ude00\"}", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
		"{\"a\":{\"a\":{\"a\":1}}}",
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		if (parse_str(ok[i], NULL) != CF_OK)
			fail_msg("valid JSON %zu rejected: %s", i, ok[i]);
	}
	json_t *v = NULL;
	const char txt[] = "{\"name\":\"coffer\",\"n\":7}";
	assert_int_equal(cf_json_parse(txt, strlen(txt), NULL, &v), CF_OK);
	assert_string_equal(json_string_value(json_object_get(v, "name")), "coffer");
	json_decref(v);
	/* The length bounds the text: what follows is never read. */
	assert_int_equal(cf_json_parse("[1]garbage", 3, NULL, &v), CF_OK);
	json_decref(v);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "{", "[1,]", "{\"a\":}", "{'a':1}", "{a:1}", "[01]", "[1.]", "[.5]", "[+1]",
		"[NaN]", "[Infinity]", "[\"\\x41\"]", "[\"tab\there\"]", "[\"nl\nhere\"]", "/* c */ {}",
		"[\"\xff\"]", "[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\\ud800\"]",
		"[1e400]", "[99999999999999999999999]",
		/* trailing garbage */
		"{} x", "{}{}", "1 2", "[1]]", "{}}", "[] ,", "\"a\" \"b\"", "null null",
		/* duplicate keys, also spelled differently and nested */
		"{\"a\":1,\"a\":2}", "{\"a\":1,\"b\":2,\"a\":1}", "{\"a\":1,\"\\u0061\":2}",
		"[{\"k\":{\"x\":1,\"x\":1}}]",
		/* NUL in a string, escaped */
		"[\"\\u0000\"]", "{\"\\u0000\":1}", "{\"a\\u0000b\":1}", "\"x\\u0000\"",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		cf_err rc = parse_str(bad[i], NULL);
		if (rc != CF_ERR_PARSE)
			fail_msg("bad JSON %zu gave %d: %s", i, rc, bad[i]);
	}
	/* Raw NUL bytes inside the given length: in a string, after the value. */
	static const struct {
		const char *s;
		size_t n;
	} raw[] = { { "[\"a\0b\"]", 7 }, { "{}\0", 3 }, { "\0{}", 3 }, { "[1,\0 2]", 7 } };
	for (size_t i = 0; i < ARRAY_LEN(raw); i++) {
		json_t *v = NULL;
		assert_int_equal(cf_json_parse(raw[i].s, raw[i].n, NULL, &v), CF_ERR_PARSE);
		assert_null(v);
	}
	json_t *v = NULL;
	assert_int_equal(cf_json_parse(NULL, 10, NULL, &v), CF_ERR_ARG);
	assert_null(v);
}

static void test_too_big(void **state)
{
	(void)state;
	cf_json_limits lim = { .max_bytes = 10, .max_depth = 32 };
	assert_int_equal(parse_str("[1,2,3,4]", &lim), CF_OK);      /* 9 bytes */
	assert_int_equal(parse_str("[1,2,3,45]", &lim), CF_OK);     /* 10 bytes */
	assert_int_equal(parse_str("[1,2,3,456]", &lim), CF_ERR_TOO_BIG); /* 11 */
	/* Whitespace counts. */
	assert_int_equal(parse_str("[1]        ", &lim), CF_ERR_TOO_BIG);

	/* The default limit: 1 MiB. */
	size_t n = CF_JSON_DEFAULT_MAX_BYTES;
	char *big = malloc(n + 2);
	assert_non_null(big);
	big[0] = '"';
	memset(big + 1, 'a', n - 2);
	big[n - 1] = '"';
	big[n] = ' ';
	big[n + 1] = 0;
	json_t *v = NULL;
	assert_int_equal(cf_json_parse(big, n, NULL, &v), CF_OK);
	assert_int_equal(json_string_length(v), n - 2);
	json_decref(v);
	v = NULL;
	assert_int_equal(cf_json_parse(big, n + 1, NULL, &v), CF_ERR_TOO_BIG);
	assert_null(v);
	assert_int_equal(cf_json_parse(big, SIZE_MAX, NULL, &v), CF_ERR_TOO_BIG);
	free(big);
}

/* Builds depth levels of nesting, e.g. depth 2 -> "[[1]]" or {"a":{"a":1}}. */
static char *nest(unsigned depth, bool objects)
{
	size_t cap = depth * 6 + 8;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t o = 0;
	for (unsigned i = 0; i < depth; i++) {
		if (objects) {
			memcpy(s + o, "{\"a\":", 5);
			o += 5;
		} else {
			s[o++] = '[';
		}
	}
	s[o++] = '1';
	for (unsigned i = 0; i < depth; i++)
		s[o++] = objects ? '}' : ']';
	s[o] = 0;
	return s;
}

static void test_too_deep(void **state)
{
	(void)state;
	for (int objects = 0; objects <= 1; objects++) {
		char *s32 = nest(32, objects), *s33 = nest(33, objects), *s3000 = nest(3000, objects);
		assert_int_equal(parse_str(s32, NULL), CF_OK);
		assert_int_equal(parse_str(s33, NULL), CF_ERR_LIMIT);
		assert_int_equal(parse_str(s3000, NULL), CF_ERR_LIMIT);
		free(s32);
		free(s33);
		free(s3000);
	}
	/* Mixed arrays and objects count together. */
	assert_int_equal(parse_str("[{\"a\":[{\"b\":[1]}]}]", &(cf_json_limits){ 100, 5 }), CF_OK);
	assert_int_equal(parse_str("[{\"a\":[{\"b\":[[1]]}]}]", &(cf_json_limits){ 100, 5 }),
			 CF_ERR_LIMIT);
	/* Depth is the maximum at any point, not the total number of brackets. */
	assert_int_equal(parse_str("[[1],[2],[3],[4],[5],[6]]", &(cf_json_limits){ 100, 2 }), CF_OK);
	/* Stray closers do not buy extra depth (and are a parse error anyway). */
	assert_int_equal(parse_str("]]]][[[[[1]]]]]", &(cf_json_limits){ 100, 3 }), CF_ERR_LIMIT);
}

static void test_depth_ignores_strings(void **state)
{
	(void)state;
	cf_json_limits lim = { .max_bytes = 1000, .max_depth = 2 };
	/* Brackets inside strings are text, not nesting. */
	assert_int_equal(parse_str("[\"[[[[[[[[[[{{{{{{{{\"]", &lim), CF_OK);
	assert_int_equal(parse_str("{\"[[[[[\":\"{{{{{{\"}", &lim), CF_OK);
	/* An escaped quote does not end the string... */
	assert_int_equal(parse_str("[\"\\\"[[[[[[\"]", &lim), CF_OK);
	/* ...but an escaped backslash before the quote does: the brackets after it count. */
	assert_int_equal(parse_str("[\"\\\\\",[[[1]]]]", &lim), CF_ERR_LIMIT);
	assert_int_equal(parse_str("[\"\\\\\",[1]]", &lim), CF_OK);
	/* Closers inside strings do not reduce depth. */
	assert_int_equal(parse_str("[\"]]]]\",[[1]]]", &lim), CF_ERR_LIMIT);
	/* Deep nesting with the default limit, brackets in a string. */
	char s[200] = "[\"";
	memset(s + 2, '[', 100);
	strcpy(s + 102, "\"]");
	assert_int_equal(parse_str(s, NULL), CF_OK);
}

static void test_canonical(void **state)
{
	(void)state;
	char *c = canon_of("{\"b\":1,\"a\":[1,2,{\"d\":true,\"c\":null}]}");
	assert_string_equal(c, "{\"a\":[1,2,{\"c\":null,\"d\":true}],\"b\":1}");
	free(c);
	/* Whitespace and order in the input make no difference. */
	c = canon_of(" {\n \"a\" : [ 1 ,2, { \"c\" : null , \"d\":true } ] ,\t\"b\": 1 }\n");
	assert_string_equal(c, "{\"a\":[1,2,{\"c\":null,\"d\":true}],\"b\":1}");
	/* Canonical of canonical is itself. */
	char *c2 = canon_of(c);
	assert_string_equal(c, c2);
	free(c);
	free(c2);
	/* Keys sort by bytes; strings are UTF-8, escapes are minimal. */
	c = canon_of("{\"b\":\"\\u00e9\",\"B\":\"\\n\\\"\",\"aa\":\"\\/\",\"a\":-0,\"\\u00e9\":[]}");
	assert_string_equal(c, "{\"B\":\"\\n\\\"\",\"a\":0,\"aa\":\"/\",\"b\":\"\xc3\xa9\",\"\xc3\xa9\":[]}");
	free(c);
	c = canon_of("[]");
	assert_string_equal(c, "[]");
	free(c);
	c = canon_of("\"x\"");
	assert_string_equal(c, "\"x\"");
	free(c);
	/* outlen is optional. */
	json_t *v = json_pack("{s:i,s:s}", "z", 1, "y", "q");
	char *out = NULL;
	assert_int_equal(cf_json_canonical(v, &out, NULL), CF_OK);
	assert_string_equal(out, "{\"y\":\"q\",\"z\":1}");
	free(out);
	json_decref(v);
	assert_int_equal(cf_json_canonical(NULL, &out, NULL), CF_ERR_ARG);
}

static void test_getters(void **state)
{
	(void)state;
	const char txt[] = "{\"s\":\"str\",\"i\":-42,\"big\":9007199254740993,\"r\":1.5,"
			   "\"t\":true,\"f\":false,\"n\":null,\"o\":{},\"a\":[]}";
	json_t *v = NULL;
	assert_int_equal(cf_json_parse(txt, strlen(txt), NULL, &v), CF_OK);
	const char *s = NULL;
	long long i = 0;
	int b = -1;

	assert_int_equal(cf_json_get_string(v, "s", &s), CF_OK);
	assert_string_equal(s, "str");
	assert_int_equal(cf_json_get_int(v, "i", &i), CF_OK);
	assert_int_equal(i, -42);
	assert_int_equal(cf_json_get_int(v, "big", &i), CF_OK);
	assert_true(i == 9007199254740993LL);
	assert_int_equal(cf_json_get_bool(v, "t", &b), CF_OK);
	assert_int_equal(b, 1);
	assert_int_equal(cf_json_get_bool(v, "f", &b), CF_OK);
	assert_int_equal(b, 0);

	/* Missing keys. */
	s = "untouched";
	i = 77;
	b = 77;
	assert_int_equal(cf_json_get_string(v, "missing", &s), CF_ERR_NOT_FOUND);
	assert_int_equal(cf_json_get_int(v, "missing", &i), CF_ERR_NOT_FOUND);
	assert_int_equal(cf_json_get_bool(v, "missing", &b), CF_ERR_NOT_FOUND);
	assert_int_equal(cf_json_get_string(v, "S", &s), CF_ERR_NOT_FOUND);
	/* Wrong types: no coercion of numbers, strings, null or containers. */
	static const char *const not_string[] = { "i", "r", "t", "n", "o", "a" };
	for (size_t k = 0; k < ARRAY_LEN(not_string); k++)
		assert_int_equal(cf_json_get_string(v, not_string[k], &s), CF_ERR_PARSE);
	static const char *const not_int[] = { "s", "r", "t", "f", "n", "o", "a" };
	for (size_t k = 0; k < ARRAY_LEN(not_int); k++)
		assert_int_equal(cf_json_get_int(v, not_int[k], &i), CF_ERR_PARSE);
	static const char *const not_bool[] = { "s", "i", "r", "n", "o", "a" };
	for (size_t k = 0; k < ARRAY_LEN(not_bool); k++)
		assert_int_equal(cf_json_get_bool(v, not_bool[k], &b), CF_ERR_PARSE);
	assert_string_equal(s, "untouched");
	assert_int_equal(i, 77);
	assert_int_equal(b, 77);

	/* Not an object at all. */
	json_t *arr = json_object_get(v, "a");
	assert_int_equal(cf_json_get_string(arr, "s", &s), CF_ERR_PARSE);
	assert_int_equal(cf_json_get_int(NULL, "i", &i), CF_ERR_PARSE);
	assert_int_equal(cf_json_get_bool(json_object_get(v, "s"), "t", &b), CF_ERR_PARSE);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_depth_ignores_strings),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_getters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
