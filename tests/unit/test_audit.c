/*
 * Unit tests for lib/audit.c: the writer (open, append, resume, locking,
 * threads), the verifier (every single-byte corruption of an entry, lost,
 * swapped and repeated lines, torn tails, another key, hostile input),
 * and the format itself, rebuilt here from docs/audit.md by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "coffer/audit.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/json.h"

static uint8_t seed_a[CF_ED25519_SEED_LEN], pub_a[CF_ED25519_PUB_LEN];
static uint8_t seed_b[CF_ED25519_SEED_LEN], pub_b[CF_ED25519_PUB_LEN];
static char tmpdir[64];

static int setup_keys(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(seed_a); i++) {
		seed_a[i] = (uint8_t)(i + 1);
		seed_b[i] = (uint8_t)(0xa0 + i);
	}
	if (cf_ed25519_public(seed_a, pub_a) != CF_OK || cf_ed25519_public(seed_b, pub_b) != CF_OK)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/coffer-audit-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
	unlink(out);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	uint8_t *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/*
 * Verifies in memory and as a stream read in odd-sized pieces, and
 * checks that both give the same answer and the same report.
 */
static cf_err verify(const void *text, size_t len, const uint8_t *pub, cf_audit_report *rep)
{
	cf_err rc = cf_audit_verify(text, len, pub, rep);
	static const size_t pieces[] = { 1, 4093 };
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		cf_mem_reader m = { .data = text, .len = len, .max_read = pieces[i] };
		cf_audit_report r2;
		cf_err rc2 = cf_audit_verify_reader(cf_mem_reader_of(&m), pub, &r2);
		assert_int_equal(rc2, rc);
		assert_int_equal(r2.entries, rep->entries);
		assert_int_equal(r2.fault, rep->fault);
		assert_int_equal(r2.line, rep->line);
		assert_int_equal(r2.seq_known, rep->seq_known);
		assert_int_equal(r2.seq, rep->seq);
		assert_memory_equal(r2.last_hash, rep->last_hash, CF_AUDIT_HASH_LEN);
		assert_string_equal(r2.reason, rep->reason);
		assert_string_equal(r2.last_time, rep->last_time);
	}
	/* A failure names a line and a reason; success names neither. */
	if (rc == CF_OK) {
		assert_int_equal(rep->fault, CF_AUDIT_FAULT_NONE);
		assert_int_equal(rep->line, 0);
		assert_string_equal(rep->reason, "");
	} else if (rc == CF_ERR_AUTH) {
		assert_int_not_equal(rep->fault, CF_AUDIT_FAULT_NONE);
		assert_int_equal(rep->line, rep->entries + 1);
		assert_true(rep->reason[0] != '\0');
		assert_null(strchr(rep->reason, '\n'));
	}
	return rc;
}

static void expect_bad(const void *text, size_t len, const uint8_t *pub, uint64_t line,
		       cf_audit_fault fault)
{
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub, &rep), CF_ERR_AUTH);
	if (rep.line != line || (fault != CF_AUDIT_FAULT_NONE && rep.fault != fault))
		fail_msg("expected line %llu (%s), got line %llu (%s): %s", (unsigned long long)line,
			 cf_audit_fault_name(fault), (unsigned long long)rep.line,
			 cf_audit_fault_name(rep.fault), rep.reason);
}

/* Offsets of the start of each line (1-based; starts[n+1] = len). */
static size_t line_starts(const uint8_t *text, size_t len, size_t *starts, size_t cap)
{
	size_t n = 0;
	starts[1] = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			n++;
			assert_true(n + 1 < cap);
			starts[n + 1] = i + 1;
		}
	}
	return n;
}

static void write_log(const char *path, const uint8_t *seed, const uint8_t *pub, unsigned n)
{
	cf_audit_log *log = NULL;
	assert_int_equal(cf_audit_open(path, seed, pub, &log), CF_OK);
	for (unsigned i = 0; i < n; i++) {
		char object[64];
		snprintf(object, sizeof(object), "dataset/%u", i);
		assert_int_equal(cf_audit_append(log, i % 3 ? "org:alice" : "kms", "key.release",
						 object, i % 5 ? "ok" : "denied: measurement"),
				 CF_OK);
	}
	cf_audit_close(log);
}

/*
 * The format, built from the documentation alone: the entry without hash
 * and sig in canonical JSON, its SHA-256, and an Ed25519 signature of
 * "coffer-audit-v1:" || hash. Returns the whole entry as an object.
 */
static json_t *craft(const uint8_t *seed, long long seq, const char *when, const char *actor,
		     const char *operation, const char *object, const char *result,
		     const uint8_t prev[32], uint8_t hash_out[32])
{
	char prevhex[65], hashhex[65], sigb64[89];
	uint8_t hash[32], msg[48], sig[64];
	cf_hex_encode(prev, 32, prevhex);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "actor", actor, "object",
			      object, "operation", operation, "prev", prevhex, "result", result,
			      "seq", (json_int_t)seq, "time", when);
	assert_non_null(o);
	char *canon = NULL;
	size_t clen = 0;
	assert_int_equal(cf_json_canonical(o, &canon, &clen), CF_OK);
	assert_int_equal(cf_hash(CF_SHA256, canon, clen, hash), CF_OK);
	free(canon);
	memcpy(msg, "coffer-audit-v1:", 16);
	memcpy(msg + 16, hash, 32);
	assert_int_equal(cf_ed25519_sign(seed, msg, sizeof(msg), sig), CF_OK);
	cf_hex_encode(hash, 32, hashhex);
	cf_b64_encode(sig, 64, true, sigb64);
	json_object_set_new(o, "hash", json_string(hashhex));
	json_object_set_new(o, "sig", json_string(sigb64));
	if (hash_out)
		memcpy(hash_out, hash, 32);
	return o;
}

