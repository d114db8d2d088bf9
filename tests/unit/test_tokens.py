"""Unit tests of bearer-token verification (PyJWT, real RSA keys, a JWKS read from a URL).

The JWKS is served by a small HTTP server on 127.0.0.1, which PyJWT's JWKS client
fetches like an issuer's ``.well-known/jwks.json``.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.jwt_tokens import JwksUrlKeys, JwtVerifier
from chalicelib.orders.access import Principal, Role
from chalicelib.orders.errors import ForbiddenError, NotAuthenticatedError
from localdev import dev_issuer

ISSUER = "https://issuer.example"
AUDIENCE = "orders-api"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "signing-key.pem"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP, and its URL."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def jwks_url(served: tuple[Path, str], name: str, jwks: dict[str, Any]) -> str:
    folder, url = served
    (folder / name).write_text(json.dumps(jwks))
    return f"{url}/{name}"


@pytest.fixture(scope="module")
def verifier(key_file: Path, served: tuple[Path, str]) -> JwtVerifier:
    url = jwks_url(served, "jwks.json", dev_issuer.public_jwks(key_file))
    return JwtVerifier(JwksUrlKeys(url), ISSUER, AUDIENCE, role_claim="role")


def sign(key_file: Path, key: Any = None, algorithm: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "customer-42", "role": "customer"}
    claims |= {"iat": now, "exp": now + 60} | changes
    claims = {name: value for name, value in claims.items() if value is not None}
    kid = dev_issuer.public_jwks(key_file)["keys"][0]["kid"]
    signing_key = key if key is not None else dev_issuer.signing_key(key_file)
    return jwt.encode(claims, signing_key, algorithm=algorithm, headers={"kid": kid})


def test_a_valid_token_names_its_principal(verifier: JwtVerifier, key_file: Path) -> None:
    assert verifier.verify(sign(key_file)) == Principal(Role.CUSTOMER, "customer-42")


def test_a_group_list_claim_names_the_role(key_file: Path, verifier: JwtVerifier) -> None:
    groups = JwtVerifier(verifier._keys, ISSUER, AUDIENCE, role_claim="cognito:groups")
    token = sign(key_file, **{"role": None, "cognito:groups": ["staff", "restaurant"]})
    assert groups.verify(token) == Principal(Role.RESTAURANT, "customer-42")


def unsigned(key_file: Path) -> str:
    """A token with alg "none": all claims right, no signature."""
    header, claims, _ = sign(key_file).split(".")
    none = jwt.utils.base64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{none.decode()}.{claims}."


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key_file: Path) -> bytes:
    return (
        dev_issuer.signing_key(key_file)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.mark.parametrize(
    "forge",
    [
        lambda f: sign(f, exp=int(time.time()) - 120),
        lambda f: sign(f, aud="another-api"),
        lambda f: sign(f, iss="https://evil.example"),
        lambda f: sign(f, exp=None),
        lambda f: sign(f, sub=None),
        lambda f: sign(f, key=other_key()),
        lambda f: unsigned(f),
        lambda f: jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "nope"}),
        lambda f: "not.a.token",
        lambda f: "garbage",
    ],
    ids=[
        "expired",
        "audience",
        "issuer",
        "no-exp",
        "no-sub",
        "other-key-same-kid",
        "alg-none",
        "unknown-kid",
        "three-parts-of-nothing",
        "garbage",
    ],
)
def test_tokens_we_did_not_issue_are_not_authenticated(
    verifier: JwtVerifier, key_file: Path, forge: Any
) -> None:
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(forge(key_file))


def test_the_public_key_as_an_hmac_secret_is_refused(verifier: JwtVerifier, key_file: Path) -> None:
    # The algorithm-confusion attack: PyJWT refuses an asymmetric key as an HMAC secret,
    # and the verifier only allows asymmetric algorithms anyway.
    kid = dev_issuer.public_jwks(key_file)["keys"][0]["kid"]
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "role": "customer", "exp": 2**31}
    try:
        token = jwt.encode(claims, public_pem(key_file), algorithm="HS256", headers={"kid": kid})
    except jwt.InvalidKeyError:
        return  # PyJWT will not even make one
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(token)


@pytest.mark.parametrize(
    "role", [None, "admin", ["customer", "restaurant"]], ids=["none", "unknown", "both"]
)
def test_a_valid_token_without_exactly_one_role_is_forbidden(
    verifier: JwtVerifier, key_file: Path, role: Any
) -> None:
    with pytest.raises(ForbiddenError):
        verifier.verify(sign(key_file, role=role))


def test_the_development_issuer_signs_what_a_local_stage_accepts(
    key_file: Path, served: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.stages import load_stage

    monkeypatch.setattr(dev_issuer, "KEY_FILE", key_file)
    monkeypatch.setattr(dev_issuer.signing_key, "__defaults__", (key_file,))
    monkeypatch.setattr(dev_issuer.public_jwks, "__defaults__", (key_file,))
    stage = load_stage("local")
    url = jwks_url(served, "local.json", dev_issuer.public_jwks())
    local = JwtVerifier(
        JwksUrlKeys(url), stage.auth.issuer, stage.auth.audience, stage.auth.role_claim
    )
    token = dev_issuer.token(stage, "restaurant", "restaurant-7")
    assert local.verify(token) == Principal(Role.RESTAURANT, "restaurant-7")


def test_the_development_issuer_refuses_stages_with_a_real_issuer() -> None:
    from deploy.stages import load_stage

    with pytest.raises(SystemExit, match="get tokens from that issuer"):
        dev_issuer.token(load_stage("dev"), "customer", "customer-42")
