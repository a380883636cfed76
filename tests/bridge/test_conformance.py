"""The Python client against the shared conformance fixtures (conformance/*.json).

Each fixture is a scenario written once for every client (conformance/README.md
describes the format); web/test/conformance.test.js runs the same files through
the JS client. Here the steps drive `ClientSession` (the protocol rules without
I/O) and `should_reconnect` (the close-code rule), exactly as `BridgeClient`
calls them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from bridge.client.errors import ProtocolViolation
from bridge.client.reconnect import should_reconnect
from bridge.client.session import ClientSession
from metrics_bridge.v1 import bridge_pb2

FIXTURES = Path(__file__).resolve().parents[2] / "conformance"
ACTIONS = (
    "open",
    "receive",
    "receiveBytes",
    "tick",
    "close",
    "subscribe",
    "unsubscribe",
    "refresh",
    "rate",
)
UPSTREAM = {
    bridge_pb2.UPSTREAM_STATE_UNSPECIFIED: None,
    bridge_pb2.UPSTREAM_STATE_LIVE: "live",
    bridge_pb2.UPSTREAM_STATE_STALE: "stale",
    bridge_pb2.UPSTREAM_STATE_REMOVED: "removed",
}


def fixture_paths() -> list[Path]:
    paths = sorted(FIXTURES.glob("*.json"))
    assert paths, f"no fixtures in {FIXTURES}"
    return paths


def sent(session: ClientSession) -> list[dict[str, Any]]:
    return [
        json_format.MessageToDict(bridge_pb2.ClientMessage.FromString(data))
        for data in session.data_to_send()
    ]


def normalized(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Expected ClientMessages in the canonical proto3 JSON that MessageToDict writes."""
    return [
        json_format.MessageToDict(json_format.ParseDict(m, bridge_pb2.ClientMessage()))
        for m in messages
    ]


def channel_state(session: ClientSession, channel: str) -> dict[str, Any]:
    view = session.views.get(channel)
    position = None if view is None else view.position
    upstream = session.upstream.get(channel)
    return {
        "position": None
        if position is None
        else {"epoch": str(position.epoch), "seq": position.seq},
        "values": {}
        if view is None
        else {s.key: s.number for s in view.series() if s.number is not None},
        "upstream": None if upstream is None else UPSTREAM[upstream],
        "resyncs": {} if view is None else dict(view.resyncs),
        "lastResync": None if view is None else view.last_resync,
    }


def action_of(step: dict[str, Any]) -> str:
    [action] = [key for key in ACTIONS if key in step]
    return action


def run_step(session: ClientSession, step: dict[str, Any], now: float) -> dict[str, Any]:
    """Does one step; returns what the client did, in the fixture's terms."""
    action = action_of(step)
    if action == "close":
        return {"reconnect": should_reconnect(step["close"])}
    dropped = False
    if action == "open":
        session.connection_opened(now)
    elif action in ("receive", "receiveBytes"):
        if action == "receive":
            data = json_format.ParseDict(step["receive"], bridge_pb2.ServerMessage())
            frame = data.SerializeToString()
        else:
            frame = bytes.fromhex(step["receiveBytes"])
        try:
            session.receive(frame, now)
        except ProtocolViolation:
            dropped = True
    elif action == "tick":
        dropped = session.link_dead(now)
    elif action == "subscribe":
        session.subscribe(step["subscribe"])
    elif action == "refresh":
        session.refresh(step["refresh"])
    elif action == "rate":
        session.set_rate(step["rate"]["channels"], step["rate"].get("minIntervalMs", 0))
    else:
        session.unsubscribe(step["unsubscribe"])
    # A dropped connection is closed at once: what the session queued never leaves.
    return {"send": [] if dropped else sent(session), "drop": dropped}


@pytest.mark.parametrize("path", fixture_paths(), ids=lambda p: p.stem)
def test_python_client_follows_the_written_rules(path: Path) -> None:
    fixture = json.loads(path.read_text())
    options = fixture.get("options", {})
    session = ClientSession(
        fixture["channels"],
        token=fixture.get("token"),
        history=options.get("history", False),
        min_interval_ms=options.get("minIntervalMs", 0),
    )
    at_ms = 0
    for number, step in enumerate(fixture["steps"], 1):
        at_ms = step.get("at", at_ms)
        expect = step.get("expect", {})
        where = f"{path.name} step {number} ({step.get('note', action_of(step))})"
        did = run_step(session, step, at_ms / 1000)
        if "reconnect" in did:
            assert did["reconnect"] is expect["reconnect"], where
            continue
        assert did["send"] == normalized(expect.get("send", [])), where
        assert did["drop"] is expect.get("drop", False), where
        for channel, wanted in expect.get("channels", {}).items():
            state = channel_state(session, channel)
            assert {key: state[key] for key in wanted} == wanted, f"{where}: {channel}"
