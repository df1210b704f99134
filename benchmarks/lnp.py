"""LNP-pruned-then-trained vs dense-trained-then-activity-pruned HRSNNs on sequential digits.

Both arms start from the same untrained HRSNN (CubaLIF, per-neuron time constants, recurrent
weights) for each seed, and end with the same total number of synapses (non-zero weights of
fc1 + rec1 + fc_out):

* LNP: lnp_prune on the untrained graph (no task data; recurrent sparsity --rec-sparsity,
  neuron sparsity --neuron-sparsity), then train the sparse network for --epochs (pruned
  weights held at zero by gradient masks).
* Activity: train the dense network for --epochs, activity-prune it (passes.prune.activity_prune,
  scope global, score |w| * presynaptic rate on --calib training samples) to the LNP arm's
  synapse count, drop neurons that never spike (passes.prune.remove_dead_neurons), fine-tune
  --finetune epochs with the same masks.

Reported per arm (mean and std over seeds): test accuracy, hidden neurons, synapses, and
synaptic events per test sample counted by the reference simulator.

    python benchmarks/lnp.py                   # 3 seeds, ~5 min on 2 CPU cores
    python benchmarks/lnp.py --seeds 1 --epochs 2   # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "lnp.json"
SYN_NODES = ("fc1", "rec1", "fc_out")


def _synapses(graph) -> int:
    return int(sum(np.count_nonzero(graph.nodes[n].weight) for n in SYN_NODES))


def _neurons(graph) -> int:
    return int(np.asarray(graph.nodes["lif1"].v_threshold).size)


def _with_hidden_size(graph):
    """Set model_config n_hidden to the graph's population size so from_nir rebuilds it."""
    meta = dict(graph.metadata)
    cfg = json.loads(str(meta["model_config"]))
    cfg["n_hidden"] = _neurons(graph)
    meta["model_config"] = json.dumps(cfg)
    graph.metadata = meta
    return graph


def _masked_model(graph):
    """Torch model of the graph whose zero weights stay zero under training."""
    import torch

    from neurocompile.train.export import from_nir

    model = from_nir(_with_hidden_size(graph), dtype=torch.float32)
    for name in SYN_NODES:
        w = getattr(model, name).weight
        mask = (w.detach() != 0).to(w.dtype)
        w.register_hook(lambda g, m=mask: g * m)
    return model


def _fit(model, data, epochs: int, seed: int):
    from neurocompile.train.loop import TrainConfig, evaluate, fit

    cfg = TrainConfig(model="hrsnn", epochs=epochs, batch_size=64, seed=seed, patience=None,
                      progress=False)
    model, _ = fit(cfg, data=data, model_factory=lambda c, d: model)
    from neurocompile.models import classify

    return model, evaluate(model, data.test, classify)


def _events_per_sample(graph, data) -> float:
    from neurocompile.targets.reference import simulate

    res = simulate(graph, {"input": data.test.x.astype(np.float64)})
    return res.total("synaptic_events") / len(data.test)


