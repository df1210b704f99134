"""Sparse spiking backward vs dense BPTT: backward time, memory, and training accuracy.

Timing (default): one Linear -> LIF layer, 700 inputs (SHD-sized), hidden 200/400/1000,
T = 100 and 500, batch 256 (reduce with --batch on CPU), at 1%, 2% and 5% of entries in the
band (the weight mean is calibrated per row to reach each fraction). Three backward passes of
the same forward dynamics and the same surrogate, side by side in one run:

* autograd: BPTT through the recorded time loop (the usual surrogate-gradient training),
* dense:    the closed-form backward of SparseLIFFunction on dense tensors,
* sparse:   the closed-form backward on the active set |v - v_th| < b_th only.

`--input-grad` also times dL/dx (a hidden layer fed by another sparse layer; its active mask is
drawn with this layer's measured active fraction). Memory: bytes saved for backward (all
devices, through saved-tensor hooks) and, on CUDA, peak allocated during backward above what
was allocated when it started.

Accuracy (`--accuracy`): the digits task (sklearn digits, rate-coded), SparseLIF hidden layer and
a leaky-integrator readout, trained with the dense and the sparse backward over several seeds.

    python benchmarks/sparse_bptt.py --device cpu --batch 16 --hidden 200 400 --steps 100 \\
        --repeats 2
    python benchmarks/sparse_bptt.py --device cuda --input-grad
    python benchmarks/sparse_bptt.py --accuracy --seeds 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from _machine import machine as cpu_machine  # noqa: E402

from neurocompile.models import sparse_backward as sb  # noqa: E402
from neurocompile.models import sparse_kernels as sk  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PAPER = {  # Perez-Nieves & Goodman, NeurIPS 2021, abstract and Fig. 2 (GTX 1060 / 1080 Ti)
    "backward_speedup_max": 150, "memory_saved_max": 0.85,
}
GOALS = {"speedup_vs_dense_at_2pct": 2.0, "speedup_vs_dense_at_5pct": 1.0}


def machine(device: str) -> dict:
    """Name the machine the numbers come from."""
    info = {**cpu_machine(), "node": platform.node(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "device": device,
            "triton": bool(sk.USE_TRITON)}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = list(os.getloadavg())
    return info


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def saved_bytes(fn):
    """Run fn() and count the bytes autograd saves for backward (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


def make_inputs(batch, steps, n_in, hidden, device, seed, p_in, w_mean, w_std):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = (torch.rand(batch, steps, n_in, generator=g) < p_in).float().to(device)
    w = (torch.randn(hidden, n_in, generator=g) * w_std + w_mean).to(device)
    b = torch.zeros(hidden, device=device)
    r = torch.randn(batch, steps, hidden, generator=g).to(device)
    return x, w, b, r


def active_fraction(x, w, b, step, b_th) -> float:
    with torch.no_grad():
        _, act = sb.sparse_lif(x, w, b, step, b_th=b_th)
    return act.float().mean().item()


def calibrate(target, steps, hidden, args) -> float:
    """The weight mean giving about `target` active entries (bisection on a probe batch)."""
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    probe = min(args.batch, 32)
    x = (torch.rand(probe, steps, args.n_in, generator=g) < args.p_in).float().to(args.device)
    z = torch.randn(hidden, args.n_in, generator=g).to(args.device) * args.w_std
    b = torch.zeros(hidden, device=args.device)
    step = sb.lif_step(hidden, tau_mem=args.tau_mem, dt=args.dt)
    lo, hi = -0.1, 0.1
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        if active_fraction(x, z + mid, b, step, args.b_th) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def time_method(method, x, w, b, r, step, b_th, beta, repeats, device, input_grad, in_mask):
    """Median backward time (s), saved bytes, CUDA backward peak (bytes), forward time (s)."""
    times, fwd_times, peak = [], [], None
    saved = 0
    for _ in range(repeats + 1):  # first run warms up
        W = w.clone().requires_grad_(True)
        Bb = b.clone().requires_grad_(True)
        X = x.clone().requires_grad_(input_grad)
        sync(device)
        t0 = time.perf_counter()
        if method == "autograd":
            s, saved = saved_bytes(lambda W=W, Bb=Bb, X=X: sb.dense_lif_reference(
                X, W, Bb, step, b_th=None, beta=beta))
        else:
            mode = "sparse" if method == "sparse" else "dense"
            band = b_th if method == "sparse" else math.inf
            ia = in_mask if (input_grad and method == "sparse") else None
            (s, _), saved = saved_bytes(lambda W=W, Bb=Bb, X=X, mode=mode, band=band, ia=ia:
                                        sb.sparse_lif(X, W, Bb, step, b_th=band, beta=beta,
                                                      mode=mode, input_active=ia))
        loss = (s * r).sum()
        sync(device)
        t1 = time.perf_counter()
        if device == "cuda":
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        if device == "cuda":
            peak = torch.cuda.max_memory_allocated() - base
        times.append(t2 - t1)
        fwd_times.append(t1 - t0)
        del s, loss, W, Bb, X
    return statistics.median(times[1:]), saved, peak, statistics.median(fwd_times[1:])


def run_timing(args) -> dict:
    device = args.device
    rows = []
    targets = args.active if args.active else [None]
    for steps in args.steps:
        for hidden in args.hidden:
            for target in targets:
                w_mean = args.w_mean if target is None else calibrate(target, steps, hidden, args)
                x, w, b, r = make_inputs(args.batch, steps, args.n_in, hidden, device,
                                         args.seed, args.p_in, w_mean, args.w_std)
                step = sb.lif_step(hidden, tau_mem=args.tau_mem, dt=args.dt)
                with torch.no_grad():
                    s, act = sb.sparse_lif(x, w, b, step, b_th=args.b_th)
                active = act.float().mean().item()
                rate = s.mean().item()
                g = torch.Generator(device="cpu").manual_seed(args.seed + 1)
                in_mask = (torch.rand(x.shape, generator=g) < active).to(device)
                del s, act
                for input_grad in ([False, True] if args.input_grad else [False]):
                    res = {}
                    for method in args.methods:
                        reps = args.autograd_repeats if method == "autograd" else args.repeats
                        res[method] = time_method(method, x, w, b, r, step, args.b_th,
                                                  args.beta, reps, device, input_grad, in_mask)
                    row = {"steps": steps, "hidden": hidden, "n_in": args.n_in,
                           "batch": args.batch, "input_grad": input_grad,
                           "target_active": target, "w_mean": w_mean,
                           "active_fraction": active, "spike_rate": rate}
                    for m, (tb, saved, peak, tf) in res.items():
                        row[f"{m}_backward_s"] = tb
                        row[f"{m}_forward_s"] = tf
                        row[f"{m}_saved_bytes"] = saved
                        if peak is not None:
                            row[f"{m}_backward_peak_bytes"] = peak
                    if "sparse" in res:
                        for m in res:
                            if m == "sparse":
                                continue
                            row[f"speedup_vs_{m}"] = res[m][0] / res["sparse"][0]
                            row[f"saved_memory_reduction_vs_{m}"] = \
                                1 - res["sparse"][1] / res[m][1]
                            if res[m][2]:
                                row[f"peak_memory_reduction_vs_{m}"] = \
                                    1 - res["sparse"][2] / res[m][2]
                    rows.append(row)
                    print_row(row, args.methods)
                del x, w, b, r, in_mask
                if device == "cuda":
                    torch.cuda.empty_cache()
    print(markdown_table(rows, args.methods))
    return {"machine": machine(device), "config": {
        k: v for k, v in vars(args).items() if k not in ("out",)}, "paper": PAPER,
        "goals": GOALS, "rows": rows}


def print_row(row: dict, methods) -> None:
    parts = [f"T={row['steps']:4d} N={row['hidden']:5d} B={row['batch']} "
             f"dx={'y' if row['input_grad'] else 'n'} act={row['active_fraction']:.3f}"]
    for m in methods:
        parts.append(f"{m}={row[f'{m}_backward_s'] * 1e3:8.2f}ms "
                     f"saved={row[f'{m}_saved_bytes'] / 2**20:7.1f}MiB"
                     + (f" peak={row[f'{m}_backward_peak_bytes'] / 2**20:7.1f}MiB"
                        if f"{m}_backward_peak_bytes" in row else ""))
    for m in methods:
        if m != "sparse" and f"speedup_vs_{m}" in row:
            parts.append(f"x{row[f'speedup_vs_{m}']:.2f} vs {m}")
    print(" | ".join(parts), flush=True)


def markdown_table(rows: list[dict], methods) -> str:
    """The rows as the Markdown table of docs/sparse_backward.md (ms, MiB)."""
    mib = 2**20
    has_peak = all(f"{m}_backward_peak_bytes" in r for r in rows for m in methods)
    head = ["T", "N", "dL/dx", "active"] + [f"{m} ms" for m in methods]
    others = [m for m in methods if m != "sparse"]
    head += [f"x vs {m}" for m in others] + ["saved MiB " + "/".join(m[0] for m in methods)]
    if has_peak:
        head += ["bwd peak MiB " + "/".join(m[0] for m in methods)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["steps"]), str(r["hidden"]), "yes" if r["input_grad"] else "no",
                 f"{100 * r['active_fraction']:.1f}%"]
        cells += [f"{r[f'{m}_backward_s'] * 1e3:.2f}" for m in methods]
        cells += [f"{r.get(f'speedup_vs_{m}', float('nan')):.2f}" for m in others]
        cells += [" / ".join(f"{r[f'{m}_saved_bytes'] / mib:.0f}" for m in methods)]
        if has_peak:
            cells += [" / ".join(f"{r[f'{m}_backward_peak_bytes'] / mib:.0f}" for m in methods)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Accuracy on the digits task
# ------------------------------------------------------------------------------------------

def digits_data(steps: int, seed: int):
    """Digits splits from neurocompile.data.digits (rate-coded)."""
    from neurocompile.data.digits import load_digits_task

    d = load_digits_task("rate", steps=steps, seed=seed)
    return d.train, d.test


def train_digits(sparse: bool, seed: int, args) -> dict:
    """Train SparseLIF(64->H) + LI readout; test accuracy at the end."""
    torch.manual_seed(seed)
    train, test = digits_data(args.acc_steps, seed)
    xtr, ytr = torch.tensor(train.x), torch.tensor(train.y).long()
    xte, yte = torch.tensor(test.x), torch.tensor(test.y).long()
    hidden = args.acc_hidden
    layer = sb.SparseLIF(xtr.shape[2], hidden, tau_mem=args.tau_mem, dt=args.dt,
                         sparse_backward=sparse, b_th=args.b_th if sparse else math.inf,
                         beta=args.beta)
    with torch.no_grad():
        layer.fc.weight.mul_(args.acc_w_scale)
    readout = torch.nn.Linear(hidden, 10)
    keep = 1.0 - args.dt / args.tau_readout
    params = list(layer.parameters()) + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    gen = torch.Generator().manual_seed(seed)

    def logits(x):
        s = layer(x)
        h = readout(s)
        v = torch.zeros_like(h[:, 0])
        out = []
        for t in range(h.shape[1]):
            v = keep * v + (1 - keep) * h[:, t]
            out.append(v)
        return torch.stack(out, 1).max(1).values, s

    active_fracs = []
    for _ in range(args.epochs):
        perm = torch.randperm(len(ytr), generator=gen)
        for k in range(0, len(perm), args.acc_batch):
            i = perm[k:k + args.acc_batch]
            out, _ = logits(xtr[i])
            loss = torch.nn.functional.cross_entropy(out, ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            active_fracs.append(layer.last_active.float().mean().item())
    with torch.no_grad():
        out, s = logits(xte)
        acc = (out.argmax(1) == yte).float().mean().item()
    return {"accuracy": acc, "mean_active_fraction": float(np.mean(active_fracs)),
            "test_spike_rate": s.mean().item()}


def run_accuracy(args) -> dict:
    res = {"dense": [], "sparse": []}
    for seed in range(args.seeds):
        for name in ("dense", "sparse"):
            t0 = time.perf_counter()
            r = train_digits(name == "sparse", seed, args)
            r["seed"], r["train_s"] = seed, time.perf_counter() - t0
            res[name].append(r)
            print(f"seed {seed} {name:6s} acc={r['accuracy']:.4f} "
                  f"active={r['mean_active_fraction']:.3f} ({r['train_s']:.0f}s)", flush=True)
    summary = {k: float(np.mean([r["accuracy"] for r in v])) for k, v in res.items()}
    summary["difference_points"] = 100 * (summary["sparse"] - summary["dense"])
    print(f"mean accuracy: dense {summary['dense']:.4f}  sparse {summary['sparse']:.4f}  "
          f"(sparse - dense = {summary['difference_points']:+.2f} points)")
    return {"machine": machine("cpu"), "config": {
        k: v for k, v in vars(args).items() if k not in ("out",)}, "runs": res,
        "summary": summary}


def write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2)
    try:
        from neurocompile.ir.io import atomic_path
    except ImportError:  # a GPU machine without nir/h5py: temporary file, then rename
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, nargs="+", default=[200, 400, 1000])
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--n-in", type=int, default=700)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--autograd-repeats", type=int, default=3)
    ap.add_argument("--active", type=float, nargs="*", default=[0.01, 0.02, 0.05],
                    help="target active fractions (calibrates the weight mean); none: --w-mean")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--methods", nargs="+", default=["autograd", "dense", "sparse"])
    ap.add_argument("--input-grad", action="store_true")
    ap.add_argument("--p-in", type=float, default=0.02, help="input spike probability per step")
    ap.add_argument("--w-mean", type=float, default=0.02, help="used when --active is empty")
    ap.add_argument("--w-std", type=float, default=0.5)
    ap.add_argument("--tau-mem", type=float, default=10e-3)
    ap.add_argument("--tau-readout", type=float, default=20e-3)
    ap.add_argument("--dt", type=float, default=1e-3)
    ap.add_argument("--b-th", type=float, default=sb.PAPER_BAND)
    ap.add_argument("--beta", type=float, default=sb.PAPER_BETA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--accuracy", action="store_true", help="digits accuracy parity instead")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--acc-steps", type=int, default=20)
    ap.add_argument("--acc-hidden", type=int, default=128)
    ap.add_argument("--acc-batch", type=int, default=64)
    ap.add_argument("--acc-w-scale", type=float, default=8.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--profile", action="store_true", help="print where sparse backward spends")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.accuracy:
        data = run_accuracy(args)
        write_json(args.out or RESULTS / "sparse_bptt_accuracy.json", data)
        return
    if args.device == "cuda" and sk.USE_TRITON:
        check_triton()
    if args.profile:
        profile_sparse(args)
        return
    data = run_timing(args)
    write_json(args.out or RESULTS / f"sparse_bptt_{args.device}.json", data)


def profile_sparse(args) -> None:
    """Operator table of one sparse backward per largest hidden and longest T, with dL/dx."""
    from torch.profiler import ProfilerActivity, profile

    hidden, steps = max(args.hidden), max(args.steps)
    target = (args.active or [None])[0]
    w_mean = args.w_mean if target is None else calibrate(target, steps, hidden, args)
    x, w, b, r = make_inputs(args.batch, steps, args.n_in, hidden, args.device, args.seed,
                             args.p_in, w_mean, args.w_std)
    step = sb.lif_step(hidden, tau_mem=args.tau_mem, dt=args.dt)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    for k in range(2):
        W = w.clone().requires_grad_(True)
        X = x.clone().requires_grad_(args.input_grad)
        s, act = sb.sparse_lif(X, W, b, step, b_th=args.b_th)
        loss = (s * r).sum()
        sync(args.device)
        if k == 0:
            loss.backward()
            continue
        with profile(activities=acts) as prof:
            loss.backward()
            sync(args.device)
    active = act.float().mean().item()
    print(f"active fraction {active:.4f}")
    key = "cuda_time_total" if args.device == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=20))
    on_gpu = args.device == "cuda"
    rows = [{"name": e.key, "calls": e.count,
             "self_cuda_ms" if on_gpu else "self_cpu_ms":
                 (e.self_device_time_total if on_gpu else e.self_cpu_time_total) / 1e3,
             "cuda_total_ms" if on_gpu else "cpu_total_ms":
                 (e.device_time_total if on_gpu else e.cpu_time_total) / 1e3}
            for e in prof.key_averages()]
    rows.sort(key=lambda r: -r["cuda_total_ms" if on_gpu else "cpu_total_ms"])
    write_json(args.out or RESULTS / f"sparse_bptt_{args.device}_profile.json", {
        "machine": machine(args.device), "command": " ".join(sys.argv),
        "config": {"batch": args.batch, "steps": steps, "hidden": hidden, "n_in": args.n_in,
                   "input_grad": args.input_grad, "target_active": target},
        "active_fraction": active, "rows": rows[:20]})


