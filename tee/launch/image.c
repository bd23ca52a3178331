/*
 * The launch config, the manifest, and the measured image.
 *
 * Measurement (SHA-384), documented in docs/soft-tee.md:
 *   "coffer-soft-measurement-v1\n"
 *   || u64le(len) || program bytes
 *   || u64le(len) || runtime bytes
 *   || u64le(len) || allocator bytes
 *   || u64le(len) || canonical JSON of the effective manifest
 * The bytes hashed are the bytes in sealed memfds, and those are what run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "coffer/crypto.h"
#include "coffer/json.h"
#include "launch.h"

#define MEASURE_DOMAIN "coffer-soft-measurement-v1\n"
#define MIN_ENCLAVE_SIZE (1u << 20)
#define MAX_PROGRAM_SIZE (1ull << 32)

void launch_config_init(struct launch_config *c)
{
	memset(c, 0, sizeof(*c));
}

void launch_config_free(struct launch_config *c)
{
	for (size_t i = 0; i < c->nargs; i++)
		free(c->args[i]);
	for (size_t i = 0; i < c->nenv; i++)
		free(c->env[i]);
	c->nargs = c->nenv = 0;
}

cf_err launch_parse_size(const char *s, uint64_t *out)
{
	char *end;
	/* Digits first: strtoull would skip spaces and accept a sign (" -1" = 2^64 - 1). */
	if (!s || *s < '0' || *s > '9')
		return CF_ERR_ARG;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return CF_ERR_ARG;
	unsigned shift = 0;
	if (*end) {
		switch (*end) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		case 'T': case 't': shift = 40; break;
		default: return CF_ERR_ARG;
		}
		end++;
		/* Exactly one of "", "B" or "iB" after the unit. */
		if (end[0] == 'i' && end[1] == 'B')
			end += 2;
		else if (end[0] == 'B')
			end++;
		if (*end)
			return CF_ERR_ARG;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return CF_ERR_ARG;
	*out = (uint64_t)v << shift;
	return CF_OK;
}

static cf_err json_size(json_t *v, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return CF_OK;
	}
	if (json_is_string(v))
		return launch_parse_size(json_string_value(v), out);
	return CF_ERR_PARSE;
}

static bool valid_env_name(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	}
	return true;
}

cf_err launch_manifest_load(struct launch_config *c, const char *path, char *why, size_t whylen)
{
	cf_err rc = CF_ERR_PARSE;
	json_t *root = NULL;
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return CF_ERR_IO;
	}
	char *text = malloc(CF_JSON_DEFAULT_MAX_BYTES + 1);
	size_t len = text ? fread(text, 1, CF_JSON_DEFAULT_MAX_BYTES + 1, f) : 0;
	fclose(f);
	if (!text)
		return CF_ERR_NOMEM;
	if ((rc = cf_json_parse(text, len, NULL, &root)) != CF_OK) {
		snprintf(why, whylen, "%s: not valid JSON (%s)", path, cf_strerror(rc));
		goto out;
	}
	rc = CF_ERR_PARSE;
	if (!json_is_object(root)) {
		snprintf(why, whylen, "%s: the manifest must be a JSON object", path);
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "version") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) != 1) {
				snprintf(why, whylen, "%s: \"version\" must be 1", path);
				goto out;
			}
		} else if (strcmp(key, "args") == 0) {
			size_t i;
			json_t *a;
			if (!json_is_array(v) || json_array_size(v) > LAUNCH_MAX_ARGS) {
				snprintf(why, whylen, "%s: \"args\" must be an array of strings", path);
				goto out;
			}
			json_array_foreach(v, i, a) {
				if (!json_is_string(a)) {
					snprintf(why, whylen, "%s: \"args\"[%zu] is not a string", path, i);
					goto out;
				}
			}
			if (c->nargs == 0) {
				json_array_foreach(v, i, a) c->args[c->nargs++] = strdup(json_string_value(a));
			} else {
				/* Both given: they must agree, or the measurement would lie. */
				bool same = c->nargs == json_array_size(v);
				for (i = 0; same && i < c->nargs; i++)
					same = strcmp(c->args[i], json_string_value(json_array_get(v, i))) == 0;
				if (!same) {
					snprintf(why, whylen, "%s: the program arguments differ from the manifest's \"args\"", path);
					goto out;
				}
			}
		} else if (strcmp(key, "env") == 0) {
			size_t i;
			json_t *a;
			/* Names already in c count against the limit: c->env is fixed-size. */
			if (!json_is_array(v) || json_array_size(v) > LAUNCH_MAX_ENV - c->nenv) {
				snprintf(why, whylen, "%s: \"env\" must be an array of at most %d names", path, LAUNCH_MAX_ENV);
				goto out;
			}
			json_array_foreach(v, i, a) {
				if (!json_is_string(a) || !valid_env_name(json_string_value(a))) {
					snprintf(why, whylen, "%s: \"env\"[%zu] is not a variable name", path, i);
					goto out;
				}
				c->env[c->nenv++] = strdup(json_string_value(a));
			}
		} else if (strcmp(key, "enclave_size") == 0 || strcmp(key, "memory") == 0) {
			uint64_t size;
			uint64_t *slot = key[0] == 'e' ? &c->enclave_size : &c->memory;
			if (json_size(v, &size) != CF_OK) {
				snprintf(why, whylen, "%s: \"%s\" is not a size", path, key);
				goto out;
			}
			if (*slot == 0)
				*slot = size;
		} else if (strcmp(key, "cores") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 4096) {
				snprintf(why, whylen, "%s: \"cores\" must be a small integer", path);
				goto out;
			}
			if (c->cores == 0)
				c->cores = (unsigned)json_integer_value(v);
		} else if (strcmp(key, "debug") == 0) {
			if (!json_is_boolean(v)) {
				snprintf(why, whylen, "%s: \"debug\" must be true or false", path);
				goto out;
			}
			c->debug = c->debug || json_is_true(v);
		} else {
			snprintf(why, whylen, "%s: unknown manifest field \"%s\"", path, key);
			goto out;
		}
	}
	for (size_t i = 0; i < c->nargs; i++) {
		if (!c->args[i]) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < c->nenv; i++) {
		if (!c->env[i]) {
			rc = CF_ERR_NOMEM;
			goto out;
		}
	}
	rc = CF_OK;
