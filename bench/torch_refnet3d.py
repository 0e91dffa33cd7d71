"""PyTorch CPU twin of an emseg 3-d network (the isotropic 3-d U-Net by default), for side-by-side ratios with
`emseg bench`. The network is built from emseg's own spec (the JSON `emseg models <name>` prints), so both run the
same layers: conv3d (+ReLU), pool3d, upconv3d, crop (centred), concat, and a sigmoid head trained with per-element
binary cross-entropy under a mask (affinities) or a softmax head with cross-entropy. Inputs are the ones
`emseg bench` times: the smallest exact input with at least --train-out / --forward-out output voxels per axis
(pass the sizes `emseg bench --json` reports in `volume`). Prints one JSON object of median milliseconds.
Needs Debian's python3-torch (apt-get install python3-torch). Usage:
  node bin/emseg.js models unet3d-affinities > /tmp/unet3d.json
  /usr/bin/python3 bench/torch_refnet3d.py --spec /tmp/unet3d.json --train-input 56 56 56 --forward-input 72 72 72 \
      [--threads 2] [--iters 15]"""
import argparse, json, time
import torch, torch.nn as nn, torch.nn.functional as F


def triple(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v, v)


def padding3(p, kernel, dilation):
    """emseg's [front, top, left, back, bottom, right] as F.pad's (left, right, top, bottom, front, back)."""
    if p == 'valid':
        return (0,) * 6
    if p == 'same':
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        b = [t // 2 for t in total]
        p = b + [t - s for t, s in zip(total, b)]
    elif isinstance(p, int):
        p = [p] * 6
    return (p[2], p[5], p[1], p[4], p[0], p[3])


class SpecNet(nn.Module):
    """The layers of an emseg spec as a DAG: each layer reads the previous one or the layers its "inputs" name."""

    def __init__(self, spec):
        super().__init__()
        self.layers = spec['layers']
        self.mods = nn.ModuleDict()
        channels = {'input': spec['input'].get('channels', 1)}
        prev = 'input'
        for i, L in enumerate(self.layers):
            name = L.get('name', f"{L['type']}{i}")
            L['_name'], L['_inputs'] = name, L.get('inputs', [prev])
            cin = [channels[n] for n in L['_inputs']]
            t = L['type']
            if t == 'conv3d':
                k, s, d = triple(L['kernel']), triple(L.get('stride', 1)), triple(L.get('dilation', 1))
                L['_pad'] = padding3(L.get('padding', 'valid'), k, d)
                self.mods[name] = nn.Conv3d(cin[0], L['out'], k, stride=s, dilation=d, bias=L.get('bias', True))
                channels[name] = L['out']
            elif t == 'upconv3d':
                k, s = triple(L.get('kernel', 2)), triple(L.get('stride', 2))
                self.mods[name] = nn.ConvTranspose3d(cin[0], L['out'], k, stride=s, bias=L.get('bias', True))
                channels[name] = L['out']
            elif t == 'concat':
                channels[name] = sum(cin)
            elif t in ('relu', 'pool3d', 'crop', 'sigmoid', 'softmax', 'add'):
                channels[name] = cin[0]
            else:
                raise SystemExit(f'layer type {t} has no PyTorch twin here')
            prev = name

    def forward(self, x):
        """Returns the logits (the head's sigmoid / softmax is folded into the loss, as emseg's trainStep does)."""
        values = {'input': x}
        out = x
        for L in self.layers:
            t, ins = L['type'], [values[n] for n in L['_inputs']]
            if t in ('sigmoid', 'softmax'):
                break
            if t == 'conv3d':
                out = self.mods[L['_name']](F.pad(ins[0], L['_pad']) if any(L['_pad']) else ins[0])
            elif t == 'upconv3d':
                out = self.mods[L['_name']](ins[0])
            elif t == 'relu':
                out = F.relu(ins[0])
            elif t == 'pool3d':
                k = triple(L.get('kernel', 2))
                out = F.max_pool3d(ins[0], k, stride=triple(L.get('stride', k)))
            elif t == 'crop':
                target = values[L['to']].shape[2:]
                src = ins[0]
                o = [(a - b) // 2 for a, b in zip(src.shape[2:], target)]
                out = src[:, :, o[0]:o[0] + target[0], o[1]:o[1] + target[1], o[2]:o[2] + target[2]]
            elif t == 'concat':
                out = torch.cat(ins, 1)
            elif t == 'add':
                out = sum(ins)
            values[L['_name']] = out
        return out


def median_ms(fn, warm, iters):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--spec', required=True)
    ap.add_argument('--train-input', type=int, nargs=3, required=True)
    ap.add_argument('--forward-input', type=int, nargs=3, required=True)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=15)
    ap.add_argument('--warmup', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    spec = json.load(open(a.spec))
    sigmoid = spec['layers'][-1]['type'] == 'sigmoid'
    out = {'torch': torch.__version__, 'model': spec['name'], 'threads': a.threads}
    net = SpecNet(spec)
    x = torch.rand(1, spec['input'].get('channels', 1), *a.train_input)
    with torch.no_grad():
        logits = net(x)
    out['train_output'] = list(logits.shape[2:])
    if sigmoid:
        target = torch.randint(0, 2, logits.shape).float()
        mask = (torch.arange(target.numel()).reshape(target.shape) % 4 != 0).float()
        loss_of = lambda z: (F.binary_cross_entropy_with_logits(z, target, reduction='none') * mask).sum() / mask.sum()
    else:
        labels = torch.randint(0, logits.shape[1], (1, *logits.shape[2:]))
        loss_of = lambda z: F.cross_entropy(z, labels)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_of(net(x)).backward()
        opt.step()
    out['train_fp32_ms'] = median_ms(step, a.warmup, a.iters)

    def step_bf16():
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            z = net(x)
        loss_of(z.float()).backward()
        opt.step()
    out['train_bf16_ms'] = median_ms(step_bf16, a.warmup, a.iters)
    xf = torch.rand(1, spec['input'].get('channels', 1), *a.forward_input)
    net.eval()
    with torch.no_grad():
        out['forward_output'] = list(net(xf).shape[2:])
        out['forward_fp32_ms'] = median_ms(lambda: net(xf), a.warmup, a.iters)
    print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == '__main__':
    main()