def run_seed(seed: int, args, data) -> dict:
    import torch

    from neurocompile.analysis import record_activity
    from neurocompile.models import build_model
    from neurocompile.passes.lnp import lnp_prune
    from neurocompile.passes.prune import activity_prune, remove_dead_neurons
    from neurocompile.train.export import to_nir

    torch.manual_seed(seed)
    init = build_model("hrsnn", seed=seed, n_in=data.n_features, n_out=data.n_classes,
                       n_hidden=args.hidden)
    g0 = to_nir(init)
    t0 = time.perf_counter()
    g_lnp, rep = lnp_prune(g0, args.rec_sparsity, neuron_sparsity=args.neuron_sparsity,
                           rounds=args.rounds, seed=seed)
    t_lnp = time.perf_counter() - t0
    budget = _synapses(g_lnp)
    model, ev = _fit(_masked_model(g_lnp), data, args.epochs, seed)
    g_lnp_tr = to_nir(model)
    lnp = {"acc": ev["acc"], "neurons": _neurons(g_lnp_tr), "synapses": _synapses(g_lnp_tr),
           "events": _events_per_sample(g_lnp_tr, data), "prune_s": t_lnp,
           "mle_before": rep.row("lif1").extra["mle_before"],
           "mle_after": rep.row("lif1").extra["mle_after"],
           "stable": rep.row("lif1").extra["stable"],
           "spectral_eps": rep.row("rec1").extra["spectral_eps"]}

    dense_model, ev_dense = _fit(_masked_model(to_nir(init)), data, args.epochs, seed)
    g_dense = to_nir(dense_model)
    total = _synapses(g_dense)
    calib = {"input": data.train.x[: args.calib].astype(np.float64)}
    activity = record_activity(g_dense, calib)

    def prune_to(s: float):
        g, _ = activity_prune(g_dense, activity, s, scope="global", nodes=list(SYN_NODES))
        return remove_dead_neurons(g, record_activity(g, calib))[0]

    # Bisection on the activity sparsity so that, after the dead neurons are dropped, the
    # synapse count is the LNP arm's (within 1%). Dropping neurons only removes synapses, so
    # s0 = 1 - budget/total already lands at or below the budget.
    lo, hi = 0.0, 1.0 - budget / total
    g_act = prune_to(hi)
    for _ in range(12):
        if abs(_synapses(g_act) - budget) <= 0.01 * budget:
            break
        mid = 0.5 * (lo + hi)
        g_mid = prune_to(mid)
        if _synapses(g_mid) > budget:
            lo = mid
        else:
            hi, g_act = mid, g_mid
    act_model, ev_act = _fit(_masked_model(g_act), data, args.finetune, seed)
    g_act_tr = to_nir(act_model)
    act = {"acc": ev_act["acc"], "neurons": _neurons(g_act_tr),
           "synapses": _synapses(g_act_tr), "events": _events_per_sample(g_act_tr, data),
           "acc_before_finetune": None}
    dense = {"acc": ev_dense["acc"], "neurons": _neurons(g_dense), "synapses": total,
             "events": _events_per_sample(g_dense, data)}
    return {"seed": seed, "dense": dense, "lnp": lnp, "activity": act}


def _stats(rows: list[dict], arm: str, key: str) -> tuple[float, float]:
    vals = [float(r[arm][key]) for r in rows]
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--rec-sparsity", type=float, default=0.8)
    p.add_argument("--neuron-sparsity", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--finetune", type=int, default=2)
    p.add_argument("--calib", type=int, default=256)
    p.add_argument("--repeat", type=int, default=2, help="steps each pixel group is shown")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    import torch
    from _machine import machine

    from neurocompile.data import load_dataset
    from neurocompile.ir.io import write_text

    torch.set_num_threads(2)
    data = load_dataset("digits-seq", pixels_per_step=8, repeat=args.repeat)
    t0 = time.perf_counter()
    rows = [run_seed(s, args, data) for s in range(args.seeds)]
    wall = time.perf_counter() - t0
    table = []
    for arm, label in (("dense", "dense (trained, unpruned)"),
                       ("lnp", "LNP pruned, then trained"),
                       ("activity", "trained, activity-pruned, fine-tuned")):
        row = {"arm": label}
        for key in ("acc", "neurons", "synapses", "events"):
            m, sd = _stats(rows, arm, key)
            row[key], row[key + "_std"] = m, sd
        table.append(row)
    print(f"sequential digits (8 px/step x {64 // 8 * args.repeat} steps), hidden "
          f"{args.hidden}, {args.seeds} seeds, {args.epochs} epochs; wall {wall:.0f} s")
    print(f"{'arm':40s} {'test acc':>14s} {'neurons':>8s} {'synapses':>9s} {'events/sample':>14s}")
    for r in table:
        print(f"{r['arm']:40s} {r['acc']:.3f} ± {r['acc_std']:.3f} {r['neurons']:8.1f} "
              f"{r['synapses']:9.0f} {r['events']:14.0f}")
    result = {"benchmark": "lnp", "machine": machine(), "torch": torch.__version__,
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "task": f"digits-seq, pixels_per_step=8, repeat={args.repeat}",
              "wall_s": wall, "table": table, "per_seed": rows}
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
