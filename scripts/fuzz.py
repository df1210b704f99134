"""Fuzz every command with malformed inputs; write the summary as JSON.

Each case is a command line over files made for it (graphs with broken parameters, shapes,
edges or metadata; damaged, special and bomb files; bad inputs, configs, manifests and option
values), run in a fresh directory through the CLI's entry point. A case passes when it exits 2
with one line on stderr, writes no file, leaves no child process, and the canary program that
several inputs name was never executed. Usage:

    python scripts/fuzz.py [--cases 1200] [--seed 0] [--out benchmarks/results/fuzz.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import h5py
import nir
import numpy as np

from neurocompile.cli.main import main
from neurocompile.ir.io import save_graph, save_spikes

CASE_TIMEOUT_S = 20
BAD_NUMBERS = [np.nan, np.inf, -np.inf, 1e308 * 10, "text", 1 + 2j, [], [[1.0]], -1.0, 0.0]


# -- base material --------------------------------------------------------------------------
def base_graph(rng: np.random.Generator, recurrent: bool = False) -> nir.NIRGraph:
    """input(4) -> fc -> lif(5) [-> rec -> lif] -> out -> li(2) -> output."""
    nodes = {
        "input": nir.Input(input_type=np.array([4])),
        "fc": nir.Affine(weight=rng.normal(0, 1, (5, 4)), bias=np.zeros(5)),
        "lif": nir.LIF(tau=np.full(5, 4e-3), r=np.ones(5), v_leak=np.zeros(5),
                       v_threshold=np.full(5, 0.3)),
        "out": nir.Linear(weight=rng.normal(0, 1, (2, 5))),
        "li": nir.LI(tau=np.full(2, 5e-3), r=np.ones(2), v_leak=np.zeros(2)),
        "output": nir.Output(output_type=np.array([2])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "out"), ("out", "li"), ("li", "output")]
    if recurrent:
        nodes["rec"] = nir.Linear(weight=rng.normal(0, 0.5, (5, 5)))
        edges += [("lif", "rec"), ("rec", "lif")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3})


def good_input(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"input": (rng.random((2, 8, 4)) < 0.4).astype(np.float64)}


# -- mutations (each yields an invalid file) --------------------------------------------------
def _replace(f: h5py.File, path: str, value) -> None:
    del f[path]
    if isinstance(value, str):
        f[path] = value
    else:
        f[path] = np.asarray(value)


def graph_mutations(rng: random.Random) -> list[tuple[str, callable]]:
    """(label, fn(h5 file)) that make a saved base graph invalid."""
    muts = []
    params = {"fc": ["weight", "bias"], "lif": ["tau", "r", "v_leak", "v_threshold"],
              "out": ["weight"], "li": ["tau", "r", "v_leak"]}
    for node, names in params.items():
        for name in names:
            for bad in BAD_NUMBERS:
                if bad in (-1.0, 0.0) and name not in ("tau",):
                    continue
                if isinstance(bad, list) and bad == [[1.0]] and name in ("tau", "r", "v_leak",
                                                                          "v_threshold"):
                    bad = [[1.0, 2.0]]
                muts.append((f"{node}.{name}={bad!r}", _set_param(node, name, bad)))
            muts.append((f"{node}.{name} 3-D", _set_param(node, name, np.ones((2, 2, 2)))))
            muts.append((f"{node}.{name} empty", _set_param(node, name, np.zeros((0,)))))
    muts += [("bias wrong length", _set_param("fc", "bias", np.zeros(7))),
             ("no edges", _set_edges([])),
             ("dangling edge", _set_edges([("input", "fc"), ("fc", "ghost")])),
             ("duplicate edge", _set_edges([("input", "fc")] * 2)),
             ("input shape float", _set_type("input", "input_type", np.array([4.5]))),
             ("input shape text", _set_type("input", "input_type", "four")),
             ("input shape negative", _set_type("input", "input_type", np.array([-4]))),
             ("input shape huge", _set_type("input", "input_type", np.array([30_000_000]))),
             ("unknown node type", _set_node_type("lif", "Spiral")),
             ("output shape mismatch", _set_type("output", "output_type", np.array([3]))),
             ("dt text", _set_graph_meta("dt", "soon")),
             ("dt negative", _set_graph_meta("dt", -1.0)),
             ("dt nan", _set_graph_meta("dt", np.nan)),
             ("v_reset", _add_param("lif", "v_reset", np.full(5, 0.2)))]
    return muts


def _node_path(f: h5py.File, node: str) -> str:
    return f"node/nodes/{node}"


def _set_param(node, name, value):
    return lambda f: _replace(f, f"{_node_path(f, node)}/{name}", value)


def _add_param(node, name, value):
    def fn(f):
        path = f"{_node_path(f, node)}/{name}"
        if path in f:
            del f[path]
        f[path] = value
    return fn


def _set_edges(edges):
    def fn(f):
        del f["node/edges"]
        f["node/edges"] = np.array(edges, dtype="S") if edges else np.zeros((0, 2), dtype="S1")
    return fn


def _set_type(node, port, value):
    """NIR files store an Input's or Output's shape as `shape`."""
    return lambda f: _replace(f, f"{_node_path(f, node)}/shape", value)


def _set_node_type(node, kind):
    return lambda f: _replace(f, f"{_node_path(f, node)}/type", kind)


def _set_graph_meta(key, value):
    def fn(f):
        meta = f.require_group("node/metadata")
        if key in meta:
            del meta[key]
        meta[key] = value
    return fn


LOIHI_KEYS = {"fc": ["loihi.num_weight_bits", "loihi.weight_exp"],
              "lif": ["loihi.bias_exp", "loihi.bias_mant", "loihi.du", "loihi.dv",
                      "loihi.state_scale", "loihi.vth"],
              "li": ["loihi.du", "loihi.dv", "loihi.bias_mant"]}
LOIHI_BAD = [np.nan, np.inf, "x", -1, 99999, 2**40, 0.5, [1, 2, 3], 1 + 1j, -0.0 - 5]


def loihi_mutations() -> list[tuple[str, callable]]:
    """(label, fn(h5 file)) corrupting one loihi.* metadata value of a quantized graph."""
    muts = []
    for node, keys in LOIHI_KEYS.items():
        for key in keys:
            for bad in LOIHI_BAD:
                if key == "loihi.state_scale" and bad in (99999, 2**40, 0.5, [1, 2, 3]):
                    continue  # any positive scale is valid
                if key in ("loihi.bias_exp", "loihi.weight_exp", "loihi.bias_mant") and \
                        bad in (-1, -5.0):
                    continue  # negative exponents and mantissas are in range
                if key == "loihi.vth" and bad == 99999:
                    continue  # below 2^17: a valid threshold
                muts.append((f"{node}.{key}={bad!r}",
                             lambda f, n=node, k=key, b=bad: _replace(
                                 f, f"node/nodes/{n}/metadata/{k}", b)))
    return muts


def raw_files() -> list[tuple[str, bytes]]:
    """Files that are not what they claim."""
    return [("empty", b""), ("text", b"hello world\n" * 10), ("truncated hdf5",
             b"\x89HDF\r\n\x1a\n" + b"\0" * 40), ("random", bytes(random.Random(0).randrange(256)
                                                           for _ in range(2000)))]


def input_mutations() -> list[tuple[str, callable]]:
    """(label, fn(path)) writing invalid input data."""
    def arrays(**arrs):
        return lambda p: save_spikes(arrs, p)

    def bomb(p):
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False,
                                                    "shape": (2, 100_000, 100_000)})
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("input.npy", head.getvalue() + b"\0" * 128)

    def object_array(p):
        with zipfile.ZipFile(p, "w") as zf:
            head = io.BytesIO()
            np.lib.format.write_array_header_1_0(head, {"descr": "|O", "fortran_order": False,
                                                        "shape": (2, 8, 4)})
            zf.writestr("input.npy", head.getvalue() + b"\0" * 64)

    return [("wrong key", arrays(inp=np.zeros((2, 8, 4)))),
            ("wrong shape", arrays(input=np.zeros((2, 8, 5)))),
            ("2-D", arrays(input=np.zeros((8, 4)))),
            ("nan", arrays(input=np.full((2, 8, 4), np.nan))),
            ("inf", arrays(input=np.full((2, 8, 4), np.inf))),
            ("complex", arrays(input=np.zeros((2, 8, 4), complex))),
            ("zero batch", arrays(input=np.zeros((0, 8, 4)))),
            ("zero steps", arrays(input=np.zeros((2, 0, 4)))),
            ("empty file", lambda p: p.write_bytes(b"")),
            ("not a zip", lambda p: p.write_bytes(b"PK\x03\x04garbage")),
            ("bomb", bomb), ("object dtype", object_array)]


def config_mutations() -> list[str]:
    """TOML texts that a config loader must refuse."""
    deep = "a = " + "[" * 600 + "]" * 600 + "\n"
    return ["[train]\nlr = inf\n", "[train]\nlam = nan\n", "[train]\npatience = -3\n",
            "[train]\ndensity = 2.0\n", "[train]\nseed = -1\n", "[train]\nepochs = 0\n",
            "[train]\nepochs = \"ten\"\n", "[tarin]\nepochs = 1\n", "[train]\nepochz = 1\n",
            "[prune]\nsparsity = 1.0\n", "[quantize]\nbits = 1\n", "[simulate]\nverify_samples = -1\n",
            "[energy]\nhardware = \"loihi\"\n", "out_dir = 3\n", "[train\n", deep,
            "[train]\nmodel_kwargs = 3\n", "[compile]\ntarget = 7\n", "\0\0\0"]


def manifest_mutations(canary: Path) -> list[tuple[str, callable]]:
    def edit(**changes):
        def fn(m):
            m.update(changes)
            return m
        return fn

    def drop(key):
        def fn(m):
            m.pop(key, None)
            return m
        return fn

    def files(extra):
        def fn(m):
            m["files"] = {**m["files"], **extra}
            return m
        return fn

    return [("python option", edit(options={"python": str(canary)})),
            ("unknown option", edit(options={"fixedpoint": True})),
            ("bad option type", edit(options={"timeout_s": "soon"})),
            ("no files", drop("files")), ("format", edit(format=99)),
            ("traversal", files({"../../etc/passwd": {"sha256": "0"}})),
            ("absolute", files({"/etc/passwd": {"sha256": "0"}})),
            ("dev zero", files({"zero": {"sha256": "0"}})),
            ("bad hash", edit(files={"graph.nir": {"sha256": "0" * 64}})),
            ("target int", edit(target=3)), ("not an object", lambda m: [1, 2])]


# -- running ----------------------------------------------------------------------------------
class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang()


def _children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


def run_case(argv: list[str], workdir: Path, inputs: set[Path]) -> dict:
    """Run one command line; classify what happened."""
    err, out = io.StringIO(), io.StringIO()
    code, kind = None, "clean_error"
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    cwd = os.getcwd()
    os.chdir(workdir)  # a directory holding a planted .venv-lava/bin/python canary
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Hang:
        kind = "hang"
    except BaseException:  # noqa: BLE001 - anything escaping main() is a traceback
        kind = "traceback"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(cwd)
    text = err.getvalue().strip()
    if kind == "clean_error":
        if code == 0:
            kind = "wrong_success"
        elif code == 70 or "Traceback" in text:
            kind = "traceback"
        elif code != 2 or "\n" in text or not text.startswith("error:"):
            kind = "unclean_error"
    written = [str(p.relative_to(workdir)) for p in workdir.rglob("*")
               if p.is_file() and p not in inputs and ".venv-lava" not in p.parts]
    if kind == "clean_error" and written:
        kind = "wrote_files"
    children = _children()
    return {"argv": argv, "kind": kind, "code": code, "stderr": text[:300],
            "written": written[:5], "children": children}


def build_cases(root: Path, n: int, seed: int, canary: Path) -> list[tuple[str, list[str], Path]]:
    """(command, argv, workdir) for n cases, spread over every command."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    gmuts = graph_mutations(rng)
    imuts = input_mutations()
    cmuts = config_mutations()
    mmuts = manifest_mutations(canary)
    commands = ["inspect", "simulate", "prune", "quantize", "compare", "energy", "compile",
                "pipeline", "train", "simulate-artifact", "options"]
    cases = []
    for i in range(n):
        cmd = commands[i % len(commands)]
        work = root / f"case{i:05d}"
        work.mkdir()
        venv = work / ".venv-lava" / "bin"
        venv.mkdir(parents=True)
        (venv / "python").symlink_to(canary)
        good = save_graph(base_graph(nrng, recurrent=rng.random() < 0.5), work / "g.nir")
        x = save_spikes(good_input(nrng), work / "x.npz")
        if cmd in ("inspect", "simulate", "prune", "quantize", "compare", "energy", "compile"):
            kind = rng.random()
            if kind < 0.15 and cmd in ("simulate", "compile", "energy"):  # broken fixed point
                from neurocompile.passes.quantize import quantize_loihi

                label, fn = rng.choice(loihi_mutations())
                bad = save_graph(quantize_loihi(base_graph(nrng))[0], work / "bad.nir")
                with h5py.File(bad, "r+") as f:
                    fn(f)
                graph_arg, input_arg = str(bad), str(x)
            elif kind < 0.7:  # a broken graph
                label, fn = rng.choice(gmuts)
                bad = save_graph(base_graph(nrng), work / "bad.nir")
                with h5py.File(bad, "r+") as f:
                    fn(f)
                graph_arg, input_arg = str(bad), str(x)
            elif kind < 0.8:
                label, data = rng.choice(raw_files())
                (work / "bad.nir").write_bytes(data)
                graph_arg, input_arg = str(work / "bad.nir"), str(x)
            else:  # a good graph, broken inputs
                label, fn = rng.choice(imuts)
                fn(work / "bad.npz")
                graph_arg, input_arg = str(good), str(work / "bad.npz")
                if cmd in ("inspect", "prune", "quantize", "compile"):
                    label, data = rng.choice(raw_files())
                    (work / "bad.nir").write_bytes(data)
                    graph_arg = str(work / "bad.nir")
            out = str(work / "out" / "result")
            argv = {"inspect": ["inspect", graph_arg],
                    "simulate": ["simulate", graph_arg, "--input", input_arg,
                                 "--out", out + ".npz", "--fixed-point"][:7 if "loihi" in label
                                                                        else 6],
                    "prune": ["prune", graph_arg, "--sparsity", "0.5", "-o", out + ".nir"],
                    "quantize": ["quantize", graph_arg, "--scheme",
                                 rng.choice(["loihi", "int8"]), "-o", out + ".nir"],
                    "compare": ["compare", str(good) if rng.random() < 0.5 else graph_arg,
                                graph_arg, "--input", input_arg],
                    "energy": ["energy", graph_arg, "--input", input_arg, "-o",
                               out + ".json"],
                    "compile": ["compile", graph_arg, "--target",
                                rng.choice(["lava", "loihi2"]), "-o", out, "--fixed-point"
                                ][:7 if "loihi" in label else 6]}[cmd]
        elif cmd == "pipeline":
            cfg = work / "c.toml"
            cfg.write_text(rng.choice(cmuts))
            argv = ["pipeline", str(cfg), "--out", str(work / "run")]
            label = "config"
        elif cmd == "train":
            label, bad = rng.choice([("lr", ["--lr", "inf"]), ("lambda", ["--lambda", "nan"]),
                                     ("patience", ["--patience", "-1"]),
                                     ("density", ["--density", "2"]),
                                     ("seed", ["--seed", "-1"]), ("model", ["--model", "x"]),
                                     ("dataset opt", ["--dataset-opt", "steps"]),
                                     ("epochs", ["--epochs", "0"])])
            argv = ["train", *bad, "-o", str(work / "run")]
        elif cmd == "simulate-artifact":
            from neurocompile.targets import get_target
            from neurocompile.targets.artifact import write_artifact

            art = write_artifact(get_target("lava").compile(base_graph(nrng)), work / "art")
            label, fn = rng.choice(mmuts)
            if label == "dev zero":
                (art / "zero").symlink_to("/dev/zero")
            mpath = art / "manifest.json"
            mpath.write_text(json.dumps(fn(json.loads(mpath.read_text()))))
            argv = ["simulate", str(art), "--input", str(x), "--target",
                    rng.choice(["lava", "reference"])]
        else:  # option values
            label, argv = rng.choice([
                ("steps 0", ["simulate", str(good), "--input", str(x), "--steps", "0"]),
                ("dt -1", ["simulate", str(good), "--input", str(x), "--dt", "-1"]),
                ("dt nan", ["simulate", str(good), "--input", str(x), "--dt", "nan"]),
                ("target", ["simulate", str(good), "--input", str(x), "--target", "tpu"]),
                ("sparsity", ["prune", str(good), "--sparsity", "nan", "-o", "p.nir"]),
                ("method", ["prune", str(good), "--method", "random", "-o", "p.nir"]),
                ("bits", ["quantize", str(good), "--scheme", "loihi", "--bits", "9", "-o",
                          "q.nir"]),
                ("dir as file", ["simulate", str(work), "--input", str(x)]),
                ("missing", ["inspect", str(work / "nope.nir")]),
                ("unknown command", ["frobnicate"]),
                ("hardware", ["energy", str(good), "--input", str(x), "--targets", "gpu"]),
                ("output is input", ["prune", str(good), "--sparsity", "0.5", "-o", str(good)]),
            ])
        cases.append((cmd, label, argv, work))
    return cases


