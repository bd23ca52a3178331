/*
 * Hosts, instances (the soft driver's reservations of cores, memory and
 * enclave size on this host) and the audit log (docs/api.md, "Hosts and
 * instances", "Audit").
 */
#define CF_LOG_MODULE "api"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/enc.h"
#include "coffer/kms_client.h"
#include "coffer/log.h"
#include "internal.h"

#define MIN_ENCLAVE (1ull << 20)

static unsigned host_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static uint64_t host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static bool operator_up(const ctx *c)
{
	return c->who.kind == CALLER_USER && (c->who.role == ROLE_OPERATOR || c->who.role == ROLE_ADMIN);
}

void h_host_list(ctx *c)
{
	char name[256] = "localhost";
	bool soft = runner_soft_available(c->d);
	if (gethostname(name, sizeof(name) - 1) != 0)
		snprintf(name, sizeof(name), "localhost");
	name[sizeof(name) - 1] = 0;
	char clean[256];
	json_t *kinds = json_array();
	if (kinds && soft)
		json_array_append_new(kinds, json_string("soft"));
	/* memfd_secret memory is never swapped: enclaves can have the host's RAM, no more. */
	json_t *host = json_pack("{s:s,s:s,s:o*,s:I,s:I,s:I}", "id", c->d->host_id, "name",
				 clean_utf8(name, clean, sizeof(clean) - 1), "tee_kinds", kinds,
				 "cores", (json_int_t)host_cores(), "memory",
				 (json_int_t)host_memory(), "enclave_memory",
				 (json_int_t)(soft ? host_memory() : 0));
	api_ok(c, host ? json_pack("{s:[o]}", "items", host) : NULL);
}

static json_t *instance_json(const store_instance *in)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s?,s:I}", "id", in->id, "name", in->name,
			 "tee", in->tee, "cores", (json_int_t)in->cores, "memory",
			 (json_int_t)in->memory, "enclave_size", (json_int_t)in->enclave_size, "state",
			 in->state, "run", in->run_id[0] ? in->run_id : NULL, "created",
			 (json_int_t)in->created);
}

void h_instance_create(ctx *c)
{
	const char *name = body_string(c, "name");
	const char *tee = body_string(c, "tee");
	uint64_t cores = 0, memory = 0, enclave = 0;
	store_instance in = { .created = c->now };
	if (valid_name(name))
		api_object(c, "instance/%s", name);
	if (!operator_up(c)) {
		api_fail(c, 403, "operators and admins manage instances");
		return;
	}
	if (!valid_name(name)) {
		api_fail(c, 400, "name: 1 to 64 of [a-z0-9-]");
		return;
	}
	if (!tee || strcmp(tee, "soft") != 0) {
		api_fail(c, 400, "tee: \"soft\" is the one kind this host drives");
		return;
	}
	if (!body_uint(c, "cores", &cores) || !body_uint(c, "memory", &memory) ||
	    !body_uint(c, "enclave_size", &enclave) || cores < 1 || enclave < MIN_ENCLAVE ||
	    memory < enclave) {
		api_fail(c, 400, "cores (at least 1), memory and enclave_size (bytes, at least 1 MiB, "
				 "memory at least the enclave size)");
		return;
	}
	if (cores > host_cores() || memory > host_memory()) {
		api_fail(c, 409, "this host has %u cores and %llu bytes of memory", host_cores(),
			 (unsigned long long)host_memory());
		return;
	}
	snprintf(in.name, sizeof(in.name), "%s", name);
	snprintf(in.tee, sizeof(in.tee), "soft");
	in.cores = (unsigned)cores;
	in.memory = memory;
	in.enclave_size = enclave;
	cf_err rc = make_id("inst", in.id);
	if (rc == CF_OK)
		rc = store_instance_create(c->d->db, &in);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "instance", "an instance of that name exists");
		return;
	}
	api_object(c, "instance/%s", in.id);
	api_ok(c, json_pack("{s:s,s:s}", "id", in.id, "state", "stopped"));
}