/* Appends the canonical line of o (and a newline) to text, consuming o. */
static void emit(char **text, size_t *len, json_t *o)
{
	char *canon = NULL;
	size_t clen = 0;
	assert_int_equal(cf_json_canonical(o, &canon, &clen), CF_OK);
	json_decref(o);
	*text = realloc(*text, *len + clen + 2);
	assert_non_null(*text);
	memcpy(*text + *len, canon, clen);
	(*text)[*len + clen] = '\n';
	*len += clen + 1;
	(*text)[*len] = '\0';
	free(canon);
}

/* A crafted log of n good entries; *head gets the last hash. */
static void craft_log(char **text, size_t *len, unsigned n, uint8_t head[32])
{
	uint8_t prev[32] = { 0 };
	*text = NULL;
	*len = 0;
	for (unsigned i = 1; i <= n; i++) {
		char when[32];
		snprintf(when, sizeof(when), "2025-07-01T12:00:%02u.%03uZ", i % 60, i);
		emit(text, len, craft(seed_a, i, when, "org:bob", "task.approve", "task/7", "ok", prev, prev));
	}
	if (head)
		memcpy(head, prev, 32);
}

static void test_append_reopen_verify(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "main.log");
	write_log(path, seed_a, pub_a, 1000);

	cf_audit_log *log = NULL;
	uint64_t seq;
	uint8_t head[CF_AUDIT_HASH_LEN];
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_OK);
	cf_audit_head(log, &seq, head);
	assert_int_equal(seq, 1000);
	for (int i = 0; i < 25; i++)
		assert_int_equal(cf_audit_append(log, "cofferd", "instance.start", "", "ok"), CF_OK);
	cf_audit_head(log, &seq, head);
	assert_int_equal(seq, 1025);
	cf_audit_close(log);

	size_t len;
	uint8_t *text = slurp(path, &len);
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 1025);
	assert_memory_equal(rep.last_hash, head, CF_AUDIT_HASH_LEN);
	assert_int_equal(strlen(rep.last_time), CF_AUDIT_TIME_LEN);
	memset(&rep, 0xff, sizeof(rep));
	assert_int_equal(cf_audit_verify_file(path, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 1025);
	assert_memory_equal(rep.last_hash, head, CF_AUDIT_HASH_LEN);

	/* The first line, checked against the documented format by hand. */
	const char *nl = memchr(text, '\n', len);
	assert_non_null(nl);
	json_t *e = NULL;
	assert_int_equal(cf_json_parse((const char *)text, (size_t)(nl - (const char *)text), NULL, &e), CF_OK);
	assert_int_equal(json_object_size(e), 9);
	long long s;
	const char *when, *prev;
	assert_int_equal(cf_json_get_int(e, "seq", &s), CF_OK);
	assert_int_equal(s, 1);
	assert_int_equal(cf_json_get_string(e, "prev", &prev), CF_OK);
	assert_string_equal(prev, "0000000000000000000000000000000000000000000000000000000000000000");
	assert_int_equal(cf_json_get_string(e, "time", &when), CF_OK);
	uint8_t zero[32] = { 0 }, h[32];
	const char *actor, *object, *op, *result;
	assert_int_equal(cf_json_get_string(e, "actor", &actor), CF_OK);
	assert_int_equal(cf_json_get_string(e, "object", &object), CF_OK);
	assert_int_equal(cf_json_get_string(e, "operation", &op), CF_OK);
	assert_int_equal(cf_json_get_string(e, "result", &result), CF_OK);
	assert_string_equal(actor, "kms");
	assert_string_equal(result, "denied: measurement");
	json_t *mine = craft(seed_a, 1, when, actor, op, object, result, zero, h);
	char *a = NULL;
	assert_int_equal(cf_json_canonical(mine, &a, NULL), CF_OK);
	assert_int_equal(strlen(a), (size_t)(nl - (const char *)text));
	assert_memory_equal(a, text, strlen(a));
	free(a);
	json_decref(mine);
	json_decref(e);
	free(text);
}

static void test_every_byte_of_an_entry(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "flip.log");
	write_log(path, seed_a, pub_a, 20);
	size_t len;
	uint8_t *text = slurp(path, &len);
	size_t starts[32];
	assert_int_equal(line_starts(text, len, starts, 32), 20);
	const size_t k = 10;
	static const uint8_t masks[] = { 0x01, 0x02, 0x20, 0x40, 0x80, 0xff };
	size_t tried = 0;
	for (size_t off = starts[k]; off < starts[k + 1]; off++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			text[off] ^= masks[m];
			expect_bad(text, len, pub_a, k, CF_AUDIT_FAULT_NONE);
			text[off] ^= masks[m];
			tried++;
		}
	}
	assert_true(tried > 6 * 300);
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	free(text);
}

