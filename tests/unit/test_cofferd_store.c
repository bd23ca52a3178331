/*
 * cofferd's store (server/store.h) on SQLite: migrations and the refusal
 * of a newer schema, WAL mode, users and organisations, tokens looked up
 * by hash and refused once expired, the login window, datasets, tasks and
 * approvals, runs (start, end, orphans) and instance capacity. Values that
 * look like SQL are stored as values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "coffer/crypto.h"
#include "store.h"

typedef struct fixture {
	char dir[64];
	char path[128];
	store *s;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/cofferd.db", f->dir);
	assert_int_equal(store_open(f->path, &f->s), CF_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void raw_sql(const char *path, const char *sql, char *out, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	int rc = sqlite3_step(st);
	assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
	if (out)
		snprintf(out, cap, "%s", rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void add_org(store *s, const char *id, const char *name)
{
	store_org o = { .created = 1 };
	snprintf(o.id, sizeof(o.id), "%s", id);
	snprintf(o.name, sizeof(o.name), "%s", name);
	assert_int_equal(store_org_create(s, &o), CF_OK);
}

static void add_user(store *s, const char *id, const char *name, const char *org, const char *role)
{
	store_user u = { .created = 2 };
	snprintf(u.id, sizeof(u.id), "%s", id);
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.org, sizeof(u.org), "%s", org);
	snprintf(u.role, sizeof(u.role), "%s", role);
	snprintf(u.pwhash, sizeof(u.pwhash), "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA");
	assert_int_equal(store_user_create(s, &u), CF_OK);
}

static void test_migrations(void **state)
{
	fixture *f = *state;
	char v[32];
	assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
	raw_sql(f->path, "PRAGMA journal_mode", v, sizeof(v));
	assert_string_equal(v, "wal");
	/* Reopening an up-to-date database changes nothing. */
	add_org(f->s, "org-0000000000000001", "kept");
	store_close(f->s);
	assert_int_equal(store_open(f->path, &f->s), CF_OK);
	assert_int_equal(store_schema_version(f->s), STORE_SCHEMA_VERSION);
	store_org o;
	assert_int_equal(store_org_get(f->s, "kept", &o), CF_OK);
	store_close(f->s);
	f->s = NULL;
	/* A database from a newer cofferd is refused, not guessed at. */
	raw_sql(f->path, "PRAGMA user_version = 99", NULL, 0);
	assert_int_equal(store_open(f->path, &f->s), CF_ERR_UNSUPPORTED);
	assert_null(f->s);
	raw_sql(f->path, "PRAGMA user_version = 2", NULL, 0);
	assert_int_equal(store_open(f->path, &f->s), CF_OK);
	/* A fresh file at version 0 is migrated all the way. */
	char fresh[160];
	store *s2 = NULL;
	snprintf(fresh, sizeof(fresh), "%s/fresh.db", f->dir);
	assert_int_equal(store_open(fresh, &s2), CF_OK);
	assert_int_equal(store_schema_version(s2), STORE_SCHEMA_VERSION);
	store_close(s2);

	/* A version 1 database with an output: migration 2 adds the attestation, "" for it. */
	char v1[160];
	snprintf(v1, sizeof(v1), "%s/v1.db", f->dir);
	raw_sql(v1, "CREATE TABLE outputs(run_id TEXT NOT NULL, name TEXT NOT NULL, idx INTEGER "
		"NOT NULL, state TEXT NOT NULL, received INTEGER NOT NULL DEFAULT 0, size INTEGER NOT "
		"NULL DEFAULT 0, sha256 TEXT NOT NULL DEFAULT '', PRIMARY KEY(run_id, name))", NULL, 0);
	raw_sql(v1, "INSERT INTO outputs VALUES ('run-0000000000000001', 'result', 0, 'ready', 5, 5, "
		"'ab')", NULL, 0);
	raw_sql(v1, "PRAGMA user_version = 1", NULL, 0);
	assert_int_equal(store_open(v1, &s2), CF_OK);
	assert_int_equal(store_schema_version(s2), STORE_SCHEMA_VERSION);
	store_output o1;
	assert_int_equal(store_output_get(s2, "run-0000000000000001", "result", &o1), CF_OK);
	assert_string_equal(o1.sha256, "ab");
	assert_string_equal(o1.attestation, "");
	store_close(s2);
}

