/*
 * audit: the hash-chained, signed audit log (include/coffer/audit.h,
 * docs/audit.md). One function, check_line(), decides whether a line is a
 * good entry; the writer uses it on the tail it resumes from, the
 * verifiers on every line.
 */
#include "coffer/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "coffer/buf.h"
#include "coffer/enc.h"
#include "coffer/json.h"

#define HEX_HASH_LEN (2 * CF_AUDIT_HASH_LEN)
#define SIG_B64_LEN 88 /* padded base64 of 64 bytes */
#define SIG_MSG_LEN (CF_AUDIT_SIG_CONTEXT_LEN + CF_AUDIT_HASH_LEN)
#define READ_CHUNK (64u * 1024)

/* --- the entry format, shared by writer and verifier --- */

enum field { F_ACTOR, F_HASH, F_OBJECT, F_OPERATION, F_PREV, F_RESULT, F_SEQ, F_SIG, F_TIME, NFIELDS };

/* In sorted order, as the canonical form has them. */
static const char *const field_names[NFIELDS] = {
	"actor", "hash", "object", "operation", "prev", "result", "seq", "sig", "time",
};

/* Where the chain stands after an entry: what the next one must continue. */
struct chain {
	long long seq;
	uint8_t hash[CF_AUDIT_HASH_LEN];
	char time[CF_AUDIT_TIME_LEN + 1];
};

/* The outcome of checking one line. */
struct verdict {
	cf_audit_fault fault;
	bool seq_known;
	long long seq;
	char reason[sizeof(((cf_audit_report *)0)->reason)];
};

const char *cf_audit_fault_name(cf_audit_fault fault)
{
	switch (fault) {
	case CF_AUDIT_FAULT_NONE: return "none";
	case CF_AUDIT_FAULT_LINE_TOO_LONG: return "line_too_long";
	case CF_AUDIT_FAULT_INCOMPLETE: return "incomplete_line";
	case CF_AUDIT_FAULT_EMPTY_LINE: return "empty_line";
	case CF_AUDIT_FAULT_JSON: return "bad_json";
	case CF_AUDIT_FAULT_FIELDS: return "bad_fields";
	case CF_AUDIT_FAULT_NOT_CANONICAL: return "not_canonical";
	case CF_AUDIT_FAULT_VALUE: return "bad_value";
	case CF_AUDIT_FAULT_SEQ: return "seq_mismatch";
	case CF_AUDIT_FAULT_PREV: return "prev_mismatch";
	case CF_AUDIT_FAULT_TIME: return "time_backwards";
	case CF_AUDIT_FAULT_HASH: return "hash_mismatch";
	case CF_AUDIT_FAULT_SIGNATURE: return "bad_signature";
	default: return "unknown";
	}
}

static void set_fault(struct verdict *v, cf_audit_fault fault, const char *fmt, ...)
	CF_PRINTF(3, 4);

