/*
 * Unit tests for lib/sealdb.c: rows survive commit and reopen, the
 * generation counts, a wrong key or any changed, cut or extended file is
 * refused with the right error, nothing plaintext reaches the disk, a
 * failed commit leaves the old file, and the format itself, rebuilt here
 * from docs/sealdb.md by hand (including a file with two wraps, which
 * only a later version will write).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/sealdb.h"

/* The fuzzer's key (tests/fuzz/fuzz_sealdb.c): its corpus is sealed under it. */
static const uint8_t fuzz_key[CF_SEALDB_KEY_LEN] = "coffer sealdb fuzz corpus key 1";

static uint8_t key_a[CF_SEALDB_KEY_LEN], key_b[CF_SEALDB_KEY_LEN], key_c[CF_SEALDB_KEY_LEN];
static char tmpdir[64];

/* Offsets in a file with one wrap, from docs/sealdb.md. */
#define OFF_VERSION 8
#define OFF_GEN 10
#define OFF_NWRAPS 18
#define OFF_WRAP 20
#define WRAP_LEN 62
#define OFF_NONCE(n) (20 + 62 * (n))
#define OFF_CTLEN(n) (32 + 62 * (n))
#define OFF_CT(n) (40 + 62 * (n))
#define EMPTY_FILE_LEN (OFF_CT(1) + 16)

