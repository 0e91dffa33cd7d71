#!/bin/bash
# Per-model inference/training benchmark (docs/BENCHMARKS.md). Run on a quiet machine.
cd "$(dirname "$0")/.." && mkdir -p runs/bench
node bin/emseg.js bench reference-net --precision fp32,bf16 --iters 5 --warmup 2 --json > runs/bench/reference-net.json 2> runs/bench/reference-net.err
for m in fakhry-a fakhry-b ciresan-n4 unet-w16 fakhry-c; do
  extra="--section 512"; iters=3; tsize=64
  case $m in fakhry-a|fakhry-b|ciresan-n4|unet-w16) extra="$extra --section-tta";; esac
  case $m in fakhry-a|fakhry-b|ciresan-n4|fakhry-c) extra="$extra --sliding-crop 32";; esac
  case $m in unet*) tsize=396;; esac
  case $m in fakhry-c) iters=1;; esac
  node bin/emseg.js bench $m --precision fp32,bf16 --iters $iters --warmup 1 --train-size $tsize --forward-size 512 $extra --json > runs/bench/$m.json 2> runs/bench/$m.err
  echo "$m done $(date +%T)"
done
