/*
 * age: the age-encryption.org/v1 file format, streaming in constant memory.
 *
 * Every dataset and result in coffer is an age file, so a party can make
 * one with the stock `age` tool and read ours with it. This module
 * implements X25519 recipients (age1... / AGE-SECRET-KEY-1...), scrypt
 * passphrase recipients with a bounded work factor, the header MAC, the
 * STREAM payload (ChaCha20-Poly1305, 64 KiB chunks, last-chunk flag) and
 * ASCII armor. Unknown stanza types (grease, plugins, ML-KEM hybrids) are
 * skipped when another stanza matches; hybrid keys are refused as
 * CF_ERR_UNSUPPORTED.
 *
 * Decryption releases plaintext only chunk by chunk after each chunk
 * authenticates, and the error says which stage failed (the classes of
 * the C2SP CCTV vectors): CF_ERR_AGE_ARMOR, CF_ERR_AGE_HEADER,
 * CF_ERR_AGE_NO_MATCH, CF_ERR_AGE_HMAC, then CF_ERR_AGE_PAYLOAD /
 * CF_ERR_AGE_TRUNCATED / CF_ERR_AGE_TRAILING. A caller writing to a file
 * uses cf_outfile so that a failure leaves no partial plaintext.
 */
#ifndef COFFER_AGE_H
#define COFFER_AGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/buf.h"
#include "coffer/err.h"
#include "coffer/io.h"

#define CF_AGE_FILE_KEY_LEN 16
#define CF_AGE_CHUNK_LEN 65536
#define CF_AGE_TAG_LEN 16
#define CF_AGE_MAX_HEADER (1u << 20)     /* bytes; real headers are < 2 KiB */
#define CF_AGE_MAX_STANZAS 1024
#define CF_AGE_DEFAULT_WORK_FACTOR 18    /* as stock age: ~1 s */
#define CF_AGE_MAX_WORK_FACTOR 22        /* decryption refuses more (4 GiB of scrypt) */
#define CF_AGE_RECIPIENT_STRLEN 62       /* "age1" + 58 */
#define CF_AGE_IDENTITY_STRLEN 74        /* "AGE-SECRET-KEY-1" + 58 */

/* --- keys --- */

typedef struct cf_age_x25519_key {
	uint8_t secret[32];
	uint8_t pub[32];
} cf_age_x25519_key;

cf_err cf_age_keygen(cf_age_x25519_key *key) CF_WUR;
/* Parses "AGE-SECRET-KEY-1..."; ML-KEM hybrid keys give CF_ERR_UNSUPPORTED. */
cf_err cf_age_identity_parse(const char *s, cf_age_x25519_key *key) CF_WUR;
/* Parses "age1..." into a public key. */
cf_err cf_age_recipient_parse(const char *s, uint8_t pub[static 32]) CF_WUR;
cf_err cf_age_identity_format(const cf_age_x25519_key *key,
			      char out[static CF_AGE_IDENTITY_STRLEN + 1]) CF_WUR;
cf_err cf_age_recipient_format(const uint8_t pub[static 32],
			       char out[static CF_AGE_RECIPIENT_STRLEN + 1]) CF_WUR;
void cf_age_key_wipe(cf_age_x25519_key *key);

/* --- recipients (encrypt) and identities (decrypt) --- */

typedef enum cf_age_kind { CF_AGE_X25519 = 1, CF_AGE_SCRYPT = 2 } cf_age_kind;

typedef struct cf_age_recipient {
	cf_age_kind kind;
	uint8_t pub[32];           /* X25519 */
	const uint8_t *passphrase; /* scrypt: borrowed, not copied */
	size_t passlen;
	unsigned work_factor;      /* scrypt: log2(N); 0 means the default */
} cf_age_recipient;

typedef struct cf_age_identity {
	cf_age_kind kind;
	cf_age_x25519_key key;     /* X25519 */
	const uint8_t *passphrase; /* scrypt: borrowed */
	size_t passlen;
	unsigned max_work_factor;  /* scrypt: 0 means CF_AGE_MAX_WORK_FACTOR */
} cf_age_identity;

/*
 * Parses an identity file: one AGE-SECRET-KEY-1 per line, '#' comments
 * and blank lines ignored. On a bad line, *bad_line (if non-NULL) gets
 * its 1-based number. The caller frees with cf_age_identities_free.
 */
