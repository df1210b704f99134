"""LNP vs random pruning vs activity pruning of a trained dense HRSNN, with one ablation per
LNP step, on sequential and permuted-sequential digits (docs/lnp.md).

Every arm of a seed starts from the same untrained HRSNN (CubaLIF, per-neuron time constants)
and ends with the same hidden neurons, the same synapses in every weighted node (fc1, rec1,
fc_out) and the same total training epochs (--epochs):

* lnp: lnp_prune (all four steps) on the untrained network, then --epochs of training with the
  pruned weights held at zero;
* lnp -synapses / -neurons / -delocalise / -optimise: the same with one step replaced by its
  random counterpart at the same budget (uniform synapses, random neurons, no added synapses
  [their budget goes to step 1], time constants kept);
* random: every step random (random neurons, uniform synapses), then --epochs of training;
* activity: the dense network trained --epochs minus --finetune, its least active neurons
  removed (spike counts on --calib training samples) and its recurrent synapses activity-pruned
  (|w| x presynaptic rate) to the same counts, fine-tuned --finetune epochs;
* dense: the unpruned network trained --epochs (context only: more neurons and synapses).

    python benchmarks/lnp.py              # 5 seeds x 2 tasks, 1 thread, a few minutes
    python benchmarks/lnp.py --seeds 1 --epochs 2 --out /tmp/lnp.json   # smoke run
    python benchmarks/lnp.py --render     # docs tables and plot from the JSON only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "lnp.json"
DOCS = (ROOT / "docs" / "lnp.md", ROOT / "docs" / "benchmarks.md")
PLOT = ROOT / "docs" / "img" / "lnp_accuracy.png"
SYN_NODES = ("fc1", "rec1", "fc_out")
TASKS = ("digits-seq", "digits-pseq")
LNP_ARMS = {  # arm -> the lnp_prune switches turned off
    "lnp": (),
    "lnp -synapses": ("noise_synapses",),
    "lnp -neurons": ("betweenness",),
    "lnp -delocalise": ("delocalise",),
    "lnp -optimise": ("optimise",),
    "random": ("noise_synapses", "betweenness", "delocalise", "optimise"),
}
ARMS = (*LNP_ARMS, "activity", "dense")


def _synapses(graph) -> dict[str, int]:
    return {n: int(np.count_nonzero(graph.nodes[n].weight)) for n in SYN_NODES}


def _neurons(graph) -> int:
    return int(np.asarray(graph.nodes["lif1"].v_threshold).size)


def _masked_model(graph):
    """Torch model of the graph whose zero weights stay zero under training."""
    import torch

    from neurocompile.train.export import from_nir

    meta = dict(graph.metadata)
    cfg = json.loads(str(meta["model_config"]))
    cfg["n_hidden"] = _neurons(graph)
    meta["model_config"] = json.dumps(cfg)
    graph.metadata = meta
    model = from_nir(graph, dtype=torch.float32)
    for name in SYN_NODES:
        w = getattr(model, name).weight
        mask = (w.detach() != 0).to(w.dtype)
        w.register_hook(lambda g, m=mask: g * m)
    return model


def _train(graph, data, epochs: int, seed: int):
    """(trained graph, test accuracy) after `epochs` epochs of Adam (best validation epoch)."""
    from neurocompile.models import classify
    from neurocompile.train.export import to_nir
    from neurocompile.train.loop import TrainConfig, evaluate, fit

    model = _masked_model(graph)
    if epochs > 0:
        cfg = TrainConfig(model="hrsnn", epochs=epochs, batch_size=64, seed=seed,
                          patience=None, progress=False)
        model, _ = fit(cfg, data=data, model_factory=lambda c, d: model)
    return to_nir(model), float(evaluate(model, data.test, classify)["acc"])


def _events(graph, data) -> float:
    from neurocompile.targets.reference import simulate

    res = simulate(graph, {"input": data.test.x.astype(np.float64)})
    return res.total("synaptic_events") / len(data.test)


def _row(graph, acc: float, data, **extra) -> dict:
    syn = _synapses(graph)
    return {"acc": acc, "neurons": _neurons(graph), "synapses": sum(syn.values()),
            "rec_synapses": syn["rec1"], "events": _events(graph, data), **extra}


def _activity_arm(g0, data, args, n_keep: int, rec_budget: int, seed: int) -> dict:
    from neurocompile.analysis import record_activity
    from neurocompile.passes.lnp_graph import find_recurrent_population, remove_neurons
    from neurocompile.passes.prune import activity_prune

    g_dense, _ = _train(g0, data, args.epochs - args.finetune, seed)
    calib = {"input": data.train.x[: args.calib].astype(np.float64)}
    act = record_activity(g_dense, calib)
    pop = find_recurrent_population(g_dense)
    keep = np.sort(np.argsort(-np.asarray(act["lif1"]).reshape(-1), kind="stable")[:n_keep])
    g_small = remove_neurons(g_dense, pop, keep)
    nnz = int(np.count_nonzero(g_small.nodes["rec1"].weight))
    g_act, _ = activity_prune(g_small, record_activity(g_small, calib), 1.0 - rec_budget / nnz,
                              scope="layer", nodes=["rec1"])
    g_tr, acc = _train(g_act, data, args.finetune, seed)
    return _row(g_tr, acc, data)


def run_seed(task: str, seed: int, args, data) -> dict:
    import torch

    from neurocompile.models import build_model
    from neurocompile.passes.lnp import lnp_prune
    from neurocompile.train.export import to_nir

    torch.manual_seed(seed)
    g0 = to_nir(build_model("hrsnn", seed=seed, n_in=data.n_features, n_out=data.n_classes,
                            n_hidden=args.hidden))
    out: dict = {"task": task, "seed": seed}
    for arm, off in LNP_ARMS.items():
        t0 = time.perf_counter()
        g, rep = lnp_prune(g0, args.rec_sparsity, neuron_sparsity=args.neuron_sparsity,
                           trials=args.trials, timeout_s=args.timeout, seed=seed,
                           **{k: False for k in off})
        prune_s = time.perf_counter() - t0
        g_tr, acc = _train(g, data, args.epochs, seed)
        ex = rep.row("lif1").extra
        out[arm] = _row(g_tr, acc, data, prune_s=prune_s, mle_before=ex["mle_before"],
                        mle_after=ex["mle_after"], steps=rep.lnp["steps"])
    n_keep, rec_budget = out["lnp"]["neurons"], out["lnp"]["rec_synapses"]
    out["activity"] = _activity_arm(g0, data, args, n_keep, rec_budget, seed)
    g_tr, acc = _train(g0, data, args.epochs, seed)
    out["dense"] = _row(g_tr, acc, data)
    for arm in ARMS[:-1]:  # the budgets are equal by construction: check it
        for key in ("neurons", "synapses"):
            if out[arm][key] != out["lnp"][key]:
                raise RuntimeError(f"{task} seed {seed}: {arm} has {out[arm][key]} {key}, "
                                   f"lnp {out['lnp'][key]}")
    return out


def _stats(rows: list[dict], arm: str, key: str) -> tuple[float, float]:
    vals = [float(r[arm][key]) for r in rows]
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for task in TASKS:
        sub = [r for r in rows if r["task"] == task]
        if not sub:
            continue
        for arm in ARMS:
            row = {"task": task, "arm": arm}
            for key in ("acc", "neurons", "synapses", "events"):
                row[key], row[key + "_std"] = _stats(sub, arm, key)
            if "mle_after" in sub[0][arm]:
                row["mle_after"] = _stats(sub, arm, "mle_after")[0]
                row["prune_s"] = _stats(sub, arm, "prune_s")[0]
            # Paired difference to LNP over seeds (same initial network per seed).
            diffs = [r["lnp"]["acc"] - r[arm]["acc"] for r in sub]
            row["lnp_minus_arm"] = statistics.mean(diffs)
            row["lnp_minus_arm_se"] = (statistics.stdev(diffs) / len(diffs) ** 0.5
                                       if len(diffs) > 1 else 0.0)
            row["lnp_wins"] = sum(d > 0 for d in diffs)
            table.append(row)
    return table


def step_details(result: dict) -> list[str]:
    """What each LNP step did in the full-LNP arm, averaged over seeds (from the JSON)."""
    rows = [r["lnp"]["steps"] for r in result["per_seed"]
            if r["task"] == TASKS[0] and "steps" in r["lnp"]]
    if not rows:
        return []

    def mean(f):
        return statistics.mean(f(r) for r in rows)

    return [
        f"* Steps of full LNP (mean over the {len(rows)} seeds; pruning is task-agnostic, so "
        f"both tasks get the same networks): step 2 kept neurons of mean betweenness "
        f"{mean(lambda r: r['neurons']['kept_mean_bc']):.4f} and removed ones of "
        f"{mean(lambda r: r['neurons']['removed_mean_bc']):.4f}; step 1 rescaled the kept "
        f"synapses by {mean(lambda r: r['synapses']['scale']):.3f} after the 1/p weights "
        f"(largest 1/p {mean(lambda r: r['synapses']['max_gain']):.1f}); step 3 added "
        f"{mean(lambda r: r['delocalise']['added']):.0f} synapses and lowered the IPR from "
        f"{mean(lambda r: r['delocalise']['ipr_before']):.4f} to "
        f"{mean(lambda r: r['delocalise']['ipr_after']):.4f}; step 4 ran "
        f"{mean(lambda r: r['timescales']['trials']):.0f} trials and moved lambda_1 from "
        f"{mean(lambda r: r['timescales']['mle_start']):+.4f} to "
        f"{mean(lambda r: r['timescales']['mle_best']):+.4f} nats/step (target "
        f"{rows[0]['timescales']['target_mle']:+.3f}) with tau_mem x "
        f"{mean(lambda r: r['timescales']['best']['tau_mem_scale']):.2f}, tau_syn x "
        f"{mean(lambda r: r['timescales']['best']['tau_syn_scale']):.2f}, recurrent gain x "
        f"{mean(lambda r: r['timescales']['best']['gain_scale']):.2f}."]


def markdown(result: dict, arms: tuple[str, ...] = ARMS) -> str:
    """The results table of docs/lnp.md (all arms) or docs/benchmarks.md (a few), from the
    JSON alone."""
    a = result["args"]
    lines = [f"Measured by `benchmarks/lnp.py` ({result['machine']['cpu']}, 1 thread, "
             f"torch {result['torch']}, {result['wall_s']:.0f} s wall): HRSNN {a['hidden']} "
             f"CubaLIF neurons pruned to {result['table'][0]['neurons']:.0f}, recurrent "
             f"sparsity {a['rec_sparsity']}, {a['epochs']} training epochs per arm "
             f"(activity: {a['epochs'] - a['finetune']} dense + {a['finetune']} fine-tune), "
             f"{a['seeds']} seeds; mean ± std. \"LNP − arm\": mean paired accuracy difference, "
             f"and on how many seeds LNP was better.", "",
             "| task | arm | test accuracy | LNP − arm (wins) | neurons | synapses "
             "| events / sample | MLE after pruning |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["table"]:
        if r["arm"] not in arms:
            continue
        mle = f"{r['mle_after']:+.4f}" if "mle_after" in r else ""
        diff = "" if r["arm"] == "lnp" else f"{r['lnp_minus_arm']:+.3f} ({r['lnp_wins']}/{a['seeds']})"
        lines.append(f"| {r['task']} | {r['arm']} | {r['acc']:.3f} ± {r['acc_std']:.3f} | {diff} "
                     f"| {r['neurons']:.0f} | {r['synapses']:.0f} | {r['events']:.0f} | {mle} |")
    lines.append("")
    for task in TASKS:
        rows = {r["arm"]: r for r in result["table"] if r["task"] == task}
        if not rows:
            continue
        lines.append(f"* {task}: " + _verdict(rows, a["seeds"]))
    lnp_rows = [r for r in result["table"] if r["arm"] == "lnp"]
    opt_rows = [r for r in result["table"] if r["arm"] == "lnp -optimise"]
    if lnp_rows and opt_rows:
        t_all = statistics.mean(r["prune_s"] for r in lnp_rows)
        t_opt = statistics.mean(r["prune_s"] for r in opt_rows)
        prune = sum(r[a]["prune_s"] for r in result["per_seed"] for a in LNP_ARMS)
        lines.append(f"* Time: LNP took {t_all:.1f} s per network, {t_all - t_opt:.1f} s of it "
                     f"in step 4 (optuna, {a['trials']} trials at most); pruning in all "
                     f"{len(LNP_ARMS)} LNP-style arms took {prune:.0f} s of the "
                     f"{result['wall_s']:.0f} s run, the rest is training and evaluation.")
    if arms == ARMS:
        lines += step_details(result)
    return "\n".join(lines) + "\n"


def _verdict(rows: dict[str, dict], seeds: int) -> str:
    """One sentence per task: LNP against activity and random pruning, with the paired
    standard error, and how the one-step ablations compare (all from the table)."""
    def vs(arm: str) -> str:
        r = rows[arm]
        d, se = r["lnp_minus_arm"], r["lnp_minus_arm_se"]
        sig = "" if abs(d) > 2 * se else ", within 2 standard errors of zero"
        return (f"{arm} {r['acc']:.3f}: LNP − {arm} = {d:+.3f} ± {se:.3f} (LNP better on "
                f"{r['lnp_wins']}/{seeds} seeds{sig})")
    act = rows["activity"]
    met = act["lnp_minus_arm"] > 2 * act["lnp_minus_arm_se"]
    ablations = [a for a in LNP_ARMS if a.startswith("lnp -")]
    above = [a for a in ablations if rows[a]["acc"] >= rows["lnp"]["acc"]]
    return (f"LNP {rows['lnp']['acc']:.3f}; {vs('activity')}; {vs('random')}. The paper's claim "
            f"that LNP beats activity pruning is **{'met' if met else 'missed'}** here (met = "
            f"better by more than 2 standard errors). {len(above)} of {len(ablations)} "
            f"one-step ablations score at or above full LNP"
            + (f" ({', '.join(above)})." if above else "."))


def _replace_block(path: Path, text: str) -> None:
    from neurocompile.ir.io import write_text

    src = path.read_text()
    begin, end = "<!-- BEGIN lnp results (benchmarks/lnp.py --render) -->", "<!-- END lnp results -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(src):
        raise SystemExit(f"{path}: no '{begin}' block to fill")
    write_text(path, pattern.sub(lambda m: f"{begin}\n{text}{end}", src))


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(10, 3.6), sharey=True)
    for ax, task in zip(axes, TASKS):
        rows = [r for r in result["table"] if r["task"] == task]
        names = [r["arm"] for r in rows]
        means = [r["acc"] for r in rows]
        stds = [r["acc_std"] for r in rows]
        colors = ["C0" if n.startswith("lnp") else "C1" if n == "random" else
                  "C2" if n == "activity" else "0.6" for n in names]
        ax.bar(range(len(rows)), means, yerr=stds, color=colors, capsize=3)
        for r in result["per_seed"]:
            if r["task"] == task:
                ax.plot(range(len(names)), [r[n]["acc"] for n in names], ".", color="k", ms=3)
        ax.set_xticks(range(len(rows)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(task)
        ax.set_ylabel("test accuracy")
    fig.suptitle("LNP vs random vs activity pruning (equal neurons, synapses, epochs)")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def render(result: dict, path: Path) -> None:
    """Recompute the summary from the per-seed rows (into the JSON), then the docs and plot."""
    from neurocompile.ir.io import write_text

    result["table"] = summarise(result["per_seed"])
    write_text(path, json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    _replace_block(DOCS[0], text)
    _replace_block(DOCS[1], markdown(result, ("lnp", "random", "activity")))
    plot(result, PLOT)
    print(text)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--rec-sparsity", type=float, default=0.8)
    p.add_argument("--neuron-sparsity", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=6, help="total training epochs of every arm")
    p.add_argument("--finetune", type=int, default=2, help="activity arm: of --epochs, after pruning")
    p.add_argument("--trials", type=int, default=20, help="LNP step 4: optuna trials")
    p.add_argument("--timeout", type=float, default=20.0, help="LNP step 4: seconds at most")
    p.add_argument("--calib", type=int, default=256)
    p.add_argument("--repeat", type=int, default=2, help="steps each row of pixels is shown")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--render", action="store_true",
                   help="only rewrite the docs tables and plot from --out")
    args = p.parse_args(argv)
    if args.render:
        result = json.loads(args.out.read_text())
        render(result, args.out)
        return result
    if not 0 <= args.finetune < args.epochs:
        p.error("--finetune must be in [0, --epochs)")

    import torch
    from _machine import machine
    from threadpoolctl import threadpool_limits

    from neurocompile.data import load_dataset
    from neurocompile.ir.io import write_text

    torch.set_num_threads(1)
    threadpool_limits(1)  # NumPy/SciPy BLAS too: one thread, whatever the environment says
    t0 = time.perf_counter()
    rows = []
    for task in args.tasks.split(","):
        data = load_dataset(task, pixels_per_step=8, repeat=args.repeat)
        for s in range(args.seeds):
            rows.append(run_seed(task, s, args, data))
            print(f"{task} seed {s}: " + ", ".join(f"{a} {rows[-1][a]['acc']:.3f}" for a in ARMS),
                  flush=True)
    wall = time.perf_counter() - t0
    result = {"benchmark": "lnp", "machine": machine(), "torch": torch.__version__,
              "threads": 1,
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                       if k not in ("out", "render")},
              "task": f"pixels_per_step=8, repeat={args.repeat}", "wall_s": wall,
              "table": summarise(rows), "per_seed": rows}
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
