/*
 * The SQLite backend of server/store.h: one database file in WAL mode,
 * one connection behind a mutex (every function is one transaction), the
 * schema in numbered migrations, prepared statements with bound values
 * only: no SQL text is ever built from a request.
 */
#define CF_LOG_MODULE "store"

#include "store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "coffer/buf.h"
#include "coffer/log.h"

struct store {
	sqlite3 *db;
	pthread_mutex_t lock;
};

/*
 * Migration N takes the schema from version N-1 to N; each runs in its own
 * transaction together with the new user_version, so a crash leaves the
 * database at one version or the next. Never edit a released migration:
 * append one.
 */
static const char *const migrations[] = {
	/* 1: the first schema */
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
	"CREATE TABLE orgs(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" sign_pub TEXT NOT NULL DEFAULT '', age_recipient TEXT NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL);"
	"CREATE TABLE users(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" org TEXT REFERENCES orgs(name), role TEXT NOT NULL, pwhash TEXT NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE tokens(hash BLOB PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
	" name TEXT NOT NULL DEFAULT '', user_id TEXT REFERENCES users(id) ON DELETE CASCADE,"
	" run_id TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL, expires INTEGER NOT NULL);"
	"CREATE INDEX tokens_user ON tokens(user_id);"
	"CREATE INDEX tokens_run ON tokens(run_id);"
	"CREATE TABLE login_failures(user TEXT PRIMARY KEY, window_start INTEGER NOT NULL,"
	" count INTEGER NOT NULL);"
	"CREATE TABLE datasets(id TEXT PRIMARY KEY, org TEXT NOT NULL REFERENCES orgs(name),"
	" name TEXT NOT NULL, kms_dataset TEXT NOT NULL, size INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL, state TEXT NOT NULL, received INTEGER NOT NULL DEFAULT 0,"
	" creator TEXT NOT NULL, created INTEGER NOT NULL, UNIQUE(org, name));"
	"CREATE INDEX datasets_kms ON datasets(kms_dataset);"
	"CREATE TABLE tasks(id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL,"
	" state TEXT NOT NULL, creator TEXT NOT NULL, created INTEGER NOT NULL, task TEXT NOT NULL);"
	"CREATE TABLE task_owners(task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
	" org TEXT NOT NULL, PRIMARY KEY(task_id, org));"
	"CREATE TABLE approvals(task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
	" org TEXT NOT NULL, sig TEXT NOT NULL, created INTEGER NOT NULL,"
	" PRIMARY KEY(task_id, org));"
	"CREATE TABLE instances(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, tee TEXT NOT NULL,"
	" cores INTEGER NOT NULL, memory INTEGER NOT NULL, enclave_size INTEGER NOT NULL,"
	" state TEXT NOT NULL, run_id TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);"
	"CREATE TABLE runs(id TEXT PRIMARY KEY, task_id TEXT NOT NULL REFERENCES tasks(id),"
	" instance_id TEXT NOT NULL DEFAULT '', state TEXT NOT NULL,"
	" exit_status INTEGER NOT NULL DEFAULT -1, started INTEGER NOT NULL,"
	" ended INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX runs_task ON runs(task_id);"
	"CREATE TABLE run_inputs(run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	" tbl TEXT NOT NULL, dataset_id TEXT NOT NULL, PRIMARY KEY(run_id, tbl));"
	"CREATE TABLE outputs(run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	" name TEXT NOT NULL, idx INTEGER NOT NULL, state TEXT NOT NULL,"
	" received INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
	" sha256 TEXT NOT NULL DEFAULT '', PRIMARY KEY(run_id, name));",
	/* 2: the enclave's attestation of each output (docs/api.md), opaque to cofferd */
	"ALTER TABLE outputs ADD COLUMN attestation TEXT NOT NULL DEFAULT '';",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
	       "one migration per schema version");

/* --- small helpers: every statement is prepared and bound, never formatted --- */

static cf_err db_fail(store *s, const char *what)
{
	log_error("database: %s: %s", what, sqlite3_errmsg(s->db));
	return CF_ERR_IO;
}

/*
 * Binds values by a type string: t text (const char *, NULL binds NULL),
 * i int64_t, h 32 bytes (const uint8_t *).
 */
static int bindv(sqlite3_stmt *st, const char *types, va_list ap)
{
	int rc = SQLITE_OK;
	for (int i = 1; rc == SQLITE_OK && types[i - 1]; i++) {
		switch (types[i - 1]) {
		case 't': {
			const char *v = va_arg(ap, const char *);
			rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
			break;
		}
		case 'i': rc = sqlite3_bind_int64(st, i, (sqlite3_int64)va_arg(ap, int64_t)); break;
		case 'h': rc = sqlite3_bind_blob(st, i, va_arg(ap, const uint8_t *), CF_SHA256_LEN,
						 SQLITE_STATIC); break;
		default: rc = SQLITE_MISUSE; break;
		}
	}
	return rc;
}

