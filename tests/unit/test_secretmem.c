/*
 * Unit tests for the soft TEE's secretmem runtime: the range allocator
 * (tee/runtime/ranges.c, compiled in) directly, then libcoffer-soft.so as
 * programs see it, by running secretmem_probe scenarios with the runtime
 * preloaded (COFFER_SOFT_RUNTIME and COFFER_SOFT_PROBE name the two).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ranges.h"

enum { PG = 4096, BASE = 0x10000000, NPAGES = 256 };

static uintptr_t pg(size_t n)
{
	return (uintptr_t)n * PG;
}

/* Checks the table's invariants: sorted, disjoint, non-adjacent, summed. */
static void assert_sane(const rg_arena *a)
{
	size_t sum = 0;
	for (size_t i = 0; i < a->nfree; i++) {
		const rg_span *s = &a->free[i];
		assert_true(s->start < s->end);
		assert_true(s->start >= a->base && s->end <= a->end);
		assert_int_equal(s->start % PG, 0);
		assert_int_equal(s->end % PG, 0);
		if (i > 0)
			assert_true(a->free[i - 1].end < s->start); /* a gap between spans */
		sum += s->end - s->start;
	}
	assert_int_equal(sum, a->free_bytes);
}

static void setup_arena(rg_arena *a, rg_span *table, size_t cap)
{
	assert_int_equal(rg_init(a, BASE, pg(NPAGES), PG, table, cap), 0);
	assert_sane(a);
}

/* --- the allocator --- */

static void test_init_rejects_bad_geometry(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[4];
	assert_int_equal(rg_init(&a, BASE + 1, pg(4), PG, t, 4), EINVAL);
	assert_int_equal(rg_init(&a, BASE, pg(4) + 1, PG, t, 4), EINVAL);
	assert_int_equal(rg_init(&a, BASE, 0, PG, t, 4), EINVAL);
	assert_int_equal(rg_init(&a, BASE, pg(4), 3000, t, 4), EINVAL);
	assert_int_equal(rg_init(&a, BASE, pg(4), PG, t, 0), EINVAL);
	assert_int_equal(rg_init(&a, BASE, pg(4), PG, NULL, 4), EINVAL);
	assert_int_equal(rg_init(&a, UINTPTR_MAX - pg(1) + 1, pg(4), PG, t, 4), EINVAL);
	assert_int_equal(rg_init(&a, BASE, pg(4), PG, t, 4), 0);
	assert_int_equal(a.free_bytes, pg(4));
}

static void test_first_fit_in_order_until_full(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[8];
	setup_arena(&a, t, 8);
	uintptr_t p;
	for (size_t i = 0; i < NPAGES / 4; i++) {
		assert_int_equal(rg_alloc(&a, pg(4), PG, &p), 0);
		assert_int_equal(p, BASE + pg(4 * i));
		assert_true(rg_in_use(&a, p, pg(4)));
		assert_sane(&a);
	}
	/* Exhaustion: the enclave-size limit. */
	assert_int_equal(a.free_bytes, 0);
	assert_int_equal(a.nfree, 0);
	assert_int_equal(rg_alloc(&a, pg(1), PG, &p), ENOMEM);
	assert_int_equal(rg_release(&a, BASE + pg(8), pg(4)), 0);
	assert_int_equal(rg_alloc(&a, pg(5), PG, &p), ENOMEM);
	assert_int_equal(rg_alloc(&a, pg(4), PG, &p), 0);
	assert_int_equal(p, BASE + pg(8));
}

