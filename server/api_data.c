/*
 * Datasets: ciphertext an organisation uploads for its KMS dataset
 * (docs/api.md, "Datasets"). Metadata is visible to every user; the bytes
 * only to the owner organisation and to the runs of tasks that use them.
 */
#define CF_LOG_MODULE "api"

#include <stdio.h>
#include <string.h>

#include "coffer/log.h"
#include "internal.h"

static json_t *dataset_json(const store_dataset *d)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:s,s:I}", "id", d->id, "org", d->org,
			 "name", d->name, "kms_dataset", d->kms_dataset, "size", (json_int_t)d->size,
			 "sha256", d->sha256, "state", d->state, "received", (json_int_t)d->received,
			 "creator", d->creator, "created", (json_int_t)d->created);
}

/* "ORG/NAME" naming a dataset of org in the KMS. */
static bool kms_name_of(const char *s, const char *org)
{
	size_t n = strlen(org);
	return s && strncmp(s, org, n) == 0 && s[n] == '/' && valid_name(s + n + 1);
}

void h_dataset_create(ctx *c)
{
	const char *name = body_string(c, "name");
	const char *kms = body_string(c, "kms_dataset");
	const char *sha = body_string(c, "sha256");
	const char *org = is_admin(c) ? body_string(c, "org") : c->who.user.org;
	uint64_t size = 0;
	store_dataset d = { .created = c->now };
	if (!is_admin(c) && body_string(c, "org") && strcmp(body_string(c, "org"), org) != 0) {
		api_fail(c, 403, "datasets are created for one's own organisation");
		return;
	}
	if (!org || !member_of(c, org, ANALYST_UP)) {
		api_fail(c, 403, is_admin(c) ? "an admin names the owner organisation (org)"
					     : "analysts and org-admins of an organisation create datasets");
		return;
	}
	if (!valid_name(name)) {
		api_fail(c, 400, "name: 1 to 64 of [a-z0-9-]");
		return;
	}
	if (!kms_name_of(kms, org)) {
		api_fail(c, 400, "kms_dataset: %s/NAME, the dataset's name in the KMS", org);
		return;
	}
	if (!body_uint(c, "size", &size) || size == 0) {
		api_fail(c, 400, "size: the number of bytes, at least 1");
		return;
	}
	if (size > c->d->max_dataset) {
		api_fail(c, 413, "datasets are at most %llu bytes", (unsigned long long)c->d->max_dataset);
		return;
	}
	if (!valid_hex256(sha)) {
		api_fail(c, 400, "sha256: 64 lower-case hex digits");
		return;
	}
	snprintf(d.org, sizeof(d.org), "%s", org);
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.kms_dataset, sizeof(d.kms_dataset), "%s", kms);
	snprintf(d.sha256, sizeof(d.sha256), "%s", sha);
	snprintf(d.state, sizeof(d.state), "uploading");
	snprintf(d.creator, sizeof(d.creator), "%s", c->who.user.name);
	d.size = size;
	cf_err rc = make_id("ds", d.id);
	if (rc == CF_OK)
		rc = store_dataset_create(c->d->db, &d);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "organisation", "the organisation has a dataset of that name");
		return;
	}
	api_object(c, "dataset/%s", d.id);
	api_ok(c, json_pack("{s:s,s:s}", "id", d.id, "state", d.state));
}

static void dataset_item(void *arg, const store_dataset *d)
{
	json_array_append_new(arg, dataset_json(d));
}

void h_dataset_list(ctx *c)
{
	json_t *items = json_array();
	cf_err rc = items ? store_dataset_list(c->d->db, dataset_item, items) : CF_ERR_NOMEM;
	if (rc != CF_OK) {
		json_decref(items);
		api_store_fail(c, rc, "dataset", "");
		return;
	}
	api_ok(c, json_pack("{s:o}", "items", items));
}

/* Looks up the dataset of the path; answers 404 itself. */
static bool path_dataset(ctx *c, store_dataset *d)
{
	const char *id = c->param[0];
	cf_err rc = valid_id(id, "ds") ? store_dataset_get(c->d->db, id, d) : CF_ERR_NOT_FOUND;
	if (valid_id(id, "ds"))
		api_object(c, "dataset/%s", id);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "dataset", "");
		return false;
	}
	return true;
}

void h_dataset_get(ctx *c)
{
	store_dataset d;
	if (path_dataset(c, &d))
		api_ok(c, dataset_json(&d));
}

