"""Unit tests of bearer-token verification (PyJWT, real RSA keys, a JWKS read from a URL).

The JWKS is served by a small HTTP server on 127.0.0.1, which PyJWT's JWKS client
fetches like an issuer's ``.well-known/jwks.json``.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from chalice.test import Client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.jwt_tokens import (
    KEYS_MAX_AGE_SECONDS,
    MIN_READ_INTERVAL_SECONDS,
    JwksUrlKeys,
    JwtVerifier,
    SsmJwksKeys,
)
from chalicelib.orders.access import Principal, Role
from chalicelib.orders.errors import ForbiddenError, NotAuthenticatedError
from chalicelib.ports import SigningKeys
from chalicelib.settings import ConfigurationError
from localdev import dev_issuer
from tests.unit.fakes import FakeDependencies

ISSUER = "https://issuer.example"
AUDIENCE = "orders-api"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "signing-key.pem"


class JwksServer:
    """An issuer's key endpoint on 127.0.0.1: documents by path, counting each fetch."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.fetches: dict[str, int] = {}
        documents, fetches = self.documents, self.fetches

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fetches[self.path] = fetches.get(self.path, 0) + 1
                if self.path not in documents:
                    self.send_error(404)
                    return
                body, headers = documents[self.path]
                self.send_response(200)
                for name, value in ({"Content-Type": "application/json"} | headers).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, path: str, body: Any, headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` (JSON, or bytes as they are) at ``path``; its URL."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.documents[path] = (raw, headers or {})
        return f"{self.url}{path}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def served() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


def jwks_url(served: JwksServer, name: str, jwks: dict[str, Any]) -> str:
    return served.serve(f"/{name}", jwks)


@pytest.fixture(scope="module")
def verifier(key_file: Path, served: JwksServer) -> JwtVerifier:
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
    key_file: Path, served: JwksServer, monkeypatch: pytest.MonkeyPatch
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


def crafted(header: dict[str, Any], claims: Any = None, signature: bytes = b"sig") -> str:
    """A token whose header and claims are written by hand (the signature is not checked yet)."""

    def part(value: Any) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    body = claims if claims is not None else {"iss": ISSUER, "aud": AUDIENCE, "sub": "x"}
    return f"{part(header)}.{part(body)}.{jwt.utils.base64url_encode(signature).decode()}"


def key_id(key_file: Path) -> str:
    return str(dev_issuer.public_jwks(key_file)["keys"][0]["kid"])


def signed_as(key_file: Path, algorithm: str, claims: dict[str, Any] | None = None) -> str:
    """Really signed by the issuer's RSA key, under the header ``algorithm`` claims."""
    header = {"alg": algorithm, "kid": key_id(key_file), "typ": "JWT"}
    unsigned_token = crafted(header, claims).rsplit(".", 1)[0]
    signature = jwt.get_algorithm_by_name("RS256").sign(
        unsigned_token.encode(), dev_issuer.signing_key(key_file)
    )
    return f"{unsigned_token}.{jwt.utils.base64url_encode(signature).decode()}"


@pytest.mark.parametrize(
    "forge",
    [
        lambda f: crafted({"alg": "RS256", "kid": 123}),
        lambda f: crafted({"alg": "RS256", "kid": ["a"]}),
        lambda f: crafted({"alg": "ES256", "kid": key_id(f)}),
        lambda f: signed_as(f, "ES256"),
        lambda f: crafted({"alg": "RS256", "kid": key_id(f), "crit": ["exp"]}),
        lambda f: crafted({"alg": "RS256", "kid": key_id(f), "crit": "b64"}),
        lambda f: crafted({"alg": "RS256"}),
        lambda f: crafted({"alg": "RS256", "kid": key_id(f)}, claims=[1, 2]),
        lambda f: "\ud800.\udfff.x",
    ],
    ids=[
        "numeric-kid",
        "list-kid",
        "es256-naming-an-rsa-key",
        "es256-header-rsa-signature",
        "crit-unsupported",
        "crit-not-a-list",
        "no-kid",
        "claims-not-an-object",
        "lone-surrogates",
    ],
)
def test_malformed_headers_are_not_authenticated(
    verifier: JwtVerifier, key_file: Path, forge: Any
) -> None:
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(forge(key_file))


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": [1]},
        {"exp": 1e400},
        {"exp": "soon"},
        {"iat": {"a": 1}},
        {"nbf": 1e400},
        {"sub": 42},
        {"aud": [1, None]},
        {"iss": ["x"]},
    ],
    ids=[
        "exp-list",
        "exp-infinite",
        "exp-text",
        "iat-object",
        "nbf-infinite",
        "sub-number",
        "aud-not-text",
        "iss-list",
    ],
)
def test_claims_of_the_wrong_type_signed_by_the_issuer_are_not_authenticated(
    verifier: JwtVerifier, key_file: Path, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "role": "customer", "exp": now + 60}
    token = signed_as(key_file, "RS256", base | claims)
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(token)


@pytest.mark.parametrize(
    "document",
    [b"<html>not found</html>", b"[]", b'{"keys": "none"}', b'{"keys": [{"kty": "RSA"}]}'],
    ids=["html", "array", "keys-not-a-list", "no-usable-key"],
)
def test_an_issuer_answering_no_jwks_is_a_configuration_error(
    served: JwksServer, key_file: Path, document: bytes
) -> None:
    """The issuer's fault, not the caller's: the API answers 503 (retry), not 401 or 500."""
    url = served.serve(f"/broken-{abs(hash(document))}.json", document)
    broken = JwtVerifier(JwksUrlKeys(url), ISSUER, AUDIENCE, role_claim="role")
    with pytest.raises(ConfigurationError, match="issuer's keys"):
        broken.verify(sign(key_file))


# --- keys expire: a key the issuer removed is refused after the keys' max age -----------------


class MovableClock:
    """The key cache's clock, moved by the test: no test waits for time to pass."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSsm:
    """An SSM client holding parameters in memory (tests/integration reads the real one)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0

    def get_parameter(self, Name: str) -> dict[str, Any]:
        self.reads += 1
        if Name not in self.values:
            raise ClientError({"Error": {"Code": "ParameterNotFound"}}, "GetParameter")
        return {"Parameter": {"Name": Name, "Value": self.values[Name]}}


class Issuer:
    """An issuer's key source (its JWKS URL, or an SSM parameter) whose keys a test changes."""

    def __init__(self, served: JwksServer, source: str, name: str) -> None:
        self._served, self._source, self._name = served, source, name
        self.ssm = FakeSsm()
        self.clock = MovableClock()

    def publish(self, jwks: dict[str, Any], cache_control: str | None = None) -> None:
        headers = {"Cache-Control": cache_control} if cache_control else {}
        self._served.serve(f"/{self._name}.json", jwks, headers)
        self.ssm.values[self._name] = json.dumps(jwks)

    def reads(self) -> int:
        return self.ssm.reads if self._source == "ssm" else self._served.fetches.get(self._path, 0)

    @property
    def _path(self) -> str:
        return f"/{self._name}.json"

    def verifier(self) -> JwtVerifier:
        keys: SigningKeys = (
            SsmJwksKeys(self._name, self.ssm, clock=self.clock)
            if self._source == "ssm"
            else JwksUrlKeys(f"{self._served.url}{self._path}", clock=self.clock)
        )
        return JwtVerifier(keys, ISSUER, AUDIENCE, role_claim="role")


@pytest.fixture(params=["url", "ssm"])
def issuer(request: pytest.FixtureRequest, served: JwksServer) -> Issuer:
    return Issuer(served, request.param, f"rotating-{request.param}-{uuid.uuid4().hex}")


def test_a_removed_key_is_trusted_until_the_max_age_then_refused(
    issuer: Issuer, key_file: Path
) -> None:
    # GIVEN a warm verifier that has read the issuer's keys
    issuer.publish(dev_issuer.public_jwks(key_file))
    verifier = issuer.verifier()
    token = sign(key_file, exp=int(time.time()) + 3600)
    assert verifier.verify(token).id == "customer-42"
    # WHEN the issuer removes the key (rotated out or revoked)
    issuer.publish({"keys": [rotated_in()]})
    # THEN its tokens still pass until the keys read are KEYS_MAX_AGE_SECONDS old...
    issuer.clock.advance(KEYS_MAX_AGE_SECONDS - 1)
    assert verifier.verify(token).id == "customer-42"
    # ...and are refused from then on
    issuer.clock.advance(1)
    with pytest.raises(NotAuthenticatedError, match="unknown"):
        verifier.verify(token)


@functools.cache
def rotated_key() -> rsa.RSAPrivateKey:
    return other_key()


def rotated_in() -> dict[str, Any]:
    """The public JWK of another key (the one an issuer rotates to), under a new id."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rotated_key().public_key()))
    return jwk | {"kid": f"new-{uuid.uuid4().hex}", "alg": "RS256", "use": "sig"}


def test_tokens_naming_unknown_keys_read_the_keys_at_most_once_per_interval(
    issuer: Issuer, key_file: Path
) -> None:
    issuer.publish(dev_issuer.public_jwks(key_file))
    verifier = issuer.verifier()
    verifier.verify(sign(key_file))
    forged = [crafted({"alg": "RS256", "kid": f"guess-{n}"}) for n in range(50)]
    for token in forged:
        with pytest.raises(NotAuthenticatedError, match="unknown"):
            verifier.verify(token)
    assert issuer.reads() == 1  # the keys were read moments ago: no read for unknown ids
    issuer.clock.advance(MIN_READ_INTERVAL_SECONDS)
    for token in forged:
        with pytest.raises(NotAuthenticatedError, match="unknown"):
            verifier.verify(token)
    assert issuer.reads() == 2  # one read for the first unknown id, none for the other 49
    assert verifier.verify(sign(key_file)).id == "customer-42"
    assert issuer.reads() == 2


def test_a_key_the_issuer_adds_is_found_by_reading_again(issuer: Issuer, key_file: Path) -> None:
    issuer.publish({"keys": [rotated_in()]})
    verifier = issuer.verifier()
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(sign(key_file))
    issuer.publish(dev_issuer.public_jwks(key_file))
    issuer.clock.advance(MIN_READ_INTERVAL_SECONDS)
    assert verifier.verify(sign(key_file)).id == "customer-42"


@pytest.mark.parametrize(
    ("cache_control", "max_age"),
    [
        ("public, max-age=60", 60),
        ("max-age=86400", KEYS_MAX_AGE_SECONDS),
        ("no-cache", MIN_READ_INTERVAL_SECONDS),
        ("max-age=0", MIN_READ_INTERVAL_SECONDS),
        ("max-age=" + "9" * 5_000, KEYS_MAX_AGE_SECONDS),
    ],
    ids=["shorter", "longer", "no-cache", "zero", "5000-digits"],
)
def test_the_issuers_cache_control_shortens_the_max_age_never_below_the_read_interval(
    served: JwksServer, key_file: Path, cache_control: str, max_age: int
) -> None:
    issuer = Issuer(served, "url", f"cache-control-{uuid.uuid4().hex}")
    issuer.publish(dev_issuer.public_jwks(key_file), cache_control)
    verifier = issuer.verifier()
    token = sign(key_file, exp=int(time.time()) + 3600)
    verifier.verify(token)
    issuer.publish({"keys": [rotated_in()]}, cache_control)
    issuer.clock.advance(max_age - 1)
    verifier.verify(token)
    issuer.clock.advance(1)
    with pytest.raises(NotAuthenticatedError):
        verifier.verify(token)


def test_an_unreachable_key_source_is_asked_again_only_after_the_interval(
    issuer: Issuer, key_file: Path
) -> None:
    verifier = issuer.verifier()  # nothing published: a 404, or ParameterNotFound
    for _ in range(3):
        with pytest.raises(ConfigurationError, match="issuer's keys"):
            verifier.verify(sign(key_file))
    assert issuer.reads() == 1
    issuer.publish(dev_issuer.public_jwks(key_file))
    issuer.clock.advance(MIN_READ_INTERVAL_SECONDS)
    assert verifier.verify(sign(key_file)).id == "customer-42"


# --- through the API: a credential is a 401 or 403, an issuer that cannot answer a 503 ---------


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (lambda f: crafted({"alg": "RS256", "kid": 123}), 401),
        (lambda f: crafted({"alg": "ES256", "kid": key_id(f)}), 401),
        (lambda f: crafted({"alg": "RS256", "kid": key_id(f), "crit": ["exp"]}), 401),
        (lambda f: sign(f, role="admin"), 403),
        (lambda f: sign(f), 200),
    ],
    ids=["numeric-kid", "es256-naming-an-rsa-key", "crit", "no-role", "valid"],
)
def test_the_api_answers_every_token_with_a_4xx_or_its_data(
    client: Client,
    deps: FakeDependencies,
    verifier: JwtVerifier,
    key_file: Path,
    token: Any,
    status: int,
) -> None:
    deps.tokens = verifier  # type: ignore[assignment]
    response = client.http.get("/orders", headers={"Authorization": f"Bearer {token(key_file)}"})
    assert response.status_code == status, response.body
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_issuer_answering_html_for_its_keys_is_503(
    client: Client, deps: FakeDependencies, served: JwksServer, key_file: Path
) -> None:
    url = served.serve("/html-instead-of-keys", b"<html>maintenance</html>")
    deps.tokens = JwtVerifier(JwksUrlKeys(url), ISSUER, AUDIENCE, "role")  # type: ignore[assignment]
    response = client.http.get("/orders", headers={"Authorization": f"Bearer {sign(key_file)}"})
    assert response.status_code == 503
    assert response.json_body["code"] == "unavailable"
