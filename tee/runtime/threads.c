/*
 * threads: thread stacks in secretmem.
 *
 * glibc maps thread stacks with its internal mmap, which no preload sees,
 * so thread creation is interposed (pthread_create, and thrd_create, which
 * glibc routes to its pthread_create internally): unless the caller brought
 * its own stack (pthread_attr_setstack), the runtime builds one and hands
 * it to glibc as a user stack. glibc puts its thread descriptor (struct
 * pthread, the TCB) at the top of a user stack, the static TLS block right
 * below it, and starts the thread's frames below that. The descriptor must
 * not be in secretmem: the kernel wakes pthread_join through
 * CLONE_CHILD_CLEARTID, a shared futex on the descriptor's tid, and shared
 * futexes need get_user_pages(), which secretmem refuses (glibc's wait gets
 * EFAULT and aborts). Each stack is therefore one reservation
 *
 *   [guard][ secret: frames ...... | static TLS ][ descriptor | record ]
 *                                                ^ P, a page boundary
 *
 * and the top handed to glibc is P + sizeof(struct pthread), which makes
 * glibc put the descriptor exactly at P: the frames and the thread-local
 * variables are secret, only the descriptor's page is ordinary memory. The
 * tail of that page holds this module's record of the stack (addresses
 * only), so the bookkeeping needs no allocation.
 *
 * The descriptor's size and the offset of its tid come from the symbols
 * glibc exports for libthread_db (_thread_db_sizeof_pthread,
 * _thread_db_pthread_tid: the debugger interface gdb relies on), the
 * static TLS size from _dl_get_tls_static_info. Before the first secret
 * stack is used, a probe thread on an ordinary stack of the same shape
 * checks all of it (descriptor at P, tid where expected, frames and errno
 * below P, nothing written above the descriptor). A glibc that disagrees
 * stops the program (exit 70): it must neither run threads unprotected
 * while claiming otherwise nor put a descriptor into secretmem.
 *
 * A stack is free again when glibc is done with it: after a successful
 * join (pthread_join, _tryjoin_np, _timedjoin_np, _clockjoin_np,
 * thrd_join), or, for a detached thread (created detached, pthread_detach,
 * thrd_detach), once the kernel has cleared the descriptor's tid at the
 * thread's exit, which glibc's own stack cache waits for too; every
 * pthread_create looks for such stacks first. Free stacks are kept for
 * reuse up to CACHE_MAX bytes (glibc's own cache size), others unmapped.
 *
 * Size: what glibc would give the thread, i.e. the attribute's stack size
 * or glibc's default (RLIMIT_STACK, or pthread_setattr_default_np), for the
 * frames alone, plus the static TLS; the guard is the attribute's guard
 * size, at least a page. Untouched secretmem pages cost no memory (the
 * memory cgroup is charged page by page on first touch), but the whole
 * mapping counts against RLIMIT_MEMLOCK unless the process has
 * CAP_IPC_LOCK, which coffer-launch keeps; without it pthread_create fails
 * with EAGAIN when the limit is reached.
 *
 * The secret part is MADV_DONTFORK, like the main stack; fork() from a
 * thread is handled by stack.c, which rebuilds the forking thread's stack
 * in the child (rt_thread_stack below).
 *
 * Not covered: threads glibc starts without going through the interposed
 * symbols (SIGEV_THREAD timer and POSIX AIO helpers), raw clone(), threads
 * created before the runtime's constructor ran or in a fork child (which
 * has no arena), and the main thread's descriptor and static TLS, which
 * ld.so allocates before the runtime loads. COFFER_SECRET_THREAD_STACKS=0
 * turns the interposition off.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <threads.h>
#include <time.h>

#include "runtime.h"

enum {
	CACHE_MAX = 40 << 20,      /* bytes of free stacks kept for reuse */
	DEFAULT_STACK = 8 << 20,   /* when glibc reports no default size */
	PROBE_STACK = 64 << 10,    /* the layout probe's frames */
	MAX_TCB = 64 << 10,        /* a larger descriptor is not believed */
	RECORD_ALIGN = 64,
	PROBE_FILL = 0xa5,
};

