// Who gets which frame in the ws baseline, without sockets.
//
// Rules:
// - A channel is "<collector name>/<source>". Each collector Snapshot or Update
//   becomes one frame, encode(ServerMessage(channel)) + the event's raw bytes,
//   built once as a Buffer and handed to every subscriber of the channel with
//   its own client.send(frame): `ws` has no broadcast primitive, so this loop is
//   how a Node fan-out is written.
// - A client whose bufferedAmount (bytes queued in its socket and, with
//   permessage-deflate, messages waiting to be compressed) is over maxBuffered
//   is skipped for that frame: it misses the update, nothing queues without
//   bound, and it does not hold back the others. It is not resynced (the bridge
//   sends a lagging client a snapshot; this baseline does what a plain ws
//   server does).
// - The latest Snapshot frame of each channel is kept; a new subscriber gets it
//   first, then the channel's frames as they come.
// - Other events (SourceRemoved, anything unknown) are not routed.
// A client is anything with send(buffer), bufferedAmount and readyState
// (a `ws` WebSocket).

import { channelHeader, routeOf } from "./wire.mjs";

const OPEN = 1;

export class Fanout {
  constructor(collectorName, maxBuffered) {
    this.collectorName = collectorName;
    this.maxBuffered = maxBuffered;
    this.subscribers = new Map();
    this.snapshots = new Map();
    this.channelsOf = new Map();
    this.sources = new Set();
    this.routed = { snapshot: 0, update: 0 };
    this.delivered = 0;
    this.skipped = 0;
  }

  /** Adds `client` to each channel and sends it the channel's snapshot if there is one. */
  subscribe(client, channels) {
    const mine = this.channelsOf.get(client) ?? new Set();
    this.channelsOf.set(client, mine);
    for (const channel of channels) {
      mine.add(channel);
      let pool = this.subscribers.get(channel);
      if (pool === undefined) {
        pool = new Set();
        this.subscribers.set(channel, pool);
      }
      pool.add(client);
      const snapshot = this.snapshots.get(channel);
      if (snapshot !== undefined) this.#deliver(client, snapshot);
    }
  }

  remove(client) {
    for (const channel of this.channelsOf.get(client) ?? []) {
      this.subscribers.get(channel)?.delete(client);
    }
    this.channelsOf.delete(client);
  }

  /**
   * Routes one raw CollectorEvent. Returns null if it is not routed, else
   * {channel, kind, source, newSource, sent, skipped}.
   */
  publish(raw) {
    const route = routeOf(raw);
    if (route === null) return null;
    const channel = `${this.collectorName}/${route.source}`;
    const frame = Buffer.concat([channelHeader(channel), raw]);
    if (route.kind === "snapshot") this.snapshots.set(channel, frame);
    this.routed[route.kind]++;
    let sent = 0;
    let skipped = 0;
    for (const client of this.subscribers.get(channel) ?? []) {
      if (this.#deliver(client, frame)) sent++;
      else skipped++;
    }
    const newSource = !this.sources.has(route.source);
    this.sources.add(route.source);
    return { channel, kind: route.kind, source: route.source, newSource, sent, skipped };
  }

  #deliver(client, frame) {
    if (client.readyState !== OPEN) return false;
    if (client.bufferedAmount > this.maxBuffered) {
      this.skipped++;
      return false;
    }
    client.send(frame);
    this.delivered++;
    return true;
  }
}
