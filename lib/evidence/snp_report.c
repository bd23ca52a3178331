/*
 * SEV-SNP ATTESTATION_REPORT: strict parsing and claims.
 *
 * The report is read front to back with a cursor; every reserved range
 * the ABI (56860) marks must-be-zero is checked, so a report that parses
 * has exactly one meaning. Versions 2..5 are accepted: v3 adds the CPUID
 * family/model/stepping at 0x188, v5 the mitigation vectors at 0x1F8.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coffer/buf.h"
#include "snp_internal.h"

const char *cf_snp_product_name(cf_snp_product p)
{
	switch (p) {
	case CF_SNP_PRODUCT_MILAN: return "Milan";
	case CF_SNP_PRODUCT_GENOA: return "Genoa";
	case CF_SNP_PRODUCT_TURIN: return "Turin";
	case CF_SNP_PRODUCT_UNKNOWN:
	default: return "unknown";
	}
}

cf_snp_product cf_snp_product_from_cpuid(uint8_t family, uint8_t model)
{
	if (family == 0x19) {
		if (model <= 0x0F)
			return CF_SNP_PRODUCT_MILAN;
		if (model <= 0x1F || (model >= 0xA0 && model <= 0xAF))
			return CF_SNP_PRODUCT_GENOA;
		return CF_SNP_PRODUCT_UNKNOWN;
	}
	if (family == 0x1A && model <= 0x1F)
		return CF_SNP_PRODUCT_TURIN;
	return CF_SNP_PRODUCT_UNKNOWN;
}

cf_snp_tcb cf_snp_tcb_decode(uint64_t raw, bool turin_layout)
{
	cf_snp_tcb t;
	memset(&t, 0, sizeof(t));
	t.raw = raw;
	t.turin = turin_layout;
	if (turin_layout) {
		/* Turin: FMC, BOOT_LOADER, TEE, SNP, 3 reserved, MICROCODE. */
		t.fmc = (uint8_t)raw;
		t.bootloader = (uint8_t)(raw >> 8);
		t.tee = (uint8_t)(raw >> 16);
		t.snp = (uint8_t)(raw >> 24);
	} else {
		/* Milan, Genoa: BOOT_LOADER, TEE, 4 reserved, SNP, MICROCODE. */
		t.bootloader = (uint8_t)raw;
		t.tee = (uint8_t)(raw >> 8);
		t.snp = (uint8_t)(raw >> 48);
	}
	t.microcode = (uint8_t)(raw >> 56);
	return t;
}

bool cf_snp_report_turin_layout(const cf_snp_report *r)
{
	return r->version >= 3 && r->cpuid_fam_id == 0x1A;
}

static void say(char *why, size_t whylen, const char *fmt, ...) CF_PRINTF(3, 4);
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* A must-be-zero range [off, off+n): names it on failure. */
static cf_err mbz(cf_cursor *c, size_t n, char *why, size_t whylen)
{
	size_t off = c->off;
	cf_err rc = cf_cursor_zeros(c, n);
	if (rc == CF_ERR_PARSE)
		say(why, whylen, "reserved bytes 0x%03zx..0x%03zx are not zero", off, off + n - 1);
	return rc;
}