static void count_users(void *arg, const store_user *u)
{
	(*(int *)arg)++;
}

static void test_users_orgs(void **state)
{
	fixture *f = *state;
	store_user u;
	add_org(f->s, "org-0000000000000001", "org-a");
	store_org dup = { .created = 1 };
	snprintf(dup.id, sizeof(dup.id), "org-0000000000000002");
	snprintf(dup.name, sizeof(dup.name), "org-a");
	assert_int_equal(store_org_create(f->s, &dup), CF_ERR_ARG);
	assert_int_equal(store_org_set_keys(f->s, "org-a", "PUB", "age1x"), CF_OK);
	assert_int_equal(store_org_set_keys(f->s, "nope", "PUB", "age1x"), CF_ERR_NOT_FOUND);

	add_user(f->s, "usr-0000000000000001", "alice", "org-a", "analyst");
	add_user(f->s, "usr-0000000000000002", "root", "", "admin");
	/* Unknown organisation, taken name. */
	store_user bad = { .created = 3 };
	snprintf(bad.id, sizeof(bad.id), "usr-0000000000000003");
	snprintf(bad.name, sizeof(bad.name), "bob");
	snprintf(bad.org, sizeof(bad.org), "org-x");
	snprintf(bad.role, sizeof(bad.role), "analyst");
	assert_int_equal(store_user_create(f->s, &bad), CF_ERR_NOT_FOUND);
	snprintf(bad.name, sizeof(bad.name), "alice");
	snprintf(bad.org, sizeof(bad.org), "org-a");
	assert_int_equal(store_user_create(f->s, &bad), CF_ERR_ARG);

	assert_int_equal(store_user_get(f->s, "alice", &u), CF_OK);
	assert_string_equal(u.org, "org-a");
	assert_string_equal(u.role, "analyst");
	assert_int_equal(store_user_get_id(f->s, "usr-0000000000000002", &u), CF_OK);
	assert_string_equal(u.name, "root");
	assert_string_equal(u.org, "");
	int n = 0;
	assert_int_equal(store_user_list(f->s, "org-a", count_users, &n), CF_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(store_user_list(f->s, NULL, count_users, &n), CF_OK);
	assert_int_equal(n, 2);

	/* A value that looks like SQL is a value. */
	add_user(f->s, "usr-0000000000000009", "x", "", "auditor");
	store_user evil = { .created = 3 };
	snprintf(evil.id, sizeof(evil.id), "usr-000000000000000a");
	snprintf(evil.name, sizeof(evil.name), "y'); DROP TABLE users;--");
	snprintf(evil.role, sizeof(evil.role), "a' OR '1'='1");
	assert_int_equal(store_user_create(f->s, &evil), CF_OK);
	assert_int_equal(store_user_get(f->s, "y'); DROP TABLE users;--", &u), CF_OK);
	assert_string_equal(u.role, "a' OR '1'='1");
	assert_int_equal(store_user_get(f->s, "' OR '1'='1", &u), CF_ERR_NOT_FOUND);
	long long count = 0;
	assert_int_equal(store_user_count(f->s, &count), CF_OK);
	assert_int_equal(count, 4);

	assert_int_equal(store_user_delete(f->s, "alice"), CF_OK);
	assert_int_equal(store_user_delete(f->s, "alice"), CF_ERR_NOT_FOUND);
}

static void test_tokens(void **state)
{
	fixture *f = *state;
	uint8_t h1[32], h2[32], h3[32];
	store_token t;
	add_org(f->s, "org-0000000000000001", "org-a");
	add_user(f->s, "usr-0000000000000001", "alice", "org-a", "analyst");
	add_user(f->s, "usr-0000000000000002", "bob", "org-a", "analyst");
	assert_int_equal(cf_hash(CF_SHA256, "one", 3, h1), CF_OK);
	assert_int_equal(cf_hash(CF_SHA256, "two", 3, h2), CF_OK);
	assert_int_equal(cf_hash(CF_SHA256, "three", 5, h3), CF_OK);
	store_token a = { .created = 100, .expires = 200 };
	snprintf(a.id, sizeof(a.id), "tok-0000000000000001");
	snprintf(a.kind, sizeof(a.kind), "session");
	snprintf(a.user_id, sizeof(a.user_id), "usr-0000000000000001");
	assert_int_equal(store_token_add(f->s, h1, &a), CF_OK);
	store_token b = a;
	snprintf(b.id, sizeof(b.id), "tok-0000000000000002");
	snprintf(b.kind, sizeof(b.kind), "api");
	snprintf(b.name, sizeof(b.name), "ci");
	b.expires = 1000;
	assert_int_equal(store_token_add(f->s, h2, &b), CF_OK);
	/* The same hash twice is refused (a token is its hash). */
	assert_int_equal(store_token_add(f->s, h2, &a), CF_ERR_ARG);

	assert_int_equal(store_token_lookup(f->s, h1, 150, &t), CF_OK);
	assert_string_equal(t.id, "tok-0000000000000001");
	assert_string_equal(t.user_id, "usr-0000000000000001");
	/* Expired at its expiry second, unknown hash. */
	assert_int_equal(store_token_lookup(f->s, h1, 200, &t), CF_ERR_NOT_FOUND);
	assert_int_equal(store_token_lookup(f->s, h3, 150, &t), CF_ERR_NOT_FOUND);
	/* Someone else's token cannot be deleted by id. */
	assert_int_equal(store_token_delete(f->s, "tok-0000000000000002", "usr-0000000000000002"),
			 CF_ERR_NOT_FOUND);
	assert_int_equal(store_token_purge(f->s, 500), CF_OK);
	assert_int_equal(store_token_lookup(f->s, h2, 600, &t), CF_OK);
	assert_string_equal(t.name, "ci");
	/* Deleting the user takes the tokens. */
	assert_int_equal(store_user_delete(f->s, "alice"), CF_OK);
	assert_int_equal(store_token_lookup(f->s, h2, 600, &t), CF_ERR_NOT_FOUND);
}

static void test_login_window(void **state)
{
	fixture *f = *state;
	bool blocked = true;
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_login_failed(f->s, "alice", 1000 + i, 60), CF_OK);
	assert_int_equal(store_login_blocked(f->s, "alice", 1010, 60, 5, &blocked), CF_OK);
	assert_false(blocked);
	assert_int_equal(store_login_failed(f->s, "alice", 1011, 60), CF_OK);
	assert_int_equal(store_login_blocked(f->s, "alice", 1011, 60, 5, &blocked), CF_OK);
	assert_true(blocked);
	assert_int_equal(store_login_blocked(f->s, "alice", 1059, 60, 5, &blocked), CF_OK);
	assert_true(blocked);
	/* The minute is over. */
	assert_int_equal(store_login_blocked(f->s, "alice", 1060, 60, 5, &blocked), CF_OK);
	assert_false(blocked);
	/* A failure after the window starts a new one. */
	assert_int_equal(store_login_failed(f->s, "alice", 1100, 60), CF_OK);
	assert_int_equal(store_login_blocked(f->s, "alice", 1100, 60, 1, &blocked), CF_OK);
	assert_true(blocked);
	assert_int_equal(store_login_blocked(f->s, "alice", 1100, 60, 2, &blocked), CF_OK);
	assert_false(blocked);
	assert_int_equal(store_login_reset(f->s, "alice"), CF_OK);
	assert_int_equal(store_login_blocked(f->s, "alice", 1100, 60, 1, &blocked), CF_OK);
	assert_false(blocked);
}

