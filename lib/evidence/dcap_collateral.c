/*
 * DCAP collateral: Intel PCS TCB Info (v3) and Enclave Identity (v2), as
 * PCS bodies ({"tcbInfo":...,"signature":"hex"}) or as the dcap-qvl
 * QuoteCollateralV3 JSON bundle, plus CRLs and issuer chains.
 *
 * Signatures cover the exact bytes of the tcbInfo / enclaveIdentity object
 * as served (testdata/FORMATS.md), so a PCS body is scanned for the raw
 * span of that member instead of being re-serialised. Every document is
 * parsed into plain structures here with every field checked (types,
 * ranges, hex lengths, dates); the checks in dcap.c only compare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "dcap_internal.h"

#define COLLATERAL_MAX_BYTES (1u << 20)

/* --- time --- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

cf_err dcap_parse_iso_time(const char *s, time_t *out)
{
	unsigned y, mo, d, h, mi, se;
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (!s || strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	    s[16] != ':' || s[19] != 'Z')
		return CF_ERR_PARSE;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return CF_ERR_PARSE;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    se > 59)
		return CF_ERR_PARSE;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return CF_ERR_PARSE;
	long long t = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + se;
	*out = (time_t)t;
	return CF_OK;
}

void dcap_format_time(time_t t, char *out, size_t outlen)
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "@%lld", (long long)t);
}

/* --- raw member spans --- */

static size_t ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

/* Index just past the string starting at s[i] == '"'; n on error. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return n + 1;
}

/* Index just past the value at s[i]; > n on error. Input is valid JSON. */
static size_t skip_value(const char *s, size_t n, size_t i)
{
	if (i >= n)
		return n + 1;
	if (s[i] == '"')
		return skip_string(s, n, i);
	if (s[i] == '{' || s[i] == '[') {
		size_t depth = 0;
		while (i < n) {
			char ch = s[i];
			if (ch == '"') {
				i = skip_string(s, n, i);
				continue;
			}
			if (ch == '{' || ch == '[')
				depth++;
			else if (ch == '}' || ch == ']') {
				if (--depth == 0)
					return i + 1;
			}
			i++;
		}
		return n + 1;
	}
	while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
	       s[i] != '\r' && s[i] != '\n')
		i++;
	return i;
}

cf_err dcap_json_member_span(const char *text, size_t len, const char *key, size_t *start,
			     size_t *end)
{
	size_t klen = strlen(key);
	size_t i = ws(text, len, 0);
	if (i >= len || text[i] != '{')
		return CF_ERR_PARSE;
	i++;
	for (;;) {
		i = ws(text, len, i);
		if (i >= len || text[i] != '"')
			return CF_ERR_NOT_FOUND;
		size_t ks = i + 1;
		i = skip_string(text, len, i);
		if (i > len)
			return CF_ERR_PARSE;
		bool match = i - 1 - ks == klen && memcmp(text + ks, key, klen) == 0;
		i = ws(text, len, i);
		if (i >= len || text[i] != ':')
			return CF_ERR_PARSE;
		i = ws(text, len, i + 1);
		size_t vs = i;
		i = skip_value(text, len, i);
		if (i > len)
			return CF_ERR_PARSE;
		if (match) {
			*start = vs;
			*end = i;
			return CF_OK;
		}
		i = ws(text, len, i);
		if (i >= len || text[i] != ',')
			return CF_ERR_NOT_FOUND;
		i++;
	}
}

/* --- typed fields --- */

