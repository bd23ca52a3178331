/*
 * stack: the main thread's stack in secretmem, and fork() from it.
 *
 * A server's last request lingers in dead frames of its main stack (Redis
 * keeps the integer it last parsed there), so at start the stack, with
 * argv, the environment and the aux vector at its top, is copied into a
 * secret file mapped over the same addresses. The new stack has
 * RLIMIT_STACK bytes (at most 64 MiB) and cannot grow further; a PROT_NONE
 * page guards its end. COFFER_SECRET_STACK=0 leaves the stack alone.
 *
 * The secret stack is MADV_DONTFORK (a MAP_SHARED stack shared with a child
 * would be corrupted by both), so fork() is interposed: the live part of the
 * stack goes to a secret mapping the child inherits, glibc's fork() runs on
 * a private stack, and the child rebuilds its stack, secret again, at the
 * same addresses before returning. The same holds for a thread's secret
 * stack (threads.c) when a thread forks; the child then also gets the top of
 * the main stack back (argv, the environment and the aux vector, which
 * environ, getenv and execv read), though not the rest of the main stack,
 * whose thread does not exist in the child. fork + exec works; the child
 * still has no heap (preload.c). glibc-internal forks (daemon()) and raw
 * clone() are not seen: their children crash at once.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Parses a hex number at *p, advancing it. */
static uintptr_t parse_hex(const char **p, const char *end)
{
	uintptr_t v = 0;
	for (; *p < end; (*p)++) {
		char c = **p;
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			break;
		v = v << 4 | d;
	}
	return v;
}

/* Finds the mapping in /proc/self/maps that contains addr, without malloc. */
static bool find_mapping(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
	char buf[4096];
	size_t have = 0;
	bool found = false;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (!found) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		const char *line = buf, *end = buf + have, *nl;
		while (!found && (nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
			const char *p = line;
			uintptr_t a = parse_hex(&p, nl);
			uintptr_t b = 0;
			if (p < nl && *p == '-') {
				p++;
				b = parse_hex(&p, nl);
			}
			if (a <= addr && addr < b) {
				*lo = a;
				*hi = b;
				found = true;
			}
			line = nl + 1;
		}
		have = (size_t)(end - line);
		if (have == sizeof(buf))
			have = 0; /* a line longer than the buffer: not a stack line */
		memmove(buf, line, have);
	}
	(void)close(fd);
	return found;
}

enum {
	STACK_DEFAULT = 8 << 20, /* when RLIMIT_STACK is unlimited */
	STACK_MAX = 64 << 20,
	STACK_TMP = 64 << 10,    /* the stack the move and fork() run on */
};

static struct stack_move {
	bool secret;      /* the main stack is [new_lo, hi) in secretmem */
	uintptr_t lo, hi; /* the kernel's stack mapping */
	uintptr_t new_lo;
	size_t size;
	int fd;
	bool prefault;
} mv;
static ucontext_t ctx_main, ctx_tmp;
/* Private (inherited by fork children) and only ever holding our frames. */
static unsigned char stack_tmp[STACK_TMP] __attribute__((aligned(64)));

/* Maps a fresh secret file over the stack [lo, hi), MADV_DONTFORK. */
static int map_secret_stack(uintptr_t lo, uintptr_t hi)
{
	int fd = rt_secret_file(hi - lo);
	if (fd < 0)
		return -1;
	if (rt_sys_mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			0) == MAP_FAILED ||
	    rt_sys_madvise((void *)lo, hi - lo, MADV_DONTFORK) != 0) {
		int err = errno;
		(void)close(fd);
		errno = err;
		return -1;
	}
	(void)close(fd);
	return 0;
}

/*
 * Runs on stack_tmp: fills the secret file with the stack's bytes through
 * a temporary view, then maps it over the stack at the same addresses.
 * Returning resumes the main context (uc_link), now on secret memory.
 */
