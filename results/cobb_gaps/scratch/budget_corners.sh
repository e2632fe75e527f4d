#!/bin/bash
# after the ablations: the error budget of the retrained recipe U-Net with the corner network (seed 0), val then test
cd /work/main; . .venv/bin/activate
export OMP_NUM_THREADS=1 NO_ALBUMENTATIONS_UPDATE=1 R2MFNET_SPINEWEB16=/work/shared/data/spineweb16
while [ ! -f outputs/unet_s1/ABL_DONE ]; do sleep 20; done
for split in val test; do
  /usr/bin/time -f "%e s wall %U s user" python scripts/evaluate_cobb.py checkpoint=outputs/cobb_source_unet_seed0/checkpoints/best.pt \
    corners=outputs/corners/corners.pt budget=true split=$split tta_flip=true threshold=0.4 'methods=[vertebrae]' device=cpu progress=false \
    output_dir=outputs/budget_corners/unet_recipe_$split > outputs/budget_corners/$split.log 2>&1
done
echo done > outputs/budget_corners/DONE