static const char canary[] = "canary: the-plaintext-must-not-reach-the-disk 7f3a9c";

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < CF_SEALDB_KEY_LEN; i++) {
		key_a[i] = (uint8_t)(i + 1);
		key_b[i] = (uint8_t)(0xb0 ^ i);
		key_c[i] = (uint8_t)(0x3c + 7 * i);
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/coffer-sealdb-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	chmod(tmpdir, 0700);
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

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void sql(cf_sealdb *db, const char *text)
{
	char *err = NULL;
	int rc = sqlite3_exec(cf_sealdb_handle(db), text, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", text, err ? err : "?");
}

static long long query_int(cf_sealdb *db, const char *text)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(cf_sealdb_handle(db), text, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A small committed database (512-byte pages: 2 pages of ciphertext). */
static uint8_t *small_file(const char *name, size_t *len)
{
	char path[128];
	cf_sealdb *db = NULL;
	path_of(path, sizeof(path), name);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "PRAGMA page_size=512; CREATE TABLE t(x); INSERT INTO t VALUES('hi');");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	cf_sealdb_close(db);
	uint8_t *file = slurp(path, len);
	assert_int_equal(*len, OFF_CT(1) + 1024 + 16);
	return file;
}

/* --- the format by hand, from docs/sealdb.md --- */

static void hand_wrap(const uint8_t key[32], const uint8_t dek[32], uint8_t out[WRAP_LEN])
{
	cf_aead *a = NULL;
	uint8_t aad[22];
	memcpy(aad, "coffer-sealdb-v1 wrap", 21);
	aad[21] = 1;
	out[0] = 1;
	out[1] = 0;
	assert_int_equal(cf_random(out + 2, 12), CF_OK);
	assert_int_equal(cf_aead_new(CF_AES_256_GCM, key, &a), CF_OK);
	assert_int_equal(cf_aead_seal(a, out + 2, aad, sizeof(aad), dek, 32, out + 14, out + 46),
			 CF_OK);
	cf_aead_free(a);
}

static cf_aead *hand_data_key(const uint8_t dek[32], uint64_t generation)
{
	uint8_t info[29], key[32];
	cf_aead *a = NULL;
	memcpy(info, "coffer-sealdb-v1 data", 21);
	put_le64(info + 21, generation);
	assert_int_equal(cf_hkdf_sha256(dek, 32, NULL, 0, info, sizeof(info), key, 32), CF_OK);
	assert_int_equal(cf_aead_new(CF_AES_256_GCM, key, &a), CF_OK);
	cf_wipe(key, sizeof(key));
	return a;
}

/* Unseals a one-wrap file: returns the database image; *dek gets the DEK. */
static uint8_t *hand_unseal(const uint8_t *file, size_t len, const uint8_t key[32],
			    uint8_t dek[32], size_t *image_len)
{
	assert_true(len >= EMPTY_FILE_LEN);
	assert_memory_equal(file, "COFFERDB", 8);
	assert_int_equal(file[OFF_VERSION] | file[OFF_VERSION + 1] << 8, 1);
	assert_int_equal(file[OFF_NWRAPS] | file[OFF_NWRAPS + 1] << 8, 1);
	const uint8_t *w = file + OFF_WRAP;
	assert_int_equal(w[0], 1);
	assert_int_equal(w[1], 0);
	cf_aead *a = NULL;
	uint8_t aad[22];
	memcpy(aad, "coffer-sealdb-v1 wrap", 21);
	aad[21] = 1;
	assert_int_equal(cf_aead_new(CF_AES_256_GCM, key, &a), CF_OK);
	assert_int_equal(cf_aead_open(a, w + 2, aad, sizeof(aad), w + 14, 32, w + 46, dek), CF_OK);
	cf_aead_free(a);

	uint64_t ct_len = le64(file + OFF_CTLEN(1));
	assert_int_equal(len, OFF_CT(1) + ct_len + 16);
	uint8_t *image = malloc(ct_len + 1);
	assert_non_null(image);
	a = hand_data_key(dek, le64(file + OFF_GEN));
	assert_int_equal(cf_aead_open(a, file + OFF_NONCE(1), file, OFF_CT(1), file + OFF_CT(1),
				      ct_len, file + OFF_CT(1) + ct_len, image),
			 CF_OK);
	cf_aead_free(a);
	/* The key of another generation does not open it. */
	a = hand_data_key(dek, le64(file + OFF_GEN) + 1);
	assert_int_equal(cf_aead_open(a, file + OFF_NONCE(1), file, OFF_CT(1), file + OFF_CT(1),
				      ct_len, file + OFF_CT(1) + ct_len, image),
			 CF_ERR_AUTH);
	cf_aead_free(a);
	/* The AUTH failure wiped image; decrypt again for the caller. */
	a = hand_data_key(dek, le64(file + OFF_GEN));
	assert_int_equal(cf_aead_open(a, file + OFF_NONCE(1), file, OFF_CT(1), file + OFF_CT(1),
				      ct_len, file + OFF_CT(1) + ct_len, image),
			 CF_OK);
	cf_aead_free(a);
	*image_len = ct_len;
	return image;
}

/* Seals image with the given wraps (each WRAP_LEN bytes) into a new file. */
static uint8_t *hand_seal(const uint8_t *wraps, uint16_t nwraps, const uint8_t dek[32],
			  uint64_t generation, const uint8_t *image, size_t image_len, size_t *len)
{
	size_t hlen = OFF_CT(nwraps);
	*len = hlen + image_len + 16;
	uint8_t *f = malloc(*len);
	assert_non_null(f);
	memcpy(f, "COFFERDB", 8);
	f[8] = 1;
	f[9] = 0;
	put_le64(f + OFF_GEN, generation);
	f[OFF_NWRAPS] = (uint8_t)nwraps;
	f[OFF_NWRAPS + 1] = (uint8_t)(nwraps >> 8);
	memcpy(f + OFF_WRAP, wraps, (size_t)nwraps * WRAP_LEN);
	assert_int_equal(cf_random(f + OFF_NONCE(nwraps), 12), CF_OK);
	put_le64(f + OFF_CTLEN(nwraps), image_len);
	cf_aead *a = hand_data_key(dek, generation);
	assert_int_equal(cf_aead_seal(a, f + OFF_NONCE(nwraps), f, hlen, image, image_len, f + hlen,
				      f + hlen + image_len),
			 CF_OK);
	cf_aead_free(a);
	return f;
}

/* --- tests --- */

static void test_new_database_is_written_at_first_commit(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	path_of(path, sizeof(path), "new.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 0);
	sql(db, "CREATE TABLE t(x)");
	cf_sealdb_close(db); /* no implicit commit */
	assert_false(exists(path));

	/* An empty database seals to an empty ciphertext and opens again. */
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_schema"), 0);
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	cf_sealdb_close(db);
	size_t len;
	uint8_t *file = slurp(path, &len);
	assert_int_equal(len, EMPTY_FILE_LEN);
	assert_int_equal(le64(file + OFF_CTLEN(1)), 0);
	free(file);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 1);
	sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	cf_sealdb_close(db);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "SELECT x FROM t"), 1);
	cf_sealdb_close(db);
}

