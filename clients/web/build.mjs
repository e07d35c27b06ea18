// Builds the demo page (browser bundle) and the Node test drivers with esbuild.
import { copyFile, mkdir, rm } from "node:fs/promises";
import * as esbuild from "esbuild";

await rm("dist", { recursive: true, force: true });
await mkdir("dist/node", { recursive: true });
await esbuild.build({
  entryPoints: ["src/demo/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile: "dist/demo.js",
  logLevel: "warning",
});
await Promise.all([
  copyFile("src/demo/index.html", "dist/index.html"),
  copyFile("src/demo/style.css", "dist/style.css"),
]);
await esbuild.build({
  entryPoints: [
    "src/node/probe.ts",
    "src/node/browser.ts",
    "src/node/session.test.ts",
    "src/node/money.test.ts",
    "src/node/fanout.ts",
    "src/node/errors.test.ts",
    "src/node/decode-status.ts",
    "src/node/error-probe.ts",
    "src/node/app.ts",
    "src/node/symbols-check.ts",
  ],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Dependencies stay in node_modules; only our code is bundled.
  packages: "external",
  outdir: "dist/node",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
