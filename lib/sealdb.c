/*
 * sealdb: an in-memory SQLite database sealed whole into one file
 * (include/coffer/sealdb.h, docs/sealdb.md). parse() is the one reader of
 * the file format; open, open_bytes and the fuzzer all go through it.
 */
#include "coffer/sealdb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/io.h"

#define KEY_LEN CF_SEALDB_KEY_LEN
#define NONCE_LEN CF_AEAD_NONCE_LEN
#define TAG_LEN CF_AEAD_TAG_LEN
/* magic, version, generation, wrap count */
#define FIXED_LEN (CF_SEALDB_MAGIC_LEN + 2 + 8 + 2)
/* kind, reserved, nonce, wrapped DEK, tag */
#define WRAP_LEN (2 + NONCE_LEN + KEY_LEN + TAG_LEN)
/* the data nonce and the ciphertext length */
#define DATA_HEAD_LEN (NONCE_LEN + 8)
#define HEADER_MAX (FIXED_LEN + CF_SEALDB_MAX_WRAPS * WRAP_LEN + DATA_HEAD_LEN)
#define FILE_MAX (HEADER_MAX + CF_SEALDB_MAX_DB + TAG_LEN)

#define WRAP_AAD "coffer-sealdb-v1 wrap"
#define WRAP_AAD_LEN (sizeof(WRAP_AAD) - 1)
#define DATA_INFO "coffer-sealdb-v1 data"
#define DATA_INFO_LEN (sizeof(DATA_INFO) - 1)

struct wrap {
	uint8_t kind;
	uint8_t nonce[NONCE_LEN];
	uint8_t wrapped[KEY_LEN];
	uint8_t tag[TAG_LEN];
};

struct cf_sealdb {
	sqlite3 *sql;
	char *path;     /* NULL for a database opened from bytes */
	char *tmp_path; /* path.tmp */
	uint64_t generation;
	uint8_t dek[KEY_LEN];
	uint16_t nwraps;
	struct wrap wraps[CF_SEALDB_MAX_WRAPS]; /* carried over verbatim */
};

/* A parsed file; the pointers borrow from the caller's bytes. */
struct sealed {
	uint64_t generation;
	uint16_t nwraps;
	struct wrap wraps[CF_SEALDB_MAX_WRAPS];
	const uint8_t *nonce;
	size_t aad_len; /* every byte before the ciphertext */
	const uint8_t *ct;
	size_t ct_len;
	const uint8_t *tag;
};

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* --- the format --- */

