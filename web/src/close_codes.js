/**
 * What a WebSocket close code means for the client: reconnect or stop.
 *
 * The rule is docs/protocol.md's ("Client rules"; conformance/close_codes.json,
 * which the Python client follows too): reconnect, with backoff, and resume after
 * - 1001 going away (bridge shutting down), 1006 link dropped without a close
 *   frame, 1011 internal error or missed pong, 1012 service restart,
 *   1013 try again later (connection limit), 1014 bad gateway;
 * - 1005 (a close frame without a code): treated like a dropped link;
 * - 4000-4499, the bridge's "reconnect and resume" codes (4000 slow consumer,
 *   4001 token expired: a token function is called again before reconnecting).
 * Every other code stops the client: 1000 (the session was ended on purpose),
 * 1002/1003/1007/1008/1009/1010 (the client broke the protocol or a limit:
 * retrying would fail the same way), codes this protocol does not use (e.g.
 * 3000-3999) and 4500-4999 (do not retry: 4500 token required, 4501 token invalid).
 */

/** @typedef {"reconnect" | "stop"} CloseAction */

/** The token's exp passed: reconnect with a new token (a fixed one cannot be renewed). */
export const TOKEN_EXPIRED = 4001;

const RECONNECT = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014]);

/**
 * @param {number} code
 * @returns {CloseAction}
 */
export function closeAction(code) {
  if (RECONNECT.has(code) || (code >= 4000 && code < 4500)) return "reconnect";
  return "stop";
}
