"""listening_study.analysis.pipeline on ratings with known answers (malformed files: test_analyze_bad_inputs.py)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from known_ratings import MEANS, SONGS, TARGETS, rating_rows

from listening_study.analysis.museval_sdr import eval_excerpt_sdr as excerpt_sdr
from listening_study.analysis.pipeline import analyze, main
from listening_study.analysis.stats import holm, mean_ci
from listening_study.sessions.ratings import COLUMNS


def test_screening_is_per_session_and_names_shared_codes(tmp_path):
    """Two sessions that typed the same code "P07": the careless one (hidden reference at 60 in 7 of 12
    trials... here in all 6) is excluded, the honest one kept; the code is listed as shared. A session
    that failed the headphone check is excluded with that reason."""
    rng = np.random.default_rng(11)
    careless = rating_rows("P07", rng, reference_score=60.0)
    honest = [{**row, "session_uuid": "f" * 32} for row in rating_rows("P07", rng)]
    others = [row for i in range(4) for row in rating_rows(f"Q{i}", rng)]
    path = tmp_path / "ratings.csv"
    pd.DataFrame(careless + honest + others, columns=list(COLUMNS)).to_csv(path, index=False)
    failed = hashlib.sha1(b"Q2").hexdigest()[:32]
    result = analyze(path, out_dir=tmp_path / "out",
                     headphones={failed: {"passed": False, "n_correct": 3, "n_trials": 6}})  # fmt: skip
    careless_id = hashlib.sha1(b"P07").hexdigest()[:32]
    assert set(result.excluded) == {careless_id, failed} and len(result.participants) == 6
    screening = result.screening.set_index("session_uuid")
    assert not screening.loc["f" * 32, "excluded"] and screening.loc["f" * 32, "participant_id"] == "P07"
    assert screening.loc[failed, "reason"] == "failed the headphone check (3 of 6 right)"
    assert screening.loc[failed, "headphone_check"] == "failed"
    assert result.shared_codes.to_dict("records") == [
        {"participant_id": "P07", "n_sessions": 2, "sessions": f"{careless_id[:8]} ffffffff"}
    ]
    assert result.n_ratings == 4 * 6 * 5  # the honest P07 and Q0, Q1, Q3
    assert "Participant codes typed in more than one session" in result.markdown
    assert (tmp_path / "out" / "shared_codes.csv").is_file()
    # the metrics of the rated excerpts beside the ratings: one that follows the planted means predicts
    # the listeners (over the 3 songs x 4 conditions of a target), a constant one cannot
    metrics = pd.DataFrame([
        {"trial_id": f"{song}-{target}", "song": song, "target": target, "excerpt_start_s": 2.0,
         "excerpt_end_s": 10.0, "condition": condition, "metric": metric,
         "value": (mean if metric == "GOOD" else 1.0) + (0.0 if condition != "reference" else float("inf"))}
        for song in SONGS for target in TARGETS for condition, mean in MEANS.items() for metric in ("GOOD", "FLAT")
    ])  # fmt: skip
    result = analyze(
        path, out_dir=tmp_path / "out2", headphones={failed: {"passed": False}}, excerpt_metrics=metrics
    )
    table = pd.read_csv(tmp_path / "out2" / "metric_correlations.csv").set_index(["metric", "target"])
    assert len(table) == 2 * 3 and table.loc[("GOOD", "all"), "n"] == 2 * 3 * 4
    assert table.loc[("GOOD", "vocals"), "spearman_rho"] > 0.9  # ties within a condition keep it below 1
    assert math.isnan(table.loc[("FLAT", "vocals"), "spearman_rho"])
    assert set(result.best_metrics["metric"]) == {"GOOD"}
    assert "Which objective metric predicts these listeners?" in result.markdown
    # the same from the command line: --excerpt-metrics and --sessions (the study's session files)
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    check = {"session_id": failed, "headphones": {"passed": False, "n_correct": 2, "n_trials": 6}}
    (sessions / f"{failed}.json").write_text(json.dumps(check))
    metrics.to_csv(tmp_path / "excerpt_metrics.csv", index=False)
    arguments = [
        str(path),
        "--out",
        str(tmp_path / "cli"),
        "--excerpt-metrics",
        str(tmp_path / "excerpt_metrics.csv"),
    ]
    assert main([*arguments, "--sessions", str(sessions)]) == 0
    screening = pd.read_csv(tmp_path / "cli" / "screening.csv").set_index("session_uuid")
    assert screening.loc[failed, "reason"] == "failed the headphone check (2 of 6 right)"
    assert (tmp_path / "cli" / "metric_correlations.csv").is_file()
    assert main([str(path), "--out", str(tmp_path / "cli2"), "--sessions", str(tmp_path / "nothing")]) == 2


def test_mean_ci_and_holm_hand_computed():
    mean, half = mean_ci([60.0, 70.0, 80.0])
    assert mean == pytest.approx(70.0)
    assert half == pytest.approx(4.302653 * 10.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.302653
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_known_answers(known_csv, tmp_path):
    path, frame = known_csv
    result = analyze(path, out_dir=tmp_path / "out")
    # post-screening: only the planted participant's session, with the reason
    assert result.excluded == (hashlib.sha1(b"BAD").hexdigest()[:32],)
    bad = result.screening.set_index("participant_id").loc["BAD"]
    assert bad["fraction_reference_below"] == 1.0 and "below 90" in bad["reason"]
    assert not result.screening.set_index("participant_id").drop("BAD")["excluded"].any()
    # means and CIs against a direct computation on the kept rows
    kept = frame[(frame["mode"] == "mushra") & (frame["participant_id"] != "BAD")]
    assert result.n_ratings == len(kept) == 12 * 6 * 5
    summary = result.summary.set_index(["target", "condition"])
    for condition in MEANS:
        scores = kept[kept["rating_stimulus"] == condition]["rating_score"].to_numpy()
        n = scores.size
        half = float(pd.Series(scores).std(ddof=1)) / math.sqrt(n) * _t975(n - 1)
        row = summary.loc[("all", condition)]
        assert row["n"] == n == 72
        assert row["mean"] == pytest.approx(scores.mean())
        assert row["ci_high"] - row["mean"] == pytest.approx(half, rel=1e-6)
        assert row["median"] == pytest.approx(np.median(scores))
    assert abs(summary.loc[("all", "X"), "mean"] - 70) < 3 and abs(summary.loc[("all", "Y"), "mean"] - 40) < 3
    # X significantly better than Y after Holm, overall and for each target
    pairs = result.pairwise.set_index(["target", "condition_a", "condition_b"])
    for target in ("all", *TARGETS):
        xy = pairs.loc[(target, "X", "Y")]
        assert xy["significant"] and xy["better"] == "X" and xy["p_holm"] < 0.05
        assert xy["p_holm"] >= xy["p_value"]
    friedman = result.friedman.set_index(["target", "scope"]).loc[("all", "all conditions")]
    assert friedman["n_blocks"] == 72 and friedman["p_value"] < 1e-6
    # A/B: 10 of 12 prefer X; two-sided binomial p = 2 * P(K >= 10 | 12, 0.5) = 2 * 79 / 4096
    ab = result.ab.set_index("target").loc["all"]
    assert (ab["condition_a"], ab["wins_a"], ab["wins_b"]) == ("X", 10, 2)
    assert ab["p_value"] == pytest.approx(2 * 79 / 4096)
    assert ab["mean_confidence"] == pytest.approx((10 * 2 + 2 * 1) / 12)
    # files exist and parse
    for name in ("screening", "summary", "pairwise", "friedman", "ab"):
        assert not pd.read_csv(result.files[name]).empty
    assert result.files["boxplots"].stat().st_size > 1000
    assert "BAD" in result.files["markdown"].read_text()


def _t975(dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def _museval_json(path, targets, sdr_per_second: list[float]):
    frames = [{"time": float(i), "duration": 1.0, "metrics": {"SDR": v, "SIR": 0.0, "ISR": 0.0, "SAR": 0.0}}
              for i, v in enumerate(sdr_per_second)]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"targets": [{"name": target, "frames": frames} for target in targets]}))


def test_sdr_within_excerpt_and_correlation(known_csv, tmp_path):
    path, _ = known_csv
    eval_dir = tmp_path / "eval"
    for song in SONGS:
        for method, level in (("X", 8.0), ("Y", 2.0), ("MIX", -4.0)):
            # outside the 2-10 s excerpt the SDR is -50: it must not leak in
            values = [-50.0] * 2 + [level + k for k in range(8)] + [-50.0] * 4
            _museval_json(eval_dir / method / "test" / f"{song}.json", TARGETS, values)
    assert excerpt_sdr(eval_dir, "X", "song_a", "vocals", 2.0, 10.0) == pytest.approx(8.0 + 3.5)
    assert excerpt_sdr(eval_dir, "X", "song_a", "vocals") == pytest.approx(
        np.median([-50.0] * 6 + list(range(8, 16)))
    )
    assert math.isnan(excerpt_sdr(eval_dir, "Z", "song_a", "vocals", 2.0, 10.0))
    result = analyze(path, sdr_dir=eval_dir)
    points = result.sdr_points
    assert set(points["condition"]) == {"X", "Y", "mixture"}  # mixture scored by the MIX oracle
    correlation = result.sdr_correlation.set_index(["scope", "target"])
    both = correlation.loc[("systems and anchors", "all")]
    assert both["n"] == 3 * 2 * 3 and both["pearson_r"] > 0.9 and both["spearman_rho"] > 0.8
    assert correlation.loc[("systems", "all"), "n"] == 3 * 2 * 2  # X and Y only


def _hand_rows(participant: str, ratings: dict[tuple[str, str], float]) -> list[dict]:
    """MUSHRA rows of one listener: ratings[(song, condition)] for target vocals."""
    return [
        {"session_test_id": "hand", "participant_id": participant, "session_uuid": f"{participant:0>32}",
         "trial_id": f"{song}-vocals", "song": song, "target": "vocals", "excerpt_start_s": 1.0,
         "excerpt_end_s": 9.0, "rating_stimulus": condition, "screen_label": "ABCD"[i % 4],
         "rating_score": score, "rating_time": 20000, "n_plays": 1, "rating_comment": "",
         "timestamp": "2026-01-01T00:00:00.000+00:00", "app_version": "0.1.0", "mode": "mushra"}
        for i, ((song, condition), score) in enumerate(ratings.items())
    ]  # fmt: skip


def test_sdr_rating_correlations_known_answers(tmp_path):
    """The SDR table of the rated excerpts (as listening_study.analysis.excerpt_sdr writes it) beside hand-made
    ratings: points, correlations across conditions and each listener's Kendall tau, known answers."""
    from scipy import stats

    sdr = {("s1", "X"): 1.0, ("s1", "Y"): 2.0, ("s2", "X"): 3.0, ("s2", "Y"): 4.0, ("s1", "anchor35"): -5.0,
           ("s2", "anchor35"): -3.0, ("s1", "reference"): math.inf, ("s2", "reference"): math.inf}  # fmt: skip
    table = pd.DataFrame(
        [{"trial_id": f"{song}-vocals", "song": song, "target": "vocals", "excerpt_start_s": 1.0,
          "excerpt_end_s": 9.0, "condition": condition, "sdr_db": value}
         for (song, condition), value in sdr.items()]
    )  # fmt: skip
    # L1 on the systems: SDR 1, 2, 3, 4 -> ratings 10, 30, 20, 40: 5 concordant, 1 discordant pair,
    # tau = (5 - 1) / 6. L2 rates in the opposite order of the SDR: tau = -1.
    l1 = {("s1", "X"): 10.0, ("s1", "Y"): 30.0, ("s2", "X"): 20.0, ("s2", "Y"): 40.0, ("s1", "anchor35"): 5.0,
          ("s2", "anchor35"): 0.0, ("s1", "reference"): 100.0, ("s2", "reference"): 100.0}  # fmt: skip
    l2 = {("s1", "X"): 80.0, ("s1", "Y"): 60.0, ("s2", "X"): 50.0, ("s2", "Y"): 40.0, ("s1", "anchor35"): 95.0,
          ("s2", "anchor35"): 90.0, ("s1", "reference"): 100.0, ("s2", "reference"): 100.0}  # fmt: skip
    csv = tmp_path / "ratings.csv"
    pd.DataFrame(_hand_rows("L1", l1) + _hand_rows("L2", l2), columns=list(COLUMNS)).to_csv(csv, index=False)
    sdr_csv = tmp_path / "excerpt_sdr.csv"
    sdr_csv.write_text("# excerpt_sdr format 1\n" + table.to_csv(index=False))
    result = analyze(csv, excerpt_sdr=sdr_csv, out_dir=tmp_path / "out")

    points = result.sdr_points.set_index(["song", "condition"])
    assert "reference" not in set(result.sdr_points["condition"])  # infinite SDR: left out
    assert (
        points.loc[("s1", "Y"), "mean_rating"] == pytest.approx(45.0)
        and points.loc[("s1", "Y"), "sdr"] == 2.0
    )
    taus = result.sdr_listeners.set_index(["participant_id", "scope"])
    assert taus.loc[("L1", "systems"), "kendall_tau"] == pytest.approx(4 / 6)
    assert taus.loc[("L2", "systems"), "kendall_tau"] == pytest.approx(-1.0)
    for listener, ratings in (("L1", l1), ("L2", l2)):
        keys = [k for k in ratings if k[1] != "reference"]
        expected = stats.kendalltau([sdr[k] for k in keys], [ratings[k] for k in keys])
        row = taus.loc[(listener, "systems and anchors")]
        assert row["n"] == 6 and row["kendall_tau"] == pytest.approx(expected.statistic)
        assert row["p_value"] == pytest.approx(expected.pvalue)
    # across conditions: the mean ratings per (excerpt, condition) against the SDR
    correlation = result.sdr_correlation.set_index(["scope", "target"]).loc[("systems", "all")]
    keys = [("s1", "X"), ("s1", "Y"), ("s2", "X"), ("s2", "Y")]
    means = [(l1[k] + l2[k]) / 2 for k in keys]  # 45, 45, 35, 40
    sdrs = [sdr[k] for k in keys]
    assert correlation["n"] == 4
    assert correlation["pearson_r"] == pytest.approx(stats.pearsonr(sdrs, means).statistic)
    assert correlation["kendall_tau"] == pytest.approx(stats.kendalltau(sdrs, means).statistic)
    assert correlation["spearman_rho"] == pytest.approx(stats.spearmanr(sdrs, means).statistic)
    assert result.files["sdr_scatter"].stat().st_size > 1000
    assert not pd.read_csv(result.files["sdr_listeners"]).empty
    assert "Kendall tau" in result.markdown
    assert "| L1 | 0.667 | 0.733 |" in result.markdown  # each listener's taus: systems, with anchors


