/*
 * buf: length-carrying byte buffers and bounds-checked cursors.
 *
 * A cf_buf owns its bytes, knows its length and refuses to grow past a
 * hard maximum fixed at init (CF_ERR_TOO_BIG), so no reader of untrusted
 * input can be made to allocate without bound. A buffer marked secret is
 * wiped with OPENSSL_cleanse whenever its bytes are released: on free,
 * on reset and on every reallocation (the old block is wiped first).
 *
 * A cf_cursor reads untrusted bytes it does not own. Every read is
 * checked against the remaining length: a read past the end returns
 * CF_ERR_TRUNCATED and leaves the cursor where it was, it never crashes.
 */
#ifndef COFFER_BUF_H
#define COFFER_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/err.h"

typedef struct cf_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;   /* hard limit on len */
	bool secret;  /* wipe on release; never print */
} cf_buf;

/* Wipes n bytes in a way the compiler cannot remove. */
void cf_wipe(void *p, size_t n);

/* --- owning buffers --- */
void cf_buf_init(cf_buf *b, size_t max, bool secret);
cf_err cf_buf_reserve(cf_buf *b, size_t extra) CF_WUR;
cf_err cf_buf_append(cf_buf *b, const void *p, size_t n) CF_WUR;
cf_err cf_buf_append_byte(cf_buf *b, uint8_t c) CF_WUR;
cf_err cf_buf_append_str(cf_buf *b, const char *s) CF_WUR;
cf_err cf_buf_printf(cf_buf *b, const char *fmt, ...) CF_WUR CF_PRINTF(2, 3);
/* Appends a NUL without counting it in len, so data can be used as a C string. */
cf_err cf_buf_terminate(cf_buf *b) CF_WUR;
/* Forgets the contents (wiping them if secret) but keeps the allocation. */
void cf_buf_reset(cf_buf *b);
/* Releases everything (wiping if secret); b is left empty and reusable. */
void cf_buf_free(cf_buf *b);
/* Transfers ownership of the bytes to the caller (who must free, and wipe if secret). */
uint8_t *cf_buf_steal(cf_buf *b, size_t *len);
/* "(hidden)" for secret buffers, hex (truncated to fit) for others. */
const char *cf_buf_display(const cf_buf *b, char *out, size_t outlen);

/* --- read-only cursors over untrusted bytes --- */
typedef struct cf_cursor {
	const uint8_t *data;
	size_t len;
	size_t off;  /* invariant: off <= len */
} cf_cursor;

void cf_cursor_init(cf_cursor *c, const void *data, size_t len);
size_t cf_cursor_remaining(const cf_cursor *c);
cf_err cf_cursor_read(cf_cursor *c, void *out, size_t n) CF_WUR;
/* Borrows n bytes in place; *out stays valid as long as the underlying data. */
cf_err cf_cursor_borrow(cf_cursor *c, size_t n, const uint8_t **out) CF_WUR;
cf_err cf_cursor_skip(cf_cursor *c, size_t n) CF_WUR;
cf_err cf_cursor_u8(cf_cursor *c, uint8_t *v) CF_WUR;
cf_err cf_cursor_u16le(cf_cursor *c, uint16_t *v) CF_WUR;
cf_err cf_cursor_u16be(cf_cursor *c, uint16_t *v) CF_WUR;
cf_err cf_cursor_u32le(cf_cursor *c, uint32_t *v) CF_WUR;
cf_err cf_cursor_u32be(cf_cursor *c, uint32_t *v) CF_WUR;
cf_err cf_cursor_u64le(cf_cursor *c, uint64_t *v) CF_WUR;
cf_err cf_cursor_u64be(cf_cursor *c, uint64_t *v) CF_WUR;
/* Succeeds only if every byte in the next n is zero (reserved fields). */
cf_err cf_cursor_zeros(cf_cursor *c, size_t n) CF_WUR;
/* CF_ERR_TRAILING unless the cursor is exactly at the end. */
cf_err cf_cursor_expect_end(const cf_cursor *c) CF_WUR;

#endif
