/*
 * audit: the append-only, hash-chained, signed audit log that coffer-kms
 * and cofferd both keep (format and rationale: docs/audit.md).
 *
 * A log is a file of JSON lines, one entry per line, each line the
 * canonical JSON (cf_json_canonical: sorted keys, no whitespace) of
 *
 *   {"actor","hash","object","operation","prev","result","seq","sig","time"}
 *
 * seq counts from 1 without gaps; time is RFC 3339 UTC with milliseconds
 * ("2025-07-01T12:00:00.000Z") and never decreases; prev is the hash of
 * the entry before (64 zeros for the first); hash is the lower-case hex
 * SHA-256 of the canonical JSON of the entry without "hash" and "sig";
 * sig is the padded base64 Ed25519 signature of CF_AUDIT_SIG_CONTEXT
 * followed by the 32 hash bytes. Changing, removing, inserting or
 * reordering any entry therefore breaks the chain at that entry.
 *
 * The writer appends one entry per call, under a mutex, and fsyncs it
 * before returning: an operation that was audited is on disk. It holds an
 * exclusive flock() on the file, resumes seq and prev from the last line
 * (whose hash and signature it checks, so a torn or forged tail is refused
 * rather than extended), and stops writing after any I/O failure.
 *
 * The verifier reads untrusted bytes: it streams through the log in
 * constant memory (one line of at most CF_AUDIT_MAX_LINE bytes), stops at
 * the first bad line and says which line, which seq and why. It cannot
 * see entries cut off the end of the log; compare the head it reports
 * (entries, last hash) with one recorded elsewhere to catch that.
 */
#ifndef COFFER_AUDIT_H
#define COFFER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/crypto.h"
#include "coffer/err.h"
#include "coffer/io.h"

/* Bytes of each of actor, operation, object and result (UTF-8, no NUL). */
#define CF_AUDIT_MAX_FIELD 1024u
/*
 * Bytes of one line, not counting its newline. Large enough for four
 * maximal fields even if every byte is a control character that JSON
 * escapes as \u00XX, so an entry within the field limits always fits.
 */
#define CF_AUDIT_MAX_LINE 32768u
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
#define CF_AUDIT_TIME_LEN 24u
#define CF_AUDIT_HASH_LEN CF_SHA256_LEN
/* The signed message is these 16 bytes followed by the 32-byte hash. */
#define CF_AUDIT_SIG_CONTEXT "coffer-audit-v1:"
#define CF_AUDIT_SIG_CONTEXT_LEN 16u

/* --- writing --- */

typedef struct cf_audit_log cf_audit_log;

/*
 * Opens (creating it, mode 0600, if absent) the log at path for
 * appending, signing with the Ed25519 key seed whose public key is pub
 * (CF_ERR_ARG if they do not match). The seed is copied and wiped on
 * close. Fails with CF_ERR_IO (errno EWOULDBLOCK) if another handle holds
 * the log, CF_ERR_TRUNCATED if the last line is incomplete,
 * CF_ERR_TOO_BIG if it is too long, and CF_ERR_PARSE or CF_ERR_AUTH if
 * the last entry is malformed or does not verify under pub: such a log
 * needs `coffer audit verify` and a human, not an automatic repair.
 * Nothing is logged; errno is kept for CF_ERR_IO.
 */
cf_err cf_audit_open(const char *path, const uint8_t seed[static CF_ED25519_SEED_LEN],
		     const uint8_t pub[static CF_ED25519_PUB_LEN], cf_audit_log **out) CF_WUR;

/*
 * The same with the key held elsewhere (another process, a sealed key
 * store): sign() is called under the log's mutex with the message to
 * sign and must write a 64-byte Ed25519 signature. Every signature is
 * verified under pub before it is written.
 */
typedef cf_err (*cf_audit_sign_fn)(void *ctx, const uint8_t *msg, size_t len,
				   uint8_t sig[static CF_ED25519_SIG_LEN]);
cf_err cf_audit_open_signer(const char *path, const uint8_t pub[static CF_ED25519_PUB_LEN],
			    cf_audit_sign_fn sign, void *ctx, cf_audit_log **out) CF_WUR;