static void set_fault(struct verdict *v, cf_audit_fault fault, const char *fmt, ...)
{
	va_list ap;
	v->fault = fault;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t need;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1fu, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0fu, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07u, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			uint8_t b = s[i + k];
			if ((b & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (b & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* Exactly "YYYY-MM-DDTHH:MM:SS.mmmZ", a real UTC date and time of day. */
static bool time_valid(const char *t, size_t len)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (len != CF_AUDIT_TIME_LEN)
		return false;
	for (size_t i = 0; i < CF_AUDIT_TIME_LEN; i++) {
		if (pattern[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pattern[i])
			return false;
	}
	int y = digits(t, 4), mo = digits(t + 5, 2), d = digits(t + 8, 2);
	int h = digits(t + 11, 2), mi = digits(t + 14, 2), s = digits(t + 17, 2);
	if (mo < 1 || mo > 12 || d < 1)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
		return false;
	return h <= 23 && mi <= 59 && s <= 59;
}

/* Exactly 64 lower-case hex digits. */
static bool hash_hex_decode(const char *s, size_t len, uint8_t out[static CF_AUDIT_HASH_LEN])
{
	if (len != HEX_HASH_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	size_t n = 0;
	return cf_hex_decode(s, len, out, CF_AUDIT_HASH_LEN, &n) == CF_OK && n == CF_AUDIT_HASH_LEN;
}

static void sig_message(const uint8_t hash[static CF_AUDIT_HASH_LEN], uint8_t msg[static SIG_MSG_LEN])
{
	memcpy(msg, CF_AUDIT_SIG_CONTEXT, CF_AUDIT_SIG_CONTEXT_LEN);
	memcpy(msg + CF_AUDIT_SIG_CONTEXT_LEN, hash, CF_AUDIT_HASH_LEN);
}

/*
 * The entry without hash and sig, as a JSON object (the caller decrefs).
 * NULL only if out of memory or a string is not UTF-8.
 */
static json_t *entry_body(long long seq, const char *when, const char *actor,
			  const char *operation, const char *object, const char *result,
			  const uint8_t prev[static CF_AUDIT_HASH_LEN])
{
	char prevhex[HEX_HASH_LEN + 1];
	cf_hex_encode(prev, CF_AUDIT_HASH_LEN, prevhex);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "actor", actor, "object", object,
			 "operation", operation, "prev", prevhex, "result", result, "seq",
			 (json_int_t)seq, "time", when);
}

static cf_err body_hash(const json_t *body, uint8_t hash[static CF_AUDIT_HASH_LEN])
{
	char *canon = NULL;
	size_t len = 0;
	cf_err rc = cf_json_canonical(body, &canon, &len);
	if (rc == CF_OK)
		rc = cf_hash(CF_SHA256, canon, len, hash);
	free(canon);
	return rc;
}

/* A printable field name for a reason, or "" if it is not a plain word. */
static const char *safe_name(const char *key)
{
	size_t n = strlen(key);
	if (n == 0 || n > 32)
		return "";
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return "";
	}
	return key;
}

static int field_index(const char *key)
{
	for (int i = 0; i < NFIELDS; i++) {
		if (strcmp(key, field_names[i]) == 0)
			return i;
	}
	return -1;
}

/*
 * Checks that a string field is within its size bounds. Strings from
 * jansson are valid UTF-8 without NUL, so size is all that is left.
 */
static bool field_size_ok(const json_t *v, size_t min)
{
	size_t n = json_string_length(v);
	return n >= min && n <= CF_AUDIT_MAX_FIELD;
}

/*
 * Decides whether one line (without its newline) is a good entry. With
 * `prev` it must also continue that chain; without it (the writer's tail
 * check) only the entry's own hash and signature are checked. On a good
 * entry *next is where the chain stands after it. A bad line is reported
 * in *v, with CF_OK; other errors mean the line could not be checked.
 */
static cf_err check_line(const char *line, size_t len, const uint8_t pub[static CF_ED25519_PUB_LEN],
			 const struct chain *prev, struct chain *next, struct verdict *v)
{
	json_t *obj = NULL, *body = NULL;
	char *canon = NULL;
	size_t canon_len = 0;
	cf_err rc = CF_OK;
	json_t *f[NFIELDS];

	memset(v, 0, sizeof(*v));
	if (len == 0) {
		set_fault(v, CF_AUDIT_FAULT_EMPTY_LINE, "empty line");
		goto out;
	}
	if (len > CF_AUDIT_MAX_LINE) {
		set_fault(v, CF_AUDIT_FAULT_LINE_TOO_LONG, "line longer than %u bytes",
			  CF_AUDIT_MAX_LINE);
		goto out;
	}
	const cf_json_limits limits = { .max_bytes = CF_AUDIT_MAX_LINE, .max_depth = 1 };
	rc = cf_json_parse(line, len, &limits, &obj);
	if (rc == CF_ERR_LIMIT) {
		set_fault(v, CF_AUDIT_FAULT_JSON, "nested JSON (an entry is a flat object)");
		rc = CF_OK;
		goto out;
	}
	if (rc != CF_OK) {
		set_fault(v, CF_AUDIT_FAULT_JSON, "not valid JSON");
		rc = CF_OK;
		goto out;
	}
	if (!json_is_object(obj)) {
		set_fault(v, CF_AUDIT_FAULT_JSON, "not a JSON object");
		goto out;
	}

	/* The seq first, so that every later fault can name it. */
	json_t *seqv = json_object_get(obj, "seq");
	if (json_is_integer(seqv)) {
		v->seq_known = true;
		v->seq = json_integer_value(seqv);
	}

	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		if (field_index(key) < 0) {
			const char *name = safe_name(key);
			set_fault(v, CF_AUDIT_FAULT_FIELDS, "unexpected field%s%s%s", *name ? " \"" : "",
				  name, *name ? "\"" : "");
			goto out;
		}
	}
	for (int i = 0; i < NFIELDS; i++) {
		f[i] = json_object_get(obj, field_names[i]);
		if (!f[i]) {
			set_fault(v, CF_AUDIT_FAULT_FIELDS, "missing field \"%s\"", field_names[i]);
			goto out;
		}
		if (i == F_SEQ ? !json_is_integer(f[i]) : !json_is_string(f[i])) {
			set_fault(v, CF_AUDIT_FAULT_FIELDS, "field \"%s\" is not %s", field_names[i],
				  i == F_SEQ ? "an integer" : "a string");
			goto out;
		}
	}

	/* One spelling per entry: the line is exactly its canonical JSON. */
	if ((rc = cf_json_canonical(obj, &canon, &canon_len)) != CF_OK)
		goto out;
	if (canon_len != len || memcmp(canon, line, len) != 0) {
		set_fault(v, CF_AUDIT_FAULT_NOT_CANONICAL,
			  "not in canonical form (sorted keys, no whitespace)");
		goto out;
	}

	/* Each value on its own. */
	struct chain here;
	uint8_t prev_hash[CF_AUDIT_HASH_LEN], sig[CF_ED25519_SIG_LEN];
	const char *when = json_string_value(f[F_TIME]);
	here.seq = v->seq;
	if (here.seq < 1) {
		set_fault(v, CF_AUDIT_FAULT_VALUE, "seq must be at least 1");
		goto out;
	}
	if (!time_valid(when, json_string_length(f[F_TIME]))) {
		set_fault(v, CF_AUDIT_FAULT_VALUE,
			  "time is not an RFC 3339 UTC time like 2025-07-01T12:00:00.000Z");
		goto out;
	}
	memcpy(here.time, when, CF_AUDIT_TIME_LEN + 1);
	static const int text_fields[] = { F_ACTOR, F_OPERATION, F_OBJECT, F_RESULT };
	for (size_t i = 0; i < sizeof(text_fields) / sizeof(text_fields[0]); i++) {
		int k = text_fields[i];
		if (!field_size_ok(f[k], k == F_OBJECT ? 0 : 1)) {
			set_fault(v, CF_AUDIT_FAULT_VALUE, "field \"%s\" is %s", field_names[k],
				  json_string_length(f[k]) ? "too long" : "empty");
			goto out;
		}
	}
	if (!hash_hex_decode(json_string_value(f[F_PREV]), json_string_length(f[F_PREV]),
			     prev_hash)) {
		set_fault(v, CF_AUDIT_FAULT_VALUE, "prev is not 64 lower-case hex digits");
		goto out;
	}
	if (!hash_hex_decode(json_string_value(f[F_HASH]), json_string_length(f[F_HASH]),
			     here.hash)) {
		set_fault(v, CF_AUDIT_FAULT_VALUE, "hash is not 64 lower-case hex digits");
		goto out;
	}
	size_t siglen = 0;
	if (json_string_length(f[F_SIG]) != SIG_B64_LEN ||
	    cf_b64_decode(json_string_value(f[F_SIG]), SIG_B64_LEN, true, sig, sizeof(sig),
			  &siglen) != CF_OK ||
	    siglen != CF_ED25519_SIG_LEN) {
		set_fault(v, CF_AUDIT_FAULT_VALUE, "sig is not a base64 Ed25519 signature");
		goto out;
	}

	/* The chain. */
	if (prev) {
		if (prev->seq == LLONG_MAX || here.seq != prev->seq + 1) {
			set_fault(v, CF_AUDIT_FAULT_SEQ, "seq %lld where %lld was expected", here.seq,
				  prev->seq + 1);
			goto out;
		}
		if (!cf_ct_equal(prev_hash, prev->hash, CF_AUDIT_HASH_LEN)) {
			set_fault(v, CF_AUDIT_FAULT_PREV,
				  here.seq == 1 ? "prev of the first entry is not 64 zeros"
						: "prev is not the hash of the previous entry");
			goto out;
		}
		if (strcmp(here.time, prev->time) < 0) {
			set_fault(v, CF_AUDIT_FAULT_TIME, "time is before the previous entry's");
			goto out;
		}
	}

	/* The entry's own hash and signature. */
	uint8_t want[CF_AUDIT_HASH_LEN], msg[SIG_MSG_LEN];
	body = entry_body(here.seq, here.time, json_string_value(f[F_ACTOR]),
			  json_string_value(f[F_OPERATION]), json_string_value(f[F_OBJECT]),
			  json_string_value(f[F_RESULT]), prev_hash);
	if (!body) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = body_hash(body, want)) != CF_OK)
		goto out;
	if (!cf_ct_equal(want, here.hash, CF_AUDIT_HASH_LEN)) {
		set_fault(v, CF_AUDIT_FAULT_HASH, "hash does not match the entry");
		goto out;
	}
	sig_message(here.hash, msg);
	rc = cf_ed25519_verify(pub, msg, sizeof(msg), sig);
	if (rc == CF_ERR_AUTH) {
		set_fault(v, CF_AUDIT_FAULT_SIGNATURE, "signature does not verify under the key");
		rc = CF_OK;
		goto out;
	}
	if (rc != CF_OK)
		goto out;
	*next = here;
out:
	free(canon);
	json_decref(body);
	json_decref(obj);
	return rc;
}