cf_err cf_age_identities_parse(const char *text, size_t len, cf_age_identity **ids, size_t *n,
			       size_t *bad_line) CF_WUR;
/* Parses a recipients file (age1... per line, comments, blank lines). */
cf_err cf_age_recipients_parse(const char *text, size_t len, cf_age_recipient **rcpts,
			       size_t *n, size_t *bad_line) CF_WUR;
void cf_age_identities_free(cf_age_identity *ids, size_t n);

/* --- whole-file operations --- */

typedef struct cf_age_encrypt_opts {
	bool armor;
} cf_age_encrypt_opts;

cf_err cf_age_encrypt(const cf_age_recipient *rcpts, size_t n, const cf_age_encrypt_opts *opts,
		      cf_reader in, cf_writer out) CF_WUR;
/*
 * Armored input is detected (leading whitespace or "-"). With no
 * identities the header is still checked, then CF_ERR_AGE_NO_MATCH.
 */
cf_err cf_age_decrypt(const cf_age_identity *ids, size_t n, cf_reader in, cf_writer out) CF_WUR;

/*
 * Key custody (coffer-kms): unwraps the file key of a binary header (its
 * bytes through the MAC line, nothing after) and checks the header MAC.
 * CF_ERR_TRAILING if bytes follow the header.
 */
cf_err cf_age_unwrap_header(const cf_age_identity *ids, size_t n, const uint8_t *hdr, size_t len,
			    uint8_t file_key[static CF_AGE_FILE_KEY_LEN]) CF_WUR;
/*
 * Decrypts with a file key released by the KMS. The header MAC is checked
 * with it; if header_sha256 is non-NULL the header bytes must hash to it
 * (CF_ERR_AUTH otherwise), so a swapped file is refused before any output.
 */
cf_err cf_age_decrypt_with_file_key(const uint8_t file_key[static CF_AGE_FILE_KEY_LEN],
				    const uint8_t *header_sha256, cf_reader in,
				    cf_writer out) CF_WUR;

/* --- building blocks (exposed for tests and fuzzers) --- */

typedef struct cf_age_stanza {
	char **args;       /* args[0] is the type */
	size_t nargs;
	uint8_t *body;
	size_t bodylen;
} cf_age_stanza;

typedef struct cf_age_header {
	cf_age_stanza *stanzas;
	size_t nstanzas;
	uint8_t mac[32];
	size_t mac_input_len; /* bytes of the encoded header the MAC covers */
} cf_age_header;

/*
 * Parses one complete header (through the "--- MAC\n" line) from data.
 * CF_ERR_TRUNCATED if data ends before the MAC line, CF_ERR_AGE_HEADER if
 * malformed. *consumed gets the header's length in bytes.
 */
cf_err cf_age_header_parse(const uint8_t *data, size_t len, cf_age_header *h,
			   size_t *consumed) CF_WUR;
/* Encodes the stanzas of h (and, if with_mac, the MAC line) into out. */
cf_err cf_age_header_encode(const cf_age_header *h, bool with_mac, cf_buf *out) CF_WUR;
void cf_age_header_free(cf_age_header *h);

/* STREAM with a known payload key (32 bytes): in carries chunks only. */
cf_err cf_age_stream_decrypt(const uint8_t key[static 32], cf_reader in, cf_writer out) CF_WUR;
cf_err cf_age_stream_encrypt(const uint8_t key[static 32], cf_reader in, cf_writer out) CF_WUR;

/* ASCII armor as stream adapters. */
typedef struct cf_armor_reader cf_armor_reader;
cf_err cf_armor_reader_new(cf_reader in, cf_armor_reader **out) CF_WUR;
cf_reader cf_armor_reader_as_reader(cf_armor_reader *a);
void cf_armor_reader_free(cf_armor_reader *a);

typedef struct cf_armor_writer cf_armor_writer;
cf_err cf_armor_writer_new(cf_writer out, cf_armor_writer **a) CF_WUR;
cf_writer cf_armor_writer_as_writer(cf_armor_writer *a);
/* Writes the last line and the END line. */
cf_err cf_armor_writer_finish(cf_armor_writer *a) CF_WUR;
void cf_armor_writer_free(cf_armor_writer *a);

#endif
