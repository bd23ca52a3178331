/*
 * The age header (age spec, "Header"): a version line, one or more
 * recipient stanzas, and a MAC line. Parsing is strict: canonical
 * unpadded base64, body lines of exactly 64 columns except a final
 * shorter one, arguments of printable ASCII, LF line endings.
 */
#include <stdlib.h>
#include <string.h>

#include "age_internal.h"
#include "coffer/enc.h"

#define AGE_VERSION_LINE "age-encryption.org/v1"
#define AGE_BODY_COLUMNS 64
/* The spec sets no limit; this one only bounds allocations on hostile input. */
#define AGE_MAX_ARGS 1024

void cf_age_header_free(cf_age_header *h)
{
	if (!h->stanzas)
		return;
	for (size_t i = 0; i < h->nstanzas; i++) {
		cf_age_stanza *s = &h->stanzas[i];
		for (size_t j = 0; j < s->nargs; j++)
			free(s->args[j]);
		free(s->args);
		if (s->body) {
			/* Bodies hold wrapped file keys: not secret, but cheap to wipe. */
			cf_wipe(s->body, s->bodylen);
			free(s->body);
		}
	}
	free(h->stanzas);
	h->stanzas = NULL;
	h->nstanzas = 0;
}

/* Finds the end of the line starting at off; CF_ERR_TRUNCATED if none. */
static cf_err header_line(const uint8_t *data, size_t len, size_t off, size_t *line_len)
{
	if (off >= len)
		return CF_ERR_TRUNCATED; /* also keeps NULL + 0 (an empty span) out of memchr */
	const uint8_t *nl = memchr(data + off, '\n', len - off);
	if (!nl)
		return CF_ERR_TRUNCATED;
	*line_len = (size_t)(nl - (data + off));
	return CF_OK;
}

static bool valid_arg_char(uint8_t c)
{
	return c >= 33 && c <= 126;
}

static cf_err stanza_parse_args(const uint8_t *line, size_t len, cf_age_stanza *s)
{
	/* line is after "-> " */
	size_t start = 0, nargs = 1;
	for (size_t i = 0; i < len; i++)
		nargs += line[i] == ' ';
	if (nargs > AGE_MAX_ARGS)
		return CF_ERR_AGE_HEADER;
	s->args = calloc(nargs, sizeof(char *));
	if (!s->args)
		return CF_ERR_NOMEM;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != ' ') {
			if (!valid_arg_char(line[i]))
				return CF_ERR_AGE_HEADER;
			continue;
		}
		if (i == start)
			return CF_ERR_AGE_HEADER; /* empty argument */
		/* Not strndup: the line is not NUL-terminated. */
		char *arg = malloc(i - start + 1);
		if (!arg)
			return CF_ERR_NOMEM;
		memcpy(arg, line + start, i - start);
		arg[i - start] = 0;
		s->args[s->nargs++] = arg;
		start = i + 1;
	}
	return s->nargs ? CF_OK : CF_ERR_AGE_HEADER;
}

