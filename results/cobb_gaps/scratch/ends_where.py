"""Scratch: where do the measured vertebrae miss ground-truth ones (top end, bottom end, between)?"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "outputs/chain")
from exp import records
from r2mfnet.measure.vertebrae import vertebra_tilts
from r2mfnet.inference.corner_refiner import gap_samples

src = sys.argv[1] if len(sys.argv) > 1 else "unet_recipe"
split = sys.argv[2] if len(sys.argv) > 2 else "val"
data = np.load(f"outputs/corner_iter/masks_{split}_{src}.npz")
refs = {r.case_id: r for r in records(split)}
tot = {"top": 0, "bottom": 0, "between": 0, "n": 0, "imgs_top": 0, "imgs_bottom": 0}
tops = []; bots = []
for key in data.files:
    r = refs[key.replace("__", " ")]
    lm = json.loads(Path(r.landmarks).read_text())
    c = np.array(lm["corners"], float).mean(1)  # 17 x 2 (x, y)
    sp = np.median(np.diff(c[:, 1]))
    try:
        _, vts = vertebra_tilts(data[key])
    except Exception:
        continue
    vts = gap_samples(vts)
    ys = np.array([v.y for v in vts]); xs = np.array([v.x for v in vts])
    d = np.hypot(c[:, None, 0] - xs[None], c[:, None, 1] - ys[None]).min(1)
    miss = d > 0.5 * sp
    ymin, ymax = ys.min(), ys.max()
    t = int(((c[:, 1] < ymin - 0.5 * sp) & miss).sum()); b = int(((c[:, 1] > ymax + 0.5 * sp) & miss).sum())
    tot["top"] += t; tot["bottom"] += b; tot["between"] += int(miss.sum()) - t - b; tot["n"] += 1
    tot["imgs_top"] += t > 0; tot["imgs_bottom"] += b > 0
    # extra measured beyond GT ends
    tops.append((c[0, 1] - ymin) / sp); bots.append((ymax - c[-1, 1]) / sp)
print(src, split, tot)
print("first measured above T1 by (levels): ", np.round(np.percentile(tops, [5, 25, 50, 75, 95]), 2))
print("last measured below L5 by (levels): ", np.round(np.percentile(bots, [5, 25, 50, 75, 95]), 2))
