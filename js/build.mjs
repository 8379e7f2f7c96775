// Bundle js/src into dvi_widget/widget/static/widget.js (one ES module, CSS inlined as text).
// Output is deterministic for a given esbuild version (pinned in package.json),
// so CI rebuilds and compares with the committed bundle.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outfile = process.argv[2] || path.join(here, "..", "dvi_widget", "widget", "static", "widget.js");

await build({
  entryPoints: [path.join(here, "src", "index.js")],
  bundle: true,
  format: "esm",
  target: "es2020",
  loader: { ".css": "text" },
  minify: true,
  legalComments: "none",
  charset: "utf8",
  outfile,
  logLevel: "warning",
});
