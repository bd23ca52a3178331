/*
 * libcoffer-soft.so: the soft TEE's runtime for unmodified programs.
 *
 * coffer-launch preloads it, first, together with Debian's mimalloc:
 *
 *   LD_PRELOAD=libcoffer-soft.so:libmimalloc.so.2 COFFER_ENCLAVE_SIZE=N prog
 *
 * At load it creates one memfd_secret(2) region of N bytes, the arena (the
 * EPC-size analogue): pages removed from the kernel's direct map, which no
 * reader of /proc/PID/mem, ptrace or gcore can see, even as root. It then
 * serves every anonymous private mmap() from the arena, so whatever the
 * program's allocators (mimalloc, which replaces malloc; jemalloc, which
 * Redis links) get from the kernel is secret memory. glibc malloc cannot be
 * redirected this way, hence mimalloc in LD_PRELOAD.
 *
 * Environment:
 *   COFFER_ENCLAVE_SIZE  arena size in bytes (decimal). Unset: the library
 *                        does nothing at all, so it is inert outside the
 *                        launcher. Set but unusable: exit 70.
 *   COFFER_PREFAULT=0    skip touching every page at start. The first touch
 *                        of a secretmem page costs 9-15x an ordinary one
 *                        (it is unmapped from the direct map), so by default
 *                        the whole cost is paid before main().
 *
 * Emulated semantics inside the arena (the arena is a MAP_SHARED mapping of
 * one file, so the kernel's private-anonymous behaviour has to be rebuilt):
 *   - mmap(MAP_PRIVATE|MAP_ANONYMOUS): page-granular first fit from the
 *     arena (ranges.c), honouring the prot flags with a real mprotect;
 *     a hint inside the arena is honoured when free; requests of 2 MiB or
 *     more prefer their natural alignment (up to 32 MiB) so allocators
 *     that over-allocate to align rarely need to. No room: ENOMEM.
 *   - Pages read as zero when handed out: they are zeroed when released.
 *     Free pages are PROT_NONE, as unmapped memory would fault.
 *   - munmap: any page-aligned part of a mapping, already-free pages too.
 *   - mremap: shrinking in place; growing in place when the next pages are
 *     free, else (MREMAP_MAYMOVE) by allocate, copy, free. A grown mapping
 *     is PROT_READ|PROT_WRITE (the old protection is not tracked).
 *   - madvise(MADV_DONTNEED / DONTNEED_LOCKED / REMOVE) zeroes the range,
 *     as callers such as jemalloc rely on; MADV_FREE and every other known
 *     advice is a no-op returning 0 (the arena never returns memory to the
 *     kernel; reuse is the design, and DODUMP/DOFORK must not undo what the
 *     arena set). Guard-page and memory-failure advice: EINVAL.
 *   - mmap(MAP_FIXED) of anonymous private memory inside the arena takes
 *     and zeroes that range; any other mapping over the arena: EINVAL
 *     (EEXIST for MAP_FIXED_NOREPLACE).
 * Zeroing goes through a second, always writable view of the same secret
 * file, so pages the program made PROT_NONE or read-only can be zeroed
 * without knowing their protection. Both views are locked memory (secretmem
 * is VM_LOCKED): without CAP_IPC_LOCK, RLIMIT_MEMLOCK must allow twice N.
 *
 * Not served from the arena, by design or because they cannot be seen:
 * file-backed and MAP_SHARED mappings, MAP_FIXED outside the arena,
 * MAP_GROWSDOWN, MAP_32BIT and PROT_EXEC mappings (code; secretmem cannot
 * be executable); glibc-internal mmaps (ld.so's mappings, libraries'
 * .data/.bss, thread stacks glibc allocates itself), the brk heap, and raw
 * syscall(SYS_mmap). The main thread's stack is moved into secretmem too
 * (stack.c), and threads get secret stacks (threads.c); static storage is
 * not protected.
 *
 * fork(): the arena is MADV_DONTFORK (a MAP_SHARED heap must not be shared
 * with a child), so a child has no heap: its anonymous mmaps fail with
 * ENOMEM and touching the inherited heap faults. fork + exec works (the
 * exec'd program inherits the environment and gets an arena of its own);
 * programs that fork and keep working in the child break (run Redis with
 * persistence off; a shell's subshells and pipelines crash).
 *
 * The runtime never allocates (it would recurse into the allocator it
 * serves), never prints except the single line before exit 70, and calls
 * the kernel directly for the real operations.
 */
