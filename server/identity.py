"""Who is calling: the identity behind a request, its scopes, and the client it uses.

Over authenticated HTTP the identity is the verified token's (an API token's name, a JWT's ``sub``); over
stdio and unauthenticated loopback HTTP every caller is ``local``, the machine's operator, who may do
everything the server allows today.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token

from cloudjobs_mcp.server.errors import Forbidden

LOCAL = "local"
SCOPE_READ = "jobs:read"
SCOPE_WRITE = "jobs:write"
SCOPE_ADMIN = "jobs:admin"  # act on every identity's jobs (cleanup, stop, delete), not only one's own
SCOPES = (SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN)
# A scope implies the ones below it, so a write token can read and an admin token can write.
_IMPLIES = {SCOPE_ADMIN: (SCOPE_WRITE, SCOPE_READ), SCOPE_WRITE: (SCOPE_READ,)}
IDENTITY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")


@dataclass(frozen=True)
class Caller:
    identity: str
    scopes: frozenset[str]
    client: str = ""  # "name version" of the MCP client, when it said

    @property
    def can_write(self) -> bool:
        return SCOPE_WRITE in self.scopes

    @property
    def admin(self) -> bool:
        return SCOPE_ADMIN in self.scopes

    def require_owner(self, owner: str | None, action: str, job_id: str) -> None:
        """Refuse acting on a job another identity created (jobs created outside this server have no owner)."""
        if owner is not None and owner != self.identity and not self.admin:
            raise Forbidden(
                f"Job {job_id} was created by {owner!r}; {self.identity!r} may not {action} it. Only its creator "
                f"(or a token with the {SCOPE_ADMIN} scope) can."
            )


LOCAL_CALLER = Caller(LOCAL, frozenset(SCOPES))


def expand_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> list[str]:
    """The scopes with everything they imply (jobs:write → jobs:read), in a stable order."""
    out = list(dict.fromkeys(scopes))
    for scope in list(out):
        out.extend(s for s in _IMPLIES.get(scope, ()) if s not in out)
    return out


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {', '.join(unknown) or '(none given)'}; allowed: {', '.join(SCOPES)}")
    return scopes


def current_caller(client_params: Any = None) -> Caller:
    """The caller of the request being handled: the verified token's identity, else ``local``."""
    token = get_access_token()
    client = _client_name(client_params)
    if token is None:
        return Caller(LOCAL, LOCAL_CALLER.scopes, client)
    identity = token.subject or token.client_id
    return Caller(identity, frozenset(expand_scopes(token.scopes)), client)


def _client_name(client_params: Any) -> str:
    info = getattr(client_params, "client_info", None)
    if info is None:
        return ""
    name, version = str(getattr(info, "name", "") or ""), str(getattr(info, "version", "") or "")
    return f"{name} {version}".strip()[:200]
