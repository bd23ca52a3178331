/*
 * cofferd: the control plane (docs/api.md), independent of its transport.
 *
 * cofferd_open() brings up the state directory (database, blob store,
 * audit log and its key, TLS certificate, the first admin);
 * cofferd_handle() answers one request given as plain values and says
 * how: a JSON body, or a file descriptor to stream. The HTTPS server
 * (http.c) is one front end; the unit tests and the fuzzer call
 * cofferd_handle() directly. Thread-safe: requests are handled
 * concurrently; the store serialises itself, the audit log too.
 *
 * cofferd is untrusted for confidentiality: it only ever holds
 * ciphertext, signatures, metadata, password hashes and token hashes.
 */
#ifndef COFFERD_H
#define COFFERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "coffer/err.h"

#define COFFERD_DEFAULT_STATE "/var/lib/coffer/cofferd"
#define COFFERD_MAX_JSON (1u << 20)        /* bytes of a JSON body */
#define COFFERD_MAX_PART (8u << 20)        /* bytes of one blob part */
#define COFFERD_DEFAULT_MAX_DATASET (4ull << 30)
#define COFFERD_SESSION_TTL (12 * 3600)
#define COFFERD_API_TOKEN_MAX_TTL (366 * 24 * 3600)
#define COFFERD_RUN_TOKEN_TTL (24 * 3600)
#define COFFERD_LOGIN_WINDOW 60
#define COFFERD_LOGIN_MAX_FAILURES 5
#define COFFERD_RUN_LOG_MAX (1u << 20)     /* bytes of a run's captured output */

typedef struct cofferd_config {
	const char *state_dir;
	const char *cert_path;        /* TLS certificate (PEM) and key; both NULL: */
	const char *key_path;         /*   self-signed P-256 made in state_dir */
	const char *const *names;     /* DNS names / IPs of the self-signed certificate */
	size_t nnames;
	const char *admin_password_file; /* first start: admin's password; NULL: random */
	const char *kms_url;          /* given to enclaves */
	const char *kms_ca_path;      /* PEM, given to enclaves */
	const char *platform_cert_path; /* PEM, given to enclaves */
	const char *launch_path;      /* coffer-launch */
	const char *enclave_path;     /* coffer-enclave */
	bool no_warm_spares;          /* launch each run's enclave only when it runs */
	uint64_t max_dataset;         /* 0: COFFERD_DEFAULT_MAX_DATASET */
	/* argon2id cost; 0: docs/api.md (t=3, 64 MiB). Tests lower them. */
	unsigned argon2_t;
	unsigned argon2_m_kib;
} cofferd_config;

typedef struct cofferd cofferd;

cf_err cofferd_open(const cofferd_config *cfg, cofferd **out) CF_WUR;
/* Cancels running enclaves (they are failed at the next start anyway) and frees. */
void cofferd_close(cofferd *d);

/* The TLS 1.3 context with cofferd's certificate. Borrowed. */
SSL_CTX *cofferd_ssl_ctx(cofferd *d);
/* cofferd's URL as enclaves reach it ("https://127.0.0.1:8080"), set once listening. */
void cofferd_set_url(cofferd *d, const char *url);
/* Clock, overridable by tests. */
void cofferd_set_clock(cofferd *d, time_t (*now)(void));

typedef enum cofferd_method {
	COFFERD_GET,
	COFFERD_POST,
	COFFERD_PUT,
	COFFERD_DELETE,
	COFFERD_OTHER,
} cofferd_method;

typedef struct cofferd_request {
	cofferd_method method;
	const char *path;           /* as sent (percent-encoded), without the query */
	const char *query;          /* as sent, or NULL */
	const char *authorization;  /* the Authorization header, or NULL */
	const uint8_t *body;
	size_t body_len;
} cofferd_request;

typedef struct cofferd_response {
	int status;
	json_t *json;               /* the body, when fd < 0 */
	int fd;                     /* >= 0: stream length bytes from offset (caller closes) */
	uint64_t offset;
	uint64_t length;
	const char *content_type;   /* of the stream (static) */
} cofferd_response;

/* Answers req; resp is always filled in (free it with cofferd_response_clear). */
void cofferd_handle(cofferd *d, const cofferd_request *req, cofferd_response *resp);
/* Frees the JSON and closes the descriptor, if still there. */
void cofferd_response_clear(cofferd_response *resp);

/* The admin's password made at the first start is in this file of the state dir. */
#define COFFERD_ADMIN_PASSWORD_FILE "admin.password"

#endif