/* Checks everything that can be checked without a key. */
static cf_err parse(const uint8_t *data, size_t len, struct sealed *s)
{
	cf_cursor c;
	const uint8_t *magic;
	uint16_t version;
	uint64_t ct_len;
	cf_err rc;

	memset(s, 0, sizeof(*s));
	cf_cursor_init(&c, data, len);
	if ((rc = cf_cursor_borrow(&c, CF_SEALDB_MAGIC_LEN, &magic)) != CF_OK)
		return rc;
	if (memcmp(magic, CF_SEALDB_MAGIC, CF_SEALDB_MAGIC_LEN) != 0)
		return CF_ERR_PARSE;
	if ((rc = cf_cursor_u16le(&c, &version)) != CF_OK)
		return rc;
	if (version != CF_SEALDB_VERSION)
		return CF_ERR_UNSUPPORTED;
	if ((rc = cf_cursor_u64le(&c, &s->generation)) != CF_OK)
		return rc;
	/* Commit writes 1 first: 0 was never written by anyone. */
	if (s->generation == 0)
		return CF_ERR_PARSE;
	if ((rc = cf_cursor_u16le(&c, &s->nwraps)) != CF_OK)
		return rc;
	if (s->nwraps == 0)
		return CF_ERR_PARSE;
	if (s->nwraps > CF_SEALDB_MAX_WRAPS)
		return CF_ERR_TOO_BIG;
	for (uint16_t i = 0; i < s->nwraps; i++) {
		struct wrap *w = &s->wraps[i];
		if ((rc = cf_cursor_u8(&c, &w->kind)) != CF_OK)
			return rc;
		/* A wrap's size depends on its kind, so an unknown one cannot be skipped. */
		if (w->kind != CF_SEALDB_WRAP_TEE)
			return CF_ERR_UNSUPPORTED;
		if ((rc = cf_cursor_zeros(&c, 1)) != CF_OK ||
		    (rc = cf_cursor_read(&c, w->nonce, NONCE_LEN)) != CF_OK ||
		    (rc = cf_cursor_read(&c, w->wrapped, KEY_LEN)) != CF_OK ||
		    (rc = cf_cursor_read(&c, w->tag, TAG_LEN)) != CF_OK)
			return rc;
	}
	if ((rc = cf_cursor_borrow(&c, NONCE_LEN, &s->nonce)) != CF_OK)
		return rc;
	if ((rc = cf_cursor_u64le(&c, &ct_len)) != CF_OK)
		return rc;
	if (ct_len > CF_SEALDB_MAX_DB)
		return CF_ERR_TOO_BIG;
	s->aad_len = c.off;
	s->ct_len = (size_t)ct_len;
	if ((rc = cf_cursor_borrow(&c, s->ct_len, &s->ct)) != CF_OK ||
	    (rc = cf_cursor_borrow(&c, TAG_LEN, &s->tag)) != CF_OK)
		return rc;
	return cf_cursor_expect_end(&c);
}

/* The bytes before the ciphertext, which are also its AAD; returns their length. */
static size_t header_encode(const cf_sealdb *db, uint64_t generation,
			    const uint8_t nonce[static NONCE_LEN], uint64_t ct_len,
			    uint8_t out[static HEADER_MAX])
{
	uint8_t *p = out;
	memcpy(p, CF_SEALDB_MAGIC, CF_SEALDB_MAGIC_LEN);
	p += CF_SEALDB_MAGIC_LEN;
	put_le(p, CF_SEALDB_VERSION, 2);
	p += 2;
	put_le(p, generation, 8);
	p += 8;
	put_le(p, db->nwraps, 2);
	p += 2;
	for (uint16_t i = 0; i < db->nwraps; i++) {
		const struct wrap *w = &db->wraps[i];
		*p++ = w->kind;
		*p++ = 0;
		memcpy(p, w->nonce, NONCE_LEN);
		p += NONCE_LEN;
		memcpy(p, w->wrapped, KEY_LEN);
		p += KEY_LEN;
		memcpy(p, w->tag, TAG_LEN);
		p += TAG_LEN;
	}
	memcpy(p, nonce, NONCE_LEN);
	p += NONCE_LEN;
	put_le(p, ct_len, 8);
	p += 8;
	return (size_t)(p - out);
}

/* --- keys --- */

static void wrap_aad(uint8_t kind, uint8_t aad[static WRAP_AAD_LEN + 1])
{
	memcpy(aad, WRAP_AAD, WRAP_AAD_LEN);
	aad[WRAP_AAD_LEN] = kind;
}

static cf_err wrap_seal(const uint8_t seal_key[static KEY_LEN], const uint8_t dek[static KEY_LEN],
			struct wrap *w)
{
	cf_aead *a = NULL;
	uint8_t aad[WRAP_AAD_LEN + 1];
	cf_err rc;

	w->kind = CF_SEALDB_WRAP_TEE;
	wrap_aad(w->kind, aad);
	if ((rc = cf_random(w->nonce, NONCE_LEN)) != CF_OK)
		goto out;
	if ((rc = cf_aead_new(CF_AES_256_GCM, seal_key, &a)) != CF_OK)
		goto out;
	rc = cf_aead_seal(a, w->nonce, aad, sizeof(aad), dek, KEY_LEN, w->wrapped, w->tag);
out:
	cf_aead_free(a);
	return rc;
}

