"""Bearer tokens (JWTs from an OIDC issuer) verified with PyJWT, turned into a Principal.

The keys come from the issuer's JWKS: from its URL (any OIDC issuer in AWS, e.g. a
Cognito user pool) or, for local stages, from an SSM parameter holding the
development issuer's public JWKS (``localdev/dev_issuer.py`` makes the key).
"""

from __future__ import annotations

import json
from typing import Any

import jwt
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from chalicelib.orders.access import Principal, Role
from chalicelib.orders.errors import ForbiddenError, NotAuthenticatedError
from chalicelib.ports import SigningKeys, TokenVerifier
from chalicelib.settings import ConfigurationError

ALGORITHMS = ["RS256", "ES256"]
# Clock skew tolerated between the issuer and this function.
LEEWAY_SECONDS = 30
# How long a warm function keeps the keys it read (issuers rotate keys slowly, and publish
# a new key well before signing with it).
KEYS_MAX_AGE_SECONDS = 300


class JwksUrlKeys(SigningKeys):
    """The issuer's published JWKS (``.../.well-known/jwks.json``), fetched and cached."""

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=KEYS_MAX_AGE_SECONDS)

    def key_for(self, token: str) -> Any:
        try:
            return self._client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as error:
            raise ConfigurationError(f"cannot fetch the issuer's keys: {error}") from error
        except jwt.PyJWKClientError as error:
            raise NotAuthenticatedError(f"the token's key is unknown: {error}") from None
        except jwt.DecodeError as error:
            raise NotAuthenticatedError(f"the token is malformed: {error}") from None


class SsmJwksKeys(SigningKeys):
    """A JWKS document kept in an SSM parameter (the local stages' development issuer)."""

    def __init__(self, parameter_name: str, client: Any) -> None:
        self._name = parameter_name
        self._provider = SSMProvider(boto3_client=client)

    def key_for(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError as error:
            raise NotAuthenticatedError(f"the token is malformed: {error}") from None
        try:
            document = self._provider.get(self._name, max_age=KEYS_MAX_AGE_SECONDS)
        except GetParameterError as error:
            raise ConfigurationError(f"cannot read {self._name}: {error}") from error
        keys = jwt.PyJWKSet.from_dict(json.loads(str(document)))
        for key in keys.keys:
            if key.key_id == kid:
                return key.key
        raise NotAuthenticatedError(f"the token's key {kid!r} is unknown")


class JwtVerifier(TokenVerifier):
    def __init__(self, keys: SigningKeys, issuer: str, audience: str, role_claim: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._role_claim = role_claim

    def verify(self, token: str) -> Principal:
        key = self._keys.key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise NotAuthenticatedError(f"the token is not valid: {error}") from None
        return Principal(self._role(claims), str(claims["sub"]))

    def _role(self, claims: dict[str, Any]) -> Role:
        # A plain claim ("customer") or a list of groups (Cognito's cognito:groups).
        value = claims.get(self._role_claim)
        values = value if isinstance(value, list) else [value]
        roles = {Role(v) for v in values if v in Role.__members__.values()}
        if len(roles) != 1:
            raise ForbiddenError(
                f"the token's {self._role_claim!r} claim must name one role: customer or restaurant"
            )
        (role,) = roles
        return role