/*
 * Appends one entry and fsyncs it; safe to call from several threads.
 * actor, operation and result are 1..CF_AUDIT_MAX_FIELD bytes, object
 * 0..CF_AUDIT_MAX_FIELD (CF_ERR_TOO_BIG, CF_ERR_ARG), all valid UTF-8
 * (CF_ERR_ENCODING). result is "ok", or "denied: <reason>", or
 * "error: <reason>". The time is the current UTC time, or the previous
 * entry's if the clock went back. After a failed write or fsync (errno
 * says why) the handle refuses further appends (CF_ERR_IO): treat the
 * audited operation as failed, close and reopen, which checks the tail.
 */
cf_err cf_audit_append(cf_audit_log *log, const char *actor, const char *operation,
		       const char *object, const char *result) CF_WUR;

/* The seq and hash of the last entry (0 and zeros for an empty log). */
void cf_audit_head(cf_audit_log *log, uint64_t *seq, uint8_t hash[static CF_AUDIT_HASH_LEN]);

/* Releases the lock and the file, and wipes the key. NULL is fine. */
void cf_audit_close(cf_audit_log *log);

/* --- verifying --- */

/* Why a line failed; the numbers are stable (they appear in JSON output). */
typedef enum cf_audit_fault {
	CF_AUDIT_FAULT_NONE = 0,
	CF_AUDIT_FAULT_LINE_TOO_LONG = 1, /* over CF_AUDIT_MAX_LINE bytes */
	CF_AUDIT_FAULT_INCOMPLETE = 2,    /* the last line has no newline */
	CF_AUDIT_FAULT_EMPTY_LINE = 3,
	CF_AUDIT_FAULT_JSON = 4,          /* not a JSON object (or nested) */
	CF_AUDIT_FAULT_FIELDS = 5,        /* a field missing, unexpected or of the wrong type */
	CF_AUDIT_FAULT_NOT_CANONICAL = 6, /* the line is not the canonical JSON of its entry */
	CF_AUDIT_FAULT_VALUE = 7,         /* a field's value is malformed or out of bounds */
	CF_AUDIT_FAULT_SEQ = 8,           /* seq is not the previous seq + 1 */
	CF_AUDIT_FAULT_PREV = 9,          /* prev is not the previous entry's hash */
	CF_AUDIT_FAULT_TIME = 10,         /* time is before the previous entry's */
	CF_AUDIT_FAULT_HASH = 11,         /* hash is not the hash of the entry */
	CF_AUDIT_FAULT_SIGNATURE = 12,    /* sig does not verify under the key */
} cf_audit_fault;

/* "hash_mismatch", "bad_signature", ...; "none" for CF_AUDIT_FAULT_NONE. */
const char *cf_audit_fault_name(cf_audit_fault fault);

typedef struct cf_audit_report {
	/* The good prefix: entries verified before the first bad line. */
	uint64_t entries;
	uint8_t last_hash[CF_AUDIT_HASH_LEN]; /* zeros if entries == 0 */
	char last_time[CF_AUDIT_TIME_LEN + 1]; /* "" if entries == 0 */

	/* The first bad line, if fault != CF_AUDIT_FAULT_NONE. */
	cf_audit_fault fault;
	uint64_t line;    /* 1-based */
	bool seq_known;   /* the line held an integer seq */
	long long seq;    /* that seq (the expected one is entries + 1) */
	char reason[160]; /* one line of English; quotes no bytes of the log */
} cf_audit_report;

/*
 * Verifies a whole log against the public key. CF_OK means every line is
 * a good entry (an empty log is a good log of 0 entries); CF_ERR_AUTH
 * means the log is bad and report says where and why; any other error
 * (CF_ERR_IO, CF_ERR_NOMEM, CF_ERR_ARG) means it could not be checked.
 * The report is filled in every case.
 */
cf_err cf_audit_verify(const void *text, size_t len, const uint8_t pub[static CF_ED25519_PUB_LEN],
		       cf_audit_report *report) CF_WUR;
/* The same over a stream, in constant memory. */
cf_err cf_audit_verify_reader(cf_reader in, const uint8_t pub[static CF_ED25519_PUB_LEN],
			      cf_audit_report *report) CF_WUR;
/* The same over a file (CF_ERR_NOT_FOUND if it does not exist). */
cf_err cf_audit_verify_file(const char *path, const uint8_t pub[static CF_ED25519_PUB_LEN],
			    cf_audit_report *report) CF_WUR;

#endif