static void test_rows_and_generation_survive_reopen(void **state)
{
	(void)state;
	char path[128], tmp[140];
	cf_sealdb *db = NULL;
	uint8_t dek1[32], dek2[32];
	path_of(path, sizeof(path), "kms.db");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE org(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
		"INSERT INTO org(name) VALUES('alice'),('bob');");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 1);
	assert_int_equal(cf_sealdb_data_key(db, dek1), CF_OK);
	sql(db, "INSERT INTO org(name) VALUES('carol')");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 2);
	assert_false(exists(tmp));
	cf_sealdb_close(db);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	size_t len;
	uint8_t *file = slurp(path, &len);
	assert_int_equal(le64(file + OFF_GEN), 2);
	free(file);

	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM org"), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM org WHERE name='carol'"), 1);
	/* The DEK lives as long as the file. */
	assert_int_equal(cf_sealdb_data_key(db, dek2), CF_OK);
	assert_memory_equal(dek1, dek2, 32);
	sql(db, "DELETE FROM org WHERE name='bob'");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 3);
	cf_sealdb_close(db);

	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM org"), 2);
	cf_sealdb_close(db);

	/* Another file, another DEK. */
	path_of(path, sizeof(path), "other.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_data_key(db, dek2), CF_OK);
	assert_memory_not_equal(dek1, dek2, 32);
	cf_sealdb_close(db);
	cf_wipe(dek1, sizeof(dek1));
	cf_wipe(dek2, sizeof(dek2));
}

static void test_wrong_key(void **state)
{
	(void)state;
	char path[128];
	size_t len;
	uint8_t *file = small_file("wrongkey.db", &len);
	path_of(path, sizeof(path), "wrongkey.db");
	spit(path, file, len);
	cf_sealdb *db = (cf_sealdb *)&db;
	assert_int_equal(cf_sealdb_open(path, key_b, &db), CF_ERR_AUTH);
	assert_null(db);
	db = (cf_sealdb *)&db;
	assert_int_equal(cf_sealdb_open_bytes(file, len, key_b, &db), CF_ERR_AUTH);
	assert_null(db);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	cf_sealdb_close(db);
	free(file);
}

/* What a flip of `mask` at `pos` of a one-wrap file must give, or -1 for "any error". */
static int flip_expect(const uint8_t *file, size_t pos, uint8_t mask)
{
	if (pos < 8)
		return CF_ERR_PARSE;
	if (pos < OFF_GEN)
		return CF_ERR_UNSUPPORTED;
	if (pos < OFF_NWRAPS) {
		uint64_t gen = le64(file + OFF_GEN) ^ ((uint64_t)mask << (8 * (pos - OFF_GEN)));
		return gen == 0 ? CF_ERR_PARSE : CF_ERR_AUTH;
	}
	if (pos < OFF_WRAP) {
		unsigned n = (file[OFF_NWRAPS] | file[OFF_NWRAPS + 1] << 8) ^
			     ((unsigned)mask << (8 * (pos - OFF_NWRAPS)));
		return n == 0 ? CF_ERR_PARSE : n > CF_SEALDB_MAX_WRAPS ? CF_ERR_TOO_BIG : -1;
	}
	if (pos == OFF_WRAP)
		return CF_ERR_UNSUPPORTED;
	if (pos == OFF_WRAP + 1)
		return CF_ERR_PARSE;
	if (pos < OFF_CTLEN(1))
		return CF_ERR_AUTH; /* the wrap's nonce, DEK and tag; the data nonce */
	if (pos < OFF_CT(1))
		return -1; /* the length: too big, truncated or trailing */
	return CF_ERR_AUTH;
}

static void test_every_byte_flip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *file = small_file("flip.db", &len);
	uint8_t *bad = malloc(len);
	assert_non_null(bad);
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	for (size_t m = 0; m < sizeof(masks); m++) {
		for (size_t pos = 0; pos < len; pos++) {
			memcpy(bad, file, len);
			bad[pos] ^= masks[m];
			cf_sealdb *db = NULL;
			cf_err rc = cf_sealdb_open_bytes(bad, len, key_a, &db);
			int want = flip_expect(file, pos, masks[m]);
			if (rc == CF_OK || (want >= 0 && rc != (cf_err)want) ||
			    (want < 0 && rc != CF_ERR_TRUNCATED && rc != CF_ERR_TRAILING &&
			     rc != CF_ERR_TOO_BIG && rc != CF_ERR_UNSUPPORTED && rc != CF_ERR_PARSE))
				fail_msg("byte %zu ^ 0x%02x: %s, expected %s", pos, masks[m],
					 cf_errname(rc), want >= 0 ? cf_errname((cf_err)want) : "an error");
			assert_null(db);
		}
	}

	/* A sample through the file itself. */
	static const size_t sample[] = { 0, 7, 8, 10, 17, 18, 20, 21, 22, 50, 81, 82, 93, 94, 101,
					 102, 600, 1125, 1126, 1141 };
	char path[128];
	path_of(path, sizeof(path), "flip.db");
	for (size_t i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
		assert_true(sample[i] < len);
		memcpy(bad, file, len);
		bad[sample[i]] ^= 0x01;
		spit(path, bad, len);
		cf_sealdb *db = NULL;
		cf_err rc = cf_sealdb_open(path, key_a, &db);
		int want = flip_expect(file, sample[i], 0x01);
		assert_int_not_equal(rc, CF_OK);
		if (want >= 0)
			assert_int_equal(rc, want);
		assert_null(db);
	}
	free(bad);
	free(file);
}