/* Replaces the first character of the value of "name" in line k. */
static void poke(uint8_t *text, const size_t *starts, size_t k, const char *name, size_t skip,
		 char with)
{
	char needle[32];
	snprintf(needle, sizeof(needle), "\"%s\":", name);
	uint8_t *p = memmem(text + starts[k], starts[k + 1] - starts[k], needle, strlen(needle));
	assert_non_null(p);
	p += strlen(needle) + skip;
	assert_int_not_equal(*p, with);
	*p = (uint8_t)with;
}

static void test_each_field_names_its_fault(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "fields.log");
	write_log(path, seed_a, pub_a, 20);
	size_t len;
	uint8_t *orig = slurp(path, &len);
	uint8_t *text = malloc(len);
	size_t starts[32];
	line_starts(orig, len, starts, 32);
	const size_t k = 12; /* seq 12 */
	static const struct {
		const char *field;
		size_t skip;
		char with;
		cf_audit_fault fault;
	} cases[] = {
		{ "actor", 1, 'X', CF_AUDIT_FAULT_HASH },
		{ "operation", 1, 'X', CF_AUDIT_FAULT_HASH },
		{ "object", 1, 'X', CF_AUDIT_FAULT_HASH },
		{ "result", 1, 'X', CF_AUDIT_FAULT_HASH },
		{ "time", 2, '1', CF_AUDIT_FAULT_HASH },       /* the year 21xx: later, fine */
		{ "time", 1, '1', CF_AUDIT_FAULT_TIME },       /* the year 10xx */
		{ "time", 6, '9', CF_AUDIT_FAULT_VALUE },      /* month 9x */
		{ "time", 24, 'z', CF_AUDIT_FAULT_VALUE },     /* lower-case Z */
		{ "seq", 0, '3', CF_AUDIT_FAULT_SEQ },         /* seq 32 */
		{ "seq", 0, '"', CF_AUDIT_FAULT_JSON },
		{ "prev", 1, 'g', CF_AUDIT_FAULT_VALUE },
		{ "prev", 64, 'x', CF_AUDIT_FAULT_VALUE },
		{ "hash", 1, 'g', CF_AUDIT_FAULT_VALUE },
		{ "sig", 1, '*', CF_AUDIT_FAULT_VALUE },
		{ "sig", 88, 'A', CF_AUDIT_FAULT_VALUE },      /* the padding */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(text, orig, len);
		poke(text, starts, k, cases[i].field, cases[i].skip, cases[i].with);
		expect_bad(text, len, pub_a, k, cases[i].fault);
	}
	/* Another valid digit in prev, hash and sig: a broken chain, hash, signature. */
	static const struct {
		const char *field;
		cf_audit_fault fault;
	} digit_cases[] = {
		{ "prev", CF_AUDIT_FAULT_PREV },
		{ "hash", CF_AUDIT_FAULT_HASH },
		{ "sig", CF_AUDIT_FAULT_SIGNATURE },
	};
	for (size_t i = 0; i < 3; i++) {
		memcpy(text, orig, len);
		char needle[16];
		snprintf(needle, sizeof(needle), "\"%s\":\"", digit_cases[i].field);
		uint8_t *p = memmem(text + starts[k], starts[k + 1] - starts[k], needle, strlen(needle));
		assert_non_null(p);
		p += strlen(needle);
		*p = *p == 'a' ? 'b' : 'a';
		expect_bad(text, len, pub_a, k, digit_cases[i].fault);
	}
	/* A renamed key, a space, a CR before the newline. */
	memcpy(text, orig, len);
	uint8_t *p = memmem(text + starts[k], starts[k + 1] - starts[k], "\"actor\"", 7);
	p[3] = 'k';
	expect_bad(text, len, pub_a, k, CF_AUDIT_FAULT_FIELDS);
	memcpy(text, orig, len);
	p = memmem(text + starts[k], starts[k + 1] - starts[k], "\"seq\":", 6);
	p[5] = ' ';
	expect_bad(text, len, pub_a, k, CF_AUDIT_FAULT_JSON); /* `"seq" 12` */
	char *spaced = malloc(len + 2);
	memcpy(spaced, orig, starts[k + 1] - 1);
	memcpy(spaced + starts[k + 1] - 1, "\r\n", 2);
	memcpy(spaced + starts[k + 1] + 1, orig + starts[k + 1], len - starts[k + 1]);
	expect_bad(spaced, len + 1, pub_a, k, CF_AUDIT_FAULT_NOT_CANONICAL);
	memcpy(spaced, orig, starts[k] + 1);
	spaced[starts[k] + 1] = ' ';
	memcpy(spaced + starts[k] + 2, orig + starts[k] + 1, len - starts[k] - 1);
	expect_bad(spaced, len + 1, pub_a, k, CF_AUDIT_FAULT_NOT_CANONICAL);
	free(spaced);

	/* The report names the line and the seq the line claims. */
	memcpy(text, orig, len);
	poke(text, starts, k, "actor", 1, 'X');
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub_a, &rep), CF_ERR_AUTH);
	assert_int_equal(rep.entries, k - 1);
	assert_true(rep.seq_known);
	assert_int_equal(rep.seq, k);
	assert_string_equal(cf_audit_fault_name(rep.fault), "hash_mismatch");
	free(text);
	free(orig);
}

