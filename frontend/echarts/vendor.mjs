// Copy the pinned ECharts build and its licenses into app/static/vendor/echarts/ (run: npm ci && npm run vendor).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "..", "app", "static", "vendor", "echarts");
const modules = join(here, "node_modules");
mkdirSync(target, { recursive: true });
const files = [
  ["echarts/dist/echarts.min.js", "echarts.min.js"],
  ["echarts/LICENSE", "LICENSE"],
  ["echarts/NOTICE", "NOTICE"],
  ["echarts/licenses/LICENSE-d3", "LICENSE-d3"],
  ["zrender/LICENSE", "LICENSE-zrender"],
  ["tslib/LICENSE.txt", "LICENSE-tslib"],
];
for (const [from, to] of files) copyFileSync(join(modules, from), join(target, to));
const version = (name) => JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8")).version;
writeFileSync(join(target, "VERSION"),
  `echarts ${version("echarts")}\nzrender ${version("zrender")}\ntslib ${version("tslib")}\n` +
  "Vendored from npm by frontend/echarts (npm ci && npm run vendor); do not edit by hand.\n");
console.log(`vendored echarts ${version("echarts")} into ${target}`);
