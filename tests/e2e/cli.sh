#!/bin/sh
# End-to-end checks of the `coffer` command-line tool: options, exit codes,
# error lines, `coffer age keygen|recipient|encrypt|decrypt` behaviour and
# the failure paths of decryption (tampering, truncation, wrong keys).
#
# Run as `sh cli.sh` with COFFER_BIN set to the folder holding `coffer`
# (meson's e2e suite does that). POSIX sh; prints one "ok - ..." or
# "not ok - ..." line per check and exits 1 if any check failed.
set -eu
LC_ALL=C
export LC_ALL

: "${COFFER_BIN:=$(cd "$(dirname "$0")/../.." && pwd)/build/bin}"
COFFER=$COFFER_BIN/coffer

T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
umask 022

npass=0
nfail=0
rc=0
last=""

ok() {
	npass=$((npass + 1))
	echo "ok - $1"
}

# not_ok DESC: reports the failure with the last coffer run as context.
not_ok() {
	nfail=$((nfail + 1))
	echo "not ok - $1"
	if [ -n "$last" ]; then
		echo "#   last run: coffer $last"
		echo "#   exit status: $rc"
		if [ -s "$T/$lastname.err" ]; then
			head -n 3 "$T/$lastname.err" | sed 's/^/#   stderr: /'
		fi
	fi
}

# check DESC CMD...: one check line; ok when CMD succeeds.
check() {
	_desc=$1
	shift
	if "$@"; then ok "$_desc"; else not_ok "$_desc"; fi
}

# run NAME ARGS...: runs coffer with stdin from /dev/null, stdout in
# $T/NAME.out, stderr in $T/NAME.err, exit status in $rc.
run() {
	runin /dev/null "$@"
}

# runin INPUT NAME ARGS...: as run, with stdin from INPUT.
runin() {
	_in=$1
	lastname=$2
	shift 2
	last="$*"
	rc=0
	timeout 120 "$COFFER" "$@" <"$_in" >"$T/$lastname.out" 2>"$T/$lastname.err" || rc=$?
}

