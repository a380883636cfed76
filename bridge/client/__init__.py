"""A Python client for the bridge's WebSocket wire.

`BridgeClient` (connection.py) connects, subscribes, keeps each channel's
`ChannelView` (state.py) exact, and reconnects and resumes on its own;
`ClientSession` (session.py) holds the protocol rules without I/O.

    async with BridgeClient("ws://127.0.0.1:8765/", ["host-a/host-a"]) as client:
        async for event in client.events():
            if isinstance(event, ChannelUpdated):
                print(client.views[event.channel].series())
"""

from bridge.client.connection import (
    BridgeClient,
    ClientEvent,
    Connected,
    Disconnected,
    EventsDropped,
)
from bridge.client.errors import ClientError, ConnectionRejected, ProtocolViolation
from bridge.client.reconnect import ReconnectPolicy
from bridge.client.session import (
    CatalogReceived,
    ChannelSynced,
    ChannelUpdated,
    ClientSession,
    GapDetected,
    HeartbeatReceived,
    HelloReceived,
    ServerError,
    StatusChanged,
)
from bridge.client.state import Applied, ChannelView, SeriesValue, ViewPosition

__all__ = [
    "Applied",
    "BridgeClient",
    "CatalogReceived",
    "ChannelSynced",
    "ChannelUpdated",
    "ChannelView",
    "ClientError",
    "ClientEvent",
    "ClientSession",
    "Connected",
    "ConnectionRejected",
    "Disconnected",
    "EventsDropped",
    "GapDetected",
    "HeartbeatReceived",
    "HelloReceived",
    "ProtocolViolation",
    "ReconnectPolicy",
    "SeriesValue",
    "ServerError",
    "StatusChanged",
    "ViewPosition",
]
