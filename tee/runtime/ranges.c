/* ranges: first-fit page allocator over a sorted table of free spans. */
#include "ranges.h"

#include <errno.h>
#include <string.h>

static bool aligned(const rg_arena *a, uintptr_t v)
{
	return (v & (a->page - 1)) == 0;
}

/*
 * Checks that [start, start + len) is a non-empty page-aligned piece of
 * the arena and stores its end.
 */
static int check_range(const rg_arena *a, uintptr_t start, size_t len, uintptr_t *end)
{
	if (len == 0 || !aligned(a, start) || !aligned(a, len) || !rg_contains(a, start, len))
		return EINVAL;
	*end = start + len;
	return 0;
}

/* Index of the first span whose end is > v (nfree if none). */
static size_t first_end_after(const rg_arena *a, uintptr_t v)
{
	size_t lo = 0, hi = a->nfree;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->free[mid].end > v)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Index of the first span whose end is >= v (nfree if none). */
static size_t first_end_from(const rg_arena *a, uintptr_t v)
{
	size_t lo = 0, hi = a->nfree;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->free[mid].end >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Index of the first span whose start is > v (nfree if none). */
static size_t first_start_after(const rg_arena *a, uintptr_t v)
{
	size_t lo = 0, hi = a->nfree;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->free[mid].start > v)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Removes spans [lo, hi). */
static void remove_spans(rg_arena *a, size_t lo, size_t hi)
{
	if (hi <= lo)
		return;
	memmove(&a->free[lo], &a->free[hi], (a->nfree - hi) * sizeof(a->free[0]));
	a->nfree -= hi - lo;
}

/* Inserts a span at index i; the caller has checked there is room. */
static void insert_span(rg_arena *a, size_t i, uintptr_t start, uintptr_t end)
{
	memmove(&a->free[i + 1], &a->free[i], (a->nfree - i) * sizeof(a->free[0]));
	a->free[i].start = start;
	a->free[i].end = end;
	a->nfree++;
}

int rg_init(rg_arena *a, uintptr_t base, size_t size, size_t page, rg_span *table,
	    size_t cap)
{
	if (page == 0 || (page & (page - 1)) != 0 || table == NULL || cap == 0 || size == 0 ||
	    (base & (page - 1)) != 0 || (size & (page - 1)) != 0 || base + size < base)
		return EINVAL;
	a->base = base;
	a->end = base + size;
	a->page = page;
	a->free = table;
	a->cap = cap;
	a->free[0].start = base;
	a->free[0].end = a->end;
	a->nfree = 1;
	a->free_bytes = size;
	return 0;
}

bool rg_contains(const rg_arena *a, uintptr_t start, size_t len)
{
	return start >= a->base && start <= a->end && len <= a->end - start;
}

bool rg_in_use(const rg_arena *a, uintptr_t start, size_t len)
{
	if (!rg_contains(a, start, len))
		return false;
	size_t i = first_end_after(a, start);
	return i == a->nfree || a->free[i].start >= start + len;
}

int rg_alloc(rg_arena *a, size_t len, size_t align, uintptr_t *out)
{
	if (len == 0 || !aligned(a, len) || align < a->page || (align & (align - 1)) != 0)
		return EINVAL;
	for (size_t i = 0; i < a->nfree; i++) {
		rg_span *s = &a->free[i];
		uintptr_t at = (s->start + align - 1) & ~(uintptr_t)(align - 1);
		if (at < s->start || at > s->end || len > s->end - at)
			continue;
		uintptr_t end = at + len;
		if (at == s->start) {
			if (end == s->end)
				remove_spans(a, i, i + 1);
			else
				s->start = end;
		} else if (end == s->end) {
			s->end = at;
		} else {
			/* Taking the middle of a span leaves two: needs a slot. */
			if (a->nfree == a->cap)
				continue;
			uintptr_t tail = s->end;
			s->end = at;
			insert_span(a, i + 1, end, tail);
		}
		a->free_bytes -= len;
		*out = at;
		return 0;
	}
	return ENOMEM;
}

int rg_claim(rg_arena *a, uintptr_t start, size_t len, bool exclusive)
{
	uintptr_t end;
	int rc = check_range(a, start, len, &end);
	if (rc)
		return rc;
	size_t i = first_end_after(a, start);  /* first span reaching past start */
	size_t j = first_start_after(a, end - 1); /* first span starting at or after end */
	if (exclusive && (i == a->nfree || a->free[i].start > start || a->free[i].end < end))
		return EEXIST;
	if (i >= j)
		return 0; /* nothing free in the range: all of it is in use already */
	rg_span *s = &a->free[i];
	if (j - i == 1 && s->start < start && s->end > end) {
		/* The range is strictly inside one span, which splits in two. */
		if (a->nfree == a->cap)
			return ENOMEM;
		uintptr_t tail = s->end;
		s->end = start;
		insert_span(a, i + 1, end, tail);
		a->free_bytes -= len;
		return 0;
	}
	size_t lo = i, hi = j; /* spans entirely inside the range, removed below */
	if (s->start < start) {
		a->free_bytes -= s->end - start;
		s->end = start;
		lo = i + 1;
	}
	rg_span *last = &a->free[j - 1];
	if (j - 1 >= lo && last->end > end) {
		a->free_bytes -= end - last->start;
		last->start = end;
		hi = j - 1;
	}
	for (size_t k = lo; k < hi; k++)
		a->free_bytes -= a->free[k].end - a->free[k].start;
	remove_spans(a, lo, hi);
	return 0;
}

int rg_release(rg_arena *a, uintptr_t start, size_t len)
{
	uintptr_t end;
	int rc = check_range(a, start, len, &end);
	if (rc)
		return rc;
	/* Spans i..j-1 overlap or touch [start, end) and merge with it. */
	size_t i = first_end_from(a, start);
	size_t j = first_start_after(a, end);
	if (i == j) {
		if (a->nfree == a->cap)
			return ENOMEM;
		insert_span(a, i, start, end);
		a->free_bytes += len;
		return 0;
	}
	uintptr_t lo = a->free[i].start < start ? a->free[i].start : start;
	uintptr_t hi = a->free[j - 1].end > end ? a->free[j - 1].end : end;
	for (size_t k = i; k < j; k++)
		a->free_bytes -= a->free[k].end - a->free[k].start;
	a->free[i].start = lo;
	a->free[i].end = hi;
	a->free_bytes += hi - lo;
	remove_spans(a, i + 1, j);
	return 0;
}
