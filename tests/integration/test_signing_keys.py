"""Integration test: the local stages' key source (an SSM parameter in the local cloud) expires
a removed key like the JWKS URL does (tests/unit/test_tokens.py serves one over HTTP).

The key cache's clock is moved by the test, so nothing waits for the max age to pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.jwt_tokens import KEYS_MAX_AGE_SECONDS, JwtVerifier, SsmJwksKeys
from chalicelib.orders.errors import NotAuthenticatedError
from chalicelib.settings import ConfigurationError
from localdev import dev_issuer
from tests.localcloud.cloud_helpers import unique_name

pytestmark = pytest.mark.localcloud
ISSUER, AUDIENCE = "https://issuer.example", "orders-api"


class MovableClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_removed_from_the_ssm_parameter_is_refused_after_the_max_age(
    local_cloud: Any, tmp_path: Path
) -> None:
    ssm = local_cloud.client("ssm")
    name = f"/{unique_name('it-auth-keys')}"
    key_file = tmp_path / "signing-key.pem"
    ssm.put_parameter(Name=name, Type="String", Value=json.dumps(dev_issuer.public_jwks(key_file)))
    clock = MovableClock()
    verifier = JwtVerifier(SsmJwksKeys(name, ssm, clock=clock), ISSUER, AUDIENCE, "role")
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "customer-42", "role": "customer"}
    kid = dev_issuer.public_jwks(key_file)["keys"][0]["kid"]
    token = jwt.encode(
        claims | {"exp": int(time.time()) + 3600},
        dev_issuer.signing_key(key_file),
        "RS256",
        {"kid": kid},
    )
    try:
        assert verifier.verify(token).id == "customer-42"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        rotated = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(other)) | {"kid": "rotated"}
        ssm.put_parameter(Name=name, Value=json.dumps({"keys": [rotated]}), Overwrite=True)
        clock.now += KEYS_MAX_AGE_SECONDS - 1
        assert verifier.verify(token).id == "customer-42"
        clock.now += 1
        with pytest.raises(NotAuthenticatedError, match="unknown"):
            verifier.verify(token)
    finally:
        ssm.delete_parameter(Name=name)
    clock.now += KEYS_MAX_AGE_SECONDS
    with pytest.raises(ConfigurationError, match=name):
        verifier.verify(token)  # the parameter is gone: 503, not a 401 or a stale key