static void test_truncation_and_trailing(void **state)
{
	(void)state;
	size_t len;
	uint8_t *file = small_file("cut.db", &len);
	for (size_t n = 0; n < len; n++) {
		cf_sealdb *db = NULL;
		/* A copy of exactly n bytes, so ASan sees any read past the end. */
		uint8_t *cut = malloc(n ? n : 1);
		assert_non_null(cut);
		memcpy(cut, file, n);
		cf_err rc = cf_sealdb_open_bytes(n ? cut : NULL, n, key_a, &db);
		if (rc != CF_ERR_TRUNCATED)
			fail_msg("cut to %zu bytes: %s", n, cf_errname(rc));
		free(cut);
	}
	char path[128];
	path_of(path, sizeof(path), "cut.db");
	static const size_t sample[] = { 0, 1, 8, 19, 20, 82, 101, 102, 600, 1141 };
	for (size_t i = 0; i < sizeof(sample) / sizeof(sample[0]); i++) {
		cf_sealdb *db = NULL;
		spit(path, file, sample[i]);
		assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_ERR_TRUNCATED);
		assert_null(db);
	}

	uint8_t *longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, file, len);
	longer[len] = 0;
	cf_sealdb *db = NULL;
	assert_int_equal(cf_sealdb_open_bytes(longer, len + 1, key_a, &db), CF_ERR_TRAILING);
	spit(path, longer, len + 1);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_ERR_TRAILING);
	assert_null(db);
	/* Even an authentic file appended to itself. */
	uint8_t *twice = malloc(2 * len);
	assert_non_null(twice);
	memcpy(twice, file, len);
	memcpy(twice + len, file, len);
	assert_int_equal(cf_sealdb_open_bytes(twice, 2 * len, key_a, &db), CF_ERR_TRAILING);
	free(twice);
	free(longer);
	free(file);
}

static void test_header_fields(void **state)
{
	(void)state;
	size_t len;
	uint8_t *file = small_file("fields.db", &len);
	uint8_t *bad = malloc(len + WRAP_LEN);
	cf_sealdb *db = NULL;
	assert_non_null(bad);

	struct {
		size_t off;
		uint8_t value;
		cf_err want;
	} cases[] = {
		{ 0, 'c', CF_ERR_PARSE },            /* magic is case-sensitive */
		{ OFF_VERSION, 2, CF_ERR_UNSUPPORTED }, /* a later version */
		{ OFF_VERSION, 0, CF_ERR_UNSUPPORTED },
		{ OFF_NWRAPS, 0, CF_ERR_PARSE },     /* no wrap: nothing could open it */
		{ OFF_NWRAPS, 9, CF_ERR_TOO_BIG },
		{ OFF_WRAP, 0, CF_ERR_UNSUPPORTED }, /* unknown kinds */
		{ OFF_WRAP, 2, CF_ERR_UNSUPPORTED },
		{ OFF_WRAP + 1, 1, CF_ERR_PARSE },   /* reserved */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, file, len);
		bad[cases[i].off] = cases[i].value;
		assert_int_equal(cf_sealdb_open_bytes(bad, len, key_a, &db), cases[i].want);
		assert_null(db);
	}

	/* Generation 0 is never written; a big one is only unauthenticated. */
	memcpy(bad, file, len);
	put_le64(bad + OFF_GEN, 0);
	assert_int_equal(cf_sealdb_open_bytes(bad, len, key_a, &db), CF_ERR_PARSE);
	put_le64(bad + OFF_GEN, UINT64_MAX);
	assert_int_equal(cf_sealdb_open_bytes(bad, len, key_a, &db), CF_ERR_AUTH);

	/* Lengths past the hard limit are refused before anything is read or allocated. */
	static const uint64_t big[] = { CF_SEALDB_MAX_DB + 1, (uint64_t)1 << 32, UINT64_MAX };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		memcpy(bad, file, len);
		put_le64(bad + OFF_CTLEN(1), big[i]);
		assert_int_equal(cf_sealdb_open_bytes(bad, len, key_a, &db), CF_ERR_TOO_BIG);
	}
	memcpy(bad, file, len);
	put_le64(bad + OFF_CTLEN(1), CF_SEALDB_MAX_DB);
	assert_int_equal(cf_sealdb_open_bytes(bad, len, key_a, &db), CF_ERR_TRUNCATED);

	/* The wrap repeated: it parses, the DEK unwraps, but the header is not the one sealed. */
	memcpy(bad, file, OFF_NONCE(1));
	memcpy(bad + OFF_NONCE(1), file + OFF_WRAP, WRAP_LEN);
	memcpy(bad + OFF_NONCE(2), file + OFF_NONCE(1), len - OFF_NONCE(1));
	bad[OFF_NWRAPS] = 2;
	assert_int_equal(cf_sealdb_open_bytes(bad, len + WRAP_LEN, key_a, &db), CF_ERR_AUTH);
	assert_null(db);
	free(bad);
	free(file);
}

