# Peer: oneDNN through PyTorch (Debian's python3-torch 1.13, MKL-DNN 2.6), on this machine.
# conv_transpose2d(x, w) is the input gradient of conv2d(., w) at output gradient x; PyTorch computes that
# with oneDNN's backward-data primitive (JIT kernels, reorders to its blocked layout inside the call).
# The bias is not added: that favours the peer (one pass over the output less than the others do).
# Usage: python3 onednn.py '<shape json from shapes.json>' '<policy json>'  -> one JSON line on stdout.
import json
import sys
import time

import torch

shape = json.loads(sys.argv[1])
pol = json.loads(sys.argv[2])
N, Cin, Cout, H, W, G = shape['N'], shape['Cin'], shape['Cout'], shape['H'], shape['W'], shape['groups']
kh, kw = shape['k']
s, p, op, d = shape['s'], shape['p'], shape['op'], shape['d']
Hout = (H - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
Wout = (W - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1

torch.manual_seed(1)
x = torch.randn(N, Cin, H, W)
w = torch.randn(Cin, Cout // G, kh, kw)
like = torch.empty(N, Cout, Hout, Wout)  # only its shape is used


def call():
    return torch.ops.aten.convolution_backward(x, like, w, None, s, p, d, False, [0, 0], G, [True, False, False])[0]


ref = torch.nn.functional.conv_transpose2d(x.double(), w.double(), None, s, p, op, G, d)
err = ((call().double() - ref).abs().max() / ref.abs().max()).item()


def median_ms():  # the bench's policy: warm-up, then >= minReps calls and >= minTimeMs, at most maxTimeMs
    t0 = time.perf_counter()
    warm = 0
    while warm < 2 or (time.perf_counter() - t0) * 1e3 < pol['warmMs']:
        call()
        warm += 1
    samples = []
    start = time.perf_counter()
    while True:
        a = time.perf_counter()
        call()
        b = time.perf_counter()
        samples.append((b - a) * 1e3)
        el = (b - start) * 1e3
        if (len(samples) >= pol['minReps'] and el >= pol['minTimeMs']) or el >= pol['maxTimeMs']:
            break
    samples.sort()
    n = len(samples)
    return (samples[n // 2] if n % 2 else (samples[n // 2 - 1] + samples[n // 2]) / 2), n


out = {'version': torch.__version__, 'onednn': torch.backends.mkldnn.is_available(), 'err': err}
for threads in (1, 2):
    torch.set_num_threads(threads)
    ms, reps = median_ms()
    out['T%d' % threads] = {'ms': ms, 'reps': reps}
print(json.dumps(out))
