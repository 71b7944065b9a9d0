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


# CPython 3.11 can fail to parse a large module's source while Hypothesis describes a filter's
# lambda for its own messages ("AST constructor recursion depth mismatch", a SystemError); the
# description is cosmetic, so such a failure reads as an unknown lambda instead of ending the run.
import hypothesis.internal.lambda_sources as _lambda_sources  # noqa: E402

_describe = _lambda_sources._lambda_description


def _describe_or_unknown(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


_lambda_sources._lambda_description = _describe_or_unknown