static cf_err query(store *s, sqlite3_stmt **st, const char *sql, const char *types, ...)
{
	va_list ap;
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(s, "prepare");
	va_start(ap, types);
	int rc = bindv(*st, types, ap);
	va_end(ap);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return db_fail(s, "bind");
	}
	return CF_OK;
}

/* Runs a statement without rows; a constraint failure is a conflict (CF_ERR_ARG). */
static cf_err exec(store *s, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, "prepare");
	va_start(ap, types);
	int rc = bindv(st, types, ap);
	va_end(ap);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return CF_OK;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return CF_ERR_ARG;
	return db_fail(s, "step");
}

static cf_err col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	size_t n = v ? (size_t)sqlite3_column_bytes(st, col) : 0;
	if (n >= cap)
		return CF_ERR_TOO_BIG;
	if (n)
		memcpy(dst, v, n);
	dst[n] = 0;
	return CF_OK;
}

static cf_err begin(store *s)
{
	return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
		       ? CF_OK
		       : db_fail(s, "begin");
}

/* Commits on success, rolls back otherwise; returns rc or the commit's failure. */
static cf_err finish(store *s, cf_err rc)
{
	if (rc == CF_OK) {
		if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
			return CF_OK;
		rc = db_fail(s, "commit");
	}
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Steps a query expected to give at most one row: CF_OK with a row, NOT_FOUND without. */
static cf_err one_row(store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return CF_OK;
	return rc == SQLITE_DONE ? CF_ERR_NOT_FOUND : db_fail(s, "step");
}

static cf_err step_rows_done(store *s, int rc)
{
	return rc == SQLITE_DONE ? CF_OK : db_fail(s, "step");
}

/* --- opening --- */

static cf_err migrate(store *s)
{
	sqlite3_stmt *st = NULL;
	int version = 0;
	cf_err rc = query(s, &st, "PRAGMA user_version", "");
	if (rc != CF_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > STORE_SCHEMA_VERSION) {
		log_error("the database is at schema %d, this cofferd knows up to %d", version,
			  STORE_SCHEMA_VERSION);
		return CF_ERR_UNSUPPORTED;
	}
	for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
		char set[64];
		snprintf(set, sizeof(set), "PRAGMA user_version = %d", v + 1); /* our own number */
		if ((rc = begin(s)) != CF_OK)
			return rc;
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, set, NULL, NULL, NULL) != SQLITE_OK)
			rc = db_fail(s, "migration");
		if ((rc = finish(s, rc)) != CF_OK)
			return rc;
		log_info("database schema upgraded to version %d", v + 1);
	}
	return CF_OK;
}

cf_err store_open(const char *path, store **out)
{
	store *s = calloc(1, sizeof(*s));
	cf_err rc = CF_ERR_IO;
	if (!s)
		return CF_ERR_NOMEM;
	pthread_mutex_init(&s->lock, NULL);
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
				    SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK) {
		log_error("cannot open the database %s: %s", path,
			  s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 1);
	/* Nobody but cofferd writes SQL here, but a corrupt file must not become code. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	if (sqlite3_exec(s->db,
			 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			 "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_fail(s, "pragmas");
		goto out;
	}
	if ((rc = migrate(s)) != CF_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	store_close(s);
	return rc;
}

void store_close(store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int store_schema_version(store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	pthread_mutex_lock(&s->lock);
	if (query(s, &st, "PRAGMA user_version", "") == CF_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return v;
}

/* Every public function: lock, one transaction or statement, unlock. */
#define LOCKED(s, body)                              \
	do {                                         \
		pthread_mutex_lock(&(s)->lock);      \
		body;                                \
		pthread_mutex_unlock(&(s)->lock);    \
	} while (0)

/* --- meta --- */

cf_err store_meta_get(store *s, const char *key, char *out, size_t cap)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT v FROM meta WHERE k = ?", "t", key);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = col_text(st, 0, out, cap);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_meta_put(store *s, const char *key, const char *value)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "INSERT OR REPLACE INTO meta(k, v) VALUES (?, ?)", "tt", key, value));
	return rc;
}

/* --- organisations --- */

#define ORG_COLS "id, name, sign_pub, age_recipient, created"

static cf_err org_row(sqlite3_stmt *st, store_org *o)
{
	memset(o, 0, sizeof(*o));
	cf_err rc = col_text(st, 0, o->id, sizeof(o->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, o->name, sizeof(o->name));
	if (rc == CF_OK)
		rc = col_text(st, 2, o->sign_pub, sizeof(o->sign_pub));
	if (rc == CF_OK)
		rc = col_text(st, 3, o->age_recipient, sizeof(o->age_recipient));
	o->created = sqlite3_column_int64(st, 4);
	return rc;
}

cf_err store_org_create(store *s, const store_org *o)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "INSERT INTO orgs(" ORG_COLS ") VALUES (?, ?, ?, ?, ?)", "tttti",
			    o->id, o->name, o->sign_pub, o->age_recipient, o->created));
	return rc;
}

