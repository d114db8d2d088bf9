"""The local stages' development token issuer: one RSA signing key on this machine.

``make run`` (through the deploy of a local stage) creates the key on first use and
publishes its public half as a JWKS in the stage's SSM parameter, where the API's
token check finds it; ``python -m tools.token`` signs tokens with it. AWS stages
never use it: their tokens come from a real issuer (see the README's Security section).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from deploy.stages import BUILD, Stage

KEY_FILE = BUILD / "dev-issuer" / "signing-key.pem"
DEFAULT_TTL_SECONDS = 12 * 3600


def signing_key(path: Path = KEY_FILE) -> rsa.RSAPrivateKey:
    """The development key, made on first use (readable by this user only)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pem)
        partial.chmod(0o600)
        try:
            os.link(partial, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SystemExit(f"{path} is not an RSA private key: remove it to make a new one")
    return key


def public_jwks(path: Path = KEY_FILE) -> dict[str, Any]:
    return {"keys": [_public_jwk(signing_key(path))]}


def token(stage: Stage, role: str, subject: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A token the stage's API accepts, for a customer or restaurant ``subject``."""
    if stage.auth.jwks_url is not None:
        raise SystemExit(
            f"stage {stage.name} trusts {stage.auth.issuer}: get tokens from that issuer"
        )
    now = int(time.time())
    claims = {
        "iss": stage.auth.issuer,
        "aud": stage.auth.audience,
        "sub": subject,
        stage.auth.role_claim: role,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    key = signing_key()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _public_jwk(key)["kid"]})


def _public_jwk(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return jwk | {"kid": _key_id(jwk), "use": "sig", "alg": "RS256"}


def _key_id(jwk: dict[str, Any]) -> str:
    # The RFC 7638 thumbprint: the same key always gets the same id.
    members = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