static void instance_item(void *arg, const store_instance *in)
{
	json_array_append_new(arg, instance_json(in));
}

void h_instance_list(ctx *c)
{
	json_t *items = json_array();
	cf_err rc = items ? store_instance_list(c->d->db, instance_item, items) : CF_ERR_NOMEM;
	if (rc != CF_OK) {
		json_decref(items);
		api_store_fail(c, rc, "instance", "");
		return;
	}
	api_ok(c, json_pack("{s:o}", "items", items));
}

/* The instance id of the path, checked, and the caller allowed; answers itself. */
static const char *path_instance(ctx *c)
{
	const char *id = c->param[0];
	if (!valid_id(id, "inst")) {
		api_fail(c, 404, "no such instance");
		return NULL;
	}
	api_object(c, "instance/%s", id);
	if (!operator_up(c)) {
		api_fail(c, 403, "operators and admins manage instances");
		return NULL;
	}
	return id;
}

void h_instance_start(ctx *c)
{
	const char *id = path_instance(c);
	if (!id)
		return;
	cf_err rc = store_instance_start(c->d->db, id, host_cores(), host_memory());
	if (rc == CF_ERR_LIMIT)
		api_fail(c, 409, "the running instances and this one need more cores or memory than "
				 "this host has");
	else if (rc != CF_OK)
		api_store_fail(c, rc, "instance", "the instance is running");
	else
		api_ok(c, json_pack("{s:s}", "state", "running"));
	store_instance in;
	if (rc == CF_OK && store_instance_get(c->d->db, id, &in) == CF_OK)
		runner_prewarm(c->d->runs, in.cores, in.memory, in.enclave_size);
}

void h_instance_stop(ctx *c)
{
	const char *id = path_instance(c);
	if (!id)
		return;
	store_instance in;
	bool sized = store_instance_get(c->d->db, id, &in) == CF_OK;
	cf_err rc = store_instance_stop(c->d->db, id);
	if (rc != CF_OK)
		api_store_fail(c, rc, "instance", "the instance is stopped, or busy with a run");
	else
		api_ok(c, json_pack("{s:s}", "state", "stopped"));
	/* Its warm enclave goes too (another instance of its size re-warms at its next run). */
	if (rc == CF_OK && sized)
		runner_drop_spares(c->d->runs, in.cores, in.memory, in.enclave_size);
}

void h_instance_delete(ctx *c)
{
	const char *id = path_instance(c);
	if (!id)
		return;
	cf_err rc = store_instance_delete(c->d->db, id);
	if (rc != CF_OK)
		api_store_fail(c, rc, "instance", "stop the instance first");
	else
		api_ok(c, json_object());
}

void h_audit_log(ctx *c)
{
	struct stat st;
	if (c->who.role != ROLE_ADMIN && c->who.role != ROLE_AUDITOR) {
		api_fail(c, 403, "admins and auditors read the audit log");
		return;
	}
	int fd = open(c->d->audit_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	/* Its size under the writer's lock is a line boundary: no torn last line is sent. */
	pthread_mutex_lock(&c->d->audit_lock);
	int ok = fd >= 0 && fstat(fd, &st) == 0;
	pthread_mutex_unlock(&c->d->audit_lock);
	if (!ok) {
		if (fd >= 0)
			close(fd);
		api_fail(c, 500, "the audit log cannot be read");
		return;
	}
	api_stream(c, fd, (uint64_t)st.st_size, "application/x-ndjson");
}

void h_audit_key(ctx *c)
{
	char b64[CF_KMS_PUB_B64_LEN + 1], hex[2 * CF_ED25519_PUB_LEN + 1];
	cf_b64_encode(c->d->audit_pub, sizeof(c->d->audit_pub), true, b64);
	cf_hex_encode(c->d->audit_pub, sizeof(c->d->audit_pub), hex);
	api_ok(c, json_pack("{s:s,s:s}", "pub", b64, "pub_hex", hex));
}