static void test_lines_lost_moved_repeated(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "lines.log");
	write_log(path, seed_a, pub_a, 30);
	size_t len;
	uint8_t *text = slurp(path, &len);
	size_t starts[40];
	assert_int_equal(line_starts(text, len, starts, 40), 30);
	uint8_t *buf = malloc(2 * len + 64);
	size_t n;
	cf_audit_report rep;

	/* Each line deleted in turn: the next line's seq is one too high. */
	for (size_t k = 1; k <= 30; k++) {
		size_t a = starts[k], b = starts[k + 1];
		memcpy(buf, text, a);
		memcpy(buf + a, text + b, len - b);
		n = len - (b - a);
		if (k == 30) {
			/* Cutting whole lines off the end is not visible: see the head. */
			assert_int_equal(verify(buf, n, pub_a, &rep), CF_OK);
			assert_int_equal(rep.entries, 29);
			continue;
		}
		expect_bad(buf, n, pub_a, k, CF_AUDIT_FAULT_SEQ);
		assert_int_equal(verify(buf, n, pub_a, &rep), CF_ERR_AUTH);
		assert_int_equal(rep.seq, (long long)k + 1);
	}
	/* Two neighbours swapped. */
	for (size_t k = 1; k < 30; k++) {
		size_t a = starts[k], b = starts[k + 1], c = starts[k + 2];
		memcpy(buf, text, a);
		memcpy(buf + a, text + b, c - b);
		memcpy(buf + a + (c - b), text + a, b - a);
		memcpy(buf + c, text + c, len - c);
		expect_bad(buf, len, pub_a, k, CF_AUDIT_FAULT_SEQ);
	}
	/* A line repeated right after itself, and at the end. */
	for (size_t k = 1; k <= 30; k++) {
		size_t a = starts[k], b = starts[k + 1];
		memcpy(buf, text, b);
		memcpy(buf + b, text + a, b - a);
		memcpy(buf + b + (b - a), text + b, len - b);
		expect_bad(buf, len + (b - a), pub_a, k + 1, CF_AUDIT_FAULT_SEQ);
		assert_int_equal(verify(buf, len + (b - a), pub_a, &rep), CF_ERR_AUTH);
		assert_int_equal(rep.seq, (long long)k);
	}
	memcpy(buf, text, len);
	memcpy(buf + len, text + starts[7], starts[8] - starts[7]);
	expect_bad(buf, len + starts[8] - starts[7], pub_a, 31, CF_AUDIT_FAULT_SEQ);

	/* The last line torn at every length. */
	for (size_t cut = 1; cut < starts[31] - starts[30]; cut++)
		expect_bad(text, len - cut, pub_a, 30, CF_AUDIT_FAULT_INCOMPLETE);

	/* Garbage after the end. */
	static const char *const garbage[] = { "hello\n", "hello", "\n", "{}\n", "\0\0\0\n", " ",
					       "{\"seq\":31}\n" };
	static const cf_audit_fault gfault[] = { CF_AUDIT_FAULT_JSON, CF_AUDIT_FAULT_INCOMPLETE,
						 CF_AUDIT_FAULT_EMPTY_LINE, CF_AUDIT_FAULT_FIELDS,
						 CF_AUDIT_FAULT_JSON, CF_AUDIT_FAULT_INCOMPLETE,
						 CF_AUDIT_FAULT_FIELDS };
	static const size_t glen[] = { 6, 5, 1, 3, 4, 1, 11 };
	for (size_t i = 0; i < sizeof(glen) / sizeof(glen[0]); i++) {
		memcpy(buf, text, len);
		memcpy(buf + len, garbage[i], glen[i]);
		expect_bad(buf, len + glen[i], pub_a, 31, gfault[i]);
	}
	/* Garbage before the start. */
	memcpy(buf, "\n", 1);
	memcpy(buf + 1, text, len);
	expect_bad(buf, len + 1, pub_a, 1, CF_AUDIT_FAULT_EMPTY_LINE);
	/* A log that starts in the middle of a chain. */
	expect_bad(text + starts[5], len - starts[5], pub_a, 1, CF_AUDIT_FAULT_SEQ);
	free(buf);
	free(text);
}

static void test_another_key(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "key.log");
	write_log(path, seed_b, pub_b, 10);
	size_t len;
	uint8_t *text = slurp(path, &len);
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_SIGNATURE);
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub_b, &rep), CF_OK);
	assert_int_equal(rep.entries, 10);
	assert_int_equal(cf_audit_verify_file(path, pub_a, &rep), CF_ERR_AUTH);
	assert_int_equal(rep.line, 1);
	assert_int_equal(rep.fault, CF_AUDIT_FAULT_SIGNATURE);

	/* The writer will not continue a chain signed by another key... */
	cf_audit_log *log = NULL;
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_AUTH);
	assert_null(log);
	/* ...nor sign with a seed that does not match the public key. */
	assert_int_equal(cf_audit_open(path, seed_a, pub_b, &log), CF_ERR_ARG);
	free(text);
}