static const char *get_str(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool get_hex(const json_t *o, const char *k, uint8_t *out, size_t n)
{
	json_t *v = json_object_get(o, k);
	size_t got = 0;
	if (!json_is_string(v) || json_string_length(v) != 2 * n)
		return false;
	return cf_hex_decode(json_string_value(v), 2 * n, out, n, &got) == CF_OK && got == n;
}

static bool get_uint(const json_t *o, const char *k, long long max, long long *out)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool get_date(const json_t *o, const char *k, time_t *out)
{
	const char *s = get_str(o, k);
	return s && dcap_parse_iso_time(s, out) == CF_OK;
}

/* advisoryIDs: optional array of strings. */
static bool get_advisories(const json_t *o, json_t **out)
{
	json_t *a = json_object_get(o, "advisoryIDs");
	size_t i;
	json_t *e;
	*out = NULL;
	if (!a)
		return true;
	if (!json_is_array(a))
		return false;
	json_array_foreach(a, i, e) {
		if (!json_is_string(e))
			return false;
	}
	*out = a;
	return true;
}

static bool get_status(const json_t *o, cf_tcb_status *out)
{
	const char *s = get_str(o, "tcbStatus");
	return s && cf_tcb_status_parse(s, out) == CF_OK && *out != CF_TCB_UNKNOWN;
}

/* sgxtcbcomponents / tdxtcbcomponents: exactly 16 {"svn": 0..255, ...}. */
static bool get_components(const json_t *tcb, const char *k, uint8_t out[16])
{
	json_t *a = json_object_get(tcb, k);
	if (!json_is_array(a) || json_array_size(a) != 16)
		return false;
	for (size_t i = 0; i < 16; i++) {
		long long svn;
		if (!get_uint(json_array_get(a, i), "svn", 255, &svn))
			return false;
		out[i] = (uint8_t)svn;
	}
	return true;
}

#define BAD(...)                                        \
	do {                                            \
		snprintf(why, whylen, __VA_ARGS__);     \
		rc = CF_ERR_PARSE;                      \
		goto out;                               \
	} while (0)

/* --- ordering (Intel QVL: std::set<TcbLevel, std::greater<>>) --- */

static bool level_greater(const dcap_tcb_level *a, const dcap_tcb_level *b, bool tdx)
{
	int c = memcmp(a->sgx, b->sgx, 16);
	if (c == 0) {
		if (tdx && a->pce_svn == b->pce_svn)
			return memcmp(a->tdx, b->tdx, 16) > 0;
		return a->pce_svn > b->pce_svn;
	}
	return c > 0;
}

static void sort_levels(dcap_tcb_level *l, size_t n, bool tdx)
{
	/* Insertion sort: at most DCAP_MAX_LEVELS, usually ~10; stable on ties. */
	for (size_t i = 1; i < n; i++) {
		dcap_tcb_level x = l[i];
		size_t j = i;
		while (j > 0 && level_greater(&x, &l[j - 1], tdx)) {
			l[j] = l[j - 1];
			j--;
		}
		l[j] = x;
	}
}

static void sort_isv(dcap_isv_level *l, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		dcap_isv_level x = l[i];
		size_t j = i;
		while (j > 0 && x.isv_svn > l[j - 1].isv_svn) {
			l[j] = l[j - 1];
			j--;
		}
		l[j] = x;
	}
}

static cf_err parse_isv_levels(const json_t *o, const char *what, dcap_isv_level **out, size_t *n,
			       char *why, size_t whylen)
{
	cf_err rc = CF_OK;
	json_t *a = json_object_get(o, "tcbLevels");
	*out = NULL;
	*n = 0;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > DCAP_MAX_LEVELS)
		BAD("%s: tcbLevels must be an array of 1..%d levels", what, DCAP_MAX_LEVELS);
	size_t count = json_array_size(a);
	dcap_isv_level *l = calloc(count, sizeof(*l));
	if (!l)
		return CF_ERR_NOMEM;
	*out = l;
	*n = count;
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_array_get(a, i);
		json_t *tcb = json_object_get(e, "tcb");
		long long svn;
		time_t date;
		if (!json_is_object(e) || !json_is_object(tcb) || !get_uint(tcb, "isvsvn", 65535, &svn))
			BAD("%s: tcbLevels[%zu].tcb.isvsvn missing or out of range", what, i);
		if (!get_status(e, &l[i].status))
			BAD("%s: tcbLevels[%zu].tcbStatus unknown", what, i);
		if (!get_date(e, "tcbDate", &date))
			BAD("%s: tcbLevels[%zu].tcbDate not an ISO time", what, i);
		if (!get_advisories(e, &l[i].advisories))
			BAD("%s: tcbLevels[%zu].advisoryIDs not an array of strings", what, i);
		l[i].isv_svn = (uint16_t)svn;
		l[i].listed = i;
	}
	sort_isv(l, count);
out:
	return rc;
}

/* --- TCB Info --- */