def check_triton() -> None:
    """On CUDA: the Triton kernels must give the torch versions' spikes and gradients."""
    try:
        for n_in, kind in ((50, "cuba"), (700, "lif")):
            x, w, b, r = make_inputs(8, 64, n_in, 40, "cuda", 3, 0.1, 0.05, 0.5)
            step = sb.lif_step(40, tau_mem=10e-3, tau_syn=5e-3 if kind == "cuba" else None)
            ia = torch.rand(x.shape, device="cuda") < 0.3
            out = []
            for force in (False, True):
                W = w.clone().requires_grad_(True)
                X = x.clone().requires_grad_(True)
                s, _ = sb.sparse_lif(X, W, b, step, b_th=0.2, force_torch=force, input_active=ia)
                (s * r).sum().backward()
                out.append((s.detach(), W.grad, X.grad))
                W = w.clone().requires_grad_(True)  # dW without dL/dx (trace saved)
                s, _ = sb.sparse_lif(x, W, b, step, b_th=0.2, force_torch=force)
                (s * r).sum().backward()
                out[-1] += (W.grad,)
            assert torch.equal(out[0][0], out[1][0]), "spikes differ"
            for a, c in zip(out[0][1:], out[1][1:], strict=True):
                assert torch.allclose(a, c, rtol=1e-4, atol=1e-4), (a - c).abs().max().item()
            W = w.clone().requires_grad_(True)
            X = x.clone().requires_grad_(True)
            s_ref = sb.dense_lif_reference(X, W, b, step, b_th=0.2)
            (s_ref * r).sum().backward()
            assert torch.equal(s_ref.detach(), out[0][0]), "spikes differ from autograd"
            assert torch.allclose(W.grad, out[0][1], rtol=1e-4, atol=1e-4)
            assert torch.allclose(X.grad * ia, out[0][2], rtol=1e-4, atol=1e-4)
        print("triton kernels: equal to the torch versions and to masked autograd BPTT")
    except Exception as e:  # noqa: BLE001 - report and fall back
        print(f"triton kernels disabled: {type(e).__name__}: {e}")
        sk.USE_TRITON = False

if __name__ == "__main__":
    main()
