"""Scratch (not library): corner-network reads of vertebrae the mask missed (gaps), on validation.

python outputs/gaps/exp.py real [source]     # the validation masks as predicted
python outputs/gaps/exp.py sim [source]      # one end vertebra of each main curve removed from the mask
"""
import json, sys, os
from dataclasses import replace
from pathlib import Path
import numpy as np
from scipy import ndimage
import torch

sys.path.insert(0, "outputs/chain")
from exp import records  # noqa: E402
from r2mfnet.data.io import read_image
from r2mfnet.measure.angle_stats import measure_triple_info
from r2mfnet.measure.case import method_kwargs
from r2mfnet.measure.vertebrae import vertebra_tilts
from r2mfnet.inference.corner_refiner import CornerRefiner

torch.set_num_threads(1)
MIN_GAP = float(os.environ.get("MIN_GAP", "1.6"))


def with_gaps(vts, min_gap=MIN_GAP):
    out = [vts[0]]
    for a, b in zip(vts[:-1], vts[1:]):
        d = b.level_pos - a.level_pos
        if d > min_gap:
            n = int(round(d)) - 1
            for j in range(1, n + 1):
                t = j / (n + 1)
                out.append(replace(a, x=a.x + t * (b.x - a.x), y=a.y + t * (b.y - a.y),
                                   tilt_deg=a.tilt_deg + t * (b.tilt_deg - a.tilt_deg),
                                   level_pos=a.level_pos + t * d, source="centreline", extent=0.0, width=0.0))
        out.append(b)
    return out


def run(mode, source="unet_recipe", corners="outputs/corners/corners.pt"):
    data = np.load(f"outputs/corner_iter/masks_val_{source}.npz")
    refs = {r.case_id: r for r in records("val")}
    refiner = CornerRefiner.from_file(corners, gaps=False)  # the library's default reads gaps since; this is the row without
    kw = method_kwargs("vertebrae")
    per = []
    for key in data.files:
        cid = key.replace("__", " ")
        r = refs[cid]
        ref = json.loads(Path(r.landmarks).read_text())["cobb_angles_deg"]
        m = data[key].copy()
        img = read_image(r.image).array
        if mode == "sim":
            try:
                cl, vts = vertebra_tilts(m)
            except Exception:
                continue
            shape = [i for i, v in enumerate(vts) if v.source == "shape"]
            tilts = np.array([vts[i].tilt_deg for i in shape])
            if len(shape) < 5:
                continue
            # the steepest tilt inside (not the first or last vertebra): an end vertebra of the main curve
            inner = [k for k in range(1, len(shape) - 1)]
            k = max(inner, key=lambda k: abs(tilts[k] - np.median(tilts)))
            v = vts[shape[k]]
            lab, _ = ndimage.label(m, structure=np.ones((3, 3)))
            c = lab[int(round(v.y)), int(round(v.x))]
            if c == 0 or (lab == c).sum() > 0.15 * m.sum():
                continue
            m[lab == c] = False
        res = {"case": cid, "ref": ref}
        for name, fn in (("corners", lambda vts: refiner.refine(img, vts)),
                         ("gaps", lambda vts: refiner.refine(img, with_gaps(vts)))):
            tri, info = measure_triple_info(m, "vertebrae", refine=fn, **kw)
            res[name] = tri
        per.append(res)
    for name in ("corners", "gaps"):
        e = np.array([p[name][0] - p["ref"][0] for p in per if p[name] and p["corners"] and p["gaps"]])
        print(f"{mode} {source} {name}: n={len(e)} failed={sum(1 for p in per if not p[name])} "
              f"MAE={np.abs(e).mean():.3f} bias={e.mean():.2f} max={np.abs(e).max():.1f}")
    diff = [(p["case"], p["ref"][0], p["corners"][0], p["gaps"][0]) for p in per
            if p["corners"] and p["gaps"] and abs(p["corners"][0] - p["gaps"][0]) > 0.05]
    for t in diff: print("  changed %s ref %.1f corners %.1f gaps %.1f" % t)
    Path(f"outputs/gaps/per_{mode}_{source}_g{MIN_GAP}.json").write_text(json.dumps(per))


if __name__ == "__main__":
    run(sys.argv[1], *(sys.argv[2:3] or []))