static void stack_move_on_tmp(void)
{
	unsigned char *t = rt_sys_mmap(NULL, mv.size, PROT_READ | PROT_WRITE, MAP_SHARED, mv.fd, 0);
	if (t == MAP_FAILED)
		rt_die("cannot map the secret stack", errno);
	size_t below = mv.lo - mv.new_lo; /* room the stack may still grow into */
	if (mv.prefault) {
		volatile unsigned char *v = t;
		for (size_t off = 0; off < below; off += rt_page_size)
			v[off] = 0;
	}
	memcpy(t + below, (const void *)mv.lo, mv.hi - mv.lo);
	if (rt_sys_mmap((void *)mv.new_lo, mv.size, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_FIXED, mv.fd, 0) == MAP_FAILED)
		rt_die("cannot move the stack into secret memory", errno);
	(void)rt_sys_munmap(t, mv.size);
}

/* Moves the main thread's stack into a secret file at the same addresses. */
static void secret_stack(void)
{
	const char *e = getenv("COFFER_SECRET_STACK");
	if ((e != NULL && strcmp(e, "0") == 0) || syscall(SYS_gettid) != getpid())
		return;
	uintptr_t lo, hi;
	if (!find_mapping((uintptr_t)__builtin_frame_address(0), &lo, &hi))
		rt_die("cannot find the main stack in /proc/self/maps", 0);
	struct rlimit rl;
	size_t size = STACK_DEFAULT;
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		size = rl.rlim_cur < STACK_MAX ? (size_t)rl.rlim_cur : STACK_MAX;
	size = (size + rt_page_size - 1) & ~(rt_page_size - 1);
	if (size < hi - lo)
		size = hi - lo;
	uintptr_t new_lo = hi - size;
	/* Claim the room below the stack (and a guard page) first. */
	uintptr_t guard = new_lo - rt_page_size;
	if (guard < lo) {
		int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE;
		void *r = rt_sys_mmap((void *)guard, lo - guard, PROT_NONE, flags, -1, 0);
		if (r != (void *)guard) {
			if (r != MAP_FAILED)
				(void)rt_sys_munmap(r, lo - guard);
			rt_die("no room below the main stack for a secret one",
			       r == MAP_FAILED ? errno : 0);
		}
	}
	mv.lo = lo;
	mv.hi = hi;
	mv.new_lo = new_lo;
	mv.size = size;
	mv.prefault = rt_prefault();
	mv.fd = rt_secret_file(size);
	if (mv.fd < 0)
		rt_die("cannot create the secret stack", errno);
	if (getcontext(&ctx_tmp) != 0)
		rt_die("getcontext failed", errno);
	ctx_tmp.uc_stack.ss_sp = stack_tmp;
	ctx_tmp.uc_stack.ss_size = sizeof(stack_tmp);
	ctx_tmp.uc_link = &ctx_main;
	makecontext(&ctx_tmp, stack_move_on_tmp, 0);
	if (swapcontext(&ctx_main, &ctx_tmp) != 0)
		rt_die("swapcontext failed", errno);
	(void)close(mv.fd);
	if (rt_sys_madvise((void *)new_lo, size, MADV_DONTFORK) != 0)
		rt_die("madvise(MADV_DONTFORK) of the secret stack failed", errno);
	explicit_bzero(stack_tmp, sizeof(stack_tmp));
	mv.secret = true;
}

/* --- fork() from a secret stack --- */

typedef pid_t (*fork_fn)(void);
static fork_fn real_fork;

/* ld.so's record of the main thread's initial stack pointer (at argc). */
extern void *__libc_stack_end;

/* Serialises forks from secret stacks: fk, the contexts and stack_tmp. */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;

static struct fork_state {
	uintptr_t stack_lo, stack_hi; /* the forking thread's secret stack */
	uintptr_t tls_lo;    /* a thread's static TLS pages: [tls_lo, stack_hi); 0 on the main stack */
	uintptr_t lo;        /* the live part: [lo, stack_hi) */
	uintptr_t top_lo;    /* 0, or the main stack's top to restore: [top_lo, mv.hi) */
	unsigned char *xfer; /* the live frames and the top, a secret mapping the child inherits */
	size_t xfer_len;
	pid_t pid;
	int err;
} fk;