struct worker {
	cf_audit_log *log;
	int id;
};

static void *append_many(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 250; i++) {
		char actor[32], object[32];
		snprintf(actor, sizeof(actor), "thread:%d", w->id);
		snprintf(object, sizeof(object), "item/%d", i);
		if (cf_audit_append(w->log, actor, "write", object, "ok") != CF_OK)
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "threads.log");
	cf_audit_log *log = NULL;
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_OK);
	pthread_t t[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ log, i };
		assert_int_equal(pthread_create(&t[i], NULL, append_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *res;
		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_null(res);
	}
	uint64_t seq;
	uint8_t head[32];
	cf_audit_head(log, &seq, head);
	assert_int_equal(seq, 1000);
	cf_audit_close(log);
	size_t len;
	uint8_t *text = slurp(path, &len);
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 1000);
	assert_memory_equal(rep.last_hash, head, 32);
	/* Every (thread, item) once. */
	for (int i = 0; i < 4; i++) {
		char needle[64];
		snprintf(needle, sizeof(needle), "\"actor\":\"thread:%d\"", i);
		size_t count = 0;
		for (uint8_t *p = text; (p = memmem(p, len - (size_t)(p - text), needle, strlen(needle)));
		     p++)
			count++;
		assert_int_equal(count, 250);
	}
	free(text);
}

