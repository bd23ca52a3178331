/*
 * seed_gen: a deterministic Criteo-like data set for the seed-inference
 * benchmark (bench/seed-inference.sh) and its tests.
 *
 *   seed_gen [--rows N] [--seed S] [-o FILE]      (default 1500000 rows,
 *                                                  seed 1, standard output)
 *
 * CSV, one header row, then N rows of 41 columns:
 *   id,label,I1,...,I13,C1,...,C26
 * - id: the row number, 0 to N-1.
 * - label: 0 or 1, drawn from a hidden logistic model of some of the
 *   features (below), so a model has something to learn (about 25 %
 *   positives, like Criteo's click rate).
 * - I1..I13: non-negative integer counts (I2 also takes -1) with Criteo's
 *   shape: zero-inflated and heavy-tailed (a value's bit length is
 *   binomial, the value uniform within it), each column with its own scale
 *   and its own share of missing values, written as empty fields (I12 is
 *   77 % missing, I8 almost never).
 * - C1..C26: hashed categorical values. Criteo writes them as 32-bit hashes
 *   in 8 hex digits; an XGBoost numeric matrix takes numbers, and a float32
 *   (what a DMatrix stores) holds integers exactly only below 2^24, so each
 *   is written as the top 24 bits of a 32-bit hash of (column, category),
 *   an unsigned decimal integer below 16777216. Each column keeps Criteo's
 *   cardinality (3 for C9 up to ~10M for C3) with a Zipf-like head (the
 *   category's bit length is uniform, so P(k) falls like 1/k), and
 *   Criteo's share of missing values (empty fields; C22 76 %).
 * Every row draws from its own generator seeded by (seed, id), all integer
 * arithmetic but for the label's logistic, so the output is byte-identical
 * across runs (and could be generated in any order); a different seed gives
 * different rows. Missing values are empty fields, which xgb_plain reads as
 * NaN (XGBoost's "missing").
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_NUM 13
#define N_CAT 26

/* splitmix64: each row's generator is a splitmix64 sequence. */
static uint64_t next64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A 32-bit integer hash (lowbias32): the "hashed" categorical values. */
static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* Below 1000 = a share in per mille of a 10-bit draw (1024 values). */
static int chance(uint64_t r10, unsigned per_mille)
{
	return (unsigned)(r10 & 1023) * 1000 < per_mille * 1024;
}

/* Integer log2 + 1 (bit length); 0 for 0. */
static int bitlen(uint64_t v)
{
	return v ? 64 - __builtin_clzll(v) : 0;
}

struct num_col {
	unsigned missing; /* per mille */
	unsigned zero;    /* per mille of present values that are 0 */
	unsigned lo, w;   /* bit length = lo + popcount of w random bits */
};

/* Criteo (Kaggle display advertising) shares of missing values. */
static const struct num_col num_cols[N_NUM] = {
	{ 450, 300, 0, 6 },  /* I1 */
	{ 0, 150, 0, 10 },   /* I2 (also -1, 10 %) */
	{ 210, 100, 0, 8 },  /* I3 */
	{ 220, 50, 0, 6 },   /* I4 */
	{ 26, 30, 6, 12 },   /* I5: large counts, median ~4000 */
	{ 220, 100, 1, 8 },  /* I6 */
	{ 40, 150, 0, 8 },   /* I7 */
	{ 1, 30, 1, 6 },     /* I8 */
	{ 40, 20, 2, 8 },    /* I9 */
	{ 450, 400, 0, 2 },  /* I10: 0..7 */
	{ 40, 200, 0, 5 },   /* I11 */
	{ 770, 600, 0, 5 },  /* I12 */
	{ 220, 100, 0, 7 },  /* I13 */
};

struct cat_col {
	uint32_t card;    /* distinct categories */
	unsigned missing; /* per mille */
};

/* Criteo's per-column cardinalities and shares of missing values. */
static const struct cat_col cat_cols[N_CAT] = {
	{ 1460, 0 },    { 583, 0 },     { 10131227, 34 }, { 2202608, 34 },
	{ 305, 0 },     { 24, 0 },      { 12517, 0 },     { 633, 0 },
	{ 3, 0 },       { 93145, 0 },   { 5683, 0 },      { 8351593, 34 },
	{ 3194, 0 },    { 27, 0 },      { 14992, 0 },     { 5461306, 34 },
	{ 10, 0 },      { 5652, 0 },    { 2173, 440 },    { 4, 440 },
	{ 7046547, 34 }, { 18, 760 },   { 15, 0 },        { 286181, 34 },
	{ 105, 440 },   { 142572, 440 },
};

/* A category's hidden effect on the label, in [-scale, scale]. */
static double effect(int col, uint32_t k, double scale)
{
	uint32_t h = hash32(k * 0x9e3779b1U ^ hash32((uint32_t)col + 0x51ed27U));
	return ((double)(h >> 8) / 8388607.5 - 1.0) * scale;
}

