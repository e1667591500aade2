"""The robust transforms match their definitions, and the robust presets stay on the data's scale
where a tiny-floor log would jump (zero and negative volumes)."""

import numpy as np
import pytest

from features import pipelines
from features.pipelines import COMPETITION_PRESETS, PRESETS, ROBUST_PRESETS, preset_pipeline
from harness import competitions as C


def test_signed_log1p_and_signed_log_ratio_match_their_definitions():
    x = np.array([[[-1e6, 0.0, 3.0], [2.5, -0.5, 1e-9]]])
    names = ("a", "b", "c")
    slog = pipelines.build(names, [{"kind": "signed_log1p", "scale": 2.0}])
    expected = np.sign(x) * np.log1p(np.abs(x) / 2.0)
    assert np.allclose(slog.transform(x), expected, rtol=1e-15, atol=0)
    ratio = pipelines.build(names, [{"kind": "signed_log_ratio", "pairs": [["a", "b"], ["c", "a"]]}])
    s = np.sign(x) * np.log1p(np.abs(x))
    assert np.allclose(ratio.transform(x), np.stack([s[..., 0] - s[..., 1], s[..., 2] - s[..., 0]], axis=-1),
                       rtol=1e-15, atol=1e-15)
    with pytest.raises(ValueError, match="scale"):
        pipelines.build(names, [{"kind": "signed_log1p", "scale": 0}])


def test_every_preset_belongs_to_one_competition_and_builds_on_its_inputs():
    listed = [name for names in COMPETITION_PRESETS.values() for name in names]
    assert sorted(listed) == sorted(PRESETS)
    for key, names in COMPETITION_PRESETS.items():
        assert ROBUST_PRESETS[key] in names
        for name in names:
            assert preset_pipeline(name, C.get(key).feature_columns).n_outputs > 0


def _book_with_empty_and_negative_volumes() -> np.ndarray:
    rng = np.random.default_rng(0)
    comp = C.B
    x = rng.normal(size=(3, 300, comp.n_features)) * 0.1 + 1.0
    volumes = [i for i, n in enumerate(comp.feature_columns) if n.startswith(("v", "dv"))]
    x[..., volumes] = rng.normal(size=(3, 300, len(volumes))) * 0.01
    x[:, ::7][..., volumes] = 0.0  # empty levels and no trades
    return x


def test_b_robust_stays_on_the_datas_scale_where_a_floored_log_jumps():
    x = _book_with_empty_and_negative_volumes()
    names = C.B.feature_columns
    robust = preset_pipeline("b_robust", names)
    robust.fit(x)
    out = robust.transform(x)
    assert np.isfinite(out).all() and np.abs(out).max() <= 2 * np.abs(x).max() + 1
    floored = pipelines.build(names, [{"kind": "log_ratio", "pairs": [["v0", "v6"]]}]).transform(x)
    assert np.abs(floored).max() > 20  # what the robust preset avoids


def test_a_robust_stays_on_the_datas_scale_for_a_nearly_constant_series():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 200, 32)) * 1e-9 + 0.5  # a flat market: a z-score would blow up the noise
    robust = preset_pipeline("a_robust", C.A.feature_columns)
    robust.fit(x)
    assert np.abs(robust.transform(x)).max() <= 1.0
