"""Per-row latency of the ``tcn`` and ``window_attn`` families, one step at a time (numpy; onnx body for window_attn).

Targets (issue #16): ``tcn`` at the default size (64 channels, dilations 1..16, kernel 3) at
most 0.2 ms a row; ``window_attn`` has none: its cost grows with the window W, measured here
for W in 25, 50 and 100 so the time budget can decide whether it is worth it. Each runtime is
measured in this process (wall clock and CPU time per ``step``, best of a few repeats) on A's 32
features with the per-sequence scale and running means on, as the A GRU ships. The networks
are untrained (random weights): latency does not depend on the values. The target is judged on
CPU time: the grader gives the candidate a core of its own, where a row's wall time is its CPU
time, while on this shared machine (load average printed beside the table) the wall time also
counts the waits for a core. Compare rows of one run with each other.

Usage: python benchmarks/bench_blocks.py [--rows 2000] [--windows 25 50 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as in the sandbox: one core

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_recurrent import in_process  # noqa: E402

from harness import competitions as C  # noqa: E402
from models.recurrent.export_blocks import export_window_onnx  # noqa: E402
from models.recurrent.runtime_blocks import step_runtime  # noqa: E402

TCN_TARGET_US = 200.0


def frame(comp=C.A) -> dict:
    """The shared settings of the A GRU (per-sequence scale and running means on)."""
    return dict(n_features=comp.n_features, output_names=comp.prediction_names, groups=[list(range(comp.n_outputs))],
                in_clip=8.0, seqnorm_prior=20.0, seqnorm_log_input=True, seqnorm_rescale_output=True, mean_prior=20.0)


def specs(windows: list[int]) -> list[tuple[str, str, object]]:
    """(family, size, spec) of an untrained default tcn and of window_attn at each window."""
    import torch

    from models.recurrent.block_nets import TcnNet, WindowAttnNet

    torch.manual_seed(0)
    out = [("tcn", "64 ch, dilations 1-16, k 3", TcnNet(channels=64, dilations=(1, 2, 4, 8, 16), kernel=3,
                                                         **frame()).to_spec())]
    for w in windows:
        out.append(("window_attn", f"bi-GRU 64, W {w}", WindowAttnNet(hidden=64, window=w, attn_dim=64,
                                                                      **frame()).to_spec()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="rows stepped per variant")
    parser.add_argument("--windows", type=int, nargs="+", default=[25, 50, 100], help="window_attn windows")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 120))
    rows = np.random.default_rng(0).standard_normal((args.rows, C.A.n_features))
    table = Table(title="tcn and window_attn one step, microseconds per row (onnx: 1 thread)")
    for col in ("family", "size", "runtime", "parameters", "wall", "CPU", "target"):
        table.add_column(col, justify="right" if col in ("parameters", "wall", "CPU") else "left")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-blocks-") as tmp:
        for name, size, spec in specs(args.windows):
            backends = {"numpy": None}
            if name == "window_attn":
                backends["onnx"] = export_window_onnx(spec, Path(tmp) / f"w{spec.window}.onnx")
            for backend, onnx_path in backends.items():
                # numpy window_attn at large W is slow: fewer rows keep the run short (still hundreds)
                slow = name == "window_attn" and backend == "numpy"
                n = max(200, args.rows * 25 // spec.window // 4) if slow else args.rows
                wall, cpu = in_process(step_runtime(spec, onnx_path), rows[:n])
                if name == "tcn":
                    verdict = "[green]met[/]" if cpu <= TCN_TARGET_US else "[red]missed[/]"
                    target = f"CPU <= {TCN_TARGET_US:g}: {verdict}"
                else:
                    target = "measured (grows with W)"
                table.add_row(name, size, backend, f"{spec.n_parameters():,}", f"{wall:.1f}", f"{cpu:.1f}", target)
    console.print(table)
    console.print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores "
                  "(a shared machine: compare rows of one run)")


if __name__ == "__main__":
    main()
