/*
 * sql: the enclave's database and the fence around a task's query.
 *
 * One SQLite database per run, in memory (`:memory:`, temp_store MEMORY,
 * no journal): under the soft TEE the heap is secretmem, so the rows the
 * enclave decrypts live nowhere else. Every block SQLite frees is wiped
 * first (a wiping allocator installed before SQLite initialises), so
 * plaintext does not linger in freed memory either.
 *
 * Two phases. While loading, the enclave's own statements create and fill
 * the task's tables (csv.c). Then cf_sql_arm() closes the fence, for good:
 * the task's query may only read the tables named with cf_sql_allow_table
 * (authorizer: SELECT, READ of those tables, functions but
 * load_extension, recursive CTEs; everything else, ATTACH, PRAGMA, any
 * write, the schema tables, is denied), must be exactly one read-only
 * SELECT, and runs under sqlite3_limit bounds and a time budget enforced
 * by a progress handler. The connection is also hardened at open:
 * defensive mode, no extension loading, no triggers or views, no
 * double-quoted string literals, untrusted schema.
 *
 * Messages (why) never carry data: a prepare error is SQLite's message
 * (built from the query text and the schema only), a step error is the
 * generic phrase of its code, because SQLite's own message can quote a
 * value (a bad JSON path read from a row, for one).
 */
#ifndef COFFER_ENCLAVE_SQL_H
#define COFFER_ENCLAVE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "coffer/buf.h"
#include "coffer/err.h"

/* The limits of the fence (sqlite3_limit once armed). */
#define CF_SQL_MAX_QUERY (256u * 1024u)       /* bytes of SQL */
#define CF_SQL_MAX_LENGTH (32u * 1024u * 1024u) /* bytes of a string, blob or row */
#define CF_SQL_MAX_COLUMNS 1100               /* result columns, GROUP BY terms */
#define CF_SQL_MAX_EXPR_DEPTH 100
#define CF_SQL_MAX_COMPOUND 16
#define CF_SQL_MAX_VDBE_OPS 250000
#define CF_SQL_MAX_FUNCTION_ARGS 32
#define CF_SQL_MAX_LIKE_PATTERN 1000
#define CF_SQL_DEFAULT_BUDGET_SECONDS 60
#define CF_SQL_MAX_BUDGET_SECONDS (24 * 60 * 60)

typedef struct cf_sql cf_sql;

/* A new hardened in-memory database, not armed. */
cf_err cf_sql_open(cf_sql **out) CF_WUR;
void cf_sql_close(cf_sql *s);
/* The connection, for the loader's own statements before cf_sql_arm. */
sqlite3 *cf_sql_db(cf_sql *s);

/* Runs the enclave's own statements (no rows); CF_ERR_ARG once armed. */
cf_err cf_sql_exec(cf_sql *s, const char *sql) CF_WUR;
/* Adds a table the task's queries may read; before cf_sql_arm only. */
cf_err cf_sql_allow_table(cf_sql *s, const char *table) CF_WUR;
/*
 * Arms the fence: limits, authorizer rules, and a time budget of
 * budget_seconds (1 to CF_SQL_MAX_BUDGET_SECONDS) for all of the task's
 * queries together, counted while they run. Cannot be undone.
 */
cf_err cf_sql_arm(cf_sql *s, unsigned budget_seconds) CF_WUR;
bool cf_sql_armed(const cf_sql *s);

/*
 * Prepares the task's query under the fence. CF_ERR_PARSE for SQL that
 * does not compile, CF_ERR_AUTH for one the fence refuses (a denied
 * action, a statement that writes, EXPLAIN, a second statement, no result
 * columns), CF_ERR_TOO_BIG for SQL over CF_SQL_MAX_QUERY; why says which.
 * CF_ERR_ARG if not armed.
 */
cf_err cf_sql_prepare(cf_sql *s, const char *query, sqlite3_stmt **out, char *why,
		      size_t whylen) CF_WUR;
/*
 * Steps a fenced statement: *row is true when a row is ready. CF_ERR_LIMIT
 * when the time budget is spent, CF_ERR_TOO_BIG when a value exceeds
 * CF_SQL_MAX_LENGTH, CF_ERR_NOMEM, CF_ERR_PARSE for another runtime error.
 */
cf_err cf_sql_step(cf_sql *s, sqlite3_stmt *st, bool *row, char *why, size_t whylen) CF_WUR;
/* Milliseconds of the budget spent so far. */
uint64_t cf_sql_spent_ms(const cf_sql *s);

/*
 * Caps SQLite's heap (sqlite3_hard_heap_limit64) so that a query that
 * would exhaust the enclave's memory fails with SQLITE_NOMEM instead.
 * Installs the wiping allocator first: SQLite's own calls initialise it.
 */
void cf_sql_limit_heap(uint64_t bytes);

/* --- helpers --- */

/* The cf_err of a SQLite result code (SQLITE_NOMEM -> CF_ERR_NOMEM, ...). */
cf_err cf_sql_err(int rc);
/* Appends name as a double-quoted identifier ("" inside). */
cf_err cf_sql_quote_ident(cf_buf *out, const char *name) CF_WUR;
/* True if text holds nothing but whitespace, comments and semicolons. */
bool cf_sql_tail_empty(const char *text);

#endif
