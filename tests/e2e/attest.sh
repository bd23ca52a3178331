#!/bin/sh
# coffer attest end to end: a server holding the KMS CA (kms/ca.c) runs
# in the soft TEE (tests/e2e/attested_server.c under coffer-launch);
# `coffer attest` verifies its CA's evidence once and pins the CA; then
# stock curl and openssl reach it over ordinary TLS with that CA alone.
# Refusals (wrong measurement, wrong platform) pin nothing. The CA also
# certifies CSRs, checked with stock openssl.
set -eu

bin=${COFFER_BIN:?}
launch=$bin/coffer-launch
coffer=$bin/coffer
server=$bin/../tests/e2e/attested_server
tmp=$(mktemp -d)
lpid=
stop_server() {
	if [ -n "$lpid" ]; then
		kill "$lpid" 2>/dev/null || true
		wait "$lpid" 2>/dev/null || true
		lpid=
	fi
}
trap 'stop_server; rm -rf "$tmp"' EXIT INT TERM
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

need_root

plat=$tmp/platform
export COFFER_PLATFORM_DIR=$plat
export COFFER_HOME=$tmp/home
"$launch" platform init --dir "$plat" 2>/dev/null
"$launch" platform cert --dir "$plat" >"$tmp/platform.pem"
"$launch" platform init --dir "$tmp/other" 2>/dev/null
"$launch" platform cert --dir "$tmp/other" >"$tmp/other.pem"

# --- CSRs for the CA to certify (a P-256 key asking for a name it will not get) ---
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/enclave.key" 2>/dev/null
openssl req -new -key "$tmp/enclave.key" -subj /CN=evil -addext subjectAltName=DNS:evil.example \
	-out "$tmp/enclave.csr"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key" 2>/dev/null
openssl req -new -key "$tmp/rsa.key" -subj /CN=rsa -out "$tmp/rsa.csr"
openssl genpkey -algorithm ED25519 -out "$tmp/ed.key"
openssl req -new -key "$tmp/ed.key" -subj /CN=ed -out "$tmp/ed.csr"
openssl req -in "$tmp/enclave.csr" -outform DER -out "$tmp/enclave.der"
# One bit of the signature flipped, re-armoured: well-formed, forged.
python3 - "$tmp/enclave.der" "$tmp/forged.csr" <<'EOF'
import base64, sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[-3] ^= 1
b = base64.b64encode(bytes(d)).decode()
open(sys.argv[2], 'w').write('-----BEGIN CERTIFICATE REQUEST-----\n' +
    '\n'.join(b[i:i + 64] for i in range(0, len(b), 64)) + '\n-----END CERTIFICATE REQUEST-----\n')
EOF
printf 'junk\n' | cat - "$tmp/enclave.csr" >"$tmp/junk.csr"

# --- kms/ca.c's refusals (bad keys, names, lifetimes, misuse), no TEE needed ---
run 0 "kms_ca selftest" "$server" --selftest
[ "$rc" = 0 ] || echo "# $(cat "$tmp/err")"

# --- the server: cannot start outside the TEE ---
run 1 "the server refuses to start without a TEE" "$server" 0 "$tmp/noready"
grep -q '^attested_server: no TEE: not running under coffer-launch' "$tmp/err" \
	&& ok "  ... saying: $(cat "$tmp/err")" || not_ok "no-TEE message: $(cat "$tmp/err")"
[ ! -e "$tmp/noready" ] && ok "  ... and never listens" || not_ok "listened without a TEE"

# --- the server in the soft TEE ---
args="0 $tmp/ready --ca-key $tmp/ca.key --issue $tmp/enclave.csr $tmp/enclave.pem
      --issue $tmp/rsa.csr $tmp/rsa.pem --issue $tmp/ed.csr $tmp/ed.pem
      --issue $tmp/forged.csr $tmp/forged.pem --issue $tmp/junk.csr $tmp/junk.pem"
