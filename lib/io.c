#include "coffer/io.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cf_err cf_read_full(cf_reader r, uint8_t *buf, size_t cap, size_t *got)
{
	size_t total = 0;
	while (total < cap) {
		size_t n = 0;
		cf_err rc = r.read(r.ctx, buf + total, cap - total, &n);
		if (rc != CF_OK)
			return rc;
		if (n == 0)
			break;
		/* A reader that claims more than it was given has overrun buf. */
		if (n > cap - total)
			return CF_ERR_IO;
		total += n;
	}
	*got = total;
	return CF_OK;
}

static cf_err fd_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	cf_fd_io *io = ctx;
	for (;;) {
		ssize_t n = read(io->fd, buf, cap);
		if (n >= 0) {
			*got = (size_t)n;
			return CF_OK;
		}
		if (errno != EINTR)
			return CF_ERR_IO;
	}
}

static cf_err fd_write(void *ctx, const uint8_t *buf, size_t len)
{
	cf_fd_io *io = ctx;
	while (len > 0) {
		ssize_t n = write(io->fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return CF_ERR_IO;
		}
		buf += n;
		len -= (size_t)n;
	}
	return CF_OK;
}

cf_reader cf_fd_reader(cf_fd_io *io)
{
	return (cf_reader){ fd_read, io };
}

cf_writer cf_fd_writer(cf_fd_io *io)
{
	return (cf_writer){ fd_write, io };
}

static cf_err mem_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	cf_mem_reader *m = ctx;
	size_t n = m->len - m->off;
	if (n > cap)
		n = cap;
	if (m->max_read && n > m->max_read)
		n = m->max_read;
	if (n)
		memcpy(buf, m->data + m->off, n);
	m->off += n;
	*got = n;
	return CF_OK;
}

cf_reader cf_mem_reader_of(cf_mem_reader *m)
{
	return (cf_reader){ mem_read, m };
}

static cf_err buf_write(void *ctx, const uint8_t *data, size_t len)
{
	return cf_buf_append(ctx, data, len);
}

cf_writer cf_buf_writer(cf_buf *b)
{
	return (cf_writer){ buf_write, b };
}

cf_err cf_outfile_open(cf_outfile *o, const char *path, unsigned mode)
{
	memset(o, 0, sizeof(*o));
	o->io.fd = -1;
	size_t len = strlen(path);
	o->path = strdup(path);
	o->tmp_path = malloc(len + 16);
	if (!o->path || !o->tmp_path) {
		cf_outfile_abort(o);
		return CF_ERR_NOMEM;
	}
	/* Same directory, so rename() is atomic. */
	snprintf(o->tmp_path, len + 16, "%s.tmp-XXXXXX", path);
	int fd = mkstemp(o->tmp_path);
	if (fd < 0) {
		free(o->tmp_path);
		o->tmp_path = NULL;
		cf_outfile_abort(o);
		return CF_ERR_IO;
	}
	o->io.fd = fd;
	if (fchmod(fd, mode ? mode : 0600) != 0) {
		cf_outfile_abort(o);
		return CF_ERR_IO;
	}
	return CF_OK;
}

cf_writer cf_outfile_writer(cf_outfile *o)
{
	return cf_fd_writer(&o->io);
}

cf_err cf_outfile_commit(cf_outfile *o)
{
	cf_err rc = CF_OK;
	/* Close even when fsync fails, or the descriptor leaks. */
	if (fsync(o->io.fd) != 0)
		rc = CF_ERR_IO;
	if (o->io.fd >= 0 && close(o->io.fd) != 0)
		rc = CF_ERR_IO;
	o->io.fd = -1;
	if (rc == CF_OK && rename(o->tmp_path, o->path) != 0)
		rc = CF_ERR_IO;
	if (rc != CF_OK) {
		cf_outfile_abort(o);
		return rc;
	}
	free(o->path);
	free(o->tmp_path);
	o->path = o->tmp_path = NULL;
	return CF_OK;
}

void cf_outfile_abort(cf_outfile *o)
{
	if (o->io.fd >= 0)
		close(o->io.fd);
	o->io.fd = -1;
	if (o->tmp_path)
		unlink(o->tmp_path);
	free(o->path);
	free(o->tmp_path);
	o->path = o->tmp_path = NULL;
}