def fuzz(n: int = 1200, seed: int = 0, keep: bool = False) -> dict:
    """Run n cases; the summary per command and the failing cases."""
    with tempfile.TemporaryDirectory(prefix="nc-fuzz-") as tmp:
        root = Path(tmp)
        marker = root / "CANARY_RAN"
        canary = root / "canary.sh"
        canary.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        canary.chmod(0o755)
        cases = build_cases(root, n, seed, canary)
        start = time.perf_counter()
        per_cmd: dict[str, Counter] = {}
        failures = []
        for cmd, label, argv, work in cases:
            inputs = {p for p in work.rglob("*") if p.is_file()}
            res = run_case(argv, work, inputs)
            per_cmd.setdefault(cmd, Counter())[res["kind"]] += 1
            if res["kind"] != "clean_error" or res["children"]:
                failures.append({"command": cmd, "case": label, **res})
        ran_canary = marker.exists()
    totals = Counter()
    for c in per_cmd.values():
        totals.update(c)
    return {
        "cases": n, "seed": seed, "wall_s": round(time.perf_counter() - start, 1),
        "per_command": {k: dict(v) for k, v in sorted(per_cmd.items())},
        "totals": {k: totals.get(k, 0) for k in ("clean_error", "traceback", "hang",
                                                  "wrong_success", "unclean_error",
                                                  "wrote_files")},
        "children_left": sum(1 for f in failures if f["children"]),
        "code_executions": int(ran_canary),
        "failures": failures[:200],
    }


def main_cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/fuzz.json"))
    args = ap.parse_args()
    summary = fuzz(args.cases, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"{'command':<18}" + "".join(f"{k:>15}" for k in summary["totals"]))
    for cmd, counts in summary["per_command"].items():
        print(f"{cmd:<18}" + "".join(f"{counts.get(k, 0):>15}" for k in summary["totals"]))
    print(f"{'total':<18}" + "".join(f"{v:>15}" for v in summary["totals"].values()))
    print(f"children left {summary['children_left']}, code executions "
          f"{summary['code_executions']}, {summary['wall_s']} s; wrote {args.out}")


if __name__ == "__main__":
    main_cli()
