/*
 * secret_rows: a stand-in for an enclave program holding plaintext records,
 * for the memory-dump tests (redis_memdump.sh).
 *
 *   secret_rows [MB]
 *
 * Fills MB megabytes (default 100) of heap, in 1 MiB malloc() blocks, with
 * deterministic 128-byte rows: the marker "SECRETROW-", an 8-digit row
 * number, "-", 48 hex digits, "|", 59 more hex digits and a newline. Then
 * prints "ready <pid> rows=<n>" on stdout and sleeps until SIGTERM or
 * SIGINT (exit 0).
 *
 * A dump of the plain process finds every row; run under the soft TEE's
 * runtime it must find none. So rows are written straight into the heap,
 * never staged on the stack or in static storage (which the runtime cannot
 * protect), and the marker with its first digit appears nowhere in the
 * program's own image: searching for "SECRETROW-0" finds rows only.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ROW = 128, BLOCK = 1 << 20, MAX_MB = 4096 };

static const char marker[] = "SECRETROW-";
static const char hex[] = "0123456789abcdef";
static char *blocks[MAX_MB]; /* pointers only, never row bytes */

/* splitmix64: a deterministic stream of row contents. */
static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void put_hex(char *dst, size_t n, uint64_t *rng)
{
	uint64_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 16 == 0)
			w = next(rng);
		dst[i] = hex[w & 15];
		w >>= 4;
	}
}

static void put_row(char *dst, uint32_t n, uint64_t *rng)
{
	memcpy(dst, marker, sizeof(marker) - 1);
	char *d = dst + sizeof(marker) - 1;
	for (int i = 7; i >= 0; i--) {
		d[i] = (char)('0' + n % 10);
		n /= 10;
	}
	d[8] = '-';
	put_hex(d + 9, 48, rng);
	d[57] = '|';
	put_hex(d + 58, ROW - 10 - 58 - 1, rng);
	dst[ROW - 1] = '\n';
}

int main(int argc, char **argv)
{
	long mb = 100;
	if (argc > 2 || (argc == 2 && ((mb = strtol(argv[1], NULL, 10)) < 1 || mb > MAX_MB))) {
		fprintf(stderr, "usage: secret_rows [MB]  (1..%d, default 100)\n", MAX_MB);
		return 2;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		perror("secret_rows: sigprocmask");
		return 1;
	}
	uint64_t rng = 0x436f66666572u; /* "Coffer" */
	uint32_t rows = 0;
	for (long b = 0; b < mb; b++) {
		blocks[b] = malloc(BLOCK);
		if (blocks[b] == NULL) {
			fprintf(stderr, "secret_rows: out of memory after %ld MB\n", b);
			return 1;
		}
		for (size_t off = 0; off + ROW <= BLOCK; off += ROW)
			put_row(blocks[b] + off, rows++, &rng);
	}
	printf("ready %ld rows=%u\n", (long)getpid(), (unsigned)rows);
	if (fflush(stdout) != 0)
		return 1;
	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	return 0;
}