static cf_err tcb_info_from_json(json_t *root, dcap_tcb_info *t, char *why, size_t whylen)
{
	cf_err rc = CF_OK;
	memset(t, 0, sizeof(*t));
	t->root = root;
	if (!json_is_object(root))
		BAD("TCB Info: not a JSON object");
	const char *id = get_str(root, "id");
	if (!id || (strcmp(id, "SGX") != 0 && strcmp(id, "TDX") != 0))
		BAD("TCB Info: id must be \"SGX\" or \"TDX\"");
	t->tdx = strcmp(id, "TDX") == 0;
	if (!get_uint(root, "version", 1000, &t->version))
		BAD("TCB Info: version missing");
	if (t->version != 3)
		BAD("TCB Info version %lld (supported: 3)", t->version);
	if (!get_date(root, "issueDate", &t->issue_date) ||
	    !get_date(root, "nextUpdate", &t->next_update))
		BAD("TCB Info: issueDate/nextUpdate not ISO times");
	if (!get_hex(root, "fmspc", t->fmspc, 6))
		BAD("TCB Info: fmspc not 6 hex bytes");
	if (!get_hex(root, "pceId", t->pce_id, 2))
		BAD("TCB Info: pceId not 2 hex bytes");
	if (!get_uint(root, "tcbEvaluationDataNumber", 0xffffffffLL, &t->eval_number))
		BAD("TCB Info: tcbEvaluationDataNumber missing");
	json_t *tt = json_object_get(root, "tcbType");
	if (tt && (!json_is_integer(tt) || json_integer_value(tt) != 0))
		BAD("TCB Info: tcbType must be 0");

	json_t *mod = json_object_get(root, "tdxModule");
	if (t->tdx && !mod)
		BAD("TCB Info: TDX without tdxModule");
	if (mod) {
		if (!get_hex(mod, "mrsigner", t->module_mrsigner, 48) ||
		    !get_hex(mod, "attributes", t->module_attributes, 8) ||
		    !get_hex(mod, "attributesMask", t->module_attributes_mask, 8))
			BAD("TCB Info: tdxModule needs mrsigner (48), attributes, attributesMask (8)");
		t->has_module = true;
	}
	json_t *ids = json_object_get(root, "tdxModuleIdentities");
	if (ids) {
		if (!json_is_array(ids) || json_array_size(ids) > DCAP_MAX_MODULES)
			BAD("TCB Info: tdxModuleIdentities must be an array of at most %d",
			    DCAP_MAX_MODULES);
		t->has_identities = true;
		t->nmodules = json_array_size(ids);
		if (t->nmodules) {
			t->modules = calloc(t->nmodules, sizeof(*t->modules));
			if (!t->modules)
				return CF_ERR_NOMEM;
		}
		for (size_t i = 0; i < t->nmodules; i++) {
			json_t *m = json_array_get(ids, i);
			dcap_module_identity *mi = &t->modules[i];
			const char *mid = get_str(m, "id");
			char what[64];
			if (!mid || strlen(mid) == 0 || strlen(mid) >= sizeof(mi->id))
				BAD("TCB Info: tdxModuleIdentities[%zu].id missing or too long", i);
			snprintf(mi->id, sizeof(mi->id), "%s", mid);
			if (!get_hex(m, "mrsigner", mi->mrsigner, 48) ||
			    !get_hex(m, "attributes", mi->attributes, 8) ||
			    !get_hex(m, "attributesMask", mi->attributes_mask, 8))
				BAD("TCB Info: tdxModuleIdentities[%zu] needs mrsigner, attributes, "
				    "attributesMask", i);
			snprintf(what, sizeof(what), "TCB Info: tdxModuleIdentities[%zu]", i);
			rc = parse_isv_levels(m, what, &mi->levels, &mi->nlevels, why, whylen);
			if (rc != CF_OK)
				goto out;
		}
	}

	json_t *levels = json_object_get(root, "tcbLevels");
	if (!json_is_array(levels) || json_array_size(levels) == 0 ||
	    json_array_size(levels) > DCAP_MAX_LEVELS)
		BAD("TCB Info: tcbLevels must be an array of 1..%d levels", DCAP_MAX_LEVELS);
	t->nlevels = json_array_size(levels);
	t->levels = calloc(t->nlevels, sizeof(*t->levels));
	if (!t->levels)
		return CF_ERR_NOMEM;
	for (size_t i = 0; i < t->nlevels; i++) {
		json_t *e = json_array_get(levels, i);
		json_t *tcb = json_object_get(e, "tcb");
		dcap_tcb_level *l = &t->levels[i];
		long long pce;
		time_t date;
		if (!json_is_object(e) || !json_is_object(tcb))
			BAD("TCB Info: tcbLevels[%zu] has no tcb object", i);
		if (!get_components(tcb, "sgxtcbcomponents", l->sgx))
			BAD("TCB Info: tcbLevels[%zu].tcb.sgxtcbcomponents must be 16 SVNs 0..255", i);
		if (!get_uint(tcb, "pcesvn", 65535, &pce))
			BAD("TCB Info: tcbLevels[%zu].tcb.pcesvn missing or out of range", i);
		l->pce_svn = (uint16_t)pce;
		if (t->tdx && !get_components(tcb, "tdxtcbcomponents", l->tdx))
			BAD("TCB Info: tcbLevels[%zu].tcb.tdxtcbcomponents must be 16 SVNs 0..255", i);
		if (!get_status(e, &l->status))
			BAD("TCB Info: tcbLevels[%zu].tcbStatus unknown", i);
		if (!get_date(e, "tcbDate", &date))
			BAD("TCB Info: tcbLevels[%zu].tcbDate not an ISO time", i);
		l->date = get_str(e, "tcbDate");
		if (!get_advisories(e, &l->advisories))
			BAD("TCB Info: tcbLevels[%zu].advisoryIDs not an array of strings", i);
		l->listed = i;
	}
	sort_levels(t->levels, t->nlevels, t->tdx);
out:
	return rc;
}

