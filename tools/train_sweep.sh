#!/usr/bin/env bash
# Fine-tune the detector on a GPU machine: several optimiser settings side by side, each bounded in
# time, their best checkpoints (stripped) and results.csv copied to $OUT (logs in /tmp/sweep-NAME.log). The dataset and the initial
# checkpoint come from `phatnguoi train detector --step prepare --out runs/vn` (run where the videos are).
#   usage: tools/train_sweep.sh PREPARED_DIR EPOCHS SECONDS "NAME OPTIMIZER LR0" ...
set -u
prepared=$1 epochs=$2 seconds=$3
shift 3
out=${OUT:-/tmp/sweep-out}
mkdir -p "$out"
for cfg in "$@"; do
  set -- $cfg
  (
    timeout "$seconds" python3 -c "
from pathlib import Path
from detector.train import fit
fit(Path('$prepared/data/data.yaml'), Path('$prepared/init_coco_yolov8n.pt'), Path('/tmp/sweep/$1'),
    epochs=$epochs, device='0', workers=4, extra={'optimizer': '$2', 'lr0': $3, 'cos_lr': True})
" > "/tmp/sweep-$1.log" 2>&1
    w=/tmp/sweep/$1/run/weights
    python3 -c "
from ultralytics.utils.torch_utils import strip_optimizer
strip_optimizer('$w/best.pt')" >> "/tmp/sweep-$1.log" 2>&1
    cp "$w/best.pt" "$out/$1_best.pt"
    cp /tmp/sweep/$1/run/results.csv "$out/$1_results.csv"
    echo "== $1: $(grep -c . /tmp/sweep/$1/run/results.csv) lines of results"; tail -n 3 "/tmp/sweep-$1.log"
  ) &
  sleep 5
done
wait