static void test_hostile_input(void **state)
{
	(void)state;
	cf_audit_report rep;
	/* Empty: a good log of nothing. */
	assert_int_equal(verify("", 0, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 0);
	assert_string_equal(rep.last_time, "");
	assert_int_equal(verify(NULL, 0, pub_a, &rep), CF_OK);

	/* Huge lines, with and without a newline, and one right at the limit. */
	size_t big = 4u << 20;
	char *huge = malloc(big + 1);
	memset(huge, 'a', big);
	huge[big - 1] = '\n';
	expect_bad(huge, big, pub_a, 1, CF_AUDIT_FAULT_LINE_TOO_LONG);
	expect_bad(huge, big - 1, pub_a, 1, CF_AUDIT_FAULT_LINE_TOO_LONG);
	huge[CF_AUDIT_MAX_LINE] = '\n';
	expect_bad(huge, CF_AUDIT_MAX_LINE + 1, pub_a, 1, CF_AUDIT_FAULT_JSON);
	huge[CF_AUDIT_MAX_LINE] = 'a';
	huge[CF_AUDIT_MAX_LINE + 1] = '\n';
	expect_bad(huge, CF_AUDIT_MAX_LINE + 2, pub_a, 1, CF_AUDIT_FAULT_LINE_TOO_LONG);

	/* Deep nesting, inside and outside an object. */
	size_t depth = 10000; /* 20001 bytes: within the line limit */
	memset(huge, '[', depth);
	memset(huge + depth, ']', depth);
	huge[2 * depth] = '\n';
	expect_bad(huge, 2 * depth + 1, pub_a, 1, CF_AUDIT_FAULT_JSON);
	const char nested[] = "{\"actor\":{\"a\":1}}\n";
	expect_bad(nested, strlen(nested), pub_a, 1, CF_AUDIT_FAULT_JSON);
	const char array[] = "[1,2,3]\n";
	expect_bad(array, strlen(array), pub_a, 1, CF_AUDIT_FAULT_JSON);
	free(huge);

	/* NUL bytes: raw, escaped, and in place of a character of a good entry. */
	char *text;
	size_t len;
	craft_log(&text, &len, 3, NULL);
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	char *copy = malloc(len + 64);
	memcpy(copy, text, len);
	memcpy(copy + len, "\0\n", 2);
	expect_bad(copy, len + 2, pub_a, 4, CF_AUDIT_FAULT_JSON);
	memcpy(copy + len, "{\"a\":\"\\u0000\"}\n", 15);
	expect_bad(copy, len + 15, pub_a, 4, CF_AUDIT_FAULT_JSON);
	const char *not_utf8 = "{\"a\":\"\xff\xfe\"}\n";
	memcpy(copy + len, not_utf8, strlen(not_utf8));
	expect_bad(copy, len + strlen(not_utf8), pub_a, 4, CF_AUDIT_FAULT_JSON);
	char *second = memchr(copy, '\n', len) + 1;
	second[20] = '\0';
	expect_bad(copy, len, pub_a, 2, CF_AUDIT_FAULT_JSON);
	free(copy);
	free(text);

	/* Wrong types and a seq jansson cannot hold. */
	static const char *const bad[] = {
		"{\"seq\":1.0}\n", "{\"seq\":\"1\"}\n", "{\"seq\":99999999999999999999999}\n",
		"{\"seq\":1,\"seq\":1}\n", "null\n", "\"x\"\n", "{}\n", "{\n",
	};
	static const cf_audit_fault badf[] = {
		CF_AUDIT_FAULT_FIELDS, CF_AUDIT_FAULT_FIELDS, CF_AUDIT_FAULT_JSON, CF_AUDIT_FAULT_JSON,
		CF_AUDIT_FAULT_JSON,   CF_AUDIT_FAULT_JSON,   CF_AUDIT_FAULT_FIELDS, CF_AUDIT_FAULT_JSON,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(bad[i], strlen(bad[i]), pub_a, 1, badf[i]);

	/* Arguments. */
	assert_int_equal(cf_audit_verify("x\n", 2, pub_a, NULL), CF_ERR_ARG);
	assert_int_equal(cf_audit_verify(NULL, 5, pub_a, &rep), CF_ERR_ARG);
	assert_int_equal(cf_audit_verify_file("/nonexistent/audit.log", pub_a, &rep),
			 CF_ERR_NOT_FOUND);
	assert_int_equal(cf_audit_verify_file(tmpdir, pub_a, &rep), CF_ERR_IO);
}

/* Entries made by hand: the rules that the writer never breaks. */
static void test_crafted_entries(void **state)
{
	(void)state;
	char *text;
	size_t len;
	uint8_t head[32], zero[32] = { 0 }, h1[32], h2[32];
	cf_audit_report rep;
	craft_log(&text, &len, 5, head);
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 5);
	assert_memory_equal(rep.last_hash, head, 32);
	assert_string_equal(rep.last_time, "2025-07-01T12:00:05.005Z");
	free(text);

	struct {
		const char *when, *actor, *object;
		long long seq;
		int first_prev_bad;
		cf_audit_fault fault;
	} cases[] = {
		{ "2025-07-01T11:59:59.999Z", "a", "o", 2, 0, CF_AUDIT_FAULT_TIME },
		{ "2025-07-01T12:00:00.000Z", "a", "o", 2, 0, CF_AUDIT_FAULT_NONE }, /* equal is fine */
		{ "2025-02-29T12:00:00.000Z", "a", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2028-02-29T12:00:00.000Z", "a", "o", 2, 0, CF_AUDIT_FAULT_NONE },
		{ "2025-07-01T24:00:00.000Z", "a", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2025-07-01T12:00:60.000Z", "a", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2025-07-01 12:00:01.000Z", "a", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2025-07-01T12:00:01Z", "a", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2025-07-01T12:00:01.000+00:00", "a", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2025-07-01T12:00:01.000Z", "", "o", 2, 0, CF_AUDIT_FAULT_VALUE },
		{ "2025-07-01T12:00:01.000Z", "a", "", 2, 0, CF_AUDIT_FAULT_NONE },
		{ "2025-07-01T12:00:01.000Z", "a", "o", 3, 0, CF_AUDIT_FAULT_SEQ },
		{ "2025-07-01T12:00:01.000Z", "a", "o", 2, 1, CF_AUDIT_FAULT_PREV },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		text = NULL;
		len = 0;
		emit(&text, &len, craft(seed_a, 1, "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", zero, h1));
		if (cases[i].first_prev_bad)
			h1[0] ^= 1;
		emit(&text, &len, craft(seed_a, cases[i].seq, cases[i].when, cases[i].actor, "op",
					cases[i].object, "ok", h1, NULL));
		if (cases[i].fault == CF_AUDIT_FAULT_NONE)
			assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
		else
			expect_bad(text, len, pub_a, 2, cases[i].fault);
		free(text);
	}

	/* The first entry must have seq 1 and prev zero; seq 0 and -1 are malformed. */
	long long seqs[] = { 0, -1, 2 };
	cf_audit_fault sf[] = { CF_AUDIT_FAULT_VALUE, CF_AUDIT_FAULT_VALUE, CF_AUDIT_FAULT_SEQ };
	for (size_t i = 0; i < 3; i++) {
		text = NULL;
		len = 0;
		emit(&text, &len, craft(seed_a, seqs[i], "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", zero, NULL));
		expect_bad(text, len, pub_a, 1, sf[i]);
		free(text);
	}
	h2[0] = 1;
	memset(h2 + 1, 0, 31);
	text = NULL;
	len = 0;
	emit(&text, &len, craft(seed_a, 1, "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", h2, NULL));
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_PREV);
	free(text);

	/* Fields at and over their limit; control characters are escaped, not refused. */
	char *field = malloc(CF_AUDIT_MAX_FIELD + 2);
	memset(field, '\x01', CF_AUDIT_MAX_FIELD + 1);
	field[CF_AUDIT_MAX_FIELD + 1] = '\0';
	text = NULL;
	len = 0;
	emit(&text, &len, craft(seed_a, 1, "2025-07-01T12:00:00.000Z", field, "op", "o", "ok", zero, NULL));
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_VALUE);
	free(text);
	field[CF_AUDIT_MAX_FIELD] = '\0';
	text = NULL;
	len = 0;
	emit(&text, &len, craft(seed_a, 1, "2025-07-01T12:00:00.000Z", field, field, field, field, zero, NULL));
	assert_true(len - 1 <= CF_AUDIT_MAX_LINE);
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	free(text);
	free(field);

	/* Upper-case hex, an extra field, a missing field: all refused even when signed. */
	json_t *o = craft(seed_a, 1, "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", zero, h1);
	char upper[65];
	cf_hex_encode(h1, 32, upper);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	json_object_set_new(o, "hash", json_string(upper));
	text = NULL;
	len = 0;
	emit(&text, &len, o);
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_VALUE);
	free(text);
	o = craft(seed_a, 1, "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", zero, NULL);
	json_object_set_new(o, "v", json_integer(1));
	text = NULL;
	len = 0;
	emit(&text, &len, o);
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_FIELDS);
	assert_int_equal(verify(text, len, pub_a, &rep), CF_ERR_AUTH);
	assert_string_equal(rep.reason, "unexpected field \"v\"");
	free(text);
	o = craft(seed_a, 1, "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", zero, NULL);
	json_object_del(o, "result");
	text = NULL;
	len = 0;
	emit(&text, &len, o);
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_FIELDS);
	free(text);
	/* A signature over the bare hash (no context string) is not ours. */
	o = craft(seed_a, 1, "2025-07-01T12:00:00.000Z", "a", "op", "o", "ok", zero, h1);
	uint8_t sig[64];
	char sigb64[89];
	assert_int_equal(cf_ed25519_sign(seed_a, h1, 32, sig), CF_OK);
	cf_b64_encode(sig, 64, true, sigb64);
	json_object_set_new(o, "sig", json_string(sigb64));
	text = NULL;
	len = 0;
	emit(&text, &len, o);
	expect_bad(text, len, pub_a, 1, CF_AUDIT_FAULT_SIGNATURE);
	free(text);
}