def test_cli_writes_report(known_csv, tmp_path, capsys):
    path, _ = known_csv
    assert main([str(path), "--out", str(tmp_path / "cli")]) == 0
    assert "Post-screening" in capsys.readouterr().out
    assert (tmp_path / "cli" / "summary.html").is_file()
    assert main([str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x")]) == 2


def test_one_listener_ci_clipped_and_significance_withheld(known_csv, tmp_path):
    """One kept listener: no difference is called significant (the reason says why), and every CI lies
    inside 0-100 although the t interval of the hidden reference (mean near 98) runs past 100."""
    _, frame = known_csv
    one = frame[(frame["participant_id"] == "P00") & (frame["mode"] == "mushra")].copy()
    one.loc[one["rating_stimulus"] == "reference", "rating_score"] = [100, 100, 100, 100, 100, 90]
    path = tmp_path / "one.csv"
    one.to_csv(path, index=False)
    result = analyze(path)
    assert "1 kept participant(s), fewer than 5" in result.tests_withheld
    assert not result.pairwise["significant"].any() and "Not reported" in result.markdown
    reference = result.summary.set_index(["target", "condition"]).loc[("all", "reference")]
    assert reference["mean"] + reference["ci_half_width"] > 100 and reference["ci_high"] == 100.0
    assert (result.summary["ci_low"] >= 0).all() and (result.summary["ci_high"] <= 100).all()


def test_anchors_are_reported_per_cutoff(known_csv, tmp_path):
    # song_a's vocals anchor cut at 1.75 kHz (a dull reference), every other trial at 3.5; song_c's drums unknown
    anchor_hz = {f"{s}-{t}": {"anchor35": 3500.0, "anchor70": 7000.0} for s in SONGS for t in TARGETS}
    anchor_hz["song_a-vocals"]["anchor35"] = 1750.0
    del anchor_hz["song_c-drums"]
    path, frame = known_csv
    result = analyze(path, out_dir=tmp_path / "out", anchor_hz=anchor_hz)
    table = result.anchors.set_index(["target", "cutoff_hz"], drop=False)
    kept = frame[(frame["mode"] == "mushra") & (frame["participant_id"] != "BAD")]  # BAD: post-screened out
    anchors = kept[kept["rating_stimulus"] == "anchor35"]
    low = anchors[anchors["trial_id"] == "song_a-vocals"]["rating_score"]
    assert table.loc[("vocals", 1750.0), "n"] == 12 and table.loc[("vocals", 1750.0), "trials"] == 1
    assert table.loc[("vocals", 1750.0), "mean"] == pytest.approx(low.mean())
    vocals_35 = anchors[(anchors["target"] == "vocals") & (anchors["trial_id"] != "song_a-vocals")][
        "rating_score"
    ]
    assert table.loc[("vocals", 3500.0), "mean"] == pytest.approx(vocals_35.mean())
    assert table.loc[("vocals", 3500.0), "trials"] == 2
    unknown = result.anchors[result.anchors["cutoff_hz"].isna()]  # ratings of a trial anchor_hz does not know
    assert list(unknown["target"]) == ["drums"] and list(unknown["n"]) == [12]
    assert set(result.anchors["condition"]) == {"anchor35"}  # the mixture is not a low-pass anchor
    assert result.anchors["n"].sum() == len(anchors)
    assert "### The low-pass anchors by cutoff" in result.markdown
    assert "12 anchor ratings are of trials the stimuli do not list" in result.markdown
    assert pd.read_csv(result.files["anchors"]).shape == result.anchors.shape
    assert analyze(path).anchors is None  # without the cutoffs, no such table


def test_cli_reads_the_anchor_cutoffs_from_the_stimuli(known_csv, tmp_path, capsys):
    path, frame = known_csv
    stimuli = tmp_path / "stimuli"
    for trial_id in frame.loc[frame["mode"] == "mushra", "trial_id"].unique():
        conditions = {c: "0" * 16 for c in ("X", "Y", "reference", "anchor35", "mixture")}
        record = {"trial": {"trial_id": trial_id, "conditions": conditions}}
        if trial_id != "song_b-drums":  # rendered before the cutoffs were recorded: the standard's
            record["anchor_hz"] = {"anchor35": 1750.0 if trial_id.endswith("vocals") else 3500.0}
        (stimuli / trial_id).mkdir(parents=True)
        (stimuli / trial_id / "trial.json").write_text(json.dumps(record))
    assert main([str(path), "--out", str(tmp_path / "out"), "--stimuli", str(stimuli)]) == 0
    anchors = pd.read_csv(tmp_path / "out" / "anchors.csv")
    assert dict(zip(anchors["target"], anchors["cutoff_hz"], strict=True)) == {
        "drums": 3500.0,
        "vocals": 1750.0,
    }
    assert list(anchors["trials"]) == [3, 3]
    # a folder that is no stimulus folder, and a broken record: one line naming it, exit 2
    capsys.readouterr()
    assert main([str(path), "--out", str(tmp_path / "o2"), "--stimuli", str(tmp_path / "out")]) == 2
    assert "no <trial id>/trial.json" in capsys.readouterr().err
    (stimuli / "song_a-drums" / "trial.json").write_text("{not json")
    assert main([str(path), "--out", str(tmp_path / "o3"), "--stimuli", str(stimuli)]) == 2
    assert "song_a-drums/trial.json: not a rendered trial's record" in capsys.readouterr().err
