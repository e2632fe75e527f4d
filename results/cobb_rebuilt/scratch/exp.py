"""Scratch experiment (not library): corner network for Cobb tilts, chosen on validation.

python outputs/corner_iter/exp.py masks val      # cache predicted masks (long ensemble, TTA, t=0.4)
python outputs/corner_iter/exp.py train [epochs]
python outputs/corner_iter/exp.py measure val
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path("outputs/corner_iter")
RES = Path("outputs/chain")
import os
BLEND = float(os.environ.get("BLEND", "1.0"))
CKPT = "results/spineweb16_long/r2mfnet_seed0/checkpoints/best.pt"
MEMBERS = ["results/spineweb16_long/r2mfnet_seed1/checkpoints/best.pt"]


def records(split):
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.evaluation.cobb_spineweb16 import checkpoint_split_ids
    recs = load_manifest(".cache/r2mfnet/spineweb16/manifest.csv", check_images=False)
    ids, _ = checkpoint_split_ids(CKPT, recs, split)
    return [r for r in recs if r.case_id in ids and r.landmarks is not None]


SOURCES = {
    "ens_long": (CKPT, MEMBERS),
    "unet_recipe": ("outputs/cobb_source_unet_seed0/checkpoints/best.pt", []),
    "r2mfnet_eq_s0": ("results/spineweb16/r2mfnet_seed0/checkpoints/best.pt", []),
    "r2mfnet_long_s0": (CKPT, []),
}


def masks(split, name="ens_long"):
    from r2mfnet.config_dir import compose
    from r2mfnet.apps.evaluate_cobb import EvaluateCobbConfig
    from r2mfnet.apps.schema import command_config
    from r2mfnet.inference import build_predictor
    from r2mfnet.data.io import read_image
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.evaluation.cobb_spineweb16 import checkpoint_split_ids
    ck, mem = SOURCES[name]
    recs = load_manifest(".cache/r2mfnet/spineweb16/manifest.csv", check_images=False)
    assert checkpoint_split_ids(ck, recs, split)[0] == checkpoint_split_ids(CKPT, recs, split)[0]
    assert checkpoint_split_ids(ck, recs, "train")[0] == checkpoint_split_ids(CKPT, recs, "train")[0]
    cfg = compose("evaluate_cobb", [f"checkpoint={ck}", f"ensemble=[{','.join(mem)}]", "tta_flip=true",
                                    "threshold=0.4", "device=cpu"])
    pred = build_predictor(command_config(EvaluateCobbConfig, cfg))
    out = {}
    for i, r in enumerate(records(split)):
        out[r.case_id] = np.asarray(pred.predict_mask(read_image(r.image).array), dtype=bool)
        print(i, r.case_id, flush=True)
    np.savez_compressed(OUT / f"masks_{split}{'' if name == 'ens_long' else '_' + name}.npz", **{k.replace(" ", "__"): v for k, v in out.items()})


def train(epochs, head="flatten"):
    import torch
    from r2mfnet.data.io import read_image
    from r2mfnet.training.corner_training import CornerTrainConfig, landmark_images, train_corner_net
    from r2mfnet.inference.corner_refiner import save_corner_net
    torch.set_num_threads(1)
    read = lambda p: read_image(p).array
    t0 = time.time()
    tr = landmark_images(records("train"), read)
    va = landmark_images(records("val"), read)
    print(f"loaded {len(tr)} train, {len(va)} val in {time.time()-t0:.0f}s", flush=True)
    model, hist = train_corner_net(tr, va, CornerTrainConfig(epochs=epochs, head=head), log=lambda s: print(s, flush=True))
    save_corner_net(model, OUT / f"corners_{head}_e{epochs}.pt", {"history": hist})
    (OUT / f"history_{head}_e{epochs}.json").write_text(json.dumps(hist, indent=1))


def measure(split, ckpt, passes=1, flip=True, name="ens_long"):
    from r2mfnet.data.io import read_image
    from r2mfnet.measure.angle_stats import measure_triple, angle_stats
    from r2mfnet.inference.corner_refiner import CornerRefiner
    from r2mfnet.measure.case import method_kwargs
    import torch
    torch.set_num_threads(1)
    data = np.load(OUT / f"masks_{split}{'' if name == 'ens_long' else '_' + name}.npz")
    refs = {}
    for r in records(split):
        refs[r.case_id] = (r, json.loads(Path(r.landmarks).read_text())["cobb_angles_deg"])
    ref_list, base, refd = [], [], []
    if "+" in ckpt:
        from r2mfnet.inference.corner_refiner import load_corner_net
        class AvgNet(torch.nn.Module):
            def __init__(self, nets):
                super().__init__(); self.nets = torch.nn.ModuleList(nets); self.size = nets[0].size
            def forward(self, x):
                return sum(n(x) for n in self.nets) / len(self.nets)
        refiner = CornerRefiner(AvgNet([load_corner_net(c) for c in ckpt.split("+")]), passes=passes, flip=flip)
        ckpt = "avg2"
    else:
        refiner = CornerRefiner.from_file(ckpt, passes=passes, flip=flip) if ckpt != "none" else None
    per = []
    for key in data.files:
        cid = key.replace("__", " ")
        r, ref = refs[cid]
        m = data[key]
        img = read_image(r.image).array
        b, _ = measure_triple(m, "vertebrae", **method_kwargs("vertebrae"))
        def blended(vts, img=img):
            from dataclasses import replace as rp
            if os.environ.get("MERGED") == "1":  # fallback samples get a width and are re-read too
                shape_w = [(v.level_pos, v.width) for v in vts if v.source in ("shape", "split") and v.width > 0]
                allw = np.median([w for _, w in shape_w]) if shape_w else 0.0
                def width_at(pos):
                    near = [w for p, w in shape_w if abs(p - pos) <= 2.5]
                    return float(np.median(near)) if near else float(allw)
                tmp = [rp(v, source="shape", width=width_at(v.level_pos)) if v.source == "centreline" and allw > 0 else v for v in vts]
                got = refiner.refine(img, tmp)
                vts_out = [rp(g, source=v.source, width=v.width) for g, v in zip(got, vts)]
                return vts_out
            out = refiner.refine(img, vts)
            return [rp(o, tilt_deg=v.tilt_deg + BLEND * (o.tilt_deg - v.tilt_deg)) for o, v in zip(out, vts)]
        f = (measure_triple(m, "vertebrae", refine=blended, **method_kwargs("vertebrae"))[0]
             if refiner else b)
        ref_list.append(ref); base.append(b); refd.append(f)
        per.append({"case": cid, "ref": ref, "mask": b, "corners": f})
    for row, meas in (("mask", base), ("corners", refd)):
        s = angle_stats(meas, ref_list)
        from r2mfnet.measure.angle_stats import smape
        ok = [(m[0], r[0]) for m, r in zip(meas, ref_list) if m]
        sm1 = smape(np.array([a for a, _ in ok]), np.array([b for _, b in ok]))
        print(f"{row:8s} n={s['n']} failed={s['n_failed']} smape3={s['smape_pct']:.2f} smape1={sm1:.2f} "
              f"mae1={s['mae_main_deg']:.2f} bias={s['bias_main_deg']:.2f} max={s['max_abs_main_deg']:.1f}")
    (RES / f"per_{split}_{name}_{Path(ckpt).stem}_p{passes}_f{int(flip)}_b{BLEND}_m{os.environ.get('MERGED', '0')}.json").write_text(json.dumps(per))


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "masks":
        masks(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "ens_long")
    elif what == "train":
        train(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "flatten")
    elif what == "measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1,
                (sys.argv[5] != "0") if len(sys.argv) > 5 else True, sys.argv[6] if len(sys.argv) > 6 else "ens_long")
