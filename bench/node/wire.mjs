// The few protobuf fields the ws baseline reads and writes, by hand.
//
// Reads:
//   CollectorEvent.snapshot (10) / .update (11) -> Snapshot/Update.source (1):
//     where to route the event; source_removed (12) and anything else is not routed.
//   ClientMessage.subscribe (1) -> Subscribe.channels (1) -> ChannelRequest.channel (1):
//     what a client asks for (resume positions are skipped: the baseline always
//     answers with the latest snapshot).
// Writes:
//   ServerMessage.channel (1): the header the bridge puts before the collector's
//     raw event bytes (concatenated protobuf messages merge, and CollectorEvent's
//     snapshot/update share ServerMessage's field numbers).
// Malformed input throws WireError; unknown fields are skipped as protobuf says.

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

export class WireError extends Error {}

class Reader {
  constructor(buf, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  done() {
    return this.pos >= this.end;
  }

  varint() {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const byte = this.buf[this.pos++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new WireError("varint longer than 10 bytes");
  }

  // The next field as [number, wireType, start, end]; `start..end` is a LEN field's body.
  field() {
    const tag = this.varint();
    const number = Math.floor(tag / 8);
    const type = tag & 7;
    if (number === 0) throw new WireError("field number 0");
    let start = this.pos;
    if (type === VARINT) {
      this.varint();
    } else if (type === I64) {
      this.pos += 8;
    } else if (type === I32) {
      this.pos += 4;
    } else if (type === LEN) {
      const length = this.varint();
      start = this.pos;
      this.pos += length;
    } else {
      throw new WireError(`unsupported wire type ${type}`);
    }
    if (this.pos > this.end) throw new WireError("truncated field");
    return [number, type, start, this.pos];
  }
}

function firstString(buf, start, end, wanted) {
  const reader = new Reader(buf, start, end);
  let found = null;
  while (!reader.done()) {
    const [number, type, from, to] = reader.field();
    if (number === wanted && type === LEN) found = buf.toString("utf8", from, to);
  }
  return found;
}

/** {kind: "snapshot" | "update", source} of a raw CollectorEvent, or null if it is neither. */
export function routeOf(raw) {
  const reader = new Reader(raw);
  let route = null;
  while (!reader.done()) {
    const [number, type, start, end] = reader.field();
    if ((number === 10 || number === 11) && type === LEN) {
      const source = firstString(raw, start, end, 1) ?? "";
      route = { kind: number === 10 ? "snapshot" : "update", source };
    }
  }
  return route;
}

/** The channels a raw ClientMessage subscribes to; WireError if it is not a Subscribe. */
export function subscribedChannels(raw) {
  const reader = new Reader(raw);
  let channels = null;
  while (!reader.done()) {
    const [number, type, start, end] = reader.field();
    if (number !== 1 || type !== LEN) continue;
    channels ??= [];
    const subscribe = new Reader(raw, start, end);
    while (!subscribe.done()) {
      const [inner, innerType, from, to] = subscribe.field();
      if (inner === 1 && innerType === LEN) channels.push(firstString(raw, from, to, 1) ?? "");
    }
  }
  if (channels === null) throw new WireError("expected a ClientMessage with subscribe");
  return channels;
}

function varintBytes(value) {
  const out = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** encode(ServerMessage(channel)): put before a raw CollectorEvent to frame it for clients. */
export function channelHeader(channel) {
  const name = Buffer.from(channel, "utf8");
  if (name.length === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x0a, ...varintBytes(name.length)]), name]);
}