cf_err cf_snp_report_parse(const uint8_t *data, size_t len, cf_snp_report *r, char *why,
			   size_t whylen)
{
	cf_cursor c;
	cf_err rc;
	say(why, whylen, "%s", "");
	if (!r)
		return CF_ERR_ARG;
	if (!data && len) {
		say(why, whylen, "%s", "no evidence bytes");
		return CF_ERR_ARG;
	}
	memset(r, 0, sizeof(*r));
	if (len != CF_SNP_REPORT_LEN) {
		say(why, whylen, "%zu bytes, an SNP report is exactly %d", len, CF_SNP_REPORT_LEN);
		return len < CF_SNP_REPORT_LEN ? CF_ERR_TRUNCATED : CF_ERR_TRAILING;
	}
	cf_cursor_init(&c, data, len);

	/* 0x000 */
	if ((rc = cf_cursor_u32le(&c, &r->version)) != CF_OK)
		goto out;
	if (r->version < CF_SNP_VERSION_MIN || r->version > CF_SNP_VERSION_MAX) {
		say(why, whylen, "version %" PRIu32 " (supported: %d..%d)", r->version,
		    CF_SNP_VERSION_MIN, CF_SNP_VERSION_MAX);
		rc = CF_ERR_UNSUPPORTED;
		goto out;
	}
	if ((rc = cf_cursor_u32le(&c, &r->guest_svn)) != CF_OK ||
	    (rc = cf_cursor_u64le(&c, &r->policy)) != CF_OK)
		goto out;
	if (!(r->policy & CF_SNP_POLICY_RESERVED_ONE)) {
		say(why, whylen, "POLICY 0x%" PRIx64 ": reserved bit 17 must be one", r->policy);
		rc = CF_ERR_PARSE;
		goto out;
	}
	if (r->policy & CF_SNP_POLICY_MBZ) {
		say(why, whylen, "POLICY 0x%" PRIx64 ": reserved bits 63:26 must be zero", r->policy);
		rc = CF_ERR_PARSE;
		goto out;
	}
	/* 0x010 */
	if ((rc = cf_cursor_read(&c, r->family_id, sizeof(r->family_id))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->image_id, sizeof(r->image_id))) != CF_OK ||
	    (rc = cf_cursor_u32le(&c, &r->vmpl)) != CF_OK ||
	    (rc = cf_cursor_u32le(&c, &r->signature_algo)) != CF_OK)
		goto out;
	if (r->signature_algo != 1) {
		say(why, whylen, "SIGNATURE_ALGO %" PRIu32 " (only 1, ECDSA P-384 with SHA-384)",
		    r->signature_algo);
		rc = CF_ERR_UNSUPPORTED;
		goto out;
	}
	/* 0x038 */
	if ((rc = cf_cursor_u64le(&c, &r->current_tcb)) != CF_OK ||
	    (rc = cf_cursor_u64le(&c, &r->platform_info)) != CF_OK)
		goto out;
	if (r->platform_info & CF_SNP_PLATFORM_INFO_MBZ) {
		say(why, whylen, "PLATFORM_INFO 0x%" PRIx64 ": reserved bits 63:8 must be zero",
		    r->platform_info);
		rc = CF_ERR_PARSE;
		goto out;
	}
	/* 0x048 */
	if ((rc = cf_cursor_u32le(&c, &r->flags)) != CF_OK)
		goto out;
	if (r->flags & CF_SNP_FLAGS_MBZ) {
		say(why, whylen, "flags 0x%" PRIx32 " at 0x048: reserved bits 31:5 must be zero",
		    r->flags);
		rc = CF_ERR_PARSE;
		goto out;
	}
	uint32_t sk = CF_SNP_SIGNING_KEY(r->flags);
	if (sk != CF_SNP_SIGNING_KEY_VCEK && sk != CF_SNP_SIGNING_KEY_VLEK &&
	    sk != CF_SNP_SIGNING_KEY_NONE) {
		say(why, whylen, "SIGNING_KEY %" PRIu32 " is reserved (0 VCEK, 1 VLEK, 7 none)", sk);
		rc = CF_ERR_PARSE;
		goto out;
	}
	if ((rc = mbz(&c, 4, why, whylen)) != CF_OK) /* 0x04C */
		goto out;
	/* 0x050 */
	if ((rc = cf_cursor_read(&c, r->report_data, sizeof(r->report_data))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->measurement, sizeof(r->measurement))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->host_data, sizeof(r->host_data))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->id_key_digest, sizeof(r->id_key_digest))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->author_key_digest, sizeof(r->author_key_digest))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->report_id, sizeof(r->report_id))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->report_id_ma, sizeof(r->report_id_ma))) != CF_OK ||
	    (rc = cf_cursor_u64le(&c, &r->reported_tcb)) != CF_OK)
		goto out;
	/* 0x188: v3+ CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP; reserved up to 0x1A0. */
	if (r->version >= 3) {
		if ((rc = cf_cursor_u8(&c, &r->cpuid_fam_id)) != CF_OK ||
		    (rc = cf_cursor_u8(&c, &r->cpuid_mod_id)) != CF_OK ||
		    (rc = cf_cursor_u8(&c, &r->cpuid_step)) != CF_OK ||
		    (rc = mbz(&c, 0x1A0 - 0x18B, why, whylen)) != CF_OK)
			goto out;
	} else if ((rc = mbz(&c, 0x1A0 - 0x188, why, whylen)) != CF_OK) {
		goto out;
	}
	/* 0x1A0 */
	if ((rc = cf_cursor_read(&c, r->chip_id, sizeof(r->chip_id))) != CF_OK ||
	    (rc = cf_cursor_u64le(&c, &r->committed_tcb)) != CF_OK ||
	    (rc = cf_cursor_u8(&c, &r->current_build)) != CF_OK ||
	    (rc = cf_cursor_u8(&c, &r->current_minor)) != CF_OK ||
	    (rc = cf_cursor_u8(&c, &r->current_major)) != CF_OK ||
	    (rc = mbz(&c, 1, why, whylen)) != CF_OK ||
	    (rc = cf_cursor_u8(&c, &r->committed_build)) != CF_OK ||
	    (rc = cf_cursor_u8(&c, &r->committed_minor)) != CF_OK ||
	    (rc = cf_cursor_u8(&c, &r->committed_major)) != CF_OK ||
	    (rc = mbz(&c, 1, why, whylen)) != CF_OK ||
	    (rc = cf_cursor_u64le(&c, &r->launch_tcb)) != CF_OK)
		goto out;
	/* 0x1F8: v5+ LAUNCH_MIT_VECTOR, CURRENT_MIT_VECTOR; reserved up to 0x2A0. */
	if (r->version >= 5) {
		if ((rc = cf_cursor_u64le(&c, &r->launch_mit_vector)) != CF_OK ||
		    (rc = cf_cursor_u64le(&c, &r->current_mit_vector)) != CF_OK ||
		    (rc = mbz(&c, CF_SNP_SIGNED_LEN - 0x208, why, whylen)) != CF_OK)
			goto out;
	} else if ((rc = mbz(&c, CF_SNP_SIGNED_LEN - 0x1F8, why, whylen)) != CF_OK) {
		goto out;
	}
	/* 0x2A0: R and S (72 bytes each, LE), then reserved to the end. */
	if ((rc = cf_cursor_read(&c, r->sig_r, sizeof(r->sig_r))) != CF_OK ||
	    (rc = cf_cursor_read(&c, r->sig_s, sizeof(r->sig_s))) != CF_OK ||
	    (rc = mbz(&c, CF_SNP_REPORT_LEN - 0x330, why, whylen)) != CF_OK)
		goto out;
	rc = cf_cursor_expect_end(&c);