static void make_dataset(store *s, const char *id, const char *org, const char *name, int64_t created)
{
	store_dataset d = { .size = 10, .created = created };
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.org, sizeof(d.org), "%s", org);
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.kms_dataset, sizeof(d.kms_dataset), "%s/data", org);
	snprintf(d.sha256, sizeof(d.sha256), "%064d", 0);
	snprintf(d.state, sizeof(d.state), "uploading");
	snprintf(d.creator, sizeof(d.creator), "alice");
	assert_int_equal(store_dataset_create(s, &d), CF_OK);
}

static void test_datasets(void **state)
{
	fixture *f = *state;
	store_dataset d;
	add_org(f->s, "org-0000000000000001", "org-a");
	make_dataset(f->s, "ds-0000000000000001", "org-a", "one", 10);
	make_dataset(f->s, "ds-0000000000000002", "org-a", "two", 20);
	store_dataset dup;
	assert_int_equal(store_dataset_get(f->s, "ds-0000000000000001", &dup), CF_OK);
	snprintf(dup.id, sizeof(dup.id), "ds-0000000000000003");
	assert_int_equal(store_dataset_create(f->s, &dup), CF_ERR_ARG); /* same org and name */
	assert_int_equal(store_dataset_for_kms(f->s, "org-a/data", &d), CF_ERR_NOT_FOUND);
	assert_int_equal(store_dataset_received(f->s, "ds-0000000000000001", 4), CF_OK);
	assert_int_equal(store_dataset_ready(f->s, "ds-0000000000000001"), CF_OK);
	assert_int_equal(store_dataset_ready(f->s, "ds-0000000000000001"), CF_ERR_ARG);
	assert_int_equal(store_dataset_received(f->s, "ds-0000000000000001", 4), CF_ERR_ARG);
	assert_int_equal(store_dataset_get(f->s, "ds-0000000000000001", &d), CF_OK);
	assert_string_equal(d.state, "ready");
	assert_int_equal(d.received, 10);
	assert_int_equal(store_dataset_ready(f->s, "ds-0000000000000002"), CF_OK);
	/* The newest ready dataset of that KMS name. */
	assert_int_equal(store_dataset_for_kms(f->s, "org-a/data", &d), CF_OK);
	assert_string_equal(d.id, "ds-0000000000000002");
	assert_int_equal(store_dataset_delete(f->s, "ds-0000000000000002"), CF_OK);
	assert_int_equal(store_dataset_for_kms(f->s, "org-a/data", &d), CF_OK);
	assert_string_equal(d.id, "ds-0000000000000001");
	assert_int_equal(store_dataset_delete(f->s, "ds-0000000000000002"), CF_ERR_NOT_FOUND);
}

