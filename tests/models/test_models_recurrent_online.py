"""A packaged recurrent solution replayed online in the sandbox scores what offline evaluation says."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import competitions as C
from harness.package import build_zip
from harness.randomdata import write_random_file
from harness.simulate import SimulateOptions, simulate
from models.data import load_sequences
from models.config import from_dict
from models.recurrent.config import RecurrentConfig
from models.recurrent.export import export_onnx
from models.recurrent.serving import ARTIFACTS, FEATURES, load_offline
from models.recurrent.train import build_net, with_features
from features import pipelines

ROOT = Path(__file__).resolve().parents[2]


def _solution(tmp_path: Path, comp, backend: str, steps: list | None) -> tuple[Path, Path, dict]:
    """A tiny untrained GRU packaged with the real solution.py of ``solutions/<a|b>_gru``, fed by a
    feature pipeline of ``steps`` when given."""
    data = write_random_file(comp, tmp_path / "data.parquet", 3, seed=11, sequences_per_group=2)
    seqs = raw = load_sequences(data)
    folder = tmp_path / "sol"
    folder.mkdir()
    artifacts = sorted({ARTIFACTS["numpy"], ARTIFACTS[backend]})  # model.npz holds the net and the feature steps
    meta = {}
    if steps:
        pipeline = pipelines.build(comp.feature_columns, steps)
        pipeline.save(folder / FEATURES)
        seqs = with_features(pipeline, raw)
        artifacts.append(FEATURES)
        meta["features"] = {"input_names": list(comp.feature_columns), "steps": steps}
    torch.manual_seed(0)
    net = build_net(from_dict(RecurrentConfig, {"hidden": 16, "layers": 2, "seqnorm": {"enabled": True}}), comp, seqs)
    source = (ROOT / "solutions" / f"{comp.key.lower()}_gru" / "solution.py").read_text()
    (folder / "solution.py").write_text(source.replace('BACKEND = "numpy"', f'BACKEND = "{backend}"'))
    spec = net.to_spec(meta)
    spec.save(folder / ARTIFACTS["numpy"])
    if backend == "onnx":
        export_onnx(spec, folder / ARTIFACTS["onnx"])
    (folder / "manifest.json").write_text(json.dumps({"competition": comp.key, "artifacts": artifacts}))
    offline = seqs.score(net.predict(seqs.features))
    return build_zip(folder, tmp_path / "sol.zip"), data, offline


B_STEPS = [{"kind": "identity"}, {"kind": "order_book", "mid_change_periods": [1, 5]}]


@pytest.mark.parametrize("comp,backend,steps", [(C.A, "numpy", None), (C.B, "onnx", B_STEPS), (C.B, "numpy", B_STEPS)])
def test_packaged_gru_online_equals_offline(tmp_path, comp, backend, steps):
    archive, data, offline = _solution(tmp_path, comp, backend, steps)
    names = zipfile.ZipFile(archive).namelist()
    assert "models/recurrent/serving.py" in names and not any("torch" in n or n.startswith("harness") for n in names)
    assert "features/orderbook.py" in names  # vendored: serving imports the feature library lazily
    report = simulate(archive, data, options=SimulateOptions(bootstrap=0))
    assert report.ok, report.error
    score = report.score
    assert score.headline == pytest.approx(offline[comp.metric], abs=1e-6)
    for name in comp.prediction_names:
        assert score.per_output[name] == pytest.approx(offline[name], abs=1e-6)
    assert "torch" not in report.modules


def test_offline_form_of_the_shipped_files_scores_what_pytorch_scores(tmp_path):
    _, data, offline = _solution(tmp_path, C.B, "numpy", B_STEPS)
    seqs = load_sequences(data)
    predicted = load_offline(tmp_path / "sol").predict_sequences(seqs.features, seqs.scored)
    assert np.isnan(predicted[:, ~seqs.scored]).all() and np.isfinite(predicted[:, seqs.scored]).all()
    scores = seqs.score(predicted)
    for name in (C.B.metric, *C.B.prediction_names):
        assert scores[name] == pytest.approx(offline[name], abs=1e-6)
