/*
 * AMD SEV-SNP attestation report verifier (offline).
 *
 * Checks, in the order they appear in the verdict (names are stable):
 *   format              the 1184-byte report parses strictly (snp_report.c)
 *   certificates        the VCEK/VLEK and the ASK/ASVK + ARK chain parse
 *   ark_pinned          the ARK is AMD's ARK-Milan, -Genoa or -Turin
 *   ark_self_signature  the ARK signed itself (RSASSA-PSS SHA-384)
 *   ask_signature       the ARK signed the ASK (or ASVK)
 *   vcek_signature      the ASK signed the VCEK (or the ASVK the VLEK)
 *   cert_validity       all three certificates are valid at in->at
 *   signing_key         flags.SIGNING_KEY names the leaf's kind (0 VCEK,
 *                       1 VLEK, issued by SEV-<product> or SEV-VLEK-<product>)
 *                       and MASK_CHIP_KEY is 0
 *   product             v3+: the CPUID family/model is the chain's product
 *                       (not checked for v2, which has no CPUID)
 *   vcek_product        the leaf's productName is the chain's product
 *   report_signature    ECDSA P-384 SHA-384 over bytes 0x000..0x29F
 *   vcek_tcb            the leaf's TCB extensions equal REPORTED_TCB
 *                       (Turin layout with fmcSPL for family 1Ah)
 *   chip_id             VCEK: hwID equals CHIP_ID (Turin: 8 bytes, rest
 *                       zero). VLEK: a pass, "not applicable (VLEK)", that
 *                       still requires CHIP_ID to be zero.
 * "debug" is added by the policy (cf_policy_apply) from v->debug, which is
 * POLICY bit 19. SNP has no offline TCB status: tcb_status stays Unknown
 * and the reported TCB is the claim "tcb". Not checked: AMD's CRL (none is
 * taken as input), so a revoked ASK is not detected.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "coffer/crypto.h"
#include "coffer/evidence.h"
#include "snp_internal.h"

cf_err cf_snp_verify_report(const cf_snp_certs *c, const char *cert_error, const uint8_t *report,
			    size_t len, time_t at, cf_verdict *v)
{
	cf_snp_report r;
	char why[200];
	cf_verdict_init(v, CF_TEE_SNP);
	if (!v->claims)
		return CF_ERR_NOMEM;
	if (cf_snp_report_parse(report, len, &r, why, sizeof(why)) != CF_OK) {
		cf_verdict_fail(v, "format", "an SEV-SNP ATTESTATION_REPORT (1184 bytes, version 2..5)",
				"%s", why);
		return CF_OK;
	}
	cf_verdict_pass(v, "format", "SEV-SNP report version %u, %d bytes", (unsigned)r.version,
			CF_SNP_REPORT_LEN);

	/* v3+ names its CPU; for v2 the (verified) chain's product decides the TCB layout. */
	bool turin = r.version >= 3 ? cf_snp_report_turin_layout(&r)
				    : c && cf_snp_certs_product(c) == CF_SNP_PRODUCT_TURIN;
	cf_snp_report_claims(&r, turin, v);
	if (!c) {
		cf_verdict_fail(v, "certificates",
				"a VCEK or VLEK and its ASK/ASVK + ARK chain (PEM)", "%s",
				cert_error && cert_error[0] ? cert_error : "none given");
		cf_verdict_skip(v, "report_signature", "%s", "no usable VCEK/VLEK");
		cf_verdict_skip(v, "vcek_tcb", "%s", "no usable VCEK/VLEK");
		cf_verdict_skip(v, "chip_id", "%s", "no usable VCEK/VLEK");
		return CF_OK;
	}
	if (r.version < 3)
		cf_claims_set(v, "product",
			      json_string(cf_snp_product_name(cf_snp_certs_product(c))));
	cf_snp_certs_check(c, at, v);
	cf_snp_check_binding(c, &r, report, turin, v);
	return CF_OK;
}

/*
 * A small cache of loaded chains, keyed by SHA-256 of the VCEK/VLEK and
 * chain bytes: a relying party verifies many reports from few platforms,
 * and parsing plus three RSA-PSS verifications cost more than the report's
 * own ECDSA check. Entries are immutable and reference-counted; validity
 * at `at` is checked per report, so a cached chain is never stale.
 */
#define SNP_CACHE_SLOTS 8

static struct snp_cache_slot {
	bool used;
	uint8_t key[32];
	cf_snp_certs *certs;
	char why[200];
	unsigned refs;
	uint64_t last_use;
} snp_cache[SNP_CACHE_SLOTS];
static pthread_mutex_t snp_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t snp_cache_tick;

