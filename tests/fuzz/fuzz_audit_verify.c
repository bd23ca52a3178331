/*
 * Fuzzes the audit log verifier. The corpus logs were written by
 * cf_audit_append under the fixed test key below, so mutations reach the
 * chain, hash and signature checks as well as the JSON. The in-memory and
 * the streaming verifier (fed in small pieces) must agree on every input,
 * and a report must be consistent with the bytes it describes.
 *
 * The corpus is made by this same file, built with -DAUDIT_MAKE_CORPUS
 * (see make_corpus() at the end):
 *   cc -DAUDIT_MAKE_CORPUS -D_GNU_SOURCE -Iinclude tests/fuzz/fuzz_audit_verify.c \
 *      build/lib/libcoffer.a -lcrypto -ljansson -o /tmp/mk && \
 *   /tmp/mk tests/fuzz/corpus/audit_verify
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test key only: it signs the corpus and nothing else. */
static const uint8_t fuzz_seed[CF_ED25519_SEED_LEN] = "coffer audit fuzz corpus key v1";

static const uint8_t *fuzz_pub(void)
{
	static uint8_t pub[CF_ED25519_PUB_LEN];
	static int ready;
	if (!ready) {
		if (cf_ed25519_public(fuzz_seed, pub) != CF_OK)
			abort();
		ready = 1;
	}
	return pub;
}

static int same(const cf_audit_report *a, const cf_audit_report *b)
{
	return a->entries == b->entries &&
	       memcmp(a->last_hash, b->last_hash, sizeof(a->last_hash)) == 0 &&
	       strcmp(a->last_time, b->last_time) == 0 && a->fault == b->fault &&
	       a->line == b->line && a->seq_known == b->seq_known && a->seq == b->seq &&
	       strcmp(a->reason, b->reason) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *pub = fuzz_pub();
	cf_audit_report a, b;
	cf_err ra = cf_audit_verify(data, size, pub, &a);
	cf_mem_reader m = { .data = data, .len = size, .max_read = size % 61 + 1 };
	cf_err rb = cf_audit_verify_reader(cf_mem_reader_of(&m), pub, &b);
	if (ra != rb || !same(&a, &b))
		abort();

	size_t lines = 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (ra == CF_OK) {
		/* Every line an entry, the last one terminated. */
		if (a.fault != CF_AUDIT_FAULT_NONE || a.line != 0 || a.entries != lines ||
		    (size && data[size - 1] != '\n'))
			abort();
	} else if (ra == CF_ERR_AUTH) {
		if (a.fault == CF_AUDIT_FAULT_NONE || a.line != a.entries + 1 || a.line > lines + 1 ||
		    a.reason[0] == '\0' || strchr(a.reason, '\n'))
			abort();
	} else {
		abort(); /* no input may make the verifier fail to decide */
	}
	return 0;
}

#ifdef AUDIT_MAKE_CORPUS
#include <stdio.h>
#include <unistd.h>

static char dir[4096];

static void put(const char *name, const void *data, size_t len)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
	/* Every seed must pass through the target as it will in replay. */
	LLVMFuzzerTestOneInput(data, len);
}

/* Writes n entries with the writer itself and returns the file's bytes. */
static char *make_log(const uint8_t *seed, unsigned n, size_t *len)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/.tmp.log", dir);
	unlink(path);
	uint8_t pub[CF_ED25519_PUB_LEN];
	cf_audit_log *log = NULL;
	if (cf_ed25519_public(seed, pub) != CF_OK || cf_audit_open(path, seed, pub, &log) != CF_OK)
		abort();
	static const char *const actors[] = { "kms", "org:alice", "org:bob", "cofferd", "组织:甲" };
	static const char *const ops[] = { "key.create", "key.release", "task.approve",
					   "instance.start", "dataset.upload" };
	static const char *const results[] = { "ok", "denied: measurement not allowed", "ok",
					       "error: tee unavailable", "ok" };
	for (unsigned i = 0; i < n; i++) {
		char object[64] = "";
		if (i % 4 != 3) /* an empty object now and then */
			snprintf(object, sizeof(object), "obj/%u\t\"q\"\\", i);
		if (cf_audit_append(log, actors[i % 5], ops[i % 5], object, results[i % 5]) != CF_OK)
			abort();
	}
	cf_audit_close(log);
	FILE *f = fopen(path, "rb");
	if (!f)
		abort();
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	unlink(path);
	return buf;
}

/* Start of line k (1-based) in text. */
static size_t line_at(const char *text, size_t len, unsigned k)
{
	size_t off = 0;
	for (unsigned i = 1; i < k; i++)
		off = (size_t)((const char *)memchr(text + off, '\n', len - off) - text) + 1;
	return off;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	size_t len;
	char *t = make_log(fuzz_seed, 1, &len);
	put("valid-1", t, len);
	free(t);
	t = make_log(fuzz_seed, 6, &len);
	put("valid-6", t, len);
	char *c = malloc(2 * len + 64);
	size_t l3 = line_at(t, len, 3), l4 = line_at(t, len, 4), l5 = line_at(t, len, 5);

	memcpy(c, t, len);
	c[l3 + 30] ^= 1;
	put("flipped-line3", c, len);
	memcpy(c, t, len);
	char *h = memmem(c + l4, l5 - l4, "\"hash\":\"", 8);
	h[8] = h[8] == 'a' ? 'b' : 'a';
	put("bad-hash-line4", c, len);
	memcpy(c, t, len);
	h = memmem(c + l4, l5 - l4, "\"sig\":\"", 7);
	h[7] = h[7] == 'A' ? 'B' : 'A';
	put("bad-sig-line4", c, len);
	/* Lines 3 and 4 swapped; line 4 deleted; line 3 repeated. */
	memcpy(c, t, l3);
	memcpy(c + l3, t + l4, l5 - l4);
	memcpy(c + l3 + (l5 - l4), t + l3, l4 - l3);
	memcpy(c + l5, t + l5, len - l5);
	put("swapped-3-4", c, len);
	memcpy(c, t, l4);
	memcpy(c + l4, t + l5, len - l5);
	put("deleted-4", c, len - (l5 - l4));
	memcpy(c, t, l4);
	memcpy(c + l4, t + l3, l4 - l3);
	memcpy(c + l4 + (l4 - l3), t + l4, len - l4);
	put("repeated-3", c, len + (l4 - l3));
	put("torn-tail", t, len - 7);
	memcpy(c, t, len);
	memcpy(c + len, "garbage\n", 8);
	put("garbage-after", c, len + 8);
	memcpy(c, t, l3 + 1);
	c[l3 + 1] = ' ';
	memcpy(c + l3 + 2, t + l3 + 1, len - l3 - 1);
	put("space-line3", c, len + 1);
	const char *nested = "{\"actor\":{\"a\":[1,{\"b\":null}]}}\n";
	put("nested", nested, strlen(nested));
	put("empty", "", 0);
	free(c);
	free(t);

	uint8_t other[CF_ED25519_SEED_LEN];
	memset(other, 0x5a, sizeof(other));
	t = make_log(other, 3, &len);
	put("other-key", t, len);
	free(t);
	return 0;
}
#endif