/* --- writing --- */

struct cf_audit_log {
	pthread_mutex_t lock;
	int fd;
	off_t size;
	bool broken; /* a write or fsync failed: the file's state is unknown */
	uint8_t pub[CF_ED25519_PUB_LEN];
	uint8_t seed[CF_ED25519_SEED_LEN];
	cf_audit_sign_fn sign;
	void *sign_ctx;
	struct chain head; /* the last entry written (seq 0 for none) */
};

static cf_err seed_sign(void *ctx, const uint8_t *msg, size_t len,
			uint8_t sig[static CF_ED25519_SIG_LEN])
{
	cf_audit_log *log = ctx;
	return cf_ed25519_sign(log->seed, msg, len, sig);
}

static cf_err pread_full(int fd, uint8_t *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return CF_ERR_IO;
		if (n == 0)
			return CF_ERR_TRUNCATED;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return CF_OK;
}

/* Resumes from the last line, which must be a whole, good entry under pub. */
static cf_err read_tail(cf_audit_log *log)
{
	memset(&log->head, 0, sizeof(log->head));
	if (log->size == 0)
		return CF_OK;
	size_t want = (uint64_t)log->size < CF_AUDIT_MAX_LINE + 2 ? (size_t)log->size
								    : CF_AUDIT_MAX_LINE + 2;
	uint8_t *buf = malloc(want);
	if (!buf)
		return CF_ERR_NOMEM;
	cf_err rc = pread_full(log->fd, buf, want, log->size - (off_t)want);
	if (rc != CF_OK)
		goto out;
	if (buf[want - 1] != '\n') {
		rc = CF_ERR_TRUNCATED;
		goto out;
	}
	size_t start = want - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && want < (uint64_t)log->size) {
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	struct verdict v;
	struct chain next;
	rc = check_line((const char *)buf + start, want - 1 - start, log->pub, NULL, &next, &v);
	if (rc != CF_OK)
		goto out;
	if (v.fault != CF_AUDIT_FAULT_NONE) {
		rc = v.fault == CF_AUDIT_FAULT_HASH || v.fault == CF_AUDIT_FAULT_SIGNATURE
			     ? CF_ERR_AUTH
			     : CF_ERR_PARSE;
		goto out;
	}
	log->head = next;
out:
	free(buf);
	return rc;
}