/* The DEK from the first wrap the seal key opens; CF_ERR_AUTH if none. */
static cf_err unwrap_any(const uint8_t seal_key[static KEY_LEN], const struct wrap *wraps,
			 uint16_t n, uint8_t dek[static KEY_LEN])
{
	cf_aead *a = NULL;
	uint8_t aad[WRAP_AAD_LEN + 1];
	cf_err rc;

	if ((rc = cf_aead_new(CF_AES_256_GCM, seal_key, &a)) != CF_OK)
		goto out;
	rc = CF_ERR_AUTH;
	for (uint16_t i = 0; i < n && rc == CF_ERR_AUTH; i++) {
		wrap_aad(wraps[i].kind, aad);
		rc = cf_aead_open(a, wraps[i].nonce, aad, sizeof(aad), wraps[i].wrapped, KEY_LEN,
				  wraps[i].tag, dek);
	}
out:
	if (rc != CF_OK)
		cf_wipe(dek, KEY_LEN);
	cf_aead_free(a);
	return rc;
}

/*
 * The data key of one generation. Each key seals one generation (more
 * only after a failed commit or a rollback), so random nonces never come
 * near their collision bound however many commits a DEK sees.
 */
static cf_err data_aead(const uint8_t dek[static KEY_LEN], uint64_t generation, cf_aead **out)
{
	uint8_t info[DATA_INFO_LEN + 8], key[KEY_LEN];
	memcpy(info, DATA_INFO, DATA_INFO_LEN);
	put_le(info + DATA_INFO_LEN, generation, 8);
	cf_err rc = cf_hkdf_sha256(dek, KEY_LEN, NULL, 0, info, sizeof(info), key, sizeof(key));
	if (rc == CF_OK)
		rc = cf_aead_new(CF_AES_256_GCM, key, out);
	cf_wipe(key, sizeof(key));
	return rc;
}

/* --- SQLite --- */

static cf_err sql_err(int src)
{
	switch (src & 0xff) {
	case SQLITE_OK: return CF_OK;
	case SQLITE_NOMEM: return CF_ERR_NOMEM;
	case SQLITE_TOOBIG:
	case SQLITE_FULL: return CF_ERR_TOO_BIG;
	default: return CF_ERR_PARSE; /* an image SQLite cannot use */
	}
}

