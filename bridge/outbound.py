"""What may enter one client's bounded outbound buffer.

The buffer is the connection's transport write buffer; its size in bytes is
passed in as `buffered`, and `now` is passed in too, so this is plain logic.

Rules (metrics are state: the latest wins, intermediate deltas may be skipped):
- A client that owes nothing takes any frame that fits under `limit`. This is
  the fan-out's fast path, checked first; the rules below refine the rest.
- An update is written while it fits: `buffered + len(frame) <= limit`.
- An update that does not fit is skipped and its channel becomes *owed* a
  snapshot; later updates of an owed channel are skipped too. The client is
  *lagging* from the first skip.
- Once the buffer has drained to `limit // 2` or less, the next update of an
  owed channel is replaced by that channel's latest snapshot (RESYNC), which
  clears the debt. `owed_resyncs()` lists owed channels for the periodic tick,
  so a quiet channel is resynced too.
- A snapshot is written when it fits or the buffer is empty (a snapshot larger
  than the limit still gets through to an idle client); otherwise it is skipped
  and owed like an update.
- Control frames (hello, acks, status, heartbeats, pongs) are small and always
  written, up to a hard cap of `2 * limit`; over it the client is closed.
- A client that has been lagging for longer than `stuck_timeout` is closed
  with a reconnect code (`expired`). Lagging ends when nothing is owed.
So a client's buffer never holds more than `2 * limit` bytes plus one snapshot.
"""

from __future__ import annotations

from enum import Enum

from bridge.frame import Frame, FrameKind

__all__ = ["Admit", "OutboundBuffer"]


class Admit(Enum):
    WRITE = "write"
    SKIP = "skip"
    RESYNC = "resync"
    CLOSE = "close"


class OutboundBuffer:
    """Admission policy for one client's bounded outbound buffer."""

    __slots__ = ("_owed", "lagging_since", "limit", "stuck_timeout")

    def __init__(self, limit: int, stuck_timeout: float) -> None:
        self.limit = limit
        self.stuck_timeout = stuck_timeout
        self._owed: dict[str, None] = {}
        self.lagging_since: float | None = None

    @property
    def lagging(self) -> bool:
        return self.lagging_since is not None

    def is_owed(self, channel: str) -> bool:
        return channel in self._owed

    def admit(self, frame: Frame, buffered: int, now: float) -> Admit:
        if self.lagging_since is None and buffered + len(frame.wire) <= self.limit:
            return Admit.WRITE
        kind = frame.kind
        if kind is FrameKind.UPDATE:
            if frame.channel in self._owed:
                return Admit.RESYNC if buffered <= self.limit // 2 else Admit.SKIP
            if buffered + len(frame.wire) <= self.limit:
                return Admit.WRITE
            self._owe(frame.channel, now)
            return Admit.SKIP
        if kind is FrameKind.SNAPSHOT:
            if buffered == 0 or buffered + len(frame.wire) <= self.limit:
                self.settle(frame.channel)
                return Admit.WRITE
            self._owe(frame.channel, now)
            return Admit.SKIP
        if buffered + len(frame.wire) > 2 * self.limit:
            return Admit.CLOSE
        return Admit.WRITE

    def settle(self, channel: str) -> None:
        """The channel is even again (a snapshot was written, or it was dropped)."""
        self._owed.pop(channel, None)
        if not self._owed:
            self.lagging_since = None

    def owed_resyncs(self, buffered: int) -> list[str]:
        """Owed channels to resync now, if the buffer has drained enough."""
        if not self._owed or buffered > self.limit // 2:
            return []
        return list(self._owed)

    def expired(self, now: float) -> bool:
        return self.lagging_since is not None and now - self.lagging_since > self.stuck_timeout

    def _owe(self, channel: str, now: float) -> None:
        self._owed[channel] = None
        if self.lagging_since is None:
            self.lagging_since = now
