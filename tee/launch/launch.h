/*
 * coffer-launch internals: the soft TEE launcher ("hardware" of the
 * software TEE). One config is built from the command line and an
 * optional manifest; the same config drives `measure` and `run`, so the
 * measurement an operator publishes is exactly what `run` records.
 */
#ifndef COFFER_LAUNCH_H
#define COFFER_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coffer/buf.h"
#include "coffer/err.h"

#define LAUNCH_MAX_ARGS 256
#define LAUNCH_MAX_ENV 64

struct launch_config {
	const char *program;          /* path given by the operator */
	char *args[LAUNCH_MAX_ARGS];  /* argv[1..] (argv[0] is not measured) */
	size_t nargs;
	char *env[LAUNCH_MAX_ENV];    /* names passed through from our environment */
	size_t nenv;
	uint64_t enclave_size;        /* bytes of secretmem arena */
	unsigned cores;               /* 0: no CPU limit */
	uint64_t memory;              /* bytes; 0: no memory limit */
	bool debug;
	const char *runtime;          /* libcoffer-soft.so */
	const char *allocator;        /* libmimalloc.so.2 */
	const char *platform_dir;
	const char *user;             /* drop to this user, keeping CAP_IPC_LOCK */
	bool quiet;
};

/* What is measured, copied into sealed memfds: exactly these bytes run. */
struct launch_image {
	int program_fd;
	int runtime_fd;
	int allocator_fd;
	uint8_t measurement[48];
	cf_buf manifest; /* canonical JSON of the effective config */
};

/* "256M", "1G", "4096", "64K" (binary units). */
cf_err launch_parse_size(const char *s, uint64_t *out) CF_WUR;
void launch_config_init(struct launch_config *c);
void launch_config_free(struct launch_config *c);
/* Merges a manifest file into c (command-line values already set win). */
cf_err launch_manifest_load(struct launch_config *c, const char *path, char *why,
			    size_t whylen) CF_WUR;
cf_err launch_config_check(const struct launch_config *c, char *why, size_t whylen) CF_WUR;

cf_err launch_image_build(const struct launch_config *c, struct launch_image *img, char *why,
			  size_t whylen) CF_WUR;
void launch_image_free(struct launch_image *img);

/* Runs the program; returns its exit status (128 + signal if killed). */
int launch_run(const struct launch_config *c);

#endif
