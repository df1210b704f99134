#!/usr/bin/env bash
# The README's command-line tour, runnable end to end: it creates every input it reads, in a
# directory of its own, and no command writes over a file that another one reads.
#
#   scripts/tour.sh [DIR]                      (default DIR: runs/tour)
#
# Environment: NEUROCOMPILE  the command (default: neurocompile)
#              PYTHON        the interpreter holding the package (default: python3)
#              TOUR_EPOCHS   training epochs (default 60)
#              TOUR_SAMPLES  digits test samples in x.npz / y.npz (default 100)
#              TOUR_LAVA=0   skip the Lava run (it needs `neurocompile lava setup` once)
set -euo pipefail
DIR="${1:-runs/tour}"
NC="${NEUROCOMPILE:-neurocompile}"
PY="${PYTHON:-python3}"
EPOCHS="${TOUR_EPOCHS:-60}"
SAMPLES="${TOUR_SAMPLES:-100}"
mkdir -p "$DIR"
cd "$DIR"
step() { printf '\n$ neurocompile %s\n' "$*"; $NC "$@"; }

# Inputs: rate-coded digits of the bundled test split (x.npz) and their classes (y.npz).
$PY - "$SAMPLES" <<'PYTHON'
import sys

import numpy as np

from neurocompile.data import load_dataset
from neurocompile.ir.io import save_spikes

test = load_dataset("digits").test
n = int(sys.argv[1])
save_spikes({"input": np.asarray(test.x[:n])}, "x.npz")
np.savez("y.npz", labels=np.asarray(test.y[:n]))
print(f"wrote x.npz ({n} samples) and y.npz")
PYTHON

step train --model ff --optimizer adabreg --lr 1e-2 --lambda 0.3 --spike-loss 2e-4 \
    --epochs "$EPOCHS" -o ff
step inspect ff/model.nir
step prune ff/model.nir --method magnitude --sparsity 0.5 -o pruned.nir
step demo -o demo                                   # a recurrent graph, for LNP
step prune demo/demo.nir --method lnp --sparsity 0.8 -o lnp.nir
step quantize pruned.nir --scheme loihi -o quantized.nir
step compare ff/model.nir quantized.nir --input x.npz --labels y.npz
step compile quantized.nir --target loihi2 --fixed-point -o artifact
if [ "${TOUR_LAVA:-1}" != 0 ]; then
    step simulate artifact --target lava --fixed-point --input x.npz -o lava_out.npz
fi
step simulate quantized.nir --target reference --fixed-point --input x.npz -o ref_out.npz
step energy quantized.nir --input x.npz --targets loihi,loihi2,cmos45 -o energy
step targets
