// Bundles the dashboard into OUT (default bridge/dashboard, the Python package
// data the bridge serves): index.html, dashboard.js, dashboard.css. The output is
// deterministic, so bridge/dashboard is committed and `make web-check` can diff a
// fresh build against it.
import { copyFile, mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const web = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(web, "..", "bridge", "dashboard"));

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  absWorkingDir: web,
  entryPoints: { dashboard: "src/dashboard/main.js" },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  outdir: out,
  logLevel: "warning",
});
await copyFile(path.join(web, "index.html"), path.join(out, "index.html"));
console.log(`built ${path.relative(process.cwd(), out) || "."}`);
