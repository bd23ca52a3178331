#define CF_LOG_MODULE "sql"

#include "sql.h"

#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer/log.h"

#define MAX_TABLES 64
/* Opcodes between two looks at the clock: cheap, and well under a millisecond. */
#define PROGRESS_OPS 1000

struct cf_sql {
	sqlite3 *db;
	bool armed;
	char *tables[MAX_TABLES];
	size_t ntables;
	/* The first action the authorizer denied during the last prepare. */
	int denied_action;
	char denied_name[96];
	/* Time budget, counted only while a fenced statement steps. */
	uint64_t budget_ms;
	uint64_t spent_ms;
	uint64_t step_start_ms;
	bool over_budget;
};

/* --- SQLite's memory: wiped before it is freed --- */

/*
 * SQLite frees pages and values holding rows; with its default allocator
 * their bytes would stay in the freed heap. These methods wipe every block
 * first (the size is the allocator's usable size, as cf_kms_release's
 * wiping free does), so a later dump of the process, or a later
 * allocation, finds no row it did not hold.
 */
static void *wipe_malloc(int n)
{
	return n > 0 ? malloc((size_t)n) : NULL;
}

static void wipe_free(void *p)
{
	if (p) {
		cf_wipe(p, malloc_usable_size(p));
		free(p);
	}
}

static void *wipe_realloc(void *p, int n)
{
	if (!p)
		return wipe_malloc(n);
	if (n <= 0)
		return NULL;
	size_t old = malloc_usable_size(p);
	if ((size_t)n <= old)
		return p;
	/* Never realloc(): the old block would be released unwiped. */
	void *q = malloc((size_t)n);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	wipe_free(p);
	return q;
}

static int wipe_size(void *p)
{
	size_t n = p ? malloc_usable_size(p) : 0;
	return n > (size_t)0x7fffffff ? 0x7fffffff : (int)n;
}

static int wipe_roundup(int n)
{
	return n > 0x7ffffff0 ? n : (n + 7) & ~7;
}

static int wipe_init(void *arg)
{
	(void)arg;
	return SQLITE_OK;
}

static void wipe_shutdown(void *arg)
{
	(void)arg;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	static const sqlite3_mem_methods methods = {
		wipe_malloc, wipe_free, wipe_realloc, wipe_size, wipe_roundup, wipe_init,
		wipe_shutdown, NULL,
	};
	/* Fails (SQLITE_MISUSE) only if SQLite was initialised before us. */
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK)
		log_warn("SQLite was initialised before the enclave: freed memory is not wiped");
	if (sqlite3_initialize() != SQLITE_OK)
		log_error("SQLite does not initialise");
}

void cf_sql_limit_heap(uint64_t bytes)
{
	pthread_once(&global_once, global_init);
	if (bytes > 0 && bytes <= (uint64_t)INT64_MAX)
		sqlite3_hard_heap_limit64((sqlite3_int64)bytes);
}

/* --- helpers --- */

cf_err cf_sql_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE: return CF_OK;
	case SQLITE_NOMEM: return CF_ERR_NOMEM;
	case SQLITE_TOOBIG: return CF_ERR_TOO_BIG;
	case SQLITE_AUTH: return CF_ERR_AUTH;
	case SQLITE_INTERRUPT: return CF_ERR_LIMIT;
	case SQLITE_ERROR:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE: return CF_ERR_PARSE;
	default: return CF_ERR_IO;
	}
}

cf_err cf_sql_quote_ident(cf_buf *out, const char *name)
{
	cf_err rc = cf_buf_append_byte(out, '"');
	for (const char *p = name; rc == CF_OK && *p; p++) {
		if (*p == '"')
			rc = cf_buf_append_byte(out, '"');
		if (rc == CF_OK)
			rc = cf_buf_append_byte(out, (uint8_t)*p);
	}
	if (rc == CF_OK)
		rc = cf_buf_append_byte(out, '"');
	return rc;
}

bool cf_sql_tail_empty(const char *p)
{
	while (*p) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v' ||
		    *p == ';') {
			p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			/* SQLite accepts a comment left open at the end; so do we. */
			const char *end = strstr(p + 2, "*/");
			p = end ? end + 2 : p + strlen(p);
		} else {
			return false;
		}
	}
	return true;
}

