// Writes the client's TypeScript declarations into types/ for the npm package
// (`npm pack` runs it as prepack): tsc derives them from the JSDoc of src/*.js
// (tsconfig.types.json), and the generated protobuf declarations of src/gen come
// along, so that types/ resolves on its own. types/ is not committed.
import { execFileSync } from "node:child_process";
import { cpSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const web = path.dirname(fileURLToPath(import.meta.url));
const types = path.join(web, "types");

rmSync(types, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [path.join(web, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.types.json"],
  { cwd: web, stdio: "inherit" },
);
cpSync(path.join(web, "src", "gen"), path.join(types, "gen"), {
  recursive: true,
  filter: (source) => statSync(source).isDirectory() || source.endsWith(".d.ts"),
});