static void test_append_arguments(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "args.log");
	cf_audit_log *log = NULL;
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_OK);
	char *big = malloc(CF_AUDIT_MAX_FIELD + 2);
	memset(big, '"', CF_AUDIT_MAX_FIELD + 1);
	big[CF_AUDIT_MAX_FIELD + 1] = '\0';
	assert_int_equal(cf_audit_append(log, big, "op", "o", "ok"), CF_ERR_TOO_BIG);
	assert_int_equal(cf_audit_append(log, "a", "op", big, "ok"), CF_ERR_TOO_BIG);
	assert_int_equal(cf_audit_append(log, "", "op", "o", "ok"), CF_ERR_ARG);
	assert_int_equal(cf_audit_append(log, "a", "", "o", "ok"), CF_ERR_ARG);
	assert_int_equal(cf_audit_append(log, "a", "op", "o", ""), CF_ERR_ARG);
	assert_int_equal(cf_audit_append(log, NULL, "op", "o", "ok"), CF_ERR_ARG);
	assert_int_equal(cf_audit_append(log, "a", "op", NULL, "ok"), CF_ERR_ARG);
	assert_int_equal(cf_audit_append(NULL, "a", "op", "o", "ok"), CF_ERR_ARG);
	assert_int_equal(cf_audit_append(log, "a\xff", "op", "o", "ok"), CF_ERR_ENCODING);
	assert_int_equal(cf_audit_append(log, "a", "op", "\xc0\xaf", "ok"), CF_ERR_ENCODING);
	assert_int_equal(cf_audit_append(log, "a", "op", "\xed\xa0\x80", "ok"), CF_ERR_ENCODING);
	assert_int_equal(cf_audit_append(log, "a", "op", "\xe2\x82", "ok"), CF_ERR_ENCODING);
	/* Nothing was written by the refusals. */
	uint64_t seq;
	uint8_t head[32];
	cf_audit_head(log, &seq, head);
	assert_int_equal(seq, 0);
	/* At the limits, with the worst escaping, and in other scripts. */
	big[CF_AUDIT_MAX_FIELD] = '\0';
	assert_int_equal(cf_audit_append(log, big, big, big, big), CF_OK);
	memset(big, '\x1f', CF_AUDIT_MAX_FIELD);
	assert_int_equal(cf_audit_append(log, big, big, big, big), CF_OK);
	assert_int_equal(cf_audit_append(log, "组织:甲", "密钥.释放", "数据集/😀", "denied: 策略"), CF_OK);
	assert_int_equal(cf_audit_append(log, "a\nb", "op\r\n", "line\x7f", "ok\t"), CF_OK);
	cf_audit_close(log);
	free(big);
	size_t len;
	uint8_t *text = slurp(path, &len);
	cf_audit_report rep;
	assert_int_equal(verify(text, len, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 4);
	size_t starts[8];
	assert_int_equal(line_starts(text, len, starts, 8), 4);
	assert_true(starts[3] - starts[2] - 1 <= CF_AUDIT_MAX_LINE);
	assert_true(starts[3] - starts[2] - 1 > 24000);
	assert_non_null(memmem(text, len, "\"actor\":\"a\\nb\"", 14));
	free(text);
}

