/* Unit tests for lib/log.c: level filtering, JSON lines, injection. */
#define CF_LOG_MODULE "testmod"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "coffer/log.h"

static FILE *cap_f;
static char *cap_buf;
static size_t cap_len;

static void capture_begin(void)
{
	cap_buf = NULL;
	cap_len = 0;
	cap_f = open_memstream(&cap_buf, &cap_len);
	assert_non_null(cap_f);
	cf_log_set_stream(cap_f);
}

/* Returns what was logged since capture_begin(); the caller frees it. */
static char *capture_end(void)
{
	cf_log_set_stream(NULL);
	assert_int_equal(fclose(cap_f), 0);
	cap_f = NULL;
	assert_non_null(cap_buf);
	return cap_buf;
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

static int reset_logger(void **state)
{
	(void)state;
	cf_log_init("coffer", CF_LOG_WARN, false);
	cf_log_set_stream(NULL);
	return 0;
}

static void test_level_filter(void **state)
{
	(void)state;
	cf_log_init("/usr/local/bin/coffer-test", CF_LOG_WARN, false);
	assert_int_equal(cf_log_get_level(), CF_LOG_WARN);
	capture_begin();
	log_error("e%d", 1);
	log_warn("w%d", 2);
	log_info("i%d", 3);
	log_debug("d%d", 4);
	char *out = capture_end();
	/* The program name loses its directory. */
	assert_string_equal(out, "coffer-test: [testmod] e1\ncoffer-test: [testmod] w2\n");
	free(out);

	cf_log_set_level(CF_LOG_DEBUG);
	assert_int_equal(cf_log_get_level(), CF_LOG_DEBUG);
	capture_begin();
	log_error("e");
	log_warn("w");
	log_info("i");
	log_debug("d");
	cf_log_msg(CF_LOG_INFO, "other", "from %s", "elsewhere");
	out = capture_end();
	assert_string_equal(out, "coffer-test: [testmod] e\ncoffer-test: [testmod] w\n"
				 "coffer-test: [testmod] i\ncoffer-test: [testmod] d\n"
				 "coffer-test: [other] from elsewhere\n");
	free(out);

	cf_log_set_level(CF_LOG_ERROR);
	capture_begin();
	log_error("only");
	log_warn("not");
	log_info("not");
	log_debug("not");
	out = capture_end();
	assert_string_equal(out, "coffer-test: [testmod] only\n");
	free(out);

	cf_log_set_level(CF_LOG_INFO);
	capture_begin();
	log_debug("not");
	log_info("yes");
	out = capture_end();
	assert_string_equal(out, "coffer-test: [testmod] yes\n");
	free(out);
}

static void test_out_of_range_levels(void **state)
{
	(void)state;
	/* A bogus level is never printed, and never indexes past the name table. */
	cf_log_init("p", (cf_log_level)9, true);
	capture_begin();
	cf_log_msg((cf_log_level)7, "m", "bogus level");
	cf_log_msg((cf_log_level)-1, "m", "negative level");
	cf_log_msg(CF_LOG_DEBUG, "m", "debug ok");
	char *out = capture_end();
	assert_null(strstr(out, "bogus"));
	assert_null(strstr(out, "negative"));
	assert_non_null(strstr(out, "debug ok"));
	free(out);
}

static void test_level_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		cf_log_level want;
	} ok[] = {
		{ "error", CF_LOG_ERROR },
		{ "warn", CF_LOG_WARN },
		{ "info", CF_LOG_INFO },
		{ "debug", CF_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cf_log_level l = (cf_log_level)99;
		assert_int_equal(cf_log_level_parse(ok[i].s, &l), CF_OK);
		assert_int_equal(l, ok[i].want);
	}
	static const char *const bad[] = { "", "err", "errors", "debug ", " info", "trace",
					   "3",  "warn\n", "inf", "verbose", "error\x01" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cf_log_level l = (cf_log_level)99;
		assert_int_equal(cf_log_level_parse(bad[i], &l), CF_ERR_ARG);
		assert_int_equal(l, 99);
	}
	cf_log_level l = (cf_log_level)99;
	assert_int_equal(cf_log_level_parse(NULL, &l), CF_ERR_ARG);
	assert_int_equal(l, 99);
	/* Numeric values are part of the contract (they are compared with <, >). */
	assert_int_equal(CF_LOG_ERROR, 0);
	assert_int_equal(CF_LOG_WARN, 1);
	assert_int_equal(CF_LOG_INFO, 2);
	assert_int_equal(CF_LOG_DEBUG, 3);
}

/* Parses one JSON line and checks its fixed fields; returns the object. */
static json_t *parse_line(const char *line, size_t len, const char *level)
{
	json_error_t err;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (!o)
		fail_msg("not JSON (%s): %.*s", err.text, (int)len, line);
	assert_true(json_is_object(o));
	assert_int_equal(json_object_size(o), 5);
	const char *ts = json_string_value(json_object_get(o, "ts"));
	assert_non_null(ts);
	/* 2024-01-02T03:04:05Z */
	assert_int_equal(strlen(ts), 20);
	assert_int_equal(ts[4], '-');
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], 'Z');
	assert_string_equal(json_string_value(json_object_get(o, "level")), level);
	assert_string_equal(json_string_value(json_object_get(o, "prog")), "jprog");
	assert_string_equal(json_string_value(json_object_get(o, "module")), "testmod");
	assert_true(json_is_string(json_object_get(o, "msg")));
	return o;
}

