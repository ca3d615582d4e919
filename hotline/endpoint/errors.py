"""The endpoint's own refusals of its operator's requests, in the one error tree.

Both are :class:`~hotline.errors.UsageError`: the local side (the operator or
an integrator on the local API) asked for something that cannot be done::

    UsageError
    ├── UnknownMessage        no message with that id is in the inbox   (HTTP 404)
    └── AlreadyAcknowledged   the message was acknowledged before       (HTTP 409)
"""

from __future__ import annotations

from hotline.errors import UsageError

__all__ = ["AlreadyAcknowledged", "UnknownMessage"]


class UnknownMessage(UsageError):
    """No received message has this id."""

    code = "not_found"


class AlreadyAcknowledged(UsageError):
    """The message was acknowledged before; a second acknowledgement is refused."""

    code = "already_acknowledged"