static cf_err open_common(const char *path, const uint8_t pub[static CF_ED25519_PUB_LEN],
			  const uint8_t *seed, cf_audit_sign_fn sign, void *ctx, cf_audit_log **out)
{
	if (!path || !out || (!seed && !sign))
		return CF_ERR_ARG;
	*out = NULL;
	cf_err rc;
	if (seed) {
		uint8_t derived[CF_ED25519_PUB_LEN];
		if ((rc = cf_ed25519_public(seed, derived)) != CF_OK)
			return rc;
		if (!cf_ct_equal(derived, pub, CF_ED25519_PUB_LEN))
			return CF_ERR_ARG;
	}
	cf_audit_log *log = calloc(1, sizeof(*log));
	if (!log)
		return CF_ERR_NOMEM;
	if (pthread_mutex_init(&log->lock, NULL) != 0) {
		free(log);
		return CF_ERR_NOMEM;
	}
	memcpy(log->pub, pub, CF_ED25519_PUB_LEN);
	if (seed) {
		memcpy(log->seed, seed, CF_ED25519_SEED_LEN);
		log->sign = seed_sign;
		log->sign_ctx = log;
	} else {
		log->sign = sign;
		log->sign_ctx = ctx;
	}

	bool created = true;
	int saved_errno;
	log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (log->fd < 0 && errno == EEXIST) {
		created = false;
		log->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	}
	if (log->fd < 0) {
		rc = errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
		goto fail;
	}
	/* One writer per log: two would both extend the same head. */
	if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
		rc = CF_ERR_IO;
		goto fail;
	}
	struct stat st;
	if (fstat(log->fd, &st) != 0) {
		rc = CF_ERR_IO;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = CF_ERR_ARG;
		goto fail;
	}
	log->size = st.st_size;
	if (created && (rc = cf_fsync_parent(path)) != CF_OK)
		goto fail;
	if ((rc = read_tail(log)) != CF_OK)
		goto fail;
	*out = log;
	return CF_OK;