cf_err store_org_get(store *s, const char *name, store_org *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " ORG_COLS " FROM orgs WHERE name = ?", "t", name);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = org_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_org_set_keys(store *s, const char *name, const char *sign_pub,
			  const char *age_recipient)
{
	cf_err rc;
	LOCKED(s, {
		rc = exec(s, "UPDATE orgs SET sign_pub = ?, age_recipient = ? WHERE name = ?", "ttt",
			  sign_pub, age_recipient, name);
		if (rc == CF_OK && sqlite3_changes(s->db) == 0)
			rc = CF_ERR_NOT_FOUND;
	});
	return rc;
}

cf_err store_org_list(store *s, store_org_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " ORG_COLS " FROM orgs ORDER BY created DESC, rowid DESC", "");
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_org o;
			if ((rc = org_row(st, &o)) == CF_OK)
				fn(arg, &o);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

/* --- users --- */

#define USER_COLS "id, name, org, role, pwhash, created"

static cf_err user_row(sqlite3_stmt *st, store_user *u)
{
	memset(u, 0, sizeof(*u));
	cf_err rc = col_text(st, 0, u->id, sizeof(u->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, u->name, sizeof(u->name));
	if (rc == CF_OK)
		rc = col_text(st, 2, u->org, sizeof(u->org));
	if (rc == CF_OK)
		rc = col_text(st, 3, u->role, sizeof(u->role));
	if (rc == CF_OK)
		rc = col_text(st, 4, u->pwhash, sizeof(u->pwhash));
	u->created = sqlite3_column_int64(st, 5);
	return rc;
}

cf_err store_user_create(store *s, const store_user *u)
{
	cf_err rc;
	LOCKED(s, {
		sqlite3_stmt *st = NULL;
		rc = CF_OK;
		if (u->org[0]) {
			rc = query(s, &st, "SELECT 1 FROM orgs WHERE name = ?", "t", u->org);
			if (rc == CF_OK)
				rc = one_row(s, st);
			sqlite3_finalize(st);
		}
		if (rc == CF_OK)
			rc = exec(s, "INSERT INTO users(" USER_COLS ") VALUES (?, ?, ?, ?, ?, ?)",
				  "ttttti", u->id, u->name, u->org[0] ? u->org : NULL, u->role,
				  u->pwhash, u->created);
	});
	return rc;
}

static cf_err user_get(store *s, const char *sql, const char *key, store_user *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, sql, "t", key);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = user_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_user_get(store *s, const char *name, store_user *out)
{
	return user_get(s, "SELECT " USER_COLS " FROM users WHERE name = ?", name, out);
}

cf_err store_user_get_id(store *s, const char *id, store_user *out)
{
	return user_get(s, "SELECT " USER_COLS " FROM users WHERE id = ?", id, out);
}

cf_err store_user_delete(store *s, const char *name)
{
	cf_err rc;
	LOCKED(s, {
		rc = begin(s);
		if (rc == CF_OK)
			rc = exec(s, "DELETE FROM tokens WHERE user_id = (SELECT id FROM users WHERE name = ?)",
				  "t", name);
		if (rc == CF_OK)
			rc = exec(s, "DELETE FROM login_failures WHERE user = ?", "t", name);
		if (rc == CF_OK)
			rc = exec(s, "DELETE FROM users WHERE name = ?", "t", name);
		if (rc == CF_OK && sqlite3_changes(s->db) == 0)
			rc = CF_ERR_NOT_FOUND;
		rc = finish(s, rc);
	});
	return rc;
}

cf_err store_user_list(store *s, const char *org, store_user_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = org ? query(s, &st, "SELECT " USER_COLS " FROM users WHERE org = ?"
					 " ORDER BY created DESC, rowid DESC", "t", org)
			 : query(s, &st, "SELECT " USER_COLS " FROM users"
					 " ORDER BY created DESC, rowid DESC", "");
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_user u;
			if ((rc = user_row(st, &u)) == CF_OK)
				fn(arg, &u);
			cf_wipe(u.pwhash, sizeof(u.pwhash));
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_user_count(store *s, long long *n)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT count(*) FROM users", "");
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			*n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	});
	return rc;
}

/* --- tokens --- */

#define TOKEN_COLS "id, kind, name, coalesce(user_id, ''), run_id, created, expires"