/* Copies msg into why, printable and on one line. */
static void set_why(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	for (char *p = why; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- the fence --- */

static const char *action_name(int action)
{
	switch (action) {
	case SQLITE_ATTACH: return "ATTACH";
	case SQLITE_DETACH: return "DETACH";
	case SQLITE_PRAGMA: return "PRAGMA";
	case SQLITE_INSERT: return "INSERT";
	case SQLITE_UPDATE: return "UPDATE";
	case SQLITE_DELETE: return "DELETE";
	case SQLITE_TRANSACTION: return "a transaction";
	case SQLITE_SAVEPOINT: return "a savepoint";
	case SQLITE_ANALYZE: return "ANALYZE";
	case SQLITE_ALTER_TABLE: return "ALTER TABLE";
	case SQLITE_REINDEX: return "REINDEX";
	case SQLITE_CREATE_INDEX:
	case SQLITE_CREATE_TABLE:
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_CREATE_VIEW:
	case SQLITE_CREATE_VTABLE: return "CREATE";
	case SQLITE_DROP_INDEX:
	case SQLITE_DROP_TABLE:
	case SQLITE_DROP_TEMP_INDEX:
	case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_TRIGGER:
	case SQLITE_DROP_TEMP_VIEW:
	case SQLITE_DROP_TRIGGER:
	case SQLITE_DROP_VIEW:
	case SQLITE_DROP_VTABLE: return "DROP";
	default: return "this statement";
	}
}

static bool allowed_table(const cf_sql *s, const char *table)
{
	for (size_t i = 0; table && i < s->ntables; i++) {
		if (sqlite3_stricmp(s->tables[i], table) == 0)
			return true;
	}
	return false;
}

static int deny(cf_sql *s, int action, const char *name)
{
	/* CREATE and DROP first write the schema table: name the statement, not that. */
	bool schema_write = (s->denied_action == SQLITE_INSERT || s->denied_action == SQLITE_UPDATE ||
			     s->denied_action == SQLITE_DELETE) &&
			    sqlite3_strnicmp(s->denied_name, "sqlite_", 7) == 0;
	if (!s->denied_action || schema_write) {
		s->denied_action = action;
		snprintf(s->denied_name, sizeof(s->denied_name), "%s", name ? name : "");
	}
	return SQLITE_DENY;
}

static int authorize(void *arg, int action, const char *a3, const char *a4, const char *db,
		     const char *trigger)
{
	cf_sql *s = arg;
	(void)trigger;
	if (!s->armed)
		return SQLITE_OK;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_READ:
		/*
		 * Only the task's tables, in main: not sqlite_master, not temp, no
		 * virtual table. A read without a schema is of a CTE or subquery
		 * (count(*) over one), whose own reads are authorized one by one.
		 */
		if (!db || (strcmp(db, "main") == 0 && allowed_table(s, a3)))
			return SQLITE_OK;
		return deny(s, action, a3);
	case SQLITE_FUNCTION:
		/* Also disabled by SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION; twice is cheap. */
		if (a4 && (sqlite3_stricmp(a4, "load_extension") == 0 ||
			   sqlite3_stricmp(a4, "fts3_tokenizer") == 0))
			return deny(s, action, a4);
		return SQLITE_OK;
	default:
		return deny(s, action, a3);
	}
}

static int progress(void *arg)
{
	cf_sql *s = arg;
	if (s->spent_ms + (now_ms() - s->step_start_ms) > s->budget_ms) {
		s->over_budget = true;
		return 1;
	}
	return 0;
}

/* --- the database --- */

cf_err cf_sql_open(cf_sql **out)
{
	cf_err rc = CF_OK;
	*out = NULL;
	pthread_once(&global_once, global_init);
	cf_sql *s = calloc(1, sizeof(*s));
	if (!s)
		return CF_ERR_NOMEM;
	int r = sqlite3_open_v2(":memory:", &s->db,
				SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY |
					SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
				NULL);
	if (r != SQLITE_OK) {
		rc = s->db ? cf_sql_err(r) : CF_ERR_NOMEM;
		goto out;
	}
	/* Hardening that holds in both phases. */
	sqlite3 *db = s->db;
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, 0, NULL) != SQLITE_OK) {
		rc = CF_ERR_UNSUPPORTED;
		goto out;
	}
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, (int)CF_SQL_MAX_LENGTH);
	/* No file ever: temporary tables and indices (sorts) in memory; no journal. */
	if ((rc = cf_sql_exec(s, "PRAGMA temp_store=MEMORY; PRAGMA journal_mode=OFF; "
				 "PRAGMA mmap_size=0")) != CF_OK)
		goto out;
	if (sqlite3_set_authorizer(db, authorize, s) != SQLITE_OK) {
		rc = CF_ERR_UNSUPPORTED;
		goto out;
	}
	*out = s;
	s = NULL;