static void make_task(store *s, const char *id)
{
	static const char *const owners[] = { "org-a", "org-b" };
	store_task t = { .created = 30 };
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.name, sizeof(t.name), "join");
	snprintf(t.digest, sizeof(t.digest), "%064d", 7);
	snprintf(t.creator, sizeof(t.creator), "alice");
	t.json = (char *)"{\"inputs\":{}}";
	assert_int_equal(store_task_create(s, &t, owners, 2), CF_OK);
}

static void test_tasks_runs(void **state)
{
	fixture *f = *state;
	char st[STORE_STATE_LEN], run_id[STORE_ID_LEN];
	store_task t;
	store_run r;
	uint8_t hash[32];
	add_org(f->s, "org-0000000000000001", "org-a");
	add_org(f->s, "org-0000000000000002", "org-b");
	make_task(f->s, "task-0000000000000001");
	assert_int_equal(store_task_get(f->s, "task-0000000000000001", &t), CF_OK);
	assert_string_equal(t.state, "pending");
	assert_string_equal(t.json, "{\"inputs\":{}}");
	store_task_clear(&t);

	store_run run = { .started = 40, .exit_status = -1 };
	snprintf(run.id, sizeof(run.id), "run-0000000000000001");
	snprintf(run.task_id, sizeof(run.task_id), "task-0000000000000001");
	store_token tok = { .created = 40, .expires = 4000 };
	snprintf(tok.id, sizeof(tok.id), "tok-0000000000000001");
	snprintf(tok.kind, sizeof(tok.kind), "run");
	snprintf(tok.run_id, sizeof(tok.run_id), "run-0000000000000001");
	assert_int_equal(cf_hash(CF_SHA256, "run", 3, hash), CF_OK);
	/* Not approved yet. */
	assert_int_equal(store_run_start(f->s, &run, NULL, 0, hash, &tok), CF_ERR_ARG);

	assert_int_equal(store_task_approve(f->s, "task-0000000000000001", "org-a", "SIG", 31, st), CF_OK);
	assert_string_equal(st, "pending");
	assert_int_equal(store_task_approve(f->s, "task-0000000000000001", "org-a", "SIG2", 32, st), CF_OK);
	assert_string_equal(st, "pending");
	assert_int_equal(store_task_approve(f->s, "task-0000000000000001", "org-b", "SIG", 33, st), CF_OK);
	assert_string_equal(st, "approved");

	/* An instance: capacity and claims. */
	store_instance in = { .cores = 2, .memory = 1000, .enclave_size = 500, .created = 1 };
	snprintf(in.id, sizeof(in.id), "inst-0000000000000001");
	snprintf(in.name, sizeof(in.name), "small");
	snprintf(in.tee, sizeof(in.tee), "soft");
	assert_int_equal(store_instance_create(f->s, &in), CF_OK);
	store_instance big = in;
	snprintf(big.id, sizeof(big.id), "inst-0000000000000002");
	snprintf(big.name, sizeof(big.name), "big");
	assert_int_equal(store_instance_create(f->s, &big), CF_OK);
	assert_int_equal(store_instance_create(f->s, &big), CF_ERR_ARG);
	assert_int_equal(store_instance_start(f->s, "inst-0000000000000001", 3, 1500), CF_OK);
	assert_int_equal(store_instance_start(f->s, "inst-0000000000000001", 3, 1500), CF_ERR_ARG);
	/* 2 + 2 cores > 3. */
	assert_int_equal(store_instance_start(f->s, "inst-0000000000000002", 3, 1500), CF_ERR_LIMIT);
	assert_int_equal(store_instance_start(f->s, "inst-0000000000000009", 3, 1500), CF_ERR_NOT_FOUND);
	assert_int_equal(store_instance_delete(f->s, "inst-0000000000000001"), CF_ERR_ARG);

	snprintf(run.instance_id, sizeof(run.instance_id), "inst-0000000000000001");
	store_run_input inputs[1];
	snprintf(inputs[0].table, sizeof(inputs[0].table), "a");
	snprintf(inputs[0].dataset_id, sizeof(inputs[0].dataset_id), "ds-0000000000000001");
	assert_int_equal(store_run_start(f->s, &run, inputs, 1, hash, &tok), CF_OK);
	assert_int_equal(store_task_approve(f->s, "task-0000000000000001", "org-a", "S", 41, st),
			 CF_ERR_ARG);
	assert_int_equal(store_task_running_run(f->s, "task-0000000000000001", run_id), CF_OK);
	assert_string_equal(run_id, "run-0000000000000001");
	bool uses = false;
	assert_int_equal(store_run_uses(f->s, run_id, "ds-0000000000000001", &uses), CF_OK);
	assert_true(uses);
	assert_int_equal(store_run_uses(f->s, run_id, "ds-0000000000000002", &uses), CF_OK);
	assert_false(uses);
	store_instance got;
	assert_int_equal(store_instance_get(f->s, "inst-0000000000000001", &got), CF_OK);
	assert_string_equal(got.run_id, run_id);
	assert_int_equal(store_instance_stop(f->s, "inst-0000000000000001"), CF_ERR_ARG);
	store_token t2;
	assert_int_equal(store_token_lookup(f->s, hash, 50, &t2), CF_OK);
	assert_string_equal(t2.run_id, run_id);

	/* The end frees the instance, deletes the token, sets the task's state; once. */
	assert_int_equal(store_run_end(f->s, run_id, "succeeded", "done", 60), CF_OK);
	assert_int_equal(store_run_end(f->s, run_id, "failed", "again", 61), CF_ERR_ARG);
	assert_int_equal(store_run_exited(f->s, run_id, 0), CF_OK);
	assert_int_equal(store_run_get(f->s, run_id, &r), CF_OK);
	assert_string_equal(r.state, "succeeded");
	assert_string_equal(r.message, "done");
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.ended, 60);
	assert_int_equal(store_token_lookup(f->s, hash, 61, &t2), CF_ERR_NOT_FOUND);
	assert_int_equal(store_instance_get(f->s, "inst-0000000000000001", &got), CF_OK);
	assert_string_equal(got.run_id, "");
	assert_int_equal(store_task_get(f->s, "task-0000000000000001", &t), CF_OK);
	assert_string_equal(t.state, "succeeded");
	store_task_clear(&t);

	/* Outputs: the latest of a succeeded run. */
	store_output o = { .index = 0, .received = 5, .size = 5 };
	snprintf(o.run_id, sizeof(o.run_id), "%s", run_id);
	snprintf(o.name, sizeof(o.name), "result");
	snprintf(o.state, sizeof(o.state), "ready");
	snprintf(o.sha256, sizeof(o.sha256), "%064d", 1);
	snprintf(o.attestation, sizeof(o.attestation), "{\"sig\":\"S\"}");
	assert_int_equal(store_output_put(f->s, &o), CF_OK);
	store_output lo;
	assert_int_equal(store_output_latest(f->s, "task-0000000000000001", "result", &lo), CF_OK);
	assert_string_equal(lo.run_id, run_id);
	assert_string_equal(lo.attestation, "{\"sig\":\"S\"}");
	assert_int_equal(store_output_latest(f->s, "task-0000000000000001", "other", &lo),
			 CF_ERR_NOT_FOUND);

	/* A second run left running is an orphan at the next start. */
	snprintf(run.id, sizeof(run.id), "run-0000000000000002");
	snprintf(tok.id, sizeof(tok.id), "tok-0000000000000002");
	snprintf(tok.run_id, sizeof(tok.run_id), "run-0000000000000002");
	assert_int_equal(cf_hash(CF_SHA256, "run2", 4, hash), CF_OK);
	run.instance_id[0] = 0;
	assert_int_equal(store_run_start(f->s, &run, NULL, 0, hash, &tok), CF_OK);
	assert_int_equal(store_run_fail_orphans(f->s, "restarted", 70), CF_OK);
	assert_int_equal(store_run_get(f->s, "run-0000000000000002", &r), CF_OK);
	assert_string_equal(r.state, "failed");
	assert_string_equal(r.message, "restarted");
	assert_int_equal(store_token_lookup(f->s, hash, 71, &t2), CF_ERR_NOT_FOUND);

	/* Cancel: pending or approved only. */
	make_task(f->s, "task-0000000000000002");
	assert_int_equal(store_task_cancel(f->s, "task-0000000000000002"), CF_OK);
	assert_int_equal(store_task_cancel(f->s, "task-0000000000000002"), CF_ERR_ARG);
	assert_int_equal(store_task_cancel(f->s, "task-0000000000000009"), CF_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users_orgs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_datasets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks_runs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