rc_is() { [ "$rc" -eq "$1" ]; }
rc_is_1_or_2() { [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; }
absent() { [ ! -e "$1" ]; }
empty_dir() { [ -z "$(ls -A "$1")" ]; }
same() { cmp -s "$1" "$2"; }
nonempty() { [ -s "$1" ]; }
is_empty() { [ -f "$1" ] && [ ! -s "$1" ]; }
has() { grep -Eqi -- "$2" "$1"; }
lines_are() { [ -f "$1" ] && [ "$(wc -l <"$1")" -eq "$2" ]; }
size_of() {
	if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi
}

# one_err_line NAME: stderr is exactly one newline-terminated line of the
# form "coffer: <what failed>: <why>".
one_err_line() {
	_f=$T/$1.err
	[ "$(wc -l <"$_f")" -eq 1 ] &&
		[ "$(wc -c <"$_f")" -eq "$(head -n 1 "$_f" | wc -c)" ] &&
		grep -Eq '^coffer: .+: .+$' "$_f"
}

# fails NAME DESC [REGEX]: checks of a runtime failure: exit 1, one error
# line, and (if given) the error names the cause.
fails() {
	check "$2: exits 1" rc_is 1
	check "$2: stderr is one 'coffer: <what>: <why>' line" one_err_line "$1"
	if [ $# -ge 3 ]; then
		check "$2: error names the cause (/$3/)" has "$T/$1.err" "$3"
	fi
}

# usage_error NAME DESC: exit 2 and a message on stderr.
usage_error() {
	check "$2: exits 2" rc_is 2
	check "$2: message on stderr" nonempty "$T/$1.err"
}

# header_len FILE: bytes of the age header, through the "--- MAC" line.
header_len() {
	_l=$(grep -a -b -m 1 '^--- ' "$1" || true)
	if [ -z "$_l" ]; then
		echo 0
		return
	fi
	_o=${_l%%:*}
	_line=${_l#*:}
	echo $((_o + ${#_line} + 1))
}

# put_byte FILE OFFSET VALUE: overwrites one byte in place.
put_byte() {
	# shellcheck disable=SC2059
	printf "\\$(printf %03o "$3")" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# get_byte FILE OFFSET: prints the byte's value (0-255).
get_byte() {
	_b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' \n')
	echo "${_b:-0}"
}

flip_byte() {
	_v=$(get_byte "$1" "$2")
	put_byte "$1" "$2" $((_v ^ 1))
}

b32='[02-9ac-hj-np-z]'
B32='[02-9AC-HJ-NP-Z]'
rfc3339='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})'

# keygen_format FILE: the three lines age-keygen writes.
keygen_format() {
	lines_are "$1" 3 &&
		sed -n 1p "$1" | grep -Eq "^# created: $rfc3339\$" &&
		sed -n 2p "$1" | grep -Eq "^# public key: age1$b32{58}\$" &&
		sed -n 3p "$1" | grep -Eq "^AGE-SECRET-KEY-1$B32{58}\$"
}

version_line() {
	lines_are "$1" 1 && grep -Eq '^coffer [0-9]+\.[0-9]+\.[0-9]+' "$1"
}

differ() { ! cmp -s "$1" "$2"; }

# quiet_success NAME: the run exited 0 and printed nothing on stdout.
quiet_success() { rc_is 0 && is_empty "$T/$1.out"; }

pem_lines() {
	[ "$(head -n 1 "$1")" = "-----BEGIN AGE ENCRYPTED FILE-----" ] &&
		[ "$(tail -n 1 "$1")" = "-----END AGE ENCRYPTED FILE-----" ]
}

# scrypt_only FILE N: the header's only stanza is scrypt with work factor N.
scrypt_only() {
	[ "$(grep -a -c '^-> ' "$1" 2>/dev/null)" = 1 ] &&
		grep -a -Eq "^-> scrypt [A-Za-z0-9+/]{22} $2\$" "$1"
}

pubkey_of() { sed -n 's/^# public key: //p' "$1" 2>/dev/null || true; }

# stderr_pubkey NAME FILE: stderr is "Public key: <the file's key>".
cp_() { cp "$1" "$2" 2>/dev/null || : >"$2"; }

stderr_pubkey() {
	[ "$(cat "$T/$1.err")" = "Public key: $(pubkey_of "$2")" ]
}

if [ ! -x "$COFFER" ]; then
	echo "not ok - coffer executable at $COFFER"
	echo "cli: 0 passed, 1 failed"
	exit 1
fi

# ---------------------------------------------------------------- version, help
run version --version
check "--version exits 0" rc_is 0
check "--version prints one 'coffer X.Y.Z' line" version_line "$T/version.out"

for sub in "" "age" "age keygen" "age recipient" "age encrypt" "age decrypt"; do
	name=help_$(echo "$sub" | tr ' ' _)
	label=$(echo "coffer $sub --help" | tr -s ' ')
	# shellcheck disable=SC2086
	run "$name" $sub --help
	check "$label exits 0" rc_is 0
	check "$label prints usage on stdout" has "$T/$name.out" 'usage'
	if [ -n "$sub" ]; then
		check "$label mentions '${sub##* }'" has "$T/$name.out" "${sub##* }"
	fi
done

# ---------------------------------------------------------------- usage errors
run keygen0 age keygen -o "$T/k0.key"
K0=$(pubkey_of "$T/k0.key")

run u1 frobnicate
usage_error u1 "unknown command 'coffer frobnicate'"
run u2 age frobnicate
usage_error u2 "unknown command 'coffer age frobnicate'"
run u3 --no-such-option
usage_error u3 "unknown option 'coffer --no-such-option'"
run u4 age keygen --no-such-option
usage_error u4 "unknown option to 'age keygen'"
run u5 age recipient --no-such-option "$T/k0.key"
usage_error u5 "unknown option to 'age recipient'"
run u6 age encrypt --no-such-option -r "$K0"
usage_error u6 "unknown option to 'age encrypt'"
run u7 age decrypt --no-such-option -i "$T/k0.key"
usage_error u7 "unknown option to 'age decrypt'"
run u8 age encrypt -r
usage_error u8 "'age encrypt -r' without its argument"
run u9 age decrypt -i
usage_error u9 "'age decrypt -i' without its argument"

# ---------------------------------------------------------------- keygen
run kg age keygen -o "$T/id1.key"
check "keygen -o: exits 0" rc_is 0
check "keygen -o: file has the age-keygen format" keygen_format "$T/id1.key"
check "keygen -o: file mode is 0600 (umask 022)" \
	test "$(stat -c %a "$T/id1.key" 2>/dev/null)" = 600
check "keygen -o: stderr is 'Public key: <the file's public key>'" stderr_pubkey kg "$T/id1.key"
check "keygen -o: nothing on stdout" is_empty "$T/kg.out"
PK1=$(pubkey_of "$T/id1.key")

run kgs age keygen
cp_ "$T/kgs.out" "$T/id2.key"
check "keygen to stdout: exits 0" rc_is 0
check "keygen to stdout: age-keygen format" keygen_format "$T/id2.key"
check "keygen to stdout: stderr is 'Public key: <its public key>'" stderr_pubkey kgs "$T/id2.key"
PK2=$(pubkey_of "$T/id2.key")
check "keygen: two runs give different keys" test "$PK1" != "$PK2"

printf 'precious\n' >"$T/existing.key"
run kgo age keygen -o "$T/existing.key"
fails kgo "keygen -o onto an existing file"
check "keygen -o onto an existing file: file left unchanged" \
	test "$(cat "$T/existing.key")" = precious

# ---------------------------------------------------------------- recipient
run rcp age recipient "$T/id1.key"
check "recipient: exits 0" rc_is 0
check "recipient: prints the '# public key:' value, one line" \
	test "$(cat "$T/rcp.out")" = "$PK1"

{
	echo "# two identities, with comments and a blank line"
	cat "$T/id1.key" 2>/dev/null || true
	echo
	cat "$T/id2.key" 2>/dev/null || true
} >"$T/both.key"
run rcp2 age recipient "$T/both.key"
check "recipient: two identities give two lines, in order" \
	test "$(cat "$T/rcp2.out")" = "$(printf '%s\n%s' "$PK1" "$PK2")"

run rcp3 age recipient "$T/no-such.key"
fails rcp3 "recipient of a missing file"

# ---------------------------------------------------------------- round trips
head -c 100000 /dev/urandom >"$T/pt"

runin "$T/pt" enc1 age encrypt -r "$PK1"
check "encrypt stdin->stdout: exits 0" rc_is 0
check "encrypt: output starts with the age v1 header line" \
	test "$(head -n 1 "$T/enc1.out")" = "age-encryption.org/v1"
check "encrypt: one X25519 stanza per recipient" \
	test "$(grep -a -c '^-> X25519 ' "$T/enc1.out")" = 1
cp_ "$T/enc1.out" "$T/ct1"
runin "$T/ct1" dec1 age decrypt -i "$T/id1.key"
check "decrypt stdin->stdout: exits 0" rc_is 0
check "round trip through stdin/stdout gives the plaintext" same "$T/dec1.out" "$T/pt"

runin "$T/pt" enc1b age encrypt -r "$PK1"
check "encrypting twice gives different ciphertexts" differ "$T/enc1.out" "$T/enc1b.out"

run enc2 age encrypt -r "$PK1" -o "$T/ct2" "$T/pt"
check "encrypt IN -o OUT: exits 0, nothing on stdout" quiet_success enc2
run dec2 age decrypt -i "$T/id1.key" -o "$T/pt2" "$T/ct2"
check "decrypt IN -o OUT: exits 0, nothing on stdout" quiet_success dec2
check "round trip through files gives the plaintext" same "$T/pt2" "$T/pt"

run enc3 age encrypt --armor -r "$PK1" -o "$T/ct3.asc" "$T/pt"
check "encrypt --armor: exits 0" rc_is 0
check "encrypt --armor: PEM begin/end lines" pem_lines "$T/ct3.asc"
run dec3 age decrypt -i "$T/id1.key" -o "$T/pt3" "$T/ct3.asc"
check "armored file decrypts (detected automatically)" same "$T/pt3" "$T/pt"
runin "$T/ct3.asc" dec3b age decrypt -i "$T/id1.key"
check "armored stdin decrypts (detected automatically)" same "$T/dec3b.out" "$T/pt"
runin "$T/pt" enc3c age encrypt -a -r "$PK1"
runin "$T/enc3c.out" dec3c age decrypt -i "$T/id1.key"
check "encrypt -a stdin->stdout round trip" same "$T/dec3c.out" "$T/pt"

: >"$T/empty"
run enc4 age encrypt -r "$PK1" -o "$T/ct4" "$T/empty"
run dec4 age decrypt -i "$T/id1.key" -o "$T/pt4" "$T/ct4"
check "empty file round trip: exits 0" rc_is 0
check "empty file round trip: output exists and is empty" is_empty "$T/pt4"
run enc4a age encrypt -a -r "$PK1" -o "$T/ct4a" "$T/empty"
run dec4a age decrypt -i "$T/id1.key" -o "$T/pt4a" "$T/ct4a"
check "empty file armored round trip" is_empty "$T/pt4a"
runin "$T/empty" enc4s age encrypt -r "$PK1"
runin "$T/enc4s.out" dec4s age decrypt -i "$T/id1.key"
check "empty stdin round trip" quiet_success dec4s

{
	echo "# recipients file"
	echo "$PK1"
	echo
	echo "# second recipient"
	echo "$PK2"
} >"$T/recips.txt"
run enc5 age encrypt -R "$T/recips.txt" -o "$T/ct5" "$T/pt"
check "encrypt -R file with comments: exits 0" rc_is 0
check "encrypt -R: one stanza per recipient" \
	test "$(grep -a -c '^-> X25519 ' "$T/ct5" 2>/dev/null)" = 2
run dec5a age decrypt -i "$T/id1.key" -o "$T/pt5a" "$T/ct5"
check "encrypt -R: first identity decrypts" same "$T/pt5a" "$T/pt"
run dec5b age decrypt -i "$T/id2.key" -o "$T/pt5b" "$T/ct5"
check "encrypt -R: second identity decrypts" same "$T/pt5b" "$T/pt"

run enc6 age encrypt -r "$PK2" -r "$K0" -o "$T/ct6" "$T/pt"
check "encrypt with two -r: exits 0" rc_is 0

# ---------------------------------------------------------------- identities
run dec7 age decrypt -i "$T/id1.key" -i "$T/id2.key" -o "$T/pt7" "$T/ct2"
check "several -i where the first matches" same "$T/pt7" "$T/pt"
run dec8 age decrypt -i "$T/id2.key" -i "$T/id1.key" -o "$T/pt8" "$T/ct2"
check "several -i where only the second matches" same "$T/pt8" "$T/pt"
run dec9 age decrypt -i "$T/both.key" -o "$T/pt9" "$T/ct6"
check "identity file with comments where the second identity matches" same "$T/pt9" "$T/pt"

mkdir "$T/o10"
run dec10 age decrypt -i "$T/id2.key" -o "$T/o10/pt" "$T/ct2"
fails dec10 "wrong identity" 'no identity matched'
check "wrong identity: -o target not created (no file left in its folder)" empty_dir "$T/o10"
runin "$T/ct2" dec10s age decrypt -i "$T/id2.key"
check "wrong identity to stdout: exits 1" rc_is 1
check "wrong identity to stdout: nothing on stdout" is_empty "$T/dec10s.out"

run dec11 age decrypt -i "$T/no-such.key" -o "$T/pt11" "$T/ct2"
fails dec11 "missing identity file"
check "missing identity file: -o target not created" absent "$T/pt11"

# ---------------------------------------------------------------- passphrases
printf 'correct horse battery staple\n' >"$T/pw"
printf 'correct horse battery staple' >"$T/pw-nonl"
printf 'correct horse battery stapler\n' >"$T/pw-wrong"

run penc age encrypt -p --passphrase-file "$T/pw" --work-factor 10 -o "$T/pct" "$T/pt"
check "encrypt -p --passphrase-file --work-factor 10: exits 0" rc_is 0
check "encrypt -p: only stanza is scrypt with work factor 10" scrypt_only "$T/pct" 10
run pdec age decrypt -p --passphrase-file "$T/pw" -o "$T/ppt" "$T/pct"
check "passphrase round trip" same "$T/ppt" "$T/pt"
run pdec2 age decrypt -p --passphrase-file "$T/pw-nonl" -o "$T/ppt2" "$T/pct"
check "passphrase file's trailing newline is stripped" same "$T/ppt2" "$T/pt"
mkdir "$T/o12"
run pdec3 age decrypt -p --passphrase-file "$T/pw-wrong" -o "$T/o12/pt" "$T/pct"
fails pdec3 "wrong passphrase"
check "wrong passphrase: -o target not created" empty_dir "$T/o12"

runin "$T/pt" penca age encrypt -a -p --passphrase-file "$T/pw" --work-factor 10
runin "$T/penca.out" pdeca age decrypt -p --passphrase-file "$T/pw"
check "passphrase armored stdin/stdout round trip" same "$T/pdeca.out" "$T/pt"

head -c 1000 /dev/urandom >"$T/small"
run pencd age encrypt -p --passphrase-file "$T/pw" -o "$T/pctd" "$T/small"
check "encrypt -p without --work-factor: scrypt work factor 18" scrypt_only "$T/pctd" 18
run pdecd age decrypt -p --passphrase-file "$T/pw" -o "$T/pptd" "$T/pctd"
check "passphrase round trip at the default work factor" same "$T/pptd" "$T/small"

run pmix age encrypt -p --passphrase-file "$T/pw" --work-factor 10 -r "$PK1" -o "$T/pmix.age" "$T/pt"
check "-p mixed with -r: refused (exit 1 or 2)" rc_is_1_or_2
check "-p mixed with -r: message on stderr" nonempty "$T/pmix.err"
check "-p mixed with -r: no output file" absent "$T/pmix.age"

# ---------------------------------------------------------------- damaged input
head -c 204800 /dev/urandom >"$T/big"
run benc age encrypt -r "$PK1" -o "$T/bct" "$T/big"
check "200 KiB file encrypts" rc_is 0
hl=$(header_len "$T/bct")
bsize=$(size_of "$T/bct")
# 204800 = 3 full 64 KiB chunks + 8192 bytes; each chunk has a 16-byte tag.
check "200 KiB ciphertext has the expected size" \
	test "$bsize" -eq $((hl + 16 + 3 * 65552 + 8192 + 16))

cp_ "$T/bct" "$T/t1"
flip_byte "$T/t1" $((bsize - 20)) || true
mkdir "$T/o13"
run t1 age decrypt -i "$T/id1.key" -o "$T/o13/pt" "$T/t1"
fails t1 "flipped byte in the last payload chunk" 'authenticat'
check "flipped byte in the last chunk: -o target not created (no partial plaintext)" empty_dir "$T/o13"

cp_ "$T/bct" "$T/t2"
flip_byte "$T/t2" $((hl + 16 + 100)) || true
mkdir "$T/o14"
run t2 age decrypt -i "$T/id1.key" -o "$T/o14/pt" "$T/t2"
fails t2 "flipped byte in the first payload chunk" 'authenticat'
check "flipped byte in the first chunk: -o target not created" empty_dir "$T/o14"

head -c $((bsize - 100)) "$T/bct" >"$T/t3" 2>/dev/null || true
mkdir "$T/o15"
run t3 age decrypt -i "$T/id1.key" -o "$T/o15/pt" "$T/t3"
fails t3 "ciphertext missing its last 100 bytes"
check "missing last 100 bytes: -o target not created (no partial plaintext)" empty_dir "$T/o15"

head -c $((hl + 16 + 3 * 65552)) "$T/bct" >"$T/t4" 2>/dev/null || true
mkdir "$T/o16"
run t4 age decrypt -i "$T/id1.key" -o "$T/o16/pt" "$T/t4"
fails t4 "ciphertext cut at a chunk boundary" 'truncat'
check "cut at a chunk boundary: -o target not created" empty_dir "$T/o16"

cp_ "$T/bct" "$T/t5"
macoff=$((hl - 48 + 4 + 10)) # a middle character of the base64 MAC
if [ "$(get_byte "$T/t5" "$macoff")" -eq 65 ]; then
	put_byte "$T/t5" "$macoff" 66 || true # 'A' -> 'B'
else
	put_byte "$T/t5" "$macoff" 65 || true # -> 'A'
fi
mkdir "$T/o17"
run t5 age decrypt -i "$T/id1.key" -o "$T/o17/pt" "$T/t5"
fails t5 "changed character in the header MAC line" 'MAC'
check "changed header MAC: -o target not created" empty_dir "$T/o17"

head -c 30 "$T/bct" >"$T/t6" 2>/dev/null || true
run t6 age decrypt -i "$T/id1.key" -o "$T/pt6" "$T/t6"
fails t6 "header cut short"
check "header cut short: -o target not created" absent "$T/pt6"

cp_ "$T/bct" "$T/t10"
printf 'extra' >>"$T/t10"
mkdir "$T/o18"
run t10 age decrypt -i "$T/id1.key" -o "$T/o18/pt" "$T/t10"
fails t10 "bytes appended after the final chunk"
check "bytes appended after the final chunk: -o target not created" empty_dir "$T/o18"

head -c 65536 /dev/urandom >"$T/full"
run fenc age encrypt -r "$PK1" -o "$T/fct" "$T/full"
cp_ "$T/fct" "$T/t11"
printf 'extra' >>"$T/t11"
mkdir "$T/o19"
run t11 age decrypt -i "$T/id1.key" -o "$T/o19/pt" "$T/t11"
fails t11 "bytes appended after a full-size final chunk" 'trailing'
check "bytes appended after a full-size final chunk: -o target not created" empty_dir "$T/o19"

echo keep >"$T/keep"
run t12 age decrypt -i "$T/id2.key" -o "$T/keep" "$T/ct2"
check "failed decrypt onto an existing -o file: exits 1" rc_is 1
check "failed decrypt onto an existing -o file: the file is left as it was" \
	test "$(cat "$T/keep")" = keep

printf 'this is not an age file\n' >"$T/t7"
run t7 age decrypt -i "$T/id1.key" -o "$T/pt7x" "$T/t7"
fails t7 "input that is not age"
check "input that is not age: -o target not created" absent "$T/pt7x"

run t8 age encrypt -r "$PK1" -o "$T/ct8" "$T/no-such-input"
fails t8 "encrypt of a missing input file"
run t9 age encrypt -r "age1notarealrecipient" -o "$T/ct9" "$T/pt"
check "encrypt to a malformed recipient: refused (exit 1 or 2)" rc_is_1_or_2
check "encrypt to a malformed recipient: no output file" absent "$T/ct9"

echo "cli: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
