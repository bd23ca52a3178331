/*
 * enclave/output: RFC 4180 quoting of every kind of value, a round trip
 * through the enclave's own CSV reader, recipients taken only from the
 * KMS's statement (and refused when it is malformed), and encryption that
 * the recipient's identity opens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "coffer/age.h"
#include "coffer/buf.h"
#include "coffer/json.h"
#include "csv.h"
#include "output.h"

static void field(const char *in, const char *want)
{
	cf_buf b;
	cf_buf_init(&b, 1024, false);
	assert_int_equal(cf_output_csv_field(&b, (const uint8_t *)in, strlen(in)), CF_OK);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_string_equal(b.data ? (const char *)b.data : "", want);
	cf_buf_free(&b);
}

static void test_field_quoting(void **state)
{
	(void)state;
	field("plain", "plain");
	field("", "");
	field(" spaced ", " spaced ");
	field("a,b", "\"a,b\"");
	field("say \"hi\"", "\"say \"\"hi\"\"\"");
	field("\"", "\"\"\"\"");
	field("\"\"", "\"\"\"\"\"\"");
	field("line\nbreak", "\"line\nbreak\"");
	field("cr\rhere", "\"cr\rhere\"");
	field("crlf\r\n", "\"crlf\r\n\"");
	field("\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9");
	/* A leading U+FEFF is data, not the file's byte order mark. */
	field("\xef\xbb\xbfx", "\"\xef\xbb\xbfx\"");
	field("x\xef\xbb\xbf", "x\xef\xbb\xbf");
	/* A limit on the buffer is a clean failure. */
	cf_buf small;
	cf_buf_init(&small, 4, false);
	assert_int_equal(cf_output_csv_field(&small, (const uint8_t *)"a,bcdef", 7), CF_ERR_TOO_BIG);
	cf_buf_free(&small);
}

static const char values_sql[] =
	"SELECT NULL AS n, 42 AS i, -9223372036854775808 AS min, 1.5 AS r, 1e20 AS big, "
	"0.1 AS tenth, 'a,b' AS comma, 'say \"hi\"' AS quote, 'two' || char(10) || 'lines' AS nl, "
	"'' AS empty, x'00ff10' AS blob, 'x\"y,z' AS \"odd, name\"";

typedef struct seen_t {
	size_t records;
	char fields[12][32];
} seen_t;

/* Keeps the fields of the second record (the row). */
static cf_err collect(void *arg, const cf_csv_field *f, size_t nf, uint64_t rec, uint64_t line)
{
	seen_t *seen = arg;
	(void)line;
	seen->records++;
	if (rec != 2)
		return CF_OK;
	assert_int_equal(nf, 12);
	for (size_t i = 0; i < nf; i++) {
		assert_true(f[i].len < 32);
		memcpy(seen->fields[i], f[i].data, f[i].len);
		seen->fields[i][f[i].len] = '\0';
	}
	return CF_OK;
}

static void test_rows(void **state)
{
	(void)state;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	cf_buf b;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, values_sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_count(st);
	cf_buf_init(&b, 4096, true);
	assert_int_equal(cf_output_csv_header(&b, st, n), CF_OK);
	assert_int_equal(cf_output_csv_row(&b, st, n), CF_OK);
	assert_int_equal(cf_output_csv_row(&b, st, 2), CF_OK);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_string_equal((const char *)b.data,
			    "n,i,min,r,big,tenth,comma,quote,nl,empty,blob,\"odd, name\"\r\n"
			    ",42,-9223372036854775808,1.5,1.0e+20,0.1,\"a,b\",\"say \"\"hi\"\"\","
			    "\"two\nlines\",\"\",00ff10,\"x\"\"y,z\"\r\n"
			    ",42\r\n");

	/* The enclave's own reader reads back every field as it was. */
	seen_t seen = { 0 };
	cf_csv_reader *r = NULL;
	assert_int_equal(cf_csv_reader_new(NULL, collect, &seen, &r), CF_OK);
	assert_int_equal(cf_csv_reader_feed(r, b.data, b.len), CF_OK);
	assert_int_equal(cf_csv_reader_finish(r), CF_OK);
	cf_csv_reader_free(r);
	assert_int_equal(seen.records, 3);
	assert_string_equal(seen.fields[0], "");
	assert_string_equal(seen.fields[6], "a,b");
	assert_string_equal(seen.fields[7], "say \"hi\"");
	assert_string_equal(seen.fields[8], "two\nlines");
	assert_string_equal(seen.fields[11], "x\"y,z");
	sqlite3_finalize(st);
	sqlite3_close(db);
	cf_buf_free(&b);
}

static json_t *parse(const char *text)
{
	json_t *v = NULL;
	assert_int_equal(cf_json_parse(text, strlen(text), NULL, &v), CF_OK);
	return v;
}

