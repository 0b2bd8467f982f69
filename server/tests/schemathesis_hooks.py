"""Schemathesis hooks for the propsync relay's OpenAPI document.

Document ids are automerge-repo ids: the base58check encoding (double SHA-256
checksum) of 16 bytes. No JSON Schema keyword can say "the checksum holds", so
the document marks them `format: automerge-doc-id` (and `automerge-url` for
`automerge:<id>`), and these strategies make well-formed ones: a test case
then reaches the lookup (a 404 for an id nobody made) instead of stopping at
the parser's 400.
"""

import hashlib

import schemathesis
from hypothesis import strategies as st

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = ALPHABET[r] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


DOC_IDS = st.binary(min_size=16, max_size=16).map(base58check)

schemathesis.openapi.format("automerge-doc-id", DOC_IDS)
schemathesis.openapi.format("automerge-url", DOC_IDS.map(lambda i: "automerge:" + i))