fail:
	saved_errno = errno;
	cf_audit_close(log);
	errno = saved_errno;
	return rc;
}

cf_err cf_audit_open(const char *path, const uint8_t seed[static CF_ED25519_SEED_LEN],
		     const uint8_t pub[static CF_ED25519_PUB_LEN], cf_audit_log **out)
{
	if (!seed || !pub)
		return CF_ERR_ARG;
	return open_common(path, pub, seed, NULL, NULL, out);
}

cf_err cf_audit_open_signer(const char *path, const uint8_t pub[static CF_ED25519_PUB_LEN],
			    cf_audit_sign_fn sign, void *ctx, cf_audit_log **out)
{
	if (!pub || !sign)
		return CF_ERR_ARG;
	return open_common(path, pub, NULL, sign, ctx, out);
}

void cf_audit_close(cf_audit_log *log)
{
	if (!log)
		return;
	if (log->fd >= 0)
		close(log->fd); /* releases the flock */
	pthread_mutex_destroy(&log->lock);
	cf_wipe(log, sizeof(*log));
	free(log);
}

void cf_audit_head(cf_audit_log *log, uint64_t *seq, uint8_t hash[static CF_AUDIT_HASH_LEN])
{
	pthread_mutex_lock(&log->lock);
	*seq = (uint64_t)log->head.seq;
	memcpy(hash, log->head.hash, CF_AUDIT_HASH_LEN);
	pthread_mutex_unlock(&log->lock);
}

static cf_err check_field(const char *s, size_t min)
{
	if (!s)
		return CF_ERR_ARG;
	size_t n = strnlen(s, CF_AUDIT_MAX_FIELD + 1);
	if (n > CF_AUDIT_MAX_FIELD)
		return CF_ERR_TOO_BIG;
	if (n < min)
		return CF_ERR_ARG;
	return utf8_valid((const uint8_t *)s, n) ? CF_OK : CF_ERR_ENCODING;
}

static cf_err now_utc(char out[static CF_AUDIT_TIME_LEN + 1])
{
	struct timespec ts;
	struct tm tm;
	char tmp[64];
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
		return CF_ERR_IO;
	int n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(ts.tv_nsec / 1000000));
	if (n != (int)CF_AUDIT_TIME_LEN || !time_valid(tmp, (size_t)n))
		return CF_ERR_UNSUPPORTED; /* a year outside 0000..9999 */
	memcpy(out, tmp, CF_AUDIT_TIME_LEN + 1);
	return CF_OK;
}

