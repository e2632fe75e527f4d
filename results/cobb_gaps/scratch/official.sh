#!/bin/bash
# official evaluate_cobb runs with gap reading (the library default now)
. .venv/bin/activate
export OMP_NUM_THREADS=1 NO_ALBUMENTATIONS_UPDATE=1 R2MFNET_SPINEWEB16=/work/shared/data/spineweb16
run() { name=$1; split=$2; ck=$3; mem=$4; corners=${5:-outputs/corners/corners.pt}; tag=${6:-}
  ens=""; [ -n "$mem" ] && ens="ensemble=[$mem]"
  /usr/bin/time -f "%e s wall %U s user" python scripts/evaluate_cobb.py checkpoint=$ck $ens corners=$corners split=$split \
    tta_flip=true threshold=0.4 'methods=[vertebrae]' device=cpu progress=false \
    output_dir=outputs/cobb_gaps/${name}_$split$tag > outputs/cobb_gaps/${name}_$split$tag.log 2>&1
}
for job in "$@"; do eval run $job; done
