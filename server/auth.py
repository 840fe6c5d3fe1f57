"""Who may call the HTTP server: API tokens from a file of hashes, and OAuth 2.1 JWTs checked against the
issuer's JWKS. Both plug into the SDK's resource-server hooks (``TokenVerifier`` + ``AuthSettings``), which
answer 401 with ``WWW-Authenticate`` and serve the RFC 9728 metadata.

API tokens: ``CLOUDJOBS_HTTP_TOKENS_FILE`` holds, per token, a name (the identity), the SHA-256 of the token
and its scopes, never the token itself. Tokens are 256 random bits, so a fast hash is enough: nobody can
guess one from its hash. The file is re-read when it changes, so ``token revoke`` takes effect at once.

JWTs: signature by a key of the issuer's JWKS (found through the issuer's metadata unless
``CLOUDJOBS_OAUTH_JWKS_URL`` names it), ``iss`` exactly the issuer, ``aud`` the server's URL (or
``CLOUDJOBS_OAUTH_AUDIENCE``), ``exp`` and ``sub`` required, ``nbf`` honoured, 30 s leeway, asymmetric
algorithms only. Keys are cached; an unknown ``kid`` re-fetches the set at most once a minute, so a key
rotation is picked up and a stream of made-up kids cannot hammer the issuer.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import BaseModel, Field, ValidationError

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import ConfigurationError, InvalidRequest, ProviderError
from cloudjobs_mcp.server.http import RetryPolicy, create_client, send
from cloudjobs_mcp.server.identity import IDENTITY_RE, LOCAL, SCOPE_READ, SCOPES, check_scopes, expand_scopes

if TYPE_CHECKING:
    import jwt  # imported where tokens are checked: with cryptography it costs every start ~35 ms and some MB

log = logging.getLogger("cloudjobs.auth")

TOKEN_PREFIX = "cjm_"
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 30
JWKS_POLICY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0, max_total=10.0)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- API tokens ----------------------------------------------------------------------------------------
class TokenEntry(BaseModel):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[str]
    created_at: datetime


class TokenFile(BaseModel):
    tokens: list[TokenEntry] = Field(default_factory=list)


class TokenStore:
    """The tokens file: read (and re-read when it changes) by the server, edited by ``cloudjobs-mcp token``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenEntry] = {}

    def load(self) -> TokenFile:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return TokenFile()
        except OSError as exc:
            raise ConfigurationError(
                f"CLOUDJOBS_HTTP_TOKENS_FILE {self.path} cannot be read: {exc.strerror}."
            ) from None
        try:
            return TokenFile.model_validate_json(raw) if raw.strip() else TokenFile()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigurationError(
                f"CLOUDJOBS_HTTP_TOKENS_FILE {self.path} is not a valid tokens file ({where}: {first['msg']}); "
                "manage it with `cloudjobs-mcp token add|list|revoke`."
            ) from None

    def lookup(self, token: str) -> TokenEntry | None:
        """The entry of ``token``; the file is re-read first when it changed (so a revocation is seen at once)."""
        try:
            st = self.path.stat()
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = (0, 0, 0)
        if seen != self._seen:
            try:
                self._by_hash = {e.sha256: e for e in self.load().tokens}
            except ConfigurationError as exc:
                log.error("%s Every API token is refused until it is fixed.", exc)
                self._by_hash = {}
            self._seen = seen
        return self._by_hash.get(token_hash(token))

    @contextmanager
    def _editing(self) -> Iterator[TokenFile]:
        """The file under an exclusive lock, written back atomically (a reader never sees half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = self.load()
            yield doc
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(doc.model_dump_json(indent=2) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        finally:
            os.close(lock)

    def add(self, name: str, scopes: list[str]) -> str:
        """A new token for ``name`` (returned once, in clear); only its hash is stored."""
        if not IDENTITY_RE.match(name) or name == LOCAL:
            raise InvalidRequest(
                f"Invalid token name {name!r}: 1-128 letters, digits and _ . @ + - (starting with a letter or "
                f"digit), and not {LOCAL!r}, which is the identity of stdio and loopback callers."
            )
        try:
            scopes = check_scopes(scopes)
        except ValueError as exc:
            raise InvalidRequest(f"Invalid --scopes: {exc}.") from None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._editing() as doc:
            if any(e.name == name for e in doc.tokens):
                raise InvalidRequest(f"A token named {name!r} exists: revoke it first, or pick another name.")
            doc.tokens.append(
                TokenEntry(name=name, sha256=token_hash(token), scopes=scopes, created_at=datetime.now(UTC))
            )
        return token

    def revoke(self, name: str) -> bool:
        with self._editing() as doc:
            before = len(doc.tokens)
            doc.tokens = [e for e in doc.tokens if e.name != name]
            return len(doc.tokens) < before


class ApiTokenVerifier(TokenVerifier):
    def __init__(self, store: TokenStore, resource: str) -> None:
        self.store, self.resource = store, resource

    async def verify_token(self, token: str) -> AccessToken | None:
        entry = self.store.lookup(token)
        if entry is None:
            return None
        return AccessToken(
            token=token,
            client_id=entry.name,
            subject=entry.name,
            scopes=expand_scopes(entry.scopes),
            resource=self.resource,
            claims={"kind": "api-token"},
        )


# -- OAuth JWTs ----------------------------------------------------------------------------------------
class JwtVerifier(TokenVerifier):
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        settings: Settings,
        jwks_url: str | None = None,
        min_refresh_seconds: float = 60.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self.jwks_url = jwks_url
        self.min_refresh_seconds = min_refresh_seconds
        self._http = http or create_client(settings, max_connections=4)
        self._lock = anyio.Lock()
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = float("-inf")
        self.fetches = 0  # JWKS downloads so far (for operators' logs and tests)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get_json(self, url: str) -> Any:
        def parse_error(response: httpx.Response) -> ProviderError:
            return ProviderError(
                f"GET {url} answered HTTP {response.status_code}",
                status=response.status_code,
                retryable=response.status_code >= 500,
            )

        response = await send(
            self._http, lambda: self._http.build_request("GET", url), parse_error=parse_error, policy=JWKS_POLICY
        )
        return response.json()

    async def _discover(self) -> str:
        """The JWKS URL from the issuer's RFC 8414 metadata, else its OpenID configuration."""
        url = httpx.URL(self.issuer)
        origin, path = f"{url.scheme}://{url.netloc.decode()}", url.path.strip("/")
        for candidate in (
            f"{origin}/.well-known/oauth-authorization-server" + (f"/{path}" if path else ""),
            f"{self.issuer.rstrip('/')}/.well-known/openid-configuration",
        ):
            try:
                doc = await self._get_json(candidate)
            except (ProviderError, ValueError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("jwks_uri"), str):
                return str(doc["jwks_uri"])
        raise ProviderError(
            f"the issuer {self.issuer} publishes no jwks_uri (RFC 8414 or OpenID metadata): "
            "set CLOUDJOBS_OAUTH_JWKS_URL"
        )

    async def _fetch(self) -> None:
        import jwt

        self._fetched_at = time.monotonic()  # a failed fetch counts too: it must not be retried on every request
        self.fetches += 1
        if self.jwks_url is None:
            self.jwks_url = await self._discover()
        doc = await self._get_json(self.jwks_url)
        keys: dict[str | None, jwt.PyJWK] = {}
        for raw in doc.get("keys", []) if isinstance(doc, dict) else []:
            try:
                key = jwt.PyJWK(raw)
            except jwt.PyJWTError:
                continue  # a key type or curve this server does not use
            if raw.get("use", "sig") == "sig":
                keys[raw.get("kid")] = key
        self._keys = keys

    async def _key(self, kid: str | None) -> jwt.PyJWK | None:
        async with self._lock:
            if self._keys is None or (
                kid not in self._keys and time.monotonic() - self._fetched_at >= self.min_refresh_seconds
            ):
                try:
                    await self._fetch()
                except (ProviderError, ValueError) as exc:
                    log.warning("cannot fetch the issuer's keys: %s", exc)
            keys = self._keys or {}
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    async def verify_token(self, token: str) -> AccessToken | None:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("alg") not in JWT_ALGORITHMS:
            log.info("token refused: algorithm %r is not allowed", header.get("alg"))
            return None
        key = await self._key(header.get("kid"))
        if key is None:
            log.info("token refused: unknown key id %r", header.get("kid"))
            return None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            log.info("token refused: %s", type(exc).__name__)  # never the token itself
            return None
        subject = str(claims["sub"])
        if not IDENTITY_RE.match(subject) or subject == LOCAL:
            log.info("token refused: sub %r cannot be an identity here", subject[:64])
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or subject),
            subject=subject,
            scopes=expand_scopes([s for s in _scopes(claims) if s in SCOPES]),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            claims={k: claims[k] for k in ("iss", "jti", "azp") if k in claims},
        )


