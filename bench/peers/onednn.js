'use strict';
// Peer: oneDNN measured on this machine through PyTorch (onednn.py in a child Python process per shape).
// Optional: needs a python3 with torch (Debian: apt-get install python3-torch). anchors.md's oneDNN figures
// come from another host; this measures the same library here, beside the other cells of the run.

const path = require('path');
const { spawnSync } = require('child_process');

const SCRIPT = path.join(__dirname, 'onednn.py');
let python = null;
let loadNote = null;

function info() {
  // Debian's /usr/bin/python3 first: a python3 earlier on the PATH (pyenv, venv) may not see its torch.
  for (const exe of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(exe, ['-c', 'import torch; print(torch.__version__, torch.backends.mkldnn.is_available())'], {
      encoding: 'utf8', timeout: 60000,
    });
    const m = /^(\S+) (True|False)/m.exec(r.stdout || '');
    if (r.status === 0 && m && m[2] === 'True') {
      python = exe;
      return { available: true, version: `torch ${m[1]} (oneDNN via ${exe})` };
    }
    loadNote = r.error ? r.error.message : `${(r.stderr || '').trim().split('\n').slice(-1)[0] || 'torch without oneDNN'}`;
  }
  return { available: false, note: `no python3 with torch and oneDNN (${loadNote}); apt-get install python3-torch adds it` };
}

/** Times shape `s` (a shapes.json entry) at 1 and 2 threads with the bench's policy; { version, err, T1, T2 }. */
function measure(s, pol) {
  const r = spawnSync(python, [SCRIPT, JSON.stringify(s), JSON.stringify(pol)], { encoding: 'utf8', timeout: 300000 });
  const line = (r.stdout || '').trim().split('\n').pop();
  if (r.status !== 0 || !line) throw new Error(`onednn.py failed: ${(r.stderr || '').trim().split('\n').slice(-1)[0] || `exit ${r.status}`}`);
  return JSON.parse(line);
}

module.exports = { info, measure };
