"""CSR product vs event-driven column gather (semantics/sparse_product.py): time per call by
size, rows and input activity, and which one the cost model picks.

    .venv/bin/python benchmarks/sparse_product.py [--out benchmarks/results/sparse_product.json]

Random 1 %-dense square weights; binary inputs. The cost model is right on a row when the
method it picks is the faster one (within 10 %).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

from neurocompile.ir.io import write_text  # noqa: E402
from neurocompile.semantics.sparse_product import SparseProduct  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "sparse_product.json"


def _time(fn, budget_s: float = 0.2) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s:
        fn()
        calls += 1
    return (time.perf_counter() - start) / max(calls, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows_out = []
    for n in (1000, 3000, 10000, 50000):
        k = n * n // 100
        w = sp.csr_matrix((rng.normal(size=k), (rng.integers(0, n, k), rng.integers(0, n, k))),
                          shape=(n, n))
        prod = SparseProduct(w, np.float64)
        for rows in (1, 64) if n <= 10000 else (1,):
            for activity in (0.005, 0.02, 0.05, 0.1, 0.2):
                x = (rng.random((rows, n)) < activity).astype(np.float64)
                active = [np.flatnonzero(x[i]) for i in range(rows)]
                n_active = sum(len(a) for a in active)
                csr_s = _time(lambda p=prod, x=x: p.csr @ x.T)
                gather_s = _time(lambda p=prod, x=x, a=active: p._gather(x, a))
                picked = "gather" if prod.use_gather(rows, sum(1 for a in active if len(a)),
                                                     n_active) else "csr"
                faster = "csr" if csr_s <= gather_s else "gather"
                best, chosen = min(csr_s, gather_s), gather_s if picked == "gather" else csr_s
                row = {"n": n, "rows": rows, "activity": activity, "csr_us": csr_s * 1e6,
                       "gather_us": gather_s * 1e6,
                       "events": int(n_active * prod.mean_fan_out), "picked": picked,
                       "faster": faster, "model_right": chosen <= 1.1 * best}
                rows_out.append(row)
                g = f"{gather_s * 1e6:10.1f}"
                print(f"n={n:<6} rows={rows:<3} activity={activity:<6} csr {csr_s * 1e6:10.1f} us"
                      f"  gather {g} us  picked {picked:<6} faster {faster}", flush=True)
    write_text(args.out, json.dumps({"benchmark": "sparse_product", "machine": machine(),
                                     "rows": rows_out}, indent=2))
    print(f"picked the faster (within 10 %) on {sum(r['model_right'] for r in rows_out)} of "
          f"{len(rows_out)} rows; wrote {args.out}")


if __name__ == "__main__":
    main()
