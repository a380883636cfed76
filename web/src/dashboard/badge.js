/**
 * The status badge: one word for what the person watching should know.
 *
 * Precedence: the connection first (closed, reconnecting, connecting), then
 * the chosen channel (unknown to the bridge, removed, stale), else live. While
 * reconnecting the text gives the next retry time as a countdown.
 */

/**
 * @typedef {object} Badge
 * @property {"connecting" | "live" | "reconnecting" | "stale" | "removed" | "unknown" | "closed"} state
 * @property {string} text
 * @property {string} title longer explanation (tooltip)
 */

/**
 * @param {import("../client.js").ConnectionDetail} connection
 * @param {import("../session.js").UpstreamState | "unknown" | undefined} upstream of the chosen
 *   channel; "unknown" when the bridge refused it as unknown (it may not know it yet)
 * @param {number} now ms since epoch
 * @returns {Badge}
 */
export function badge(connection, upstream, now) {
  const why = connection.reason ? `last close: ${connection.reason}` : "";
  switch (connection.state) {
    case "closed":
      return { state: "closed", text: "disconnected", title: why || "closed" };
    case "reconnecting": {
      const wait = Math.max(0, (connection.retryAt ?? now) - now);
      const text = wait >= 1000 ? `reconnecting in ${Math.ceil(wait / 1000)}s` : "reconnecting…";
      const at = connection.retryAt ? new Date(connection.retryAt).toLocaleTimeString() : "now";
      return { state: "reconnecting", text, title: `next retry at ${at}; ${why}` };
    }
    case "connecting":
      return connection.attempt > 0
        ? { state: "reconnecting", text: "reconnecting…", title: `attempt ${connection.attempt + 1}; ${why}` }
        : { state: "connecting", text: "connecting…", title: "opening the WebSocket" };
    case "idle":
      return { state: "connecting", text: "connecting…", title: "not started" };
    default:
      break;
  }
  if (upstream === "unknown") {
    return {
      state: "unknown",
      text: "channel unknown",
      title: "the bridge does not know this channel (yet); it is asked for again when listed",
    };
  }
  if (upstream === "removed") {
    return { state: "removed", text: "source removed", title: "the source is gone from its collector" };
  }
  if (upstream === "stale") {
    return {
      state: "stale",
      text: "upstream stale",
      title: "the bridge cannot reach the collector; values shown are the last known",
    };
  }
  return { state: "live", text: "live", title: "connected; data is current" };
}