static void test_json_lines(void **state)
{
	(void)state;
	cf_log_init("./jprog", CF_LOG_INFO, true);
	/* A hostile message trying to close the string and add fields or lines. */
	static const char hostile[] =
		"x\",\"level\":\"error\",\"admin\":true}\n{\"msg\":\"forged\\\" \r\t\x01\x1b[31m end";
	capture_begin();
	log_warn("%s", hostile);
	log_info("plain %d%%", 100);
	log_debug("filtered");
	char *out = capture_end();
	/* Exactly two lines, each a complete object. */
	assert_int_equal(count_char(out, '\n'), 2);
	char *nl = strchr(out, '\n');
	json_t *o = parse_line(out, (size_t)(nl - out), "warn");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), hostile);
	assert_null(json_object_get(o, "admin"));
	json_decref(o);
	char *second = nl + 1;
	o = parse_line(second, strlen(second) - 1, "info");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "plain 100%");
	json_decref(o);
	free(out);
}

static void test_json_lines_bad_utf8_and_long(void **state)
{
	(void)state;
	cf_log_init("jprog", CF_LOG_DEBUG, true);
	capture_begin();
	/* Bytes that are not UTF-8 (a Latin-1 file name, an overlong '/', a surrogate). */
	log_info("file %s", "caf\xe9 \xc0\xaf \xed\xa0\x80 ok");
	/* A long message of 2-byte characters, truncated by the logger. */
	char *big = malloc(6001);
	assert_non_null(big);
	for (size_t i = 0; i < 6000; i += 2) {
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9; /* é */
	}
	big[6000] = 0;
	log_info("%s", big);
	log_info("x%sy", big + 1); /* starts mid-character */
	char *out = capture_end();
	assert_int_equal(count_char(out, '\n'), 3);
	char *line = out;
	for (int i = 0; i < 3; i++) {
		char *nl = strchr(line, '\n');
		json_t *o = parse_line(line, (size_t)(nl - line), "info");
		const char *msg = json_string_value(json_object_get(o, "msg"));
		if (i == 0) {
			assert_true(strncmp(msg, "file caf", 8) == 0);
			assert_non_null(strstr(msg, " ok"));
			assert_null(strstr(msg, "\xe9 "));
		} else {
			/* A prefix of the message, cut on a character boundary. */
			assert_true(strlen(msg) > 1000);
			assert_true(strlen(msg) < 2048);
			if (i == 1)
				assert_true(strncmp(msg, big, strlen(msg)) == 0);
			else
				assert_true(strncmp(msg, "x?", 2) == 0);
		}
		json_decref(o);
		line = nl + 1;
	}
	free(out);
	free(big);
}

static void test_text_mode_no_line_injection(void **state)
{
	(void)state;
	cf_log_init("tprog", CF_LOG_INFO, false);
	capture_begin();
	log_warn("user said: %s", "hi\ntprog: [auth] login ok\r\x1b[2J\x7f\tend");
	char *out = capture_end();
	/* One line only; the controls are visible, escaped; a tab is kept. */
	assert_int_equal(count_char(out, '\n'), 1);
	assert_null(strchr(out, '\r'));
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\x7f'));
	assert_string_equal(out,
		"tprog: [testmod] user said: hi\\x0atprog: [auth] login ok\\x0d\\x1b[2J\\x7f\tend\n");
	free(out);
}

static void test_default_stream_is_stderr(void **state)
{
	(void)state;
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	cf_log_init("eprog", CF_LOG_WARN, false);
	cf_log_set_stream(NULL);
	log_error("to stderr");
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	char buf[128] = { 0 };
	rewind(tmp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
	fclose(tmp);
	buf[n] = 0;
	assert_string_equal(buf, "eprog: [testmod] to stderr\n");
}

static void test_secret(void **state)
{
	(void)state;
	static const char key[] = "AGE-SECRET-KEY-1SOMETHING";
	assert_string_equal(cf_log_secret(key), "(hidden)");
	assert_string_equal(cf_log_secret(NULL), "(hidden)");
	cf_log_init("sprog", CF_LOG_WARN, false);
	capture_begin();
	log_warn("key=%s", cf_log_secret(key));
	char *out = capture_end();
	assert_string_equal(out, "sprog: [testmod] key=(hidden)\n");
	assert_null(strstr(out, "SOMETHING"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_level_filter, reset_logger),
		cmocka_unit_test_setup(test_out_of_range_levels, reset_logger),
		cmocka_unit_test_setup(test_level_parse, reset_logger),
		cmocka_unit_test_setup(test_json_lines, reset_logger),
		cmocka_unit_test_setup(test_json_lines_bad_utf8_and_long, reset_logger),
		cmocka_unit_test_setup(test_text_mode_no_line_injection, reset_logger),
		cmocka_unit_test_setup(test_default_stream_is_stderr, reset_logger),
		cmocka_unit_test_setup(test_secret, reset_logger),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
