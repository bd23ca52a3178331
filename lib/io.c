#include "coffer/io.h"

#include <errno.h>
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
