"""Reading a signed request's Authorization header (server/providers/authheader.py), as both sandboxes do."""

from __future__ import annotations

import pytest

from cloudjobs_mcp.server.providers.authheader import SignatureError, authorization_fields
from cloudjobs_mcp.server.providers.modelarts import signing as modelarts_signing
from cloudjobs_mcp.server.providers.pai import signing as pai_signing

REQUIRED = ("Access", "SignedHeaders", "Signature")


def test_the_fields_of_a_well_formed_header() -> None:
    header = " SDK-HMAC-SHA256 Access=AK1, SignedHeaders=host;x-sdk-date, Signature=abc= "
    assert authorization_fields(header, "SDK-HMAC-SHA256", REQUIRED) == {
        "Access": "AK1",
        "SignedHeaders": "host;x-sdk-date",
        "Signature": "abc=",  # split at the first '=' only
    }


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("ACS3-HMAC-SHA256 Access=a,SignedHeaders=h,Signature=s", "unsupported signature algorithm 'ACS3-HMAC-SHA256'"),
        ("SDK-HMAC-SHA256 Access=a, SignedHeaders, Signature=s", "malformed Authorization field 'SignedHeaders'"),
        ("SDK-HMAC-SHA256 Signature=s", "Authorization lacks Access"),  # the first missing one, in order
        ("SDK-HMAC-SHA256 Access=a,Signature=s", "Authorization lacks SignedHeaders"),
    ],
)
def test_a_header_that_cannot_be_read_says_what_is_wrong(header: str, message: str) -> None:
    with pytest.raises(SignatureError) as caught:
        authorization_fields(header, "SDK-HMAC-SHA256", REQUIRED)
    assert str(caught.value) == message


def test_both_clouds_raise_the_one_signature_error() -> None:
    assert pai_signing.SignatureError is modelarts_signing.SignatureError is SignatureError
    with pytest.raises(SignatureError, match="Authorization lacks Signature"):
        modelarts_signing.parse_authorization("SDK-HMAC-SHA256 Access=a,SignedHeaders=host")
    assert pai_signing.parse_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x,Signature=s") == (
        "a",
        ["host", "x"],
        "s",
    )