static void test_no_plaintext_on_disk(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	uint8_t dek[32];
	path_of(path, sizeof(path), "secret.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE wrapped_keys(name TEXT, material BLOB)");
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(cf_sealdb_handle(db),
					    "INSERT INTO wrapped_keys VALUES(?, ?)", -1, &st, NULL),
			 SQLITE_OK);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(sqlite3_bind_text(st, 1, canary, -1, SQLITE_STATIC), SQLITE_OK);
		assert_int_equal(sqlite3_bind_blob(st, 2, key_c, sizeof(key_c), SQLITE_STATIC),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	/* Sorting through a temp b-tree must not spill to a file either. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM (SELECT DISTINCT name || "
				       "hex(randomblob(64)) FROM wrapped_keys ORDER BY 1)"),
			 50);
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_data_key(db, dek), CF_OK);
	cf_sealdb_close(db);

	size_t len;
	uint8_t *file = slurp(path, &len);
	static const char *const needles[] = { canary, "the-plaintext", "SQLite format 3",
					       "wrapped_keys", "CREATE TABLE" };
	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
		if (memmem(file, len, needles[i], strlen(needles[i])))
			fail_msg("\"%s\" is in the sealed file", needles[i]);
	}
	assert_null(memmem(file, len, key_c, sizeof(key_c)));
	assert_null(memmem(file, len, key_a, sizeof(key_a)));
	assert_null(memmem(file, len, dek, sizeof(dek)));

	/* The sealed file is the only file: no .tmp, no journal, no temp files. */
	DIR *d = opendir(tmpdir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "secret.db", 9) == 0 && strcmp(e->d_name, "secret.db") != 0)
			fail_msg("left behind: %s", e->d_name);
	}
	closedir(d);

	/* And the plaintext is really in there, under the DEK. */
	size_t image_len;
	uint8_t dek2[32];
	uint8_t *image = hand_unseal(file, len, key_a, dek2, &image_len);
	assert_memory_equal(dek, dek2, 32);
	assert_non_null(memmem(image, image_len, canary, strlen(canary)));
	free(image);
	free(file);
	cf_wipe(dek, sizeof(dek));
	cf_wipe(dek2, sizeof(dek2));
}

static void test_connection_stays_in_memory(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	path_of(path, sizeof(path), "pragma.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "PRAGMA secure_delete"), 1);
	assert_int_equal(query_int(db, "PRAGMA temp_store"), 2); /* MEMORY */
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(cf_sealdb_handle(db), "PRAGMA journal_mode", -1, &st,
					    NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "memory");
	sqlite3_finalize(st);
	/* Whatever would write plaintext to a file is refused. */
	sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES('in memory only')");
	char plain[128], stmt[256];
	snprintf(plain, sizeof(plain), "%s/plain.db", tmpdir);
	/* Each is prefix, then the plain path and suffix if the suffix is not NULL. */
	static const char *const refused[][2] = {
		{ "ATTACH '", "' AS p" },
		{ "ATTACH 'file:", "' AS p" },
		{ "VACUUM INTO '", "'" },
		{ "PRAGMA temp_store_directory='", "'" },
		{ "PRAGMA temp_store=FILE", NULL },
		{ "PRAGMA Temp_Store = 1", NULL },
		{ "PRAGMA journal_mode=DELETE", NULL },
		{ "PRAGMA main.journal_mode=WAL", NULL },
		{ "PRAGMA secure_delete=OFF", NULL },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(stmt, sizeof(stmt), "%s%s%s", refused[i][0], refused[i][1] ? plain : "",
			 refused[i][1] ? refused[i][1] : "");
		if (sqlite3_exec(cf_sealdb_handle(db), stmt, NULL, NULL, NULL) != SQLITE_AUTH)
			fail_msg("not refused: %s", stmt);
		assert_false(exists(plain));
	}
	assert_int_equal(query_int(db, "PRAGMA secure_delete"), 1);
	assert_int_equal(query_int(db, "PRAGMA temp_store"), 2);
	/* VACUUM attaches a transient database of its own, which stays in memory. */
	sql(db, "VACUUM");
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	cf_sealdb_close(db);

	/* Settings are per connection: a reopened database has them too. */
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	cf_sealdb_close(db);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "PRAGMA secure_delete"), 1);
	assert_int_equal(query_int(db, "PRAGMA temp_store"), 2);
	cf_sealdb_close(db);
}

