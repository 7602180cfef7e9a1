"""SigV4 signature checks for the local endpoint, so a test can prove a *stolen key id* gets nowhere.

Without this, :class:`~._access.AccessPolicy` trusts the access key id a request names. With the
secret keys registered (``AccessPolicy(secret_keys=...)``), the endpoint recomputes the signature
exactly as botocore computed it on the client (same canonical request, string to sign and HMAC
chain, through botocore's own :class:`~botocore.auth.SigV4Auth`), and refuses a mismatch or a
stale timestamp with the errors AWS uses. Only header-signed requests can be verified; a key with a
registered secret must sign that way.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

#: How far a request's ``X-Amz-Date`` may be from the endpoint's clock (AWS allows 15 minutes).
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
_ALGORITHM = "AWS4-HMAC-SHA256"
_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]+)")
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as it arrived: what the signature covers."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


@dataclass(frozen=True)
class SignatureProblem:
    """Why a signature is refused: an AWS error code and message (HTTP 403)."""

    code: str
    message: str


def check_signature(request: SignedRequest, key_id: str, secret_key: str) -> SignatureProblem | None:
    """``None`` when ``request`` carries a valid SigV4 signature made with ``secret_key``."""
    authorization = request.headers.get("authorization", "")
    if not authorization.startswith(_ALGORITHM + " "):
        return SignatureProblem("MissingAuthenticationTokenException",
                                f"{key_id} must sign requests with {_ALGORITHM} in the Authorization header")
    fields = dict(_FIELD.findall(authorization))
    scope = fields.get("Credential", "").split("/")
    signed = fields.get("SignedHeaders", "").split(";")
    given = fields.get("Signature", "")
    if len(scope) != 5 or scope[0] != key_id or scope[4] != "aws4_request" or not given or "host" not in signed:
        return SignatureProblem("IncompleteSignatureException", "Authorization header is malformed")
    amz_date = request.headers.get("x-amz-date", "")
    try:
        moment = dt.datetime.strptime(amz_date, _DATE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return SignatureProblem("IncompleteSignatureException", "X-Amz-Date is missing or malformed")
    if abs(dt.datetime.now(dt.timezone.utc) - moment) > MAX_CLOCK_SKEW or not amz_date.startswith(scope[1]):
        return SignatureProblem("InvalidSignatureException", "Signature expired: X-Amz-Date is outside the skew")
    headers = {name: request.headers.get(name, "") for name in signed}
    url = f"http://{headers['host']}{request.raw_path}" + (f"?{request.raw_query}" if request.raw_query else "")
    aws_request = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
    aws_request.context["timestamp"] = amz_date
    token = request.headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(key_id, secret_key, token), scope[3], scope[2])
    canonical = signer.canonical_request(aws_request)
    expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
    if not hmac.compare_digest(expected, given):
        return SignatureProblem(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return None