/* A connection that can hold nothing but the memory database it is given. */
static cf_err sql_open(sqlite3 **out)
{
	sqlite3 *sql = NULL;
	cf_err rc = CF_OK;
	int src = sqlite3_open_v2(":memory:", &sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (src != SQLITE_OK) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if (sqlite3_db_config(sql, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL) != SQLITE_OK ||
	    sqlite3_db_config(sql, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL) != SQLITE_OK) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	*out = sql;
	sql = NULL;
out:
	sqlite3_close(sql);
	return rc;
}

/*
 * Fences the caller's SQL off the disk: no ATTACH of a file (VACUUM
 * attaches "", a transient database that temp_store keeps in memory;
 * VACUUM INTO names a file), and no change to the pragmas that keep
 * journal, temporary data and freed pages in memory or zeroed.
 */
static int authorize(void *ctx, int action, const char *a1, const char *a2, const char *schema,
		     const char *trigger)
{
	static const char *const fixed[] = { "temp_store", "temp_store_directory", "journal_mode",
					     "secure_delete" };
	switch (action) {
	case SQLITE_ATTACH:
		return a1 && a1[0] == '\0' ? SQLITE_OK : SQLITE_DENY;
	case SQLITE_PRAGMA:
		for (size_t i = 0; a1 && a2 && i < sizeof(fixed) / sizeof(fixed[0]); i++) {
			if (strcasecmp(a1, fixed[i]) == 0)
				return SQLITE_DENY;
		}
		return SQLITE_OK;
	default:
		return SQLITE_OK;
	}
}

/*
 * Hands image (from sqlite3_malloc64, or NULL for an empty database) to
 * SQLite as its main database; SQLite owns it from here, also on failure.
 */
static cf_err sql_adopt(sqlite3 *sql, uint8_t *image, size_t len)
{
	int src = sqlite3_deserialize(sql, "main", image, (sqlite3_int64)len, (sqlite3_int64)len,
				      SQLITE_DESERIALIZE_FREEONCLOSE |
					      SQLITE_DESERIALIZE_RESIZEABLE);
	if (src != SQLITE_OK)
		return sql_err(src);
	/* It may not grow past what a file can hold. */
	sqlite3_int64 limit = (sqlite3_int64)CF_SEALDB_MAX_DB;
	if ((src = sqlite3_file_control(sql, "main", SQLITE_FCNTL_SIZE_LIMIT, &limit)) != SQLITE_OK)
		return sql_err(src);
	/*
	 * Freed pages are zeroed; journal and temporary tables stay in
	 * memory (a temp file would be plaintext on disk). The count makes a
	 * non-database image fail here rather than at the caller's first query.
	 */
	src = sqlite3_exec(sql,
			   "PRAGMA secure_delete=ON;"
			   "PRAGMA temp_store=MEMORY;"
			   "PRAGMA journal_mode=MEMORY;"
			   "SELECT count(*) FROM sqlite_schema;",
			   NULL, NULL, NULL);
	if (src != SQLITE_OK)
		return sql_err(src);
	return sql_err(sqlite3_set_authorizer(sql, authorize, NULL));
}

/* --- opening --- */

static cf_err set_path(cf_sealdb *db, const char *path)
{
	size_t n = strlen(path);
	db->path = strdup(path);
	db->tmp_path = malloc(n + sizeof(".tmp"));
	if (!db->path || !db->tmp_path)
		return CF_ERR_NOMEM;
	memcpy(db->tmp_path, path, n);
	memcpy(db->tmp_path + n, ".tmp", sizeof(".tmp"));
	return CF_OK;
}

/* A new database: a fresh DEK under one TEE wrap, generation 0. */
static cf_err db_create(const uint8_t seal_key[static KEY_LEN], cf_sealdb **out)
{
	cf_err rc;
	cf_sealdb *db = calloc(1, sizeof(*db));
	if (!db)
		return CF_ERR_NOMEM;
	if ((rc = cf_random(db->dek, KEY_LEN)) != CF_OK)
		goto out;
	db->nwraps = 1;
	if ((rc = wrap_seal(seal_key, db->dek, &db->wraps[0])) != CF_OK)
		goto out;
	if ((rc = sql_open(&db->sql)) != CF_OK)
		goto out;
	rc = sql_adopt(db->sql, NULL, 0);
out:
	if (rc != CF_OK) {
		cf_sealdb_close(db);
		db = NULL;
	}
	*out = db;
	return rc;
}

cf_err cf_sealdb_open_bytes(const uint8_t *data, size_t len,
			    const uint8_t seal_key[static CF_SEALDB_KEY_LEN], cf_sealdb **out)
{
	struct sealed s;
	cf_sealdb *db = NULL;
	cf_aead *aead = NULL;
	uint8_t *image = NULL;
	cf_err rc;

	if (!out)
		return CF_ERR_ARG;
	*out = NULL;
	if ((!data && len) || !seal_key)
		return CF_ERR_ARG;
	if ((rc = parse(data, len, &s)) != CF_OK)
		goto out;
	if (!(db = calloc(1, sizeof(*db)))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	db->generation = s.generation;
	db->nwraps = s.nwraps;
	memcpy(db->wraps, s.wraps, sizeof(db->wraps));
	if ((rc = unwrap_any(seal_key, s.wraps, s.nwraps, db->dek)) != CF_OK)
		goto out;
	/* Everything that can fail without the plaintext fails before it exists. */
	if ((rc = sql_open(&db->sql)) != CF_OK)
		goto out;
	if ((rc = data_aead(db->dek, s.generation, &aead)) != CF_OK)
		goto out;
	if (s.ct_len && !(image = sqlite3_malloc64(s.ct_len))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	/* Straight into SQLite's memory: no second plaintext copy. */
	rc = cf_aead_open(aead, s.nonce, data, s.aad_len, s.ct, s.ct_len, s.tag, image);
	if (rc != CF_OK)
		goto out;
	rc = sql_adopt(db->sql, image, s.ct_len);
	image = NULL;
out:
	if (image) {
		cf_wipe(image, s.ct_len);
		sqlite3_free(image);
	}
	cf_aead_free(aead);
	if (rc != CF_OK) {
		cf_sealdb_close(db);
		db = NULL;
	}
	*out = db;
	return rc;
}

/*
 * The whole file (it is ciphertext), bounded by the largest valid file.
 * One byte more is asked for, so a file that grew since fstat shows as
 * trailing bytes instead of being cut to size. CF_ERR_NOT_FOUND if absent.
 */
static cf_err read_file(const char *path, uint8_t **out, size_t *len)
{
	uint8_t *buf = NULL;
	struct stat st;
	cf_err rc = CF_OK;
	int saved_errno;
	cf_fd_io io = { .fd = open(path, O_RDONLY | O_CLOEXEC) };

	if (io.fd < 0) {
		rc = errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
		goto out;
	}
	if (fstat(io.fd, &st) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = CF_ERR_ARG;
		goto out;
	}
	if ((uint64_t)st.st_size > FILE_MAX) {
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	size_t cap = (size_t)st.st_size + 1;
	if (!(buf = malloc(cap))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_read_full(cf_fd_reader(&io), buf, cap, len)) != CF_OK)
		goto out;
	*out = buf;
	buf = NULL;
out:
	saved_errno = errno;
	if (io.fd >= 0)
		close(io.fd);
	free(buf);
	errno = saved_errno;
	return rc;
}

cf_err cf_sealdb_open(const char *path, const uint8_t seal_key[static CF_SEALDB_KEY_LEN],
		      cf_sealdb **out)
{
	uint8_t *file = NULL;
	size_t len = 0;
	cf_sealdb *db = NULL;
	cf_err rc;
	int saved_errno;

	if (!out)
		return CF_ERR_ARG;
	*out = NULL;
	if (!path || !*path || !seal_key)
		return CF_ERR_ARG;
	rc = read_file(path, &file, &len);
	if (rc == CF_ERR_NOT_FOUND)
		rc = db_create(seal_key, &db);
	else if (rc == CF_OK)
		rc = cf_sealdb_open_bytes(file, len, seal_key, &db);
	if (rc != CF_OK)
		goto out;
	rc = set_path(db, path);
out:
	saved_errno = errno;
	free(file);
	if (rc != CF_OK) {
		cf_sealdb_close(db);
		db = NULL;
	}
	*out = db;
	errno = saved_errno;
	return rc;
}

/* --- committing --- */

/*
 * Writes data to tmp, fsyncs it and renames it over path, then fsyncs
 * the directory so the rename is durable. *renamed says whether path now
 * names the new file; if not, tmp is removed.
 */
static cf_err replace_file(const char *path, const char *tmp, const uint8_t *data, size_t len,
			   bool *renamed)
{
	cf_err rc = CF_OK;
	int saved_errno;
	cf_fd_io io = { .fd = -1 };

	*renamed = false;
	/* A temporary left by a crash, or a symlink planted there: remove, then create anew. */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		rc = CF_ERR_IO;
		goto out;
	}
	io.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (io.fd < 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	/* The umask may only have removed bits; make it exactly 0600. */
	if (fchmod(io.fd, 0600) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	cf_writer w = cf_fd_writer(&io);
	if ((rc = w.write(w.ctx, data, len)) != CF_OK)
		goto out;
	if (fsync(io.fd) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	int fd = io.fd;
	io.fd = -1;
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	*renamed = true;
	rc = cf_fsync_parent(path);
out:
	saved_errno = errno;
	if (io.fd >= 0)
		close(io.fd);
	if (rc != CF_OK && !*renamed)
		unlink(tmp);
	errno = saved_errno;
	return rc;
}

cf_err cf_sealdb_commit(cf_sealdb *db)
{
	uint8_t *copy = NULL, *file = NULL;
	sqlite3_int64 sz = -1;
	cf_aead *aead = NULL;
	uint8_t nonce[NONCE_LEN];
	bool renamed = false;
	int saved_errno;
	cf_err rc;

	if (!db || !db->path)
		return CF_ERR_ARG;
	/* Mid-transaction, the image holds changes that may yet be rolled back. */
	if (!sqlite3_get_autocommit(db->sql))
		return CF_ERR_ARG;
	if (db->generation == UINT64_MAX)
		return CF_ERR_LIMIT;
	uint64_t generation = db->generation + 1;

	/* memdb hands out its own buffer; an empty database has none (sz 0). */
	const uint8_t *plain = sqlite3_serialize(db->sql, "main", &sz, SQLITE_SERIALIZE_NOCOPY);
	if (!plain && sz > 0) {
		/* Not one block in memory: SQLite copies it, and the copy is wiped below. */
		plain = copy = sqlite3_serialize(db->sql, "main", &sz, 0);
		if (!copy) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
	}
	if (sz < 0) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((uint64_t)sz > CF_SEALDB_MAX_DB) {
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	size_t len = (size_t)sz;

	uint8_t header[HEADER_MAX];
	if ((rc = cf_random(nonce, sizeof(nonce))) != CF_OK)
		goto out;
	size_t hlen = header_encode(db, generation, nonce, len, header);
	if (!(file = malloc(hlen + len + TAG_LEN))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	memcpy(file, header, hlen);
	if ((rc = data_aead(db->dek, generation, &aead)) != CF_OK)
		goto out;
	if ((rc = cf_aead_seal(aead, nonce, header, hlen, plain, len, file + hlen,
			       file + hlen + len)) != CF_OK)
		goto out;
	rc = replace_file(db->path, db->tmp_path, file, hlen + len + TAG_LEN, &renamed);
	/* Once renamed, the file on disk is this generation, whatever came after. */
	if (renamed)
		db->generation = generation;
out:
	saved_errno = errno;
	if (copy) {
		cf_wipe(copy, (size_t)sz);
		sqlite3_free(copy);
	}
	free(file);
	cf_aead_free(aead);
	errno = saved_errno;
	return rc;
}

/* --- the rest --- */

sqlite3 *cf_sealdb_handle(cf_sealdb *db)
{
	return db ? db->sql : NULL;
}

uint64_t cf_sealdb_generation(const cf_sealdb *db)
{
	return db ? db->generation : 0;
}

cf_err cf_sealdb_data_key(const cf_sealdb *db, uint8_t dek[static CF_SEALDB_KEY_LEN])
{
	if (!db || !dek)
		return CF_ERR_ARG;
	memcpy(dek, db->dek, KEY_LEN);
	return CF_OK;
}

void cf_sealdb_close(cf_sealdb *db)
{
	if (!db)
		return;
	if (db->sql) {
		/* A rollback at close would write journalled pages back after the wipe. */
		if (!sqlite3_get_autocommit(db->sql))
			(void)sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_int64 sz = -1;
		uint8_t *image = sqlite3_serialize(db->sql, "main", &sz, SQLITE_SERIALIZE_NOCOPY);
		if (image && sz > 0)
			cf_wipe(image, (size_t)sz);
		/* _v2: statements the caller leaked defer the close instead of failing it. */
		sqlite3_close_v2(db->sql);
	}
	free(db->path);
	free(db->tmp_path);
	cf_wipe(db, sizeof(*db));
	free(db);
}