out:
	json_decref(root);
	free(text);
	return rc;
}

cf_err launch_config_check(const struct launch_config *c, char *why, size_t whylen)
{
	long pages = sysconf(_SC_PHYS_PAGES), pagesize = sysconf(_SC_PAGESIZE);
	uint64_t ram = pages > 0 && pagesize > 0 ? (uint64_t)pages * (uint64_t)pagesize : 0;
	if (c->enclave_size < MIN_ENCLAVE_SIZE) {
		snprintf(why, whylen, "enclave size %llu is below the minimum of 1M",
			 (unsigned long long)c->enclave_size);
		return CF_ERR_ARG;
	}
	if (ram && c->enclave_size > ram) {
		snprintf(why, whylen, "enclave size %llu exceeds this host's memory (%llu bytes)",
			 (unsigned long long)c->enclave_size, (unsigned long long)ram);
		return CF_ERR_ARG;
	}
	if (c->memory && c->memory < c->enclave_size) {
		snprintf(why, whylen, "memory limit is smaller than the enclave size");
		return CF_ERR_ARG;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu > 0 && c->cores > (unsigned)ncpu) {
		snprintf(why, whylen, "%u cores requested, this host has %ld", c->cores, ncpu);
		return CF_ERR_ARG;
	}
	return CF_OK;
}

/* Copies a file into a sealed memfd: later changes to the file change nothing. */
static cf_err copy_to_memfd(const char *path, const char *name, bool cloexec, int *out,
			    char *why, size_t whylen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it). */
	int src = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (src < 0) {
		int e = errno;
		snprintf(why, whylen, "%s: %s", path, strerror(e));
		return e == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	}
	struct stat st;
	if (fstat(src, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_PROGRAM_SIZE) {
		snprintf(why, whylen, "%s: not a regular file of reasonable size", path);
		close(src);
		return CF_ERR_ARG;
	}
	int fd = memfd_create(name, MFD_ALLOW_SEALING | (cloexec ? MFD_CLOEXEC : 0));
	if (fd < 0) {
		snprintf(why, whylen, "memfd_create: %s", strerror(errno));
		close(src);
		return CF_ERR_IO;
	}
	cf_err rc = CF_OK;
	uint8_t buf[1 << 16];
	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = CF_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = CF_ERR_IO;
				break;
			}
			off += w;
		}
		if (rc != CF_OK)
			break;
	}
	close(src);
	if (rc == CF_OK &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
		rc = CF_ERR_IO;
	if (rc != CF_OK) {
		snprintf(why, whylen, "copying %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	*out = fd;
	return CF_OK;
}

static cf_err hash_fd(cf_hash_ctx *h, int fd)
{
	uint8_t buf[1 << 16], len_le[8];
	struct stat st;
	if (fd < 0) {
		memset(len_le, 0, 8);
		return cf_hash_update(h, len_le, 8);
	}
	if (fstat(fd, &st) != 0)
		return CF_ERR_IO;
	for (int i = 0; i < 8; i++)
		len_le[i] = (uint8_t)((uint64_t)st.st_size >> (8 * i));
	cf_err rc = cf_hash_update(h, len_le, 8);
	off_t off = 0;
	while (rc == CF_OK) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return CF_ERR_IO;
		if (n == 0)
			break;
		rc = cf_hash_update(h, buf, (size_t)n);
		off += n;
	}
	return rc;
}

/*
 * json_string() returns NULL for a string that is not UTF-8, and
 * json_array_append_new() then appends nothing: an argument the manifest
 * cannot carry would run unmeasured. Such strings are refused.
 */
static cf_err string_array(char *const *v, size_t n, const char *what, json_t **out, char *why,
			   size_t whylen)
{
	json_t *a = json_array();
	if (!a)
		return CF_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_string(v[i]);
		if (!s) {
			snprintf(why, whylen, "%s %zu is not valid UTF-8: the manifest cannot record it",
				 what, i + 1);
			json_decref(a);
			return CF_ERR_ARG;
		}
		if (json_array_append_new(a, s) != 0) {
			json_decref(a);
			return CF_ERR_NOMEM;
		}
	}
	*out = a;
	return CF_OK;
}

