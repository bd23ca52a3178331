/*
 * csv: a streaming RFC 4180 reader, and the loader that turns a decrypted
 * dataset into a typed SQLite table.
 *
 * The reader is pushed bytes in any split (it is a cf_writer, so the age
 * decryptor writes plaintext straight into it) and hands over one record
 * at a time. It accepts: fields separated by commas, records ended by LF
 * or CRLF, fields in double quotes holding commas, line breaks and ""
 * for a quote, a UTF-8 byte order mark at the very start, a last record
 * without a line break. It refuses, naming the line: a quote inside an
 * unquoted field or text after a closing quote, an unterminated quote, a
 * CR not followed by LF (CR-only files), a NUL byte, a field that is not
 * UTF-8, and anything over the limits (field bytes, record bytes,
 * columns, rows). A record of plain ASCII (no quote, NUL or lone CR)
 * that lies whole in one write is handed over in place, pointing into
 * that write; other records are kept in one secret buffer, wiped after
 * each record. Either way the records, errors and limits are the same
 * however the input is split. An empty line is a record of one empty
 * field.
 *
 * The loader takes the first record as the column names and each later
 * record as a row, which must have exactly as many fields. It reads the
 * plaintext twice. The first pass checks everything, counts the rows and
 * infers each column's type (INTEGER if every non-empty value is a
 * canonical 64-bit integer, REAL if every one is a decimal number, else
 * TEXT; an empty field is NULL), keeping the plaintext in secret chunks.
 * The second pass reads the chunks again and inserts each row straight
 * into the typed table (one prepared INSERT, one transaction), wiping and
 * freeing each chunk once read, so memory holds about one copy of the
 * data, never two: the table grows as the kept plaintext shrinks.
 *
 * Error messages carry line, record and column numbers, never a value or
 * a column name: the header of a file without one is its first row.
 */
#ifndef COFFER_ENCLAVE_CSV_H
#define COFFER_ENCLAVE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "coffer/err.h"
#include "coffer/io.h"

#define CF_CSV_DEFAULT_MAX_FIELD (1u << 20)     /* bytes */
#define CF_CSV_DEFAULT_MAX_RECORD (8u << 20)    /* bytes of one record's fields */
#define CF_CSV_DEFAULT_MAX_COLUMNS 1000u
#define CF_CSV_DEFAULT_MAX_ROWS 50000000u
#define CF_CSV_MAX_NAME 128                     /* bytes of a column name */

typedef struct cf_csv_limits {
	size_t max_field;
	size_t max_record;
	size_t max_columns;
	uint64_t max_rows;    /* data rows (the header is not counted) */
} cf_csv_limits;

void cf_csv_limits_default(cf_csv_limits *l);

/* --- the reader --- */

typedef struct cf_csv_field {
	const char *data;  /* not NUL-terminated; valid during the callback only */
	size_t len;
	bool quoted;
} cf_csv_field;

/* One record (1-based number; the line it started on). A non-OK return stops the reader. */
typedef cf_err (*cf_csv_record_fn)(void *arg, const cf_csv_field *fields, size_t n,
				   uint64_t record, uint64_t line);

typedef struct cf_csv_reader cf_csv_reader;

/* limits NULL for the defaults. */
cf_err cf_csv_reader_new(const cf_csv_limits *limits, cf_csv_record_fn fn, void *arg,
			 cf_csv_reader **out) CF_WUR;
/* Feeds bytes; after a failure every call returns that failure. */
cf_err cf_csv_reader_feed(cf_csv_reader *r, const uint8_t *data, size_t len) CF_WUR;
/* Ends the input: emits the last record, refuses an open quote. */
cf_err cf_csv_reader_finish(cf_csv_reader *r) CF_WUR;
/* The reader as a plaintext sink. */
cf_writer cf_csv_reader_writer(cf_csv_reader *r);
/* What failed and where ("line 3: ..."); "" if nothing did. */
const char *cf_csv_reader_error(const cf_csv_reader *r);
void cf_csv_reader_free(cf_csv_reader *r);

/* --- the loader --- */

typedef enum cf_csv_type { CF_CSV_INTEGER = 1, CF_CSV_REAL = 2, CF_CSV_TEXT = 3 } cf_csv_type;

typedef struct cf_csv_table {
	char *name;
	char **columns;       /* column names (owned) */
	cf_csv_type *types;
	size_t ncolumns;
	uint64_t rows;
} cf_csv_table;

void cf_csv_table_free(cf_csv_table *t);

typedef struct cf_csv_load cf_csv_load;

/*
 * A loader of table `table` into db. The table name must be a plain
 * identifier (cf_csv_valid_table); db must be writable (before the fence).
 */
cf_err cf_csv_load_new(sqlite3 *db, const char *table, const cf_csv_limits *limits,
		       cf_csv_load **out) CF_WUR;
/* Where the plaintext goes. */
cf_writer cf_csv_load_writer(cf_csv_load *l);
/*
 * Ends the input and creates the typed table; *info (if non-NULL) gets
 * its description (free with cf_csv_table_free).
 */
cf_err cf_csv_load_finish(cf_csv_load *l, cf_csv_table *info) CF_WUR;
/* Why the load failed (never data); "" if it did not. */
const char *cf_csv_load_error(const cf_csv_load *l);
void cf_csv_load_free(cf_csv_load *l);

/* --- names and values --- */

/*
 * A table name: 1 to 64 of [A-Za-z0-9_], not starting with a digit, not
 * starting with "sqlite_" or "__coffer" (either case).
 */
bool cf_csv_valid_table(const char *name);
/*
 * A column name: 1 to CF_CSV_MAX_NAME bytes of UTF-8 without control
 * characters or surrounding spaces, not rowid/oid/_rowid_ (so that
 * rowid always means the row, docs/output-policy.md) and not starting
 * with "__coffer". Any other name is fine: it is always quoted.
 */
bool cf_csv_valid_column(const char *name, size_t len);
/* The canonical integer and decimal grammars of the type inference. */
bool cf_csv_is_integer(const char *p, size_t n);
bool cf_csv_is_real(const char *p, size_t n);
/* Strict UTF-8 (no overlongs, surrogates or code points over U+10FFFF). */
bool cf_csv_utf8_valid(const uint8_t *p, size_t n);

#endif
