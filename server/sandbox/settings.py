"""The sandbox's settings and its credentials (AccessKey pairs, optional STS tokens)."""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True, repr=False)
class AccessKey:
    """One credential the sandbox accepts.

    A plain AccessKey pair has no ``security_token``. An STS credential (id ``STS.…``) also has its
    token: a request signed with it must carry that token in ``x-acs-security-token`` (signed), as the
    cloud requires. ``repr`` never shows the secret or the token.
    """

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None

    def __repr__(self) -> str:
        token = ", security_token='***'" if self.security_token else ""
        return f"AccessKey(access_key_id={self.access_key_id!r}, access_key_secret='***'{token})"

    def env(self) -> dict[str, str]:
        """The ``ALIBABA_CLOUD_*`` variables that make the ``pai`` provider sign with this credential."""
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": self.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.access_key_secret,
        }
        if self.security_token:
            env["ALIBABA_CLOUD_SECURITY_TOKEN"] = self.security_token
        return env


def generate_access_key() -> AccessKey:
    """A fresh pair shaped like Alibaba's (``LTAI5t`` + 18 characters, a 30-character secret)."""
    ak_id = "LTAI5t" + "".join(secrets.choice(_ALNUM) for _ in range(18))
    secret = "".join(secrets.choice(_ALNUM) for _ in range(30))
    return AccessKey(ak_id, secret)


def generate_sts_credential() -> AccessKey:
    """A fresh STS-style credential: ``STS.`` id, secret and security token."""
    ak_id = "STS." + "".join(secrets.choice(_ALNUM) for _ in range(24))
    secret = "".join(secrets.choice(_ALNUM) for _ in range(44))
    token = "CAIS" + "".join(secrets.choice(_ALNUM) for _ in range(120))
    return AccessKey(ak_id, secret, token)


def load_or_create_keys(path: Path) -> list[AccessKey]:
    """The keys stored in ``path`` (JSON, mode 0600); one new pair is generated and stored if absent."""
    if path.exists():
        data = json.loads(path.read_text())
        return [
            AccessKey(k["access_key_id"], k["access_key_secret"], k.get("security_token"))
            for k in data.get("access_keys", [])
        ]
    key = generate_access_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {"access_keys": [{"access_key_id": key.access_key_id, "access_key_secret": key.access_key_secret}]}, f
        )
    return [key]


@dataclass(frozen=True)
class SandboxSettings:
    """How one sandbox behaves. Every delay is in real seconds.

    ``access_keys`` are the credentials it accepts (one is generated when empty: read it back from
    ``Sandbox.access_keys``). A job goes Creating for ``creating_seconds``, then Queuing for
    ``queuing_seconds``, then its pods are started by the executor (EnvPreparing until they run).
    ``minute_seconds`` is how long one minute of ``JobMaxRunningTimeMinutes`` lasts (60: real time;
    smaller values compress time for rehearsals and tests).

    ``quotas`` are the resource quota ids (``ResourceId``) CreateJob and CreateTrainingJob accept and
    ListQuotaWorkloads answers for; any other id is refused as the cloud refuses it. ``metrics_seconds`` is
    how often the executor samples each running pod's CPU and memory (GetJobMetrics serves those samples).
    """

    state_dir: Path
    region: str = "cn-hangzhou"
    access_keys: tuple[AccessKey, ...] = ()
    account_id: str = "1234567890123456"
    currency: str = "CNY"
    creating_seconds: float = 0.2
    queuing_seconds: float = 0.2
    minute_seconds: float = 60.0
    stop_grace_seconds: float = 5.0
    max_pods_per_job: int = 16
    # Request signing: x-acs-date must be within this many seconds of the sandbox's clock; nonces are
    # remembered this long (and at most max_nonces of them).
    date_window_seconds: float = 900.0
    max_nonces: int = 100_000
    # Workspaces that exist from the start (by name). Empty: the first caller creates one.
    workspaces: tuple[str, ...] = ()
    # How many recent calls ``Sandbox.calls`` keeps (action, status, code, response body).
    call_history: int = 500
    # Scheduler poll interval (launches queued jobs, runs fault hooks).
    poll_seconds: float = 0.1
    # Resource quotas that exist (ResourceId values); their queues are served by ListQuotaWorkloads.
    quotas: tuple[str, ...] = ("quota-sandbox-1",)
    # How often each running pod's CPU and memory are sampled (GetJobMetrics, ListTrainingJobInstanceMetrics).
    metrics_seconds: float = 1.0
    extra: dict[str, object] = field(default_factory=dict)  # room for faults and experiments

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser())
        for name in ("creating_seconds", "queuing_seconds", "stop_grace_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("minute_seconds", "poll_seconds", "date_window_seconds", "metrics_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.max_pods_per_job < 1:
            raise ValueError("max_pods_per_job must be >= 1")
