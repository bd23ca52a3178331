/*
 * secretmem_probe: runs one scenario against libcoffer-soft.so from inside
 * a process that preloads it; test_secretmem.c starts it with the runtime
 * in LD_PRELOAD (and COFFER_ENCLAVE_SIZE) and checks the exit status.
 *
 *   secretmem_probe SCENARIO
 *
 * Exit 0 when every check of the scenario holds, 1 with a line on stderr
 * naming the first that does not, 2 for an unknown scenario. Built without
 * sanitizers: ASan's own mmap and malloc would bypass the runtime.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096u

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "secretmem_probe: %s:%d: check failed: %s (errno %d)\n", \
				__FILE__, __LINE__, #cond, errno);                          \
			exit(1);                                                            \
		}                                                                           \
	} while (0)

/* Copies the /proc/self/maps line of the mapping holding p into line. */
static bool maps_line(const void *p, char *line, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	bool found = false;
	if (f == NULL)
		return false;
	while (!found && fgets(line, (int)len, f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= (uintptr_t)p &&
		    (uintptr_t)p < hi)
			found = true;
	}
	fclose(f);
	return found;
}

static bool in_secretmem(const void *p)
{
	char line[512];
	return maps_line(p, line, sizeof(line)) && strstr(line, " /secretmem (deleted)") != NULL;
}