static cf_err token_row(sqlite3_stmt *st, store_token *t)
{
	memset(t, 0, sizeof(*t));
	cf_err rc = col_text(st, 0, t->id, sizeof(t->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, t->kind, sizeof(t->kind));
	if (rc == CF_OK)
		rc = col_text(st, 2, t->name, sizeof(t->name));
	if (rc == CF_OK)
		rc = col_text(st, 3, t->user_id, sizeof(t->user_id));
	if (rc == CF_OK)
		rc = col_text(st, 4, t->run_id, sizeof(t->run_id));
	t->created = sqlite3_column_int64(st, 5);
	t->expires = sqlite3_column_int64(st, 6);
	return rc;
}

static cf_err token_insert(store *s, const uint8_t hash[CF_SHA256_LEN], const store_token *t)
{
	return exec(s, "INSERT INTO tokens(hash, id, kind, name, user_id, run_id, created, expires)"
		       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		    "htttttii", hash, t->id, t->kind, t->name, t->user_id[0] ? t->user_id : NULL,
		    t->run_id, t->created, t->expires);
}

cf_err store_token_add(store *s, const uint8_t hash[static CF_SHA256_LEN], const store_token *t)
{
	cf_err rc;
	LOCKED(s, rc = token_insert(s, hash, t));
	return rc;
}

cf_err store_token_lookup(store *s, const uint8_t hash[static CF_SHA256_LEN], int64_t now,
			  store_token *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ? AND expires > ?",
			   "hi", hash, now);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = token_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_token_delete(store *s, const char *id, const char *user_id)
{
	cf_err rc;
	LOCKED(s, {
		rc = user_id ? exec(s, "DELETE FROM tokens WHERE id = ? AND user_id = ?", "tt", id, user_id)
			     : exec(s, "DELETE FROM tokens WHERE id = ?", "t", id);
		if (rc == CF_OK && sqlite3_changes(s->db) == 0)
			rc = CF_ERR_NOT_FOUND;
	});
	return rc;
}

cf_err store_token_list(store *s, const char *user_id, int64_t now, store_token_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " TOKEN_COLS " FROM tokens WHERE user_id = ? AND expires > ?"
				   " ORDER BY created DESC, rowid DESC", "ti", user_id, now);
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_token t;
			if ((rc = token_row(st, &t)) == CF_OK)
				fn(arg, &t);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_token_purge(store *s, int64_t now)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "DELETE FROM tokens WHERE expires <= ?", "i", now));
	return rc;
}

/* --- login failures --- */

cf_err store_login_blocked(store *s, const char *user, int64_t now, int64_t window, int max,
			   bool *blocked)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	*blocked = false;
	LOCKED(s, {
		rc = query(s, &st, "SELECT window_start, count FROM login_failures WHERE user = ?", "t",
			   user);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			*blocked = now < sqlite3_column_int64(st, 0) + window &&
				   sqlite3_column_int64(st, 1) >= max;
		else if (rc == CF_ERR_NOT_FOUND)
			rc = CF_OK;
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_login_failed(store *s, const char *user, int64_t now, int64_t window)
{
	cf_err rc;
	/* A window that is over starts again at this failure. */
	LOCKED(s, rc = exec(s, "INSERT INTO login_failures(user, window_start, count) VALUES (?, ?, 1)"
			       " ON CONFLICT(user) DO UPDATE SET"
			       " count = CASE WHEN ? >= window_start + ? THEN 1 ELSE count + 1 END,"
			       " window_start = CASE WHEN ? >= window_start + ? THEN ?"
			       " ELSE window_start END",
			    "tiiiiii", user, now, now, window, now, window, now));
	return rc;
}

cf_err store_login_reset(store *s, const char *user)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "DELETE FROM login_failures WHERE user = ?", "t", user));
	return rc;
}

/* --- datasets --- */

#define DATASET_COLS "id, org, name, kms_dataset, size, sha256, state, received, creator, created"

static cf_err dataset_row(sqlite3_stmt *st, store_dataset *d)
{
	memset(d, 0, sizeof(*d));
	cf_err rc = col_text(st, 0, d->id, sizeof(d->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, d->org, sizeof(d->org));
	if (rc == CF_OK)
		rc = col_text(st, 2, d->name, sizeof(d->name));
	if (rc == CF_OK)
		rc = col_text(st, 3, d->kms_dataset, sizeof(d->kms_dataset));
	d->size = (uint64_t)sqlite3_column_int64(st, 4);
	if (rc == CF_OK)
		rc = col_text(st, 5, d->sha256, sizeof(d->sha256));
	if (rc == CF_OK)
		rc = col_text(st, 6, d->state, sizeof(d->state));
	d->received = (uint64_t)sqlite3_column_int64(st, 7);
	if (rc == CF_OK)
		rc = col_text(st, 8, d->creator, sizeof(d->creator));
	d->created = sqlite3_column_int64(st, 9);
	return rc;
}

cf_err store_dataset_create(store *s, const store_dataset *d)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "INSERT INTO datasets(" DATASET_COLS ")"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			    "ttttittiti", d->id, d->org, d->name, d->kms_dataset, (int64_t)d->size,
			    d->sha256, d->state, (int64_t)d->received, d->creator, d->created));
	return rc;
}

static cf_err dataset_get(store *s, const char *sql, const char *key, store_dataset *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, sql, "t", key);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = dataset_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_dataset_get(store *s, const char *id, store_dataset *out)
{
	return dataset_get(s, "SELECT " DATASET_COLS " FROM datasets WHERE id = ?", id, out);
}

cf_err store_dataset_for_kms(store *s, const char *kms_dataset, store_dataset *out)
{
	return dataset_get(s, "SELECT " DATASET_COLS " FROM datasets WHERE kms_dataset = ?"
			      " AND state = 'ready' ORDER BY created DESC, rowid DESC LIMIT 1",
			   kms_dataset, out);
}

/* A change that touched no row was refused by its WHERE: a conflict. */
static cf_err changed(store *s, cf_err rc)
{
	return rc == CF_OK && sqlite3_changes(s->db) == 0 ? CF_ERR_ARG : rc;
}

