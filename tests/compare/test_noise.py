"""The noise-aware verdict: the pure rule on its four outcomes, then real tiny FLUX runs (CPU) recorded in a real
MLflow store: the same config twice is within noise, four times the denoise steps is slower, through the CLI."""

from __future__ import annotations

import pytest

from diffexp.compare.__main__ import main
from diffexp.compare.noise import (
    AMBIGUOUS,
    FASTER,
    NOISE_UNKNOWN,
    SLOWER,
    WITHIN_NOISE,
    compare_runs,
    judge,
    machine_note,
    recorded_sample,
    verdict,
)
from diffexp.measure.pairing import alternating
from diffexp.measure.stats import Delta

# This shared 2-core machine (load average 5-9 from other jobs) drifts by tens of percent between two runs a few
# seconds apart: the same config twice is compared the way diffexp.ab does it, in interleaved rounds whose
# paired ratios cancel the drift, on each round's median step, against an effect this machine can resolve.
# On a GPU the default is the guide's 2 %.
CPU_MIN_EFFECT_PCT = 40.0
ROUNDS, REPEATS = 6, 5


@pytest.mark.parametrize(
    "low, high, expected",
    [
        (2.5, 6.0, SLOWER),
        (-9.0, -2.1, FASTER),
        (-1.9, 1.9, WITHIN_NOISE),
        (-1.0, 3.0, AMBIGUOUS),
        (None, None, NOISE_UNKNOWN),
    ],
)
def test_the_interval_decides(low, high, expected):
    assert judge(Delta(1.0, low, high, 5, 5), 2.0) == expected


def test_a_single_shot_side_is_noise_unknown_and_the_delta_is_still_shown():
    v = verdict([1.0], [1.1, 1.12, 1.09])
    assert v.verdict == NOISE_UNKNOWN and v.delta.pct == pytest.approx(10.0)
    assert "single shot" in v.text()


def test_machine_note_names_the_throttle():
    assert machine_note({"gpu.throttled": "true", "gpu.throttle": "power"}) == "GPU THROTTLED (power)"
    assert machine_note({"gpu.throttled": "true", "gpu.throttle": "none"}) == "GPU THROTTLED (clocks fell)"
    assert machine_note({}) == "GPU not sampled"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Rounds of base and same (4 steps each), AB BA AB …, then slow (16 steps): run ids by name."""
    import torch

    from diffexp.config import compose, to_config
    from diffexp.run import execute

    # One intra-op thread: on cores shared with other jobs, a second thread descheduled at every op's barrier
    # turns a 20 ms step into 400 ms; one thread only slows with the load.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("noise")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # The order alternates as diffexp.ab's does: CI saw the second run of every round 18 % faster in one process
    # (-18.4 % [-28.1, -3.8] with base always first), an effect of going second, not of the config.
    plan = [(f"{side}{r}", 4) for r in range(ROUNDS) for side in alternating(("base", "same"), r)] + [("slow", 16)]
    out = {}
    try:
        for name, steps in plan:
            overrides = [
                "engine.device=cpu",
                "compile.warmup=true",  # one untimed generation: the first in a process pays one-off costs
                f"model.sampling.num_inference_steps={steps}",
                f"measure.repeats={REPEATS}",
                f"tracking.uri={uri}",
                f"output_dir={root / name}",
            ]
            out[name] = execute(to_config(compose(overrides)), root / name).run_id
    finally:
        torch.set_num_threads(threads)
    return uri, out


def recorded(uri, run_id):
    from diffexp.tracking.records import get_run
    from diffexp.tracking.store import client_for

    client = client_for(uri)
    return client, get_run(client, run_id)


@pytest.mark.slow
def test_same_config_twice_is_within_noise(runs):
    from statistics import median

    uri, ids = runs
    client, _ = recorded(uri, ids["base0"])
    per_round = {
        side: [median(recorded_sample(client, ids[f"{side}{r}"], "denoise_step_ms")) for r in range(ROUNDS)]
        for side in ("base", "same")
    }
    v = verdict(per_round["base"], per_round["same"], "denoise_step_ms", CPU_MIN_EFFECT_PCT, paired=True)
    assert v.delta.paired and v.delta.ci95_low_pct <= v.delta.pct <= v.delta.ci95_high_pct
    # No assertion at the guide's 2 %: with no effect at all a 95 % interval misses zero in 1 run of 20, so a test
    # that demanded "no difference" there would fail by design that often.
    # On a shared 2-core machine the interval's width follows the other jobs' load, which no test can control or
    # read back for the minutes the rounds took (CI saw +4.5 % [-27.5, +42.4] % with the 1-minute load below 2 at
    # the end): "ambiguous" is then the honest verdict. What must hold on any machine: the point estimate is inside
    # the effect this machine can resolve, and the verdict never claims a difference.
    assert abs(v.delta.pct) < CPU_MIN_EFFECT_PCT, v.text()
    assert v.verdict in (WITHIN_NOISE, AMBIGUOUS), v.text()


@pytest.mark.slow
def test_four_times_the_steps_is_slower(runs):
    uri, ids = runs
    client, base = recorded(uri, ids["base0"])
    _, slow = recorded(uri, ids["slow"])
    v, lines = compare_runs(client, base, slow)  # the guide's 2 %: 4x the steps is far beyond any noise
    # Far beyond it, not exactly how far: on the shared 2-core box one slow repeat took the interval's low end to
    # +98.8 % of a +289 % effect (2026-12-02), so the bound asked for is half the work added, not all of it.
    assert v.verdict == SLOWER and v.delta.ci95_low_pct > 50, v.text()
    assert (v.delta.n_base, v.delta.n_cand) == (REPEATS, REPEATS)
    assert lines[1] == "machine: baseline GPU not sampled; candidate GPU not sampled"


def printed(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())  # rich wraps long lines to the terminal's width


@pytest.mark.slow
def test_cli_rule_noise_decides_the_exit_status(runs, capsys):
    uri, ids = runs
    args = ["--tracking-uri", uri]
    # 16 steps against 4 is different work by design: the deliberately slower config.
    assert main([ids["base0"], ids["slow"], "--rule", "noise", "--allow-different-work", *args]) == 1
    assert "→ slower" in printed(capsys)
    # The guide's rule is unchanged; the noise verdict is shown beside it.
    main([ids["base0"], ids["same0"], *args])
    assert "noise: denoise_s" in printed(capsys)