static void test_recipients(void **state)
{
	(void)state;
	cf_age_x25519_key k1, k2;
	char r1[CF_AGE_RECIPIENT_STRLEN + 1], r2[CF_AGE_RECIPIENT_STRLEN + 1], text[1024], why[200];
	assert_int_equal(cf_age_keygen(&k1), CF_OK);
	assert_int_equal(cf_age_keygen(&k2), CF_OK);
	assert_int_equal(cf_age_recipient_format(k1.pub, r1), CF_OK);
	assert_int_equal(cf_age_recipient_format(k2.pub, r2), CF_OK);
	snprintf(text, sizeof(text),
		 "{\"task_digest\": \"00\", \"issued\": 1, \"outputs\": ["
		 "{\"name\": \"result\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"%s\"},"
		 " {\"org\": \"b\", \"recipient\": \"%s\"}]},"
		 "{\"name\": \"empty\", \"recipients\": []},"
		 "{\"name\": \"bad\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"age1nope\"}]},"
		 "{\"name\": \"twice\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"%s\"}]},"
		 "{\"name\": \"twice\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"%s\"}]}]}",
		 r1, r2, r1, r2);
	json_t *st = parse(text);
	cf_age_recipient *rc = NULL;
	size_t n = 0;
	assert_int_equal(cf_output_recipients(st, "result", &rc, &n, why, sizeof(why)), CF_OK);
	assert_int_equal(n, 2);
	assert_int_equal(rc[0].kind, CF_AGE_X25519);
	assert_memory_equal(rc[0].pub, k1.pub, 32);
	assert_memory_equal(rc[1].pub, k2.pub, 32);
	free(rc);
	assert_int_equal(cf_output_recipients(st, "nosuch", &rc, &n, why, sizeof(why)),
			 CF_ERR_NOT_FOUND);
	assert_null(rc);
	assert_string_equal(why, "the KMS's statement has no output nosuch");
	assert_int_equal(cf_output_recipients(st, "empty", &rc, &n, why, sizeof(why)), CF_ERR_PARSE);
	assert_int_equal(cf_output_recipients(st, "bad", &rc, &n, why, sizeof(why)), CF_ERR_PARSE);
	assert_non_null(strstr(why, "recipient 1 of output bad"));
	assert_int_equal(cf_output_recipients(st, "twice", &rc, &n, why, sizeof(why)), CF_ERR_PARSE);
	json_t *none = parse("{\"outputs\": 3}");
	assert_int_equal(cf_output_recipients(none, "result", &rc, &n, why, sizeof(why)),
			 CF_ERR_PARSE);
	assert_int_equal(cf_output_recipients(NULL, "result", &rc, &n, why, sizeof(why)),
			 CF_ERR_PARSE);
	json_decref(none);
	json_decref(st);
	cf_age_key_wipe(&k1);
	cf_age_key_wipe(&k2);
}

static void test_encrypt(void **state)
{
	(void)state;
	cf_age_identity id[2];
	cf_age_recipient rc[2];
	cf_buf csv, ct, pt;
	memset(id, 0, sizeof(id));
	memset(rc, 0, sizeof(rc));
	for (int i = 0; i < 2; i++) {
		id[i].kind = CF_AGE_X25519;
		assert_int_equal(cf_age_keygen(&id[i].key), CF_OK);
		rc[i].kind = CF_AGE_X25519;
		memcpy(rc[i].pub, id[i].key.pub, 32);
	}
	cf_buf_init(&csv, 1u << 24, true);
	cf_buf_init(&ct, 1u << 24, false);
	cf_buf_init(&pt, 1u << 24, true);
	assert_int_equal(cf_buf_append_str(&csv, "region,total\r\n"), CF_OK);
	/* More than one 64 KiB chunk. */
	for (int i = 0; i < 20000; i++)
		assert_int_equal(cf_buf_printf(&csv, "r%d,%d\r\n", i, i * 7), CF_OK);
	assert_int_equal(cf_output_encrypt(rc, 2, &csv, cf_buf_writer(&ct)), CF_OK);
	assert_true(ct.len > csv.len);
	assert_memory_equal(ct.data, "age-encryption.org/v1\n", 22);
	/* Either recipient opens it; nothing of the plaintext is in the ciphertext. */
	for (int i = 0; i < 2; i++) {
		cf_mem_reader m = { .data = ct.data, .len = ct.len };
		cf_buf_reset(&pt);
		assert_int_equal(cf_age_decrypt(&id[i], 1, cf_mem_reader_of(&m), cf_buf_writer(&pt)),
				 CF_OK);
		assert_int_equal(pt.len, csv.len);
		assert_memory_equal(pt.data, csv.data, csv.len);
	}
	assert_null(memmem(ct.data, ct.len, "region,total", 12));
	/* A stranger cannot. */
	cf_age_identity other;
	memset(&other, 0, sizeof(other));
	other.kind = CF_AGE_X25519;
	assert_int_equal(cf_age_keygen(&other.key), CF_OK);
	cf_mem_reader m = { .data = ct.data, .len = ct.len };
	cf_buf_reset(&pt);
	assert_int_equal(cf_age_decrypt(&other, 1, cf_mem_reader_of(&m), cf_buf_writer(&pt)),
			 CF_ERR_AGE_NO_MATCH);
	assert_int_equal(cf_output_encrypt(rc, 0, &csv, cf_buf_writer(&ct)), CF_ERR_ARG);
	cf_age_key_wipe(&other.key);
	for (int i = 0; i < 2; i++)
		cf_age_key_wipe(&id[i].key);
	cf_buf_free(&csv);
	cf_buf_free(&ct);
	cf_buf_free(&pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_quoting),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_encrypt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
