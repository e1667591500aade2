"""Per-row latency of a 2-layer GRU of width 128, one step at a time: onnxruntime against numpy.

Target (issue #7): at most 0.1 ms a row in the sandbox (the grader's budget is about 7 ms a row
for A). Each runtime is measured in this process (wall clock and CPU time per ``step``, best
of a few repeats) and in the sandbox through ``harness.simulate`` on a generated A file (mean
and median ``predict`` time of the scored rows, the solution wrapper included), in float32 and
with int8 weights. The network is untrained (random weights): latency does not depend on the
values. The machine is shared, so compare the rows of one run with each other.

Usage: python benchmarks/bench_recurrent.py [--sequences 4] [--rows 4000] [--skip-sandbox]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # as in the sandbox: one core

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import competitions as C  # noqa: E402
from harness.package import build_zip  # noqa: E402
from harness.simulate import SimulateOptions, simulate  # noqa: E402
from models.recurrent.export import export_onnx  # noqa: E402
from models.recurrent.runtime_numpy import NumpyStep  # noqa: E402
from models.recurrent.runtime_onnx import OnnxStep  # noqa: E402
from models.recurrent.serving import ARTIFACTS  # noqa: E402
from models.recurrent.spec import NetSpec, quantize  # noqa: E402

TARGET_US = 100.0
HIDDEN, LAYERS = 128, 2


def reference_spec(comp=C.A) -> NetSpec:
    """An untrained 2x128 GRU shaped like the shipped A model (per-sequence scale and means on)."""
    import torch

    from models.recurrent.nets import RecurrentNet

    torch.manual_seed(0)
    net = RecurrentNet(n_features=comp.n_features, output_names=comp.prediction_names,
                       groups=[list(range(comp.n_outputs))], hidden=HIDDEN, layers=LAYERS, in_clip=8.0,
                       seqnorm_prior=20.0, seqnorm_log_input=True, seqnorm_rescale_output=True, mean_prior=20.0)
    return net.to_spec({"purpose": "latency benchmark"})


def in_process(step, rows: np.ndarray, repeats: int = 3) -> tuple[float, float]:
    """Best (wall, CPU) microseconds per ``step`` over ``rows``."""
    walls, cpus = [], []
    for _ in range(repeats):
        step.reset()
        w0, c0 = time.perf_counter(), time.process_time()
        for row in rows:
            step.step(row)
        walls.append((time.perf_counter() - w0) / len(rows) * 1e6)
        cpus.append((time.process_time() - c0) / len(rows) * 1e6)
    return min(walls), min(cpus)


def sandbox(spec: NetSpec, backend: str, data: Path, sequences: int, work: Path) -> dict:
    """Latency of the real A solution wrapper around ``spec`` replayed in the sandbox."""
    folder = work / f"{backend}_{'int8' if spec.quant is not None else 'f32'}"
    folder.mkdir()
    source = (ROOT / "solutions" / "a_gru" / "solution.py").read_text()
    (folder / "solution.py").write_text(source.replace('BACKEND = "numpy"', f'BACKEND = "{backend}"'))
    spec.save(folder / ARTIFACTS["numpy"])  # read by both backends (the net, and its feature steps if any)
    if backend == "onnx":
        export_onnx(spec, folder / ARTIFACTS["onnx"])
    artifacts = sorted({ARTIFACTS["numpy"], ARTIFACTS[backend]})
    (folder / "manifest.json").write_text(json.dumps({"competition": "A", "artifacts": artifacts}))
    archive = build_zip(folder, work / f"{folder.name}.zip")
    report = simulate(archive, data, options=SimulateOptions(sequences=sequences, bootstrap=0))
    if not report.ok:
        raise RuntimeError(f"{folder.name}: the sandbox run ended with {report.error}")
    return asdict(report.timing.scored) | {"size_kb": archive.stat().st_size / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=4, help="sequences replayed in the sandbox per variant")
    parser.add_argument("--rows", type=int, default=4000, help="rows stepped in-process per variant")
    parser.add_argument("--skip-sandbox", action="store_true")
    args = parser.parse_args()
    console = Console()
    spec = reference_spec()
    variants = {"f32": spec, "int8": quantize(spec)}
    rows = np.random.default_rng(0).standard_normal((args.rows, spec.n_features))
    data = None
    if not args.skip_sandbox:
        from harness.market.defaults import ensure

        data = ensure("A", "valid")
    table = Table(title=f"GRU {LAYERS}x{HIDDEN} one step, microseconds per row (target: sandbox mean <= {TARGET_US:g})")
    for col in ("runtime", "weights", "in-proc wall", "in-proc CPU", "sandbox mean", "sandbox p50", "zip KiB", "target"):
        table.add_column(col, justify="left" if col in ("runtime", "weights", "target") else "right")
    with tempfile.TemporaryDirectory(prefix="bench-recurrent-") as tmp:
        work = Path(tmp)
        for label, s in variants.items():
            onnx_path = export_onnx(s, work / f"{label}.onnx")
            for backend, step in (("onnx", OnnxStep(onnx_path)), ("numpy", NumpyStep(s))):
                wall, cpu = in_process(step, rows)
                box = {} if args.skip_sandbox else sandbox(s, backend, data, args.sequences, work)
                judged = box.get("mean_us", wall)
                verdict = "[green]met[/]" if judged <= TARGET_US else "[red]missed[/]"
                table.add_row(backend, label, f"{wall:.1f}", f"{cpu:.1f}",
                              f"{box['mean_us']:.1f}" if box else "-", f"{box['p50_us']:.1f}" if box else "-",
                              f"{box['size_kb']:.0f}" if box else "-", verdict)
    console.print(table)
    console.print(f"onnx = onnxruntime, 1 intra-op and 1 inter-op thread; load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} cores (a shared machine: compare rows of one run)")


if __name__ == "__main__":
    main()
