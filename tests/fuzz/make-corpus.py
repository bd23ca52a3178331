#!/usr/bin/env python3
"""Seeds the fuzz corpora from the C2SP CCTV age vectors.

Run once by a developer (the output is committed):
    tests/fuzz/make-corpus.py tests/data/age/cctv/testdata
Each corpus gets the part of every vector its target parses: whole files
(age_decrypt), headers (age_header), armored files (age_armor), and
payload key + STREAM chunks computed from the vector's file key
(age_stream).
"""
import hashlib, hmac, os, sys, zlib

def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]

def load(path):
    data = open(path, "rb").read()
    head, _, body = data.partition(b"\n\n")
    meta = {}
    for line in head.decode().splitlines():
        k, _, v = line.partition(": ")
        meta.setdefault(k, v)
    if meta.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return meta, body

def write(corpus, name, data):
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

MAX = 200_000  # keep the committed corpus small

def main(src):
    for name in sorted(os.listdir(src)):
        meta, body = load(os.path.join(src, name))
        if len(body) <= MAX:
            write("age_decrypt", name, body)
        if meta.get("armored") == "yes":
            write("age_armor", name, b"\x00" + body)
            continue
        end = body.find(b"\n---")
        if end >= 0:
            nl = body.find(b"\n", end + 1)
            if nl >= 0:
                write("age_header", name, body[: nl + 1])
                nonce = body[nl + 1 : nl + 17]
                fk = meta.get("file key")
                if fk and len(nonce) == 16 and len(body) - nl - 17 <= MAX:
                    key = hkdf(bytes.fromhex(fk), nonce, b"payload")
                    write("age_stream", name, b"\x07" + key + body[nl + 17 :])

if __name__ == "__main__":
    main(sys.argv[1])