static void test_open_refuses_bad_tails(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "tail.log");
	write_log(path, seed_a, pub_a, 5);
	size_t len;
	uint8_t *text = slurp(path, &len);
	cf_audit_log *log = NULL, *other = NULL;

	/* One writer at a time. */
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_OK);
	errno = 0;
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &other), CF_ERR_IO);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_null(other);
	cf_audit_close(log);

	/* A torn last line. */
	spit(path, text, len - 3);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_TRUNCATED);
	/* A forged last entry: its hash, then its signature. */
	size_t starts[8];
	line_starts(text, len, starts, 8);
	uint8_t *copy = malloc(len + 1);
	memcpy(copy, text, len);
	uint8_t *p = memmem(copy + starts[5], len - starts[5], "\"object\":\"", 10);
	p[10] ^= 1;
	spit(path, copy, len);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_AUTH);
	memcpy(copy, text, len);
	p = memmem(copy + starts[5], len - starts[5], "\"sig\":\"", 7);
	p[7] = p[7] == 'A' ? 'B' : 'A';
	spit(path, copy, len);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_AUTH);
	/* A malformed one. */
	memcpy(copy, text, len);
	copy[starts[5]] = '[';
	spit(path, copy, len);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_PARSE);
	spit(path, "\n", 1);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_PARSE);
	/* A tail too long to be an entry. */
	char *huge = malloc(CF_AUDIT_MAX_LINE + 10);
	memset(huge, 'a', CF_AUDIT_MAX_LINE + 10);
	huge[CF_AUDIT_MAX_LINE + 9] = '\n';
	spit(path, huge, CF_AUDIT_MAX_LINE + 10);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_ERR_TOO_BIG);
	free(huge);
	/* Not a file, no directory. */
	assert_int_equal(cf_audit_open(tmpdir, seed_a, pub_a, &log), CF_ERR_IO);
	assert_int_equal(cf_audit_open("/nonexistent/dir/audit.log", seed_a, pub_a, &log),
			 CF_ERR_NOT_FOUND);
	assert_null(log);

	/* The whole good log again: the writer resumes after entry 5. */
	spit(path, text, len);
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_OK);
	assert_int_equal(cf_audit_append(log, "a", "op", "o", "ok"), CF_OK);
	cf_audit_close(log);
	uint8_t *after = slurp(path, &len);
	cf_audit_report rep;
	assert_int_equal(verify(after, len, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 6);
	free(after);
	free(copy);
	free(text);
}

/* A last entry from the future: the next entry takes its time, not an earlier one. */
static void test_time_never_goes_back(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "future.log");
	uint8_t zero[32] = { 0 };
	char *text = NULL;
	size_t len = 0;
	emit(&text, &len, craft(seed_a, 1, "2999-12-31T23:59:59.999Z", "a", "op", "o", "ok", zero, NULL));
	spit(path, text, len);
	free(text);
	cf_audit_log *log = NULL;
	assert_int_equal(cf_audit_open(path, seed_a, pub_a, &log), CF_OK);
	assert_int_equal(cf_audit_append(log, "a", "op", "o", "ok"), CF_OK);
	cf_audit_close(log);
	cf_audit_report rep;
	assert_int_equal(cf_audit_verify_file(path, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 2);
	assert_string_equal(rep.last_time, "2999-12-31T23:59:59.999Z");
}

struct signer {
	const uint8_t *seed;
	int calls;
};

static cf_err test_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t sig[static 64])
{
	struct signer *s = ctx;
	s->calls++;
	assert_int_equal(len, 48);
	assert_memory_equal(msg, CF_AUDIT_SIG_CONTEXT, CF_AUDIT_SIG_CONTEXT_LEN);
	return cf_ed25519_sign(s->seed, msg, len, sig);
}

static void test_external_signer(void **state)
{
	(void)state;
	char path[128];
	path_of(path, sizeof(path), "signer.log");
	struct signer s = { seed_a, 0 };
	cf_audit_log *log = NULL;
	assert_int_equal(cf_audit_open_signer(path, pub_a, test_sign, &s, &log), CF_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cf_audit_append(log, "kms", "key.rotate", "key/1", "ok"), CF_OK);
	assert_int_equal(s.calls, 3);
	/* A signer holding another key: refused before anything is written. */
	s.seed = seed_b;
	assert_int_equal(cf_audit_append(log, "kms", "key.rotate", "key/1", "ok"), CF_ERR_AUTH);
	s.seed = seed_a;
	assert_int_equal(cf_audit_append(log, "kms", "key.rotate", "key/1", "ok"), CF_OK);
	cf_audit_close(log);
	cf_audit_report rep;
	assert_int_equal(cf_audit_verify_file(path, pub_a, &rep), CF_OK);
	assert_int_equal(rep.entries, 4);
	assert_int_equal(cf_audit_open_signer(path, pub_a, NULL, NULL, &log), CF_ERR_ARG);
}

static void test_fault_names(void **state)
{
	(void)state;
	assert_string_equal(cf_audit_fault_name(CF_AUDIT_FAULT_NONE), "none");
	assert_string_equal(cf_audit_fault_name(CF_AUDIT_FAULT_SIGNATURE), "bad_signature");
	assert_string_equal(cf_audit_fault_name((cf_audit_fault)99), "unknown");
	for (int f = 1; f <= CF_AUDIT_FAULT_SIGNATURE; f++)
		assert_string_not_equal(cf_audit_fault_name((cf_audit_fault)f), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_reopen_verify),
		cmocka_unit_test(test_every_byte_of_an_entry),
		cmocka_unit_test(test_each_field_names_its_fault),
		cmocka_unit_test(test_lines_lost_moved_repeated),
		cmocka_unit_test(test_another_key),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_crafted_entries),
		cmocka_unit_test(test_append_arguments),
		cmocka_unit_test(test_open_refuses_bad_tails),
		cmocka_unit_test(test_time_never_goes_back),
		cmocka_unit_test(test_external_signer),
		cmocka_unit_test(test_fault_names),
	};
	return cmocka_run_group_tests(tests, setup_keys, teardown_dir);
}
