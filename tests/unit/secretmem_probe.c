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
 *
 * thread_secret is driven from outside: a worker thread writes a needle
 * (thread_needle below, built at run time so that the binary does not hold
 * it) into an array on its stack and into a thread-local array, prints
 * "ready STACK-ADDRESS TLS-ADDRESS\n" on stdout and waits for stdin to
 * close, while test_secretmem.c searches /proc/PID/mem for the needle.
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
#include <threads.h>
#include <time.h>
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

/* --- thread stacks --- */

/*
 * The number of secretmem files mapped, counted by inode: the arena is one
 * (split into many lines of /proc/self/maps by its protections), the main
 * stack one, and each secret thread stack one.
 */
static int secret_files(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long seen[256];
	int n = 0;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long inode;
		if (strstr(line, " /secretmem (deleted)") == NULL ||
		    sscanf(line, "%*s %*s %*s %*s %lu", &inode) != 1)
			continue;
		bool known = false;
		for (int i = 0; i < n && !known; i++)
			known = seen[i] == inode;
		if (!known && n < (int)(sizeof(seen) / sizeof(seen[0])))
			seen[n++] = inode;
	}
	fclose(f);
	return n;
}

/* A field of /proc/self/status in kB ("VmSize"), or -1. */
static long status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Whether the calling thread runs on a secret stack. */
static bool stack_is_secret(void)
{
	volatile char here = 0;
	return in_secretmem((const void *)&here);
}

static _Thread_local char tls_needle[64];

static void *secret_worker(void *arg)
{
	(void)arg;
	char needle[64];
	char line[128];
	/* Two words and a number, so that the whole needle is never in .rodata. */
	snprintf(needle, sizeof(needle), "%s%s-%u", "CFTHREAD", "STACKNEEDLE", 7u * 104729u);
	snprintf(tls_needle, sizeof(tls_needle), "%s%s-%u", "CFTHREAD", "TLSNEEDLE", 7u * 104729u);
	int n = snprintf(line, sizeof(line), "ready %p %p\n", (void *)needle, (void *)tls_needle);
	if (write(STDOUT_FILENO, line, (size_t)n) != n)
		return (void *)1;
	char b;
	while (read(STDIN_FILENO, &b, 1) > 0)
		;
	__asm__ volatile("" : : "r"(needle) : "memory"); /* keep the array alive */
	return NULL;
}

static int scenario_thread_secret(void)
{
	pthread_t t;
	void *rc = (void *)1;
	CHECK(pthread_create(&t, NULL, secret_worker, NULL) == 0);
	CHECK(pthread_join(t, &rc) == 0 && rc == NULL);
	return 0;
}

static void *stack_check_worker(void *arg)
{
	uintptr_t tag = (uintptr_t)arg;
	return stack_is_secret() ? (void *)(tag + 1) : (void *)0;
}

/* Joins t with one of the four ways, by k; false on failure. */
static bool join_some_way(pthread_t t, unsigned k, void **ret)
{
	struct timespec ts;
	switch (k % 4) {
	case 0:
		return pthread_join(t, ret) == 0;
	case 1: {
		int rc;
		while ((rc = pthread_tryjoin_np(t, ret)) == EBUSY)
			sched_yield();
		return rc == 0;
	}
	case 2:
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 30;
		return pthread_timedjoin_np(t, ret, &ts) == 0;
	default:
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 30;
		return pthread_clockjoin_np(t, ret, CLOCK_MONOTONIC, &ts) == 0;
	}
}

/* 1000 short threads, joined in every way, some with a smaller stack. */
static int scenario_thread_churn(void)
{
	pthread_attr_t small;
	CHECK(pthread_attr_init(&small) == 0);
	CHECK(pthread_attr_setstacksize(&small, 256u << 10) == 0);
	long lck0 = 0;
	int files0 = 0;
	for (unsigned i = 0; i < 1000; i++) {
		pthread_t t;
		void *ret = NULL;
		CHECK(pthread_create(&t, i % 3 == 0 ? &small : NULL, stack_check_worker,
				     (void *)(uintptr_t)i) == 0);
		CHECK(join_some_way(t, i, &ret));
		CHECK(ret == (void *)(uintptr_t)(i + 1)); /* the thread ran on a secret stack */
		if (i == 20) {
			lck0 = status_kb("VmLck");
			files0 = secret_files();
		}
	}
	long lck1 = status_kb("VmLck");
	int files1 = secret_files();
	CHECK(lck0 > 0 && lck1 > 0 && files0 > 0);
	/* Stacks are reused or unmapped, not piled up: 980 more threads of 8 MiB
	 * would be 7.6 GiB more locked (secret) memory and 980 more files. */
	CHECK(lck1 - lck0 <= 48 * 1024);
	CHECK(files1 - files0 <= 8);
	pthread_attr_destroy(&small);
	return 0;
}

static int detached_running;

