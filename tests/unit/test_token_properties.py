"""Property-based tests of the token parser: whatever a bearer token holds, the verifier
answers a principal, NotAuthenticatedError (401) or ForbiddenError (403), never anything else.

Headers, claims, algorithms, key ids and signatures are generated; some tokens are really
signed by the issuer's key, so the claims' checks are reached too. The keys come from a JWKS
document read by the same cache the functions use (RefreshingJwks), in memory.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters.jwt_tokens import JwtVerifier
from chalicelib.orders.access import Principal, Role
from chalicelib.orders.errors import ForbiddenError, NotAuthenticatedError
from localdev import dev_issuer
from tests.unit.properties import InMemoryJwks, json_text, json_values, property_settings

ISSUER = "https://issuer.example"
AUDIENCE = "orders-api"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "signing-key.pem"


@pytest.fixture(scope="module")
def verifier(key_file: Path) -> JwtVerifier:
    return JwtVerifier(InMemoryJwks(dev_issuer.public_jwks(key_file)), ISSUER, AUDIENCE, "role")


@functools.cache
def kid_of(key_file: Path) -> str:
    return str(dev_issuer.public_jwks(key_file)["keys"][0]["kid"])


@functools.cache
def issuer_key(key_file: Path) -> Any:
    return dev_issuer.signing_key(key_file)


def encoded(value: Any) -> str:
    return jwt.utils.base64url_encode(json_text(value).encode()).decode()


ALGS = st.sampled_from(["RS256", "ES256", "HS256", "PS256", "none", "RS512", ""]) | json_values
KIDS = st.sampled_from(["REAL", "unknown"]) | json_values
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": ALGS,
        "kid": KIDS,
        "typ": json_values,
        "crit": json_values,
        "b64": json_values,
    },
).flatmap(
    lambda header: st.dictionaries(st.text(max_size=6), json_values, max_size=3).map(
        lambda extra: extra | header
    )
)


def outcome(verifier: JwtVerifier, token: str) -> Principal | None:
    """The principal, or None for a 401/403; any other exception fails the property."""
    try:
        return verifier.verify(token)
    except (NotAuthenticatedError, ForbiddenError):
        return None


@property_settings
@given(token=st.text(max_size=300))
def test_any_text_as_a_token_is_not_authenticated(verifier: JwtVerifier, token: str) -> None:
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(token)


@property_settings
@given(header=headers, claims=json_values, signature=st.binary(max_size=300))
def test_any_header_claims_and_signature_are_not_authenticated(
    verifier: JwtVerifier, key_file: Path, header: dict[str, Any], claims: Any, signature: bytes
) -> None:
    if header.get("kid") == "REAL":
        header["kid"] = kid_of(key_file)
    token = f"{encoded(header)}.{encoded(claims)}.{jwt.utils.base64url_encode(signature).decode()}"
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(token)


VALID = {"iss": ISSUER, "aud": AUDIENCE, "sub": "customer-42", "role": "customer"}


@property_settings
@given(
    changes=st.dictionaries(
        st.sampled_from(["iss", "aud", "sub", "role", "exp", "nbf", "iat", "jti"]) | st.text(),
        json_values | st.sampled_from(["customer", "restaurant", ISSUER, AUDIENCE]),
        max_size=4,
    ),
    removed=st.sets(st.sampled_from(["iss", "aud", "sub", "role", "exp"])),
    extra_header=st.dictionaries(
        st.sampled_from(["typ", "cty", "crit", "x5u", "jku"]), json_values
    ),
    alg=st.sampled_from(["RS256", "RS256", "ES256", "RS512"]),
)
def test_claims_signed_by_the_issuer_give_a_principal_only_when_all_are_right(
    verifier: JwtVerifier,
    key_file: Path,
    changes: dict[str, Any],
    removed: set[str],
    extra_header: dict[str, Any],
    alg: str,
) -> None:
    claims = {**VALID, "exp": int(time.time()) + 600} | changes
    claims = {name: value for name, value in claims.items() if name not in removed}
    header = extra_header | {"alg": alg, "kid": kid_of(key_file)}
    signing_input = f"{encoded(header)}.{encoded(claims)}"
    # Signed with RS256 whatever the header says: the key's own algorithm decides.
    signature = jwt.get_algorithm_by_name("RS256").sign(
        signing_input.encode(), issuer_key(key_file)
    )
    principal = outcome(
        verifier, f"{signing_input}.{jwt.utils.base64url_encode(signature).decode()}"
    )
    if principal is not None:
        assert alg == "RS256" and "crit" not in header
        assert claims["iss"] == ISSUER and principal.id == claims["sub"]
        assert principal.role in (Role.CUSTOMER, Role.RESTAURANT)