void dcap_tcb_info_free(dcap_tcb_info *t)
{
	for (size_t i = 0; i < t->nmodules; i++)
		free(t->modules[i].levels);
	free(t->modules);
	free(t->levels);
	json_decref(t->root);
	memset(t, 0, sizeof(*t));
}

static cf_err parse_object(const char *text, size_t len, json_t **out)
{
	cf_json_limits lim = { COLLATERAL_MAX_BYTES, 16 };
	cf_err rc = cf_json_parse(text, len, &lim, out);
	if (rc != CF_OK)
		return rc;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return CF_ERR_PARSE;
	}
	return CF_OK;
}

cf_err dcap_tcb_info_parse(const char *text, size_t len, dcap_tcb_info *out, char *why,
			   size_t whylen)
{
	json_t *root = NULL;
	memset(out, 0, sizeof(*out));
	cf_err rc = parse_object(text, len, &root);
	if (rc != CF_OK) {
		snprintf(why, whylen, "TCB Info: not a JSON object (%s)", cf_strerror(rc));
		return rc == CF_ERR_NOMEM ? rc : CF_ERR_PARSE;
	}
	rc = tcb_info_from_json(root, out, why, whylen);
	if (rc != CF_OK)
		dcap_tcb_info_free(out);
	return rc;
}

/* --- QE Identity --- */

static bool get_u32_be(const json_t *o, const char *k, uint32_t *out)
{
	uint8_t b[4];
	if (!get_hex(o, k, b, 4))
		return false;
	*out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return true;
}

static cf_err qe_identity_from_json(json_t *root, dcap_qe_identity *q, char *why, size_t whylen)
{
	cf_err rc = CF_OK;
	long long v;
	memset(q, 0, sizeof(*q));
	q->root = root;
	if (!json_is_object(root))
		BAD("QE Identity: not a JSON object");
	const char *id = get_str(root, "id");
	if (!id || strlen(id) == 0 || strlen(id) >= sizeof(q->id))
		BAD("QE Identity: id missing or too long");
	snprintf(q->id, sizeof(q->id), "%s", id);
	if (!get_uint(root, "version", 1000, &q->version))
		BAD("QE Identity: version missing");
	if (q->version != 2)
		BAD("QE Identity version %lld (supported: 2)", q->version);
	if (!get_date(root, "issueDate", &q->issue_date) ||
	    !get_date(root, "nextUpdate", &q->next_update))
		BAD("QE Identity: issueDate/nextUpdate not ISO times");
	if (!get_uint(root, "tcbEvaluationDataNumber", 0xffffffffLL, &q->eval_number))
		BAD("QE Identity: tcbEvaluationDataNumber missing");
	if (!get_u32_be(root, "miscselect", &q->miscselect) ||
	    !get_u32_be(root, "miscselectMask", &q->miscselect_mask))
		BAD("QE Identity: miscselect/miscselectMask not 4 hex bytes");
	if (!get_hex(root, "attributes", q->attributes, 16) ||
	    !get_hex(root, "attributesMask", q->attributes_mask, 16))
		BAD("QE Identity: attributes/attributesMask not 16 hex bytes");
	if (!get_hex(root, "mrsigner", q->mrsigner, 32))
		BAD("QE Identity: mrsigner not 32 hex bytes");
	if (!get_uint(root, "isvprodid", 65535, &v))
		BAD("QE Identity: isvprodid missing or out of range");
	q->isv_prod_id = (uint16_t)v;
	rc = parse_isv_levels(root, "QE Identity", &q->levels, &q->nlevels, why, whylen);
out:
	return rc;
}