/* Meson builds with _FILE_OFFSET_BITS=64, which renames mmap to mmap64 in
 * the headers; both are defined here, by their own names (off_t is 64-bit). */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ranges.h"
#include "runtime.h"

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif
#ifndef MAP_32BIT
#define MAP_32BIT 0
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

enum {
	MAX_SPANS = 65536,                 /* holes the arena can have */
	ALIGN_MAX = 32 << 20,              /* arena alignment; largest natural alignment */
	ALIGN_FROM = 2 << 20,              /* requests this large get natural alignment */
};

enum state { ST_UNINIT, ST_INERT, ST_ACTIVE, ST_FORKED };

static int state = ST_UNINIT;           /* enum state, read with acquire */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static rg_arena arena;                  /* guarded by lock */
static rg_span spans[MAX_SPANS];        /* guarded by lock */
static unsigned char *alias;            /* writable view of the arena */
size_t rt_page_size;

/* --- setup --- */

static void put(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0 && errno != EINTR)
			return;
		if (w > 0) {
			s += w;
			n -= (size_t)w;
		}
	}
}

/* One line on stderr, then exit: the program must not run unprotected. */
void rt_die(const char *what, int err)
{
	put("coffer-soft: ");
	put(what);
	if (err) {
		put(": ");
		put(strerror(err));
	}
	put("\n");
	_exit(RT_EXIT);
}

bool rt_prefault(void)
{
	const char *pf = getenv("COFFER_PREFAULT");
	return pf == NULL || strcmp(pf, "0") != 0;
}