cf_err store_dataset_received(store *s, const char *id, uint64_t received)
{
	cf_err rc;
	LOCKED(s, rc = changed(s, exec(s, "UPDATE datasets SET received = ? WHERE id = ?"
					  " AND state = 'uploading'", "it", (int64_t)received, id)));
	return rc;
}

cf_err store_dataset_ready(store *s, const char *id)
{
	cf_err rc;
	LOCKED(s, rc = changed(s, exec(s, "UPDATE datasets SET state = 'ready', received = size"
					  " WHERE id = ? AND state = 'uploading'", "t", id)));
	return rc;
}

cf_err store_dataset_delete(store *s, const char *id)
{
	cf_err rc;
	LOCKED(s, {
		rc = exec(s, "DELETE FROM datasets WHERE id = ?", "t", id);
		if (rc == CF_OK && sqlite3_changes(s->db) == 0)
			rc = CF_ERR_NOT_FOUND;
	});
	return rc;
}

cf_err store_dataset_list(store *s, store_dataset_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " DATASET_COLS " FROM datasets"
				   " ORDER BY created DESC, rowid DESC", "");
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_dataset d;
			if ((rc = dataset_row(st, &d)) == CF_OK)
				fn(arg, &d);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

/* --- tasks --- */

#define TASK_COLS "id, name, digest, state, creator, created"

static cf_err task_row(sqlite3_stmt *st, store_task *t)
{
	memset(t, 0, sizeof(*t));
	cf_err rc = col_text(st, 0, t->id, sizeof(t->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, t->name, sizeof(t->name));
	if (rc == CF_OK)
		rc = col_text(st, 2, t->digest, sizeof(t->digest));
	if (rc == CF_OK)
		rc = col_text(st, 3, t->state, sizeof(t->state));
	if (rc == CF_OK)
		rc = col_text(st, 4, t->creator, sizeof(t->creator));
	t->created = sqlite3_column_int64(st, 5);
	return rc;
}

cf_err store_task_create(store *s, const store_task *t, const char *const *owners, size_t nowners)
{
	cf_err rc;
	LOCKED(s, {
		rc = begin(s);
		if (rc == CF_OK)
			rc = exec(s, "INSERT INTO tasks(" TASK_COLS ", task)"
				     " VALUES (?, ?, ?, 'pending', ?, ?, ?)",
				  "ttttit", t->id, t->name, t->digest, t->creator, t->created, t->json);
		for (size_t i = 0; rc == CF_OK && i < nowners; i++)
			rc = exec(s, "INSERT INTO task_owners(task_id, org) VALUES (?, ?)", "tt", t->id,
				  owners[i]);
		rc = finish(s, rc);
	});
	return rc;
}

cf_err store_task_get(store *s, const char *id, store_task *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " TASK_COLS ", task FROM tasks WHERE id = ?", "t", id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = task_row(st, out);
		if (rc == CF_OK) {
			const char *json = (const char *)sqlite3_column_text(st, 6);
			if (!(out->json = strdup(json ? json : "")))
				rc = CF_ERR_NOMEM;
		}
		sqlite3_finalize(st);
	});
	return rc;
}

void store_task_clear(store_task *t)
{
	if (t) {
		free(t->json);
		t->json = NULL;
	}
}

