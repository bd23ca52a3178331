/*
 * ASCII armor (age spec, "ASCII armor"): strict PEM-like encoding.
 * Lines are exactly 64 columns of padded base64 except the last, which
 * may be shorter; LF or CRLF; whitespace only before the BEGIN line and
 * after the END line. Each full line carries 48 bytes, so lines decode
 * independently and the reader needs one line of memory.
 */
#include <stdlib.h>
#include <string.h>

#include "age_internal.h"
#include "coffer/enc.h"

#define ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----"
#define ARMOR_END "-----END AGE ENCRYPTED FILE-----"
#define ARMOR_COLUMNS 64
#define ARMOR_LINE_BYTES 48
/* Whitespace tolerated around the armor before we call it garbage. */
#define ARMOR_MAX_WHITESPACE 1024

void age_src_init(age_src *s, cf_reader in)
{
	s->in = in;
	s->pos = s->len = 0;
	s->eof = false;
}

static cf_err age_src_fill(age_src *s)
{
	if (s->pos < s->len || s->eof)
		return CF_OK;
	size_t got = 0;
	cf_err rc = s->in.read(s->in.ctx, s->buf, sizeof(s->buf), &got);
	if (rc != CF_OK)
		return rc;
	s->pos = 0;
	s->len = got;
	if (got == 0)
		s->eof = true;
	return CF_OK;
}

cf_err age_src_peek(age_src *s, int *c)
{
	cf_err rc = age_src_fill(s);
	if (rc != CF_OK)
		return rc;
	*c = s->pos < s->len ? s->buf[s->pos] : -1;
	return CF_OK;
}

cf_err age_src_getc(age_src *s, int *c)
{
	cf_err rc = age_src_peek(s, c);
	if (rc == CF_OK && *c >= 0)
		s->pos++;
	return rc;
}

static cf_err age_src_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	age_src *s = ctx;
	/* Once the buffer is drained, large reads bypass it: no extra copy. */
	if (s->pos == s->len && !s->eof && cap >= sizeof(s->buf)) {
		cf_err rc = s->in.read(s->in.ctx, buf, cap, got);
		if (rc == CF_OK && *got == 0)
			s->eof = true;
		return rc;
	}
	cf_err rc = age_src_fill(s);
	if (rc != CF_OK)
		return rc;
	size_t n = s->len - s->pos;
	if (n > cap)
		n = cap;
	memcpy(buf, s->buf + s->pos, n);
	s->pos += n;
	*got = n;
	return CF_OK;
}

cf_reader age_src_reader(age_src *s)
{
	return (cf_reader){ age_src_read, s };
}

enum armor_state { ARMOR_START, ARMOR_BODY, ARMOR_DONE, ARMOR_FAILED };

struct cf_armor_reader {
	age_src src;
	enum armor_state state;
	bool saw_short_line; /* a short line must be the last one */
	uint8_t out[ARMOR_LINE_BYTES];
	size_t out_pos;
	size_t out_len;
};

/*
 * Reads one line without its LF or CRLF into line (at most cap chars).
 * *eol tells whether a line ending was seen (false only at end of input).
 */
static cf_err armor_getline(age_src *s, char *line, size_t cap, size_t *len, bool *eol)
{
	size_t n = 0;
	*eol = false;
	for (;;) {
		int c;
		cf_err rc = age_src_getc(s, &c);
		if (rc != CF_OK)
			return rc;
		if (c < 0)
			break;
		if (c == '\n') {
			*eol = true;
			break;
		}
		if (c == '\r') {
			rc = age_src_getc(s, &c);
			if (rc != CF_OK)
				return rc;
			if (c != '\n')
				return CF_ERR_AGE_ARMOR;
			*eol = true;
			break;
		}
		if (n >= cap)
			return CF_ERR_AGE_ARMOR; /* line too long */
		line[n++] = (char)c;
	}
	*len = n;
	return CF_OK;
}

static cf_err armor_skip_space(age_src *s, bool *at_eof)
{
	for (size_t i = 0;; i++) {
		int c;
		cf_err rc = age_src_peek(s, &c);
		if (rc != CF_OK)
			return rc;
		if (c < 0) {
			*at_eof = true;
			return CF_OK;
		}
		if (!age_is_space(c)) {
			*at_eof = false;
			return CF_OK;
		}
		if (i >= ARMOR_MAX_WHITESPACE)
			return CF_ERR_AGE_ARMOR;
		rc = age_src_getc(s, &c);
		if (rc != CF_OK)
			return rc;
	}
}

