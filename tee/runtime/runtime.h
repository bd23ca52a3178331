/*
 * runtime: what the files of libcoffer-soft.so share; nothing here is
 * exported (the library is built with hidden visibility, and only the
 * interposed libc calls are marked RT_EXPORT).
 *
 * preload.c owns the arena and the interposed memory calls; stack.c moves
 * the main thread's stack into secretmem and makes fork() work from it and
 * from thread stacks, which threads.c puts into secretmem. They reach the
 * kernel directly (the rt_sys_* calls below), never through
 * the libc symbols the library itself replaces, and never allocate.
 */
#ifndef COFFER_TEE_RUNTIME_H
#define COFFER_TEE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define RT_EXPORT __attribute__((visibility("default")))

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* Exit status when the process cannot be protected (EX_SOFTWARE). */
#define RT_EXIT 70

/* The page size, set before anything else runs. */
extern size_t rt_page_size;

/* --- the kernel, directly --- */

static inline void *rt_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static inline int rt_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static inline int rt_sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

static inline int rt_sys_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

static inline void *rt_sys_mremap(void *old, size_t old_len, size_t new_len, int flags,
				  void *new_addr)
{
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

/* A new secret file of len bytes (O_CLOEXEC), or -1 with errno set. */
int rt_secret_file(size_t len);

/* --- failing closed (preload.c) --- */

/* "coffer-soft: WHAT[: strerror(err)]" on stderr, then _exit(RT_EXIT). */
__attribute__((noreturn)) void rt_die(const char *what, int err);

/* Whether to touch every page up front (COFFER_PREFAULT is not "0"). */
bool rt_prefault(void);

/* Whether the arena is set up and serving this process (not inert, not a fork child). */
bool rt_arena_active(void);

/* --- the main stack (stack.c) --- */

/*
 * Called once from the constructor, on the main thread, when the arena is
 * active: moves the stack into secretmem unless COFFER_SECRET_STACK=0.
 */
void rt_stack_init(void);

/* --- thread stacks (threads.c) --- */

/*
 * Called once from the constructor when the arena is active: thread
 * stacks go into secretmem from then on, unless COFFER_SECRET_THREAD_STACKS=0.
 */
void rt_threads_init(void);

/*
 * Whether sp lies in the secret part of a thread stack made by threads.c;
 * if so, that part is [*lo, *hi): the thread's frames, then its static TLS
 * in the pages [*tls_lo, *hi) (which may hold the outermost frames too).
 */
bool rt_thread_stack(uintptr_t sp, uintptr_t *lo, uintptr_t *hi, uintptr_t *tls_lo);

#endif