cf_err store_task_list(store *s, store_task_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " TASK_COLS " FROM tasks ORDER BY created DESC, rowid DESC", "");
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_task t;
			if ((rc = task_row(st, &t)) == CF_OK)
				fn(arg, &t);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_task_owners(store *s, const char *task_id, store_name_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT org FROM task_owners WHERE task_id = ? ORDER BY org", "t",
			   task_id);
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
			fn(arg, (const char *)sqlite3_column_text(st, 0));
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_task_approvals(store *s, const char *task_id, store_approval_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT org, sig FROM approvals WHERE task_id = ? ORDER BY org", "t",
			   task_id);
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
			fn(arg, (const char *)sqlite3_column_text(st, 0),
			   (const char *)sqlite3_column_text(st, 1));
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

static cf_err task_state(store *s, const char *task_id, char state[STORE_STATE_LEN])
{
	sqlite3_stmt *st = NULL;
	cf_err rc = query(s, &st, "SELECT state FROM tasks WHERE id = ?", "t", task_id);
	if (rc == CF_OK)
		rc = one_row(s, st);
	if (rc == CF_OK)
		rc = col_text(st, 0, state, STORE_STATE_LEN);
	sqlite3_finalize(st);
	return rc;
}

cf_err store_task_approve(store *s, const char *task_id, const char *org, const char *sig,
			  int64_t now, char state[static STORE_STATE_LEN])
{
	cf_err rc;
	LOCKED(s, {
		sqlite3_stmt *st = NULL;
		rc = begin(s);
		if (rc == CF_OK)
			rc = task_state(s, task_id, state);
		if (rc == CF_OK && (strcmp(state, "running") == 0 || strcmp(state, "cancelled") == 0))
			rc = CF_ERR_ARG;
		if (rc == CF_OK)
			rc = exec(s, "INSERT OR REPLACE INTO approvals(task_id, org, sig, created)"
				     " VALUES (?, ?, ?, ?)", "ttti", task_id, org, sig, now);
		/* Approved once no owner lacks an approval. */
		if (rc == CF_OK)
			rc = query(s, &st, "SELECT count(*) FROM task_owners o WHERE o.task_id = ?"
					   " AND NOT EXISTS (SELECT 1 FROM approvals a"
					   " WHERE a.task_id = o.task_id AND a.org = o.org)",
				   "t", task_id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK && sqlite3_column_int64(st, 0) == 0 && strcmp(state, "pending") == 0) {
			rc = exec(s, "UPDATE tasks SET state = 'approved' WHERE id = ?", "t", task_id);
			snprintf(state, STORE_STATE_LEN, "approved");
		}
		sqlite3_finalize(st);
		rc = finish(s, rc);
	});
	return rc;
}

cf_err store_task_cancel(store *s, const char *task_id)
{
	cf_err rc;
	LOCKED(s, {
		rc = exec(s, "UPDATE tasks SET state = 'cancelled' WHERE id = ?"
			     " AND state IN ('pending', 'approved')", "t", task_id);
		if (rc == CF_OK && sqlite3_changes(s->db) == 0) {
			char state[STORE_STATE_LEN];
			rc = task_state(s, task_id, state);
			if (rc == CF_OK)
				rc = CF_ERR_ARG;
		}
	});
	return rc;
}

/* --- runs --- */

#define RUN_COLS "id, task_id, instance_id, state, exit_status, started, ended, message"

static cf_err run_row(sqlite3_stmt *st, store_run *r)
{
	memset(r, 0, sizeof(*r));
	cf_err rc = col_text(st, 0, r->id, sizeof(r->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, r->task_id, sizeof(r->task_id));
	if (rc == CF_OK)
		rc = col_text(st, 2, r->instance_id, sizeof(r->instance_id));
	if (rc == CF_OK)
		rc = col_text(st, 3, r->state, sizeof(r->state));
	r->exit_status = sqlite3_column_int(st, 4);
	r->started = sqlite3_column_int64(st, 5);
	r->ended = sqlite3_column_int64(st, 6);
	if (rc == CF_OK)
		rc = col_text(st, 7, r->message, sizeof(r->message));
	return rc;
}

cf_err store_run_start(store *s, const store_run *r, const store_run_input *inputs, size_t ninputs,
		       const uint8_t token_hash[static CF_SHA256_LEN], const store_token *token)
{
	cf_err rc;
	LOCKED(s, {
		rc = begin(s);
		if (rc == CF_OK)
			rc = changed(s, exec(s, "UPDATE tasks SET state = 'running' WHERE id = ?"
						" AND state IN ('approved', 'succeeded', 'failed')",
					     "t", r->task_id));
		if (rc == CF_OK && r->instance_id[0])
			rc = changed(s, exec(s, "UPDATE instances SET run_id = ? WHERE id = ?"
						" AND state = 'running' AND run_id = ''",
					     "tt", r->id, r->instance_id));
		if (rc == CF_OK)
			rc = exec(s, "INSERT INTO runs(" RUN_COLS ") VALUES (?, ?, ?, 'running', -1, ?, 0, '')",
				  "ttti", r->id, r->task_id, r->instance_id, r->started);
		for (size_t i = 0; rc == CF_OK && i < ninputs; i++)
			rc = exec(s, "INSERT INTO run_inputs(run_id, tbl, dataset_id) VALUES (?, ?, ?)",
				  "ttt", r->id, inputs[i].table, inputs[i].dataset_id);
		if (rc == CF_OK)
			rc = token_insert(s, token_hash, token);
		rc = finish(s, rc);
	});
	return rc;
}

cf_err store_run_get(store *s, const char *id, store_run *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " RUN_COLS " FROM runs WHERE id = ?", "t", id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = run_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_run_list(store *s, const char *task_id, store_run_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " RUN_COLS " FROM runs WHERE task_id = ?"
				   " ORDER BY started DESC, rowid DESC", "t", task_id);
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_run r;
			if ((rc = run_row(st, &r)) == CF_OK)
				fn(arg, &r);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_run_inputs(store *s, const char *run_id, store_run_input_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT tbl, dataset_id FROM run_inputs WHERE run_id = ? ORDER BY tbl",
			   "t", run_id);
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_run_input in;
			rc = col_text(st, 0, in.table, sizeof(in.table));
			if (rc == CF_OK)
				rc = col_text(st, 1, in.dataset_id, sizeof(in.dataset_id));
			if (rc == CF_OK)
				fn(arg, &in);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_run_uses(store *s, const char *run_id, const char *dataset_id, bool *uses)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	*uses = false;
	LOCKED(s, {
		rc = query(s, &st, "SELECT 1 FROM run_inputs WHERE run_id = ? AND dataset_id = ?", "tt",
			   run_id, dataset_id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			*uses = true;
		else if (rc == CF_ERR_NOT_FOUND)
			rc = CF_OK;
		sqlite3_finalize(st);
	});
	return rc;
}

/* The body of store_run_end, inside a transaction. */
static cf_err run_end(store *s, const char *id, const char *state, const char *message, int64_t now)
{
	cf_err rc = changed(s, exec(s, "UPDATE runs SET state = ?, message = ?, ended = ?"
				       " WHERE id = ? AND state = 'running'",
				    "ttit", state, message, now, id));
	if (rc == CF_OK)
		rc = exec(s, "UPDATE tasks SET state = ? WHERE id = (SELECT task_id FROM runs WHERE id = ?)",
			  "tt", state, id);
	if (rc == CF_OK)
		rc = exec(s, "UPDATE instances SET run_id = '' WHERE run_id = ?", "t", id);
	if (rc == CF_OK)
		rc = exec(s, "DELETE FROM tokens WHERE run_id = ?", "t", id);
	return rc;
}

cf_err store_run_end(store *s, const char *id, const char *state, const char *message, int64_t now)
{
	cf_err rc;
	LOCKED(s, {
		rc = begin(s);
		if (rc == CF_OK)
			rc = run_end(s, id, state, message, now);
		rc = finish(s, rc);
	});
	return rc;
}

cf_err store_run_exited(store *s, const char *id, int exit_status)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "UPDATE runs SET exit_status = ? WHERE id = ?", "it",
			    (int64_t)exit_status, id));
	return rc;
}

