"""The engine's scoring step, a float32 mat-vec, with BLAS (default threads, one thread) and with numpy's
own loop (``einsum``, what the engine uses), interleaved round by round so the machine's load hits all alike.

Run: ``python3 bench/engine_matvec.py --rows 3000,30000,300000``.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import numpy as np
from threadpoolctl import ThreadpoolController

from s3vectors_engine._cache import _dot_rows

DIM = 384


Variant = tuple[Callable[[], AbstractContextManager[object]], Callable[[], object]]


def _variants(matrix: np.ndarray, query: np.ndarray, blas: ThreadpoolController) -> dict[str, Variant]:
    return {
        "BLAS matmul, default threads": (contextlib.nullcontext, lambda: matrix @ query),
        "BLAS matmul, one thread": (lambda: blas.limit(limits=1, user_api="blas"), lambda: matrix @ query),
        "einsum (the engine's)": (contextlib.nullcontext, lambda: _dot_rows(matrix, query)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="3000,30000,300000")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    blas = ThreadpoolController()
    print("| rows | variant | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    for n in (int(r) for r in args.rows.split(",")):
        rng = np.random.default_rng(0)
        matrix = rng.standard_normal((n, DIM), dtype=np.float32)
        query = rng.standard_normal(DIM, dtype=np.float32)
        variants = _variants(matrix, query, blas)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (limit, run) in variants.items():
                with limit():
                    started = time.perf_counter()
                    run()
                    samples[name].append(time.perf_counter() - started)
        for name, values in samples.items():
            ms = np.asarray(values) * 1000
            print(f"| {n:,} | {name} | {np.median(ms):.2f} | {np.percentile(ms, 95):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
