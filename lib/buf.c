#include "coffer/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void cf_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void cf_buf_init(cf_buf *b, size_t max, bool secret)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->secret = secret;
}

cf_err cf_buf_reserve(cf_buf *b, size_t extra)
{
	/*
	 * +1 leaves room for cf_buf_terminate() without another move. With
	 * max == SIZE_MAX, len + extra + 1 could wrap to 0 and pass the
	 * capacity check below, so that case is refused too.
	 */
	if (extra > b->max || b->len > b->max - extra || b->len + extra == SIZE_MAX)
		return CF_ERR_TOO_BIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return CF_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	uint8_t *p = malloc(cap);
	if (!p)
		return CF_ERR_NOMEM;
	if (b->data) {
		memcpy(p, b->data, b->len);
		if (b->secret)
			cf_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return CF_OK;
}

cf_err cf_buf_append(cf_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return CF_OK;
	cf_err rc = cf_buf_reserve(b, n);
	if (rc != CF_OK)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return CF_OK;
}

cf_err cf_buf_append_byte(cf_buf *b, uint8_t c)
{
	return cf_buf_append(b, &c, 1);
}

cf_err cf_buf_append_str(cf_buf *b, const char *s)
{
	return cf_buf_append(b, s, strlen(s));
}

cf_err cf_buf_printf(cf_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return CF_ERR_ARG;
	cf_err rc = cf_buf_reserve(b, (size_t)n);
	if (rc != CF_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return CF_OK;
}

cf_err cf_buf_terminate(cf_buf *b)
{
	if (b->len >= b->cap) {
		if (b->len > b->max)
			return CF_ERR_TOO_BIG;
		/* reserve() always keeps one spare byte beyond len. */
		cf_err rc = cf_buf_reserve(b, 0);
		if (rc != CF_OK)
			return rc;
	}
	b->data[b->len] = 0;
	return CF_OK;
}

void cf_buf_reset(cf_buf *b)
{
	if (b->secret && b->data)
		cf_wipe(b->data, b->cap);
	b->len = 0;
}

void cf_buf_free(cf_buf *b)
{
	if (b->data) {
		if (b->secret)
			cf_wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

uint8_t *cf_buf_steal(cf_buf *b, size_t *len)
{
	uint8_t *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

const char *cf_buf_display(const cf_buf *b, char *out, size_t outlen)
{
	static const char hexdig[] = "0123456789abcdef";
	if (!out || outlen == 0)
		return "";
	if (b->secret) {
		snprintf(out, outlen, "(hidden)");
		return out;
	}
	size_t o = 0;
	for (size_t i = 0; i < b->len && o + 2 < outlen; i++) {
		out[o++] = hexdig[b->data[i] >> 4];
		out[o++] = hexdig[b->data[i] & 15];
	}
	out[o] = 0;
	return out;
}

void cf_cursor_init(cf_cursor *c, const void *data, size_t len)
{
	c->data = data;
	c->len = data ? len : 0;
	c->off = 0;
}

size_t cf_cursor_remaining(const cf_cursor *c)
{
	return c->len - c->off;
}

cf_err cf_cursor_borrow(cf_cursor *c, size_t n, const uint8_t **out)
{
	if (n > cf_cursor_remaining(c))
		return CF_ERR_TRUNCATED;
	/* A NULL span has len 0; NULL + 0 is still undefined in C. */
	*out = c->data ? c->data + c->off : NULL;
	c->off += n;
	return CF_OK;
}

cf_err cf_cursor_read(cf_cursor *c, void *out, size_t n)
{
	const uint8_t *p;
	cf_err rc = cf_cursor_borrow(c, n, &p);
	if (rc == CF_OK && n)
		memcpy(out, p, n);
	return rc;
}

cf_err cf_cursor_skip(cf_cursor *c, size_t n)
{
	const uint8_t *p;
	return cf_cursor_borrow(c, n, &p);
}

cf_err cf_cursor_u8(cf_cursor *c, uint8_t *v)
{
	return cf_cursor_read(c, v, 1);
}

static cf_err cursor_uint(cf_cursor *c, size_t n, bool big_endian, uint64_t *v)
{
	const uint8_t *p;
	cf_err rc = cf_cursor_borrow(c, n, &p);
	if (rc != CF_OK)
		return rc;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		size_t idx = big_endian ? i : n - 1 - i;
		x = (x << 8) | p[idx];
	}
	*v = x;
	return CF_OK;
}

#define CURSOR_UINT(name, type, n, be)                          \
	cf_err name(cf_cursor *c, type *v)                      \
	{                                                       \
		uint64_t x;                                     \
		cf_err rc = cursor_uint(c, n, be, &x);          \
		if (rc == CF_OK)                                \
			*v = (type)x;                           \
		return rc;                                      \
	}

CURSOR_UINT(cf_cursor_u16le, uint16_t, 2, false)
CURSOR_UINT(cf_cursor_u16be, uint16_t, 2, true)
CURSOR_UINT(cf_cursor_u32le, uint32_t, 4, false)
CURSOR_UINT(cf_cursor_u32be, uint32_t, 4, true)
CURSOR_UINT(cf_cursor_u64le, uint64_t, 8, false)
CURSOR_UINT(cf_cursor_u64be, uint64_t, 8, true)

cf_err cf_cursor_zeros(cf_cursor *c, size_t n)
{
	if (n > cf_cursor_remaining(c))
		return CF_ERR_TRUNCATED;
	if (n == 0)
		return CF_OK;
	const uint8_t *p = c->data + c->off;
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	if (acc)
		return CF_ERR_PARSE;
	c->off += n;
	return CF_OK;
}

cf_err cf_cursor_expect_end(const cf_cursor *c)
{
	return cf_cursor_remaining(c) == 0 ? CF_OK : CF_ERR_TRAILING;
}
