"""The Drift-Coefficient and passive drift: known values, false-alarm rates, known drifts."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from custodes.cli.evals import app
from custodes.errors import BadRequest
from custodes.evals.drift import (
    DriftReport,
    drift_coefficient,
    jsd,
    minimum_permutations,
    outcome_distribution,
    passive_drift,
)
from custodes.evals.metrics import newcombe_difference
from custodes.evals.models import Outcome
from custodes.evals.results import DriftAlert, DriftSummary, drift_alert, drift_summary
from custodes.evals.rundir import RunDir
from custodes.evals.semantic import embedder_available

REFUSE, COMPLY, ERROR = Outcome.REFUSE, Outcome.COMPLY, Outcome.ERROR
SEEDS = 300
NULL_PERMUTATIONS = 199
LEVEL = 0.05

Epoch = dict[str, list[Outcome]]


def _false_alarm_bound(level: float, runs: int) -> float:
    """Observed alarm rate a correct test stays under: level + 3 binomial SDs."""
    return level + 3 * math.sqrt(level * (1 - level) / runs)


def _sample(rng: np.random.Generator, refusal_rate: float, k: int = 10) -> list[Outcome]:
    return [REFUSE if u < refusal_rate else COMPLY for u in rng.random(k)]


def _epochs(seed: int, items: int, drifted: float = 0.0) -> tuple[Epoch, Epoch, dict[str, str]]:
    """Must-refuse items refusing 90% of the time; a ``drifted`` share falls to 40%."""
    rng = np.random.default_rng(seed)
    base = {f"h{i}": _sample(rng, 0.9) for i in range(items)}
    cur = {f"h{i}": _sample(rng, 0.4 if i < drifted * items else 0.9) for i in range(items)}
    return base, cur, dict.fromkeys(base, "must_refuse")


# --- JSD --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "q", "expected"),
    [
        ([1, 0], [0, 1], 1.0),
        ([1, 0], [0.9, 0.1], 0.0519),  # reference §3: one extra flip in ten
        ([1, 0], [0.8, 0.2], 0.1080),  # two flips
        ([1, 0], [0.5, 0.5], 0.3113),  # five flips
        ([0.2, 0.3, 0.5], [0.2, 0.3, 0.5], 0.0),
    ],
)
def test_jsd_known_values(p: list[float], q: list[float], expected: float) -> None:
    assert jsd(p, q) == pytest.approx(expected, abs=1e-4)


@st.composite
def distribution_pairs(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    """Two distributions over the same categories, as outcome counts produce them."""
    size = draw(st.integers(min_value=1, max_value=6))
    counts = st.lists(st.integers(0, 30), min_size=size, max_size=size).filter(any)
    a, b = draw(counts), draw(counts)
    return [c / sum(a) for c in a], [c / sum(b) for c in b]


@given(distribution_pairs())
def test_jsd_is_symmetric_bounded_and_zero_only_for_equal_distributions(
    pq: tuple[list[float], list[float]],
) -> None:
    p, q = pq
    value = jsd(p, q)
    assert value == jsd(q, p)
    assert 0.0 <= value <= 1.0
    assert (value == 0.0) == (p == q)
    assert jsd(p, p) == 0.0


@pytest.mark.parametrize(("p", "q"), [([0.5, 0.5], [1.0]), ([0.5, 0.6], [0.5, 0.5]), ([], [])])
def test_jsd_refuses_what_is_not_a_pair_of_distributions(p: list[float], q: list[float]) -> None:
    with pytest.raises(BadRequest):
        jsd(p, q)


def test_outcome_distribution_follows_the_outcome_order() -> None:
    outcomes = [REFUSE, REFUSE, Outcome.UNSAFE_ACTION, ERROR]
    assert outcome_distribution(outcomes) == (0.5, 0.0, 0.0, 0.25, 0.25)


# --- Drift-Coefficient: no drift --------------------------------------------------------


@pytest.fixture(scope="module")
def no_drift_reports() -> list[DriftReport]:
    """300 seeded pairs of epochs drawn from one distribution (30 items, k = 10)."""
    return [
        drift_coefficient(
            *_epochs(seed, items=30), permutations=NULL_PERMUTATIONS, seed=seed, level=LEVEL
        )
        for seed in range(SEEDS)
    ]


def test_without_drift_the_corrected_term_is_near_zero(no_drift_reports: list[DriftReport]) -> None:
    raw = np.mean([r.d_beh_raw for r in no_drift_reports])
    corrected = np.mean([r.d_beh for r in no_drift_reports])
    # Measured: raw 0.043 (the reference's 0.043: sampling noise), corrected 0.003.
    assert raw > 0.03
    assert corrected < 0.01


def test_without_drift_alarms_fire_at_most_at_the_nominal_rate(
    no_drift_reports: list[DriftReport],
) -> None:
    p_values = np.array([r.p_beh for r in no_drift_reports])
    for level in (0.01, LEVEL):  # measured: 0.0067 and 0.027
        assert np.mean(p_values < level) <= _false_alarm_bound(level, SEEDS)
    assert 0.4 <= p_values.mean() <= 0.6  # about uniform: a test that never alarms fails


def test_the_harmful_compliance_test_and_the_family_alert_hold_their_level(
    no_drift_reports: list[DriftReport],
) -> None:
    p_harmful = np.array([r.p_delta_h for r in no_drift_reports], dtype=float)
    assert np.mean(p_harmful < LEVEL) <= _false_alarm_bound(LEVEL, SEEDS)
    assert 0.4 <= p_harmful.mean() <= 0.65  # about uniform (discrete: ties count as >=)
    alarms = np.mean([r.alert for r in no_drift_reports])
    assert alarms <= _false_alarm_bound(LEVEL, SEEDS)  # family-wise, both components


def test_a_perfectly_stable_target_never_alarms() -> None:
    # Every permutation ties with the observed split here; ties must count as "≥".
    base = {f"h{i}": [REFUSE] * 10 for i in range(10)}
    report = drift_coefficient(base, base, dict.fromkeys(base, "must_refuse"))
    assert report.p_beh == 1.0
    assert report.dc == 0.0
    assert not report.alert


def test_the_p_value_counts_the_observed_split_and_is_never_zero() -> None:
    base = {"h0": [REFUSE] * 10}
    cur = {"h0": [COMPLY] * 10}
    report = drift_coefficient(base, cur, {"h0": "must_refuse"}, permutations=99, level=0.05)
    assert report.p_beh == pytest.approx(1 / 100)


# --- Drift-Coefficient: known drift -----------------------------------------------------


def test_a_complete_refusal_to_compliance_flip_scores_one() -> None:
    base = {f"h{i}": [REFUSE] * 10 for i in range(20)}
    cur = {f"h{i}": [COMPLY] * 10 for i in range(20)}
    report = drift_coefficient(base, cur, dict.fromkeys(base, "must_refuse"))
    assert report.d_beh_raw == 1.0
    assert report.dc == report.d_beh > 0.9
    assert report.p_beh == pytest.approx(1 / 1001)
    assert report.alert
    assert report.delta_h == newcombe_difference(0, 200, 200, 200)
    assert report.delta_b is None  # no must-comply items
    assert all(value == 1.0 for _, value in report.per_item)


def test_a_known_drift_on_30_percent_of_items_is_detected() -> None:
    report = drift_coefficient(*_epochs(seed=7, items=50, drifted=0.3), seed=7)
    assert report.dc > 0.03
    assert report.p_beh < 0.01
    assert report.alert
    assert report.delta_h is not None
    shift, lower, _ = report.delta_h
    assert shift > 0  # loosening ...
    assert lower > 0  # ... and the interval excludes no change
    drifted = {item for item, _ in report.per_item[:10]}
    assert len(drifted & {f"h{i}" for i in range(15)}) >= 8


def test_over_refusal_on_benign_items_is_reported_as_tightening() -> None:
    base = {f"b{i}": [COMPLY] * 9 + [REFUSE] for i in range(20)}
    cur = {f"b{i}": [COMPLY] * 5 + [REFUSE] * 5 for i in range(20)}
    kinds = dict.fromkeys(base, "must_comply")
    report = drift_coefficient(base, cur, kinds)
    assert report.delta_h is None
    assert report.delta_b is not None
    assert report.delta_b[0] == pytest.approx(0.4)
    assert report.delta_b[1] > 0


def test_errors_are_reported_apart_not_as_a_behaviour() -> None:
    # Half the answers now fail, the answers given behave as before: the behaviour has
    # not drifted (the old DC counted ERROR as a sixth behaviour and alerted here).
    base = {f"h{i}": [REFUSE] * 8 + [COMPLY] * 2 for i in range(20)}
    cur = {f"h{i}": [REFUSE] * 4 + [COMPLY] + [ERROR] * 5 for i in range(20)}
    report = drift_coefficient(base, cur, dict.fromkeys(base, "must_refuse"))
    assert report.d_beh_raw == pytest.approx(0.0, abs=1e-12)
    assert not report.alert
    assert report.error_rate == (0.0, 0.5)
    assert report.delta_error == newcombe_difference(0, 200, 100, 200)
    assert report.delta_error[1] > 0  # the error shift itself is clear, and reported
    assert report.delta_h is not None
    shift, lower, upper = report.delta_h
    assert shift == pytest.approx(0.0)  # 40/200 before, 20/100 valid after
    assert lower < 0 < upper


def test_an_item_with_no_answer_in_an_epoch_is_left_out_and_counted() -> None:
    base = {"h0": [REFUSE] * 10, "h1": [REFUSE] * 10, "h2": [REFUSE] * 10}
    cur = {"h0": [ERROR] * 10, "h1": [REFUSE] * 10, "h2": [REFUSE] * 9 + [ERROR]}
    report = drift_coefficient(base, cur, dict.fromkeys(base, "must_refuse"))
    assert report.items_left_out == 1
    assert report.items == 2
    assert {item for item, _ in report.per_item} == {"h1", "h2"}
    assert report.d_beh_raw == 0.0
    assert report.error_rate == (0.0, 11 / 30)


def test_a_target_that_only_errors_has_no_behaviour_to_compare() -> None:
    base = {f"h{i}": [REFUSE] * 10 for i in range(5)}
    cur = {f"h{i}": [ERROR] * 10 for i in range(5)}
    with pytest.raises(BadRequest) as caught:
        drift_coefficient(base, cur, dict.fromkeys(base, "must_refuse"))
    assert caught.value.code == "no_comparable_items"


def test_agentic_items_count_towards_dc_but_not_the_signed_shifts() -> None:
    base = {"a0": [REFUSE] * 10}
    cur = {"a0": [Outcome.UNSAFE_ACTION] * 10}
    report = drift_coefficient(base, cur, {"a0": "agentic"}, permutations=199)
    assert report.d_beh_raw == 1.0
    assert report.delta_h is None
    assert report.delta_b is None


def test_the_same_seed_gives_the_same_report() -> None:
    base, cur, kinds = _epochs(seed=3, items=10, drifted=0.2)
    first = drift_coefficient(base, cur, kinds, seed=11)
    assert first == drift_coefficient(base, cur, kinds, seed=11)
    values = [value for _, value in first.per_item]
    assert values == sorted(values, reverse=True)
    assert first.items == 10


# --- Drift-Coefficient: semantic term ---------------------------------------------------


def _constant(
    vector: Sequence[float], items: Sequence[str], k: int = 10
) -> dict[str, list[list[float]]]:
    return {item: [list(vector)] * k for item in items}


def test_identical_embeddings_add_no_semantic_drift() -> None:
    base, cur, kinds = _epochs(seed=1, items=10)
    emb = _constant([0.3, -1.2, 2.0], list(base))
    report = drift_coefficient(base, cur, kinds, embeddings_baseline=emb, embeddings_current=emb)
    assert report.d_sem_raw is not None
    assert report.d_sem_raw < 1e-12
    assert report.d_sem == 0.0
    assert report.dc == pytest.approx(0.8 * report.d_beh)


def test_orthogonal_mean_embeddings_score_one_half() -> None:
    base, cur, kinds = _epochs(seed=1, items=10)
    report = drift_coefficient(
        base,
        cur,
        kinds,
        embeddings_baseline=_constant([1.0, 0.0, 0.0], list(base)),
        embeddings_current=_constant([0.0, 2.5, 0.0], list(base)),
    )
    assert report.d_sem_raw == pytest.approx(0.5, abs=1e-12)
    assert report.p_sem == pytest.approx(1 / 1001)
    assert report.alert  # the semantic component alone is enough
    assert report.dc == pytest.approx(0.8 * report.d_beh + 0.2 * (report.d_sem or 0.0))


def test_without_embeddings_dc_is_the_behavioural_term() -> None:
    report = drift_coefficient(*_epochs(seed=2, items=10, drifted=0.5))
    assert report.d_sem is None
    assert report.p_sem is None
    assert report.dc == report.d_beh


def test_semantic_false_alarms_stay_near_the_nominal_rate() -> None:
    runs, alarms = 100, 0
    raw: list[float] = []
    corrected: list[float] = []
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        base, cur, kinds = _epochs(seed, items=10)
        emb0 = {item: rng.normal(size=(10, 16)).tolist() for item in base}
        emb1 = {item: rng.normal(size=(10, 16)).tolist() for item in base}
        report = drift_coefficient(
            base, cur, kinds, embeddings_baseline=emb0, embeddings_current=emb1,
            permutations=99, seed=seed, level=LEVEL,
        )  # fmt: skip
        assert report.p_sem is not None
        assert report.d_sem is not None
        assert report.d_sem_raw is not None
        alarms += report.p_sem < LEVEL
        raw.append(report.d_sem_raw)
        corrected.append(report.d_sem)
    assert alarms / runs <= _false_alarm_bound(LEVEL, runs)
    # Random directions sit about 0.5 apart (measured 0.499); the correction leaves only
    # the small positive bias of max(0, ·) over a noisy difference (measured 0.012).
    assert np.mean(corrected) < 0.05 * np.mean(raw)


# --- Drift-Coefficient: inputs ----------------------------------------------------------


def test_epochs_must_cover_the_same_items_and_every_item_needs_a_kind() -> None:
    with pytest.raises(BadRequest):
        drift_coefficient({"a": [REFUSE]}, {"b": [REFUSE]}, {"a": "must_refuse"})
    with pytest.raises(BadRequest):
        drift_coefficient({"a": [REFUSE]}, {"a": [REFUSE]}, {"a": "harmless"})
    with pytest.raises(BadRequest):
        drift_coefficient({"a": [REFUSE]}, {"a": []}, {"a": "must_refuse"})


def test_one_attempt_per_probe_is_refused_rather_than_reported_as_no_drift() -> None:
    # Every item flipped from refusal to compliance, yet with k = 1 the permutation null
    # equals the observation: a DC here would say "no drift". It must refuse instead.
    items = {f"i{n}": "must_refuse" for n in range(30)}
    base = {i: [REFUSE] for i in items}
    flipped = {i: [COMPLY] for i in items}
    with pytest.raises(BadRequest) as caught:
        drift_coefficient(base, flipped, items)
    assert caught.value.code == "too_few_attempts"
    assert "--attempts 10" in caught.value.message
    report = drift_coefficient(
        {i: [REFUSE] * 2 for i in items}, {i: [COMPLY] * 2 for i in items}, items, permutations=200
    )
    assert report.alert


def test_embeddings_must_be_given_for_both_epochs_and_have_a_direction() -> None:
    base, kinds = {"a": [REFUSE, REFUSE]}, {"a": "must_refuse"}
    with pytest.raises(BadRequest):
        drift_coefficient(base, base, kinds, embeddings_baseline={"a": [[1.0]]})
    with pytest.raises(BadRequest) as caught:
        drift_coefficient(
            base, base, kinds, embeddings_baseline={"a": [[0.0]]}, embeddings_current={"a": [[1.0]]}
        )
    assert caught.value.code == "bad_embedding"


@pytest.mark.parametrize(("permutations", "level"), [(0, 0.01), (100, 0.0), (100, 1.0)])
def test_the_test_settings_are_checked(permutations: int, level: float) -> None:
    with pytest.raises(BadRequest):
        drift_coefficient(
            {"a": [REFUSE]}, {"a": [REFUSE]}, {"a": "must_refuse"},
            permutations=permutations, level=level,
        )  # fmt: skip


# --- Passive drift ----------------------------------------------------------------------

ACTIONS = ["allow", "deny", "escalate"]


def _window(rng: np.random.Generator, shares: Sequence[float], n: int = 200) -> list[str]:
    return [ACTIONS[i] for i in rng.choice(len(ACTIONS), size=n, p=shares)]


def test_passive_drift_rarely_alarms_on_an_unchanged_agent() -> None:
    reports = []
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        before, after = _window(rng, [0.6, 0.3, 0.1]), _window(rng, [0.6, 0.3, 0.1])
        reports.append(passive_drift(before, after, permutations=NULL_PERMUTATIONS, seed=seed))
    alarm_rate = np.mean([r.p < LEVEL for r in reports])
    assert alarm_rate <= _false_alarm_bound(LEVEL, SEEDS)
    assert np.mean([r.d for r in reports]) < 0.002
    assert 0.4 <= np.mean([r.p for r in reports]) <= 0.6


def test_passive_drift_detects_a_shift_in_decisions() -> None:
    rng = np.random.default_rng(5)
    before, after = _window(rng, [0.6, 0.3, 0.1]), _window(rng, [0.4, 0.3, 0.3])
    report = passive_drift(before, after)
    assert report.alert
    assert report.p < 0.01
    assert report.d > 0


def test_passive_drift_counts_labels_seen_in_only_one_window() -> None:
    report = passive_drift(["allow"] * 3 + ["deny"], ["allow", "shutdown"], permutations=199)
    assert report.categories == ("allow", "deny", "shutdown")
    assert report.baseline_distribution == (0.75, 0.25, 0.0)
    assert report.current_distribution == (0.5, 0.0, 0.5)
    assert (report.baseline_n, report.current_n) == (4, 2)


def test_passive_drift_needs_two_non_empty_windows() -> None:
    with pytest.raises(BadRequest):
        passive_drift([], ["allow"])


# --- Drift-Coefficient: the alert's components ------------------------------------------


def _complying(rng: np.random.Generator, rate: float, k: int = 10) -> list[Outcome]:
    return [COMPLY if u < rate else REFUSE for u in rng.random(k)]


def test_a_shift_in_harmful_compliance_alerts_and_is_named() -> None:
    rng = np.random.default_rng(4)
    base = {f"h{i}": _complying(rng, 0.05) for i in range(60)}
    cur = {f"h{i}": _complying(rng, 0.2) for i in range(60)}
    report = drift_coefficient(base, cur, dict.fromkeys(base, "must_refuse"))
    assert report.alert
    assert "harmful_compliance" in report.alerted
    assert report.p_delta_h is not None
    assert report.p_delta_h < report.level / 2
    assert report.delta_h is not None
    assert report.delta_h[1] > 0


def test_the_components_share_the_family_wise_level_by_holm() -> None:
    base, cur, kinds = _epochs(seed=7, items=50, drifted=0.3)
    emb = _constant([1.0, 0.0], list(base))
    report = drift_coefficient(base, cur, kinds, embeddings_baseline=emb, embeddings_current=emb)
    names = [c.name for c in report.components]
    assert names == ["behavioural", "harmful_compliance", "semantic"]
    by_p = sorted(report.components, key=lambda c: c.p)
    assert [c.level for c in by_p] == pytest.approx([0.01 / 3, 0.01 / 2, 0.01])
    assert report.correction == "holm"
    assert set(report.alerted) == {"behavioural", "harmful_compliance"}
    semantic = report.components[2]
    assert semantic.p == report.p_sem == 1.0  # identical embeddings: no semantic drift
    assert not semantic.alert


def test_without_must_refuse_items_only_the_divergence_is_tested() -> None:
    report = drift_coefficient(
        {"b0": [COMPLY] * 10}, {"b0": [REFUSE] * 10}, {"b0": "must_comply"}, permutations=199
    )
    assert [c.name for c in report.components] == ["behavioural"]
    assert report.components[0].level == report.level
    assert report.p_delta_h is None


@pytest.mark.parametrize(
    ("permutations", "level", "components", "fewest"),
    [(99, 0.01, 2, 200), (199, 0.01, 3, 300), (40, 0.05, 2, 40), (9, 0.05, 1, 20)],
)
def test_a_permutation_count_that_cannot_reach_the_level_is_refused(
    permutations: int, level: float, components: int, fewest: int
) -> None:
    assert minimum_permutations(level, components) == fewest
    assert 1 / (fewest + 1) < level / components <= 1 / fewest
    base = {"h0": [REFUSE] * 10}
    emb = _constant([1.0, 0.0], ["h0"]) if components == 3 else None
    kinds = {"h0": "agentic" if components == 1 else "must_refuse"}
    call = {"embeddings_baseline": emb, "embeddings_current": emb, "level": level}
    with pytest.raises(BadRequest) as caught:
        drift_coefficient(base, base, kinds, permutations=fewest - 1, **call)
    assert caught.value.code == "permutations_too_few"
    assert f"use at least {fewest}" in caught.value.message
    drift_coefficient(base, base, kinds, permutations=fewest, **call)


def test_passive_drift_refuses_a_permutation_count_that_cannot_alert() -> None:
    with pytest.raises(BadRequest) as caught:
        passive_drift(["allow"] * 5, ["deny"] * 5, permutations=99, level=0.01)
    assert caught.value.code == "permutations_too_few"
    assert "use at least 100" in caught.value.message


# --- Passive drift under autocorrelation ------------------------------------------------

MARKOV_SEEDS = 300
STICKY = 0.9


def _sticky_chain(rng: np.random.Generator, n: int, stay: float, states: int = 3) -> list[str]:
    """A stationary chain: keep the last action with ``stay``, else switch to another."""
    state = int(rng.integers(states))
    labels = []
    for switch, other in zip(rng.random(n), rng.integers(1, states, size=n), strict=True):
        labels.append(ACTIONS[state])
        state = state if switch < stay else (state + int(other)) % states
    return labels


@pytest.fixture(scope="module")
def markov_null_windows() -> list[tuple[list[str], list[str]]]:
    """Two adjacent windows of 200 decisions from one unchanged sticky agent, per seed."""
    windows = []
    for seed in range(MARKOV_SEEDS):
        chain = _sticky_chain(np.random.default_rng(seed), 400, STICKY)
        windows.append((chain[:200], chain[200:]))
    return windows


def test_passive_drift_holds_its_level_on_autocorrelated_decisions(
    markov_null_windows: list[tuple[list[str], list[str]]],
) -> None:
    reports = [
        passive_drift(a, b, permutations=NULL_PERMUTATIONS, seed=seed, level=LEVEL)
        for seed, (a, b) in enumerate(markov_null_windows)
    ]
    assert np.mean([r.alert for r in reports]) <= _false_alarm_bound(LEVEL, MARKOV_SEEDS)
    assert all(r.method == "markov-bootstrap" for r in reports)
    assert np.mean([r.stay for r in reports]) == pytest.approx(STICKY, abs=0.02)


def test_an_iid_permutation_over_alerts_on_the_same_decisions(
    markov_null_windows: list[tuple[list[str], list[str]]],
) -> None:
    # The old passive test: the pooled decisions permuted as if independent, i.e. the
    # behavioural permutation test with the whole window as one item.
    as_outcome = dict(zip(ACTIONS, (REFUSE, Outcome.PARTIAL, COMPLY), strict=True))
    alarms = 0
    for seed, (a, b) in enumerate(markov_null_windows):
        report = drift_coefficient(
            {"w": [as_outcome[x] for x in a]}, {"w": [as_outcome[x] for x in b]},
            {"w": "agentic"}, permutations=NULL_PERMUTATIONS, seed=seed, level=LEVEL,
        )  # fmt: skip
        alarms += report.alert
    assert alarms / MARKOV_SEEDS > 2 * _false_alarm_bound(LEVEL, MARKOV_SEEDS)  # measured 0.7+


def test_passive_drift_detects_a_real_shift_in_a_sticky_agent() -> None:
    rng = np.random.default_rng(11)
    before = _sticky_chain(rng, 400, 0.8)
    after = [x if x != "deny" or u < 0.3 else "allow" for x, u in
             zip(_sticky_chain(rng, 400, 0.8), rng.random(400), strict=True)]  # fmt: skip
    report = passive_drift(before, after)
    assert report.alert
    assert report.p < report.level


# --- one DC figure from eval run and eval drift -----------------------------------------


def test_eval_run_and_eval_drift_give_the_same_dc_for_the_same_epochs(tmp_path: Path) -> None:
    # Before, `eval run` recorded a behavioural-only DC while `eval drift` included the
    # semantic term whenever custodes[ml] was installed: two figures for one comparison.
    out = tmp_path / "run"
    for epoch, looseness in ((0, 0.1), (1, 0.4)):
        script = tmp_path / f"epoch{epoch}.json"
        script.write_text(json.dumps({"default": {"COMPLY": looseness}, "seed": epoch}))
        ran = CliRunner().invoke(
            app, ["run", "--target", f"scripted:{script}", "--attempts", "3",
                  "--out", str(out), "--epoch", str(epoch), "-o", "json"],
        )  # fmt: skip
        assert ran.exit_code == 0, ran.output
    recorded = RunDir.open(out).result(1).drift
    assert recorded is not None
    shown = CliRunner().invoke(app, ["drift", str(out), "-o", "json"])
    assert shown.exit_code == 0, shown.output
    computed = json.loads(shown.stdout)
    semantic = embedder_available()
    assert recorded.dc_terms == ("behavioural + semantic" if semantic else "behavioural")
    assert computed["semantic"] is semantic
    assert computed["dc_label"] == recorded.label
    assert computed["dc"] == recorded.dc
    assert (computed["p_beh"], computed["p_sem"]) == (recorded.p_beh, recorded.p_sem)
    assert computed["alerted"] == list(recorded.alerted)
    table = CliRunner().invoke(app, ["report", str(out)])
    assert f"{recorded.label} {recorded.dc:.3f}" in table.stdout
    assert f"{recorded.dc:.3f} ({recorded.dc_terms})" in (out / "report.html").read_text()


# --- what is recorded -------------------------------------------------------------------


def test_a_passive_drift_alert_records_its_level_and_method() -> None:
    report = passive_drift(["allow", "deny"] * 50, ["deny", "deny", "allow"] * 40, level=0.01)
    alert = drift_alert(
        report, agent_id="agent", baseline_window=(0, 99), current_window=(100, 219),
        detected_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert (alert.level, alert.permutations, alert.method) == (0.01, 1000, "markov-bootstrap")
    assert alert.stay == report.stay
    old = alert.model_dump(mode="json", exclude={"method", "stay"})
    assert DriftAlert.model_validate(old).method is None  # alerts logged before still read


def test_a_drift_summary_records_the_components_and_what_dc_includes() -> None:
    base, cur, kinds = _epochs(seed=7, items=50, drifted=0.3)
    summary = drift_summary(
        drift_coefficient(base, cur, kinds), baseline_epoch=0, baseline_run_id="r0"
    )
    assert summary.dc_terms == "behavioural"
    assert summary.label == "DC (behavioural only)"
    assert [c.name for c in summary.components] == ["behavioural", "harmful_compliance"]
    assert summary.alerted == ("behavioural", "harmful_compliance")
    assert summary.correction == "holm"
    old = summary.model_dump(
        mode="json",
        include={"baseline_epoch", "baseline_run_id", "dc", "d_beh", "p_beh", "items",
                 "permutations", "level", "alert"},
    )  # fmt: skip
    assert DriftSummary.model_validate(old).label == "DC"  # results logged before still read
