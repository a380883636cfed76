/**
 * How the dashboard gets a token when the bridge runs with `--auth jwt`.
 *
 * Open the page as `https://bridge.example.com/#token=<JWT>`: a URL fragment
 * is never sent to a server, so the token stays out of access and proxy logs.
 * The page takes it once, keeps it in this tab's sessionStorage (gone when the
 * tab closes; a reload still works), and removes it from the address bar at
 * once, so it is neither bookmarked nor shared by copying the URL. Other
 * fragment parameters (`channel=...`) stay. Without a token (the default
 * loopback bridge) nothing changes: the client sends none.
 */

const KEY = "metrics-bridge.token";

/**
 * The token from the fragment (then removed from it) or saved in this tab.
 * @param {Location} location
 * @param {History} history
 * @param {Storage | undefined} store
 * @returns {string | null}
 */
export function takeToken(location, history, store) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fresh = params.get("token");
  if (fresh) {
    params.delete("token");
    const rest = params.toString().replaceAll("%2F", "/");
    history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
    try {
      store?.setItem(KEY, fresh);
    } catch {
      // Storage full or disabled: the token still works for this page's life.
    }
    return fresh;
  }
  try {
    return store?.getItem(KEY) ?? null;
  } catch {
    return null;
  }
}
