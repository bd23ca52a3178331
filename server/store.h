/*
 * store: cofferd's database, behind the functions its API needs.
 *
 * Everything cofferd remembers that is not a blob lives here: users and
 * organisations, hashed tokens, login failures, dataset and task
 * metadata, approvals, runs, outputs and instances. The API layer never
 * writes SQL; a backend implements this header. The one backend today is
 * SQLite (store_sqlite.c: one file in WAL mode, schema upgraded by
 * numbered migrations recorded in PRAGMA user_version, prepared
 * statements only). A PostgreSQL backend for several hosts implements the
 * same functions; the SQL in store_sqlite.c is kept to what both speak.
 *
 * Every function is atomic on its own (one transaction) and thread-safe.
 * Errors: CF_ERR_NOT_FOUND (no such row), CF_ERR_ARG ("conflict": a
 * unique name is taken, or the row is not in a state the change needs),
 * CF_ERR_IO (the database failed; logged), CF_ERR_NOMEM. Nothing secret is
 * stored but password hashes (argon2id) and token hashes (SHA-256).
 *
 * Strings in the records are bounded by the fields' sizes; the API layer
 * validates them before they get here, the store copies them truncated
 * never (a value that does not fit is CF_ERR_TOO_BIG).
 */
#ifndef COFFERD_STORE_H
#define COFFERD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/crypto.h"
#include "coffer/err.h"

#define STORE_SCHEMA_VERSION 2

#define STORE_ID_LEN 32        /* "PREFIX-" + 16 hex and a NUL fit */
#define STORE_NAME_LEN 65      /* 64 characters of [a-z0-9-] and a NUL */
#define STORE_ROLE_LEN 16
#define STORE_STATE_LEN 16
#define STORE_HEX256_LEN 65    /* 64 hex digits and a NUL */
#define STORE_PWHASH_LEN 160   /* an argon2id encoded string */
#define STORE_KEY_LEN 64       /* padded base64 of 32 bytes (44) and room */
#define STORE_RECIPIENT_LEN 80 /* "age1" + 58 and room */
#define STORE_KMS_NAME_LEN 136 /* "ORG/NAME" */
#define STORE_MESSAGE_LEN 256
#define STORE_OUTPUT_NAME_LEN 129
#define STORE_TABLE_LEN 129
#define STORE_ATTESTATION_LEN 4096 /* an output's attestation: compact JSON and a NUL */

typedef struct store store;

/*
 * Opens (creating) the database at path, in WAL mode with foreign keys,
 * and brings its schema up to STORE_SCHEMA_VERSION. A database from a
 * newer cofferd (user_version above ours) is refused with
 * CF_ERR_UNSUPPORTED.
 */
cf_err store_open(const char *path, store **out) CF_WUR;
void store_close(store *s);
/* The schema version the database is at (PRAGMA user_version). */
int store_schema_version(store *s);

/* --- small settings (host id, ...) --- */
cf_err store_meta_get(store *s, const char *key, char *out, size_t cap) CF_WUR;
cf_err store_meta_put(store *s, const char *key, const char *value) CF_WUR;

/* --- organisations --- */
typedef struct store_org {
	char id[STORE_ID_LEN];
	char name[STORE_NAME_LEN];
	char sign_pub[STORE_KEY_LEN];           /* "" if none */
	char age_recipient[STORE_RECIPIENT_LEN]; /* "" if none */
	int64_t created;
} store_org;

cf_err store_org_create(store *s, const store_org *o) CF_WUR;
cf_err store_org_get(store *s, const char *name, store_org *out) CF_WUR;
cf_err store_org_set_keys(store *s, const char *name, const char *sign_pub,
			  const char *age_recipient) CF_WUR;
typedef void (*store_org_fn)(void *arg, const store_org *o);
cf_err store_org_list(store *s, store_org_fn fn, void *arg) CF_WUR;

