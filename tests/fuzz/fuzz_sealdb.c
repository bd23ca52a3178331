/*
 * Fuzzes the sealed database parser and unsealer (cf_sealdb_open_bytes,
 * the code cf_sealdb_open runs on a file's bytes), with nothing on disk.
 * The valid corpus files were sealed under the fixed test key below, so
 * mutations reach the wraps and the AEAD as well as the header; only an
 * authentic file may open, and then it must agree with its header.
 *
 * The corpus is made by this same file, built with -DSEALDB_MAKE_CORPUS
 * (see main() at the end):
 *   cc -DSEALDB_MAKE_CORPUS -D_GNU_SOURCE -Iinclude tests/fuzz/fuzz_sealdb.c \
 *      build/lib/libcoffer.a -lcrypto -lsqlite3 -o /tmp/mk && \
 *   /tmp/mk tests/fuzz/corpus/sealdb
 */
#include <stdlib.h>
#include <string.h>

#include "coffer/sealdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test key only: it seals the corpus and nothing else. */
static const uint8_t fuzz_key[CF_SEALDB_KEY_LEN] = "coffer sealdb fuzz corpus key 1";

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	while (n--)
		v = v << 8 | p[n];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cf_sealdb *db = NULL;
	cf_err rc = cf_sealdb_open_bytes(data, size, fuzz_key, &db);
	if (rc != CF_OK) {
		if (db)
			abort();
		switch (rc) {
		case CF_ERR_PARSE:
		case CF_ERR_TRUNCATED:
		case CF_ERR_TRAILING:
		case CF_ERR_UNSUPPORTED:
		case CF_ERR_TOO_BIG:
		case CF_ERR_AUTH:
			return 0;
		default:
			abort(); /* no input may make the unsealer fail otherwise */
		}
	}
	/* Opened, so authentic: the header must be what it says. */
	if (size < 8 + 2 + 8 + 2 + 62 + 12 + 8 + 16 || memcmp(data, CF_SEALDB_MAGIC, 8) != 0)
		abort();
	uint64_t generation = le(data + 10, 8);
	size_t nwraps = (size_t)le(data + 18, 2);
	size_t ct_off = 20 + 62 * nwraps + 12 + 8;
	if (generation == 0 || generation != cf_sealdb_generation(db) || nwraps == 0 ||
	    nwraps > CF_SEALDB_MAX_WRAPS || le(data + ct_off - 8, 8) + ct_off + 16 != size)
		abort();
	/* The database is usable, and a database from bytes never writes a file. */
	sqlite3 *sql = cf_sealdb_handle(db);
	if (sqlite3_exec(sql, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	if (cf_sealdb_commit(db) != CF_ERR_ARG)
		abort();
	cf_sealdb_close(db);
	return 0;
}

#ifdef SEALDB_MAKE_CORPUS
#include <stdio.h>
#include <unistd.h>

static char dir[4096];

static void put(const char *name, const void *bytes, size_t len)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(bytes, 1, len, f) != len) || fclose(f) != 0)
		abort();
	/* Every seed must pass through the target as it will in replay. */
	LLVMFuzzerTestOneInput(bytes, len);
}

/* Commits `statements` (and `extra` more empty commits) under key; returns the file. */
static uint8_t *make(const uint8_t *key, const char *statements, unsigned extra, size_t *len)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/.tmp.db", dir);
	unlink(path);
	cf_sealdb *db = NULL;
	if (cf_sealdb_open(path, key, &db) != CF_OK)
		abort();
	if (statements &&
	    sqlite3_exec(cf_sealdb_handle(db), statements, NULL, NULL, NULL) != SQLITE_OK)
		abort();
	for (unsigned i = 0; i <= extra; i++) {
		if (cf_sealdb_commit(db) != CF_OK)
			abort();
	}
	cf_sealdb_close(db);
	FILE *f = fopen(path, "rb");
	if (!f)
		abort();
	uint8_t *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	unlink(path);
	return buf;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	snprintf(dir, sizeof(dir), "%s", argv[1]);
	size_t len;
	uint8_t *e = make(fuzz_key, NULL, 0, &len);
	put("valid-empty", e, len);
	free(e);

	/* 512-byte pages keep the seeds small: two pages. */
	uint8_t *t = make(fuzz_key,
			  "PRAGMA page_size=512;"
			  "CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB);"
			  "INSERT INTO kv VALUES('org/alice', x'00112233'), ('org/bob', NULL),"
			  " ('key/7', 'wrapped');",
			  2, &len);
	put("valid-kv", t, len);
	uint8_t *c = malloc(len + 64 + 62);
	const size_t ct = 20 + 62 + 12 + 8;

	memcpy(c, t, len);
	c[ct + 100] ^= 0x10;
	put("flipped-ciphertext", c, len);
	memcpy(c, t, len);
	c[20 + 2 + 12 + 5] ^= 0x01;
	put("flipped-wrap", c, len);
	put("truncated", t, len - 1);
	memcpy(c, t, len);
	c[len] = 0;
	put("trailing", c, len + 1);
	memcpy(c, t, len);
	c[8] = 2;
	put("version-2", c, len);
	memcpy(c, t, len);
	c[20] = 2;
	put("kind-2", c, len);
	memcpy(c, t, len);
	c[21] = 1;
	put("reserved-1", c, len);
	memcpy(c, t, len);
	c[18] = 9;
	put("wraps-9", c, len);
	memcpy(c, t, len);
	memset(c + ct - 8, 0xff, 8);
	put("length-huge", c, len);
	/* The wrap twice: parses, unwraps, but the header is not the one sealed. */
	memcpy(c, t, 82);
	memcpy(c + 82, t + 20, 62);
	memcpy(c + 144, t + 82, len - 82);
	c[18] = 2;
	put("two-wraps", c, len + 62);
	put("empty", "", 0);
	free(c);
	free(t);

	uint8_t other[CF_SEALDB_KEY_LEN];
	memset(other, 0x5a, sizeof(other));
	t = make(other, "PRAGMA page_size=512; CREATE TABLE kv(k, v)", 0, &len);
	put("other-key", t, len);
	free(t);
	return 0;
}
#endif
