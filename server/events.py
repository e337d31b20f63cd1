"""What the server's parts tell each other: blinker signals, as Flask's own signals are.

:data:`profile_stored` is sent by :meth:`.storage.Storage.add_profile` once a new profile is
durably stored (its body in the blob store, its index row committed; never for a retried
duplicate). The sender is the :class:`~.storage.Storage` that stored it, the payload a
:class:`ProfileStored` passed as ``profile``::

    def on_stored(storage: Storage, profile: ProfileStored) -> None: ...

Receivers run on the thread that stored the profile (a request thread during ingest), so they
only queue work, or do a little that needs no I/O (the rollups fold the request's checked
columns, so that no reader decodes the new profile again). An app connects its receivers with
:func:`connect_storage`, scoped to its own storage: several apps in one process (tests, a
restart in place) never hear each other's profiles, and :func:`disconnect_app` undoes an app's
connections when it shuts down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Tuple

from blinker import Namespace, Signal
from flask import Flask

signals = Namespace()

profile_stored: Signal = signals.signal(
    "profile-stored", doc="A new profile was stored: sender is the Storage, ``profile`` a ProfileStored."
)

#: Where an app keeps its connections, for :func:`disconnect_app`.
EXTENSION_KEY = "greenflame.events"

Receiver = Callable[..., Any]


@dataclass(frozen=True)
class ProfileStored:
    """One newly stored profile: its group, id, time window, receive time and blob key."""

    group: str
    profile_id: str
    start_time_unix_ns: int
    end_time_unix_ns: int
    received_unix_ns: int
    blob_key: str
    #: What the request checked: a :class:`~greenflame.analyzer.formats.wire_summary.DocumentSummary`
    #: holding the decoded document, or a built Profile (receivers may read it instead of the body).
    content: Any = field(default=None, compare=False, repr=False)

    @property
    def duration_ns(self) -> int:
        """The profile's window length."""
        return self.end_time_unix_ns - self.start_time_unix_ns


def connect_storage(app: Flask, signal: Signal, storage: object, receiver: Receiver) -> None:
    """Connect ``receiver`` to ``signal`` as sent by ``storage`` only, for the life of ``app``.

    The connection is weak (as blinker's are by default): it also ends when the receiver's
    owner, kept by the app, is garbage collected.
    """
    signal.connect(receiver, sender=storage, weak=True)
    connections: List[Tuple[Signal, object, Receiver]] = app.extensions.setdefault(EXTENSION_KEY, [])
    connections.append((signal, storage, receiver))


def disconnect_app(app: Flask) -> None:
    """Disconnect every receiver ``app`` connected with :func:`connect_storage`."""
    connections: List[Tuple[Signal, object, Receiver]] = app.extensions.pop(EXTENSION_KEY, [])
    for signal, storage, receiver in connections:
        signal.disconnect(receiver, sender=storage)
