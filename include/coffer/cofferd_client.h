/*
 * cofferd_client: the client side of cofferd's REST API (docs/api.md).
 *
 * cofferd is untrusted for confidentiality: it only ever sees ciphertext,
 * signatures and metadata, so this client never sends it a key or a
 * plaintext record. What it does hold is the caller's session token
 * ("Authorization: Bearer"), which is kept in the client, wiped when the
 * client is freed, and never appears in an error message (a server that
 * echoes it back is answered with "(hidden)").
 *
 * Four layers. Pure helpers (ids, tokens, sizes, path segments). The
 * HTTPS client: JSON calls over TLS 1.3 trusting only one pinned CA
 * (lib/https.h, shared with kms_client), answers capped at 1 MiB, and
 * cofferd's refusals ({"error": {"code", "message"}}) kept for the
 * caller in cf_cofferd_client_error. Blobs: uploads in parts of at most
 * 8 MiB at increasing offsets, and streamed downloads whose size and
 * SHA-256 are checked. The profile: $COFFER_HOME/cofferd.json, the
 * pinned CA and the session token (mode 0600).
 *
 * One client does one thing at a time (it owns one libcurl handle).
 */
#ifndef COFFER_COFFERD_CLIENT_H
#define COFFER_COFFERD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/err.h"
#include "coffer/io.h"

#define CF_COFFERD_PART_MAX (8u << 20)     /* bytes of one blob part */
#define CF_COFFERD_MAX_REPLY (1u << 20)    /* bytes of one JSON answer */
#define CF_COFFERD_TOKEN_MAX 256           /* characters of a token */
#define CF_COFFERD_ID_HEX 16               /* hex digits after "PREFIX-" */
#define CF_COFFERD_MAX_PATH 1024           /* characters of a request path */

/* --- pure helpers --- */

/*
 * An id of docs/api.md: prefix, '-', 16 lower-case hex digits, e.g.
 * cf_cofferd_valid_id("task-00ff00ff00ff00ff", "task"). Ids are checked
 * before they go into a path, so none can add a path segment or query.
 */
bool cf_cofferd_valid_id(const char *s, const char *prefix);
/* A bearer token: 1 to 256 characters of [A-Za-z0-9_-] (cft_... is one). */
bool cf_cofferd_valid_token(const char *s);
/*
 * A size: decimal bytes with an optional unit, binary multiples either
 * way: K, M, G, T (and KB, KiB, ... alike), e.g. "512M", "2GiB",
 * "1048576". CF_ERR_ARG if malformed, zero or over 2^63.
 */
cf_err cf_cofferd_parse_size(const char *s, uint64_t *out) CF_WUR;
/* "1.5 GiB", "512 B": for people, never parsed back. */
void cf_cofferd_format_size(uint64_t n, char *out, size_t cap);
/*
 * Percent-encodes s as one path segment (unreserved characters kept).
 * CF_ERR_TOO_BIG if it does not fit in cap, CF_ERR_ARG if s is empty.
 */
cf_err cf_cofferd_path_segment(const char *s, char *out, size_t cap) CF_WUR;
/* True for the final run and task states: succeeded, failed, cancelled. */
bool cf_cofferd_state_final(const char *state);

/* --- the HTTPS JSON client --- */

typedef struct cf_cofferd_client cf_cofferd_client;

/* What the last call learnt about a failure. */
typedef struct cf_cofferd_error {
	long status;        /* HTTP status; 0 if no answer arrived */
	char code[64];      /* cofferd's error code ("forbidden"), "" if none */
	char message[512];  /* cofferd's message, or the transport's error */
} cf_cofferd_error;

/*
 * A client for url ("https://HOST[:PORT]", no path) trusting only the CA
 * certificate(s) in the PEM (copied). No token until cf_cofferd_set_token.
 */
cf_err cf_cofferd_client_open_pem(const char *url, const void *ca_pem, size_t len,
				  cf_cofferd_client **out) CF_WUR;
cf_err cf_cofferd_client_open(const char *url, const char *ca_pem_path,
			      cf_cofferd_client **out) CF_WUR;