/* --- users --- */
typedef struct store_user {
	char id[STORE_ID_LEN];
	char name[STORE_NAME_LEN];
	char org[STORE_NAME_LEN];    /* "" for users of no organisation */
	char role[STORE_ROLE_LEN];
	char pwhash[STORE_PWHASH_LEN];
	int64_t created;
} store_user;

/* CF_ERR_ARG if the name is taken, CF_ERR_NOT_FOUND if the org is unknown. */
cf_err store_user_create(store *s, const store_user *u) CF_WUR;
cf_err store_user_get(store *s, const char *name, store_user *out) CF_WUR;
cf_err store_user_get_id(store *s, const char *id, store_user *out) CF_WUR;
/* Deletes the user and every token of theirs. */
cf_err store_user_delete(store *s, const char *name) CF_WUR;
typedef void (*store_user_fn)(void *arg, const store_user *u);
/* org NULL: every user; else the users of that organisation. */
cf_err store_user_list(store *s, const char *org, store_user_fn fn, void *arg) CF_WUR;
cf_err store_user_count(store *s, long long *n) CF_WUR;

/* --- tokens (only their SHA-256 is stored) --- */
typedef struct store_token {
	char id[STORE_ID_LEN];
	char kind[STORE_ROLE_LEN];   /* "session", "api" or "run" */
	char name[STORE_NAME_LEN];   /* api tokens: their creator's label */
	char user_id[STORE_ID_LEN];  /* session and api tokens */
	char run_id[STORE_ID_LEN];   /* run tokens */
	int64_t created;
	int64_t expires;
} store_token;

cf_err store_token_add(store *s, const uint8_t hash[static CF_SHA256_LEN],
		       const store_token *t) CF_WUR;
/* CF_ERR_NOT_FOUND if unknown or expired at now. */
cf_err store_token_lookup(store *s, const uint8_t hash[static CF_SHA256_LEN], int64_t now,
			  store_token *out) CF_WUR;
/* Deletes token id if it belongs to user_id (NULL: whoever it belongs to). */
cf_err store_token_delete(store *s, const char *id, const char *user_id) CF_WUR;
typedef void (*store_token_fn)(void *arg, const store_token *t);
/* A user's unexpired tokens. */
cf_err store_token_list(store *s, const char *user_id, int64_t now, store_token_fn fn,
			void *arg) CF_WUR;
/* Forgets tokens expired before now. */
cf_err store_token_purge(store *s, int64_t now) CF_WUR;

/* --- login rate limit: failures per user in a fixed window --- */
/* *blocked if the user has max failures in the window that started less than window s ago. */
cf_err store_login_blocked(store *s, const char *user, int64_t now, int64_t window, int max,
			   bool *blocked) CF_WUR;
/* Counts a failure (starting a new window if the last one is over). */
cf_err store_login_failed(store *s, const char *user, int64_t now, int64_t window) CF_WUR;
cf_err store_login_reset(store *s, const char *user) CF_WUR;

/* --- datasets --- */
typedef struct store_dataset {
	char id[STORE_ID_LEN];
	char org[STORE_NAME_LEN];
	char name[STORE_NAME_LEN];
	char kms_dataset[STORE_KMS_NAME_LEN];
	uint64_t size;              /* declared by the creator */
	char sha256[STORE_HEX256_LEN]; /* declared by the creator */
	char state[STORE_STATE_LEN];   /* "uploading" or "ready" */
	uint64_t received;
	char creator[STORE_NAME_LEN];
	int64_t created;
} store_dataset;

