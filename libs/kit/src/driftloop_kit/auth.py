"""Who is calling, and may they: bearer tokens and roles on every route of every service.

Every route declares the least role it needs next to its path::

    @router.post("/registered-models/alias", dependencies=[DEPLOYER])
    async def set_alias(...): ...

and :func:`~driftloop_kit.app.create_service_app` refuses to build an app with a
route that declares none (the public three, ``/healthz``, ``/readyz`` and
``/metrics``, excepted). The roles are ordered: ``reader`` < ``writer`` <
``deployer`` < ``admin``; a token's role grants every role below it. A job token
(``job`` claim) is a ``writer`` that may also report the result of its own job and
of no other (:data:`JOB`).

Credentials, checked by :class:`Authenticator`:

- ``Authorization: Bearer <token>``: a JWT that driftloop signed itself with
  ``DRIFTLOOP_SECRET_KEY`` (HS256; what ``driftloop token create`` prints, what the
  services and jobs use between themselves), or, with ``auth_mode=oidc``, one issued
  by an OpenID Connect provider, checked against its JWKS.
- ``Authorization: Basic`` with a token as the password: what the MLflow client sends
  for ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``.

Tokens are parsed and their signatures checked by PyJWT, never by hand. A checked
header is cached until its token expires (at most ``auth_cache_seconds``), so a
hot route pays one dictionary look-up per call, not a signature check.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import anyio
import httpx
import jwt
from fastapi import Depends as Depends_
from fastapi import Request, Security
from fastapi.params import Depends
from fastapi.security import HTTPBasic, HTTPBearer
from starlette.routing import BaseRoute

from driftloop_kit.errors import DriftloopError

if TYPE_CHECKING:
    from driftloop_kit.settings import ServiceSettings

__all__ = [
    "ADMIN",
    "CREDENTIALS_API",
    "DEPLOYER",
    "JOB",
    "PUBLIC_PATHS",
    "READER",
    "WRITER",
    "Authenticator",
    "CallerDep",
    "CredentialSource",
    "CredentialsClient",
    "PermissionDenied",
    "Principal",
    "RevocationFeed",
    "Role",
    "ServiceAuth",
    "TokenSigner",
    "Unauthenticated",
    "authorize",
    "check_routes",
    "hash_password",
    "principal_of",
    "requires",
    "route_role",
    "verify_password",
]

logger = logging.getLogger(__name__)

#: Paths answered without a credential: probes and the scrape target.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: FastAPI's own pages, also open: the schema and its viewers show what routes exist
#: and what role each needs (as MLflow's and Feast's servers do), no data.
_DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

#: ``iss`` and ``aud`` of the tokens driftloop signs.
ISSUER = "driftloop"
AUDIENCE = "driftloop"


class Role(enum.IntEnum):
    """What a caller may do; each role includes the ones below it."""

    READER = 1  #: read everything
    WRITER = 2  #: log runs and artifacts, register versions, push features, send labels
    DEPLOYER = 3  #: move or delete aliases, train, roll back, change policies
    ADMIN = 4  #: delete models and experiments, tokens

    @property
    def label(self) -> str:
        """The role's name as tokens and the OpenAPI schema spell it (``deployer``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``reader``/``writer``/``deployer``/``admin`` (any case) as a role.

        Raises:
            ValueError: For any other name.
        """
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {text!r}; expected one of {names}") from None


class Unauthenticated(DriftloopError):
    """No credential, or one that is not valid (401)."""

    status_code = 401
    error_code = "UNAUTHENTICATED"


class PermissionDenied(DriftloopError):
    """A valid credential whose role is below the route's (403)."""

    status_code = 403
    error_code = "PERMISSION_DENIED"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        subject: Who (``sub``): a person, ``service:<name>`` or ``job:<id>``.
        role: What they may do.
        expires_at: Unix time the credential stops being valid.
        job: The job id of a job token, else None.
        token_id: The token's ``jti``.
    """

    subject: str
    role: Role
    expires_at: float
    job: str | None = None
    token_id: str | None = None


#: The caller when authentication is off (development only).
ANONYMOUS = Principal(subject="anonymous", role=Role.ADMIN, expires_at=float("inf"))


def _signing_key(secret: str) -> bytes:
    # A fixed-length HMAC key from a secret of any length (HS256 wants >= 32 bytes).
    return hashlib.sha256(f"driftloop-token-v1:{secret}".encode()).digest()


class TokenSigner:
    """Signs driftloop's own tokens with the secret key (HS256, PyJWT).

    Args:
        secret: ``DRIFTLOOP_SECRET_KEY``.
    """

    def __init__(self, secret: str) -> None:
        self._key = _signing_key(secret)

    def issue(
        self,
        *,
        subject: str,
        role: Role,
        ttl_seconds: float,
        job: str | None = None,
    ) -> str:
        """A token for ``subject`` with ``role``, valid for ``ttl_seconds``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "role": role.label,
            "iat": now,
            "exp": now + int(ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        if job is not None:
            claims["job"] = job
        return jwt.encode(claims, self._key, algorithm="HS256")

    def decode(self, token: str) -> dict[str, Any]:
        """The claims of a token this key signed.

        Raises:
            jwt.PyJWTError: Bad signature, expired, wrong issuer or audience.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "role", "iat"]},
        )
        return claims


@dataclass(frozen=True, slots=True)
class OidcIssuer:
    """An external OpenID Connect issuer whose tokens are accepted.

    Attributes:
        issuer: The ``iss`` its tokens carry.
        audience: The ``aud`` they must carry (the client id driftloop is registered as).
        jwks_url: Where its signing keys are (default: from its discovery document).
        role_claim: The claim holding the driftloop role (a string or a list).
        algorithms: Signature algorithms accepted.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    role_claim: str = "driftloop_role"
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")


# --- passwords ---------------------------------------------------------------------------

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` (``scrypt$n$r$p$salt$digest``), for storing."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encode = base64.urlsafe_b64encode
    return (
        f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
        f"{encode(salt).decode()}${encode(digest).decode()}"
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` (a :func:`hash_password`) was made of."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        found = hashlib.scrypt(
            password.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(found, expected)


#: Checks a stored user's name and password: their principal, or None.
PasswordCheck = Callable[[str, str], Awaitable["Principal | None"]]


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`, or refuses it.

    Args:
        signer: Checks driftloop's own tokens; None only when authentication is off.
        oidc: An external issuer also accepted, or None.
        enabled: False answers every call as :data:`ANONYMOUS` (development only).
        cache_seconds: How long a checked header is remembered (never past its expiry).
        cache_size: Most headers remembered.
    """

    def __init__(
        self,
        signer: TokenSigner | None,
        *,
        oidc: OidcIssuer | None = None,
        enabled: bool = True,
        cache_seconds: float = 300.0,
        cache_size: int = 10_000,
    ) -> None:
        self.signer = signer
        self.oidc = oidc
        self.enabled = enabled
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._jwks: jwt.PyJWKClient | None = None
        #: Ids (``jti``) of revoked tokens, kept current by a :class:`RevocationFeed`.
        self.revoked: frozenset[str] = frozenset()
        #: Checks a stored user's password (Basic with a password that is no token).
        self.password_check: PasswordCheck | None = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Authenticator:
        """The authenticator ``settings`` describe (``auth_mode``, ``secret_key``, ``oidc_*``)."""
        oidc = None
        if settings.auth_mode == "oidc":
            assert settings.oidc_issuer is not None
            assert settings.oidc_audience is not None
            oidc = OidcIssuer(
                issuer=settings.oidc_issuer,
                audience=settings.oidc_audience,
                jwks_url=settings.oidc_jwks_url,
                role_claim=settings.oidc_role_claim,
            )
        return cls(
            TokenSigner(settings.secret_key.get_secret_value()),
            oidc=oidc,
            enabled=settings.auth_mode != "off",
            cache_seconds=settings.auth_cache_seconds,
        )

    def cached(self, header: str) -> Principal | None:
        """The principal of a header checked before and still valid, else None."""
        hit = self._cache.get(header)
        if hit is None:
            return None
        principal, until = hit
        if time.time() < until:
            return principal
        del self._cache[header]
        return None

    async def authenticate(self, header: str | None) -> Principal:
        """The caller of a request whose ``Authorization`` header is ``header``.

        Raises:
            Unauthenticated: No header, an unknown scheme, or a token that does not check.
        """
        if not self.enabled:
            return ANONYMOUS
        if not header:
            raise Unauthenticated(
                "this call needs a credential: send 'Authorization: Bearer <token>' "
                "(driftloop token create --role ROLE prints one)"
            )
        principal = self.cached(header)
        if principal is None:
            principal = await self._check(header)
            until = min(principal.expires_at, time.time() + self.cache_seconds)
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[header] = (principal, until)
        if principal.token_id is not None and principal.token_id in self.revoked:
            raise Unauthenticated("the token was revoked")
        return principal

    async def _check(self, header: str) -> Principal:
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer" and value:
            return await self.verify_token(value)
        if scheme == "basic" and value:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated(
                    "the Basic credential is not base64 'user:password'"
                ) from None
            if password.count(".") == 2:
                return await self.verify_token(password)
            if self.password_check is not None:
                found = await self.password_check(user, password)
                if found is not None:
                    return found
                raise Unauthenticated(f"wrong user name or password for {user!r}")
            raise Unauthenticated(
                f"the password of user {user!r} is not a driftloop token; "
                "set MLFLOW_TRACKING_PASSWORD to a token (driftloop token create)"
            )
        raise Unauthenticated("the Authorization header is not 'Bearer <token>' or 'Basic ...'")

    async def verify_token(self, token: str) -> Principal:
        """Check a token's signature and claims.

        Raises:
            Unauthenticated: It does not check, has expired, or names no known role.
        """
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is not a JWT: {error}") from None
        try:
            if unverified.get("iss") == ISSUER and self.signer is not None:
                claims = self.signer.decode(token)
                role_value: Any = claims.get("role")
            elif self.oidc is not None and unverified.get("iss") == self.oidc.issuer:
                claims = await self._decode_oidc(token)
                role_value = claims.get(self.oidc.role_claim)
            else:
                raise Unauthenticated(
                    f"tokens of issuer {unverified.get('iss')!r} are not accepted"
                )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except (jwt.PyJWTError, jwt.PyJWKClientError) as error:
            raise Unauthenticated(f"the token does not check: {error}") from None
        role = _highest_role(role_value)
        if role is None:
            raise Unauthenticated(f"the token names no driftloop role (got {role_value!r})")
        return Principal(
            subject=str(claims["sub"]),
            role=role,
            expires_at=float(claims["exp"]),
            job=claims.get("job"),
            token_id=claims.get("jti"),
        )

    async def _decode_oidc(self, token: str) -> dict[str, Any]:
        assert self.oidc is not None
        oidc = self.oidc
        if self._jwks is None:
            url = oidc.jwks_url or await _discover_jwks(oidc.issuer)
            self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)
        jwks = self._jwks
        # PyJWKClient fetches with urllib: keep it off the event loop.
        key = await anyio.to_thread.run_sync(jwks.get_signing_key_from_jwt, token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=list(oidc.algorithms),
            audience=oidc.audience,
            issuer=oidc.issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
        return claims


async def _discover_jwks(issuer: str) -> str:
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
            response.raise_for_status()
            found = response.json()["jwks_uri"]
    except (httpx.HTTPError, KeyError, ValueError) as error:
        raise Unauthenticated(
            f"the OIDC issuer's discovery document {url} failed: {error}"
        ) from None
    return str(found)


def _highest_role(value: Any) -> Role | None:
    names = value if isinstance(value, list) else [value]
    roles = []
    for name in names:
        if isinstance(name, str):
            try:
                roles.append(Role.parse(name))
            except ValueError:
                continue
    return max(roles) if roles else None


# --- on the routes --------------------------------------------------------------------------


class _BearerScheme(HTTPBearer):
    """Declares the scheme in the OpenAPI schema; the Authenticator reads the header."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _BasicScheme(HTTPBasic):
    """Declares the scheme in the OpenAPI schema; the Authenticator reads the header
    (FastAPI's own would answer a malformed one before it, in the wrong format)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


_bearer = _BearerScheme(
    scheme_name="HTTPBearer", auto_error=False, description="A driftloop or OIDC token."
)
_basic = _BasicScheme(
    scheme_name="HTTPBasic",
    auto_error=False,
    description="Any user name, a token as the password (MLFLOW_TRACKING_PASSWORD).",
)
_BEARER = Security(_bearer)
_BASIC = Security(_basic)


async def principal_of(request: Request) -> Principal:
    """The authenticated caller of ``request`` (checked once per request).

    Raises:
        Unauthenticated: No valid credential.
    """
    principal = request.scope.get("driftloop.principal")
    if principal is None:
        authenticator: Authenticator = request.app.state.authenticator
        principal = await authenticator.authenticate(request.headers.get("authorization"))
        request.scope["driftloop.principal"] = principal
    assert isinstance(principal, Principal)
    return principal


def authorize(principal: Principal, role: Role, *, job: str | None = None) -> None:
    """Refuse ``principal`` unless it holds ``role`` (for ``job``: is that job's token).

    Raises:
        PermissionDenied: It does not.
    """
    if job is not None:
        if principal.job != job:
            raise PermissionDenied(f"only the token of job {job!r} may do this")
        return
    if principal.role < role:
        raise PermissionDenied(
            f"{principal.subject!r} has role {principal.role.label}; this needs {role.label}"
        )


def requires(role: Role, *, job_param: str | None = None) -> Depends:
    """A route dependency: the caller holds ``role`` (or, with ``job_param``, is that job).

    Declare it next to the path (``dependencies=[DEPLOYER]``); the OpenAPI schema
    shows it as the security requirement's scope.
    """

    async def check(
        request: Request,
        _bearer_credential: Any = _BEARER,
        _basic_credential: Any = _BASIC,
    ) -> Principal:
        principal = await principal_of(request)
        job = request.path_params.get(job_param) if job_param else None
        authorize(principal, role, job=None if job is None else str(job))
        return principal

    check.driftloop_role = role  # type: ignore[attr-defined]
    check.driftloop_job = job_param is not None  # type: ignore[attr-defined]
    scope = "job" if job_param else role.label
    declared: Depends = Security(check, scopes=[scope])
    return declared


#: The authenticated caller, as an endpoint parameter (``principal: CallerDep``).
CallerDep = Annotated[Principal, Depends_(principal_of)]

READER = requires(Role.READER)
WRITER = requires(Role.WRITER)
DEPLOYER = requires(Role.DEPLOYER)
ADMIN = requires(Role.ADMIN)
#: For ``/jobs/{job_id}/...``: only the token of that job.
JOB = requires(Role.WRITER, job_param="job_id")


def route_role(route: BaseRoute, inherited: Sequence[Any] = ()) -> Role | None:
    """The role a route declares: ``dependencies=[...]``, its routers', or a fast route's."""
    role = getattr(route, "role", None)
    if isinstance(role, Role):
        return role
    for dependency in [*inherited, *(getattr(route, "dependencies", ()) or ())]:
        found = getattr(dependency.dependency, "driftloop_role", None)
        if isinstance(found, Role):
            return found
    return None


def _walk(
    routes: Sequence[BaseRoute], prefix: str = "", inherited: tuple[Any, ...] = ()
) -> Iterator[tuple[BaseRoute, str, tuple[Any, ...]]]:
    """Every route, with its full path and the dependencies of the routers it is in.

    FastAPI keeps an included router as one entry of the app's routes (its
    ``original_router`` and ``include_context``); its routes are walked in turn.
    """
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            deps = (
                *inherited,
                *(getattr(context, "dependencies", ()) or ()),
                *(inner.dependencies or ()),
            )
            yield from _walk(inner.routes, prefix + getattr(context, "prefix", ""), deps)
        else:
            yield route, prefix + getattr(route, "path", ""), inherited


def check_routes(routes: Sequence[BaseRoute]) -> None:
    """Refuse an app with a route that declares no role.

    Raises:
        RuntimeError: Naming the routes.
    """
    bare = []
    for route, path, inherited in _walk(routes):
        if path in PUBLIC_PATHS or path in _DOC_PATHS:
            continue
        if route_role(route, inherited) is None:
            methods = ",".join(sorted(getattr(route, "methods", None) or ["*"]))
            bare.append(f"{methods} {path}")
    if bare:
        raise RuntimeError(
            "routes without a declared role (add dependencies=[READER|WRITER|DEPLOYER|ADMIN]): "
            + "; ".join(bare)
        )


# --- as a client ------------------------------------------------------------------------------


class ServiceAuth(httpx.Auth):
    """An ``httpx`` auth that sends a token of this service, re-issued before it expires.

    Each service calls the others with the least role it needs (serving reads the
    registry: ``reader``; the trainer moves aliases: ``deployer``).

    Args:
        signer: Signs with the shared secret key.
        subject: ``service:<name>``.
        role: The role of the calls.
        ttl_seconds: Lifetime of each token.
    """

    def __init__(
        self, signer: TokenSigner, *, subject: str, role: Role, ttl_seconds: float = 3600.0
    ) -> None:
        self.signer = signer
        self.subject = subject
        self.role = role
        self.ttl_seconds = ttl_seconds
        self._token = ""
        self._renew_at = 0.0

    @classmethod
    def for_service(cls, settings: ServiceSettings, role: Role) -> ServiceAuth:
        """The credential of the service ``settings`` belong to, with ``role``."""
        return cls(
            TokenSigner(settings.secret_key.get_secret_value()),
            subject=f"service:{settings.service_name}",
            role=role,
        )

    @property
    def token(self) -> str:
        """A token valid for at least half its lifetime."""
        now = time.time()
        if now >= self._renew_at:
            self._token = self.signer.issue(
                subject=self.subject, role=self.role, ttl_seconds=self.ttl_seconds
            )
            self._renew_at = now + self.ttl_seconds / 2
        return self._token

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return {"Authorization": f"Bearer {self.token}"}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


# --- revocations and stored users, from the tracking service ---------------------------------

#: Where the tracking service keeps the suite's tokens and users.
CREDENTIALS_API = "/api/2.0/driftloop"


class CredentialSource(Protocol):
    """Where the suite's revoked tokens and stored users are: the tracking service's
    tables in tracking, :class:`CredentialsClient` (its routes) everywhere else."""

    async def revoked_ids(self) -> Collection[str]:
        """Ids of the revoked tokens that have not expired."""

    async def check_password(self, name: str, password: str) -> Principal | None:
        """The principal of a stored user whose password this is; None otherwise."""


class RevocationFeed:
    """Keeps an authenticator's revoked token ids current (a resource of every app).

    Every ``every`` seconds it asks ``source`` for the ids of the revoked tokens that
    have not expired yet. A failed read keeps the last list (and says so in the log):
    tokens are still checked by their signature and expiry meanwhile.

    Args:
        authenticator: Whose ``revoked`` set to keep current.
        source: Where the revoked ids are.
        every: Seconds between reads.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        source: CredentialSource,
        *,
        every: float = 10.0,
    ) -> None:
        self.authenticator = authenticator
        self.source = source
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    async def refresh(self) -> None:
        """Read the list once."""
        self.authenticator.revoked = frozenset(await self.source.revoked_ids())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="revocation-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        close = getattr(self.source, "aclose", None)
        if close is not None:
            await close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
                self.failures = 0
            except Exception as error:
                self.failures += 1
                log = logger.warning if self.failures % 30 == 1 else logger.debug
                log("the revoked tokens could not be read (%d times): %r", self.failures, error)
            await asyncio.sleep(self.every)


class CredentialsClient:
    """The tracking service's credential routes, as another service reads them (a
    :class:`CredentialSource`); one connection pool, closed with the feed.

    Args:
        base_url: The tracking service (``auth_url``).
        auth: This service's credential.
        timeout: Seconds per request.
    """

    def __init__(self, base_url: str, auth: httpx.Auth, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}{CREDENTIALS_API}", auth=auth, timeout=timeout
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def revoked_ids(self) -> list[str]:
        """Ids of the revoked tokens that have not expired."""
        response = await self._client.get("/tokens/revoked")
        response.raise_for_status()
        return [str(token_id) for token_id in response.json()["revoked"]]

    async def check_password(self, name: str, password: str) -> Principal | None:
        """The principal of a stored user whose password this is; None otherwise."""
        response = await self._client.post(
            "/users/verify", json={"name": name, "password": password}
        )
        if response.status_code in (401, 404):
            return None
        if response.status_code >= 400:
            raise Unauthenticated(f"the user store answered {response.status_code}")
        body = response.json()
        return Principal(
            subject=str(body["name"]),
            role=Role.parse(str(body["role"])),
            expires_at=time.time() + 300,
        )