void dcap_qe_identity_free(dcap_qe_identity *q)
{
	free(q->levels);
	json_decref(q->root);
	memset(q, 0, sizeof(*q));
}

cf_err dcap_qe_identity_parse(const char *text, size_t len, dcap_qe_identity *out, char *why,
			      size_t whylen)
{
	json_t *root = NULL;
	memset(out, 0, sizeof(*out));
	cf_err rc = parse_object(text, len, &root);
	if (rc != CF_OK) {
		snprintf(why, whylen, "QE Identity: not a JSON object (%s)", cf_strerror(rc));
		return rc == CF_ERR_NOMEM ? rc : CF_ERR_PARSE;
	}
	rc = qe_identity_from_json(root, out, why, whylen);
	if (rc != CF_OK)
		dcap_qe_identity_free(out);
	return rc;
}

/* --- loading --- */

static void doc_clear(dcap_signed_doc *d)
{
	free(d->raw);
	d->raw = NULL;
	d->raw_len = 0;
	d->state = DCAP_ITEM_ABSENT;
}

static void chain_clear(dcap_signed_doc *d)
{
	dcap_chain_free(&d->chain);
	d->chain_state = DCAP_ITEM_ABSENT;
}

static bool sig_from_hex(const char *hex, size_t len, uint8_t sig[64])
{
	size_t got = 0;
	return hex && len == 128 && cf_hex_decode(hex, len, sig, 64, &got) == CF_OK && got == 64;
}

static cf_err set_raw(dcap_signed_doc *d, const char *p, size_t n)
{
	d->raw = malloc(n ? n : 1);
	if (!d->raw)
		return CF_ERR_NOMEM;
	memcpy(d->raw, p, n);
	d->raw_len = n;
	return CF_OK;
}

static cf_err set_chain(dcap_signed_doc *d, const uint8_t *p, size_t n, const char *what)
{
	char why[120];
	chain_clear(d);
	cf_err rc = dcap_pem_chain(p, n, false, &d->chain, why, sizeof(why));
	if (rc == CF_ERR_NOMEM)
		return rc;
	if (rc != CF_OK) {
		d->chain_state = DCAP_ITEM_BAD;
		snprintf(d->chain_why, sizeof(d->chain_why), "%s: %s", what, why);
		return CF_OK;
	}
	d->chain_state = DCAP_ITEM_OK;
	return CF_OK;
}

/* Parses a document's raw bytes into tcb or qe; records BAD with why. */
static cf_err doc_parse_tcb(dcap_collateral *c)
{
	dcap_tcb_info_free(&c->tcb);
	cf_err rc = dcap_tcb_info_parse(c->tcb_doc.raw, c->tcb_doc.raw_len, &c->tcb, c->tcb_doc.why,
					sizeof(c->tcb_doc.why));
	if (rc == CF_ERR_NOMEM)
		return rc;
	c->tcb_doc.state = rc == CF_OK ? DCAP_ITEM_OK : DCAP_ITEM_BAD;
	return CF_OK;
}

static cf_err doc_parse_qe(dcap_collateral *c)
{
	dcap_qe_identity_free(&c->qe);
	cf_err rc = dcap_qe_identity_parse(c->qe_doc.raw, c->qe_doc.raw_len, &c->qe, c->qe_doc.why,
					   sizeof(c->qe_doc.why));
	if (rc == CF_ERR_NOMEM)
		return rc;
	c->qe_doc.state = rc == CF_OK ? DCAP_ITEM_OK : DCAP_ITEM_BAD;
	return CF_OK;
}