/* Decodes the next line into a->out, or reaches the END line. */
static cf_err armor_next_line(cf_armor_reader *a)
{
	char line[ARMOR_COLUMNS + 1];
	size_t len;
	bool eol, at_eof;
	cf_err rc;

	if (a->state == ARMOR_START) {
		rc = armor_skip_space(&a->src, &at_eof);
		if (rc != CF_OK)
			return rc;
		rc = armor_getline(&a->src, line, ARMOR_COLUMNS, &len, &eol);
		if (rc != CF_OK)
			return rc;
		if (!eol || len != strlen(ARMOR_BEGIN) || memcmp(line, ARMOR_BEGIN, len) != 0)
			return CF_ERR_AGE_ARMOR;
		a->state = ARMOR_BODY;
	}
	rc = armor_getline(&a->src, line, ARMOR_COLUMNS, &len, &eol);
	if (rc != CF_OK)
		return rc;
	if (len == strlen(ARMOR_END) && memcmp(line, ARMOR_END, len) == 0) {
		/* Only whitespace may follow the END line. */
		rc = armor_skip_space(&a->src, &at_eof);
		if (rc != CF_OK)
			return rc;
		if (!at_eof)
			return CF_ERR_AGE_ARMOR;
		a->state = ARMOR_DONE;
		return CF_OK;
	}
	if (!eol || len == 0 || a->saw_short_line)
		return CF_ERR_AGE_ARMOR;
	if (len < ARMOR_COLUMNS)
		a->saw_short_line = true;
	/* Padding ('=') may only end the last line: a full line has none. */
	size_t outlen = 0;
	rc = cf_b64_decode(line, len, true, a->out, sizeof(a->out), &outlen);
	if (rc != CF_OK)
		return CF_ERR_AGE_ARMOR;
	if (len == ARMOR_COLUMNS && outlen != ARMOR_LINE_BYTES)
		a->saw_short_line = true; /* padded full line: must be the last */
	a->out_pos = 0;
	a->out_len = outlen;
	return CF_OK;
}

static cf_err armor_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	cf_armor_reader *a = ctx;
	*got = 0;
	while (a->out_pos == a->out_len) {
		if (a->state == ARMOR_DONE)
			return CF_OK;
		if (a->state == ARMOR_FAILED)
			return CF_ERR_AGE_ARMOR;
		cf_err rc = armor_next_line(a);
		if (rc != CF_OK) {
			a->state = ARMOR_FAILED;
			return rc;
		}
	}
	size_t n = a->out_len - a->out_pos;
	if (n > cap)
		n = cap;
	memcpy(buf, a->out + a->out_pos, n);
	a->out_pos += n;
	*got = n;
	return CF_OK;
}

cf_err cf_armor_reader_new(cf_reader in, cf_armor_reader **out)
{
	cf_armor_reader *a = calloc(1, sizeof(*a));
	if (!a)
		return CF_ERR_NOMEM;
	age_src_init(&a->src, in);
	a->state = ARMOR_START;
	*out = a;
	return CF_OK;
}

cf_reader cf_armor_reader_as_reader(cf_armor_reader *a)
{
	return (cf_reader){ armor_read, a };
}

void cf_armor_reader_free(cf_armor_reader *a)
{
	free(a);
}

struct cf_armor_writer {
	cf_writer out;
	bool started;
	size_t pending_len;
	uint8_t pending[ARMOR_LINE_BYTES];
};

static cf_err armor_emit_line(cf_armor_writer *a, const uint8_t *data, size_t n)
{
	char line[ARMOR_COLUMNS + 2];
	cf_b64_encode(data, n, true, line);
	size_t len = strlen(line);
	line[len++] = '\n';
	return a->out.write(a->out.ctx, (const uint8_t *)line, len);
}

static cf_err armor_start(cf_armor_writer *a)
{
	if (a->started)
		return CF_OK;
	a->started = true;
	return a->out.write(a->out.ctx, (const uint8_t *)ARMOR_BEGIN "\n", strlen(ARMOR_BEGIN) + 1);
}

static cf_err armor_write(void *ctx, const uint8_t *data, size_t len)
{
	cf_armor_writer *a = ctx;
	cf_err rc = armor_start(a);
	while (rc == CF_OK && len > 0) {
		/* Keep a full line pending: the last line is written by finish(). */
		if (a->pending_len == ARMOR_LINE_BYTES) {
			rc = armor_emit_line(a, a->pending, ARMOR_LINE_BYTES);
			a->pending_len = 0;
			continue;
		}
		size_t n = ARMOR_LINE_BYTES - a->pending_len;
		if (n > len)
			n = len;
		memcpy(a->pending + a->pending_len, data, n);
		a->pending_len += n;
		data += n;
		len -= n;
	}
	return rc;
}

cf_err cf_armor_writer_new(cf_writer out, cf_armor_writer **a)
{
	*a = calloc(1, sizeof(**a));
	if (!*a)
		return CF_ERR_NOMEM;
	(*a)->out = out;
	return CF_OK;
}

cf_writer cf_armor_writer_as_writer(cf_armor_writer *a)
{
	return (cf_writer){ armor_write, a };
}

cf_err cf_armor_writer_finish(cf_armor_writer *a)
{
	cf_err rc = armor_start(a);
	if (rc == CF_OK && a->pending_len)
		rc = armor_emit_line(a, a->pending, a->pending_len);
	a->pending_len = 0;
	if (rc == CF_OK)
		rc = a->out.write(a->out.ctx, (const uint8_t *)ARMOR_END "\n", strlen(ARMOR_END) + 1);
	return rc;
}

void cf_armor_writer_free(cf_armor_writer *a)
{
	free(a);
}
