"""The two grader contracts, described once.

Every other module (reader, replay loop, metrics, sandbox, gate, simulator, training) reads
these objects instead of repeating a number, so a change of contract is a change here only.
Sources and the reasoning behind each value: ``shared/contracts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SEQUENCE_LENGTH = 1000
"""Every sequence holds exactly this many steps, 0 .. SEQUENCE_LENGTH - 1, in time order."""

META_COLUMNS = ("seq_ix", "step_in_seq", "need_prediction")
"""The first three columns of every file, in this order; ``DataPoint`` carries them."""

GIB = 1024**3


SAFETY_FACTOR = 1.5
"""Participants saw the grader run about 2x slower than their machines. A slower grader's margin: measured time is multiplied by this before it is held against the limit
(``simulate``'s projection, the gate's time check, the ensemble's budget-aware member selection)."""

UTILS_COMMON_NAMES = ("np", "pd", "tqdm", "dataclass", "DataPoint", "PredictionModel", "ScorerStepByStep")
"""Public names both organizers' ``utils.py`` define or import (module level; their starter packs)."""


@dataclass(frozen=True)
class Limits:
    """What the organizers' machine allows one submission."""

    cores: int = 1
    memory_gb: float = 16.0
    minutes: float = 60.0
    archive_mb: float = 20.0
    archive_cap_official: bool = False  # participants worked to 20 MB; no organizer page says so

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb * GIB)

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    def overridden(self, memory_gb: float | None = None, minutes: float | None = None) -> Limits:
        """These limits with the user's ``--memory-gb`` / ``--minutes`` where given."""
        return replace(self, memory_gb=memory_gb or self.memory_gb, minutes=minutes or self.minutes)


@dataclass(frozen=True)
class Competition:
    """One competition's schema, scoring alignment, metric and limits.

    ``target_offset`` says which row a prediction returned at row t is scored against:
    1 for A (the next row's state), 0 for B (the same row's targets).
    """

    key: str
    name: str
    title: str
    feature_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    first_scored_step: int
    last_scored_step: int
    target_offset: int
    metric: str
    metric_label: str
    output_metric_label: str
    test_sequences: int
    train_sequences: int
    limits: Limits
    feature_dtype: str
    need_prediction_dtype: str
    index_dtype: str = "int64"
    prediction_clip: float | None = None
    simple_baseline: str = ""
    leaderboard_best: float = 0.0
    utils_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prediction_names(self) -> tuple[str, ...]:
        """Names of the predicted quantities, in the order ``predict`` returns them."""
        return self.target_columns if self.target_columns else self.feature_columns

    @property
    def n_features(self) -> int:
        return len(self.feature_columns)

    @property
    def n_outputs(self) -> int:
        return len(self.prediction_names)

    @property
    def columns(self) -> tuple[str, ...]:
        """All columns of a data file, in file order."""
        return META_COLUMNS + self.feature_columns + self.target_columns

    @property
    def next_row_reveals_target(self) -> bool:
        """Whether row t+1's state is the target of the prediction at row t (A), so a model learns
        each target one row after predicting it. B's targets (t0, t1) never reach the model."""
        return not self.target_columns and self.target_offset == 1

    @property
    def warmup_steps(self) -> int:
        return self.first_scored_step

    @property
    def scored_steps_per_sequence(self) -> int:
        return self.last_scored_step - self.first_scored_step + 1

    @property
    def test_rows(self) -> int:
        """Rows (calls to ``predict``) in the full test set, for time projections."""
        return self.test_sequences * SEQUENCE_LENGTH

    def need_prediction_at(self, step: int) -> bool:
        return self.first_scored_step <= step <= self.last_scored_step


A = Competition(
    key="A",
    name="next-state",
    title="Wunder Challenge (A): next-state prediction",
    feature_columns=tuple(str(i) for i in range(32)),
    target_columns=(),
    first_scored_step=100,
    last_scored_step=998,
    target_offset=1,
    metric="mean_r2",
    metric_label="mean R²",
    output_metric_label="R² of the output",
    test_sequences=517,
    train_sequences=517,
    limits=Limits(minutes=60.0),
    feature_dtype="float32",
    need_prediction_dtype="int64",
    simple_baseline="a_mean_so_far",
    leaderboard_best=0.3964,
    utils_names=UTILS_COMMON_NAMES + ("r2_score",),  # imported from sklearn.metrics by their module
    notes=("the prediction at row t is scored against row t+1's state",),
)

B = Competition(
    key="B",
    name="lob",
    title="Wunder Challenge 2 (B): LOB Predictorium",
    feature_columns=tuple(
        [f"p{i}" for i in range(12)]
        + [f"v{i}" for i in range(12)]
        + [f"dp{i}" for i in range(4)]
        + [f"dv{i}" for i in range(4)]
    ),
    target_columns=("t0", "t1"),
    first_scored_step=99,
    last_scored_step=999,
    target_offset=0,
    metric="weighted_pearson",
    metric_label="weighted Pearson",
    output_metric_label="weighted Pearson of the target",
    test_sequences=1500,
    train_sequences=10721,
    limits=Limits(minutes=90.0),
    feature_dtype="float32",
    need_prediction_dtype="int8",
    prediction_clip=6.0,
    simple_baseline="b_constant",
    leaderboard_best=0.3240,
    utils_names=UTILS_COMMON_NAMES + ("weighted_pearson_correlation",),
    notes=(
        "targets t0, t1 are in the file but never reach the model",
        "a rules page reportedly said 2 hours and 4 cores; the default follows the submission guide",
    ),
)

COMPETITIONS: dict[str, Competition] = {A.key: A, B.key: B}
_ALIASES = {"a": A, "next-state": A, "b": B, "lob": B}


def get(key: str) -> Competition:
    """Look a competition up by key ("A"/"B") or name ("next-state"/"lob")."""
    found = COMPETITIONS.get(key) or _ALIASES.get(key.lower())
    if found is None:
        raise KeyError(f"unknown competition {key!r}: use one of A (next-state) or B (lob)")
    return found


def detect(columns: list[str] | tuple[str, ...]) -> Competition:
    """The competition whose schema these columns are, or a ValueError that says the difference."""
    cols = tuple(columns)
    for comp in COMPETITIONS.values():
        if cols == comp.columns:
            return comp
    # Not an exact match: name the closest schema and what differs, so the user can fix the file.
    best = max(COMPETITIONS.values(), key=lambda c: len(set(c.columns) & set(cols)))
    missing = [c for c in best.columns if c not in cols]
    extra = [c for c in cols if c not in best.columns]
    if not missing and not extra:
        raise ValueError(
            f"columns are those of {best.key} ({best.name}) but out of order; expected {list(best.columns)}"
        )
    raise ValueError(
        f"columns match neither competition; closest is {best.key} ({best.name}): "
        f"missing {missing or 'none'}, unexpected {extra or 'none'}"
    )