/* A PCS body {"<member>": {...}, "signature": "<128 hex>"}. */
static cf_err load_pcs_body(const cf_blob *b, const char *member, dcap_signed_doc *d)
{
	json_t *doc = NULL;
	size_t s = 0, e = 0;
	cf_err rc;
	doc_clear(d);
	d->state = DCAP_ITEM_BAD;
	rc = parse_object((const char *)b->data, b->len, &doc);
	if (rc == CF_ERR_NOMEM)
		return rc;
	if (rc != CF_OK) {
		snprintf(d->why, sizeof(d->why), "not a JSON object (%s)", cf_strerror(rc));
		return CF_OK;
	}
	const char *sig = get_str(doc, "signature");
	json_t *obj = json_object_get(doc, member);
	if (json_object_size(doc) != 2 || !json_is_object(obj) || !sig) {
		snprintf(d->why, sizeof(d->why), "a PCS body must be {\"%s\": {...}, \"signature\": "
			 "\"hex\"}", member);
		goto out;
	}
	if (!sig_from_hex(sig, strlen(sig), d->sig)) {
		snprintf(d->why, sizeof(d->why), "signature is not 128 hex digits");
		goto out;
	}
	if (dcap_json_member_span((const char *)b->data, b->len, member, &s, &e) != CF_OK ||
	    e <= s || e > b->len) {
		snprintf(d->why, sizeof(d->why), "cannot locate the signed \"%s\" bytes", member);
		goto out;
	}
	rc = set_raw(d, (const char *)b->data + s, e - s);
	if (rc != CF_OK)
		goto out;
	d->state = DCAP_ITEM_OK;
out:
	json_decref(doc);
	return rc;
}

static cf_err load_crl(const cf_blob *b, dcap_crl_item *it, const char *what)
{
	X509_CRL_free(it->crl);
	it->crl = NULL;
	if (dcap_crl_load(b->data, b->len, &it->crl) != CF_OK) {
		it->state = DCAP_ITEM_BAD;
		snprintf(it->why, sizeof(it->why), "%s: not a DER or PEM X.509 CRL", what);
		return CF_OK;
	}
	it->state = DCAP_ITEM_OK;
	return CF_OK;
}

static cf_err load_hex_crl(const char *hex, dcap_crl_item *it, const char *what)
{
	size_t n = strlen(hex), got = 0;
	uint8_t *der = malloc(n / 2 + 1);
	if (!der)
		return CF_ERR_NOMEM;
	cf_blob b = { der, 0 };
	if (n % 2 || cf_hex_decode(hex, n, der, n / 2 + 1, &got) != CF_OK) {
		it->state = DCAP_ITEM_BAD;
		snprintf(it->why, sizeof(it->why), "%s: not hex", what);
		free(der);
		return CF_OK;
	}
	b.len = got;
	cf_err rc = load_crl(&b, it, what);
	free(der);
	return rc;
}