cf_err cf_age_header_parse(const uint8_t *data, size_t len, cf_age_header *h, size_t *consumed)
{
	cf_err rc;
	size_t off = 0, ll;
	memset(h, 0, sizeof(*h));

	/* Past the limit the header is malformed, not truncated: more input cannot help. */
	bool clipped = len > CF_AGE_MAX_HEADER;
	if (clipped)
		len = CF_AGE_MAX_HEADER;
	if ((rc = header_line(data, len, off, &ll)) != CF_OK)
		goto out;
	if (ll != strlen(AGE_VERSION_LINE) || memcmp(data, AGE_VERSION_LINE, ll) != 0) {
		rc = CF_ERR_AGE_HEADER;
		goto out;
	}
	off += ll + 1;

	for (;;) {
		if ((rc = header_line(data, len, off, &ll)) != CF_OK)
			goto out;
		const uint8_t *line = data + off;
		if (ll >= 3 && memcmp(line, "---", 3) == 0)
			break;
		if (ll < 3 || memcmp(line, "-> ", 3) != 0) {
			rc = CF_ERR_AGE_HEADER;
			goto out;
		}
		if (h->nstanzas == CF_AGE_MAX_STANZAS) {
			rc = CF_ERR_AGE_HEADER;
			goto out;
		}
		cf_age_stanza *grown = realloc(h->stanzas, (h->nstanzas + 1) * sizeof(*grown));
		if (!grown) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
		h->stanzas = grown;
		cf_age_stanza *s = &h->stanzas[h->nstanzas++];
		memset(s, 0, sizeof(*s));
		if ((rc = stanza_parse_args(line + 3, ll - 3, s)) != CF_OK)
			goto out;
		off += ll + 1;

		/* Body: full 64-column lines, then one shorter (possibly empty) line. */
		cf_buf body;
		cf_buf_init(&body, CF_AGE_MAX_HEADER, false);
		for (;;) {
			if ((rc = header_line(data, len, off, &ll)) != CF_OK) {
				cf_buf_free(&body);
				goto out;
			}
			uint8_t chunk[48];
			size_t n = 0;
			if (ll > AGE_BODY_COLUMNS ||
			    cf_b64_decode((const char *)data + off, ll, false, chunk, sizeof(chunk),
					  &n) != CF_OK) {
				cf_buf_free(&body);
				rc = CF_ERR_AGE_HEADER;
				goto out;
			}
			if ((rc = cf_buf_append(&body, chunk, n)) != CF_OK) {
				cf_buf_free(&body);
				goto out;
			}
			off += ll + 1;
			if (ll < AGE_BODY_COLUMNS)
				break;
		}
		s->body = cf_buf_steal(&body, &s->bodylen);
	}

	if (h->nstanzas == 0) {
		rc = CF_ERR_AGE_HEADER;
		goto out;
	}
	/* MAC line: "--- " + 43 chars of unpadded base64 (32 bytes). */
	h->mac_input_len = off + 3;
	const uint8_t *line = data + off;
	size_t maclen = 0;
	if (ll != 4 + 43 || line[3] != ' ' ||
	    cf_b64_decode((const char *)line + 4, 43, false, h->mac, sizeof(h->mac), &maclen) !=
		    CF_OK ||
	    maclen != sizeof(h->mac)) {
		rc = CF_ERR_AGE_HEADER;
		goto out;
	}
	*consumed = off + ll + 1;
	rc = CF_OK;
out:
	if (rc == CF_ERR_TRUNCATED && clipped)
		rc = CF_ERR_AGE_HEADER;
	if (rc != CF_OK)
		cf_age_header_free(h);
	return rc;
}

cf_err cf_age_header_encode(const cf_age_header *h, bool with_mac, cf_buf *out)
{
	cf_err rc = cf_buf_append_str(out, AGE_VERSION_LINE "\n");
	for (size_t i = 0; rc == CF_OK && i < h->nstanzas; i++) {
		const cf_age_stanza *s = &h->stanzas[i];
		rc = cf_buf_append_str(out, "->");
		for (size_t j = 0; rc == CF_OK && j < s->nargs; j++) {
			rc = cf_buf_append_byte(out, ' ');
			if (rc == CF_OK)
				rc = cf_buf_append_str(out, s->args[j]);
		}
		if (rc == CF_OK)
			rc = cf_buf_append_byte(out, '\n');
		/* Full lines of 48 bytes, then a final short line (empty if none left). */
		size_t off = 0;
		for (;;) {
			if (rc != CF_OK)
				break;
			size_t n = s->bodylen - off > 48 ? 48 : s->bodylen - off;
			char line[AGE_BODY_COLUMNS + 1] = "";
			if (n)
				cf_b64_encode(s->body + off, n, false, line);
			rc = cf_buf_append_str(out, line);
			if (rc == CF_OK)
				rc = cf_buf_append_byte(out, '\n');
			off += n;
			if (n < 48)
				break;
		}
	}
	if (rc == CF_OK)
		rc = cf_buf_append_str(out, "---");
	if (rc == CF_OK && with_mac) {
		char mac[45];
		cf_b64_encode(h->mac, sizeof(h->mac), false, mac);
		rc = cf_buf_printf(out, " %s\n", mac);
	}
	return rc;
}
