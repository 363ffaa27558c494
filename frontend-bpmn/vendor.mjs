// Copy the pinned bpmn-js UMD bundles, css, font and licenses into app/static/vendor/bpmn-js/ (run: npm ci && npm run vendor).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "app", "static", "vendor", "bpmn-js");
const modules = join(here, "node_modules");
const dist = join(modules, "bpmn-js", "dist");
for (const dir of ["", "assets", "assets/bpmn-font/css", "assets/bpmn-font/font"]) {
  mkdirSync(join(target, dir), { recursive: true });
}
const files = [
  "bpmn-modeler.production.min.js",
  "bpmn-navigated-viewer.production.min.js",
  "assets/bpmn-js.css",
  "assets/diagram-js.css",
  "assets/bpmn-font/css/bpmn.css",
  ...readdirSync(join(dist, "assets", "bpmn-font", "font")).map((f) => `assets/bpmn-font/font/${f}`),
];
for (const file of files) copyFileSync(join(dist, file), join(target, file));
copyFileSync(join(modules, "bpmn-js", "LICENSE"), join(target, "LICENSE"));

// The bundles include their dependencies: keep every bundled package's license next to them.
const bundled = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    if (name.startsWith("@")) { walk(join(dir, name)); continue; }
    const pkgDir = join(dir, name);
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    if (pkg.name === "bpmn-js") continue;
    const license = readdirSync(pkgDir).find((f) => /^licen[cs]e/i.test(f));
    bundled.push(`## ${pkg.name} ${pkg.version} (${pkg.license})\n\n` +
      (license ? readFileSync(join(pkgDir, license), "utf8").trim() : "(no license file shipped)") + "\n");
  }
};
walk(modules);
writeFileSync(join(target, "THIRD-PARTY-LICENSES.md"),
  "# Licenses of the packages bundled into the bpmn-js UMD files\n\n" + bundled.join("\n"));
const version = JSON.parse(readFileSync(join(modules, "bpmn-js", "package.json"), "utf8")).version;
writeFileSync(join(target, "VERSION"),
  `bpmn-js ${version}\n` +
  "Vendored from npm by frontend-bpmn (npm ci && npm run vendor); do not edit by hand.\n" +
  "The bpmn.io watermark must stay visible (see LICENSE).\n");
if (!existsSync(join(target, "bpmn-modeler.production.min.js"))) throw new Error("vendoring failed");
console.log(`vendored bpmn-js ${version} into ${target}`);