/*
 * Prefetching reader: one producer thread fills blocks from `in`; the
 * consumer drains them in order. A ring of nblocks, each with its length;
 * a zero-length block marks end of input, an error is passed along.
 */
struct pf_block {
	uint8_t *data;
	size_t len;
};

struct cf_prefetch {
	cf_reader in;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pf_block *blocks;
	unsigned nblocks;
	size_t block_size;
	unsigned head;   /* next block the consumer reads */
	unsigned count;  /* filled blocks */
	size_t head_off; /* consumed bytes of the head block */
	bool done;       /* producer reached end of input or an error */
	bool stop;       /* consumer is going away */
	cf_err error;
	bool started;
};

static void *pf_main(void *arg)
{
	cf_prefetch *p = arg;
	unsigned tail = 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->count == p->nblocks && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			return NULL;
		/* The producer owns block `tail` until it publishes it. */
		size_t got = 0;
		cf_err rc = cf_read_full(p->in, p->blocks[tail].data, p->block_size, &got);
		pthread_mutex_lock(&p->lock);
		if (rc != CF_OK) {
			p->error = rc;
			p->done = true;
		} else {
			p->blocks[tail].len = got;
			p->count++;
			tail = (tail + 1) % p->nblocks;
			if (got < p->block_size)
				p->done = true;
		}
		bool finished = p->done;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		if (finished)
			return NULL;
	}
}

static cf_err pf_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	cf_prefetch *p = ctx;
	size_t total = 0;
	cf_err rc = CF_OK;
	pthread_mutex_lock(&p->lock);
	while (total < cap) {
		while (p->count == 0 && !p->done)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->count == 0) {
			rc = total ? CF_OK : p->error;
			break;
		}
		struct pf_block *b = &p->blocks[p->head];
		size_t n = b->len - p->head_off;
		if (n > cap - total)
			n = cap - total;
		/* Copy outside the lock would race with nothing: the producer never touches the head. */
		pthread_mutex_unlock(&p->lock);
		memcpy(buf + total, b->data + p->head_off, n);
		pthread_mutex_lock(&p->lock);
		total += n;
		p->head_off += n;
		if (p->head_off == b->len) {
			bool last = b->len < p->block_size;
			p->head = (p->head + 1) % p->nblocks;
			p->head_off = 0;
			p->count--;
			pthread_cond_broadcast(&p->cond);
			if (last)
				break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	*got = total;
	return rc;
}

cf_err cf_prefetch_new(cf_reader in, size_t block_size, unsigned nblocks, cf_prefetch **out)
{
	if (block_size == 0 || nblocks < 2 || nblocks > 64)
		return CF_ERR_ARG;
	cf_prefetch *p = calloc(1, sizeof(*p));
	if (!p)
		return CF_ERR_NOMEM;
	p->in = in;
	p->nblocks = nblocks;
	p->block_size = block_size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->blocks = calloc(nblocks, sizeof(*p->blocks));
	if (!p->blocks)
		goto fail;
	for (unsigned i = 0; i < nblocks; i++) {
		p->blocks[i].data = malloc(block_size);
		if (!p->blocks[i].data)
			goto fail;
	}
	if (pthread_create(&p->thread, NULL, pf_main, p) != 0)
		goto fail;
	p->started = true;
	*out = p;
	return CF_OK;
fail:
	cf_prefetch_free(p);
	return CF_ERR_NOMEM;
}

cf_reader cf_prefetch_reader(cf_prefetch *p)
{
	return (cf_reader){ pf_read, p };
}

void cf_prefetch_free(cf_prefetch *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	if (p->blocks) {
		for (unsigned i = 0; i < p->nblocks; i++) {
			/* Blocks may hold plaintext being encrypted. */
			if (p->blocks[i].data) {
				cf_wipe(p->blocks[i].data, p->block_size);
				free(p->blocks[i].data);
			}
		}
		free(p->blocks);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

cf_err cf_fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return CF_ERR_NOMEM;
	cf_err rc = CF_OK;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = CF_ERR_IO;
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}
