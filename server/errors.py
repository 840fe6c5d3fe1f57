"""One error hierarchy for the whole server.

Every error's ``str()`` is a message written for the person (or the assistant) who has to act on it:
what went wrong and what is allowed instead. None of them ever carries a secret: provider errors keep
only the platform's Code, Message and RequestId.
"""

from __future__ import annotations


class CloudJobsError(Exception):
    """Base class. ``str(err)`` is safe to show to a user or an LLM."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidRequest(CloudJobsError):
    """The caller's input is wrong; the message names the field and what is allowed."""


class NotFound(CloudJobsError):
    """A job, pod, spec, quote or image that does not exist."""


class GateRefused(CloudJobsError):
    """The cost gate refused to create a job (no/expired/mismatched quote, budget, declined)."""


class Forbidden(CloudJobsError):
    """The caller's identity or scopes do not allow this (another identity's job or quote, a missing scope)."""


class ReadOnlyMode(CloudJobsError):
    """The server runs with CLOUDJOBS_READ_ONLY=1 and refuses every mutating call."""


class ConfigurationError(CloudJobsError):
    """A setting (environment variable) is missing or invalid."""


class CredentialsNotFound(ConfigurationError):
    """No credential source in the chain produced credentials."""


class ProviderError(CloudJobsError):
    """An error reported by a cloud API, with its Code, Message and RequestId."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        request_id: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        retry_window: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        # A platform that advises "retry in a to b seconds" without a header (Huawei's APIG.0308: 2-5 s).
        self.retry_window = retry_window

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )


class AuthenticationError(ProviderError):
    """The platform rejected the credentials (bad key, bad signature, expired token)."""


class PermissionDenied(ProviderError):
    """The credentials are valid but lack a permission (e.g. a RAM policy)."""


class Throttled(ProviderError):
    """The platform asked us to slow down; retried automatically with backoff."""


class TransportError(ProviderError):
    """The platform could not be reached (timeouts, resets) even after retries."""


class CapacityUnavailable(ProviderError):
    """The platform has no room for the request right now (e.g. Primus-SaFE's 503 ``Primus.00008``): an
    answer about capacity, not an outage, so it is never retried blindly; fewer workers, a smaller spec or
    a later try may fit."""
