#include "coffer/enc.h"

#include <ctype.h>
#include <string.h>

#include <openssl/crypto.h>

static const char hex_digits[] = "0123456789abcdef";

void cf_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex_digits[in[i] >> 4];
		out[2 * i + 1] = hex_digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

cf_err cf_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (inlen % 2)
		return CF_ERR_ENCODING;
	if (inlen / 2 > outcap)
		return CF_ERR_TOO_BIG;
	for (size_t i = 0; i < inlen / 2; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return CF_ERR_ENCODING;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*outlen = inlen / 2;
	return CF_OK;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cf_b64_encoded_len(size_t n, bool padded)
{
	if (padded)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t cf_b64_decoded_max(size_t inlen)
{
	return inlen / 4 * 3 + 3;
}

void cf_b64_encode(const uint8_t *in, size_t n, bool padded, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	size_t rest = n - i;
	if (rest) {
		uint32_t v = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		if (rest == 2)
			out[o++] = b64_alphabet[(v >> 6) & 63];
		if (padded) {
			if (rest == 1)
				out[o++] = '=';
			out[o++] = '=';
		}
	}
	out[o] = 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

cf_err cf_b64_decode(const char *in, size_t inlen, bool padded, uint8_t *out, size_t outcap,
		     size_t *outlen)
{
	size_t data_chars = inlen;
	if (padded) {
		if (inlen % 4)
			return CF_ERR_ENCODING;
		if (inlen >= 1 && in[inlen - 1] == '=')
			data_chars--;
		if (inlen >= 2 && in[inlen - 2] == '=')
			data_chars--;
	}
	size_t rest = data_chars % 4;
	if (rest == 1)
		return CF_ERR_ENCODING;
	size_t need = data_chars / 4 * 3 + (rest ? rest - 1 : 0);
	if (need > outcap)
		return CF_ERR_TOO_BIG;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < data_chars; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			return CF_ERR_ENCODING;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Canonical form: the unused low bits of the last character are zero. */
	if (acc != 0)
		return CF_ERR_ENCODING;
	*outlen = o;
	return CF_OK;
}

/* --- Bech32, after BIP 173's reference code --- */

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t bech32_polymod_step(uint32_t pre)
{
	uint8_t b = (uint8_t)(pre >> 25);
	return ((pre & 0x1FFFFFF) << 5) ^ (-((b >> 0) & 1) & 0x3b6a57b2UL) ^
	       (-((b >> 1) & 1) & 0x26508e6dUL) ^ (-((b >> 2) & 1) & 0x1ea119faUL) ^
	       (-((b >> 3) & 1) & 0x3d4233ddUL) ^ (-((b >> 4) & 1) & 0x2a1462b3UL);
}

static uint32_t bech32_hrp_checksum(const char *hrp, size_t hrplen)
{
	uint32_t chk = 1;
	for (size_t i = 0; i < hrplen; i++)
		chk = bech32_polymod_step(chk) ^ ((uint8_t)hrp[i] >> 5);
	chk = bech32_polymod_step(chk);
	for (size_t i = 0; i < hrplen; i++)
		chk = bech32_polymod_step(chk) ^ ((uint8_t)hrp[i] & 0x1f);
	return chk;
}

cf_err cf_bech32_encode(const char *hrp, const uint8_t *data, size_t n, bool upper_case,
			char *out, size_t outcap)
{
	size_t hrplen = strlen(hrp);
	if (hrplen == 0)
		return CF_ERR_ARG;
	for (size_t i = 0; i < hrplen; i++) {
		if (hrp[i] < 33 || hrp[i] > 126 || isupper((unsigned char)hrp[i]))
			return CF_ERR_ARG;
	}
	/* n * 8 must not wrap, or the size check below would pass. */
	if (n > (SIZE_MAX - 4) / 8 - 16)
		return CF_ERR_TOO_BIG;
	size_t words = (n * 8 + 4) / 5;
	if (hrplen + 1 + words + 6 + 1 > outcap || hrplen > outcap)
		return CF_ERR_TOO_BIG;
	uint32_t chk = bech32_hrp_checksum(hrp, hrplen);
	size_t o = 0;
	for (size_t i = 0; i < hrplen; i++)
		out[o++] = hrp[i];
	out[o++] = '1';
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			uint8_t w = (acc >> bits) & 31;
			chk = bech32_polymod_step(chk) ^ w;
			out[o++] = bech32_charset[w];
		}
	}
	if (bits) {
		uint8_t w = (acc << (5 - bits)) & 31;
		chk = bech32_polymod_step(chk) ^ w;
		out[o++] = bech32_charset[w];
	}
	for (int i = 0; i < 6; i++)
		chk = bech32_polymod_step(chk);
	chk ^= 1;
	for (int i = 0; i < 6; i++)
		out[o++] = bech32_charset[(chk >> ((5 - i) * 5)) & 31];
	out[o] = 0;
	if (upper_case) {
		for (size_t i = 0; i < o; i++)
			out[i] = (char)toupper((unsigned char)out[i]);
	}
	return CF_OK;
}

cf_err cf_bech32_decode(const char *in, char *hrp_out, size_t hrpcap, uint8_t *data,
			size_t datacap, size_t *datalen)
{
	size_t len = strlen(in);
	bool has_lower = false, has_upper = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 33 || c > 126)
			return CF_ERR_ENCODING;
		has_lower |= islower(c) != 0;
		has_upper |= isupper(c) != 0;
	}
	if (has_lower && has_upper)
		return CF_ERR_ENCODING;
	const char *sep = strrchr(in, '1');
	if (!sep)
		return CF_ERR_ENCODING;
	size_t hrplen = (size_t)(sep - in);
	size_t dlen = len - hrplen - 1;
	if (hrplen == 0 || dlen < 6)
		return CF_ERR_ENCODING;
	if (hrplen + 1 > hrpcap)
		return CF_ERR_TOO_BIG;
	for (size_t i = 0; i < hrplen; i++)
		hrp_out[i] = (char)tolower((unsigned char)in[i]);
	hrp_out[hrplen] = 0;

	uint32_t chk = bech32_hrp_checksum(hrp_out, hrplen);
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < dlen; i++) {
		const char *pos = strchr(bech32_charset, tolower((unsigned char)sep[1 + i]));
		if (!pos || !*pos)
			return CF_ERR_ENCODING;
		uint8_t w = (uint8_t)(pos - bech32_charset);
		chk = bech32_polymod_step(chk) ^ w;
		if (i >= dlen - 6)
			continue;
		acc = (acc << 5) | w;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= datacap)
				return CF_ERR_TOO_BIG;
			data[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (chk != 1)
		return CF_ERR_ENCODING;
	/* Padding must be fewer than 5 bits, all zero. */
	if (bits >= 5 || acc != 0)
		return CF_ERR_ENCODING;
	*datalen = o;
	return CF_OK;
}

bool cf_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