out:
	cf_sql_close(s);
	return rc;
}

void cf_sql_close(cf_sql *s)
{
	if (!s)
		return;
	if (s->db)
		sqlite3_close_v2(s->db);
	for (size_t i = 0; i < s->ntables; i++)
		free(s->tables[i]);
	free(s);
}

sqlite3 *cf_sql_db(cf_sql *s)
{
	return s->db;
}

bool cf_sql_armed(const cf_sql *s)
{
	return s->armed;
}

uint64_t cf_sql_spent_ms(const cf_sql *s)
{
	return s->spent_ms;
}

cf_err cf_sql_exec(cf_sql *s, const char *sql)
{
	if (!s || !sql || s->armed)
		return CF_ERR_ARG;
	char *msg = NULL;
	int r = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (r != SQLITE_OK)
		log_debug("internal statement failed: %s", msg ? msg : sqlite3_errstr(r));
	sqlite3_free(msg);
	return cf_sql_err(r);
}

cf_err cf_sql_allow_table(cf_sql *s, const char *table)
{
	if (!s || !table || !*table || s->armed)
		return CF_ERR_ARG;
	if (s->ntables == MAX_TABLES)
		return CF_ERR_TOO_BIG;
	if (!(s->tables[s->ntables] = strdup(table)))
		return CF_ERR_NOMEM;
	s->ntables++;
	return CF_OK;
}

cf_err cf_sql_arm(cf_sql *s, unsigned budget_seconds)
{
	if (!s || s->armed || budget_seconds == 0 || budget_seconds > CF_SQL_MAX_BUDGET_SECONDS)
		return CF_ERR_ARG;
	/* A second lock behind the authorizer: the connection cannot write at all. */
	cf_err rc = cf_sql_exec(s, "PRAGMA query_only=ON");
	if (rc != CF_OK)
		return rc;
	sqlite3 *db = s->db;
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, (int)CF_SQL_MAX_QUERY);
	sqlite3_limit(db, SQLITE_LIMIT_COLUMN, CF_SQL_MAX_COLUMNS);
	sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, CF_SQL_MAX_EXPR_DEPTH);
	sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, CF_SQL_MAX_COMPOUND);
	sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, CF_SQL_MAX_VDBE_OPS);
	sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, CF_SQL_MAX_FUNCTION_ARGS);
	sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, CF_SQL_MAX_LIKE_PATTERN);
	/* No parameters: nothing binds them, and a task is its text. */
	sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 0);
	sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	s->budget_ms = (uint64_t)budget_seconds * 1000u;
	s->spent_ms = 0;
	sqlite3_progress_handler(db, PROGRESS_OPS, progress, s);
	s->armed = true;
	return CF_OK;
}

