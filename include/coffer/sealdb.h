/*
 * sealdb: an SQLite database that is never plaintext on disk
 * (format and rationale: docs/sealdb.md).
 *
 * The live database is an in-memory SQLite database (the memdb VFS), so
 * its pages are on the process heap, which the TEE runtime keeps in
 * secretmem. Every cf_sealdb_commit() serialises the whole database,
 * encrypts it and atomically replaces the file. coffer-kms keeps its
 * state this way: Debian's SQLCipher is too old and collides with
 * libsqlite3.
 *
 * The database is encrypted under a random 32-byte data key (DEK) that
 * lives as long as the file. The file header carries the DEK wrapped
 * ("wraps") under one or more keys; today the only kind is the TEE
 * sealing key. A later recovery key is one more wrap, added without
 * re-encrypting the database. Wraps are carried over verbatim by commit.
 *
 * File, all integers little-endian (CF_ERR_* names what open refuses):
 *
 *   "COFFERDB"                     8 bytes                 else PARSE
 *   version                        u16 = 1                 else UNSUPPORTED
 *   generation                     u64 >= 1                else PARSE
 *   wrap count                     u16, 1..8               0: PARSE, >8: TOO_BIG
 *   per wrap (62 bytes; the size of a wrap is fixed by its kind):
 *     kind                         u8 = 1 (TEE seal key)   else UNSUPPORTED
 *     reserved                     u8 = 0                  else PARSE
 *     nonce                        12 bytes, random
 *     wrapped DEK                  32 bytes
 *     tag                          16 bytes
 *   nonce                          12 bytes, random per commit
 *   ciphertext length              u64 <= 1 GiB            else TOO_BIG
 *   ciphertext                     the sqlite3_serialize() image
 *   tag                            16 bytes
 *   (nothing after)                                        else TRAILING
 *
 * Wrap (kind 1): AES-256-GCM, key = the seal key, AAD =
 * "coffer-sealdb-v1 wrap" || kind, plaintext = the DEK.
 * Data: AES-256-GCM, key = HKDF-SHA-256(ikm = DEK, no salt,
 * info = "coffer-sealdb-v1 data" || u64le generation), AAD = every byte
 * of the file before the ciphertext. So the generation, the wraps and
 * the length are authenticated, and a key is used for one generation
 * only (random nonces under one key would bound the commits per DEK).
 *
 * Limits: the host can replace the file with an older sealed version of
 * itself, or delete it (open then starts an empty database). Without a
 * monotonic counter this cannot be prevented here; the generation makes
 * it detectable to whoever remembers it (the audit log's head). One
 * process per file: nothing here locks it.
 *
 * Not thread-safe: one thread at a time per cf_sealdb.
 */
#ifndef COFFER_SEALDB_H
#define COFFER_SEALDB_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "coffer/err.h"

#define CF_SEALDB_KEY_LEN 32
#define CF_SEALDB_MAGIC "COFFERDB"
#define CF_SEALDB_MAGIC_LEN 8
#define CF_SEALDB_VERSION 1
#define CF_SEALDB_WRAP_TEE 1
#define CF_SEALDB_MAX_WRAPS 8
/* The largest database image; the in-memory database cannot grow past it. */
#define CF_SEALDB_MAX_DB ((uint64_t)1 << 30)

typedef struct cf_sealdb cf_sealdb;

/*
 * Opens path: if it exists, unseals it with the key (CF_ERR_AUTH if the
 * key is wrong or the file was changed; CF_ERR_PARSE, CF_ERR_TRUNCATED,
 * CF_ERR_TRAILING, CF_ERR_UNSUPPORTED or CF_ERR_TOO_BIG for a malformed
 * or unknown file); if it does not exist, starts an empty database with a
 * new DEK (written at the first commit). CF_ERR_IO (errno kept) if it
 * cannot be read, CF_ERR_ARG if it is not a regular file. seal_key
 * should be a key for this purpose only (the TEE's seal_key() with its
 * own label); it is not kept.
 */
cf_err cf_sealdb_open(const char *path, const uint8_t seal_key[static CF_SEALDB_KEY_LEN],
		      cf_sealdb **out) CF_WUR;

/*
 * The same from the bytes of a sealed file (the parser and unsealer that
 * cf_sealdb_open uses, and the one the fuzzer drives). The bytes are not
 * kept; the result has no path, so cf_sealdb_commit refuses it
 * (CF_ERR_ARG).
 */
cf_err cf_sealdb_open_bytes(const uint8_t *data, size_t len,
			    const uint8_t seal_key[static CF_SEALDB_KEY_LEN],
			    cf_sealdb **out) CF_WUR;

/*
 * The live database, for the caller's SQL; it must not be closed. Its
 * journal and temporary data are in memory and freed pages are zeroed
 * (secure_delete). An authorizer refuses what would put plaintext on
 * disk: ATTACH of a file (so VACUUM INTO too) and changing temp_store,
 * temp_store_directory, journal_mode or secure_delete. Replacing the
 * authorizer removes that fence.
 */
sqlite3 *cf_sealdb_handle(cf_sealdb *db);

/*
 * Serialises, seals and atomically replaces the file: writes path.tmp
 * (mode 0600, replacing a stale one, never following a symlink), fsyncs
 * it, renames it over path and fsyncs the directory. The plaintext is
 * encrypted straight from SQLite's memory; if SQLite has to make a copy
 * it is wiped before it is freed. CF_ERR_ARG inside an open SQL
 * transaction (its uncommitted changes would be sealed) or for a
 * database from cf_sealdb_open_bytes; CF_ERR_IO if writing fails: before
 * the rename the old file is intact and the generation unchanged; if
 * only the directory fsync fails, the new file is in place, the
 * generation has advanced, and it may not survive a crash.
 */
cf_err cf_sealdb_commit(cf_sealdb *db) CF_WUR;

/* Commits so far, as stored in the file: 0 for a new database. */
uint64_t cf_sealdb_generation(const cf_sealdb *db);

/*
 * For the future recovery path and for tests: the file's data key,
 * unwrapped. The caller wipes it (cf_wipe).
 */
cf_err cf_sealdb_data_key(const cf_sealdb *db, uint8_t dek[static CF_SEALDB_KEY_LEN]) CF_WUR;

/*
 * Closes without committing: wipes the data key and the database image
 * SQLite holds, then closes the SQLite handle. NULL is a no-op.
 */
void cf_sealdb_close(cf_sealdb *db);

#endif