static void test_stale_tmp_and_symlink(void **state)
{
	(void)state;
	char path[128], tmp[140], victim[128];
	cf_sealdb *db = NULL;
	path_of(path, sizeof(path), "stale.db");
	path_of(victim, sizeof(victim), "victim");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);

	spit(tmp, "left by a crash", 15);
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES(42)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_false(exists(tmp));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* A symlink at the temporary name is replaced, not written through. */
	spit(victim, "victim", 6);
	assert_int_equal(symlink(victim, tmp), 0);
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_false(exists(tmp));
	size_t vlen;
	uint8_t *v = slurp(victim, &vlen);
	assert_int_equal(vlen, 6);
	assert_memory_equal(v, "victim", 6);
	free(v);
	cf_sealdb_close(db);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "SELECT x FROM t"), 42);
	assert_int_equal(cf_sealdb_generation(db), 2);
	cf_sealdb_close(db);
}

/* A commit that cannot write leaves the previous file, and can be retried. */
static void expect_failed_commit(cf_sealdb *db, const char *path)
{
	size_t before_len, after_len;
	uint8_t *before = slurp(path, &before_len);
	uint64_t gen = cf_sealdb_generation(db);
	sql(db, "INSERT INTO t VALUES(2)");
	assert_int_equal(cf_sealdb_commit(db), CF_ERR_IO);
	assert_int_equal(cf_sealdb_generation(db), gen);
	uint8_t *after = slurp(path, &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	free(before);
	free(after);
	cf_sealdb *other = NULL;
	assert_int_equal(cf_sealdb_open(path, key_a, &other), CF_OK);
	assert_int_equal(query_int(other, "SELECT count(*) FROM t"), 1);
	cf_sealdb_close(other);
}

static void test_failed_commit_keeps_old_file(void **state)
{
	(void)state;
	char dir[128], path[160], tmp[170];
	cf_sealdb *db = NULL;
	snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/state.db", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);

	/* A directory where the temporary goes: fails even for root. */
	assert_int_equal(mkdir(tmp, 0700), 0);
	expect_failed_commit(db, path);
	assert_int_equal(rmdir(tmp), 0);

	/* A read-only directory (root ignores the mode, so only as a user). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(dir, 0500), 0);
		sql(db, "DELETE FROM t WHERE x = 2");
		expect_failed_commit(db, path);
		assert_false(exists(tmp));
		assert_int_equal(chmod(dir, 0700), 0);
	}

	/* Writable again: the retry commits everything since. */
	uint64_t gen = cf_sealdb_generation(db);
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), gen + 1);
	assert_false(exists(tmp));
	cf_sealdb_close(db);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE x = 2"), 1);
	cf_sealdb_close(db);

	/* A directory that does not exist: opens empty, cannot commit. */
	snprintf(path, sizeof(path), "%s/no/such/dir/state.db", tmpdir);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x)");
	assert_int_equal(cf_sealdb_commit(db), CF_ERR_IO);
	assert_int_equal(cf_sealdb_generation(db), 0);
	cf_sealdb_close(db);

	/* A directory where the file should be. */
	assert_int_equal(cf_sealdb_open(dir, key_a, &db), CF_ERR_ARG);
	assert_null(db);
}

static void test_commit_refuses_open_transaction(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	path_of(path, sizeof(path), "txn.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	sql(db, "BEGIN; INSERT INTO t VALUES('maybe')");
	assert_int_equal(cf_sealdb_commit(db), CF_ERR_ARG);
	assert_int_equal(cf_sealdb_generation(db), 1);
	sql(db, "ROLLBACK");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	/* Closing inside a transaction rolls it back (and commits nothing). */
	sql(db, "BEGIN; INSERT INTO t VALUES('never')");
	cf_sealdb_close(db);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 0);
	cf_sealdb_close(db);
}