int rt_secret_file(size_t len)
{
	int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) != 0) {
		int err = errno;
		(void)close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Parses a decimal byte count; false for anything else, 0 or overflow. */
static bool parse_size(const char *s, size_t *out)
{
	size_t v = 0;
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (SIZE_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return v > 0;
}

static void setup(void)
{
	const char *env = getenv("COFFER_ENCLAVE_SIZE");
	if (env == NULL) {
		__atomic_store_n(&state, ST_INERT, __ATOMIC_RELEASE);
		return;
	}
	long ps = sysconf(_SC_PAGESIZE);
	rt_page_size = ps > 0 ? (size_t)ps : 4096;
	size_t size;
	if (!parse_size(env, &size) || size > SIZE_MAX - ALIGN_MAX - rt_page_size)
		rt_die("bad COFFER_ENCLAVE_SIZE (decimal bytes expected)", 0);
	size = (size + rt_page_size - 1) & ~(rt_page_size - 1);
	if (size > (size_t)INT64_MAX)
		rt_die("bad COFFER_ENCLAVE_SIZE (decimal bytes expected)", 0);

	int fd = (int)syscall(SYS_memfd_secret, O_CLOEXEC);
	if (fd < 0)
		rt_die("memfd_secret failed", errno);
	if (ftruncate(fd, (off_t)size) != 0)
		rt_die("cannot size the secret memory", errno);

	/* Reserve size + ALIGN_MAX of address space and put the arena at an
	 * ALIGN_MAX boundary inside it, so that aligned requests fit. */
	unsigned char *res = rt_sys_mmap(NULL, size + ALIGN_MAX, PROT_NONE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		rt_die("cannot reserve address space for the enclave", errno);
	uintptr_t r = (uintptr_t)res;
	uintptr_t base = (r + ALIGN_MAX - 1) & ~(uintptr_t)(ALIGN_MAX - 1);
	void *p = rt_sys_mmap((void *)base, size, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		rt_die("cannot map the secret memory", errno);
	if (base > r)
		(void)rt_sys_munmap(res, base - r);
	(void)rt_sys_munmap((void *)(base + size), r + ALIGN_MAX - base); /* never 0 */
	alias = rt_sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (alias == MAP_FAILED)
		rt_die("cannot map the secret memory twice", errno);
	(void)close(fd);

	if (rt_prefault()) {
		volatile unsigned char *v = p;
		for (size_t off = 0; off < size; off += rt_page_size)
			v[off] = 0;
	}
	/* Free pages are inaccessible, as unmapped memory is. */
	if (rt_sys_mprotect(p, size, PROT_NONE) != 0)
		rt_die("mprotect of the secret memory failed", errno);
	/* A child must not share (MAP_SHARED) the parent's heap. */
	if (rt_sys_madvise(p, size, MADV_DONTFORK) != 0 ||
	    rt_sys_madvise(alias, size, MADV_DONTFORK) != 0)
		rt_die("madvise(MADV_DONTFORK) of the secret memory failed", errno);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		rt_die("prctl(PR_SET_DUMPABLE) failed", errno);
	struct rlimit nocore = {0, 0};
	if (setrlimit(RLIMIT_CORE, &nocore) != 0)
		rt_die("setrlimit(RLIMIT_CORE) failed", errno);

	if (rg_init(&arena, base, size, rt_page_size, spans, MAX_SPANS) != 0)
		rt_die("bad enclave geometry", 0);
	__atomic_store_n(&state, ST_ACTIVE, __ATOMIC_RELEASE);
}

bool rt_arena_active(void)
{
	return __atomic_load_n(&state, __ATOMIC_ACQUIRE) == ST_ACTIVE;
}

static int current_state(void)
{
	int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	if (s == ST_UNINIT) {
		/* An allocator may map memory before our constructor runs. */
		(void)pthread_once(&once, setup);
		s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
	}
	return s;
}

/* fork(): the child has no arena (MADV_DONTFORK); keep the lock sane. */
static void fork_prepare(void)
{
	(void)pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	(void)pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
	(void)pthread_mutex_init(&lock, NULL);
	__atomic_store_n(&state, ST_FORKED, __ATOMIC_RELEASE);
}

/* Before main(), on the main thread; the arena may already be up. */
__attribute__((constructor(101))) static void soft_init(void)
{
	if (current_state() != ST_ACTIVE)
		return;
	rt_stack_init();
	rt_threads_init();
	(void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* --- arena operations (lock held) --- */

static unsigned char *view(uintptr_t addr)
{
	return alias + (addr - arena.base);
}

static void zero(uintptr_t start, size_t len)
{
	memset(view(start), 0, len);
}

/* Frees [start, start + len), which lies inside the arena. */
static int arena_release(uintptr_t start, size_t len)
{
	int rc = rg_release(&arena, start, len);
	if (rc)
		return rc;
	zero(start, len);
	(void)rt_sys_mprotect((void *)start, len, PROT_NONE);
	return 0;
}

/* Largest power of two dividing len, capped, for requests >= ALIGN_FROM. */
static size_t natural_align(size_t len)
{
	if (len < ALIGN_FROM)
		return rt_page_size;
	size_t a = len & -len;
	return a > ALIGN_MAX ? ALIGN_MAX : a;
}

static void *arena_map(void *hint, size_t len, int prot)
{
	uintptr_t at = 0;
	int rc = ENOMEM;
	uintptr_t h = (uintptr_t)hint;
	if (h != 0 && (h & (rt_page_size - 1)) == 0 && rg_contains(&arena, h, len) &&
	    rg_claim(&arena, h, len, true) == 0) {
		at = h;
		rc = 0;
	}
	size_t align = natural_align(len);
	if (rc)
		rc = rg_alloc(&arena, len, align, &at);
	if (rc && align > rt_page_size)
		rc = rg_alloc(&arena, len, rt_page_size, &at);
	if (rc) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	if (rt_sys_mprotect((void *)at, len, prot) != 0) {
		int err = errno;
		(void)arena_release(at, len);
		errno = err;
		return MAP_FAILED;
	}
	return (void *)at;
}

/* mmap(MAP_FIXED) of anonymous private memory inside the arena. */
static void *arena_map_fixed(uintptr_t start, size_t len, int prot, bool noreplace)
{
	int rc = rg_claim(&arena, start, len, noreplace);
	if (rc) {
		errno = rc;
		return MAP_FAILED;
	}
	zero(start, len);
	if (rt_sys_mprotect((void *)start, len, prot) != 0) {
		int err = errno;
		(void)arena_release(start, len);
		errno = err;
		return MAP_FAILED;
	}
	return (void *)start;
}

/* --- the interposed calls --- */

/* Rounds len up to pages; false on overflow. */
static bool page_round(size_t len, size_t *out)
{
	if (len > SIZE_MAX - (rt_page_size - 1))
		return false;
	*out = (len + rt_page_size - 1) & ~(rt_page_size - 1);
	return true;
}

static bool overlaps_arena(uintptr_t start, size_t len)
{
	return start < arena.end && start + len > arena.base;
}

RT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int st = current_state();
	if (st != ST_ACTIVE && st != ST_FORKED)
		return rt_sys_mmap(addr, len, prot, flags, fd, off);
	bool anon_private = (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE;
	bool fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
	bool servable = anon_private && !(flags & (MAP_GROWSDOWN | MAP_32BIT)) &&
			!(prot & PROT_EXEC);
	size_t n;
	if (st == ST_FORKED) {
		if (servable && !fixed) {
			errno = ENOMEM; /* no arena in a fork child: fail closed */
			return MAP_FAILED;
		}
		return rt_sys_mmap(addr, len, prot, flags, fd, off);
	}
	if (len == 0 || !page_round(len, &n)) {
		errno = len == 0 ? EINVAL : ENOMEM;
		return MAP_FAILED;
	}
	uintptr_t a = (uintptr_t)addr;
	if (fixed) {
		if (a > UINTPTR_MAX - n || !overlaps_arena(a, n))
			return rt_sys_mmap(addr, len, prot, flags, fd, off);
		if (!servable || (a & (rt_page_size - 1)) != 0 || !rg_contains(&arena, a, n)) {
			errno = (flags & MAP_FIXED_NOREPLACE) && !(flags & MAP_FIXED) ? EEXIST
										: EINVAL;
			return MAP_FAILED;
		}
		(void)pthread_mutex_lock(&lock);
		void *p = arena_map_fixed(a, n, prot, !(flags & MAP_FIXED));
		int err = errno;
		(void)pthread_mutex_unlock(&lock);
		errno = err;
		return p;
	}
	if (!servable)
		return rt_sys_mmap(addr, len, prot, flags, fd, off);
	(void)pthread_mutex_lock(&lock);
	void *p = arena_map(addr, n, prot);
	int err = errno;
	(void)pthread_mutex_unlock(&lock);
	errno = err;
	return p;
}

RT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

/*
 * Splits [start, start + len) into the parts before, inside and after the
 * arena, applies outside() to the outer parts and returns the inner part.
 * false (errno set) if an outer call failed or the range is malformed.
 */
static bool split_outside(uintptr_t start, size_t len, int (*outside)(uintptr_t, size_t, int),
			  int arg, uintptr_t *in_start, size_t *in_len)
{
	uintptr_t end = start + len;
	if (start < arena.base && outside(start, arena.base - start, arg) != 0)
		return false;
	if (end > arena.end && outside(arena.end, end - arena.end, arg) != 0)
		return false;
	*in_start = start > arena.base ? start : arena.base;
	*in_len = (end < arena.end ? end : arena.end) - *in_start;
	return true;
}

static int outside_munmap(uintptr_t start, size_t len, int unused)
{
	return rt_sys_munmap((void *)start, len);
}

static int outside_madvise(uintptr_t start, size_t len, int advice)
{
	return rt_sys_madvise((void *)start, len, advice);
}

RT_EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	size_t n;
	if (current_state() != ST_ACTIVE || len == 0 || (a & (rt_page_size - 1)) != 0 ||
	    !page_round(len, &n) || a > UINTPTR_MAX - n || !overlaps_arena(a, n))
		return rt_sys_munmap(addr, len);
	uintptr_t s;
	size_t l;
	if (!split_outside(a, n, outside_munmap, 0, &s, &l))
		return -1;
	(void)pthread_mutex_lock(&lock);
	int rc = arena_release(s, l);
	(void)pthread_mutex_unlock(&lock);
	if (rc) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* What an advice means for arena pages. */
enum advice_kind { ADV_ZERO, ADV_NOOP, ADV_REFUSE };

static enum advice_kind classify(int advice)
{
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_DONTNEED_LOCKED:
	case MADV_REMOVE:
		return ADV_ZERO;
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_WILLNEED:
	case MADV_FREE:
	case MADV_DONTFORK:
	case MADV_DOFORK:
	case MADV_MERGEABLE:
	case MADV_UNMERGEABLE:
	case MADV_HUGEPAGE:
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
	case 20: /* MADV_COLD */
	case 21: /* MADV_PAGEOUT */
	case 22: /* MADV_POPULATE_READ */
	case 23: /* MADV_POPULATE_WRITE */
	case 25: /* MADV_COLLAPSE */
		return ADV_NOOP;
	default:
		return ADV_REFUSE;
	}
}

RT_EXPORT int madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;
	size_t n;
	if (current_state() != ST_ACTIVE || len == 0 || (a & (rt_page_size - 1)) != 0 ||
	    !page_round(len, &n) || a > UINTPTR_MAX - n || !overlaps_arena(a, n))
		return rt_sys_madvise(addr, len, advice);
	enum advice_kind kind = classify(advice);
	if (kind == ADV_REFUSE) {
		errno = EINVAL;
		return -1;
	}
	uintptr_t s;
	size_t l;
	if (!split_outside(a, n, outside_madvise, advice, &s, &l))
		return -1;
	if (kind == ADV_ZERO) {
		(void)pthread_mutex_lock(&lock);
		zero(s, l);
		(void)pthread_mutex_unlock(&lock);
	}
	return 0;
}

/* mremap of a mapping inside the arena (lock held). */
static void *arena_remap(uintptr_t old, size_t old_len, size_t new_len, int flags)
{
	if (!rg_in_use(&arena, old, old_len)) {
		errno = EFAULT;
		return MAP_FAILED;
	}
	if (new_len <= old_len) {
		if (new_len < old_len) {
			int rc = arena_release(old + new_len, old_len - new_len);
			if (rc) {
				errno = rc;
				return MAP_FAILED;
			}
		}
		return (void *)old;
	}
	size_t grow = new_len - old_len;
	uintptr_t tail = old + old_len;
	if (rg_contains(&arena, tail, grow) && rg_claim(&arena, tail, grow, true) == 0) {
		if (rt_sys_mprotect((void *)tail, grow, PROT_READ | PROT_WRITE) != 0) {
			int err = errno;
			(void)arena_release(tail, grow);
			errno = err;
			return MAP_FAILED;
		}
		return (void *)old;
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = arena_map(NULL, new_len, PROT_READ | PROT_WRITE);
	if (p == MAP_FAILED)
		return p;
	memcpy(view((uintptr_t)p), view(old), old_len);
	(void)arena_release(old, old_len);
	return p;
}

RT_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	if (current_state() != ST_ACTIVE)
		return rt_sys_mremap(old, old_len, new_len, flags, new_addr);
	uintptr_t o = (uintptr_t)old;
	size_t on, nn;
	if ((o & (rt_page_size - 1)) != 0 || !page_round(old_len, &on) ||
	    !page_round(new_len, &nn) || o > UINTPTR_MAX - on)
		return rt_sys_mremap(old, old_len, new_len, flags, new_addr);
	bool from_arena = overlaps_arena(o, on == 0 ? 1 : on);
	bool to_arena = (flags & MREMAP_FIXED) && nn > 0 &&
			(uintptr_t)new_addr <= UINTPTR_MAX - nn &&
			overlaps_arena((uintptr_t)new_addr, nn);
	if (!from_arena && !to_arena)
		return rt_sys_mremap(old, old_len, new_len, flags, new_addr);
	/* Moving into, out of or duplicating arena pages is not emulated. */
	if (!from_arena || to_arena || on == 0 || nn == 0 ||
	    (flags & ~MREMAP_MAYMOVE) != 0 || !rg_contains(&arena, o, on)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	(void)pthread_mutex_lock(&lock);
	void *p = arena_remap(o, on, nn, flags);
	int err = errno;
	(void)pthread_mutex_unlock(&lock);
	errno = err;
	return p;
}