def _scopes(claims: dict[str, Any]) -> list[str]:
    """``scope`` (RFC 9068, space separated) or ``scp`` (Entra: a string or a list)."""
    raw = claims.get("scope", claims.get("scp", ""))
    return raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []


class TeamVerifier(TokenVerifier):
    """API tokens first (a hash lookup), then JWTs when an issuer is configured."""

    def __init__(self, tokens: ApiTokenVerifier | None, jwts: JwtVerifier | None) -> None:
        self.tokens, self.jwts = tokens, jwts

    async def verify_token(self, token: str) -> AccessToken | None:
        if self.tokens is not None and (found := await self.tokens.verify_token(token)) is not None:
            return found
        if self.jwts is not None and token.count(".") == 2:
            return await self.jwts.verify_token(token)
        return None


def auth_configured(settings: Settings) -> bool:
    return settings.http_tokens_file is not None or settings.oauth_issuer is not None


def build_auth(settings: Settings, resource_url: str) -> tuple[TeamVerifier, AuthSettings] | None:
    """The verifier and the SDK's auth settings for an HTTP server at ``resource_url``; None without auth."""
    if not auth_configured(settings):
        return None
    tokens = (
        ApiTokenVerifier(TokenStore(settings.http_tokens_file), resource_url) if settings.http_tokens_file else None
    )
    jwts = None
    if settings.oauth_issuer:
        jwts = JwtVerifier(
            issuer=settings.oauth_issuer,
            audience=settings.oauth_audience or resource_url,
            settings=settings,
            jwks_url=settings.oauth_jwks_url,
            min_refresh_seconds=settings.oauth_jwks_min_refresh_seconds,
        )
    # The PRM must name an authorization server; with API tokens only, the server's own origin stands in.
    issuer = settings.oauth_issuer or resource_url.rsplit("/", 1)[0]
    auth = AuthSettings(
        issuer_url=issuer,  # type: ignore[arg-type]  # a str keeps the issuer exactly as configured
        resource_server_url=resource_url,  # type: ignore[arg-type]
        required_scopes=[SCOPE_READ],
        validate_token_resource=False,  # the verifiers check the audience themselves
    )
    return TeamVerifier(tokens, jwts), auth