static void test_format_by_hand(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	uint8_t dek[32], dek2[32];
	path_of(path, sizeof(path), "hand.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES('from the docs')");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_data_key(db, dek), CF_OK);
	cf_sealdb_close(db);

	size_t len, image_len;
	uint8_t *file = slurp(path, &len);
	assert_int_equal(le64(file + OFF_GEN), 2);
	uint8_t *image = hand_unseal(file, len, key_a, dek2, &image_len);
	assert_memory_equal(dek, dek2, 32);
	assert_true(image_len >= 100);
	assert_memory_equal(image, "SQLite format 3", 16);

	/* Built by hand: gen 7, the DEK under key_c first and key_a second. */
	uint8_t wraps[2 * WRAP_LEN];
	hand_wrap(key_c, dek, wraps);
	hand_wrap(key_a, dek, wraps + WRAP_LEN);
	size_t hlen;
	uint8_t *hand = hand_seal(wraps, 2, dek, 7, image, image_len, &hlen);
	spit(path, hand, hlen);
	static const uint8_t *const keys[] = { key_a, key_c };
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(cf_sealdb_open(path, keys[i], &db), CF_OK);
		assert_int_equal(cf_sealdb_generation(db), 7);
		assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE x = 'from the docs'"), 1);
		cf_sealdb_close(db);
	}
	assert_int_equal(cf_sealdb_open(path, key_b, &db), CF_ERR_AUTH);

	/* A commit carries both wraps over verbatim: key_c still opens the new file. */
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "INSERT INTO t VALUES('after')");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 8);
	cf_sealdb_close(db);
	size_t nlen;
	uint8_t *next = slurp(path, &nlen);
	assert_int_equal(next[OFF_NWRAPS], 2);
	assert_memory_equal(next + OFF_WRAP, wraps, sizeof(wraps));
	assert_memory_not_equal(next + OFF_NONCE(2), hand + OFF_NONCE(2), 12);
	free(next);
	assert_int_equal(cf_sealdb_open(path, key_c, &db), CF_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 2);
	cf_sealdb_close(db);

	/* A wrap of another DEK under the right key: the wrap opens, the data does not. */
	uint8_t other_dek[32];
	memset(other_dek, 0x42, sizeof(other_dek));
	hand_wrap(key_a, other_dek, wraps);
	uint8_t *mixed = hand_seal(wraps, 1, dek, 7, image, image_len, &hlen);
	assert_int_equal(cf_sealdb_open_bytes(mixed, hlen, key_a, &db), CF_ERR_AUTH);
	free(mixed);

	/* An authentic image that is not a database is refused at open. */
	hand_wrap(key_a, dek, wraps);
	memset(image, 0x5a, image_len);
	mixed = hand_seal(wraps, 1, dek, 3, image, image_len, &hlen);
	assert_int_equal(cf_sealdb_open_bytes(mixed, hlen, key_a, &db), CF_ERR_PARSE);
	assert_null(db);
	free(mixed);

	free(hand);
	free(image);
	free(file);
	cf_wipe(dek, sizeof(dek));
	cf_wipe(dek2, sizeof(dek2));
}

/* The documented limit: an older sealed file opens, and its generation shows it. */
static void test_rollback_is_visible_in_generation(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	path_of(path, sizeof(path), "rollback.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	size_t old_len;
	uint8_t *old = slurp(path, &old_len);
	sql(db, "INSERT INTO t VALUES(2)");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	cf_sealdb_close(db);

	spit(path, old, old_len);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	cf_sealdb_close(db);
	free(old);
}

/* A text value of the first row of a query; the caller frees it. */
static char *query_text(cf_sealdb *db, const char *text)
{
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(cf_sealdb_handle(db), text, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const char *v = (const char *)sqlite3_column_text(st, 0);
	assert_non_null(v);
	char *copy = strdup(v);
	assert_non_null(copy);
	sqlite3_finalize(st);
	return copy;
}

static void test_larger_database(void **state)
{
	(void)state;
	char path[128];
	cf_sealdb *db = NULL;
	static const char digest[] = "SELECT hex(b) FROM blobs WHERE id IN (1, 999, 2000)";
	path_of(path, sizeof(path), "large.db");
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	sql(db, "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB);"
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
		" INSERT INTO blobs(b) SELECT randomblob(1000) FROM n;");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 3000 * 1000);
	/* Shrinking works too (secure_delete zeroes what was freed). */
	sql(db, "DELETE FROM blobs WHERE id > 2000");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	char *want = query_text(db, digest);
	cf_sealdb_close(db);

	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	assert_int_equal(query_int(db, "SELECT count(*) FROM blobs"), 2000);
	char *got = query_text(db, digest);
	assert_string_equal(got, want);
	free(got);
	got = query_text(db, "PRAGMA integrity_check");
	assert_string_equal(got, "ok");
	free(got);
	sql(db, "VACUUM");
	assert_int_equal(cf_sealdb_commit(db), CF_OK);
	cf_sealdb_close(db);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 2500 * 1000);
	assert_int_equal(cf_sealdb_open(path, key_a, &db), CF_OK);
	got = query_text(db, digest);
	assert_string_equal(got, want);
	free(got);
	cf_sealdb_close(db);
	free(want);
}

