"""Shape of the library: sizes read from the competitions, stable names, clear errors, vendorable."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from feature_checks import CATALOGUE

from harness import competitions
from features.base import as_sequences
from features.compose import Concat, Select
from features.lags import Differences, Lags
from features.pipeline import Pipeline
from features.base import TRANSFORMS, Transform
from features.pipelines import A_WARMUP, preset_pipeline
from features.regime import RegimeCluster
from features.rolling import RollingMoments

FEATURES_DIR = Path(__file__).resolve().parents[2] / "features"
ALLOWED_IMPORTS = {"numpy", "scipy", "sklearn", "__future__"}


def test_every_transform_registers_its_kind_and_is_in_the_catalogue() -> None:
    """One registry: every transform class of the library that declares a kind is buildable by
    that kind from a manifest, and the catalogue (parity, causality, reset) covers each kind."""

    def subclasses(cls: type) -> list[type]:
        return [cls] + [c for sub in cls.__subclasses__() for c in subclasses(sub)]

    declared = {cls.kind: cls for cls in subclasses(Transform)[1:] if "kind" in vars(cls)}
    assert declared == TRANSFORMS
    assert {"log_ratio", "product", "yeo_johnson", "regime_summary", "cross_features"} <= set(TRANSFORMS)
    assert {case.step["kind"] for case in CATALOGUE} == set(TRANSFORMS)


def test_presets_fix_a_s_warmup_to_the_competition_s() -> None:
    assert A_WARMUP == competitions.A.warmup_steps


def test_next_state_pipeline_has_about_ten_features_per_input() -> None:
    comp = competitions.A
    pipeline = preset_pipeline("next_state", comp.feature_columns)
    assert 9 * comp.n_features <= pipeline.n_outputs <= 11 * comp.n_features
    assert pipeline.output_names[: comp.n_features] == comp.feature_columns
    assert len(set(pipeline.output_names)) == pipeline.n_outputs


def test_output_names_are_stable_and_documented_by_their_parts() -> None:
    comp = competitions.A
    first = preset_pipeline("next_state", comp.feature_columns).output_names
    second = preset_pipeline("next_state", comp.feature_columns).output_names
    assert first == second
    column = comp.feature_columns[3]
    for expected in (f"{column}__diff5", f"{column}__ema20", f"{column}__std_50", f"{column}__zscore_50",
                     f"{column}__zscore_all", f"{column}__relvol", "regime_cluster", "pair0_ratio"):
        assert expected in first


def test_lob_pipeline_reads_its_layout_from_the_names() -> None:
    comp = competitions.B
    pipeline = preset_pipeline("lob", comp.feature_columns)
    names = pipeline.output_names
    levels = sum(name.startswith("p") for name in comp.feature_columns) // 2
    assert names[: comp.n_features] == comp.feature_columns
    spreads = [name for name in names if name.startswith("ob_spread") and "__" not in name]
    assert spreads == [f"ob_spread{level}" for level in range(levels)]
    assert "ob_trade_imbalance__ema5" in names and "v0__yeojohnson" in names
    with pytest.raises(ValueError, match="order book"):
        preset_pipeline("lob", competitions.A.feature_columns)


def test_bad_inputs_fail_with_clear_messages() -> None:
    names = ("x", "y")
    with pytest.raises(ValueError, match="input columns"):
        as_sequences(np.zeros((2, 5, 3)), 2, "test")
    with pytest.raises(ValueError, match="finite"):
        as_sequences(np.array([[0.0, np.nan]]), 2, "test")
    with pytest.raises(ValueError, match="collide"):
        Pipeline("dup", names, [Lags((1,)), Lags((1,))])
    with pytest.raises(ValueError, match="not among"):
        Select(["z"]).setup(names)
    with pytest.raises(ValueError, match="distinct positive"):
        Differences((0, 1))
    with pytest.raises(ValueError, match="unknown stat"):
        RollingMoments(stats=("median",))
    with pytest.raises(ValueError, match="cannot make"):
        transform = RegimeCluster(warmup=5, n_clusters=4)
        transform.setup(names)
        transform.fit(np.zeros((2, 10, 2)))
    pipeline = Pipeline("p", names, [Lags((1,))])
    with pytest.raises(ValueError, match="row of 2"):
        pipeline.update(np.zeros(3))


def test_concatenated_outputs_follow_member_order() -> None:
    names = ("x", "y")
    combined = Concat([Lags((2,)), Differences((1,))])
    assert combined.setup(names) == ("x__lag2", "y__lag2", "x__diff1", "y__diff1")


def _imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def test_runtime_code_imports_only_numpy_scipy_sklearn_and_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(FEATURES_DIR.glob("*.py")):
        for module, level in _imports(path):
            if level > 0:
                continue  # relative import inside the package
            root = module.split(".")[0]
            assert root in ALLOWED_IMPORTS or root in stdlib, f"{path.name} imports {module}"


def test_package_works_when_copied_next_to_a_solution(tmp_path) -> None:
    comp = competitions.A
    rng = np.random.default_rng(0)
    pipeline = preset_pipeline("next_state", comp.feature_columns)
    pipeline.fit(rng.normal(size=(10, 120, comp.n_features)).cumsum(axis=1))
    pipeline.save(tmp_path / "features_a.npz")
    shutil.copytree(FEATURES_DIR, tmp_path / "features", ignore=shutil.ignore_patterns("__pycache__"))
    row = rng.normal(size=comp.n_features)
    np.save(tmp_path / "row.npy", row)
    expected = pipeline.transform(row[None, None])[0, 0]
    np.save(tmp_path / "expected.npy", expected)
    (tmp_path / "solution.py").write_text(textwrap.dedent(
        """
        import os

        import numpy as np

        import features
        from features.pipelines import preset_pipeline

        assert os.path.dirname(os.path.abspath(features.__file__)) == os.path.abspath("features"), features.__file__

        pipeline = preset_pipeline("next_state", [str(i) for i in range(32)]).load_state("features_a.npz")
        pipeline.reset()
        got = pipeline.update(np.load("row.npy"))
        assert np.array_equal(got, np.load("expected.npy")), "vendored copy disagrees"
        print("ok", pipeline.n_outputs)
        """
    ))
    result = subprocess.run([sys.executable, "solution.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_batch_can_store_float32_without_computing_in_float32() -> None:
    comp = competitions.A
    data = np.random.default_rng(6).normal(size=(10, 130, comp.n_features)).cumsum(axis=1)
    pipeline = preset_pipeline("next_state", comp.feature_columns).fit(data)
    full = pipeline.transform(data)
    stored = pipeline.transform(data, out=np.empty(full.shape, dtype=np.float32))
    # Exact by construction: both calls chunk the same way and compute in float64; only the store rounds.
    np.testing.assert_array_equal(stored, full.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        pipeline.transform(data, out=np.empty((1, 2, 3)))