static cf_err snp_cache_key(const cf_evidence_input *in, uint8_t key[32])
{
	cf_hash_ctx *h = NULL;
	uint8_t lens[16];
	cf_err rc = cf_hash_new(CF_SHA256, &h);
	for (int i = 0; i < 8; i++) {
		lens[i] = (uint8_t)((uint64_t)in->vcek.len >> (8 * i));
		lens[8 + i] = (uint8_t)((uint64_t)in->snp_chain.len >> (8 * i));
	}
	if (rc == CF_OK)
		rc = cf_hash_update(h, lens, sizeof(lens));
	if (rc == CF_OK && in->vcek.len)
		rc = cf_hash_update(h, in->vcek.data, in->vcek.len);
	if (rc == CF_OK && in->snp_chain.len)
		rc = cf_hash_update(h, in->snp_chain.data, in->snp_chain.len);
	if (rc == CF_OK)
		rc = cf_hash_final(h, key);
	cf_hash_free(h);
	return rc;
}

/* Returns the slot holding (key), with a reference taken, or NULL. */
static struct snp_cache_slot *snp_cache_get(const uint8_t key[32])
{
	struct snp_cache_slot *hit = NULL;
	pthread_mutex_lock(&snp_cache_lock);
	for (size_t i = 0; i < SNP_CACHE_SLOTS; i++) {
		if (snp_cache[i].used && memcmp(snp_cache[i].key, key, 32) == 0) {
			hit = &snp_cache[i];
			hit->refs++;
			hit->last_use = ++snp_cache_tick;
			break;
		}
	}
	pthread_mutex_unlock(&snp_cache_lock);
	return hit;
}

/* Inserts (taking a reference) unless every slot is in use; NULL then. */
static struct snp_cache_slot *snp_cache_put(const uint8_t key[32], cf_snp_certs *certs,
					    const char *why)
{
	struct snp_cache_slot *slot = NULL;
	cf_snp_certs *evicted = NULL;
	pthread_mutex_lock(&snp_cache_lock);
	for (size_t i = 0; i < SNP_CACHE_SLOTS; i++) {
		struct snp_cache_slot *s = &snp_cache[i];
		if (s->used && memcmp(s->key, key, 32) == 0) {
			/* Another thread loaded it first: use theirs. */
			slot = s;
			slot->refs++;
			pthread_mutex_unlock(&snp_cache_lock);
			cf_snp_certs_free(certs);
			return slot;
		}
		if (s->refs == 0 && (!slot || !s->used || (slot->used && s->last_use < slot->last_use)))
			slot = s;
	}
	if (slot) {
		if (slot->used)
			evicted = slot->certs;
		slot->used = true;
		memcpy(slot->key, key, 32);
		slot->certs = certs;
		snprintf(slot->why, sizeof(slot->why), "%s", why);
		slot->refs = 1;
		slot->last_use = ++snp_cache_tick;
	}
	pthread_mutex_unlock(&snp_cache_lock);
	cf_snp_certs_free(evicted);
	return slot;
}

static void snp_cache_release(struct snp_cache_slot *slot)
{
	pthread_mutex_lock(&snp_cache_lock);
	slot->refs--;
	pthread_mutex_unlock(&snp_cache_lock);
}

cf_err cf_evidence_verify_snp(const cf_evidence_input *in, cf_verdict *v)
{
	cf_snp_certs *c = NULL;
	char why[200] = "";
	uint8_t key[32];
	struct snp_cache_slot *slot = NULL;
	if (!in || !v)
		return CF_ERR_ARG;
	if (snp_cache_key(in, key) == CF_OK)
		slot = snp_cache_get(key);
	if (!slot) {
		cf_err rc = cf_snp_certs_load(&in->vcek, &in->snp_chain, &c, why, sizeof(why));
		if (rc == CF_ERR_NOMEM) {
			cf_verdict_init(v, CF_TEE_SNP);
			return CF_ERR_NOMEM;
		}
		if (rc == CF_OK && c)
			slot = snp_cache_put(key, c, why);
	}
	cf_err rc;
	if (slot) {
		rc = cf_snp_verify_report(slot->certs, slot->why, in->evidence.data, in->evidence.len,
					  in->at, v);
		snp_cache_release(slot);
	} else {
		rc = cf_snp_verify_report(c, why, in->evidence.data, in->evidence.len, in->at, v);
		cf_snp_certs_free(c);
	}
	return rc;
}
