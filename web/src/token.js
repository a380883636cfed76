/**
 * Tokens on the client side: when to refresh one. The client never verifies a
 * token (the bridge does); it only reads `exp` from the payload.
 *
 * Rule (docs/protocol.md, "Tokens"; bridge/client/token.py follows the same):
 * a token with `exp` is refreshed in-band 30 s before its exp, or once 80% of
 * its remaining lifetime has passed if that comes later.
 */

const REFRESH_AHEAD_MS = 30_000;

/**
 * The `exp` claim in ms since 1970, unverified; null if absent or unreadable.
 * @param {string} token
 * @returns {number | null}
 */
export function tokenExpiryMs(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)));
    return typeof claims?.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * Milliseconds until the token should be replaced in-band; null without exp.
 * @param {string} token
 * @param {number} nowMs wall clock, ms since 1970
 * @returns {number | null}
 */
export function refreshDelayMs(token, nowMs) {
  const exp = tokenExpiryMs(token);
  if (exp === null) return null;
  const remaining = exp - nowMs;
  return Math.max(0, remaining - Math.min(REFRESH_AHEAD_MS, remaining * 0.2));
}