static void *detached_worker(void *arg)
{
	if (arg != NULL)
		CHECK(pthread_detach(pthread_self()) == 0);
	CHECK(stack_is_secret());
	__atomic_sub_fetch(&detached_running, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* 1000 detached threads (three ways), at most 16 at a time. */
static int scenario_thread_detached(void)
{
	pthread_attr_t det;
	CHECK(pthread_attr_init(&det) == 0);
	CHECK(pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED) == 0);
	long lck0 = status_kb("VmLck");
	int files0 = secret_files();
	for (unsigned i = 0; i < 1000; i++) {
		while (__atomic_load_n(&detached_running, __ATOMIC_SEQ_CST) >= 16)
			usleep(100);
		__atomic_add_fetch(&detached_running, 1, __ATOMIC_SEQ_CST);
		pthread_t t;
		switch (i % 3) {
		case 0:
			CHECK(pthread_create(&t, &det, detached_worker, NULL) == 0);
			break;
		case 1:
			CHECK(pthread_create(&t, NULL, detached_worker, NULL) == 0);
			CHECK(pthread_detach(t) == 0);
			break;
		default: /* detaches itself */
			CHECK(pthread_create(&t, NULL, detached_worker, &det) == 0);
			break;
		}
	}
	while (__atomic_load_n(&detached_running, __ATOMIC_SEQ_CST) > 0)
		usleep(1000);
	usleep(100 * 1000); /* the kernel clears the tids as the threads exit */
	/* The next creation frees what the finished threads left. */
	pthread_t t;
	void *ret = NULL;
	CHECK(pthread_create(&t, NULL, stack_check_worker, NULL) == 0);
	CHECK(pthread_join(t, &ret) == 0 && ret == (void *)1);
	long lck1 = status_kb("VmLck");
	int files1 = secret_files();
	CHECK(lck0 > 0 && lck1 > 0);
	/* 16 running and 40 MiB cached at most; leaking would be 1000 stacks
	 * (VmSize is no measure: glibc malloc maps an arena per busy thread). */
	CHECK(lck1 - lck0 <= 200 * 1024);
	CHECK(files1 - files0 <= 24);
	pthread_attr_destroy(&det);
	return 0;
}

struct user_stack {
	unsigned char *lo;
	size_t len;
};

static void *user_stack_worker(void *arg)
{
	const struct user_stack *u = arg;
	volatile char here = 0;
	uintptr_t h = (uintptr_t)&here;
	bool ok = h >= (uintptr_t)u->lo && h < (uintptr_t)u->lo + u->len &&
		  !in_secretmem((const void *)&here);
	return ok ? (void *)1 : NULL;
}

/* A caller-provided stack is used as given and left to the caller. */
static int scenario_thread_user_stack(void)
{
	struct user_stack u = {.len = 1u << 20};
	/* Shared memory is not served from the arena. */
	u.lo = mmap(NULL, u.len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(u.lo != MAP_FAILED);
	pthread_attr_t a;
	CHECK(pthread_attr_init(&a) == 0);
	CHECK(pthread_attr_setstack(&a, u.lo, u.len) == 0);
	for (int i = 0; i < 3; i++) {
		pthread_t t;
		void *ret = NULL;
		CHECK(pthread_create(&t, &a, user_stack_worker, &u) == 0);
		CHECK(pthread_join(t, &ret) == 0 && ret == (void *)1);
		u.lo[0] = 1; /* still mapped */
		CHECK(strcmp(perms(u.lo), "rw-s") == 0 && !in_secretmem(u.lo));
	}
	pthread_attr_destroy(&a);
	CHECK(munmap(u.lo, u.len) == 0);
	return 0;
}

/* Uses about depth * 64 KiB of stack. */
static __attribute__((noinline)) unsigned deep(unsigned depth)
{
	volatile unsigned char frame[64 << 10];
	frame[0] = (unsigned char)depth;
	frame[sizeof(frame) - 1] = (unsigned char)depth;
	unsigned below = depth > 1 ? deep(depth - 1) : 0;
	return below + frame[0] + frame[sizeof(frame) - 1];
}

struct size_check {
	size_t want;    /* at least this much stack */
	unsigned depth; /* recursion to run, 64 KiB each */
};

static void *size_worker(void *arg)
{
	const struct size_check *c = arg;
	pthread_attr_t a;
	void *lo = NULL;
	size_t size = 0;
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return NULL;
	int rc = pthread_attr_getstack(&a, &lo, &size);
	pthread_attr_destroy(&a);
	if (rc != 0 || size < c->want || !stack_is_secret() || !in_secretmem(lo))
		return NULL;
	return deep(c->depth) != 0 ? (void *)1 : NULL;
}

/* The stack is as large as asked (or glibc's default) and guarded. */
static int scenario_thread_size(void)
{
	pthread_attr_t a;
	pthread_t t;
	void *ret = NULL;
	/* Asked: 3 MiB and a bit; 2.8 MiB of frames must fit. */
	struct size_check asked = {.want = (3u << 20) + 123, .depth = 45};
	CHECK(pthread_attr_init(&a) == 0);
	CHECK(pthread_attr_setstacksize(&a, asked.want) == 0);
	CHECK(pthread_attr_setguardsize(&a, 64u << 10) == 0);
	CHECK(pthread_create(&t, &a, size_worker, &asked) == 0);
	CHECK(pthread_join(t, &ret) == 0 && ret == (void *)1);
	pthread_attr_destroy(&a);
	/* Not asked: glibc's default. */
	CHECK(pthread_getattr_default_np(&a) == 0);
	struct size_check dflt = {.depth = 16};
	CHECK(pthread_attr_getstacksize(&a, &dflt.want) == 0 && dflt.want >= (1u << 20));
	pthread_attr_destroy(&a);
	CHECK(pthread_create(&t, NULL, size_worker, &dflt) == 0);
	CHECK(pthread_join(t, &ret) == 0 && ret == (void *)1);
	return 0;
}

static void *guard_worker(void *arg)
{
	(void)arg;
	pthread_attr_t a;
	void *lo = NULL;
	size_t size = 0;
	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return NULL;
	(void)pthread_attr_getstack(&a, &lo, &size);
	pthread_attr_destroy(&a);
	/* The page below the stack is inaccessible: a guard. */
	return strcmp(perms((const unsigned char *)lo - 1), "---p") == 0 ? (void *)1 : NULL;
}

static int scenario_thread_guard(void)
{
	pthread_t t;
	void *ret = NULL;
	CHECK(pthread_create(&t, NULL, guard_worker, NULL) == 0);
	CHECK(pthread_join(t, &ret) == 0 && ret == (void *)1);
	return 0;
}

/* fork() from a thread on a secret stack, then exec from the child. */
static void *fork_worker(void *arg)
{
	(void)arg;
	char canary[64];
	memset(canary, 'q', sizeof(canary));
	pid_t pid = fork();
	if (pid < 0)
		return NULL;
	if (pid == 0) {
		/* The stack is secret again, with its contents; the environment (at
		 * the top of the main stack) is back too. */
		bool ok = stack_is_secret() && all_bytes((unsigned char *)canary, sizeof(canary), 'q') &&
			  getenv("COFFER_ENCLAVE_SIZE") != NULL;
		if (!ok)
			_exit(1);
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return NULL;
	return all_bytes((unsigned char *)canary, sizeof(canary), 'q') && stack_is_secret()
		       ? (void *)1
		       : NULL;
}

static int scenario_thread_fork(void)
{
	for (int i = 0; i < 3; i++) {
		pthread_t t;
		void *ret = NULL;
		CHECK(pthread_create(&t, NULL, fork_worker, NULL) == 0);
		CHECK(pthread_join(t, &ret) == 0 && ret == (void *)1);
	}
	/* Threads still work in the parent after forks. */
	return scenario_threads();
}

static int c11_worker(void *arg)
{
	return stack_is_secret() ? (int)(uintptr_t)arg : -1;
}

static int c11_detached_running;

static int c11_detached(void *arg)
{
	(void)arg;
	int ok = stack_is_secret();
	__atomic_sub_fetch(&c11_detached_running, 1, __ATOMIC_SEQ_CST);
	return ok;
}

/* C11 threads: glibc's thrd_create does not call pthread_create by name. */
static int scenario_thread_c11(void)
{
	int files0 = secret_files();
	for (int i = 0; i < 200; i++) {
		thrd_t t;
		int res = 0;
		CHECK(thrd_create(&t, c11_worker, (void *)(uintptr_t)(i + 7)) == thrd_success);
		CHECK(thrd_join(t, &res) == thrd_success && res == i + 7);
	}
	for (int i = 0; i < 200; i++) {
		thrd_t t;
		__atomic_add_fetch(&c11_detached_running, 1, __ATOMIC_SEQ_CST);
		CHECK(thrd_create(&t, c11_detached, NULL) == thrd_success);
		CHECK(thrd_detach(t) == thrd_success);
		while (__atomic_load_n(&c11_detached_running, __ATOMIC_SEQ_CST) >= 8)
			usleep(100);
	}
	while (__atomic_load_n(&c11_detached_running, __ATOMIC_SEQ_CST) > 0)
		usleep(1000);
	CHECK(secret_files() - files0 <= 24);
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
	{"thread_secret", scenario_thread_secret},
	{"thread_churn", scenario_thread_churn},
	{"thread_detached", scenario_thread_detached},
	{"thread_user_stack", scenario_thread_user_stack},
	{"thread_size", scenario_thread_size},
	{"thread_guard", scenario_thread_guard},
	{"thread_fork", scenario_thread_fork},
	{"thread_c11", scenario_thread_c11},
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
