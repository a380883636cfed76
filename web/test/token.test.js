// Client-side token rules: when to refresh (token.js; bridge/client/token.py agrees)
// and how the dashboard takes a token from the URL fragment (dashboard/token.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { takeToken } from "../src/dashboard/token.js";
import { refreshDelayMs, tokenExpiryMs } from "../src/token.js";

const NOW = 1_800_000_000_000;

/** @param {object} claims */
function jwt(claims) {
  const b64 = (/** @type {object} */ o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.signature`;
}

test("exp is read without verifying; junk has none", () => {
  assert.equal(tokenExpiryMs(jwt({ exp: NOW / 1000 + 60 })), NOW + 60_000);
  assert.equal(tokenExpiryMs("opaque-token"), null);
  assert.equal(tokenExpiryMs("a.%%%.c"), null);
});

test("refresh comes 30 s before exp, or at 80% of a short life", () => {
  assert.equal(refreshDelayMs(jwt({ exp: NOW / 1000 + 3600 }), NOW), 3_570_000);
  assert.equal(refreshDelayMs(jwt({ exp: NOW / 1000 + 60 }), NOW), 48_000);
  assert.equal(refreshDelayMs(jwt({ exp: NOW / 1000 + 60 }), NOW + 100_000), 0);
  assert.equal(refreshDelayMs("opaque-token", NOW), null);
});

function page(/** @type {string} */ hash) {
  const replaced = /** @type {string[]} */ ([]);
  const saved = new Map();
  const location = /** @type {Location} */ ({ hash, pathname: "/", search: "?ws=x" });
  const history = /** @type {History} */ (
    /** @type {unknown} */ ({ replaceState: (_a, _b, url) => replaced.push(url) })
  );
  const store = /** @type {Storage} */ (
    /** @type {unknown} */ ({
      getItem: (/** @type {string} */ k) => saved.get(k) ?? null,
      setItem: (/** @type {string} */ k, /** @type {string} */ v) => saved.set(k, v),
    })
  );
  return { location, history, store, replaced };
}

test("the dashboard takes #token= once, removes it from the address bar and keeps channel=", () => {
  const p = page("#token=abc.def.ghi&channel=c1/host");
  assert.equal(takeToken(p.location, p.history, p.store), "abc.def.ghi");
  assert.deepEqual(p.replaced, ["/?ws=x#channel=c1/host"]);
  // A reload of the same tab: the fragment is gone, the token is in sessionStorage.
  const reloaded = { ...p, location: /** @type {Location} */ ({ ...p.location, hash: "" }) };
  assert.equal(takeToken(reloaded.location, p.history, p.store), "abc.def.ghi");
  assert.equal(p.replaced.length, 1);
});

test("without a token nothing changes", () => {
  const p = page("#channel=c1/host");
  assert.equal(takeToken(p.location, p.history, p.store), null);
  assert.deepEqual(p.replaced, []);
});
