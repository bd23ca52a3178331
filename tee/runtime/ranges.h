/*
 * ranges: the page-granular range allocator behind the soft TEE's arena.
 *
 * The secretmem runtime (preload.c) owns one region [base, base + size)
 * and hands out pieces of it in place of anonymous mmap()s. This module
 * only does the bookkeeping: it knows which pages are free, never touches
 * the memory itself, never allocates (the table of free spans is storage
 * the caller provides) and never locks (the caller holds its mutex).
 *
 * The free spans are kept sorted by address, disjoint and never adjacent
 * (a release coalesces with both neighbours), so the table holds at most
 * one span per hole. Allocation is first fit; a caller may ask for an
 * alignment, which is honoured by taking the first suitably aligned start
 * inside a free span. Releasing may cover pages that are already free and
 * claiming may cover pages already in use, as munmap() and mmap(MAP_FIXED)
 * allow.
 *
 * Every address and length is a multiple of the page size and lies inside
 * the arena, or the call fails with EINVAL. Functions return 0 or an errno
 * value: ENOMEM when no span fits or the table is full (the arena is then
 * unchanged), EEXIST when an exclusive claim meets pages in use.
 */
#ifndef COFFER_TEE_RANGES_H
#define COFFER_TEE_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results that cannot be ignored. */
#define RG_WUR __attribute__((warn_unused_result))

typedef struct rg_span {
	uintptr_t start;
	uintptr_t end; /* exclusive */
} rg_span;

typedef struct rg_arena {
	uintptr_t base;
	uintptr_t end;     /* exclusive */
	size_t page;       /* a power of two */
	rg_span *free;     /* sorted, disjoint, non-adjacent */
	size_t nfree;
	size_t cap;        /* slots in free[] */
	size_t free_bytes; /* sum of the free spans' lengths */
} rg_arena;

/* --- setup --- */

/*
 * Makes the whole of [base, base + size) one free span, using table[cap]
 * as the span table. base and size are multiples of page; cap >= 1.
 * EINVAL for a misaligned, empty or wrapping region.
 */
int rg_init(rg_arena *a, uintptr_t base, size_t size, size_t page, rg_span *table,
	    size_t cap) RG_WUR;

/* --- allocation --- */

/*
 * First fit: the lowest start aligned to align (a power of two, at least
 * the page) from which len bytes are free. Stores it in *out and marks
 * the pages in use.
 */
int rg_alloc(rg_arena *a, size_t len, size_t align, uintptr_t *out) RG_WUR;

/*
 * Marks [start, start + len) in use. exclusive: every page must be free
 * (else EEXIST, nothing changes). Not exclusive: pages already in use stay
 * in use, free ones are taken.
 */
int rg_claim(rg_arena *a, uintptr_t start, size_t len, bool exclusive) RG_WUR;

/* Marks [start, start + len) free, merging with neighbouring free spans. */
int rg_release(rg_arena *a, uintptr_t start, size_t len) RG_WUR;

/* --- queries --- */

/* Whether [start, start + len) lies inside the arena (len may be 0). */
bool rg_contains(const rg_arena *a, uintptr_t start, size_t len);

/* Whether every page of [start, start + len) is in use (false if outside). */
bool rg_in_use(const rg_arena *a, uintptr_t start, size_t len);

#endif
