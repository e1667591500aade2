"""Scenarios: drawn market structures that keep the data's form, each with its exact oracle."""

from __future__ import annotations

import numpy as np
import pytest

from harness.cli import main
from harness.competitions import B
from harness.market import get_generator
from harness.market.b import simulate_chunk
from harness.market.b_display import Signals, decode, encode
from harness.market.b_params import BParams
from harness.market.base import read_stamp, write_set
from harness.market.calibrate import data_rows_a, load_sequences
from harness.market.calibrate_b import feature_rows, load_b, target_rows
from harness.market.form import FORM_STATISTICS, failures, form_rows
from harness.market.oracle import oracle_scores
from harness.market.scenarios import ScenarioError, generate_scenario, parse_scenario, parse_scenarios, scenario_generator

A_SCENARIOS = (5, 7)  # among the quicker to draw (the draw runs pilots: seconds each)
B_SCENARIOS = (2, 7)


def test_parse_scenarios_reads_ranges_lists_and_default():
    assert parse_scenario("default") is None and parse_scenario("12") == 12
    assert parse_scenarios("1-3") == [1, 2, 3]
    assert parse_scenarios("default,4,2-3,4") == [None, 4, 2, 3]


@pytest.mark.parametrize("spec", ["", "1-", "3-1", "a", "1,,2", "-2", "1.5"])
def test_bad_scenario_specs_raise(spec):
    with pytest.raises(ScenarioError):
        parse_scenarios(spec)


def test_the_default_scenario_is_the_calibrated_generator_unstamped(tmp_path):
    gen = scenario_generator("A", None)
    assert type(gen) is type(get_generator("A")) and gen.scenario is None
    path = write_set(gen, 1, 3, "valid", tmp_path / "a.parquet")
    assert "scenario" not in read_stamp(path)  # the default files' stamp, and so their bytes, are unchanged


@pytest.fixture(scope="module")
def a_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("a_scen")
    sizes = {"train": 64, "valid": 32}
    sets = {k: generate_scenario("A", k, root / str(k), sizes, seed=11) for k in A_SCENARIOS}
    sets[None] = generate_scenario("A", None, root / "default", sizes, seed=11)
    return sets


@pytest.fixture(scope="module")
def b_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("b_scen")
    return {k: generate_scenario("B", k, root / str(k), {"train": 240, "valid": 8}, seed=5) for k in B_SCENARIOS}


@pytest.mark.parametrize("scenario", A_SCENARIOS)
def test_a_scenarios_keep_the_form(a_sets, scenario):
    paths = a_sets[scenario]
    x = np.concatenate([load_sequences(paths["train"])[1], load_sequences(paths["valid"])[1]])
    rows = data_rows_a(x)
    assert len(form_rows("A", rows)) == len(FORM_STATISTICS["A"])
    assert failures("A", rows) == []
    assert read_stamp(paths["valid"])["scenario"] == scenario


def test_a_scenarios_differ_in_structure(a_sets):
    oracle = {k: oracle_scores(p["valid"]) for k, p in a_sets.items()}
    corr = {k: np.corrcoef(load_sequences(p["train"])[1].reshape(-1, 32), rowvar=False) for k, p in a_sets.items()}
    keys = list(a_sets)
    for i, a in enumerate(keys):
        assert oracle[a]["observable"] <= oracle[a]["hidden"]
        for b in keys[i + 1:]:
            assert abs(oracle[a]["observable"] - oracle[b]["observable"]) > 0.005, (a, b)
            assert np.abs(corr[a] - corr[b]).mean() > 0.05, (a, b)


@pytest.mark.parametrize("scenario", B_SCENARIOS)
def test_b_scenarios_keep_the_form(b_sets, scenario):
    train = load_b(b_sets[scenario]["train"])
    rows = feature_rows(train) + target_rows(train)
    assert failures("B", rows) == []
    assert len(form_rows("B", rows)) >= len(FORM_STATISTICS["B"])


def test_b_scenarios_differ_in_structure(b_sets):
    a, b = (oracle_scores(b_sets[k]["train"]) for k in B_SCENARIOS)
    assert abs(a["observable"] - b["observable"]) > 0.01
    assert scenario_generator("B", B_SCENARIOS[0]).params != scenario_generator("B", B_SCENARIOS[1]).params


def test_signed_and_empty_volumes_keep_the_oracle_readable():
    params = BParams(trade_volume_offset=0.4, empty_volume_prob=0.05)
    chunk = simulate_chunk(np.arange(4), params, np.random.default_rng(0))
    dv0 = chunk.features[:, :, B.feature_columns.index("dv0")]
    v1 = chunk.features[:, :, B.feature_columns.index("v1")]
    assert (dv0 <= 0).mean() > 0.005 and (v1 == 0).mean() > 0.02
    # The trade-flow signal is read back exactly (up to float32 rounding) despite the signed prints.
    rng = np.random.default_rng(1)
    shape = (3, 50)
    signals = Signals(base_log_vol=np.zeros(shape), burst=np.zeros(shape), flow=rng.standard_normal(shape),
                      ret=0.01 * rng.standard_normal(shape), trade_flow=rng.standard_normal(shape))
    back = decode(encode(signals, params, rng), params)
    np.testing.assert_allclose(back.trade_flow, signals.trade_flow, atol=1e-3)


def test_generate_and_calibrate_cli_take_a_scenario(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    args = ["generate", "-c", "B", "--split", "train", "-n", "2", "--seed", "1", "--out", str(out), "--quiet"]
    assert main([*args, "--scenario", str(B_SCENARIOS[0])]) == 0
    assert read_stamp(out)["scenario"] == B_SCENARIOS[0]
    assert main([*args, "--scenario", "x"]) == 2
    err = capsys.readouterr().err
    assert "--scenario" in err and len(err.strip().splitlines()) == 1
    assert main(["calibrate", "-c", "B", "--scenario", "-3"]) == 2


def test_a_pilot_clears_a_floor_only_with_margin():
    from harness.market.calrow import CalRow
    from harness.market.form import floor_margin_holds

    assert floor_margin_holds(CalRow.ranged("k", "-", 20.0, 15.0, None), 0.25)
    assert not floor_margin_holds(CalRow.ranged("k", "-", 16.0, 15.0, None), 0.25)  # passes the row, not the margin
    assert floor_margin_holds(CalRow.ranged("c", "-", 0.5, 0.4, 0.6), 0.25)  # two-sided rows: the row's own verdict