/* Wipes the token and frees everything. */
void cf_cofferd_client_free(cf_cofferd_client *c);
const char *cf_cofferd_client_url(const cf_cofferd_client *c);
/* The failure of the last call (status 0, "" after a success). */
const cf_cofferd_error *cf_cofferd_client_error(const cf_cofferd_client *c);
/* Copies the bearer token (CF_ERR_ARG unless cf_cofferd_valid_token); NULL forgets it. */
cf_err cf_cofferd_set_token(cf_cofferd_client *c, const char *token) CF_WUR;
bool cf_cofferd_has_token(const cf_cofferd_client *c);

/*
 * One JSON request: method GET, POST, PUT or DELETE; body NULL sends
 * none for GET and DELETE and "{}" for POST and PUT. CF_OK when a JSON
 * answer arrived, whatever its status: *status is the HTTP status and
 * *reply the parsed body (the caller frees it). Otherwise CF_ERR_IO
 * (connection, TLS, certificate), CF_ERR_TOO_BIG (answer over 1 MiB),
 * CF_ERR_PARSE (a 2xx answer that is not JSON) or, for another status
 * whose answer is not JSON, that status's error as cf_cofferd_call
 * maps it; cf_cofferd_client_error says why.
 */
cf_err cf_cofferd_request(cf_cofferd_client *c, const char *method, const char *path,
			  const json_t *body, json_t **reply, long *status) CF_WUR;
/*
 * The same expecting 2xx and a JSON object: CF_OK with *reply set, or
 * the refusal mapped to an error (400 CF_ERR_PARSE, 401 and 403
 * CF_ERR_AUTH, 404 CF_ERR_NOT_FOUND, 409 CF_ERR_ARG, 413 CF_ERR_TOO_BIG,
 * other CF_ERR_IO) with status, code and message in
 * cf_cofferd_client_error and *reply left NULL. reply may be NULL when
 * the answer is not wanted.
 */
cf_err cf_cofferd_call(cf_cofferd_client *c, const char *method, const char *path,
		       const json_t *body, json_t **reply) CF_WUR;

/*
 * POST /v1/login {username, password}. On success the client keeps the
 * token, token (a secret buffer, if non-NULL) gets a copy and *expires
 * (if non-NULL) its expiry. The password travels only inside TLS and
 * every copy this function makes of it is wiped. CF_ERR_ARG if the
 * password is not UTF-8 or has a NUL; a refusal as cf_cofferd_call;
 * CF_ERR_PARSE if the answer carries no valid token.
 */
cf_err cf_cofferd_login(cf_cofferd_client *c, const char *username, const uint8_t *password,
			size_t passlen, cf_buf *token, long long *expires) CF_WUR;

/* --- blobs --- */

