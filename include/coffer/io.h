/*
 * io: the two small stream interfaces every streaming codec uses, and
 * their standard implementations (file descriptors, memory, and an
 * output file that only appears, atomically, when it is complete).
 *
 * A read returns CF_OK with *got == 0 only at end of input; it may
 * return fewer bytes than asked. A write consumes everything or fails.
 */
#ifndef COFFER_IO_H
#define COFFER_IO_H

#include <stddef.h>
#include <stdint.h>

#include "coffer/buf.h"
#include "coffer/err.h"

typedef struct cf_reader {
	cf_err (*read)(void *ctx, uint8_t *buf, size_t cap, size_t *got);
	void *ctx;
} cf_reader;

typedef struct cf_writer {
	cf_err (*write)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
} cf_writer;

/* Reads until cap bytes or end of input; *got < cap means end of input. */
cf_err cf_read_full(cf_reader r, uint8_t *buf, size_t cap, size_t *got) CF_WUR;

/* File descriptors (retries EINTR and short writes). */
typedef struct cf_fd_io {
	int fd;
} cf_fd_io;
cf_reader cf_fd_reader(cf_fd_io *io);
cf_writer cf_fd_writer(cf_fd_io *io);

/* Memory: reads from a fixed span; writes append to a cf_buf (its max applies). */
typedef struct cf_mem_reader {
	const uint8_t *data;
	size_t len;
	size_t off;
	size_t max_read; /* if non-zero, at most this many bytes per read (tests) */
} cf_mem_reader;
cf_reader cf_mem_reader_of(cf_mem_reader *m);
cf_writer cf_buf_writer(cf_buf *b);

/*
 * A reader that reads ahead on its own thread into a few large blocks,
 * so that copying input out of the kernel overlaps with the caller's
 * work (age encryption runs at crypto speed instead of crypto + copy).
 */
typedef struct cf_prefetch cf_prefetch;
cf_err cf_prefetch_new(cf_reader in, size_t block_size, unsigned nblocks, cf_prefetch **out) CF_WUR;
cf_reader cf_prefetch_reader(cf_prefetch *p);
/* Stops the thread; safe at any point, also before end of input. */
void cf_prefetch_free(cf_prefetch *p);

/*
 * An output file written under a temporary name in the same directory
 * (mode 0600 unless mode says otherwise) and renamed over `path` by
 * cf_outfile_commit(). cf_outfile_abort() removes the temporary, so a
 * failed decryption never leaves partial plaintext at `path`.
 */
typedef struct cf_outfile {
	char *path;
	char *tmp_path;
	cf_fd_io io;
} cf_outfile;
cf_err cf_outfile_open(cf_outfile *o, const char *path, unsigned mode) CF_WUR;
cf_writer cf_outfile_writer(cf_outfile *o);
cf_err cf_outfile_commit(cf_outfile *o) CF_WUR;
void cf_outfile_abort(cf_outfile *o);

/*
 * fsyncs the folder holding path, so that a file just created or renamed
 * there survives a crash.
 */
cf_err cf_fsync_parent(const char *path) CF_WUR;

#endif
