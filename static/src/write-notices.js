// Write VERSIONS.txt and LICENSES.txt for the packages esbuild bundled (read from its metafile).
const fs = require("fs"), path = require("path");
const root = path.resolve(__dirname, "..", "..");
const meta = JSON.parse(fs.readFileSync(path.join(root, "node_modules", ".cm-meta.json")));
const pkgs = new Set();
const out = Object.values(meta.outputs)[0];
for (const [input, info] of Object.entries(out.inputs)) {
  if (!info.bytesInOutput) continue;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m) pkgs.add(m[1]);
}
const names = [...pkgs].sort();
const rootPkg = require(root + "/package.json");
const direct = Object.keys(rootPkg.dependencies);
let v = "CodeMirror 6 bundle for Connector Studio: static/vendor/codemirror/codemirror.min.js\n";
v += "Built from static/src/codemirror-entry.js with `npm ci && npm run build`\n";
v += "(esbuild " + require(root + "/node_modules/esbuild/package.json").version + ", --bundle --minify --format=iife --target=es2019).\n";
v += "Versions are pinned in package.json / package-lock.json.\n\n";
v += "Direct dependencies:\n";
for (const n of names.filter(n => direct.includes(n))) v += `${n} ${require(root + "/node_modules/" + n + "/package.json").version}\n`;
v += "\nBundled transitive dependencies:\n";
for (const n of names.filter(n => !direct.includes(n))) v += `${n} ${require(root + "/node_modules/" + n + "/package.json").version}\n`;
fs.writeFileSync(root + "/static/vendor/codemirror/VERSIONS.txt", v);
let l = "Licences of the packages bundled into codemirror.min.js\n";
for (const n of names) {
  const dir = root + "/node_modules/" + n;
  const pj = require(dir + "/package.json");
  const f = fs.readdirSync(dir).find(f => /^(licen[cs]e|copying)/i.test(f));
  if (!f) throw new Error("no licence file for " + n);
  l += "\n" + "=".repeat(78) + "\n" + `${n} ${pj.version} (${pj.license})\n` + "=".repeat(78) + "\n\n";
  l += fs.readFileSync(dir + "/" + f, "utf8").trim() + "\n";
}
fs.writeFileSync(root + "/static/vendor/codemirror/LICENSES.txt", l);
console.log(names.join("\n"));
