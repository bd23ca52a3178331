/*
 * output: a task's result as CSV, encrypted to its recipients.
 *
 * A result is written as RFC 4180 CSV: a header of the column names, one
 * record per row, CRLF line ends, a field in double quotes (with "" for
 * a quote) when it holds a comma, a quote, CR or LF, or starts with a
 * byte order mark. NULL is an empty
 * field and the empty string is "" so the two stay apart; integers are
 * printed in full, reals as SQLite prints them (15 significant digits),
 * blobs as lower-case hex. The CSV lives in a secret cf_buf (the heap is
 * secretmem under the soft TEE) and goes through age encryption straight
 * into the uploader: there is never a plaintext file.
 *
 * The recipients of an output come only from the statement the KMS
 * signed (cf_kms_release_result.recipients), never from the task or from
 * cofferd: the KMS checked that each is its organisation's registered
 * age recipient, and its signature was verified by cf_kms_release.
 */
#ifndef COFFER_ENCLAVE_OUTPUT_H
#define COFFER_ENCLAVE_OUTPUT_H

#include <stddef.h>

#include <jansson.h>
#include <sqlite3.h>

#include "coffer/age.h"
#include "coffer/buf.h"
#include "coffer/err.h"
#include "coffer/io.h"

#define CF_OUTPUT_MAX_RECIPIENTS 64

/* Appends one field, quoted when it must be. */
cf_err cf_output_csv_field(cf_buf *out, const uint8_t *p, size_t n) CF_WUR;
/* The header: the names of the first ncols columns of st, then CRLF. */
cf_err cf_output_csv_header(cf_buf *out, sqlite3_stmt *st, int ncols) CF_WUR;
/* The current row's first ncols columns, then CRLF. */
cf_err cf_output_csv_row(cf_buf *out, sqlite3_stmt *st, int ncols) CF_WUR;

/*
 * The X25519 recipients of output `name` in the KMS-signed statement
 * ({"task_digest", "outputs": [{"name", "recipients": [{"org",
 * "recipient"}]}], "issued"}): exactly one output of that name with 1 to
 * CF_OUTPUT_MAX_RECIPIENTS parseable age1 recipients, else
 * CF_ERR_NOT_FOUND or CF_ERR_PARSE with why set. Free *out with free().
 */
cf_err cf_output_recipients(const json_t *statement, const char *name, cf_age_recipient **out,
			    size_t *n, char *why, size_t whylen) CF_WUR;

/* Encrypts csv (binary age, not armored) to the recipients into out. */
cf_err cf_output_encrypt(const cf_age_recipient *rcpts, size_t n, const cf_buf *csv,
			 cf_writer out) CF_WUR;

#endif