/* CF_ERR_ARG if the organisation already has a dataset of that name. */
cf_err store_dataset_create(store *s, const store_dataset *d) CF_WUR;
cf_err store_dataset_get(store *s, const char *id, store_dataset *out) CF_WUR;
/* Records the bytes received so far while uploading (CF_ERR_ARG if not uploading). */
cf_err store_dataset_received(store *s, const char *id, uint64_t received) CF_WUR;
/* uploading -> ready (CF_ERR_ARG if not uploading). */
cf_err store_dataset_ready(store *s, const char *id) CF_WUR;
cf_err store_dataset_delete(store *s, const char *id) CF_WUR;
typedef void (*store_dataset_fn)(void *arg, const store_dataset *d);
cf_err store_dataset_list(store *s, store_dataset_fn fn, void *arg) CF_WUR;
/* The newest ready dataset registered under kms_dataset in the KMS. */
cf_err store_dataset_for_kms(store *s, const char *kms_dataset, store_dataset *out) CF_WUR;

/* --- tasks and approvals --- */
typedef struct store_task {
	char id[STORE_ID_LEN];
	char name[STORE_NAME_LEN * 2];
	char digest[STORE_HEX256_LEN];
	char state[STORE_STATE_LEN];
	char creator[STORE_NAME_LEN];
	int64_t created;
	char *json;                 /* the task as given (store_task_get: malloc'd) */
} store_task;

/* Stores the task with its owners (organisation names), state "pending". */
cf_err store_task_create(store *s, const store_task *t, const char *const *owners,
			 size_t nowners) CF_WUR;
/* out->json is malloc'd: free with store_task_clear. */
cf_err store_task_get(store *s, const char *id, store_task *out) CF_WUR;
void store_task_clear(store_task *t);
typedef void (*store_task_fn)(void *arg, const store_task *t);
/* Newest first; json is not filled in. */
cf_err store_task_list(store *s, store_task_fn fn, void *arg) CF_WUR;
typedef void (*store_name_fn)(void *arg, const char *name);
cf_err store_task_owners(store *s, const char *task_id, store_name_fn fn, void *arg) CF_WUR;
typedef void (*store_approval_fn)(void *arg, const char *org, const char *sig);
cf_err store_task_approvals(store *s, const char *task_id, store_approval_fn fn,
			    void *arg) CF_WUR;
/*
 * Stores (or replaces) org's approval; when every owner has approved a
 * pending task it becomes "approved". CF_ERR_ARG if the task is not
 * pending or approved (running, finished, cancelled): approvals are for
 * a task that has not run yet. *state gets the new state.
 */
cf_err store_task_approve(store *s, const char *task_id, const char *org, const char *sig,
			  int64_t now, char state[static STORE_STATE_LEN]) CF_WUR;

/* --- runs --- */
typedef struct store_run {
	char id[STORE_ID_LEN];
	char task_id[STORE_ID_LEN];
	char instance_id[STORE_ID_LEN]; /* "" for the default instance */
	char state[STORE_STATE_LEN];    /* running, succeeded, failed, cancelled */
	int exit_status;                /* -1 until the enclave exited */
	int64_t started;
	int64_t ended;                  /* 0 while running */
	char message[STORE_MESSAGE_LEN];
} store_run;

typedef struct store_run_input {
	char table[STORE_TABLE_LEN];
	char dataset_id[STORE_ID_LEN];
} store_run_input;

/*
 * Starts a run in one transaction: the task must be "approved",
 * "succeeded" or "failed" (else CF_ERR_ARG) and becomes "running"; the
 * instance (if any) must be "running" with no run (CF_ERR_ARG) and gets
 * this one; the run's inputs and its token are stored.
 */
cf_err store_run_start(store *s, const store_run *r, const store_run_input *inputs,
		       size_t ninputs, const uint8_t token_hash[static CF_SHA256_LEN],
		       const store_token *token) CF_WUR;
