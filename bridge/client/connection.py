"""`BridgeClient`: the asyncio glue around `ClientSession`.

It connects with the `metrics-bridge.v1` subprotocol, feeds every frame to
the session, sends what the session queues, and keeps going across failures:

- A dead link (nothing received for `miss_factor` heartbeat intervals, see
  `ClientSession.link_deadline`) is aborted without a closing handshake, since
  the peer is not listening, and reconnected. WebSocket pings are off: the
  bridge's heartbeats are the liveness signal, as for a browser.
- Reconnects wait `ReconnectPolicy.delay` (exponential backoff, full jitter)
  and resume every channel from its view's position. A close code that means
  "do not retry" (`should_reconnect`) ends `run()` with `ConnectionRejected`.
- Events go to a bounded buffer read by `events()`. If the reader falls
  behind, the oldest events are dropped and an `EventsDropped` marker says how
  many; the views stay exact either way, since the client applies every frame
  itself.

- Tokens (bridge/client/token.py): `token` is a string or a function
  (sync or async) called before every connection; its result goes out as
  Connect{token} as soon as the socket opens, and a function is called again
  before the token's exp to send Refresh{token} without reconnecting. A
  failing token function counts as a failed connect (retried with backoff).
- `ssl` (an `ssl.SSLContext`, e.g. trusting a private CA) is used for wss://.

`clock`, `rng` and `sleep` are injectable so tests can pin time and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bridge.client.errors import ConnectionRejected, ProtocolViolation
from bridge.client.reconnect import TOKEN_EXPIRED, ReconnectPolicy, should_reconnect
from bridge.client.session import PROTOCOL, ClientSession, SessionEvent
from bridge.client.state import ChannelView
from bridge.client.token import TokenSource, fetch_token, refresh_delay

__all__ = [
    "BridgeClient",
    "ClientEvent",
    "ClientStats",
    "Connected",
    "Disconnected",
    "EventsDropped",
]

log = logging.getLogger(__name__)

# ClientStats keeps this many of the latest backoff delays.
RECENT_DELAYS = 64


@dataclass(frozen=True)
class Connected:
    url: str
    attempt: int


@dataclass(frozen=True)
class Disconnected:
    """A connection ended; `retry_in` is the backoff delay, None when giving up."""

    code: int | None
    reason: str
    retry_in: float | None


@dataclass(frozen=True)
class EventsDropped:
    count: int


ClientEvent = SessionEvent | Connected | Disconnected | EventsDropped


@dataclass
class ClientStats:
    """Counters for a long-running client; `delays` holds only the latest backoff delays."""

    connections: int = 0
    disconnects: int = 0
    dead_links: int = 0
    frames: int = 0
    events_dropped: int = 0
    delays: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_DELAYS))


class _LinkDead(Exception):
    pass


class BridgeClient:
    def __init__(
        self,
        url: str,
        channels: Iterable[str] = (),
        *,
        compression: str | None = "deflate",
        policy: ReconnectPolicy | None = None,
        miss_factor: float = 2.5,
        open_timeout: float = 10.0,
        max_message_bytes: int = 4 * 1024 * 1024,
        event_buffer: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        token: TokenSource | None = None,
        ssl: ssl_module.SSLContext | None = None,
        wall_clock: Callable[[], float] = time.time,
        history: bool = False,
        min_interval_ms: int = 0,
    ) -> None:
        self.url = url
        self.token = token
        self.ssl = ssl
        self._wall_clock = wall_clock
        self.session = ClientSession(
            channels,
            miss_factor=miss_factor,
            hello_timeout=open_timeout,
            history=history,
            min_interval_ms=min_interval_ms,
        )
        self.compression = compression
        self.policy = policy or ReconnectPolicy()
        self.open_timeout = open_timeout
        self.max_message_bytes = max_message_bytes
        self.stats = ClientStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._events: deque[ClientEvent] = deque()
        self._event_buffer = event_buffer
        self._pending_drops = 0
        self._wakeup = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def views(self) -> dict[str, ChannelView]:
        return self.session.views

    async def subscribe(
        self,
        channels: Iterable[str],
        *,
        history: bool | None = None,
        min_interval_ms: int | None = None,
    ) -> None:
        """Follow more channels; `history`/`min_interval_ms` as in `ClientSession.subscribe`."""
        self.session.subscribe(channels, history=history, min_interval_ms=min_interval_ms)
        await self._flush()

    async def set_rate(self, channels: Iterable[str], min_interval_ms: int) -> None:
        """At most one (merged) update every `min_interval_ms`; resumes, no snapshot."""
        self.session.set_rate(channels, min_interval_ms)
        await self._flush()

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        self.session.unsubscribe(channels)
        await self._flush()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name=f"bridge-client {self.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        # Taken before cancelling: the cancelled task forgets its connection,
        # which would otherwise stay open until the process exits.
        ws = self._ws
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if ws is not None:
            ws.transport.abort()

    async def events(self) -> AsyncIterator[ClientEvent]:
        """Every event in order; ends by raising what ended `run()`, if it ended."""
        while True:
            if self._pending_drops:
                count, self._pending_drops = self._pending_drops, 0
                yield EventsDropped(count)
            while self._events:
                yield self._events.popleft()
                if self._pending_drops:
                    break
            if self._pending_drops or self._events:
                continue
            if self._task is not None and self._task.done():
                self._task.result()
                return
            self._wakeup.clear()
            wakeup = asyncio.ensure_future(self._wakeup.wait())
            waiters: set[asyncio.Future[Any]] = {wakeup}
            if self._task is not None:
                waiters.add(self._task)
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wakeup.cancel()

    async def run(self) -> None:
        """Connect and stay connected until cancelled or rejected for good."""
        attempt = 0
        while True:
            code, reason, greeted = await self._connect_once(attempt)
            self.stats.disconnects += 1
            if not should_reconnect(code):
                self._emit(Disconnected(code, reason, None))
                raise ConnectionRejected(code or 0, reason)
            if code == TOKEN_EXPIRED and isinstance(self.token, str):
                # The same token would be refused again: only a function can renew it.
                reason = f"{reason or 'token expired'}; a fixed token cannot be renewed"
                self._emit(Disconnected(code, reason, None))
                raise ConnectionRejected(code, reason)
            if greeted:
                attempt = 0
            delay = self.policy.delay(attempt, self._rng)
            attempt += 1
            self.stats.delays.append(delay)
            log.info(
                "disconnected from %s (%s %s); retrying in %.2fs", self.url, code, reason, delay
            )
            self._emit(Disconnected(code, reason, delay))
            await self._sleep(delay)

    async def _connect_once(self, attempt: int) -> tuple[int | None, str, bool]:
        """One connection, start to end: (close code, reason, whether Hello arrived)."""
        if self.token is not None:
            try:
                self.session.token = await fetch_token(self.token)
            except Exception as exc:
                log.warning("token source failed: %s", exc)
                return None, f"no token: {exc}", False
        extra: dict[str, Any] = {"ssl": self.ssl} if self.ssl is not None else {}
        try:
            ws = await connect(
                self.url,
                subprotocols=[PROTOCOL],  # type: ignore[list-item]
                compression=self.compression,
                open_timeout=self.open_timeout,
                ping_interval=None,
                max_size=self.max_message_bytes,
                close_timeout=self.open_timeout,
                **extra,
            )
        except InvalidURI:
            raise
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return None, f"connect failed: {exc}", False
        self._ws = ws
        self.stats.connections += 1
        self.session.connection_opened(self._clock())
        self._emit(Connected(self.url, attempt))
        refresher = asyncio.create_task(self._refresh_tokens())
        try:
            await self._flush()  # Connect{token}, before anything arrives
            await self._serve(ws)
        except ConnectionClosed:
            pass
        except _LinkDead:
            self.stats.dead_links += 1
            ws.transport.abort()
            return None, "no heartbeat: link presumed dead", self.session.hello is not None
        except ProtocolViolation as exc:
            log.warning("bridge broke the protocol: %s", exc)
            await ws.close(1002, str(exc)[:120])
            return None, f"protocol violation: {exc}", self.session.hello is not None
        finally:
            self._ws = None
            refresher.cancel()
        await ws.wait_closed()
        greeted = self.session.hello is not None
        rcvd = ws.close_code if ws.close_code != 1006 else None
        return rcvd, ws.close_reason or "", greeted

    async def _serve(self, ws: ClientConnection) -> None:
        while True:
            now = self._clock()
            if self.session.link_dead(now):
                raise _LinkDead
            timeout = self.session.link_deadline() - now
            try:
                async with asyncio.timeout(timeout):
                    data = await ws.recv()
            except TimeoutError:
                continue
            if isinstance(data, str):
                raise ProtocolViolation("the bridge sent a text frame")
            self.stats.frames += 1
            events = self.session.receive(data, self._clock())
            await self._flush()
            for event in events:
                self._emit(event)

    async def _refresh_tokens(self) -> None:
        """Refresh{token} before each token's exp, for a token function; runs per connection."""
        if self.token is None or isinstance(self.token, str):
            return
        while True:
            delay = refresh_delay(self.session.token or "", self._wall_clock())
            if delay is None:
                return
            # At least 1 s apart, so a source that keeps returning a token
            # close to its exp cannot spin.
            await asyncio.sleep(max(1.0, delay))
            try:
                token = await fetch_token(self.token)
            except Exception as exc:
                log.warning("token refresh failed (retrying in 1 s): %s", exc)
                await asyncio.sleep(1.0)
                continue
            self.session.refresh(token)
            await self._flush()

    async def _flush(self) -> None:
        ws = self._ws
        if ws is None:
            return  # the next connection subscribes every wanted channel after Hello
        for data in self.session.data_to_send():
            with contextlib.suppress(ConnectionClosed):
                await ws.send(data)

    def _emit(self, event: ClientEvent) -> None:
        if len(self._events) >= self._event_buffer:
            self._events.popleft()
            self._pending_drops += 1
            self.stats.events_dropped += 1
        self._events.append(event)
        self._wakeup.set()