out:
	if (rc != CF_OK && why && why[0] == '\0')
		say(why, whylen, "%s at offset 0x%03zx", cf_strerror(rc), c.off);
	return rc;
}

/* --- claims --- */

static json_t *hex_u64(uint64_t x)
{
	char s[24];
	snprintf(s, sizeof(s), "0x%016" PRIx64, x);
	return json_string(s);
}

static json_t *tcb_json(const cf_snp_tcb *t)
{
	json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:o}", "bootloader", (int)t->bootloader, "tee",
			      (int)t->tee, "snp", (int)t->snp, "microcode", (int)t->microcode, "raw",
			      hex_u64(t->raw));
	if (o && t->turin)
		json_object_set_new(o, "fmc", json_integer(t->fmc));
	return o;
}

static json_t *version_string(uint8_t major, uint8_t minor, uint8_t build)
{
	char s[16];
	snprintf(s, sizeof(s), "%u.%u.%u", major, minor, build);
	return json_string(s);
}

void cf_snp_report_claims(const cf_snp_report *r, bool turin, cf_verdict *v)
{
	cf_claims_set(v, "hardware", json_true());
	cf_claims_measurement(v, "measurement", r->measurement, sizeof(r->measurement));
	cf_claims_measurement(v, "host_data", r->host_data, sizeof(r->host_data));
	cf_claims_measurement(v, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	cf_claims_measurement(v, "author_key_digest", r->author_key_digest,
			      sizeof(r->author_key_digest));
	cf_claims_measurement(v, "family_id", r->family_id, sizeof(r->family_id));
	cf_claims_measurement(v, "image_id", r->image_id, sizeof(r->image_id));
	cf_claims_set_hex(v, "report_data", r->report_data, sizeof(r->report_data));
	cf_claims_set(v, "version", json_integer(r->version));
	cf_claims_set(v, "guest_svn", json_integer(r->guest_svn));
	cf_claims_set(v, "vmpl", json_integer(r->vmpl));

	uint64_t p = r->policy;
	cf_claims_set(v, "policy",
		      json_pack("{s:i, s:i, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:o}",
				"abi_minor", (int)(p & 0xff), "abi_major", (int)((p >> 8) & 0xff),
				"smt", (p & CF_SNP_POLICY_SMT) != 0, "migrate_ma",
				(p & CF_SNP_POLICY_MIGRATE_MA) != 0, "debug",
				(p & CF_SNP_POLICY_DEBUG) != 0, "single_socket",
				(p & CF_SNP_POLICY_SINGLE_SOCKET) != 0, "cxl_allow",
				(p & CF_SNP_POLICY_CXL_ALLOW) != 0, "mem_aes_256_xts",
				(p & CF_SNP_POLICY_MEM_AES_256_XTS) != 0, "rapl_dis",
				(p & CF_SNP_POLICY_RAPL_DIS) != 0, "ciphertext_hiding",
				(p & CF_SNP_POLICY_CIPHERTEXT_HIDING) != 0, "page_swap_disable",
				(p & CF_SNP_POLICY_PAGE_SWAP_DISABLE) != 0, "raw", hex_u64(p)));
	v->debug = (p & CF_SNP_POLICY_DEBUG) != 0;
	cf_claims_set(v, "debug", json_boolean(v->debug));

	uint64_t pi = r->platform_info;
	cf_claims_set(v, "platform_info",
		      json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:o}", "smt_enabled", (pi & 1) != 0,
				"tsme_enabled", (pi & 2) != 0, "ecc_enabled", (pi & 4) != 0,
				"rapl_disabled", (pi & 8) != 0, "ciphertext_hiding_enabled",
				(pi & 16) != 0, "alias_check_complete", (pi & 32) != 0, "raw",
				hex_u64(pi)));

	uint32_t sk = CF_SNP_SIGNING_KEY(r->flags);
	cf_claims_set(v, "signing_key",
		      json_string(sk == CF_SNP_SIGNING_KEY_VCEK   ? "vcek"
				  : sk == CF_SNP_SIGNING_KEY_VLEK ? "vlek"
								  : "none"));
	cf_claims_set(v, "author_key_en", json_boolean(r->flags & CF_SNP_FLAG_AUTHOR_KEY_EN));
	cf_claims_set(v, "mask_chip_key", json_boolean(r->flags & CF_SNP_FLAG_MASK_CHIP_KEY));

	cf_snp_tcb t = cf_snp_tcb_decode(r->current_tcb, turin);
	cf_claims_set(v, "current_tcb", tcb_json(&t));
	t = cf_snp_tcb_decode(r->reported_tcb, turin);
	cf_claims_set(v, "reported_tcb", tcb_json(&t));
	/* SNP has no TCB status from AMD offline: the TCB itself is the claim. */
	cf_claims_set(v, "tcb", tcb_json(&t));
	cf_claims_set(v, "tcb_status", json_string(cf_tcb_status_name(CF_TCB_UNKNOWN)));
	t = cf_snp_tcb_decode(r->committed_tcb, turin);
	cf_claims_set(v, "committed_tcb", tcb_json(&t));
	t = cf_snp_tcb_decode(r->launch_tcb, turin);
	cf_claims_set(v, "launch_tcb", tcb_json(&t));

	cf_claims_set_hex(v, "chip_id", r->chip_id, sizeof(r->chip_id));
	cf_claims_set_hex(v, "report_id", r->report_id, sizeof(r->report_id));
	cf_claims_set_hex(v, "report_id_ma", r->report_id_ma, sizeof(r->report_id_ma));
	cf_claims_set(v, "current_version",
		      version_string(r->current_major, r->current_minor, r->current_build));
	cf_claims_set(v, "committed_version",
		      version_string(r->committed_major, r->committed_minor, r->committed_build));
	if (r->version >= 3) {
		cf_claims_set(v, "cpuid",
			      json_pack("{s:i, s:i, s:i}", "family", (int)r->cpuid_fam_id, "model",
					(int)r->cpuid_mod_id, "stepping", (int)r->cpuid_step));
		cf_claims_set(v, "product",
			      json_string(cf_snp_product_name(
				      cf_snp_product_from_cpuid(r->cpuid_fam_id, r->cpuid_mod_id))));
	}
	if (r->version >= 5) {
		cf_claims_set(v, "launch_mit_vector", hex_u64(r->launch_mit_vector));
		cf_claims_set(v, "current_mit_vector", hex_u64(r->current_mit_vector));
	}
}
