/*
 * err: the one error type of coffer.
 *
 * Every fallible function returns a cf_err; CF_OK is zero so that
 * `if ((rc = f()) != CF_OK) goto out;` is the one cleanup idiom. The
 * numbers are stable (they appear in logs and JSON output): append new
 * codes, never renumber. cf_strerror() gives a short English phrase that
 * names what failed without echoing any input (inputs may be secret).
 */
#ifndef COFFER_ERR_H
#define COFFER_ERR_H

#define CF_WUR __attribute__((warn_unused_result))
#define CF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

typedef enum cf_err {
	CF_OK = 0,
	CF_ERR_NOMEM = 1,          /* allocation failed */
	CF_ERR_ARG = 2,            /* caller passed an invalid argument */
	CF_ERR_TOO_BIG = 3,        /* input exceeds a hard limit */
	CF_ERR_TRUNCATED = 4,      /* input ended early */
	CF_ERR_PARSE = 5,          /* malformed input */
	CF_ERR_IO = 6,             /* read/write failed (see errno) */
	CF_ERR_CRYPTO = 7,         /* the crypto library failed internally */
	CF_ERR_AUTH = 8,           /* a tag, MAC or signature did not verify */
	CF_ERR_UNSUPPORTED = 9,    /* well-formed but not implemented */
	CF_ERR_NOT_FOUND = 10,     /* no such item */
	CF_ERR_ENCODING = 11,      /* bad hex/base64/bech32 */
	CF_ERR_TRAILING = 12,      /* data after the expected end */
	CF_ERR_WEAK_KEY = 13,      /* low-order point / all-zero shared secret */
	CF_ERR_LIMIT = 14,         /* a cost limit (work factor, depth) exceeded */

	/* age */
	CF_ERR_AGE_HEADER = 20,    /* header failure: malformed header */
	CF_ERR_AGE_NO_MATCH = 21,  /* no identity matched any recipient stanza */
	CF_ERR_AGE_HMAC = 22,      /* header MAC mismatch */
	CF_ERR_AGE_PAYLOAD = 23,   /* payload chunk failed to authenticate */
	CF_ERR_AGE_TRUNCATED = 24, /* payload ended before the final chunk */
	CF_ERR_AGE_ARMOR = 25,     /* malformed ASCII armor */
	CF_ERR_AGE_TRAILING = 26,  /* data after the final chunk */
	CF_ERR_AGE_IDENTITY = 27,  /* malformed identity or recipient string */
	CF_ERR_AGE_SCRYPT_MIXED = 28, /* scrypt stanza not alone in the header */
	CF_ERR_AGE_WORK_FACTOR = 29,  /* scrypt work factor above the limit */
} cf_err;

/* A short, static, human description. Never NULL. */
const char *cf_strerror(cf_err err);

/* The stable symbolic name, e.g. "CF_ERR_AGE_HMAC". Never NULL. */
const char *cf_errname(cf_err err);

#endif
