"""SDK-HMAC-SHA256 against the official signer's known answers (tests/data/huawei_sdk_signatures.json), and
the rules the public vectors do not exercise, each checked against the SDK's own algorithm as the
reference (§1.1) states it."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from cloudjobs_mcp.server.providers.modelarts import signing

VECTORS = json.loads((Path(__file__).parent / "data" / "huawei_sdk_signatures.json").read_text())


def _sign(v: dict[str, Any]) -> signing.SignedRequest:
    return signing.sign_request(
        method=v["method"],
        host=v["host"],
        path=v["path"],
        query=[tuple(p) for p in v["query"]],
        headers=v["headers"],
        body=v["body"].encode("utf-8"),
        access_key=v["access_key"],
        secret_key=v["secret_key"],
        project_id=v["project_id"],
        domain_id=v["domain_id"],
        security_token=v["security_token"],
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_every_vector_reproduces_byte_for_byte(vector: dict[str, Any]) -> None:
    signed = _sign(vector)
    expected = vector["expected"]
    assert signed.canonical_request == expected["canonical_request"]
    assert signed.string_to_sign == expected["string_to_sign"]
    assert signed.signed_headers == expected["signed_headers"]
    assert signed.authorization == expected["authorization"]
    assert f"https://{vector['host']}{signed.path_and_query}" == expected["url"]
    assert signed.headers == expected["headers"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_verifier_accepts_every_vector_and_refuses_a_wrong_secret(vector: dict[str, Any]) -> None:
    signed = _sign(vector)
    path, _, query = signed.path_and_query.partition("?")
    body = vector["body"].encode("utf-8")
    assert signing.verify(vector["secret_key"], vector["method"], path, query, signed.headers, body)
    assert not signing.verify("wrong" + vector["secret_key"], vector["method"], path, query, signed.headers, body)
    if body:
        assert not signing.verify(vector["secret_key"], vector["method"], path, query, signed.headers, body + b" ")


def _reference_signature(canonical: str, date: str, sk: str) -> str:
    to_sign = f"SDK-HMAC-SHA256\n{date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def test_query_pairs_sort_by_key_then_typed_value_with_repeats_bools_and_lists() -> None:
    query = [
        ("type", "train"),
        ("type", "infer"),
        ("ascend", False),
        ("limit", 10),
        ("offset", 9),
        ("offset", 10),
        ("hostip", ["192.168.0.3", "192.168.0.12"]),
        ("skip", None),
        ("empty", ""),
        ("q", "a b,c*d/e=f~g"),
    ]
    assert signing.canonical_query(query) == (
        "ascend=false&empty=&hostip=192.168.0.12&hostip=192.168.0.3&limit=10&offset=9&offset=10"
        "&q=a%20b%2Cc%2Ad%2Fe%3Df~g&type=infer&type=train"
    )
    # a bool inside a list is str()-ed, as the SDK does
    assert signing.canonical_query([("flags", [True, False])]) == "flags=False&flags=True"


def test_canonical_uri_decodes_then_reencodes_segments_and_ends_in_a_slash() -> None:
    assert signing.canonical_uri("/v2/p/pools/a%20b/workloads") == "/v2/p/pools/a%20b/workloads/"
    assert signing.canonical_uri("/v2/p/x%2Fy") == "/v2/p/x/y/"  # the SDK's quirk: %2F becomes a separator
    assert signing.canonical_uri("/v2/p/caf%C3%A9") == "/v2/p/caf%C3%A9/"
    assert signing.canonical_uri("/") == "/"


def test_underscore_headers_are_sent_not_signed_and_domain_id_port_and_values_are_kept() -> None:
    signed = signing.sign_request(
        method="GET",
        host="bss.example.com:8443",
        path="/v2/bills",
        headers={"X_Custom": "x", "X-Sdk-Date": "20260102T030405Z", "User-Agent": "  a  b  "},
        access_key="AK",
        secret_key="SK",
        domain_id="dom1",
    )
    assert signed.signed_headers == "host;user-agent;x-domain-id;x-sdk-date"
    assert signed.headers["X_Custom"] == "x"
    assert signed.headers["Host"] == "bss.example.com:8443"
    assert signed.headers["User-Agent"] == "a  b"  # trimmed, inner spaces kept
    canonical = (
        "GET\n/v2/bills/\n\nhost:bss.example.com:8443\nuser-agent:a  b\nx-domain-id:dom1\n"
        "x-sdk-date:20260102T030405Z\n\nhost;user-agent;x-domain-id;x-sdk-date\n" + signing.EMPTY_SHA256
    )
    assert signed.canonical_request == canonical
    assert signed.authorization.endswith(_reference_signature(canonical, "20260102T030405Z", "SK"))


def test_unsigned_payload_with_a_body_uses_the_declared_hash() -> None:
    signed = signing.sign_request(
        method="PUT",
        host="h",
        path="/p",
        headers={"Content-Type": "text/plain", "X-Sdk-Date": "20260102T030405Z"},
        body=b"hello",
        access_key="AK",
        secret_key="SK",
    )
    assert signed.headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert signed.canonical_request.endswith("\nUNSIGNED-PAYLOAD")
