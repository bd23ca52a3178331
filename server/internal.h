/*
 * What cofferd's modules share: the daemon's state, a request's context
 * (who calls, the decoded path, the JSON body, what to audit), the roles,
 * and the helpers every handler uses to answer. Not a public interface:
 * cofferd.h is.
 */
#ifndef COFFERD_INTERNAL_H
#define COFFERD_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "coffer/audit.h"
#include "coffer/crypto.h"
#include "cofferd.h"
#include "store.h"

#define COFFERD_PATH_MAX 1024
#define COFFERD_MAX_SEGMENTS 8
#define COFFERD_TOKEN_PREFIX "cft_"
#define COFFERD_TOKEN_BYTES 32
/* "cft_" + base64url of 32 bytes without padding (43) */
#define COFFERD_TOKEN_LEN 47

typedef struct runner runner;

struct cofferd {
	char state_dir[COFFERD_PATH_MAX];
	char blobs_dir[COFFERD_PATH_MAX];
	char runs_dir[COFFERD_PATH_MAX];
	store *db;

	pthread_mutex_t audit_lock;   /* guards audit and audit_broken */
	cf_audit_log *audit;
	bool audit_broken;            /* an append failed: refuse changes until reopened */
	char audit_path[COFFERD_PATH_MAX];
	uint8_t audit_seed[CF_ED25519_SEED_LEN];
	uint8_t audit_pub[CF_ED25519_PUB_LEN];

	SSL_CTX *ssl;
	char *cert_pem;               /* cofferd's certificate, for enclaves to pin */
	char *kms_ca_pem;
	char *platform_cert_pem;
	char kms_url[512];
	char launch_path[COFFERD_PATH_MAX];
	char enclave_path[COFFERD_PATH_MAX];
	bool warm_spares;             /* keep a launched enclave waiting per size */
	pthread_mutex_t url_lock;
	char url[512];

	uint64_t max_dataset;
	unsigned argon2_t;
	unsigned argon2_m_kib;
	/* Verified against for unknown users, so their logins take as long. */
	char dummy_hash[STORE_PWHASH_LEN];
	char host_id[STORE_ID_LEN];
	time_t (*now)(void);
	runner *runs;
};

typedef enum role {
	ROLE_NONE = 0,
	ROLE_ADMIN,
	ROLE_OPERATOR,
	ROLE_ORG_ADMIN,
	ROLE_ANALYST,
	ROLE_AUDITOR,
} role;

role role_parse(const char *s);
const char *role_name(role r);

typedef enum caller_kind { CALLER_ANON = 0, CALLER_USER, CALLER_RUN } caller_kind;

typedef struct caller {
	caller_kind kind;
	role role;
	store_user user;   /* CALLER_USER */
	store_token token; /* the token presented */
	char actor[96];    /* user:NAME, token:ID or run:ID */
} caller;

typedef struct ctx {
	cofferd *d;
	const cofferd_request *req;
	cofferd_response *resp;
	int64_t now;
	caller who;
	json_t *body;                        /* JSON routes: the object sent ({} if none) */
	const char *param[COFFERD_MAX_SEGMENTS]; /* the path's "*" segments, decoded */
	char segbuf[COFFERD_PATH_MAX + COFFERD_MAX_SEGMENTS];
	/* Audit of a mutating call: operation from the route, object and actor from the handler. */
	const char *op;
	char object[256];
	char actor[96];                      /* set by login for an unauthenticated caller */
	char reason[64];                     /* "denied: REASON" detail, default the error code */
} ctx;

/* --- answers (api.c) --- */

/* {"error": {"code", "message"}} with the code of status; returns nothing useful. */
void api_fail(ctx *c, int status, const char *fmt, ...) CF_PRINTF(3, 4);
/* 200 with body (taken); a NULL body (allocation failed) becomes 500. */
void api_ok(ctx *c, json_t *body);
/* 200 streaming length bytes of fd (taken). */
void api_stream(ctx *c, int fd, uint64_t length, const char *content_type);
/* Maps a store error: NOT_FOUND 404 (what), ARG 409 (conflict), else 500. */
void api_store_fail(ctx *c, cf_err rc, const char *what, const char *conflict);
/* Sets the audit object with printf. */
void api_object(ctx *c, const char *fmt, ...) CF_PRINTF(2, 3);

/* --- request helpers (api.c) --- */

bool valid_name(const char *s);
/* "PREFIX-" + 16 lower-case hex digits. */
bool valid_id(const char *s, const char *prefix);
/* A fresh id. */
cf_err make_id(const char *prefix, char out[static STORE_ID_LEN]) CF_WUR;
/* 64 lower-case hex digits. */
bool valid_hex256(const char *s);
/* A string member of the body, or NULL (absent or not a string). */
const char *body_string(ctx *c, const char *key);
/* A non-negative integer member; false if absent, not an integer or negative. */
bool body_uint(ctx *c, const char *key, uint64_t *out);
/* The query parameter "offset" as a decimal number (false if absent or malformed). */
bool query_offset(const char *query, uint64_t *out);

/* Role checks. */
bool is_admin(const ctx *c);
/* A user of org (with one of the roles of mask, as 1u << role); admin always. */
bool member_of(const ctx *c, const char *org, unsigned roles);
#define R(x) (1u << (x))
#define ANALYST_UP (R(ROLE_ANALYST) | R(ROLE_ORG_ADMIN) | R(ROLE_ADMIN))

/* --- audit (core.c) --- */

/*
 * At most max bytes of s in out (max + 1 bytes), cut on a character
 * boundary, bytes that are not valid UTF-8 replaced by '?': for messages
 * and audit fields that quote request values.
 */
