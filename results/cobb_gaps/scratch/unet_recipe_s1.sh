#!/bin/bash
# recipe U-Net, seed 1, then the current Cobb pipeline on val and test (issue 23 target, second training)
set -e
cd /work/main; . .venv/bin/activate
export OMP_NUM_THREADS=1 NO_ALBUMENTATIONS_UPDATE=1 R2MFNET_SPINEWEB16=/work/shared/data/spineweb16
/usr/bin/time -f "%e s wall %U s user" python scripts/train.py experiment=spineweb16 model=unet trainer.seed=1 trainer.epochs=50 \
  trainer.progress=false evaluate_after_training=false hydra.run.dir=outputs/cobb_source_unet_seed1 > outputs/unet_s1/train.log 2>&1
for split in val test; do
  /usr/bin/time -f "%e s wall %U s user" python scripts/evaluate_cobb.py checkpoint=outputs/cobb_source_unet_seed1/checkpoints/best.pt \
    corners=outputs/corners/corners.pt split=$split tta_flip=true threshold=0.4 'methods=[vertebrae]' device=cpu progress=false \
    output_dir=outputs/unet_s1/unet_recipe_s1_$split > outputs/unet_s1/cobb_$split.log 2>&1
done
echo done > outputs/unet_s1/DONE