cf_err store_run_fail_orphans(store *s, const char *message, int64_t now)
{
	cf_err rc;
	LOCKED(s, {
		sqlite3_stmt *st = NULL;
		char ids[64][STORE_ID_LEN];
		size_t n = 0;
		rc = begin(s);
		/* In batches: a statement cannot stay open across the updates it causes. */
		do {
			n = 0;
			if (rc == CF_OK)
				rc = query(s, &st, "SELECT id FROM runs WHERE state = 'running' LIMIT 64", "");
			int step = SQLITE_DONE;
			while (rc == CF_OK && n < 64 && (step = sqlite3_step(st)) == SQLITE_ROW)
				rc = col_text(st, 0, ids[n++], STORE_ID_LEN);
			if (rc == CF_OK && step != SQLITE_ROW)
				rc = step_rows_done(s, step);
			sqlite3_finalize(st);
			st = NULL;
			for (size_t i = 0; rc == CF_OK && i < n; i++)
				rc = run_end(s, ids[i], "failed", message, now);
		} while (rc == CF_OK && n == 64);
		rc = finish(s, rc);
	});
	return rc;
}

cf_err store_task_running_run(store *s, const char *task_id, char run_id[static STORE_ID_LEN])
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	run_id[0] = 0;
	LOCKED(s, {
		rc = query(s, &st, "SELECT id FROM runs WHERE task_id = ? AND state = 'running'"
				   " ORDER BY started DESC LIMIT 1", "t", task_id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = col_text(st, 0, run_id, STORE_ID_LEN);
		else if (rc == CF_ERR_NOT_FOUND)
			rc = CF_OK;
		sqlite3_finalize(st);
	});
	return rc;
}

/* --- outputs --- */

#define OUTPUT_COLS "run_id, name, idx, state, received, size, sha256, attestation"

static cf_err output_row(sqlite3_stmt *st, store_output *o)
{
	memset(o, 0, sizeof(*o));
	cf_err rc = col_text(st, 0, o->run_id, sizeof(o->run_id));
	if (rc == CF_OK)
		rc = col_text(st, 1, o->name, sizeof(o->name));
	o->index = (unsigned)sqlite3_column_int(st, 2);
	if (rc == CF_OK)
		rc = col_text(st, 3, o->state, sizeof(o->state));
	o->received = (uint64_t)sqlite3_column_int64(st, 4);
	o->size = (uint64_t)sqlite3_column_int64(st, 5);
	if (rc == CF_OK)
		rc = col_text(st, 6, o->sha256, sizeof(o->sha256));
	if (rc == CF_OK)
		rc = col_text(st, 7, o->attestation, sizeof(o->attestation));
	return rc;
}

cf_err store_output_put(store *s, const store_output *o)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "INSERT OR REPLACE INTO outputs(" OUTPUT_COLS ")"
			       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			    "ttitiitt", o->run_id, o->name, (int64_t)o->index, o->state,
			    (int64_t)o->received, (int64_t)o->size, o->sha256, o->attestation));
	return rc;
}

cf_err store_output_get(store *s, const char *run_id, const char *name, store_output *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " OUTPUT_COLS " FROM outputs WHERE run_id = ? AND name = ?",
			   "tt", run_id, name);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = output_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_output_list(store *s, const char *run_id, store_output_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " OUTPUT_COLS " FROM outputs WHERE run_id = ? ORDER BY idx",
			   "t", run_id);
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_output o;
			if ((rc = output_row(st, &o)) == CF_OK)
				fn(arg, &o);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_output_latest(store *s, const char *task_id, const char *name, store_output *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT o.run_id, o.name, o.idx, o.state, o.received, o.size, o.sha256,"
				   " o.attestation FROM outputs o JOIN runs r ON r.id = o.run_id"
				   " WHERE r.task_id = ? AND r.state = 'succeeded' AND o.name = ?"
				   " AND o.state = 'ready' ORDER BY r.started DESC, r.rowid DESC LIMIT 1",
			   "tt", task_id, name);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = output_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