static void test_arguments(void **state)
{
	(void)state;
	cf_sealdb *db = NULL;
	uint8_t dek[32];
	char path[128];
	path_of(path, sizeof(path), "args.db");
	assert_int_equal(cf_sealdb_open(NULL, key_a, &db), CF_ERR_ARG);
	assert_int_equal(cf_sealdb_open("", key_a, &db), CF_ERR_ARG);
	assert_int_equal(cf_sealdb_open(path, key_a, NULL), CF_ERR_ARG);
	assert_int_equal(cf_sealdb_open_bytes(NULL, 5, key_a, &db), CF_ERR_ARG);
	assert_int_equal(cf_sealdb_open_bytes(NULL, 0, key_a, &db), CF_ERR_TRUNCATED);
	assert_int_equal(cf_sealdb_commit(NULL), CF_ERR_ARG);
	assert_int_equal(cf_sealdb_data_key(NULL, dek), CF_ERR_ARG);
	assert_null(cf_sealdb_handle(NULL));
	assert_int_equal(cf_sealdb_generation(NULL), 0);
	cf_sealdb_close(NULL);

	/* A database from bytes has no file to commit to. */
	size_t len;
	uint8_t *file = small_file("args.db", &len);
	assert_int_equal(cf_sealdb_open_bytes(file, len, key_a, &db), CF_OK);
	assert_int_equal(cf_sealdb_generation(db), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 1);
	assert_int_equal(cf_sealdb_commit(db), CF_ERR_ARG);
	/* A statement left open does not stop close. */
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(cf_sealdb_handle(db), "SELECT x FROM t", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	cf_sealdb_close(db);
	sqlite3_finalize(st);
	free(file);
}

/* The committed fuzz corpus: made by today's code, it must keep opening. */
static void test_corpus_seeds(void **state)
{
	(void)state;
	const char *src = getenv("COFFER_SRCDIR");
	if (!src)
		skip();
	static const struct {
		const char *name;
		cf_err want;
		long long rows; /* in table kv, or -1 */
	} seeds[] = {
		{ "valid-empty", CF_OK, -1 },
		{ "valid-kv", CF_OK, 3 },
		{ "flipped-ciphertext", CF_ERR_AUTH, 0 },
		{ "flipped-wrap", CF_ERR_AUTH, 0 },
		{ "truncated", CF_ERR_TRUNCATED, 0 },
		{ "trailing", CF_ERR_TRAILING, 0 },
		{ "version-2", CF_ERR_UNSUPPORTED, 0 },
		{ "kind-2", CF_ERR_UNSUPPORTED, 0 },
		{ "reserved-1", CF_ERR_PARSE, 0 },
		{ "wraps-9", CF_ERR_TOO_BIG, 0 },
		{ "length-huge", CF_ERR_TOO_BIG, 0 },
		{ "two-wraps", CF_ERR_AUTH, 0 },
		{ "other-key", CF_ERR_AUTH, 0 },
		{ "empty", CF_ERR_TRUNCATED, 0 },
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/sealdb/%s", src, seeds[i].name);
		cf_sealdb *db = NULL;
		cf_err rc = cf_sealdb_open(path, fuzz_key, &db);
		if (rc != seeds[i].want)
			fail_msg("%s: %s, expected %s", seeds[i].name, cf_errname(rc),
				 cf_errname(seeds[i].want));
		if (rc == CF_OK && seeds[i].rows >= 0)
			assert_int_equal(query_int(db, "SELECT count(*) FROM kv"), seeds[i].rows);
		cf_sealdb_close(db);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_database_is_written_at_first_commit),
		cmocka_unit_test(test_rows_and_generation_survive_reopen),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_every_byte_flip),
		cmocka_unit_test(test_truncation_and_trailing),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_no_plaintext_on_disk),
		cmocka_unit_test(test_connection_stays_in_memory),
		cmocka_unit_test(test_stale_tmp_and_symlink),
		cmocka_unit_test(test_failed_commit_keeps_old_file),
		cmocka_unit_test(test_commit_refuses_open_transaction),
		cmocka_unit_test(test_format_by_hand),
		cmocka_unit_test(test_rollback_is_visible_in_generation),
		cmocka_unit_test(test_larger_database),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_corpus_seeds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
