"""Schemathesis hooks for .ci/contract.py.

An Idempotency-Key promises one record per key: the service answers a key it has seen with
another body by 422, as it should. Schemathesis draws keys from a small space and sends the same
one with different bodies, so each valid key it draws is replaced by a fresh one. Keys it draws
to break the header's rules are left as they are, so their refusal is still checked.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook("map_headers")
def fresh_idempotency_key(ctx, headers):
    key = headers.get("Idempotency-Key") if headers else None
    if isinstance(key, str) and VALID_KEY.match(key):
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers
