"""The endpoint's own refusals of local requests, in the one error tree.

All are :class:`~hotline.errors.UsageError`: the local side (the operator, an
integrator or a sensor feed on the local API) asked for something that cannot
be done. Each knows its wire code, and the refusals of the feed API
(:class:`RequestRefused`) also their HTTP status and the field at fault::

    UsageError
    ├── UnknownMessage        no message with that id is in the inbox     (HTTP 404)
    ├── AlreadyAcknowledged   the message was acknowledged before         (HTTP 409)
    └── RequestRefused        a feed's request is refused before it is acted on
        ├── NotAuthenticated      no bearer token, or not one of a feed   (HTTP 401)
        ├── BadJson               not JSON, too large, or nested too deep (HTTP 400)
        ├── BadHeader             a malformed Idempotency-Key             (HTTP 400)
        ├── IdempotencyConflict   the key was used for another request    (HTTP 409)
        ├── PayloadTooLarge       a CAP document over its size limit      (HTTP 413)
        ├── UnsupportedMediaType  a CAP post that is not XML              (HTTP 415)
        └── RateLimited           the feed is over its rate; retry later  (HTTP 429)

A refusal of the message itself (its schema, its recipients) is a
:class:`~hotline.errors.Rejected`, answered with HTTP 422.
"""

from __future__ import annotations

from typing import ClassVar

from hotline.errors import UsageError

__all__ = [
    "AlreadyAcknowledged",
    "BadHeader",
    "BadJson",
    "IdempotencyConflict",
    "NotAuthenticated",
    "PayloadTooLarge",
    "RateLimited",
    "RequestRefused",
    "UnknownMessage",
    "UnsupportedMediaType",
]


class UnknownMessage(UsageError):
    """No received message has this id."""

    code = "not_found"


class AlreadyAcknowledged(UsageError):
    """The message was acknowledged before; a second acknowledgement is refused."""

    code = "already_acknowledged"


class RequestRefused(UsageError):
    """A request to the feed API refused as a whole: ``status`` and ``field`` for the reply."""

    status: ClassVar[int] = 400
    field: str = ""  # the request part at fault: a header's name, "alert", or ""


class NotAuthenticated(RequestRefused):
    """No ``Authorization: Bearer`` token was given, or it is no feed's token."""

    code = "not_authenticated"
    status = 401
    field = "authorization"

    def __init__(self, sentence: str, *, token_given: bool) -> None:
        super().__init__(sentence)
        self.token_given = token_given


class BadJson(RequestRefused):
    """The body is not one JSON value, is too large, or is nested too deep."""

    code = "bad_json"


class BadHeader(RequestRefused):
    """A request header has a value the API cannot use."""

    code = "bad_header"

    def __init__(self, sentence: str, *, header: str) -> None:
        super().__init__(sentence)
        self.field = header


class IdempotencyConflict(RequestRefused):
    """The Idempotency-Key was used before by this feed for a different request."""

    code = "idempotency_conflict"
    status = 409
    field = "idempotency-key"


class PayloadTooLarge(RequestRefused):
    """The body is longer than the API takes."""

    code = "too_large"
    status = 413
    field = "alert"


class UnsupportedMediaType(RequestRefused):
    """The body's Content-Type is not one the route reads."""

    code = "unsupported_media_type"
    status = 415
    field = "content-type"


class RateLimited(RequestRefused):
    """The feed is over its ``rate_per_minute``; ``retry_after_s`` says when to retry."""

    code = "rate_limited"
    status = 429

    def __init__(self, sentence: str, *, retry_after_s: int) -> None:
        super().__init__(sentence)
        self.retry_after_s = retry_after_s
