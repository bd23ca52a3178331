/*
 * Internal to the age module: a small peekable buffered source shared by
 * the armor decoder and the header reader.
 */
#ifndef COFFER_AGE_INTERNAL_H
#define COFFER_AGE_INTERNAL_H

#include "coffer/age.h"

#define AGE_SRC_BUF 16384

typedef struct age_src {
	cf_reader in;
	size_t pos;
	size_t len;
	bool eof;
	uint8_t buf[AGE_SRC_BUF];
} age_src;

void age_src_init(age_src *s, cf_reader in);
/* *c gets the next byte, or -1 at end of input. */
cf_err age_src_peek(age_src *s, int *c) CF_WUR;
cf_err age_src_getc(age_src *s, int *c) CF_WUR;
cf_reader age_src_reader(age_src *s);

static inline bool age_is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

#endif