const char *clean_utf8(const char *s, char *out, size_t max);

/*
 * Appends one entry (fields cut to valid UTF-8 of bounded length).
 * CF_ERR_IO if the log cannot be written: the caller fails the request,
 * and later changes are refused until the log reopens.
 */
cf_err cofferd_audit(cofferd *d, const char *actor, const char *op, const char *object,
		     const char *result) CF_WUR;
/* Whether changes may proceed (reopens a broken log first). */
bool cofferd_audit_ready(cofferd *d);

/* --- authentication (auth.c) --- */

cf_err password_hash(cofferd *d, const char *password, size_t len,
		     char out[static STORE_PWHASH_LEN]) CF_WUR;
/* CF_OK if it matches, CF_ERR_AUTH if not. */
cf_err password_verify(const char *hash, const char *password, size_t len) CF_WUR;
bool password_acceptable(size_t len);
/* A new token (text, NUL-terminated) and the SHA-256 it is stored under. */
cf_err token_make(char text[static COFFERD_TOKEN_LEN + 1],
		  uint8_t hash[static CF_SHA256_LEN]) CF_WUR;
/*
 * Resolves the Authorization header into c->who. CF_ERR_NOT_FOUND if
 * there is none; CF_ERR_AUTH if the token is malformed, unknown, expired,
 * or its user is gone.
 */
cf_err authenticate(ctx *c) CF_WUR;
/* The first start: the admin user, with the password from a file or a random one. */
cf_err ensure_admin(cofferd *d, const char *password_file) CF_WUR;

/* --- handlers (api_*.c) --- */

void h_login(ctx *c);
void h_logout(ctx *c);
void h_me(ctx *c);
void h_token_create(ctx *c);
void h_token_list(ctx *c);
void h_token_delete(ctx *c);
void h_org_create(ctx *c);
void h_org_list(ctx *c);
void h_org_get(ctx *c);
void h_org_keys(ctx *c);
void h_user_create(ctx *c);
void h_user_list(ctx *c);
void h_user_delete(ctx *c);

void h_dataset_create(ctx *c);
void h_dataset_list(ctx *c);
void h_dataset_get(ctx *c);
void h_dataset_put(ctx *c);
void h_dataset_commit(ctx *c);
void h_dataset_blob(ctx *c);
void h_dataset_delete(ctx *c);

void h_task_create(ctx *c);
void h_task_list(ctx *c);
void h_task_get(ctx *c);
void h_task_approve(ctx *c);
void h_task_run(ctx *c);
void h_task_cancel(ctx *c);
void h_task_output(ctx *c);
void h_run_get(ctx *c);
void h_run_spec(ctx *c);
void h_run_output_put(ctx *c);
void h_run_output_commit(ctx *c);
void h_run_finish(ctx *c);

void h_host_list(ctx *c);
void h_instance_create(ctx *c);
void h_instance_list(ctx *c);
void h_instance_start(ctx *c);
void h_instance_stop(ctx *c);
void h_instance_delete(ctx *c);
void h_audit_log(ctx *c);
void h_audit_key(ctx *c);

/* --- blobs (blobs.c): STATE/blobs/NAME, NAME checked by the caller --- */

/*
 * Appends data at offset to NAME.part: CF_ERR_ARG if the part file does
 * not hold exactly offset bytes (out of order), CF_ERR_TOO_BIG if it would
 * pass max, CF_ERR_LIMIT if another upload of NAME is in progress.
 * *received is the new size.
 */
cf_err blob_append(cofferd *d, const char *name, uint64_t offset, const uint8_t *data,
		   size_t len, uint64_t max, uint64_t *received) CF_WUR;
/*
 * Checks NAME.part against size and sha256 (hex) and renames it to NAME
 * (fsynced). CF_ERR_AUTH if they differ: the part file is removed (the
 * upload starts again from 0). CF_ERR_LIMIT while a part is being written.
 */
cf_err blob_commit(cofferd *d, const char *name, uint64_t size, const char *sha256_hex) CF_WUR;
/* Opens NAME for reading; *size its length. */
cf_err blob_open(cofferd *d, const char *name, int *fd, uint64_t *size) CF_WUR;
/* Removes NAME and NAME.part. */
void blob_remove(cofferd *d, const char *name);

/* --- the soft driver (runner.c) --- */

typedef struct run_launch {
	const char *run_id;
	const char *token;          /* secret: only ever written to the enclave's stdin */
	unsigned cores;
	uint64_t memory;
	uint64_t enclave_size;
} run_launch;

cf_err runner_new(cofferd *d, runner **out) CF_WUR;
/* Kills what still runs and waits for the watchers. */
void runner_free(runner *r);
/*
 * Starts coffer-launch for a run (stored as running already) and watches
 * it: its output goes to STATE/runs/RUN.log (capped), its exit status is
 * recorded, and if it exits while the run is still running the run fails.
 */
cf_err runner_start(runner *r, const run_launch *l) CF_WUR;
/*
 * Starts a warm spare of this size (coffer-launch with the enclave waiting
 * for its parameters) unless one waits already or spares are off.
 */
void runner_prewarm(runner *r, unsigned cores, uint64_t memory, uint64_t enclave_size);
/* Stops the warm spare of this size, if any. */
void runner_drop_spares(runner *r, unsigned cores, uint64_t memory, uint64_t enclave_size);
/* Asks a run's process group to stop (SIGTERM, SIGKILL after a grace). */
void runner_cancel(runner *r, const char *run_id);
/* Whether the soft TEE is usable here (memfd_secret works, coffer-launch exists). */
bool runner_soft_available(cofferd *d);

#endif