/* The dcap-qvl QuoteCollateralV3 JSON. */
static cf_err load_bundle(const cf_blob *b, dcap_collateral *c)
{
	json_t *doc = NULL;
	cf_err rc = parse_object((const char *)b->data, b->len, &doc);
	c->bundle_given = true;
	if (rc == CF_ERR_NOMEM)
		return rc;
	if (rc != CF_OK) {
		c->bundle_bad = true;
		snprintf(c->bundle_why, sizeof(c->bundle_why), "not a JSON object (%s)",
			 cf_strerror(rc));
		return CF_OK;
	}
	static const char *const required[] = {
		"tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
		"qe_identity", "qe_identity_signature", "qe_identity_issuer_chain",
	};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (!get_str(doc, required[i])) {
			c->bundle_bad = true;
			snprintf(c->bundle_why, sizeof(c->bundle_why),
				 "field \"%s\" missing or not a string", required[i]);
			goto out;
		}
	}
	json_t *v;
	struct {
		dcap_signed_doc *d;
		const char *text, *sig, *chain;
	} docs[2] = {
		{ &c->tcb_doc, "tcb_info", "tcb_info_signature", "tcb_info_issuer_chain" },
		{ &c->qe_doc, "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain" },
	};
	for (size_t i = 0; i < 2; i++) {
		dcap_signed_doc *d = docs[i].d;
		v = json_object_get(doc, docs[i].text);
		rc = set_raw(d, json_string_value(v), json_string_length(v));
		if (rc != CF_OK)
			goto out;
		d->state = DCAP_ITEM_OK;
		v = json_object_get(doc, docs[i].sig);
		if (!sig_from_hex(json_string_value(v), json_string_length(v), d->sig)) {
			d->state = DCAP_ITEM_BAD;
			snprintf(d->why, sizeof(d->why), "%s is not 128 hex digits", docs[i].sig);
		}
		v = json_object_get(doc, docs[i].chain);
		rc = set_chain(d, (const uint8_t *)json_string_value(v), json_string_length(v),
			       docs[i].chain);
		if (rc != CF_OK)
			goto out;
	}
	const char *crl = get_str(doc, "pck_crl");
	if (crl && (rc = load_hex_crl(crl, &c->pck_crl, "pck_crl")) != CF_OK)
		goto out;
	crl = get_str(doc, "root_ca_crl");
	if (crl && (rc = load_hex_crl(crl, &c->root_crl, "root_ca_crl")) != CF_OK)
		goto out;
	rc = CF_OK;
out:
	json_decref(doc);
	return rc;
}

cf_err dcap_collateral_load(const cf_evidence_input *in, dcap_collateral *c)
{
	cf_err rc = CF_OK;
	memset(c, 0, sizeof(*c));
	/* The bundle first; separately given items then take its place. */
	if (in->collateral.data && (rc = load_bundle(&in->collateral, c)) != CF_OK)
		return rc;
	if (c->bundle_bad) {
		doc_clear(&c->tcb_doc);
		chain_clear(&c->tcb_doc);
		doc_clear(&c->qe_doc);
		chain_clear(&c->qe_doc);
	}
	if (in->tcb_info.data && (rc = load_pcs_body(&in->tcb_info, "tcbInfo", &c->tcb_doc)) != CF_OK)
		return rc;
	if (in->qe_identity.data &&
	    (rc = load_pcs_body(&in->qe_identity, "enclaveIdentity", &c->qe_doc)) != CF_OK)
		return rc;
	if (in->tcb_chain.data) {
		if ((rc = set_chain(&c->tcb_doc, in->tcb_chain.data, in->tcb_chain.len,
				    "tcb_chain")) != CF_OK ||
		    (rc = set_chain(&c->qe_doc, in->tcb_chain.data, in->tcb_chain.len,
				    "tcb_chain")) != CF_OK)
			return rc;
	}
	if (c->tcb_doc.state == DCAP_ITEM_OK && (rc = doc_parse_tcb(c)) != CF_OK)
		return rc;
	if (c->qe_doc.state == DCAP_ITEM_OK && (rc = doc_parse_qe(c)) != CF_OK)
		return rc;
	if (in->pck_crl.data && (rc = load_crl(&in->pck_crl, &c->pck_crl, "pck_crl")) != CF_OK)
		return rc;
	if (in->root_crl.data && (rc = load_crl(&in->root_crl, &c->root_crl, "root_crl")) != CF_OK)
		return rc;
	if (in->root_ca.data) {
		if (dcap_cert_load(in->root_ca.data, in->root_ca.len, &c->root_ca) == CF_OK) {
			c->root_state = DCAP_ITEM_OK;
		} else {
			c->root_state = DCAP_ITEM_BAD;
			snprintf(c->root_why, sizeof(c->root_why),
				 "root_ca: not a DER or PEM certificate");
		}
	}
	return CF_OK;
}

void dcap_collateral_free(dcap_collateral *c)
{
	doc_clear(&c->tcb_doc);
	chain_clear(&c->tcb_doc);
	doc_clear(&c->qe_doc);
	chain_clear(&c->qe_doc);
	dcap_tcb_info_free(&c->tcb);
	dcap_qe_identity_free(&c->qe);
	X509_CRL_free(c->pck_crl.crl);
	X509_CRL_free(c->root_crl.crl);
	X509_free(c->root_ca);
	memset(c, 0, sizeof(*c));
}