static cf_err manifest_canonical(const struct launch_config *c, cf_buf *out, char *why,
				 size_t whylen)
{
	json_t *args = NULL, *env = NULL;
	cf_err rc;
	if ((rc = string_array(c->args, c->nargs, "argument", &args, why, whylen)) != CF_OK)
		return rc;
	if ((rc = string_array(c->env, c->nenv, "environment name", &env, why, whylen)) != CF_OK) {
		json_decref(args);
		return rc;
	}
	json_t *m = json_pack("{s:i, s:o, s:o, s:I, s:i, s:I, s:b}", "version", 1, "args", args,
			      "env", env, "enclave_size", (json_int_t)c->enclave_size, "cores",
			      (int)c->cores, "memory", (json_int_t)c->memory, "debug", c->debug);
	if (!m)
		return CF_ERR_NOMEM;
	char *s = NULL;
	size_t len = 0;
	rc = cf_json_canonical(m, &s, &len);
	if (rc == CF_OK)
		rc = cf_buf_append(out, s, len);
	free(s);
	json_decref(m);
	return rc;
}

void launch_image_free(struct launch_image *img)
{
	if (img->program_fd >= 0)
		close(img->program_fd);
	if (img->runtime_fd >= 0)
		close(img->runtime_fd);
	if (img->allocator_fd >= 0)
		close(img->allocator_fd);
	img->program_fd = img->runtime_fd = img->allocator_fd = -1;
	cf_buf_free(&img->manifest);
}

cf_err launch_image_build(const struct launch_config *c, struct launch_image *img, char *why,
			  size_t whylen)
{
	cf_err rc;
	cf_hash_ctx *h = NULL;
	img->program_fd = img->runtime_fd = img->allocator_fd = -1;
	cf_buf_init(&img->manifest, 1 << 20, false);
	/* The program is exec'd from its fd; the runtime libraries are opened by ld.so through /proc/self/fd. */
	if ((rc = copy_to_memfd(c->program, "coffer-enclave", true, &img->program_fd, why, whylen)) != CF_OK)
		goto out;
	if (c->runtime &&
	    (rc = copy_to_memfd(c->runtime, "coffer-soft-runtime", false, &img->runtime_fd, why, whylen)) != CF_OK)
		goto out;
	if (c->allocator &&
	    (rc = copy_to_memfd(c->allocator, "coffer-soft-allocator", false, &img->allocator_fd, why, whylen)) != CF_OK)
		goto out;
	if (whylen)
		why[0] = 0;
	if ((rc = manifest_canonical(c, &img->manifest, why, whylen)) != CF_OK) {
		if (whylen && !why[0])
			snprintf(why, whylen, "the manifest: %s", cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_hash_new(CF_SHA384, &h)) != CF_OK) {
		snprintf(why, whylen, "measuring: %s", cf_strerror(rc));
		goto out;
	}
	uint8_t mlen[8];
	for (int i = 0; i < 8; i++)
		mlen[i] = (uint8_t)((uint64_t)img->manifest.len >> (8 * i));
	if ((rc = cf_hash_update(h, MEASURE_DOMAIN, strlen(MEASURE_DOMAIN))) != CF_OK ||
	    (rc = hash_fd(h, img->program_fd)) != CF_OK || (rc = hash_fd(h, img->runtime_fd)) != CF_OK ||
	    (rc = hash_fd(h, img->allocator_fd)) != CF_OK || (rc = cf_hash_update(h, mlen, 8)) != CF_OK ||
	    (rc = cf_hash_update(h, img->manifest.data, img->manifest.len)) != CF_OK ||
	    (rc = cf_hash_final(h, img->measurement)) != CF_OK) {
		snprintf(why, whylen, "measuring: %s", cf_strerror(rc));
		goto out;
	}
out:
	cf_hash_free(h);
	if (rc != CF_OK)
		launch_image_free(img);
	return rc;
}
