// Bundles src/app.js and src/app.css (with their npm imports) into the Go
// package's embedded static directory.
import * as esbuild from "esbuild";

const outdir = "../internal/ui/static/dist";
await esbuild.build({
  entryPoints: ["src/app.js", "src/app.css"],
  bundle: true,
  minify: true,
  sourcemap: false,
  target: ["es2020"],
  outdir,
  logLevel: "info",
});