/* Writes v in decimal at p, returns the end. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* One row into p (at most ~600 bytes); returns the end. */
static char *gen_row(char *p, uint64_t seed, uint64_t id)
{
	uint64_t s = seed * 0xd1342543de82ef95ULL ^ (id + 1) * 0x9e3779b97f4a7c15ULL;
	next64(&s);
	int64_t num[N_NUM];
	int present[N_NUM];
	for (int j = 0; j < N_NUM; j++) {
		const struct num_col *c = &num_cols[j];
		uint64_t r = next64(&s);
		present[j] = !chance(r, c->missing);
		num[j] = 0;
		if (!present[j])
			continue;
		if (chance(r >> 10, c->zero))
			continue;
		if (j == 1 && chance(r >> 20, 100)) {
			num[j] = -1;
			continue;
		}
		unsigned e = c->lo + (unsigned)__builtin_popcountll((r >> 30) & ((1ULL << c->w) - 1));
		uint64_t base = (1ULL << e) - 1;
		num[j] = (int64_t)(base + ((r >> 44) & base) + 1);
	}
	uint32_t cat[N_CAT]; /* category index */
	int cpresent[N_CAT];
	for (int j = 0; j < N_CAT; j++) {
		const struct cat_col *c = &cat_cols[j];
		uint64_t r = next64(&s);
		cpresent[j] = !chance(r, c->missing);
		int L = bitlen(c->card);
		unsigned e = (unsigned)(((r >> 10) & 63) % (uint64_t)(L + 1));
		uint64_t k = e ? (r >> 16) & ((1ULL << e) - 1) : 0;
		cat[j] = (uint32_t)(k % c->card);
	}

	/* The hidden model: log-scale counts, a missing indicator, per-category
	 * effects of the low-cardinality columns and of the head of two
	 * mid-cardinality ones, and one interaction. */
	double z = -2.1;
	z += present[0] ? 0.22 * fmin(bitlen((uint64_t)num[0]), 6) : -0.35;
	z -= 0.10 * bitlen((uint64_t)(num[2] > 0 ? num[2] : 0));
	if (present[4])
		z -= 0.15 * (bitlen((uint64_t)num[4]) - 12);
	z += 0.08 * bitlen((uint64_t)(num[5] > 0 ? num[5] : 0));
	z += 0.30 * fmin(bitlen((uint64_t)num[10]), 4);
	z -= 0.08 * bitlen((uint64_t)num[12]);
	static const int low_card[] = { 5, 8, 13, 16, 19, 21, 22 }; /* C6 C9 C14 C17 C20 C22 C23 */
	for (size_t i = 0; i < sizeof(low_card) / sizeof(low_card[0]); i++) {
		int j = low_card[i];
		if (cpresent[j])
			z += effect(j, cat[j], 0.8);
	}
	if (cat[0] < 16)
		z += effect(0, cat[0], 0.8);
	if (cat[1] < 16)
		z += effect(1, cat[1], 0.6);
	if (present[0] && num[0] >= 8 && (cat[16] & 1) == 0)
		z += 0.5;
	uint64_t r = next64(&s);
	double u = (double)(r >> 11) * 0x1.0p-53;
	int label = u < 1.0 / (1.0 + exp(-z));

	p = put_u64(p, id);
	*p++ = ',';
	*p++ = (char)('0' + label);
	for (int j = 0; j < N_NUM; j++) {
		*p++ = ',';
		if (!present[j])
			continue;
		if (num[j] < 0) {
			*p++ = '-';
			p = put_u64(p, (uint64_t)-num[j]);
		} else {
			p = put_u64(p, (uint64_t)num[j]);
		}
	}
	for (int j = 0; j < N_CAT; j++) {
		*p++ = ',';
		if (!cpresent[j])
			continue;
		uint32_t h = hash32(cat[j] ^ hash32(0xc0ffe000U + (uint32_t)j));
		p = put_u64(p, h >> 8);
	}
	*p++ = '\n';
	return p;
}

static void usage(void)
{
	fprintf(stderr, "usage: seed_gen [--rows N] [--seed S] [-o FILE]\n");
	exit(2);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "seed_gen: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	uint64_t rows = 1500000, seed = 1;
	const char *out = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rows") && i + 1 < argc)
			rows = parse_u64(argv[++i], "--rows");
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = parse_u64(argv[++i], "--seed");
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else
			usage();
	}
	FILE *f = out ? fopen(out, "wb") : stdout;
	if (!f) {
		fprintf(stderr, "seed_gen: %s: %s\n", out, strerror(errno));
		return 1;
	}
	enum { BUF = 1 << 20, ROW_MAX = 1024 };
	char *buf = malloc(BUF);
	if (!buf)
		return 1;
	char *p = buf;
	p += sprintf(p, "id,label");
	for (int j = 1; j <= N_NUM; j++)
		p += sprintf(p, ",I%d", j);
	for (int j = 1; j <= N_CAT; j++)
		p += sprintf(p, ",C%d", j);
	*p++ = '\n';
	for (uint64_t id = 0; id < rows; id++) {
		if (p - buf > BUF - ROW_MAX) {
			if (fwrite(buf, 1, (size_t)(p - buf), f) != (size_t)(p - buf))
				goto fail;
			p = buf;
		}
		p = gen_row(p, seed, id);
	}
	if (fwrite(buf, 1, (size_t)(p - buf), f) != (size_t)(p - buf))
		goto fail;
	free(buf);
	if (fflush(f) || (out && fclose(f))) {
		fprintf(stderr, "seed_gen: write: %s\n", strerror(errno));
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "seed_gen: write: %s\n", strerror(errno));
	free(buf);
	return 1;
}