/* Called as bytes move: done of total (total 0 if unknown). */
typedef void (*cf_cofferd_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * Uploads exactly size bytes from in as parts of at most
 * CF_COFFERD_PART_MAX bytes: PUT path?offset=N, N the bytes sent so far,
 * each answered {"received": N + part}. sha256 (if non-NULL) gets the
 * SHA-256 of what was sent. CF_ERR_TRUNCATED if in ends early,
 * CF_ERR_TRAILING if it holds more; a refusal as cf_cofferd_call; an
 * answer that acknowledges another count is CF_ERR_PARSE.
 */
cf_err cf_cofferd_upload(cf_cofferd_client *c, const char *path, cf_reader in, uint64_t size,
			 cf_cofferd_progress_fn progress, void *ctx,
			 uint8_t sha256[CF_SHA256_LEN]) CF_WUR;

/*
 * A streamed GET of raw bytes, pulled through a cf_reader at the pace
 * its reader reads (the transfer pauses while the reader is behind).
 * Opening waits for the answer's status: a refusal comes back from
 * cf_cofferd_stream_open, as cf_cofferd_call maps it, before any byte.
 * More than max bytes end the transfer with CF_ERR_TOO_BIG. With sha256,
 * every byte is hashed for cf_cofferd_stream_sha256 (a reader that checks
 * the bytes otherwise, as an enclave decrypting with a registered header
 * does, leaves it off: hashing hundreds of MiB is not free).
 */
typedef struct cf_cofferd_stream cf_cofferd_stream;
cf_err cf_cofferd_stream_open(cf_cofferd_client *c, const char *path, uint64_t max, bool sha256,
			      cf_cofferd_stream **out) CF_WUR;
cf_reader cf_cofferd_stream_reader(cf_cofferd_stream *s);
/* The bytes read so far. */
uint64_t cf_cofferd_stream_count(const cf_cofferd_stream *s);
/* After the reader reported the end: the SHA-256 of every byte (CF_ERR_ARG before, or unhashed). */
cf_err cf_cofferd_stream_sha256(cf_cofferd_stream *s, uint8_t out[CF_SHA256_LEN]) CF_WUR;
void cf_cofferd_stream_free(cf_cofferd_stream *s);

/*
 * What a download must be: size (UINT64_MAX if unknown) and SHA-256
 * (NULL if unknown) as cofferd's metadata declares them.
 */
typedef struct cf_cofferd_expect {
	uint64_t size;
	const uint8_t *sha256;
} cf_cofferd_expect;

/*
 * Streams GET path into out. With expect, more bytes than its size stop
 * the transfer (CF_ERR_TOO_BIG), fewer are CF_ERR_TRUNCATED and another
 * SHA-256 is CF_ERR_AUTH; out has then received bytes that must be
 * thrown away (write to a cf_outfile and abort it). size and sha256 (if
 * non-NULL) get what arrived. max bounds the bytes when expect is NULL.
 */
cf_err cf_cofferd_download(cf_cofferd_client *c, const char *path, cf_writer out,
			   const cf_cofferd_expect *expect, uint64_t max,
			   cf_cofferd_progress_fn progress, void *ctx, uint64_t *size,
			   uint8_t sha256[CF_SHA256_LEN]) CF_WUR;

/*
 * Checks a download against cofferd's metadata (pure; what
 * cf_cofferd_download does at the end): CF_ERR_TRUNCATED or
 * CF_ERR_TOO_BIG for another size, CF_ERR_AUTH for another digest.
 */
cf_err cf_cofferd_expect_check(const cf_cofferd_expect *expect, uint64_t size,
			       const uint8_t sha256[CF_SHA256_LEN]) CF_WUR;

/* --- the profile: $COFFER_HOME (default ~/.config/coffer) --- */

/*
 * cofferd.json: {"url", "ca": "cofferd-ca.pem", "user", "token_file"},
 * "ca" and "token_file" relative to the profile unless absolute. Several
 * users of one machine use separate COFFER_HOMEs.
 */
#define CF_COFFERD_PROFILE "cofferd.json"
#define CF_COFFERD_CA_FILE "cofferd-ca.pem"
#define CF_COFFERD_TOKEN_FILE "cofferd.token"

typedef struct cf_cofferd_profile {
	char dir[4096];
	char url[CF_COFFERD_MAX_PATH * 2 + 8];
	char ca_path[4200];
	char user[72];
	char token_path[4200];
} cf_cofferd_profile;

/*
 * Reads cofferd.json. CF_ERR_NOT_FOUND if there is none (not logged in
 * on this profile), CF_ERR_PARSE if it is malformed.
 */
cf_err cf_cofferd_profile_load(cf_cofferd_profile *p) CF_WUR;
/*
 * Creates the profile folder if needed and writes, each atomically with
 * mode 0600, the CA PEM (checked to hold a certificate) as
 * cofferd-ca.pem and cofferd.json naming url, user, the CA and
 * cofferd.token. p (if non-NULL) gets the result as profile_load would.
 */
cf_err cf_cofferd_profile_save(const char *url, const char *user, const void *ca_pem,
			       size_t ca_len, cf_cofferd_profile *p) CF_WUR;
/* Writes the token (and a newline) atomically with mode 0600. */
cf_err cf_cofferd_token_write(const char *path, const char *token) CF_WUR;
/*
 * Reads a token file into a secret buffer (NUL-terminated): CF_ERR_AUTH
 * if group or others may read it, CF_ERR_PARSE if it is not one token,
 * CF_ERR_NOT_FOUND if absent.
 */
cf_err cf_cofferd_token_read(const char *path, cf_buf *token) CF_WUR;
/*
 * A client for the profile's cofferd with its token (if with_token).
 * url and ca_pem_path override the profile's; with both and without a
 * token no profile is needed. CF_ERR_NOT_FOUND (no cofferd.json or no
 * token file), CF_ERR_AUTH (token file readable by others) and
 * CF_ERR_PARSE as the functions above.
 */
cf_err cf_cofferd_client_open_profile(const char *url, const char *ca_pem_path, bool with_token,
				      cf_cofferd_client **out) CF_WUR;

#endif