void h_dataset_put(ctx *c)
{
	store_dataset d;
	uint64_t offset = 0, received = 0;
	if (!path_dataset(c, &d))
		return;
	if (!member_of(c, d.org, ANALYST_UP)) {
		api_fail(c, 403, "only the owner organisation uploads its dataset");
		return;
	}
	if (strcmp(d.state, "uploading") != 0) {
		api_fail(c, 409, "the dataset is %s", d.state);
		return;
	}
	if (!query_offset(c->req->query, &offset)) {
		api_fail(c, 400, "?offset=N: the bytes received so far");
		return;
	}
	if (c->req->body_len == 0) {
		api_fail(c, 400, "an empty part");
		return;
	}
	cf_err rc = blob_append(c->d, d.id, offset, c->req->body, c->req->body_len, d.size, &received);
	if (rc == CF_ERR_ARG) {
		api_fail(c, 409, "parts arrive in order: the next offset is %llu",
			 (unsigned long long)d.received);
		return;
	}
	if (rc == CF_ERR_TOO_BIG) {
		api_fail(c, 413, "more bytes than the %llu declared", (unsigned long long)d.size);
		return;
	}
	if (rc == CF_ERR_LIMIT) {
		api_fail(c, 409, "another part of this dataset is being written");
		return;
	}
	if (rc != CF_OK) {
		api_fail(c, 500, "writing the part failed");
		return;
	}
	if ((rc = store_dataset_received(c->d->db, d.id, received)) != CF_OK) {
		api_store_fail(c, rc, "dataset", "the dataset is no longer being uploaded");
		return;
	}
	api_ok(c, json_pack("{s:I}", "received", (json_int_t)received));
}

void h_dataset_commit(ctx *c)
{
	store_dataset d;
	if (!path_dataset(c, &d))
		return;
	if (!member_of(c, d.org, ANALYST_UP)) {
		api_fail(c, 403, "only the owner organisation commits its dataset");
		return;
	}
	if (strcmp(d.state, "uploading") != 0) {
		api_fail(c, 409, "the dataset is %s", d.state);
		return;
	}
	cf_err rc = blob_commit(c->d, d.id, d.size, d.sha256);
	if (rc == CF_ERR_AUTH) {
		if (store_dataset_received(c->d->db, d.id, 0) != CF_OK)
			log_warn("cannot reset the upload of %s", d.id);
		snprintf(c->reason, sizeof(c->reason), "size or sha256 mismatch");
		api_fail(c, 409, "the bytes received are not the size and SHA-256 declared: the upload "
				 "is dropped, send it again from offset 0");
		return;
	}
	if (rc == CF_ERR_LIMIT) {
		api_fail(c, 409, "a part of this dataset is being written");
		return;
	}
	if (rc != CF_OK || (rc = store_dataset_ready(c->d->db, d.id)) != CF_OK) {
		api_fail(c, 500, "committing the dataset failed (%s)", cf_strerror(rc));
		return;
	}
	api_ok(c, json_pack("{s:s,s:I,s:s,s:s}", "id", d.id, "size", (json_int_t)d.size, "sha256",
			    d.sha256, "state", "ready"));
}

void h_dataset_blob(ctx *c)
{
	store_dataset d;
	bool allowed = false;
	int fd = -1;
	uint64_t size = 0;
	if (!path_dataset(c, &d))
		return;
	if (c->who.kind == CALLER_RUN) {
		if (store_run_uses(c->d->db, c->who.token.run_id, d.id, &allowed) != CF_OK)
			allowed = false;
	} else {
		allowed = member_of(c, d.org, ANALYST_UP);
	}
	if (!allowed) {
		api_fail(c, 403, "the owner organisation and the runs that use it read a dataset");
		return;
	}
	if (strcmp(d.state, "ready") != 0) {
		api_fail(c, 409, "the dataset is %s", d.state);
		return;
	}
	cf_err rc = blob_open(c->d, d.id, &fd, &size);
	if (rc != CF_OK) {
		api_fail(c, 500, "the blob cannot be read (%s)", cf_strerror(rc));
		return;
	}
	api_stream(c, fd, size, "application/octet-stream");
}

void h_dataset_delete(ctx *c)
{
	store_dataset d;
	if (!path_dataset(c, &d))
		return;
	if (!member_of(c, d.org, ANALYST_UP)) {
		api_fail(c, 403, "only the owner organisation deletes its dataset");
		return;
	}
	cf_err rc = store_dataset_delete(c->d->db, d.id);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "dataset", "");
		return;
	}
	blob_remove(c->d, d.id);
	api_ok(c, json_object());
}
