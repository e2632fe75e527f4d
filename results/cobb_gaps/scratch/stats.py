import numpy as np, collections
from r2mfnet.measure.vertebrae import vertebra_tilts
d = np.load("outputs/corner_iter/masks_val_unet_recipe.npz")
hist = collections.Counter(); n_img_gap = 0; ends = []
for k in d.files:
    m = d[k]
    try:
        cl, vts = vertebra_tilts(m)
    except Exception as e:
        print("fail", k, e); continue
    pos = np.array([v.level_pos for v in vts])
    dp = np.diff(pos)
    for x in dp: hist[round(float(x) * 2) / 2] += 1
    if (dp > 1.6).any(): n_img_gap += 1; print(k, np.round(dp[dp > 1.6], 2), [v.source for v in vts].count("centreline"))
    ends.append((pos[0], pos[-1], len(vts)))
print(sorted(hist.items())); print("images with a gap", n_img_gap, "of", len(d.files))
e = np.array(ends); print("first pos median", np.median(e[:, 0]), "last", np.median(e[:, 1]), "count median", np.median(e[:, 2]))