/* The four permission characters of p's mapping ("rw-s"), or "none". */
static const char *perms(const void *p)
{
	static char out[5];
	char line[512];
	if (!maps_line(p, line, sizeof(line)))
		return "none";
	const char *sp = strchr(line, ' ');
	if (sp == NULL)
		return "none";
	memcpy(out, sp + 1, 4);
	out[4] = '\0';
	return out;
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static unsigned char *map_anon(size_t n, int prot)
{
	return mmap(NULL, n, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static int scenario_inert(void)
{
	unsigned char *p = map_anon(PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	CHECK(!in_secretmem(p));
	CHECK(strcmp(perms(p), "rw-p") == 0);
	CHECK(prctl(PR_GET_DUMPABLE) == 1);
	int local = 0;
	CHECK(!in_secretmem(&local));
	CHECK(munmap(p, PAGE) == 0);
	/* fork() is interposed even here: it must still work as usual. */
	unsigned char *h = malloc(100);
	CHECK(h != NULL);
	h[0] = 5;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(h[0] == 5 && map_anon(PAGE, PROT_READ) != MAP_FAILED ? 0 : 1);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(h);
	return 0;
}

static int scenario_basic(void)
{
	unsigned char *p = map_anon(3 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	CHECK(in_secretmem(p));
	CHECK(strcmp(perms(p), "rw-s") == 0);
	CHECK(all_bytes(p, 3 * PAGE, 0));
	memset(p, 0x5a, 3 * PAGE);
	/* Not even this process can read it through /proc. */
	int fd = open("/proc/self/mem", O_RDONLY);
	CHECK(fd >= 0);
	unsigned char b[16];
	CHECK(pread(fd, b, sizeof(b), (off_t)(uintptr_t)p) < 0);
	close(fd);
	CHECK(prctl(PR_GET_DUMPABLE) == 0);
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0);
	/* The main stack, with argv and the environment, is secret too. */
	int local = 0;
	CHECK(in_secretmem(&local));
	CHECK(getenv("COFFER_ENCLAVE_SIZE") != NULL);
	CHECK(munmap(p, 3 * PAGE) == 0);
	return 0;
}

static int scenario_zero(void)
{
	unsigned char *p = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	memset(p, 0xa5, 16 * PAGE);
	CHECK(munmap(p, 16 * PAGE) == 0);
	CHECK(strcmp(perms(p), "---s") == 0); /* freed pages fault, as unmapped ones do */
	unsigned char *q = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(q == p); /* first fit: the same pages again */
	CHECK(all_bytes(q, 16 * PAGE, 0));
	CHECK(munmap(q, 16 * PAGE) == 0);
	/* munmap of pages already free is not an error. */
	CHECK(munmap(q, 16 * PAGE) == 0);
	return 0;
}

static int scenario_partial(void)
{
	unsigned char *p = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	for (unsigned i = 0; i < 8; i++)
		memset(p + i * PAGE, 'a' + (int)i, PAGE);
	CHECK(munmap(p + 2 * PAGE, 2 * PAGE) == 0);
	CHECK(munmap(p, PAGE) == 0);
	CHECK(strcmp(perms(p + 2 * PAGE), "---s") == 0);
	CHECK(all_bytes(p + PAGE, PAGE, 'b'));
	for (unsigned i = 4; i < 8; i++)
		CHECK(all_bytes(p + i * PAGE, PAGE, (unsigned char)('a' + i)));
	/* Two pages fit in the second hole, not in the first. */
	unsigned char *q = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(q == p + 2 * PAGE);
	CHECK(all_bytes(q, 2 * PAGE, 0));
	/* An unaligned length is rounded up to pages. */
	unsigned char *r = map_anon(100, PROT_READ | PROT_WRITE);
	CHECK(r == p);
	CHECK(munmap(p, 8 * PAGE) == 0);
	return 0;
}

static int scenario_madvise(void)
{
	unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	memset(p, 0x77, 4 * PAGE);
	CHECK(madvise(p + PAGE, PAGE, MADV_DONTNEED) == 0);
	CHECK(all_bytes(p + PAGE, PAGE, 0));
	CHECK(all_bytes(p, PAGE, 0x77));
	CHECK(all_bytes(p + 2 * PAGE, 2 * PAGE, 0x77));
	CHECK(madvise(p, 4 * PAGE, MADV_FREE) == 0);
	CHECK(madvise(p, 4 * PAGE, MADV_DODUMP) == 0);
	CHECK(madvise(p, 4 * PAGE, MADV_DOFORK) == 0);
	CHECK(madvise(p, 4 * PAGE, MADV_HUGEPAGE) == 0);
	errno = 0;
	CHECK(madvise(p, 4 * PAGE, 999) == -1 && errno == EINVAL);
	/* Zeroed even where the program made the pages inaccessible. */
	CHECK(mprotect(p + 2 * PAGE, PAGE, PROT_NONE) == 0);
	CHECK(madvise(p + 2 * PAGE, PAGE, MADV_DONTNEED) == 0);
	CHECK(mprotect(p + 2 * PAGE, PAGE, PROT_READ) == 0);
	CHECK(all_bytes(p + 2 * PAGE, PAGE, 0));
	CHECK(in_secretmem(p)); /* DODUMP/DOFORK did not undo anything */
	CHECK(munmap(p, 4 * PAGE) == 0);
	return 0;
}

static int scenario_mremap(void)
{
	unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	memset(p, 0x11, 2 * PAGE);
	CHECK(mremap(p, 2 * PAGE, PAGE, 0) == p);
	CHECK(strcmp(perms(p + PAGE), "---s") == 0);
	/* The next pages are free: grows in place, the new part reads zero. */
	CHECK(mremap(p, PAGE, 4 * PAGE, 0) == p);
	CHECK(all_bytes(p, PAGE, 0x11));
	CHECK(all_bytes(p + PAGE, 3 * PAGE, 0));
	unsigned char *block = map_anon(PAGE, PROT_READ | PROT_WRITE);
	CHECK(block == p + 4 * PAGE);
	errno = 0;
	CHECK(mremap(p, 4 * PAGE, 8 * PAGE, 0) == MAP_FAILED && errno == ENOMEM);
	memset(p, 0x22, 4 * PAGE);
	unsigned char *q = mremap(p, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	CHECK(q != MAP_FAILED && q != p);
	CHECK(in_secretmem(q));
	CHECK(all_bytes(q, 4 * PAGE, 0x22));
	CHECK(all_bytes(q + 4 * PAGE, 4 * PAGE, 0));
	CHECK(strcmp(perms(p), "---s") == 0); /* the old pages were freed */
	/* Moving to a fixed address is not emulated. */
	errno = 0;
	CHECK(mremap(q, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED &&
	      errno == EINVAL);
	CHECK(munmap(q, 8 * PAGE) == 0 && munmap(block, PAGE) == 0);
	return 0;
}

/* Run with an 8 MiB enclave. */
static int scenario_enomem(void)
{
	errno = 0;
	CHECK(map_anon(16u << 20, PROT_READ | PROT_WRITE) == MAP_FAILED && errno == ENOMEM);
	size_t total = 0;
	unsigned char *p;
	while ((p = map_anon(256 * PAGE, PROT_READ | PROT_WRITE)) != MAP_FAILED) {
		CHECK(in_secretmem(p));
		total += 256 * PAGE;
		CHECK(total <= 8u << 20);
	}
	CHECK(errno == ENOMEM);
	CHECK(total > (4u << 20)); /* the arena was usable up to near its size */
	return 0;
}

static int scenario_prot(void)
{
	unsigned char *p = map_anon(2 * PAGE, PROT_READ);
	CHECK(p != MAP_FAILED);
	CHECK(strcmp(perms(p), "r--s") == 0);
	CHECK(mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE) == 0);
	p[0] = 1;
	unsigned char *g = map_anon(PAGE, PROT_NONE);
	CHECK(g != MAP_FAILED && strcmp(perms(g), "---s") == 0);
	CHECK(munmap(p, 2 * PAGE) == 0 && munmap(g, PAGE) == 0);
	return 0;
}

static int scenario_fixed(void)
{
	unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	memset(p, 0x33, 4 * PAGE);
	unsigned char *q = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK(q == p + PAGE);
	CHECK(all_bytes(q, PAGE, 0));
	CHECK(all_bytes(p, PAGE, 0x33) && all_bytes(p + 2 * PAGE, 2 * PAGE, 0x33));
	errno = 0;
	CHECK(mmap(p, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED &&
	      errno == EEXIST);
	/* A file must not be mapped over secret pages. */
	int fd = open("/proc/self/exe", O_RDONLY);
	CHECK(fd >= 0);
	errno = 0;
	CHECK(mmap(p, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED &&
	      errno == EINVAL);
	close(fd);
	/* Free arena pages can be taken at a fixed address. */
	CHECK(munmap(p + 2 * PAGE, 2 * PAGE) == 0);
	CHECK(mmap(p + 2 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == p + 2 * PAGE);
	CHECK(all_bytes(p + 2 * PAGE, 2 * PAGE, 0));
	/* Outside the arena MAP_FIXED is the kernel's. */
	unsigned char *o = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);
	CHECK(o != MAP_FAILED && !in_secretmem(o));
	CHECK(mmap(o, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == o);
	CHECK(!in_secretmem(o));
	CHECK(munmap(o, 2 * PAGE) == 0 && munmap(p, 4 * PAGE) == 0);
	return 0;
}

static int scenario_passthrough(void)
{
	unsigned char *s =
		mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(s != MAP_FAILED && !in_secretmem(s));
	int fd = open("/proc/self/exe", O_RDONLY);
	CHECK(fd >= 0);
	unsigned char *f = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(f != MAP_FAILED && !in_secretmem(f));
	CHECK(memcmp(f + 1, "ELF", 3) == 0);
	close(fd);
	CHECK(munmap(s, PAGE) == 0 && munmap(f, PAGE) == 0);
	return 0;
}

static int scenario_fork(void)
{
	char canary[64];
	memset(canary, 'k', sizeof(canary));
	unsigned char *p = map_anon(PAGE, PROT_READ | PROT_WRITE);
	CHECK(p != MAP_FAILED);
	p[0] = 9;
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The child has no arena (fail closed) but a stack, secret again. */
		int local = 0;
		void *q = map_anon(PAGE, PROT_READ | PROT_WRITE);
		bool ok = q == MAP_FAILED && errno == ENOMEM && in_secretmem(&local) &&
			  all_bytes((unsigned char *)canary, sizeof(canary), 'k');
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(all_bytes((unsigned char *)canary, sizeof(canary), 'k'));
	CHECK(p[0] == 9 && in_secretmem(p));
	/* fork + exec works. */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return 0;
}

static void *churn(void *arg)
{
	unsigned tag = (unsigned)(uintptr_t)arg;
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(1 + (round * 7 + (int)tag) % 5) * PAGE;
		unsigned char *p = map_anon(n, PROT_READ | PROT_WRITE);
		if (p == MAP_FAILED || !all_bytes(p, n, 0))
			return (void *)1;
		memset(p, (int)tag, n);
		sched_yield();
		if (!all_bytes(p, n, (unsigned char)tag) || munmap(p, n) != 0)
			return (void *)1;
	}
	return NULL;
}

static int scenario_threads(void)
{
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0);
	for (int i = 0; i < 4; i++) {
		void *rc = (void *)1;
		CHECK(pthread_join(t[i], &rc) == 0);
		CHECK(rc == NULL);
	}
	return 0;
}

/* Run with mimalloc preloaded after the runtime. */
static int scenario_malloc(void)
{
	unsigned char *big = malloc(10u << 20);
	unsigned char *small = malloc(100);
	CHECK(big != NULL && small != NULL);
	CHECK(in_secretmem(big) && in_secretmem(small));
	memset(big, 1, 10u << 20);
	unsigned char *z = calloc(1u << 20, 4);
	CHECK(z != NULL && in_secretmem(z) && all_bytes(z, 4u << 20, 0));
	big = realloc(big, 20u << 20);
	CHECK(big != NULL && in_secretmem(big) && all_bytes(big, 10u << 20, 1));
	free(big);
	free(small);
	free(z);
	/* More than the enclave: the allocator reports out of memory. */
	/* Through a volatile, or the compiler may elide the malloc and assume success. */
	void *volatile huge = malloc(256u << 20);
	CHECK(huge == NULL);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(void);
} scenarios[] = {
	{"inert", scenario_inert},     {"basic", scenario_basic},
	{"zero", scenario_zero},       {"partial", scenario_partial},
	{"madvise", scenario_madvise}, {"mremap", scenario_mremap},
	{"enomem", scenario_enomem},   {"prot", scenario_prot},
	{"fixed", scenario_fixed},     {"passthrough", scenario_passthrough},
	{"fork", scenario_fork},       {"threads", scenario_threads},
	{"malloc", scenario_malloc},
};

int main(int argc, char **argv)
{
	if (argc == 2)
		for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
			if (strcmp(argv[1], scenarios[i].name) == 0)
				return scenarios[i].run();
	fprintf(stderr, "usage: secretmem_probe SCENARIO\n");
	return 2;
}