static void test_bad_arguments(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[8];
	setup_arena(&a, t, 8);
	uintptr_t p;
	assert_int_equal(rg_alloc(&a, 0, PG, &p), EINVAL);
	assert_int_equal(rg_alloc(&a, 100, PG, &p), EINVAL);
	assert_int_equal(rg_alloc(&a, pg(1), 3 * PG, &p), EINVAL);
	assert_int_equal(rg_alloc(&a, pg(1), PG / 2, &p), EINVAL);
	assert_int_equal(rg_alloc(&a, pg(NPAGES + 1), PG, &p), ENOMEM);
	assert_int_equal(rg_release(&a, BASE + 1, pg(1)), EINVAL);
	assert_int_equal(rg_release(&a, BASE, 0), EINVAL);
	assert_int_equal(rg_release(&a, BASE - PG, pg(2)), EINVAL);
	assert_int_equal(rg_release(&a, BASE + pg(NPAGES - 1), pg(2)), EINVAL);
	assert_int_equal(rg_release(&a, UINTPTR_MAX - PG + 1, pg(1)), EINVAL);
	assert_int_equal(rg_claim(&a, BASE + pg(NPAGES), pg(1), false), EINVAL);
	assert_false(rg_in_use(&a, BASE - PG, pg(1)));
	assert_true(rg_contains(&a, BASE, pg(NPAGES)));
	assert_false(rg_contains(&a, BASE, pg(NPAGES + 1)));
	assert_false(rg_contains(&a, BASE - 1, 1));
	assert_int_equal(a.free_bytes, pg(NPAGES));
}

static void test_hole_reuse_is_first_fit(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[16];
	setup_arena(&a, t, 16);
	uintptr_t p[6];
	for (int i = 0; i < 6; i++)
		assert_int_equal(rg_alloc(&a, pg(2), PG, &p[i]), 0);
	assert_int_equal(rg_release(&a, p[1], pg(2)), 0);
	assert_int_equal(rg_release(&a, p[3], pg(2)), 0);
	assert_sane(&a);
	assert_int_equal(a.nfree, 3); /* two holes and the tail */
	uintptr_t q;
	/* Three pages fit in neither hole: from the tail. */
	assert_int_equal(rg_alloc(&a, pg(3), PG, &q), 0);
	assert_int_equal(q, BASE + pg(12));
	/* One page: the lowest hole, which shrinks from the front. */
	assert_int_equal(rg_alloc(&a, pg(1), PG, &q), 0);
	assert_int_equal(q, p[1]);
	assert_int_equal(rg_alloc(&a, pg(2), PG, &q), 0);
	assert_int_equal(q, p[3]);
	assert_sane(&a);
}

