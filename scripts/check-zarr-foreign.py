#!/usr/bin/env python3
"""Developer check: do emseg's OME-Zarr outputs read in zarr-python 2.x as emseg says they are?

Not part of `make test` and not a dependency of emseg: run it by hand where zarr-python 2.x is installed, e.g.
on Debian (`apt-get install -y python3-zarr python3-numcodecs`), with the system Python isolated from any pip
packages (`/usr/bin/python3 -I scripts/check-zarr-foreign.py`). It builds outputs with the emseg CLI from the
sample sections in samples/isbi2012 (images converted with blosc, zlib, gzip and no compression; the label masks
as a membrane map; cells both as a standalone cells.zarr and as a labels image inside the maps), then, for every
array, compares what zarr-python reads with what `emseg info --json --exact` reports (shape, dtype, chunks,
compressor, value range), checks the voxels independently of any codec (the uncompressed array's chunk files
read as raw bytes), checks each pyramid level against the 2x2 mean / mode of the level below computed here in
numpy, and checks the NGFF labels metadata. Prints one line per check; exits 1 if any fails.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import zarr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMSEG = [os.environ.get("NODE", "node"), os.path.join(REPO, "bin", "emseg.js")]
SAMPLES = os.path.join(REPO, "samples", "isbi2012")
COMPRESSIONS = ["blosc", "zlib", "gzip", "none"]
CHUNKS = (1, 128, 128)
failures = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def emseg(*args):
    cmd = EMSEG + list(args)
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit("emseg failed: %s\n%s" % (" ".join(cmd), run.stderr))
    return run.stdout


def info(path):
    return json.loads(emseg("info", path, "--json", "--exact", "--quiet"))


def compare_with_info(group_path, group, kind):
    """Every level: shape, dtype, chunks, compressor and value range as emseg info reports them."""
    levels = group.attrs["multiscales"][0]["datasets"]
    for level in levels:
        path = os.path.join(group_path, level["path"])
        arr = group[level["path"]]
        rep = info(path)
        data = arr[...]
        name = os.path.relpath(path, WORK)
        check(list(arr.shape) == rep["shape"], "%s: shape %s (emseg %s)" % (name, arr.shape, rep["shape"]))
        check(list(arr.chunks) == rep["chunks"], "%s: chunks %s (emseg %s)" % (name, arr.chunks, rep["chunks"]))
        check(arr.dtype.name == rep["dtype"], "%s: dtype %s (emseg %s)" % (name, arr.dtype, rep["dtype"]))
        comp = arr.compressor.codec_id if arr.compressor is not None else "none"
        check(comp == rep["attributes"]["compression"], "%s: compressor %s (emseg %s)" % (name, comp, rep["attributes"]["compression"]))
        rng = rep["range"]
        check(int(data.min()) == rng["min"] and int(data.max()) == rng["max"],
              "%s: value range %d..%d (emseg %s..%s)" % (name, data.min(), data.max(), rng["min"], rng["max"]))
    check_pyramid(group_path, group, kind)


def down2(a, method):
    """2x2 mean (rounded half up, as emseg) or mode (ties to the first in raster order) in y, x; odd sizes round up."""
    d, h, w = a.shape
    oh, ow = (h + 1) // 2, (w + 1) // 2
    out = np.zeros((d, oh, ow), dtype=a.dtype)
    for z in range(d):
        for y in range(oh):
            for x in range(ow):
                cell = a[z, 2 * y:2 * y + 2, 2 * x:2 * x + 2].ravel()
                if method == "mean":
                    out[z, y, x] = np.floor(cell.astype(np.float64).mean() + 0.5)
                else:
                    vals = list(cell)
                    out[z, y, x] = max(vals, key=lambda v: (vals.count(v), -vals.index(v)))
    return out


def check_pyramid(group_path, group, kind):
    ms = group.attrs["multiscales"][0]
    method = "mode" if kind == "labels" else "mean"
    check(ms["type"] == method, "%s: multiscales type %s" % (os.path.relpath(group_path, WORK), ms["type"]))
    paths = [d["path"] for d in ms["datasets"]]
    for lo, hi in zip(paths, paths[1:]):
        # A corner of each level keeps the pure-Python mode affordable; the mean is checked on all of it.
        below = group[lo][:, :64, :64] if method == "mode" else group[lo][...]
        above = group[hi][:, :32, :32] if method == "mode" else group[hi][...]
        check(np.array_equal(down2(below, method)[:, :above.shape[1], :above.shape[2]], above),
              "%s: level %s is the 2x2 %s of level %s" % (os.path.relpath(group_path, WORK), hi, method, lo))


def raw_chunks(array_dir, shape, chunks, dtype):
    """Level 0 of an uncompressed Zarr v2 array read from its chunk files as raw bytes (no codec involved)."""
    out = np.zeros(shape, dtype=dtype)
    for z in range(0, shape[0], chunks[0]):
        for y in range(0, shape[1], chunks[1]):
            for x in range(0, shape[2], chunks[2]):
                key = "/".join(str(v) for v in (z // chunks[0], y // chunks[1], x // chunks[2]))
                block = np.fromfile(os.path.join(array_dir, key), dtype=dtype).reshape(chunks)
                h, w = min(chunks[1], shape[1] - y), min(chunks[2], shape[2] - x)
                out[z:z + chunks[0], y:y + h, x:x + w] = block[:, :h, :w]
    return out


def main():
    global WORK
    WORK = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="emseg-zarr-foreign-")
    print("zarr-python %s, numcodecs %s, numpy %s; outputs in %s" % (zarr.__version__, __import__("numcodecs").__version__, np.__version__, WORK))
    chunks = ",".join(str(c) for c in CHUNKS)
    images = {}
    for c in COMPRESSIONS:
        path = os.path.join(WORK, "raw-%s.zarr" % c)
        emseg("convert", os.path.join(SAMPLES, "images"), path, "--chunks", chunks, "--compression", c, "--overwrite", "--quiet")
        images[c] = path
        group = zarr.open_group(path, mode="r")
        check(group.attrs["multiscales"][0]["version"] == "0.4", "raw-%s.zarr: NGFF 0.4 multiscales" % c)
        compare_with_info(path, group, "image")
    plain = zarr.open_group(images["none"], mode="r")["0"]
    raw = raw_chunks(os.path.join(images["none"], "0"), plain.shape, plain.chunks, plain.dtype)
    for c in COMPRESSIONS:
        arr = zarr.open_group(images[c], mode="r")["0"][...]
        check(np.array_equal(arr, raw), "raw-%s.zarr/0: zarr-python's voxels equal the uncompressed chunk bytes" % c)

    maps = os.path.join(WORK, "maps.zarr")
    emseg("convert", os.path.join(SAMPLES, "labels"), maps, "--chunks", chunks, "--kind", "membrane", "--polarity", "membrane-low", "--overwrite", "--quiet")
    seg = ["--block", chunks, "--halo", "64", "--quiet"]
    emseg("segment", "--pred", maps, "--out", os.path.join(maps, "labels", "cells"), *seg)
    cells = os.path.join(WORK, "cells.zarr")
    emseg("segment", "--pred", maps, "--out", cells, "--overwrite", *seg)
    mg = zarr.open_group(maps, mode="r")
    check(mg.attrs["emseg"]["polarity"] == "membrane-low", "maps.zarr: polarity membrane-low recorded")
    compare_with_info(maps, mg, "membrane")
    check(json.load(open(os.path.join(maps, "labels", ".zattrs"))) == {"labels": ["cells"]}, "maps.zarr/labels/.zattrs lists cells")
    lg = zarr.open_group(os.path.join(maps, "labels", "cells"), mode="r")
    check(lg.attrs["image-label"]["source"]["image"] == "../../", "maps.zarr/labels/cells: image-label points to ../../")
    check(len(lg.attrs["multiscales"][0]["datasets"]) == len(mg.attrs["multiscales"][0]["datasets"]), "labels have the image's levels")
    compare_with_info(os.path.join(maps, "labels", "cells"), lg, "labels")
    cg = zarr.open_group(cells, mode="r")
    compare_with_info(cells, cg, "labels")
    inside, alone = lg["0"][...], cg["0"][...]
    check(np.array_equal(inside, alone), "labels inside the maps equal the standalone cells.zarr")
    ids = np.unique(alone)
    check(ids[0] == 1 and np.array_equal(ids, np.arange(1, ids[-1] + 1)), "cell ids are consecutive 1..%d, every voxel labelled" % ids[-1])
    print("%d check(s) failed" % len(failures) if failures else "all checks passed")
    sys.exit(1 if failures else 0)


WORK = ""
if __name__ == "__main__":
    main()