start_server() {
	rm -f "$tmp/ready"
	# shellcheck disable=SC2086
	"$launch" run --quiet -- "$server" $args 2>>"$tmp/server.err" &
	lpid=$!
	i=0
	while [ ! -s "$tmp/ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	port=$(cat "$tmp/ready" 2>/dev/null || echo none)
}
# shellcheck disable=SC2086
m=$("$launch" measure "$server" $args)
start_server
[ "$port" != none ] && ok "the server listens under coffer-launch (port $port)" \
	|| { not_ok "server did not start: $(cat "$tmp/server.err")"; exit 1; }
url=https://127.0.0.1:$port

# --- attest: verified, measurement shown, CA written and pinned ---
run 0 "coffer attest verifies the server's CA" \
	"$coffer" attest "$url" --platform-cert "$tmp/platform.pem" --ca-out "$tmp/ca.pem"
grep -q "^measurement:  $m\$" "$tmp/out" && ok "it prints the measurement coffer-launch measure reports" \
	|| not_ok "measurement not $m: $(cat "$tmp/out")"
grep -q "^tee:          soft" "$tmp/out" && ok "it says tee soft" || not_ok "tee line: $(cat "$tmp/out")"
grep -q "^debug:        no" "$tmp/out" && ok "it says debug no" || not_ok "debug line"
fp=$(openssl x509 -in "$tmp/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
grep -q "^ca_sha256:    $fp\$" "$tmp/out" && ok "it prints the CA's SHA-256 fingerprint" \
	|| not_ok "fingerprint $fp not in: $(cat "$tmp/out")"
cmp -s "$tmp/ca.pem" "$COFFER_HOME/kms-ca.pem" && ok "the pinned CA is the one written by --ca-out" \
	|| not_ok "pinned CA differs"
check "profile folder is 0700" "$(stat -c %a "$COFFER_HOME")" 700
check "kms-ca.pem is 0600" "$(stat -c %a "$COFFER_HOME/kms-ca.pem")" 600
check "kms.json is 0600" "$(stat -c %a "$COFFER_HOME/kms.json")" 600
check "kms.json url" "$(jget "$COFFER_HOME/kms.json" url)" "$url"
check "kms.json ca" "$(jget "$COFFER_HOME/kms.json" ca)" kms-ca.pem
check "kms.json ca_sha256" "$(jget "$COFFER_HOME/kms.json" ca_sha256)" "$fp"
check "kms.json tee" "$(jget "$COFFER_HOME/kms.json" tee)" soft
check "kms.json measurement" "$(jget "$COFFER_HOME/kms.json" measurement)" "$m"
jget "$COFFER_HOME/kms.json" attested_at | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
	&& ok "kms.json attested_at is RFC 3339" || not_ok "attested_at"
openssl x509 -in "$tmp/ca.pem" -noout -text >"$tmp/ca.txt"
grep -q "CA:TRUE, pathlen:0" "$tmp/ca.txt" && grep -q "Certificate Sign, CRL Sign" "$tmp/ca.txt" \
	&& grep -q "2.23.133.5.4.9" "$tmp/ca.txt" && grep -q "Subject: CN = coffer-kms CA [0-9a-f]\{16\}" "$tmp/ca.txt" \
	&& ok "the CA: CA:TRUE pathlen 0, certSign, RA-TLS extension, CN coffer-kms CA <id>" \
	|| not_ok "CA certificate: $(cat "$tmp/ca.txt")"

COFFER_HOME=$tmp/home-json run 0 "coffer attest --json" \
	"$coffer" attest "$url" --platform-cert "$tmp/platform.pem" --json
check "--json: verified" "$(jget "$tmp/out" verified)" true
check "--json: claims.measurements.measurement" "$(jget "$tmp/out" claims.measurements.measurement)" "$m"
check "--json: ca_sha256" "$(jget "$tmp/out" ca_sha256)" "$fp"
echo "{\"tee\":[\"soft\"],\"measurements\":{\"measurement\":[\"$m\"]}}" >"$tmp/good-policy.json"
# No --platform-cert: this host's platform, found as coffer-launch finds it.
COFFER_HOME=$tmp/home-policy run 0 "a policy naming the right measurement passes (https://localhost)" \
	"$coffer" attest "https://localhost:$port" --policy "$tmp/good-policy.json"

# --- stock tools with the pinned CA only ---
run 0 "curl --cacert ca.pem https://localhost:PORT/" curl -sS --cacert "$tmp/ca.pem" "https://localhost:$port/"
check "  ... gets the server's answer" "$(cat "$tmp/out")" hello
run 0 "curl --cacert ca.pem https://127.0.0.1:PORT/ (IP SAN)" curl -sS --cacert "$tmp/ca.pem" "$url/"
run 60 "curl without the pinned CA refuses the server" curl -sS "https://localhost:$port/"
run 60 "curl with another CA refuses the server" curl -sS --cacert "$tmp/platform.pem" "https://localhost:$port/"
set +e
openssl s_client -connect "127.0.0.1:$port" -servername localhost -verify_hostname localhost \
	-CAfile "$tmp/ca.pem" -verify_return_error </dev/null >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
check "openssl s_client -CAfile ca.pem -verify_return_error" "$rc" 0
grep -q "Verify return code: 0 (ok)" "$tmp/out" && ok "  ... Verify return code: 0 (ok)" || not_ok "s_client: $(cat "$tmp/err")"
grep -q "TLSv1.3" "$tmp/out" && ok "  ... over TLS 1.3" || not_ok "not TLS 1.3"
grep -q "^ 1 s:CN = coffer-kms CA" "$tmp/out" && ok "  ... the server sends leaf and CA" || not_ok "chain: $(grep -E '^ [0-9] s:' "$tmp/out")"
openssl s_client -connect "127.0.0.1:$port" -showcerts </dev/null 2>/dev/null \
	| openssl x509 -noout -text >"$tmp/leaf.txt"
grep -q "DNS:localhost, IP Address:127.0.0.1" "$tmp/leaf.txt" && grep -q "TLS Web Server Authentication" "$tmp/leaf.txt" \
	&& grep -q "NIST CURVE: P-256" "$tmp/leaf.txt" \
	&& ok "the leaf: P-256, SAN localhost and 127.0.0.1, EKU serverAuth" || not_ok "leaf: $(cat "$tmp/leaf.txt")"

# --- refusals: exit 1, the check named, nothing pinned ---
zero=$(printf '0%.0s' $(seq 96))
echo "{\"measurements\":{\"measurement\":[\"$zero\"]}}" >"$tmp/bad-policy.json"
COFFER_HOME=$tmp/home-bad run 1 "a policy with another measurement is refused" \
	"$coffer" attest "$url" --platform-cert "$tmp/platform.pem" --policy "$tmp/bad-policy.json" --ca-out "$tmp/bad-ca.pem"
grep -q "^coffer: attest $url: policy_measurement_measurement: expected .*, got $m\$" "$tmp/err" \
	&& ok "  ... stderr: $(cut -c1-110 "$tmp/err")..." || not_ok "message: $(cat "$tmp/err")"
check "  ... one line on stderr" "$(wc -l <"$tmp/err")" 1
[ ! -e "$tmp/home-bad" ] && [ ! -e "$tmp/bad-ca.pem" ] && ok "  ... nothing pinned or written" || not_ok "something was written"
COFFER_HOME=$tmp/home-bad run 1 "another host's platform certificate is refused" \
	"$coffer" attest "$url" --platform-cert "$tmp/other.pem"
grep -q "^coffer: attest $url: platform_id: expected " "$tmp/err" \
	&& ok "  ... stderr: $(cut -c1-110 "$tmp/err")..." || not_ok "message: $(cat "$tmp/err")"
COFFER_HOME=$tmp/home-bad COFFER_PLATFORM_DIR=$tmp/none run 1 "no platform certificate: refused" \
	"$coffer" attest "$url"
grep -q "platform_signature: expected a platform certificate" "$tmp/err" && ok "  ... names platform_signature" \
	|| not_ok "message: $(cat "$tmp/err")"
COFFER_HOME=$tmp/home-bad run 1 "--json on a refusal prints the verdict, verified false" \
	"$coffer" attest "$url" --platform-cert "$tmp/other.pem" --json
check "  ... verified" "$(jget "$tmp/out" verified)" false
[ ! -e "$tmp/home-bad" ] && ok "refusals left no profile behind" || not_ok "a refusal wrote $tmp/home-bad"

# --- usage and transport errors ---
run 0 "coffer attest --help" "$coffer" attest --help
run 2 "coffer attest without URL" "$coffer" attest
run 2 "coffer attest http:// is a usage error" "$coffer" attest "http://127.0.0.1:$port"
run 2 "coffer attest URL with a path is a usage error" "$coffer" attest "$url/v1/info"
run 2 "coffer attest --timeout 0" "$coffer" attest "$url" --timeout 0
stop_closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
run 1 "a closed port fails" "$coffer" attest "https://127.0.0.1:$stop_closed" --platform-cert "$tmp/platform.pem"
grep -q "^coffer: attest https://127.0.0.1:$stop_closed: connecting to port $stop_closed: Connection refused" "$tmp/err" \
	&& ok "  ... stderr: $(cat "$tmp/err")" || not_ok "message: $(cat "$tmp/err")"

# --- certificates for enclaves' CSRs ---
if [ -s "$tmp/enclave.pem" ]; then
	ok "a P-256 CSR is certified"
	openssl verify -CAfile "$tmp/ca.pem" -purpose sslserver "$tmp/enclave.pem" >/dev/null 2>&1 \
		&& openssl verify -CAfile "$tmp/ca.pem" -purpose sslclient "$tmp/enclave.pem" >/dev/null 2>&1 \
		&& ok "  ... chains to the pinned CA, for serverAuth and clientAuth" || not_ok "openssl verify"
	openssl x509 -in "$tmp/enclave.pem" -noout -text >"$tmp/enc.txt"
	grep -q "DNS:localhost, IP Address:127.0.0.1" "$tmp/enc.txt" && ! grep -q evil "$tmp/enc.txt" \
		&& ok "  ... with the names the issuer chose, not the CSR's" || not_ok "names: $(grep -A1 'Alternative' "$tmp/enc.txt")"
	grep -q "Serial Number:" "$tmp/enc.txt" && [ "$(openssl x509 -in "$tmp/enclave.pem" -noout -serial | sed 's/serial=//' | wc -c)" -eq 33 ] \
		&& ok "  ... with a 16-byte serial" || not_ok "serial: $(openssl x509 -in "$tmp/enclave.pem" -noout -serial)"
	openssl x509 -in "$tmp/enclave.pem" -noout -checkend 86000 >/dev/null \
		&& ! openssl x509 -in "$tmp/enclave.pem" -noout -checkend 86500 >/dev/null \
		&& ok "  ... valid 24 hours" || not_ok "lifetime: $(openssl x509 -in "$tmp/enclave.pem" -noout -dates)"
	want=$(openssl req -in "$tmp/enclave.csr" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64)
	check "  ... kms_ca_csr_key_hash is SHA-256 of the CSR's SPKI" "$(cat "$tmp/enclave.pem.keyhash")" "$want"
else
	not_ok "a P-256 CSR is certified: $(cat "$tmp/enclave.pem.err" 2>/dev/null)"
fi
check "an RSA CSR is refused" "$(cat "$tmp/rsa.pem.err" 2>/dev/null)" CF_ERR_UNSUPPORTED
check "an Ed25519 CSR is refused" "$(cat "$tmp/ed.pem.err" 2>/dev/null)" CF_ERR_UNSUPPORTED
check "a CSR with a forged signature is refused" "$(cat "$tmp/forged.pem.err" 2>/dev/null)" CF_ERR_AUTH
check "a CSR after other text is refused" "$(cat "$tmp/junk.pem.err" 2>/dev/null)" CF_ERR_PARSE
[ ! -e "$tmp/rsa.pem" ] && [ ! -e "$tmp/forged.pem" ] && ok "no certificate for refused CSRs" || not_ok "refused CSR certified"

# --- restart: same CA key, new CA certificate and leaf; the old pin still works ---
stop_server
start_server
[ "$port" != none ] && ok "the server restarts with its CA key" || { not_ok "restart: $(cat "$tmp/server.err")"; exit 1; }
openssl s_client -connect "127.0.0.1:$port" -showcerts </dev/null 2>/dev/null >"$tmp/chain2.txt"
python3 - "$tmp/chain2.txt" "$tmp/ca2.pem" <<'EOF'
import re, sys
certs = re.findall(r'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n', open(sys.argv[1]).read(), re.S)
open(sys.argv[2], 'w').write(certs[1])
EOF
fp2=$(openssl x509 -in "$tmp/ca2.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
[ "$fp2" != "$fp" ] && ok "the CA certificate is reissued (fresh evidence)" || not_ok "same CA certificate after restart"
check "  ... same subject" "$(openssl x509 -in "$tmp/ca2.pem" -noout -subject)" "$(openssl x509 -in "$tmp/ca.pem" -noout -subject)"
run 0 "curl with the CA pinned before the restart still works" curl -sS --cacert "$tmp/ca.pem" "https://localhost:$port/"
check "  ... hello" "$(cat "$tmp/out")" hello
stop_server
if grep -v -e "handshake failed" -e "refused to certify" "$tmp/server.err" | grep -q .; then not_ok "server errors: $(cat "$tmp/server.err")"; else ok "the server logged nothing unexpected"; fi

exit $failed
