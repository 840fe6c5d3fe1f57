"""Settings, read once from ``CLOUDJOBS_*`` environment variables.

Every setting is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.providers import LABELS
from cloudjobs_mcp.server.toolsets import default_toolsets, parse_toolsets

PREFIX = "CLOUDJOBS_"
PROVIDERS = tuple(LABELS)  # one registry of provider names: server/providers/__init__.py


class Settings(BaseModel):
    # CLOUDJOBS_PROVIDERS (a comma list) wins; CLOUDJOBS_PROVIDER (one name) is its older alias. Either
    # way ``provider`` ends up as the default provider (the first enabled one).
    provider: str = Field(default="local", description="The default provider (the first of providers)")
    providers: tuple[str, ...] = Field(default=(), description="Every enabled provider, the default first")
    price_table: Path | None = Field(default=None, description="JSON or TOML price table (server/pricing.py)")
    state_dir: Path = Field(default_factory=lambda: Path.home() / ".cloudjobs")
    max_hourly: float | None = Field(default=None, ge=0, description="Refuse quotes above this total/hour")
    max_job_cost: float | None = Field(default=None, ge=0, description="Refuse quotes whose worst case is above")
    quote_ttl_seconds: float = Field(default=900, gt=0)
    strict_confirm: bool = False
    read_only: bool = False
    # team server (HTTP auth, budgets per identity)
    http_tokens_file: Path | None = Field(default=None, description="API token hashes → identity and scopes")
    oauth_issuer: str | None = Field(default=None, description="Accept JWTs from this issuer (its JWKS)")
    oauth_audience: str | None = Field(default=None, description="Required JWT aud; default: the server's URL")
    oauth_jwks_url: str | None = Field(default=None, description="The issuer's JWKS; default: from its metadata")
    oauth_jwks_min_refresh_seconds: float = Field(default=60.0, ge=0, le=86_400)
    http_public_url: str | None = Field(default=None, description="The server's URL as clients reach it (a proxy)")
    http_allowed_hosts: tuple[str, ...] = Field(default=(), description="More Host values to answer (name[:port|*])")
    http_allowed_origins: tuple[str, ...] = Field(default=(), description="More web origins to answer")
    budgets_file: Path | None = Field(default=None, description="Budgets per identity (JSON)")
    view_refresh_seconds: float = Field(default=5.0, ge=0.2, le=3600, description="Job view refresh while it runs")
    toolsets: tuple[str, ...] = Field(default=(), description="Listed toolsets; default core, observe (+providers)")
    # local provider
    local_price_per_hour: float = Field(default=0.0, ge=0)
    local_currency: str = "CNY"
    local_stop_grace_seconds: float = Field(default=10.0, ge=0)
    local_metrics_interval_seconds: float = Field(default=2.0, ge=0.05, le=3600)
    # pai provider
    region: str = "cn-hangzhou"
    pai_network: str = Field(default="public", description="public | vpc")
    pai_workspace_id: str | None = None
    pai_endpoint_dlc: str | None = None
    pai_endpoint_aiworkspace: str | None = None
    pai_endpoint_ecs: str | None = None
    pai_endpoint_paistudio: str | None = None
    pai_endpoint_sts: str | None = None
    # workload provider (a Primus-SaFE Kubernetes AI workload platform)
    workload_url: str | None = Field(default=None, description="Base URL of the platform's console/apiserver")
    workload_api_prefix: str = Field(default="/api/v1", description="/api/v1 (the code); /api/custom (the seed)")
    workload_workspace: str | None = Field(default=None, description="Workspace id; default: every one you see")
    workload_api_key: SecretStr | None = None
    workload_user: str | None = None
    workload_password: SecretStr | None = None
    workload_ttl_seconds: int = Field(default=86400, ge=1, description="Logs stay readable this long after the end")
    # modelarts provider (credentials and endpoint overrides are the Huawei SDK's own HUAWEICLOUD_SDK_* variables)
    modelarts_region: str = "cn-north-4"
    modelarts_workspace_id: str = "0"
    modelarts_bss_endpoint: str | None = None
    # ray provider
    ray_address: str | None = Field(default=None, description="The Ray dashboard URL, e.g. http://127.0.0.1:8265")
    http_timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=10)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in PROVIDERS:
            raise ValueError(f"unknown provider {v!r}; allowed: {', '.join(PROVIDERS)}")
        return v

    @field_validator("providers", mode="before")
    @classmethod
    def _known_providers(cls, v: Any) -> Any:
        names = [n.strip().lower() for n in v.split(",")] if isinstance(v, str) else v
        if not isinstance(names, list | tuple):
            return v
        names = [n for n in names if n]
        unknown = [n for n in names if n not in PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider {', '.join(map(repr, unknown))}; allowed: {', '.join(PROVIDERS)}")
        return tuple(dict.fromkeys(names))  # first mention wins the order; duplicates dropped

    @model_validator(mode="after")
    def _default_provider(self) -> Settings:
        if self.providers:
            self.provider = self.providers[0]
        else:
            self.providers = (self.provider,)
        if not self.toolsets:
            self.toolsets = default_toolsets(self.providers)
        return self

    @field_validator("workload_api_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = "/" + v.strip().strip("/")
        if v == "/" or any(c.isspace() or c in "?#" for c in v):
            raise ValueError("must be a path such as /api/v1 (the platform's code) or /api/custom (the seed)")
        return v

    @field_validator("toolsets", mode="before")
    @classmethod
    def _known_toolsets(cls, v: Any) -> tuple[str, ...]:
        return parse_toolsets(v) if v else ()

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, v: Any) -> Any:
        names = [n.strip().lower() for n in v.split(",") if n.strip()] if isinstance(v, str) else v
        if not isinstance(names, list | tuple):
            return v
        for name in names:
            if "/" in name or any(c.isspace() for c in name):
                raise ValueError(
                    f"{name!r} is not a Host value: give a comma list of host names, each with an optional "
                    ":port or :* (any port), e.g. cloudjobs.example.com,cloudjobs.internal:8765"
                )
        return tuple(names)

    @field_validator("http_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> Any:
        origins = [o.strip().lower().rstrip("/") for o in v.split(",") if o.strip()] if isinstance(v, str) else v
        if not isinstance(origins, list | tuple):
            return v
        for origin in origins:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(
                    f"{origin!r} is not a web origin: give a comma list of scheme://host[:port] (no path), "
                    "e.g. https://console.example.com"
                )
        return tuple(origins)

    @field_validator("pai_network")
    @classmethod
    def _known_network(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("public", "vpc"):
            raise ValueError("must be 'public' or 'vpc'")
        return v

    @field_validator("state_dir", "http_tokens_file", "budgets_file", "price_table", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(v).expanduser() if isinstance(v, str | Path) and str(v).strip() else v

    @field_validator("oauth_issuer", "oauth_jwks_url", "http_public_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL (got {v!r})")
        return v  # kept exactly: a JWT's iss must equal the issuer character for character

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``CLOUDJOBS_<FIELD>`` variables; ``overrides`` win (used by tests)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(PREFIX + name.upper())
            if raw is not None and raw.strip() != "":
                values[name] = _parse_bool(raw) if cls.model_fields[name].annotation is bool else raw
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"invalid settings: {problems}") from None


def _parse_bool(raw: str) -> bool | str:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    return raw  # let pydantic report it
