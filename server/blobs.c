/*
 * The blob store: ciphertext files in STATE/blobs. An upload grows
 * NAME.part strictly in order (the file's size is the offset the next
 * part must name), under an exclusive flock so that two parts can never
 * interleave; the commit checks the declared size and SHA-256 and renames
 * the file to NAME. Names are built by the callers from checked ids only.
 */
#define CF_LOG_MODULE "blobs"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/log.h"
#include "internal.h"

#define HASH_PIECE (1u << 20)

static void blob_path(cofferd *d, const char *name, const char *suffix, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s%s", d->blobs_dir, name, suffix);
}

/* Opens and locks NAME.part; CF_ERR_LIMIT if someone else holds it. */
static cf_err open_part(cofferd *d, const char *name, bool create, int *out)
{
	char path[COFFERD_PATH_MAX + 96];
	blob_path(d, name, ".part", path, sizeof(path));
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? CF_ERR_LIMIT : CF_ERR_IO;
	}
	*out = fd;
	return CF_OK;
}

cf_err blob_append(cofferd *d, const char *name, uint64_t offset, const uint8_t *data, size_t len,
		   uint64_t max, uint64_t *received)
{
	struct stat st;
	int fd = -1;
	/* Only the first part makes the file: a late part after a commit finds none. */
	cf_err rc = open_part(d, name, offset == 0, &fd);
	if (rc == CF_ERR_NOT_FOUND)
		return CF_ERR_ARG;
	if (rc != CF_OK)
		return rc;
	if (fstat(fd, &st) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	if ((uint64_t)st.st_size != offset) {
		rc = CF_ERR_ARG;
		goto out;
	}
	if (len > max || offset > max - len) {
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("writing %s.part: %s", name, strerror(errno));
			/* Whatever landed of this part is cut off again: the offset stays true. */
			if (ftruncate(fd, (off_t)offset) != 0)
				log_error("cannot truncate %s.part: %s", name, strerror(errno));
			rc = CF_ERR_IO;
			goto out;
		}
		done += (size_t)n;
	}
	if (fdatasync(fd) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	*received = offset + len;
out:
	close(fd);
	return rc;
}

cf_err blob_commit(cofferd *d, const char *name, uint64_t size, const char *sha256_hex)
{
	char part[COFFERD_PATH_MAX + 96], final[COFFERD_PATH_MAX + 96];
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1];
	struct stat st;
	cf_hash_ctx *h = NULL;
	uint8_t *buf = NULL;
	int fd = -1;
	bool bad = false;
	blob_path(d, name, ".part", part, sizeof(part));
	blob_path(d, name, "", final, sizeof(final));
	cf_err rc = open_part(d, name, false, &fd);
	if (rc == CF_ERR_NOT_FOUND)
		return CF_ERR_AUTH; /* nothing was sent: not the size declared */
	if (rc != CF_OK)
		return rc;
	if (fstat(fd, &st) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	if ((uint64_t)st.st_size != size) {
		bad = true;
		goto out;
	}
	if (!(buf = malloc(HASH_PIECE))) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_hash_new(CF_SHA256, &h)) != CF_OK)
		goto out;
	for (uint64_t off = 0; off < size;) {
		ssize_t n = pread(fd, buf, HASH_PIECE, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = CF_ERR_IO;
			goto out;
		}
		if ((rc = cf_hash_update(h, buf, (size_t)n)) != CF_OK)
			goto out;
		off += (uint64_t)n;
	}
	if ((rc = cf_hash_final(h, digest)) != CF_OK)
		goto out;
	cf_hex_encode(digest, sizeof(digest), hex);
	if (strcmp(hex, sha256_hex) != 0) {
		bad = true;
		goto out;
	}
	if (fsync(fd) != 0 || rename(part, final) != 0) {
		rc = CF_ERR_IO;
		goto out;
	}
	rc = cf_fsync_parent(final);
out:
	if (bad) {
		/* The upload starts again from nothing. */
		unlink(part);
		rc = CF_ERR_AUTH;
	}
	cf_hash_free(h);
	free(buf);
	close(fd);
	return rc;
}

cf_err blob_open(cofferd *d, const char *name, int *fd, uint64_t *size)
{
	char path[COFFERD_PATH_MAX + 96];
	struct stat st;
	blob_path(d, name, "", path, sizeof(path));
	int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(f);
		return CF_ERR_IO;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return CF_OK;
}

void blob_remove(cofferd *d, const char *name)
{
	char path[COFFERD_PATH_MAX + 96];
	blob_path(d, name, "", path, sizeof(path));
	unlink(path);
	blob_path(d, name, ".part", path, sizeof(path));
	unlink(path);
}