static void test_release_coalesces_both_sides(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[16];
	setup_arena(&a, t, 16);
	uintptr_t p[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(rg_alloc(&a, pg(4), PG, &p[i]), 0);
	assert_int_equal(rg_release(&a, p[0], pg(4)), 0);
	assert_int_equal(rg_release(&a, p[2], pg(4)), 0);
	assert_int_equal(a.nfree, 3);
	assert_int_equal(rg_release(&a, p[1], pg(4)), 0); /* joins p[0] and p[2] */
	assert_int_equal(a.nfree, 2);
	assert_int_equal(a.free[0].start, p[0]);
	assert_int_equal(a.free[0].end, p[2] + pg(4));
	assert_int_equal(rg_release(&a, p[3], pg(4)), 0); /* and the tail */
	assert_int_equal(a.nfree, 1);
	assert_int_equal(a.free_bytes, pg(NPAGES));
	assert_sane(&a);
}

static void test_partial_release(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[16];
	setup_arena(&a, t, 16);
	uintptr_t p;
	/* Over-allocate and trim both ends, as mimalloc and jemalloc do. */
	assert_int_equal(rg_alloc(&a, pg(10), PG, &p), 0);
	assert_int_equal(rg_release(&a, p, pg(3)), 0);
	assert_int_equal(rg_release(&a, p + pg(7), pg(3)), 0);
	assert_true(rg_in_use(&a, p + pg(3), pg(4)));
	assert_false(rg_in_use(&a, p + pg(2), pg(2)));
	assert_false(rg_in_use(&a, p + pg(6), pg(2)));
	assert_int_equal(a.free_bytes, pg(NPAGES - 4));
	/* A page out of the middle. */
	assert_int_equal(rg_release(&a, p + pg(4), pg(1)), 0);
	assert_true(rg_in_use(&a, p + pg(3), pg(1)));
	assert_false(rg_in_use(&a, p + pg(4), pg(1)));
	assert_true(rg_in_use(&a, p + pg(5), pg(2)));
	assert_sane(&a);
	assert_int_equal(a.nfree, 3);
}

static void test_release_of_free_pages_is_idempotent(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[16];
	setup_arena(&a, t, 16);
	uintptr_t p;
	assert_int_equal(rg_alloc(&a, pg(8), PG, &p), 0);
	assert_int_equal(rg_release(&a, p + pg(2), pg(2)), 0);
	assert_int_equal(rg_release(&a, p + pg(2), pg(2)), 0);
	assert_int_equal(a.free_bytes, pg(NPAGES - 6));
	/* Overlapping a free span on both sides of used pages. */
	assert_int_equal(rg_release(&a, p + pg(1), pg(4)), 0);
	assert_int_equal(a.free_bytes, pg(NPAGES - 4));
	assert_int_equal(rg_release(&a, BASE, pg(NPAGES)), 0);
	assert_int_equal(a.nfree, 1);
	assert_int_equal(a.free_bytes, pg(NPAGES));
	assert_sane(&a);
}

static void test_claim(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[16];
	setup_arena(&a, t, 16);
	uintptr_t p;
	assert_int_equal(rg_alloc(&a, pg(4), PG, &p), 0);
	/* Exclusive: refused over pages in use, nothing changes. */
	assert_int_equal(rg_claim(&a, p + pg(3), pg(2), true), EEXIST);
	assert_int_equal(a.free_bytes, pg(NPAGES - 4));
	/* Exclusive, strictly inside a free span: splits it. */
	assert_int_equal(rg_claim(&a, p + pg(10), pg(2), true), 0);
	assert_true(rg_in_use(&a, p + pg(10), pg(2)));
	assert_false(rg_in_use(&a, p + pg(9), pg(1)));
	assert_int_equal(a.nfree, 2);
	/* Not exclusive, across used and free pages: takes the free ones. */
	assert_int_equal(rg_claim(&a, p + pg(2), pg(12), false), 0);
	assert_true(rg_in_use(&a, p, pg(14)));
	assert_false(rg_in_use(&a, p + pg(14), pg(1)));
	assert_int_equal(a.free_bytes, pg(NPAGES - 14));
	/* Over pages all in use: nothing to do. */
	assert_int_equal(rg_claim(&a, p, pg(4), false), 0);
	assert_sane(&a);
	/* Exactly a whole span. */
	assert_int_equal(rg_release(&a, p + pg(4), pg(2)), 0);
	assert_int_equal(rg_claim(&a, p + pg(4), pg(2), true), 0);
	assert_true(rg_in_use(&a, p, pg(14)));
	/* Several spans at once. */
	assert_int_equal(rg_release(&a, p + pg(1), pg(1)), 0);
	assert_int_equal(rg_release(&a, p + pg(3), pg(1)), 0);
	assert_int_equal(rg_release(&a, p + pg(5), pg(1)), 0);
	assert_int_equal(rg_claim(&a, p, pg(6), false), 0);
	assert_true(rg_in_use(&a, p, pg(14)));
	assert_sane(&a);
}

static void test_alignment(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[16];
	setup_arena(&a, t, 16);
	uintptr_t p, q;
	assert_int_equal(rg_alloc(&a, pg(1), PG, &p), 0);
	/* 16-page alignment skips to the next boundary, leaving a hole. */
	assert_int_equal(rg_alloc(&a, pg(16), pg(16), &q), 0);
	assert_int_equal(q % pg(16), 0);
	assert_int_equal(q, BASE + pg(16));
	assert_false(rg_in_use(&a, p + pg(1), pg(15)));
	/* The hole serves small requests first. */
	assert_int_equal(rg_alloc(&a, pg(2), PG, &q), 0);
	assert_int_equal(q, BASE + pg(1));
	/* No aligned room at all. */
	assert_int_equal(rg_alloc(&a, pg(NPAGES / 2 + 16), pg(NPAGES / 2), &q), ENOMEM);
	assert_sane(&a);
}

static void test_full_table(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[2];
	setup_arena(&a, t, 2);
	uintptr_t p[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(rg_alloc(&a, pg(1), PG, &p[i]), 0);
	assert_int_equal(rg_release(&a, p[1], pg(1)), 0);
	assert_int_equal(a.nfree, 2); /* the hole and the tail: full */
	/* A new hole needs a slot: refused, nothing changes. */
	size_t before = a.free_bytes;
	assert_int_equal(rg_release(&a, p[4], pg(1)), ENOMEM);
	assert_true(rg_in_use(&a, p[4], pg(1)));
	assert_int_equal(a.free_bytes, before);
	/* Growing an existing span needs none. */
	assert_int_equal(rg_release(&a, p[2], pg(1)), 0);
	assert_int_equal(rg_release(&a, p[7], pg(1)), 0); /* joins the tail */
	/* Splitting a span needs one. */
	assert_int_equal(rg_claim(&a, BASE + pg(100), pg(1), true), ENOMEM);
	uintptr_t q;
	assert_int_equal(rg_alloc(&a, pg(4), pg(64), &q), ENOMEM);
	/* An aligned start at a span's edge needs none. */
	assert_int_equal(rg_alloc(&a, pg(NPAGES - 64), pg(64), &q), 0);
	assert_int_equal(q, BASE + pg(64));
	assert_sane(&a);
}

/* Random operations against a page map: the table must always agree. */
static void test_random_against_model(void **state)
{
	(void)state;
	rg_arena a;
	rg_span t[NPAGES];
	setup_arena(&a, t, NPAGES);
	bool used[NPAGES] = {false};
	uint64_t rng = 42;
	for (int step = 0; step < 20000; step++) {
		rng = rng * 6364136223846793005u + 1442695040888963407u;
		unsigned r = (unsigned)(rng >> 33);
		size_t len = 1 + r % 9;
		size_t at = (r >> 8) % NPAGES;
		if (at + len > NPAGES)
			len = NPAGES - at;
		switch ((r >> 20) % 4) {
		case 0:
		case 1: {
			size_t align = (r >> 24) % 3 == 0 ? 4 : 1;
			uintptr_t p;
			/* The model's first fit. */
			size_t want = NPAGES;
			for (size_t s = 0; s + len <= NPAGES; s += align) {
				size_t k = 0;
				while (k < len && !used[s + k])
					k++;
				if (k == len) {
					want = s;
					break;
				}
			}
			int rc = rg_alloc(&a, pg(len), pg(align), &p);
			if (want == NPAGES) {
				assert_int_equal(rc, ENOMEM);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(p, BASE + pg(want));
				for (size_t k = 0; k < len; k++)
					used[want + k] = true;
			}
			break;
		}
		case 2:
			assert_int_equal(rg_release(&a, BASE + pg(at), pg(len)), 0);
			for (size_t k = 0; k < len; k++)
				used[at + k] = false;
			break;
		default: {
			bool all_free = true;
			for (size_t k = 0; k < len; k++)
				all_free = all_free && !used[at + k];
			bool excl = (r >> 26) & 1;
			int rc = rg_claim(&a, BASE + pg(at), pg(len), excl);
			if (excl && !all_free) {
				assert_int_equal(rc, EEXIST);
			} else {
				assert_int_equal(rc, 0);
				for (size_t k = 0; k < len; k++)
					used[at + k] = true;
			}
			break;
		}
		}
		assert_sane(&a);
		size_t free_pages = 0;
		for (size_t k = 0; k < NPAGES; k++) {
			free_pages += !used[k];
			assert_int_equal(rg_in_use(&a, BASE + pg(k), pg(1)), used[k]);
		}
		assert_int_equal(a.free_bytes, pg(free_pages));
	}
}

/* --- the runtime, through secretmem_probe --- */

static const char *runtime_path, *probe_path;
static const char mimalloc_path[] = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

static int group_setup(void **state)
{
	(void)state;
	runtime_path = getenv("COFFER_SOFT_RUNTIME");
	probe_path = getenv("COFFER_SOFT_PROBE");
	return 0;
}

/*
 * Runs the probe with env (NULL-terminated "NAME=value" strings) and the
 * runtime preloaded (with mimalloc after it if asked); returns the exit
 * status, or 128 + signal. stderr goes to err (NUL-terminated).
 */
static int run_probe_in(const char *scenario, const char *const *env, bool with_mimalloc,
			bool deny_secretmem, char *err, size_t errlen);

static int run_probe(const char *scenario, const char *const *env, bool with_mimalloc,
		     char *err, size_t errlen)
{
	return run_probe_in(scenario, env, with_mimalloc, false, err, errlen);
}

/* In the child: makes memfd_secret fail with ENOSYS, as on an old kernel. */
static void deny_memfd_secret(void)
{
#if defined(__x86_64__)
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 447 /* memfd_secret */, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(125);
#else
	_exit(125);
#endif
}

static int run_probe_in(const char *scenario, const char *const *env, bool with_mimalloc,
			bool deny_secretmem, char *err, size_t errlen)
{
	if (runtime_path == NULL || probe_path == NULL)
		skip();
	char preload[1024];
	int n = snprintf(preload, sizeof(preload), "LD_PRELOAD=%s%s%s", runtime_path,
			 with_mimalloc ? ":" : "", with_mimalloc ? mimalloc_path : "");
	assert_true(n > 0 && (size_t)n < sizeof(preload));
	const char *envp[16];
	size_t k = 0;
	envp[k++] = preload;
	envp[k++] = "PATH=/usr/bin:/bin";
	for (; env[0] != NULL && k < 15; env++)
		envp[k++] = env[0];
	envp[k] = NULL;
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		if (deny_secretmem)
			deny_memfd_secret();
		execve(probe_path, (char *const[]){(char *)probe_path, (char *)scenario, NULL},
		       (char *const *)envp);
		_exit(126);
	}
	close(pipefd[1]);
	size_t have = 0;
	ssize_t r;
	while ((r = read(pipefd[0], err + have, errlen - 1 - have)) > 0)
		have += (size_t)r;
	err[have] = '\0';
	close(pipefd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static void expect_probe(const char *scenario, const char *size, bool with_mimalloc)
{
	char err[4096];
	char sizevar[64];
	snprintf(sizevar, sizeof(sizevar), "COFFER_ENCLAVE_SIZE=%s", size);
	const char *env[] = {sizevar, NULL};
	int rc = run_probe(scenario, env, with_mimalloc, err, sizeof(err));
	if (rc != 0)
		print_error("probe %s exited %d: %s\n", scenario, rc, err);
	assert_int_equal(rc, 0);
}

#define PROBE_TEST(name, size, mimalloc)                 \
	static void test_runtime_##name(void **state)    \
	{                                                \
		(void)state;                             \
		expect_probe(#name, size, mimalloc);     \
	}

PROBE_TEST(basic, "16777216", false)
PROBE_TEST(zero, "16777216", false)
PROBE_TEST(partial, "16777216", false)
PROBE_TEST(madvise, "16777216", false)
PROBE_TEST(mremap, "16777216", false)
PROBE_TEST(enomem, "8388608", false)
PROBE_TEST(prot, "16777216", false)
PROBE_TEST(fixed, "16777216", false)
PROBE_TEST(passthrough, "16777216", false)
PROBE_TEST(fork, "16777216", false)
PROBE_TEST(threads, "16777216", false)
PROBE_TEST(malloc, "134217728", true)

PROBE_TEST(thread_churn, "16777216", false)
PROBE_TEST(thread_detached, "16777216", false)
PROBE_TEST(thread_user_stack, "16777216", false)
PROBE_TEST(thread_size, "16777216", false)
PROBE_TEST(thread_guard, "16777216", false)
PROBE_TEST(thread_fork, "16777216", false)
PROBE_TEST(thread_c11, "16777216", false)

/* --- a thread's secret, looked for from outside --- */

/* The needles of the thread_secret scenario (built as the probe builds them). */
static void thread_needle(char *out, size_t len, const char *what)
{
	snprintf(out, len, "%s%s-%u", "CFTHREAD", what, 7u * 104729u);
}

/* What a scan of the probe's memory found. */
struct scan {
	int stack_hits, tls_hits;  /* occurrences of the two needles anywhere */
	bool stack_at, tls_at;     /* one at the address the probe printed */
	size_t bytes;              /* bytes read */
};

/* Counts needle in buf, which starts at address base; notes one at want. */
static int count_in(const unsigned char *buf, size_t n, uintptr_t base, const char *needle,
		    uintptr_t want, bool *at)
{
	size_t k = strlen(needle);
	int hits = 0;
	for (size_t i = 0; i + k <= n; i++) {
		if (buf[i] == (unsigned char)needle[0] && memcmp(buf + i, needle, k) == 0) {
			hits++;
			if (base + i == want)
				*at = true;
		}
	}
	return hits;
}

/*
 * Reads every readable mapping of pid through /proc/PID/mem, as an attacker
 * with root would (pages the kernel refuses, secretmem, are skipped), and
 * looks for both needles. false (with errno) when /proc/PID/mem cannot be
 * opened at all.
 */
static bool scan_process(pid_t pid, uintptr_t stack_at, uintptr_t tls_at, struct scan *out)
{
	char path[64], stack_needle[64], tls_needle[64], line[512];
	thread_needle(stack_needle, sizeof(stack_needle), "STACKNEEDLE");
	thread_needle(tls_needle, sizeof(tls_needle), "TLSNEEDLE");
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (maps == NULL || fd < 0) {
		int err = errno;
		if (maps != NULL)
			fclose(maps);
		if (fd >= 0)
			close(fd);
		errno = err;
		return false;
	}
	memset(out, 0, sizeof(*out));
	while (fgets(line, sizeof(line), maps) != NULL) {
		unsigned long lo, hi;
		char perms[5];
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vsyscall]") != NULL)
			continue;
		/* Page by page: a needle never crosses a page here (both arrays are
		 * 64-byte aligned on the stack or in TLS, and shorter than 64). */
		unsigned char page[4096];
		for (unsigned long a = lo; a < hi; a += sizeof(page)) {
			ssize_t r = pread(fd, page, sizeof(page), (off_t)a);
			if (r <= 0)
				continue;
			out->bytes += (size_t)r;
			out->stack_hits += count_in(page, (size_t)r, a, stack_needle, stack_at,
						    &out->stack_at);
			out->tls_hits += count_in(page, (size_t)r, a, tls_needle, tls_at, &out->tls_at);
		}
	}
	fclose(maps);
	close(fd);
	return true;
}

/*
 * Runs the thread_secret scenario with env and the runtime preloaded,
 * scans its memory while the worker holds the needles, and lets it finish.
 */
static void scan_thread_secret(const char *const *env, struct scan *out)
{
	if (runtime_path == NULL || probe_path == NULL)
		skip();
	char preload[1024];
	int n = snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", runtime_path);
	assert_true(n > 0 && (size_t)n < sizeof(preload));
	const char *envp[16];
	size_t k = 0;
	envp[k++] = preload;
	envp[k++] = "PATH=/usr/bin:/bin";
	for (; env[0] != NULL && k < 15; env++)
		envp[k++] = env[0];
	envp[k] = NULL;
	int in[2], outp[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(outp), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(outp[1], STDOUT_FILENO);
		close(in[0]);
		close(in[1]);
		close(outp[0]);
		close(outp[1]);
		execve(probe_path,
		       (char *const[]){(char *)probe_path, (char *)"thread_secret", NULL},
		       (char *const *)envp);
		_exit(126);
	}
	close(in[0]);
	close(outp[1]);
	char ready[128];
	size_t have = 0;
	ssize_t r;
	while (have < sizeof(ready) - 1 && (r = read(outp[0], ready + have, 1)) == 1 &&
	       ready[have] != '\n')
		have++;
	ready[have] = '\0';
	void *stack_at = NULL, *tls_at = NULL;
	bool started = sscanf(ready, "ready %p %p", &stack_at, &tls_at) == 2;
	bool scanned = started && scan_process(pid, (uintptr_t)stack_at, (uintptr_t)tls_at, out);
	int scan_err = errno;
	close(in[1]); /* the worker returns */
	close(outp[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!started)
		print_error("thread_secret did not start: '%s', status %d\n", ready, status);
	assert_true(started);
	if (!scanned && (scan_err == EACCES || scan_err == EPERM))
		skip(); /* not allowed to read another process's memory */
	assert_true(scanned);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(out->bytes > 100000); /* the scan did read the process */
}

static void test_runtime_thread_secret_not_in_dump(void **state)
{
	(void)state;
	struct scan sc;
	const char *env[] = {"COFFER_ENCLAVE_SIZE=16777216", NULL};
	scan_thread_secret(env, &sc);
	if (sc.stack_hits != 0 || sc.tls_hits != 0)
		print_error("found under the runtime: stack needle %d, TLS needle %d\n",
			    sc.stack_hits, sc.tls_hits);
	assert_int_equal(sc.stack_hits, 0);
	assert_int_equal(sc.tls_hits, 0);
}

/* Without the runtime the same scan finds both where the probe put them. */
static void test_runtime_thread_secret_found_without_runtime(void **state)
{
	(void)state;
	struct scan sc;
	const char *env[] = {NULL}; /* no COFFER_ENCLAVE_SIZE: the runtime is inert */
	scan_thread_secret(env, &sc);
	assert_true(sc.stack_at);
	assert_true(sc.tls_at);
}

/* And with the runtime active but thread stacks left alone. */
static void test_runtime_thread_secret_found_when_disabled(void **state)
{
	(void)state;
	struct scan sc;
	const char *env[] = {"COFFER_ENCLAVE_SIZE=16777216", "COFFER_SECRET_THREAD_STACKS=0", NULL};
	scan_thread_secret(env, &sc);
	assert_true(sc.stack_at);
	assert_true(sc.tls_at);
}

static void test_runtime_inert_without_size(void **state)
{
	(void)state;
	char err[4096];
	const char *env[] = {NULL};
	int rc = run_probe("inert", env, true, err, sizeof(err));
	if (rc != 0)
		print_error("probe exited %d: %s\n", rc, err);
	assert_int_equal(rc, 0);
}

static void test_runtime_no_prefault(void **state)
{
	(void)state;
	char err[4096];
	const char *env[] = {"COFFER_ENCLAVE_SIZE=16777216", "COFFER_PREFAULT=0", NULL};
	assert_int_equal(run_probe("zero", env, false, err, sizeof(err)), 0);
	assert_int_equal(run_probe("fork", env, false, err, sizeof(err)), 0);
}

static void test_runtime_bad_size_exits_70(void **state)
{
	(void)state;
	static const char *const bad[] = {"abc", "", "0", "12x", "-5",
					  "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[4096], var[64];
		snprintf(var, sizeof(var), "COFFER_ENCLAVE_SIZE=%s", bad[i]);
		const char *env[] = {var, NULL};
		assert_int_equal(run_probe("basic", env, true, err, sizeof(err)), 70);
		assert_non_null(strstr(err, "coffer-soft: bad COFFER_ENCLAVE_SIZE"));
		const char *nl = strchr(err, '\n');
		assert_non_null(nl);
		assert_int_equal(nl[1], '\0'); /* exactly one line */
	}
}

static void test_runtime_no_memfd_secret_exits_70(void **state)
{
	(void)state;
	char err[4096];
	const char *env[] = {"COFFER_ENCLAVE_SIZE=16777216", NULL};
	int rc = run_probe_in("basic", env, true, true, err, sizeof(err));
	if (rc == 125)
		skip(); /* no seccomp filter on this architecture */
	assert_int_equal(rc, 70);
	assert_string_equal(err, "coffer-soft: memfd_secret failed: Function not implemented\n");
}

static void test_runtime_too_big_exits_70(void **state)
{
	(void)state;
	char err[4096];
	/* Far more than any machine: sizing or mapping the region fails. */
	const char *env[] = {"COFFER_ENCLAVE_SIZE=1152921504606846976", NULL};
	assert_int_equal(run_probe("basic", env, true, err, sizeof(err)), 70);
	assert_non_null(strstr(err, "coffer-soft: "));
}

int main(void)
{
	const struct CMUnitTest allocator[] = {
		cmocka_unit_test(test_init_rejects_bad_geometry),
		cmocka_unit_test(test_first_fit_in_order_until_full),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_hole_reuse_is_first_fit),
		cmocka_unit_test(test_release_coalesces_both_sides),
		cmocka_unit_test(test_partial_release),
		cmocka_unit_test(test_release_of_free_pages_is_idempotent),
		cmocka_unit_test(test_claim),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_full_table),
		cmocka_unit_test(test_random_against_model),
	};
	const struct CMUnitTest runtime[] = {
		cmocka_unit_test(test_runtime_basic),
		cmocka_unit_test(test_runtime_zero),
		cmocka_unit_test(test_runtime_partial),
		cmocka_unit_test(test_runtime_madvise),
		cmocka_unit_test(test_runtime_mremap),
		cmocka_unit_test(test_runtime_enomem),
		cmocka_unit_test(test_runtime_prot),
		cmocka_unit_test(test_runtime_fixed),
		cmocka_unit_test(test_runtime_passthrough),
		cmocka_unit_test(test_runtime_fork),
		cmocka_unit_test(test_runtime_threads),
		cmocka_unit_test(test_runtime_malloc),
		cmocka_unit_test(test_runtime_thread_churn),
		cmocka_unit_test(test_runtime_thread_detached),
		cmocka_unit_test(test_runtime_thread_user_stack),
		cmocka_unit_test(test_runtime_thread_size),
		cmocka_unit_test(test_runtime_thread_guard),
		cmocka_unit_test(test_runtime_thread_fork),
		cmocka_unit_test(test_runtime_thread_c11),
		cmocka_unit_test(test_runtime_thread_secret_not_in_dump),
		cmocka_unit_test(test_runtime_thread_secret_found_without_runtime),
		cmocka_unit_test(test_runtime_thread_secret_found_when_disabled),
		cmocka_unit_test(test_runtime_inert_without_size),
		cmocka_unit_test(test_runtime_no_prefault),
		cmocka_unit_test(test_runtime_bad_size_exits_70),
		cmocka_unit_test(test_runtime_no_memfd_secret_exits_70),
		cmocka_unit_test(test_runtime_too_big_exits_70),
	};
	int failed = cmocka_run_group_tests_name("ranges", allocator, NULL, NULL);
	failed += cmocka_run_group_tests_name("runtime", runtime, group_setup, NULL);
	return failed;
}