/* --- instances --- */

#define INSTANCE_COLS "id, name, tee, cores, memory, enclave_size, state, run_id, created"

static cf_err instance_row(sqlite3_stmt *st, store_instance *in)
{
	memset(in, 0, sizeof(*in));
	cf_err rc = col_text(st, 0, in->id, sizeof(in->id));
	if (rc == CF_OK)
		rc = col_text(st, 1, in->name, sizeof(in->name));
	if (rc == CF_OK)
		rc = col_text(st, 2, in->tee, sizeof(in->tee));
	in->cores = (unsigned)sqlite3_column_int64(st, 3);
	in->memory = (uint64_t)sqlite3_column_int64(st, 4);
	in->enclave_size = (uint64_t)sqlite3_column_int64(st, 5);
	if (rc == CF_OK)
		rc = col_text(st, 6, in->state, sizeof(in->state));
	if (rc == CF_OK)
		rc = col_text(st, 7, in->run_id, sizeof(in->run_id));
	in->created = sqlite3_column_int64(st, 8);
	return rc;
}

cf_err store_instance_create(store *s, const store_instance *in)
{
	cf_err rc;
	LOCKED(s, rc = exec(s, "INSERT INTO instances(" INSTANCE_COLS ")"
			       " VALUES (?, ?, ?, ?, ?, ?, 'stopped', '', ?)",
			    "tttiiii", in->id, in->name, in->tee, (int64_t)in->cores,
			    (int64_t)in->memory, (int64_t)in->enclave_size, in->created));
	return rc;
}

cf_err store_instance_get(store *s, const char *id, store_instance *out)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " INSTANCE_COLS " FROM instances WHERE id = ?", "t", id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK)
			rc = instance_row(st, out);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_instance_list(store *s, store_instance_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	cf_err rc;
	LOCKED(s, {
		rc = query(s, &st, "SELECT " INSTANCE_COLS " FROM instances"
				   " ORDER BY created DESC, rowid DESC", "");
		int step = SQLITE_DONE;
		while (rc == CF_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
			store_instance in;
			if ((rc = instance_row(st, &in)) == CF_OK)
				fn(arg, &in);
		}
		if (rc == CF_OK)
			rc = step_rows_done(s, step);
		sqlite3_finalize(st);
	});
	return rc;
}

cf_err store_instance_start(store *s, const char *id, unsigned cores, uint64_t memory)
{
	cf_err rc;
	LOCKED(s, {
		sqlite3_stmt *st = NULL;
		rc = begin(s);
		/* What the running instances hold plus this one must fit the host. */
		if (rc == CF_OK)
			rc = query(s, &st, "SELECT (SELECT state FROM instances WHERE id = ?1),"
					   " (SELECT coalesce(sum(cores), 0) + (SELECT cores FROM instances WHERE id = ?1)"
					   "  FROM instances WHERE state = 'running'),"
					   " (SELECT coalesce(sum(memory), 0) + (SELECT memory FROM instances WHERE id = ?1)"
					   "  FROM instances WHERE state = 'running')",
				   "t", id);
		if (rc == CF_OK)
			rc = one_row(s, st);
		if (rc == CF_OK) {
			const unsigned char *state = sqlite3_column_text(st, 0);
			if (!state)
				rc = CF_ERR_NOT_FOUND;
			else if (strcmp((const char *)state, "stopped") != 0)
				rc = CF_ERR_ARG;
			else if (sqlite3_column_int64(st, 1) > (sqlite3_int64)cores ||
				 (uint64_t)sqlite3_column_int64(st, 2) > memory)
				rc = CF_ERR_LIMIT;
		}
		sqlite3_finalize(st);
		if (rc == CF_OK)
			rc = exec(s, "UPDATE instances SET state = 'running' WHERE id = ?", "t", id);
		rc = finish(s, rc);
	});
	return rc;
}

static cf_err instance_change(store *s, const char *id, const char *sql)
{
	cf_err rc;
	LOCKED(s, {
		rc = exec(s, sql, "t", id);
		if (rc == CF_OK && sqlite3_changes(s->db) == 0) {
			sqlite3_stmt *st = NULL;
			rc = query(s, &st, "SELECT 1 FROM instances WHERE id = ?", "t", id);
			if (rc == CF_OK)
				rc = one_row(s, st);
			sqlite3_finalize(st);
			if (rc == CF_OK)
				rc = CF_ERR_ARG;
		}
	});
	return rc;
}

cf_err store_instance_stop(store *s, const char *id)
{
	return instance_change(s, id, "UPDATE instances SET state = 'stopped' WHERE id = ?"
				      " AND state = 'running' AND run_id = ''");
}

cf_err store_instance_delete(store *s, const char *id)
{
	return instance_change(s, id, "DELETE FROM instances WHERE id = ? AND state = 'stopped'");
}