cf_err store_run_get(store *s, const char *id, store_run *out) CF_WUR;
typedef void (*store_run_fn)(void *arg, const store_run *r);
/* A task's runs, newest first. */
cf_err store_run_list(store *s, const char *task_id, store_run_fn fn, void *arg) CF_WUR;
typedef void (*store_run_input_fn)(void *arg, const store_run_input *in);
cf_err store_run_inputs(store *s, const char *run_id, store_run_input_fn fn, void *arg) CF_WUR;
/* Whether the dataset is an input of the run. */
cf_err store_run_uses(store *s, const char *run_id, const char *dataset_id, bool *uses) CF_WUR;
/*
 * Ends a running run with state (succeeded, failed, cancelled) and
 * message: the task takes that state, the instance is freed, the run's
 * tokens are deleted. CF_ERR_ARG if the run is not running.
 */
cf_err store_run_end(store *s, const char *id, const char *state, const char *message,
		     int64_t now) CF_WUR;
/* Records the enclave's exit status (whatever the run's state). */
cf_err store_run_exited(store *s, const char *id, int exit_status) CF_WUR;
/* At start: every run still "running" belonged to a previous process: failed. */
cf_err store_run_fail_orphans(store *s, const char *message, int64_t now) CF_WUR;
/* The running run of a task ("" if none). */
cf_err store_task_running_run(store *s, const char *task_id, char run_id[static STORE_ID_LEN]) CF_WUR;
/* Cancels a task with no run going: pending or approved -> cancelled (else CF_ERR_ARG). */
cf_err store_task_cancel(store *s, const char *task_id) CF_WUR;

/* --- run outputs --- */
typedef struct store_output {
	char run_id[STORE_ID_LEN];
	char name[STORE_OUTPUT_NAME_LEN];
	unsigned index;             /* position in the task's outputs: the blob's file name */
	char state[STORE_STATE_LEN]; /* "uploading" or "ready" */
	uint64_t received;
	uint64_t size;              /* when ready */
	char sha256[STORE_HEX256_LEN]; /* when ready */
	/*
	 * When ready: the enclave's attestation of the output (compact JSON,
	 * docs/api.md), carried as it came and never checked here (recipients
	 * check it); "" if the enclave sent none.
	 */
	char attestation[STORE_ATTESTATION_LEN];
} store_output;

/* Creates or updates (run_id, name). */
cf_err store_output_put(store *s, const store_output *o) CF_WUR;
cf_err store_output_get(store *s, const char *run_id, const char *name, store_output *out) CF_WUR;
typedef void (*store_output_fn)(void *arg, const store_output *o);
cf_err store_output_list(store *s, const char *run_id, store_output_fn fn, void *arg) CF_WUR;
/* The newest succeeded run of a task with output name ready (CF_ERR_NOT_FOUND if none). */
cf_err store_output_latest(store *s, const char *task_id, const char *name,
			   store_output *out) CF_WUR;

/* --- instances --- */
typedef struct store_instance {
	char id[STORE_ID_LEN];
	char name[STORE_NAME_LEN];
	char tee[STORE_ROLE_LEN];
	unsigned cores;
	uint64_t memory;
	uint64_t enclave_size;
	char state[STORE_STATE_LEN]; /* "stopped" or "running" */
	char run_id[STORE_ID_LEN];   /* "" if idle */
	int64_t created;
} store_instance;

/* CF_ERR_ARG if the name is taken. */
cf_err store_instance_create(store *s, const store_instance *in) CF_WUR;
cf_err store_instance_get(store *s, const char *id, store_instance *out) CF_WUR;
typedef void (*store_instance_fn)(void *arg, const store_instance *in);
cf_err store_instance_list(store *s, store_instance_fn fn, void *arg) CF_WUR;
/*
 * stopped -> running if the running instances' reservations plus this
 * one fit in cores and memory (CF_ERR_LIMIT if not); running -> stopped
 * if it has no run (CF_ERR_ARG if it has).
 */
cf_err store_instance_start(store *s, const char *id, unsigned cores, uint64_t memory) CF_WUR;
cf_err store_instance_stop(store *s, const char *id) CF_WUR;
/* Deletes a stopped instance (CF_ERR_ARG if running). */
cf_err store_instance_delete(store *s, const char *id) CF_WUR;

#endif