enum ts_state {
	TS_JOINABLE,
	TS_DETACHED, /* free once the kernel cleared the tid */
	TS_DONE,     /* joined while glibc's pthread_create had not returned */
};

/* One stack, recorded in the ordinary page above glibc's descriptor. */
struct tstack {
	struct tstack *prev, *next; /* in live or cache */
	uintptr_t base;             /* the reservation: [base, base + len) */
	size_t len;
	size_t guard;               /* PROT_NONE bytes at base */
	uintptr_t lo;               /* the secret part: [lo, pd) */
	uintptr_t pd;               /* glibc's descriptor, the pthread_t */
	enum ts_state state;
	bool starting;              /* glibc's pthread_create has not returned */
	int (*c11_start)(void *);   /* thrd_create: the function and its argument */
	void *c11_arg;
};

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
typedef int (*join_fn)(pthread_t, void **);
typedef int (*tryjoin_fn)(pthread_t, void **);
typedef int (*timedjoin_fn)(pthread_t, void **, const struct timespec *);
typedef int (*clockjoin_fn)(pthread_t, void **, clockid_t, const struct timespec *);
typedef int (*detach_fn)(pthread_t);
typedef int (*thrd_create_fn)(thrd_t *, thrd_start_t, void *);
typedef int (*thrd_join_fn)(thrd_t, int *);
typedef int (*thrd_detach_fn)(thrd_t);
typedef void (*tls_info_fn)(size_t *, size_t *);

static struct {
	create_fn create;
	join_fn join;
	tryjoin_fn tryjoin;
	timedjoin_fn timedjoin;
	clockjoin_fn clockjoin;
	detach_fn detach;
	thrd_create_fn thrd_create;
	thrd_join_fn thrd_join;
	thrd_detach_fn thrd_detach;
} real;

/* glibc's thread layout, checked by probe_layout(). */
static struct {
	bool ready;
	size_t tcb;     /* sizeof(struct pthread) */
	size_t tid_off; /* offset of its tid */
	size_t tls;     /* static TLS with the descriptor, rounded to its alignment */
	size_t rec_off; /* the record, from P */
	size_t top;     /* ordinary bytes from P: descriptor and record, whole pages */
} lay;

static bool enabled;                 /* set once by rt_threads_init */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tstack *live, *cache;  /* guarded by lock, as is lay */
static size_t cache_bytes;

static size_t page_up(size_t n)
{
	return (n + rt_page_size - 1) & ~(rt_page_size - 1);
}

static void resolve(void)
{
	if (__atomic_load_n(&real.create, __ATOMIC_ACQUIRE) != NULL)
		return;
	real.join = (join_fn)dlsym(RTLD_NEXT, "pthread_join");
	real.tryjoin = (tryjoin_fn)dlsym(RTLD_NEXT, "pthread_tryjoin_np");
	real.timedjoin = (timedjoin_fn)dlsym(RTLD_NEXT, "pthread_timedjoin_np");
	real.clockjoin = (clockjoin_fn)dlsym(RTLD_NEXT, "pthread_clockjoin_np");
	real.detach = (detach_fn)dlsym(RTLD_NEXT, "pthread_detach");
	real.thrd_create = (thrd_create_fn)dlsym(RTLD_NEXT, "thrd_create");
	real.thrd_join = (thrd_join_fn)dlsym(RTLD_NEXT, "thrd_join");
	real.thrd_detach = (thrd_detach_fn)dlsym(RTLD_NEXT, "thrd_detach");
	create_fn c = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
	__atomic_store_n(&real.create, c, __ATOMIC_RELEASE);
}

/* --- the list of stacks (lock held) --- */

static void link_to(struct tstack **head, struct tstack *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head != NULL)
		(*head)->prev = s;
	*head = s;
}