/* Builds the line (with its newline) for the entry after log->head. */
static cf_err make_line(cf_audit_log *log, const char *when, const char *actor,
			const char *operation, const char *object, const char *result,
			cf_buf *line, uint8_t hash[static CF_AUDIT_HASH_LEN])
{
	uint8_t sig[CF_ED25519_SIG_LEN], msg[SIG_MSG_LEN];
	char hashhex[HEX_HASH_LEN + 1], sigb64[SIG_B64_LEN + 1];
	char *canon = NULL;
	size_t canon_len = 0;
	cf_err rc;
	json_t *o = entry_body(log->head.seq + 1, when, actor, operation, object, result,
			       log->head.hash);
	if (!o)
		return CF_ERR_NOMEM;
	if ((rc = body_hash(o, hash)) != CF_OK)
		goto out;
	sig_message(hash, msg);
	if ((rc = log->sign(log->sign_ctx, msg, sizeof(msg), sig)) != CF_OK)
		goto out;
	/* A signer holding another key, or a faulty signature, never reaches the log. */
	if ((rc = cf_ed25519_verify(log->pub, msg, sizeof(msg), sig)) != CF_OK)
		goto out;
	cf_hex_encode(hash, CF_AUDIT_HASH_LEN, hashhex);
	cf_b64_encode(sig, sizeof(sig), true, sigb64);
	if (json_object_set_new(o, "hash", json_string(hashhex)) != 0 ||
	    json_object_set_new(o, "sig", json_string(sigb64)) != 0) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	if ((rc = cf_json_canonical(o, &canon, &canon_len)) != CF_OK)
		goto out;
	if (canon_len > CF_AUDIT_MAX_LINE) {
		rc = CF_ERR_TOO_BIG;
		goto out;
	}
	if ((rc = cf_buf_append(line, canon, canon_len)) == CF_OK)
		rc = cf_buf_append_byte(line, '\n');
out:
	free(canon);
	json_decref(o);
	return rc;
}

static cf_err write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return CF_ERR_IO;
		p += n;
		len -= (size_t)n;
	}
	return CF_OK;
}

cf_err cf_audit_append(cf_audit_log *log, const char *actor, const char *operation,
		       const char *object, const char *result)
{
	cf_err rc;
	if (!log)
		return CF_ERR_ARG;
	if ((rc = check_field(actor, 1)) != CF_OK || (rc = check_field(operation, 1)) != CF_OK ||
	    (rc = check_field(object, 0)) != CF_OK || (rc = check_field(result, 1)) != CF_OK)
		return rc;

	cf_buf line;
	cf_buf_init(&line, CF_AUDIT_MAX_LINE + 1, false);
	uint8_t hash[CF_AUDIT_HASH_LEN];
	char when[CF_AUDIT_TIME_LEN + 1];

	pthread_mutex_lock(&log->lock);
	if (log->broken) {
		rc = CF_ERR_IO;
		goto out;
	}
	if (log->head.seq == LLONG_MAX) {
		rc = CF_ERR_LIMIT;
		goto out;
	}
	if ((rc = now_utc(when)) != CF_OK)
		goto out;
	/* The clock may step back; the log's time does not. */
	if (strcmp(when, log->head.time) < 0)
		memcpy(when, log->head.time, sizeof(when));
	if ((rc = make_line(log, when, actor, operation, object, result, &line, hash)) != CF_OK)
		goto out;

	rc = write_all(log->fd, line.data, line.len);
	if (rc != CF_OK) {
		/* Take back a torn line if we can; either way, stop writing. */
		int saved = errno;
		(void)!ftruncate(log->fd, log->size);
		errno = saved;
		log->broken = true;
		goto out;
	}
	if (fsync(log->fd) != 0) {
		/* After a failed fsync the kernel may have dropped the pages: trust nothing. */
		log->broken = true;
		rc = CF_ERR_IO;
		goto out;
	}
	log->size += (off_t)line.len;
	log->head.seq++;
	memcpy(log->head.hash, hash, sizeof(hash));
	memcpy(log->head.time, when, sizeof(when));
out:
	pthread_mutex_unlock(&log->lock);
	cf_buf_free(&line);
	return rc;
}

/* --- verifying --- */

struct verifier {
	const uint8_t *pub;
	struct chain chain;
	uint64_t line; /* lines consumed */
	cf_audit_report *rep;
};

static void verifier_init(struct verifier *v, const uint8_t *pub, cf_audit_report *rep)
{
	memset(v, 0, sizeof(*v));
	memset(rep, 0, sizeof(*rep));
	v->pub = pub;
	v->rep = rep;
}

static cf_err verifier_fault(struct verifier *v, cf_audit_fault fault, const char *reason)
{
	cf_audit_report *r = v->rep;
	r->fault = fault;
	r->line = v->line + 1;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	return CF_ERR_AUTH;
}