cf_err cf_sql_prepare(cf_sql *s, const char *query, sqlite3_stmt **out, char *why, size_t whylen)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	cf_err rc = CF_OK;
	if (why && whylen)
		why[0] = '\0';
	if (!out)
		return CF_ERR_ARG;
	*out = NULL;
	if (!s || !query || !s->armed)
		return CF_ERR_ARG;
	size_t len = strlen(query);
	if (len > CF_SQL_MAX_QUERY) {
		set_why(why, whylen, "the query is longer than %u bytes", CF_SQL_MAX_QUERY);
		return CF_ERR_TOO_BIG;
	}
	s->denied_action = 0;
	s->denied_name[0] = '\0';
	/* Preparing runs no opcode, but keep the budget's clock sane if it does. */
	s->step_start_ms = now_ms();
	int r = sqlite3_prepare_v3(s->db, query, (int)len + 1, 0, &st, &tail);
	if (r != SQLITE_OK) {
		if (s->denied_action == SQLITE_READ) {
			set_why(why, whylen, "the query may read only the task's tables, not %.64s",
				s->denied_name[0] ? s->denied_name : "this one");
			rc = CF_ERR_AUTH;
		} else if (s->denied_action == SQLITE_FUNCTION) {
			set_why(why, whylen, "the query may not call %.64s()", s->denied_name);
			rc = CF_ERR_AUTH;
		} else if ((s->denied_action == SQLITE_INSERT || s->denied_action == SQLITE_UPDATE ||
			    s->denied_action == SQLITE_DELETE) &&
			   sqlite3_strnicmp(s->denied_name, "sqlite_", 7) == 0) {
			set_why(why, whylen, "the query may not change the schema (CREATE, DROP, ALTER)");
			rc = CF_ERR_AUTH;
		} else if (s->denied_action) {
			set_why(why, whylen, "the query may not use %s", action_name(s->denied_action));
			rc = CF_ERR_AUTH;
		} else {
			set_why(why, whylen, "the query does not compile: %.200s", sqlite3_errmsg(s->db));
			rc = cf_sql_err(r) == CF_ERR_TOO_BIG ? CF_ERR_TOO_BIG : CF_ERR_PARSE;
			if (rc == CF_ERR_PARSE && (r & 0xff) == SQLITE_AUTH)
				rc = CF_ERR_AUTH;
		}
		goto out;
	}
	if (!st) {
		set_why(why, whylen, "the query is empty");
		rc = CF_ERR_PARSE;
		goto out;
	}
	if (tail && !cf_sql_tail_empty(tail)) {
		set_why(why, whylen, "the query holds more than one statement");
		rc = CF_ERR_AUTH;
		goto out;
	}
	if (!sqlite3_stmt_readonly(st) || sqlite3_stmt_isexplain(st) ||
	    sqlite3_column_count(st) == 0) {
		set_why(why, whylen, "the query must be one read-only SELECT");
		rc = CF_ERR_AUTH;
		goto out;
	}
	*out = st;
	st = NULL;
out:
	sqlite3_finalize(st);
	return rc;
}

cf_err cf_sql_step(cf_sql *s, sqlite3_stmt *st, bool *row, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = '\0';
	if (!s || !st || !row || !s->armed)
		return CF_ERR_ARG;
	*row = false;
	/* A spent budget stops even a statement too short to reach the progress handler. */
	if (s->over_budget || s->spent_ms >= s->budget_ms) {
		s->over_budget = true;
		set_why(why, whylen, "the query ran out of its time budget (%llu s)",
			(unsigned long long)(s->budget_ms / 1000u));
		return CF_ERR_LIMIT;
	}
	s->step_start_ms = now_ms();
	int r = sqlite3_step(st);
	s->spent_ms += now_ms() - s->step_start_ms;
	if (r == SQLITE_ROW) {
		*row = true;
		return CF_OK;
	}
	if (r == SQLITE_DONE)
		return CF_OK;
	if (s->over_budget || (r & 0xff) == SQLITE_INTERRUPT) {
		set_why(why, whylen, "the query ran out of its time budget (%llu s)",
			(unsigned long long)(s->budget_ms / 1000u));
		return CF_ERR_LIMIT;
	}
	/* sqlite3_errmsg could quote a value: only the code's generic phrase. */
	set_why(why, whylen, "the query failed while running: %s", sqlite3_errstr(r));
	cf_err rc = cf_sql_err(r);
	return rc == CF_OK || rc == CF_ERR_IO || rc == CF_ERR_AUTH ? CF_ERR_PARSE : rc;
}