static void unlink_from(struct tstack **head, struct tstack *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static struct tstack *find(pthread_t t)
{
	for (struct tstack *s = live; s != NULL; s = s->next)
		if (s->pd == (uintptr_t)t)
			return s;
	return NULL;
}

/* Unmaps a stack; the record goes with it. */
static void stack_unmap(struct tstack *s)
{
	void *base = (void *)s->base;
	size_t len = s->len;
	(void)rt_sys_munmap(base, len);
}

/* A stack nobody uses any more, unlinked: to the cache, or unmapped. */
static void stack_free(struct tstack *s)
{
	if (cache_bytes + s->len <= CACHE_MAX) {
		s->c11_start = NULL;
		s->c11_arg = NULL;
		link_to(&cache, s);
		cache_bytes += s->len;
		return;
	}
	stack_unmap(s);
}

/* A cached stack with at least secret bytes (but not wastefully more) and guard. */
static struct tstack *cache_take(size_t secret, size_t guard)
{
	for (struct tstack *s = cache; s != NULL; s = s->next) {
		size_t have = s->pd - s->lo;
		if (have >= secret && have / 4 <= secret && s->guard >= guard) {
			unlink_from(&cache, s);
			cache_bytes -= s->len;
			return s;
		}
	}
	return NULL;
}

/* Frees the stacks of detached threads the kernel is done with. */
static void reap(void)
{
	struct tstack *next;
	for (struct tstack *s = live; s != NULL; s = next) {
		next = s->next;
		if (s->starting || s->state != TS_DETACHED)
			continue;
		/* Cleared by the kernel (CLONE_CHILD_CLEARTID) after the thread's last access
		 * to its stack and after glibc's own last access to the descriptor. */
		if (__atomic_load_n((const int *)(s->pd + lay.tid_off), __ATOMIC_ACQUIRE) != 0)
			continue;
		unlink_from(&live, s);
		stack_free(s);
	}
}

/* --- making stacks --- */

/*
 * A new reservation of guard + secret + lay.top bytes, with the secret
 * part in secretmem when secret_part; NULL with errno set.
 */
static struct tstack *stack_map(size_t secret, size_t guard, bool secret_part)
{
	size_t len = guard + secret + lay.top;
	unsigned char *m = rt_sys_mmap(NULL, len, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	unsigned char *lo = m + guard, *p = lo + secret;
	int err = 0;
	if (secret_part) {
		int fd = rt_secret_file(secret);
		if (fd < 0) {
			err = errno;
		} else {
			if (rt_sys_mmap(lo, secret, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
					fd, 0) == MAP_FAILED)
				err = errno;
			(void)close(fd);
		}
		/* A fork child keeps only the forking thread, whose stack stack.c rebuilds. */
		if (err == 0 && rt_sys_madvise(lo, secret, MADV_DONTFORK) != 0)
			err = errno;
	} else if (rt_sys_mprotect(lo, secret, PROT_READ | PROT_WRITE) != 0) {
		err = errno;
	}
	if (err == 0 && rt_sys_mprotect(p, lay.top, PROT_READ | PROT_WRITE) != 0)
		err = errno;
	if (err != 0) {
		(void)rt_sys_munmap(m, len);
		errno = err;
		return NULL;
	}
	struct tstack *s = (struct tstack *)(void *)(p + lay.rec_off);
	*s = (struct tstack){
		.base = (uintptr_t)m, .len = len, .guard = guard,
		.lo = (uintptr_t)lo, .pd = (uintptr_t)p,
	};
	return s;
}

/* --- glibc's layout --- */

struct probe {
	uintptr_t want; /* where the descriptor must be */
	uintptr_t self, frame, tls_var;
	long tid, tid_seen;
};

static void *probe_main(void *arg)
{
	struct probe *p = arg;
	volatile char here = 0;
	p->self = (uintptr_t)pthread_self();
	p->frame = (uintptr_t)&here;
	p->tls_var = (uintptr_t)&errno; /* libc's static TLS */
	p->tid = syscall(SYS_gettid);
	if (p->self == p->want)
		p->tid_seen = *(volatile pid_t *)(p->self + lay.tid_off);
	return NULL;
}

static bool all_fill(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != PROBE_FILL)
			return false;
	return true;
}

/*
 * Reads glibc's layout and checks it with a thread on an ordinary stack of
 * the same shape. 0, or an error from pthread_create (try again later).
 * Exits 70 when glibc's layout is not the expected one. Lock held.
 */
static int probe_layout(void)
{
	if (lay.ready)
		return 0;
	const uint32_t *tcb = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
	const uint32_t *tid = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid"); /* bits, count, offset */
	tls_info_fn info = (tls_info_fn)dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
	size_t tls = 0, align = 0;
	if (info != NULL)
		info(&tls, &align);
	if (tcb == NULL || tid == NULL || *tcb == 0 || *tcb > MAX_TCB || tid[0] != 32 ||
	    tid[1] != 1 || tid[2] + sizeof(pid_t) > *tcb || align == 0 ||
	    (align & (align - 1)) != 0 || align > rt_page_size || tls < *tcb || tls > SIZE_MAX / 4)
		rt_die("thread stacks: unknown glibc thread layout "
		       "(COFFER_SECRET_THREAD_STACKS=0 leaves them unprotected)", 0);
	lay.tcb = *tcb;
	lay.tid_off = tid[2];
	lay.tls = (tls + align - 1) & ~(align - 1);
	lay.rec_off = (lay.tcb + RECORD_ALIGN - 1) & ~(size_t)(RECORD_ALIGN - 1);
	lay.top = page_up(lay.rec_off + sizeof(struct tstack));

	size_t secret = PROBE_STACK + page_up(lay.tls);
	struct tstack *s = stack_map(secret, rt_page_size, false);
	if (s == NULL)
		return EAGAIN;
	/* Above the descriptor: our record, and fill glibc must not touch either. */
	unsigned char *above = (unsigned char *)s->pd + lay.tcb;
	unsigned char *rec_end = (unsigned char *)s->pd + lay.rec_off + sizeof(*s);
	size_t above_len = lay.rec_off - lay.tcb;
	size_t tail_len = lay.top - lay.rec_off - sizeof(*s);
	memset(above, PROBE_FILL, above_len);
	memset(rec_end, PROBE_FILL, tail_len);
	const struct tstack saved = *s;
	struct probe pr = {.want = s->pd};
	pthread_attr_t a;
	pthread_t t;
	int rc = pthread_attr_init(&a);
	if (rc == 0) {
		rc = pthread_attr_setstack(&a, (void *)s->lo, s->pd + lay.tcb - s->lo);
		if (rc == 0)
			rc = real.create(&t, &a, probe_main, &pr);
		(void)pthread_attr_destroy(&a);
	}
	if (rc == 0)
		rc = real.join(t, NULL);
	if (rc != 0) {
		stack_unmap(s);
		return rc;
	}
	uintptr_t tls_lo = s->pd - (lay.tls - lay.tcb);
	bool ok = pr.self == s->pd && pr.tid_seen == pr.tid && pr.tid > 0 &&
		  pr.frame >= s->lo && pr.frame < tls_lo && pr.tls_var >= tls_lo &&
		  pr.tls_var < s->pd && all_fill(above, above_len) && all_fill(rec_end, tail_len) &&
		  memcmp(&saved, s, sizeof(saved)) == 0;
	stack_unmap(s);
	if (!ok)
		rt_die("thread stacks: glibc does not lay out thread stacks as expected "
		       "(COFFER_SECRET_THREAD_STACKS=0 leaves them unprotected)", 0);
	lay.ready = true;
	return 0;
}

/* --- the interposed calls --- */

/*
 * Whether the caller set its own stack. glibc's getstack reports the low
 * end as top - size, and top is NULL when none was set.
 */
static bool has_user_stack(const pthread_attr_t *attr)
{
	void *addr = NULL;
	size_t size = 0;
	if (pthread_attr_getstack(attr, &addr, &size) != 0)
		return false;
	return addr != NULL && (uintptr_t)addr + size != 0;
}

static void *c11_main(void *arg)
{
	const struct tstack *s = arg;
	return (void *)(uintptr_t)s->c11_start(s->c11_arg);
}

/* pthread_create on a secret stack; c11 set: run c11(arg) as thrd_create does. */
static int create_secret(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			 void *arg, int (*c11)(void *))
{
	pthread_attr_t a;
	int rc = 0, cancel;
	/* The probe joins a thread, a cancellation point, with the lock held. */
	(void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
	(void)pthread_mutex_lock(&lock);
	rc = probe_layout();
	(void)pthread_mutex_unlock(&lock);
	(void)pthread_setcancelstate(cancel, NULL);
	if (rc != 0)
		return rc;
	if (attr == NULL) {
		/* What glibc uses for a NULL attr. */
		rc = pthread_getattr_default_np(&a);
		if (rc != 0)
			return rc;
	} else {
		/* A shallow copy: glibc's extension (cpuset, signal mask) stays shared
		 * and is never destroyed through the copy. */
		memcpy(&a, attr, sizeof(a));
	}
	size_t size = 0, guard = 0;
	int detach = PTHREAD_CREATE_JOINABLE;
	(void)pthread_attr_getstacksize(&a, &size); /* glibc's default when unset */
	(void)pthread_attr_getguardsize(&a, &guard);
	(void)pthread_attr_getdetachstate(&a, &detach);
	if (size == 0)
		size = DEFAULT_STACK;
	if (size > SIZE_MAX / 4 || guard > SIZE_MAX / 4) {
		rc = EINVAL;
		goto out;
	}
	/* The frames get at least the requested size, as with glibc's own stacks. */
	size_t secret = page_up(size) + page_up(lay.tls);
	guard = guard > rt_page_size ? page_up(guard) : rt_page_size;

	(void)pthread_mutex_lock(&lock);
	reap();
	struct tstack *s = cache_take(secret, guard);
	(void)pthread_mutex_unlock(&lock);
	if (s == NULL)
		s = stack_map(secret, guard, true);
	if (s == NULL) {
		rc = EAGAIN;
		goto out;
	}
	s->state = detach == PTHREAD_CREATE_DETACHED ? TS_DETACHED : TS_JOINABLE;
	s->starting = true;
	if (c11 != NULL) {
		s->c11_start = c11;
		s->c11_arg = arg;
		start = c11_main;
		arg = s;
	}
	/* Listed before the thread exists: it may be joined or detached at once. */
	(void)pthread_mutex_lock(&lock);
	link_to(&live, s);
	(void)pthread_mutex_unlock(&lock);

	rc = pthread_attr_setstack(&a, (void *)s->lo, s->pd + lay.tcb - s->lo);
	if (rc == 0)
		rc = real.create(thread, &a, start, arg);

	(void)pthread_mutex_lock(&lock);
	if (rc != 0) {
		unlink_from(&live, s);
		stack_free(s);
	} else {
		if (!pthread_equal(*thread, (pthread_t)s->pd))
			rt_die("thread stacks: glibc put a thread descriptor elsewhere", 0);
		s->starting = false;
		if (s->state == TS_DONE) {
			unlink_from(&live, s);
			stack_free(s);
		}
	}
	(void)pthread_mutex_unlock(&lock);
out:
	if (attr == NULL)
		(void)pthread_attr_destroy(&a);
	return rc;
}

static bool use_secret(const pthread_attr_t *attr)
{
	return enabled && rt_arena_active() && (attr == NULL || !has_user_stack(attr));
}

RT_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			     void *(*start)(void *), void *arg)
{
	resolve();
	if (real.create == NULL || real.join == NULL)
		return EAGAIN;
	if (!use_secret(attr))
		return real.create(thread, attr, start, arg);
	return create_secret(thread, attr, start, arg, NULL);
}

/* A join of t succeeded: its stack is free (after glibc's create returned). */
static void joined(pthread_t t)
{
	(void)pthread_mutex_lock(&lock);
	struct tstack *s = find(t);
	if (s != NULL) {
		if (s->starting) {
			s->state = TS_DONE;
		} else {
			unlink_from(&live, s);
			stack_free(s);
		}
	}
	(void)pthread_mutex_unlock(&lock);
}

static void detached(pthread_t t)
{
	(void)pthread_mutex_lock(&lock);
	struct tstack *s = find(t);
	if (s != NULL && s->state == TS_JOINABLE)
		s->state = TS_DETACHED;
	(void)pthread_mutex_unlock(&lock);
}

RT_EXPORT int pthread_join(pthread_t thread, void **ret)
{
	resolve();
	if (real.join == NULL)
		return EINVAL;
	int rc = real.join(thread, ret);
	if (rc == 0)
		joined(thread);
	return rc;
}

RT_EXPORT int pthread_tryjoin_np(pthread_t thread, void **ret)
{
	resolve();
	if (real.tryjoin == NULL)
		return EINVAL;
	int rc = real.tryjoin(thread, ret);
	if (rc == 0)
		joined(thread);
	return rc;
}

RT_EXPORT int pthread_timedjoin_np(pthread_t thread, void **ret, const struct timespec *abstime)
{
	resolve();
	if (real.timedjoin == NULL)
		return EINVAL;
	int rc = real.timedjoin(thread, ret, abstime);
	if (rc == 0)
		joined(thread);
	return rc;
}

RT_EXPORT int pthread_clockjoin_np(pthread_t thread, void **ret, clockid_t clock,
				   const struct timespec *abstime)
{
	resolve();
	if (real.clockjoin == NULL)
		return EINVAL;
	int rc = real.clockjoin(thread, ret, clock, abstime);
	if (rc == 0)
		joined(thread);
	return rc;
}

RT_EXPORT int pthread_detach(pthread_t thread)
{
	resolve();
	if (real.detach == NULL)
		return ESRCH;
	int rc = real.detach(thread);
	if (rc == 0)
		detached(thread);
	return rc;
}

/* glibc's thrd_create calls its pthread_create internally, unseen. */
RT_EXPORT int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
	resolve();
	if (real.thrd_create == NULL || real.create == NULL || real.join == NULL)
		return thrd_error;
	if (!use_secret(NULL))
		return real.thrd_create(thr, func, arg);
	int rc = create_secret(thr, NULL, NULL, arg, func);
	/* glibc's mapping of pthread errors (thrd_priv.h). */
	switch (rc) {
	case 0:
		return thrd_success;
	case ENOMEM:
		return thrd_nomem;
	default:
		return thrd_error;
	}
}