static cf_err verifier_line(struct verifier *v, const char *line, size_t len)
{
	struct verdict vd;
	struct chain next;
	cf_err rc = check_line(line, len, v->pub, &v->chain, &next, &vd);
	if (rc != CF_OK)
		return rc;
	if (vd.fault != CF_AUDIT_FAULT_NONE) {
		v->rep->seq_known = vd.seq_known;
		v->rep->seq = vd.seq;
		return verifier_fault(v, vd.fault, vd.reason);
	}
	v->line++;
	v->chain = next;
	v->rep->entries++;
	memcpy(v->rep->last_hash, next.hash, CF_AUDIT_HASH_LEN);
	memcpy(v->rep->last_time, next.time, sizeof(next.time));
	return CF_OK;
}

static cf_err too_long(struct verifier *v)
{
	char reason[64];
	snprintf(reason, sizeof(reason), "line longer than %u bytes", CF_AUDIT_MAX_LINE);
	return verifier_fault(v, CF_AUDIT_FAULT_LINE_TOO_LONG, reason);
}

static cf_err incomplete(struct verifier *v)
{
	return verifier_fault(v, CF_AUDIT_FAULT_INCOMPLETE,
			      "incomplete last line (no newline at the end of the file)");
}

cf_err cf_audit_verify(const void *text, size_t len, const uint8_t pub[static CF_ED25519_PUB_LEN],
		       cf_audit_report *report)
{
	if (!report)
		return CF_ERR_ARG;
	struct verifier v;
	verifier_init(&v, pub, report);
	if (!pub || (!text && len))
		return CF_ERR_ARG;
	const char *p = text, *end = len ? p + len : p;
	while (p < end) {
		size_t rest = (size_t)(end - p);
		size_t window = rest < CF_AUDIT_MAX_LINE + 1 ? rest : CF_AUDIT_MAX_LINE + 1;
		const char *nl = memchr(p, '\n', window);
		if (!nl)
			return rest > CF_AUDIT_MAX_LINE ? too_long(&v) : incomplete(&v);
		cf_err rc = verifier_line(&v, p, (size_t)(nl - p));
		if (rc != CF_OK)
			return rc;
		p = nl + 1;
	}
	return CF_OK;
}

cf_err cf_audit_verify_reader(cf_reader in, const uint8_t pub[static CF_ED25519_PUB_LEN],
			      cf_audit_report *report)
{
	if (!report)
		return CF_ERR_ARG;
	struct verifier v;
	verifier_init(&v, pub, report);
	if (!pub || !in.read)
		return CF_ERR_ARG;
	char *line = malloc(CF_AUDIT_MAX_LINE);
	uint8_t *chunk = malloc(READ_CHUNK);
	size_t linelen = 0;
	cf_err rc = CF_OK;
	if (!line || !chunk) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		size_t got = 0;
		if ((rc = in.read(in.ctx, chunk, READ_CHUNK, &got)) != CF_OK)
			goto out;
		if (got > READ_CHUNK) {
			rc = CF_ERR_IO;
			goto out;
		}
		if (got == 0)
			break;
		size_t off = 0;
		while (off < got) {
			const uint8_t *nl = memchr(chunk + off, '\n', got - off);
			size_t n = nl ? (size_t)(nl - (chunk + off)) : got - off;
			if (n > CF_AUDIT_MAX_LINE - linelen) {
				rc = too_long(&v);
				goto out;
			}
			memcpy(line + linelen, chunk + off, n);
			linelen += n;
			off += n;
			if (nl) {
				off++;
				rc = verifier_line(&v, line, linelen);
				linelen = 0;
				if (rc != CF_OK)
					goto out;
			}
		}
	}
	if (linelen > 0)
		rc = incomplete(&v);
out:
	free(line);
	free(chunk);
	return rc;
}

cf_err cf_audit_verify_file(const char *path, const uint8_t pub[static CF_ED25519_PUB_LEN],
			    cf_audit_report *report)
{
	if (!report)
		return CF_ERR_ARG;
	memset(report, 0, sizeof(*report));
	if (!path)
		return CF_ERR_ARG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	cf_fd_io io = { fd };
	cf_err rc = cf_audit_verify_reader(cf_fd_reader(&io), pub, report);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}