/* A new secret file of len bytes and a writable view of it; the fd or -1. */
static int secret_view(size_t len, unsigned char **view)
{
	int fd = rt_secret_file(len);
	if (fd < 0)
		return -1;
	*view = rt_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*view == MAP_FAILED) {
		int err = errno;
		(void)close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * Maps the secret file fd over [lo, lo + len) in one step (whatever was
 * there is replaced atomically, so a thread may be using it), MADV_DONTFORK;
 * closes fd and unmaps view. 0 or -1.
 */
static int secret_install(int fd, unsigned char *view, uintptr_t lo, size_t len)
{
	int rc = 0;
	if (rt_sys_mmap((void *)lo, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
		    MAP_FAILED ||
	    rt_sys_madvise((void *)lo, len, MADV_DONTFORK) != 0)
		rc = -1;
	int err = errno;
	(void)rt_sys_munmap(view, len);
	(void)close(fd);
	errno = err;
	return rc;
}

/*
 * glibc's fork touches the forking thread's static TLS in the child (errno,
 * malloc's per-thread state) before anything of ours runs there, so for the
 * duration of the fork the TLS pages become ordinary private memory with
 * the same contents, which the child inherits. This is the one window in
 * which a thread's TLS (and outermost frames sharing its page) is readable.
 */
static int tls_to_ordinary(void)
{
	size_t n = fk.stack_hi - fk.tls_lo;
	unsigned char *y = rt_sys_mmap(NULL, n, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (y == MAP_FAILED)
		return -1;
	memcpy(y, (const void *)fk.tls_lo, n);
	if (rt_sys_mremap(y, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)fk.tls_lo) == MAP_FAILED) {
		int err = errno;
		(void)rt_sys_munmap(y, n);
		errno = err;
		return -1;
	}
	return 0;
}

/* After the fork, in the parent: the TLS pages go back into secretmem. */
static int tls_to_secret(void)
{
	size_t n = fk.stack_hi - fk.tls_lo;
	unsigned char *v;
	int fd = secret_view(n, &v);
	if (fd < 0)
		return -1;
	memcpy(v, (const void *)fk.tls_lo, n);
	return secret_install(fd, v, fk.tls_lo, n);
}

/*
 * Runs on stack_tmp, which the child inherits (the secret stacks are
 * MADV_DONTFORK and must not be shared with it). In the child, rebuilds the
 * forking thread's stack at the same addresses in a secret file of its own
 * (frames from the copy, TLS pages as glibc's fork left them), and the top
 * of the main stack when a thread forked.
 */
static void fork_on_tmp(void)
{
	/* The forking thread's frames are frozen now: what the child gets is exact. */
	uintptr_t frames_hi = fk.tls_lo != 0 ? fk.tls_lo : fk.stack_hi;
	size_t live = fk.stack_hi - fk.lo;
	memcpy(fk.xfer, (const void *)fk.lo, live);
	if (fk.top_lo != 0)
		memcpy(fk.xfer + live, (const void *)fk.top_lo, mv.hi - fk.top_lo);
	if (fk.tls_lo != 0 && tls_to_ordinary() != 0) {
		fk.pid = -1;
		fk.err = errno;
		return;
	}
	fk.pid = real_fork();
	fk.err = errno;
	if (fk.pid != 0) {
		if (fk.tls_lo != 0 && tls_to_secret() != 0)
			rt_die("cannot move thread-local storage back into secret memory", errno);
		return;
	}
	unsigned char *v;
	size_t len = fk.stack_hi - fk.stack_lo;
	int fd = secret_view(len, &v);
	if (fd < 0)
		rt_die("cannot give the fork child a secret stack", errno);
	memcpy(v + (fk.lo - fk.stack_lo), fk.xfer, frames_hi - fk.lo);
	if (fk.tls_lo != 0)
		memcpy(v + (fk.tls_lo - fk.stack_lo), (const void *)fk.tls_lo,
		       fk.stack_hi - fk.tls_lo);
	if (secret_install(fd, v, fk.stack_lo, len) != 0)
		rt_die("cannot give the fork child a secret stack", errno);
	if (fk.top_lo != 0) {
		if (map_secret_stack(mv.new_lo, mv.hi) != 0)
			rt_die("cannot give the fork child the main stack's top", errno);
		memcpy((void *)fk.top_lo, fk.xfer + live, mv.hi - fk.top_lo);
	}
}

/*
 * fork() called on a secret stack: the child would have no stack at all.
 * The live part of the stack goes to a secret mapping the child inherits,
 * glibc's fork runs on a private stack, and the child rebuilds its stack
 * (secret again) before returning. The child still has no heap.
 */
RT_EXPORT pid_t fork(void)
{
	volatile char here = 0;
	uintptr_t sp = (uintptr_t)&here;
	if (real_fork == NULL) /* inert, or called before our constructor */
		real_fork = (fork_fn)dlsym(RTLD_NEXT, "fork");
	if (real_fork == NULL) {
		errno = ENOSYS;
		return -1;
	}
	uintptr_t lo, hi, tls_lo = 0;
	bool on_main = mv.secret && sp >= mv.new_lo && sp < mv.hi;
	if (on_main) {
		lo = mv.new_lo;
		hi = mv.hi;
	} else if (!rt_thread_stack(sp, &lo, &hi, &tls_lo)) {
		return real_fork();
	}
	(void)pthread_mutex_lock(&fork_lock);
	fk.stack_lo = lo;
	fk.stack_hi = hi;
	fk.tls_lo = tls_lo;
	/* Everything from a page below this frame up is live (the TLS is above the frames). */
	fk.lo = (sp & ~(uintptr_t)(rt_page_size - 1)) - rt_page_size;
	if (fk.lo < lo)
		fk.lo = lo;
	fk.top_lo = 0;
	if (!on_main && mv.secret) {
		uintptr_t t = (uintptr_t)__libc_stack_end & ~(uintptr_t)(rt_page_size - 1);
		if (t >= mv.new_lo && t < mv.hi)
			fk.top_lo = t;
	}
	fk.xfer_len = (hi - fk.lo) + (fk.top_lo != 0 ? mv.hi - fk.top_lo : 0);
	pid_t pid = -1;
	int err = 0;
	int fd = rt_secret_file(fk.xfer_len);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	fk.xfer = rt_sys_mmap(NULL, fk.xfer_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	err = errno;
	(void)close(fd);
	if (fk.xfer == MAP_FAILED)
		goto out;
	if (getcontext(&ctx_tmp) != 0)
		rt_die("getcontext failed", errno);
	ctx_tmp.uc_stack.ss_sp = stack_tmp;
	ctx_tmp.uc_stack.ss_size = sizeof(stack_tmp);
	ctx_tmp.uc_link = &ctx_main;
	makecontext(&ctx_tmp, fork_on_tmp, 0);
	if (swapcontext(&ctx_main, &ctx_tmp) != 0)
		rt_die("swapcontext failed", errno);
	/* Parent and child both resume here. */
	pid = fk.pid;
	err = fk.err;
	(void)rt_sys_munmap(fk.xfer, fk.xfer_len);
	explicit_bzero(stack_tmp, sizeof(stack_tmp));
out:
	if (pid == 0)
		(void)pthread_mutex_init(&fork_lock, NULL); /* the child's only thread */
	else
		(void)pthread_mutex_unlock(&fork_lock);
	errno = err;
	return pid;
}

void rt_stack_init(void)
{
	real_fork = (fork_fn)dlsym(RTLD_NEXT, "fork");
	if (real_fork == NULL)
		rt_die("cannot find fork()", 0);
	secret_stack();
}
