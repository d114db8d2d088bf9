"""Bearer tokens (JWTs from an OIDC issuer) verified with PyJWT, turned into a Principal.

The keys come from the issuer's JWKS: from its URL (any OIDC issuer in AWS, e.g. a
Cognito user pool) or, for local stages, from an SSM parameter holding the
development issuer's public JWKS (``localdev/dev_issuer.py`` makes the key).

Whatever a token holds is either a principal, ``NotAuthenticatedError`` (401) or
``ForbiddenError`` (403); a key source that cannot answer with a JWKS is
``ConfigurationError`` (503). Keys are trusted for a bounded time: a key the issuer
removed is refused once the document that listed it is older than its max age.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import jwt
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.orders.access import Principal, Role
from chalicelib.orders.errors import ForbiddenError, NotAuthenticatedError
from chalicelib.ports import SigningKeys, TokenVerifier
from chalicelib.settings import ConfigurationError

ALGORITHMS = ["RS256", "ES256"]
# Clock skew tolerated between the issuer and this function.
LEEWAY_SECONDS = 30
# The longest a warm function trusts the keys it read: a key the issuer removed (rotated out,
# or revoked) is refused at most this long after. Issuers publish a new key well before
# signing with it, so reading again this often costs one fetch per function per 5 minutes.
KEYS_MAX_AGE_SECONDS = 300
# The least time between two reads of the keys. A token naming a key id we do not know (a
# key the issuer just added, or anyone's invention) reads the keys again at most this often,
# so such tokens cannot turn every request into a fetch from the issuer; the same floor
# holds when the issuer asks for less caching (max-age=0, no-cache) or cannot be reached.
MIN_READ_INTERVAL_SECONDS = 30
# A JWKS holds a few keys of under a kilobyte each; anything much larger is not one.
MAX_JWKS_BYTES = 256 * 1024
FETCH_TIMEOUT_SECONDS = 5
MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
NO_CACHING = re.compile(r"(?:^|[,\s])(?:no-cache|no-store)(?:$|[,\s=])", re.IGNORECASE)

Clock = Callable[[], float]


class RefreshingJwks(SigningKeys):
    """Keys by id from a JWKS document, read again once it is older than its max age.

    Subclasses say where the document comes from (``_read``) and whether its source
    asks for a shorter max age than ``KEYS_MAX_AGE_SECONDS``.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._read_at: float | None = None  # when the keys in hand were read
        self._max_age = float(KEYS_MAX_AGE_SECONDS)
        self._tried_at: float | None = None  # the last read, whether it worked or not
        self._failure: ConfigurationError | None = None  # why the last read failed

    def key_for(self, token: str) -> jwt.PyJWK:
        kid = _key_id(token)
        now = self._clock()
        fresh = self._read_at is not None and now - self._read_at < self._max_age
        if not fresh or (kid not in self._keys and self._may_read(now)):
            self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            raise NotAuthenticatedError(f"the token's key {kid!r} is unknown")
        return key

    @abstractmethod
    def _read(self) -> tuple[str | bytes, float | None]:
        """The JWKS document, and the max age its source asks for (None: not said)."""

    @property
    @abstractmethod
    def _source(self) -> str:
        """Where the keys come from, for messages."""

    def _may_read(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= MIN_READ_INTERVAL_SECONDS

    def _refresh(self, now: float) -> None:
        if not self._may_read(now) and self._failure is not None:
            # The source failed moments ago: answer that at once rather than ask again.
            raise self._failure
        self._tried_at = now
        try:
            document, asked_max_age = self._read()
            keys = _usable_keys(document, self._source)
        except ConfigurationError as error:
            self._failure = error
            raise
        self._failure = None
        self._keys, self._read_at = keys, now
        self._max_age = float(KEYS_MAX_AGE_SECONDS)
        if asked_max_age is not None:
            # The issuer's word is how long its document may be reused; ours is how long a
            # removed key may stay trusted. Keep the shorter, but never read more often than
            # MIN_READ_INTERVAL_SECONDS (max-age=0 would make every request a fetch).
            self._max_age = min(self._max_age, max(asked_max_age, MIN_READ_INTERVAL_SECONDS))


class JwksUrlKeys(RefreshingJwks):
    """The issuer's published JWKS (``.../.well-known/jwks.json``), honouring its Cache-Control."""

    def __init__(self, url: str, clock: Clock = time.monotonic) -> None:
        super().__init__(clock)
        self._url = url

    @property
    def _source(self) -> str:
        return f"the issuer's keys at {self._url}"

    def _read(self) -> tuple[str | bytes, float | None]:
        request = urllib.request.Request(self._url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
                document = response.read(MAX_JWKS_BYTES + 1)
                cache_control = response.headers.get("Cache-Control", "")
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise ConfigurationError(f"cannot fetch {self._source}: {error}") from error
        if len(document) > MAX_JWKS_BYTES:
            raise ConfigurationError(f"{self._source} are over {MAX_JWKS_BYTES} bytes")
        return document, _asked_max_age(cache_control)


class SsmJwksKeys(RefreshingJwks):
    """A JWKS document kept in an SSM parameter (the local stages' development issuer)."""

    def __init__(self, parameter_name: str, client: Any, clock: Clock = time.monotonic) -> None:
        super().__init__(clock)
        self._name = parameter_name
        self._client = client

    @property
    def _source(self) -> str:
        return f"the issuer's keys in {self._name}"

    def _read(self) -> tuple[str | bytes, float | None]:
        try:
            value = self._client.get_parameter(Name=self._name)["Parameter"]["Value"]
        except (ClientError, BotoCoreError) as error:
            raise ConfigurationError(f"cannot read {self._source}: {error}") from error
        return str(value), None


class JwtVerifier(TokenVerifier):
    def __init__(self, keys: SigningKeys, issuer: str, audience: str, role_claim: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._role_claim = role_claim

    def verify(self, token: str) -> Principal:
        # A PyJWK binds its algorithm: a token naming another (ES256 for an RSA key) is refused.
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
        # PyJWT reports most bad tokens as its own errors, but a few claim or key values as
        # TypeError, ValueError or OverflowError: whichever, the token is no credential.
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as error:
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


def _key_id(token: str) -> str:
    """The key id the token's header names, read before anything is verified."""
    try:
        header = jwt.get_unverified_header(token)
    # PyJWT's errors: not a JWT, a kid that is not text, a crit extension it does not know;
    # ValueError: text that is not UTF-8 or base64.
    except (jwt.PyJWTError, ValueError) as error:
        raise NotAuthenticatedError(f"the token is malformed: {error}") from None
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise NotAuthenticatedError("the token's header names no key id (kid)")
    return kid


def _usable_keys(document: str | bytes, source: str) -> dict[str, jwt.PyJWK]:
    """The keys of a JWKS this verifier can use (an allowed algorithm, a key id), by id."""
    try:
        parsed = json.loads(document)
    except ValueError as error:  # not JSON, or not UTF-8
        raise ConfigurationError(f"{source} are not JSON: {error}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("keys"), list):
        raise ConfigurationError(f"{source} are not a JWKS (an object with a list of keys)")
    keys = {}
    for entry in parsed["keys"]:
        try:
            key = jwt.PyJWK(entry)
        # An issuer may list keys of kinds we do not use; those are skipped, not fatal.
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError):
            continue
        if isinstance(key.key_id, str) and key.algorithm_name in ALGORITHMS:
            keys[key.key_id] = key
    if not keys:
        raise ConfigurationError(f"{source} hold no usable key ({' or '.join(ALGORITHMS)})")
    return keys


def _asked_max_age(cache_control: str) -> float | None:
    """How long the issuer lets its answer be reused, from its Cache-Control header."""
    if NO_CACHING.search(cache_control):
        return 0.0
    found = MAX_AGE.search(cache_control)
    if found is None:
        return None
    digits = found.group(1)
    # A max age of ten digits is over 300 years: as good as unlimited (and int() stays fast).
    return float(digits) if len(digits) < 10 else None