RT_EXPORT int thrd_join(thrd_t thr, int *res)
{
	resolve();
	if (real.thrd_join == NULL)
		return thrd_error;
	int rc = real.thrd_join(thr, res);
	if (rc == thrd_success)
		joined(thr);
	return rc;
}

RT_EXPORT int thrd_detach(thrd_t thr)
{
	resolve();
	if (real.thrd_detach == NULL)
		return thrd_error;
	int rc = real.thrd_detach(thr);
	if (rc == thrd_success)
		detached(thr);
	return rc;
}

/* --- fork() --- */

static void fork_prepare(void)
{
	(void)pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	(void)pthread_mutex_unlock(&lock);
}

/*
 * Only the forking thread lives on in the child; the secret parts of the
 * other stacks are gone (MADV_DONTFORK), so their remains are unmapped. The
 * child has no arena, so it makes no more secret stacks (rt_arena_active).
 */
static void fork_child(void)
{
	uintptr_t self = (uintptr_t)pthread_self();
	struct tstack *keep = NULL, *next;
	for (struct tstack *s = live; s != NULL; s = next) {
		next = s->next;
		if (s->pd == self)
			keep = s;
		else
			stack_unmap(s);
	}
	for (struct tstack *s = cache; s != NULL; s = next) {
		next = s->next;
		stack_unmap(s);
	}
	live = keep;
	if (keep != NULL)
		keep->prev = keep->next = NULL;
	cache = NULL;
	cache_bytes = 0;
	(void)pthread_mutex_init(&lock, NULL);
}

bool rt_thread_stack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi, uintptr_t *tls_lo)
{
	bool found = false;
	(void)pthread_mutex_lock(&lock);
	for (struct tstack *s = live; s != NULL && !found; s = s->next) {
		if (sp >= s->lo && sp < s->pd) {
			*lo = s->lo;
			*hi = s->pd;
			*tls_lo = (s->pd - (lay.tls - lay.tcb)) & ~(uintptr_t)(rt_page_size - 1);
			found = true;
		}
	}
	(void)pthread_mutex_unlock(&lock);
	return found;
}

void rt_threads_init(void)
{
	const char *v = getenv("COFFER_SECRET_THREAD_STACKS");
	resolve();
	if (v != NULL && strcmp(v, "0") == 0)
		return;
	if (real.create == NULL || real.join == NULL || real.detach == NULL)
		rt_die("thread stacks: cannot find pthread_create", 0);
	if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
		rt_die("thread stacks: pthread_atfork failed", 0);
	enabled = true;
}
