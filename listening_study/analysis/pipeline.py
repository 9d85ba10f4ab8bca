"""The one analysis pipeline, from a ratings CSV to the results: post-screening, scores with confidence
intervals, tests, the objective metrics beside the ratings. The app (``analyze_study``, the Results tab) and
the command line both run ``analyze``.

    python -m listening_study.analysis RATINGS.csv [--excerpt-sdr CSV | --sdr EVAL_DIR] [--excerpt-metrics CSV] --out DIR
                                      [--sessions STUDY_DIR/<id>/sessions] [--stimuli STUDY_DIR/stimuli/<hash>]
                                      [--min-participants 5]

Public API (stable)::

    analyze(ratings_csv, sdr_dir=None, out_dir=None, *, excerpt_sdr=None, source_name=None,
            min_participants=MIN_PARTICIPANTS_FOR_TESTS, headphones=None, excerpt_metrics=None,
            anchor_hz=None) -> AnalysisResult
    analyze_study(stimuli, store, out_dir) -> (AnalysisResult | None, notes)   # a running study, as the app shows it
    AnalysisResult: n_rows, n_ratings, participants (session ids), excluded, screening (per session), shared_codes,
                    summary, anchors, friedman, pairwise, ab, sdr_points, sdr_correlation, sdr_listeners,
                    metric_correlations, best_metrics, rejected, rejected_counts, tests_withheld, markdown, files

Rows that cannot be counted are set aside first and reported (``rejected``: line, reason, detail;
``rejected_counts``: reason -> rows; also in the summary and ``rejected.csv``): duplicated rows (the
first copy is kept), conflicting ratings of one condition, scores that are not numbers or lie outside
0-100 (MUSHRA) or 0-3 (A/B), A/B trials left without a decision. Bad input (a malformed file, an --out
that is a file, a bad --sdr folder) is a StudyError; the CLI prints it on one line and exits with 2.

Following ITU-R BS.1534-3: listeners who rate the hidden reference below 90 in more than 15% of their
trials are excluded before anything else is computed (``screening`` says who and why); per condition
(and per target) the mean with its 95% t confidence interval, the median and n; a Friedman test
(blocks = listener x trial), pairwise Wilcoxon signed-rank tests with Holm's correction; the Pearson and
Spearman correlation of the excerpt's museval SDR with the mean rating; A/B preferences with a binomial
test. The SDR of the rated excerpts (``excerpt_sdr``: a table of SDR_COLUMNS or a CSV of it; museval JSON in
``sdr_dir``; else the SDR rows of ``excerpt_metrics``, listening_study.analysis.metrics) beside the
ratings: points per excerpt and condition, Pearson, Spearman and Kendall correlations across conditions,
each listener's Kendall tau (listening_study.analysis.correlations). Confidence
intervals are clipped to the 0-100 scale. With fewer than ``min_participants`` kept
participants no difference is called significant (``tests_withheld``; the p-values stay in the tables
for inspection). With ``out_dir``: tables as CSV (text cells that a spreadsheet would run as formulas
neutralized), boxplots.png, sdr_vs_rating.png, summary.md and summary.html (figures first).
"""

from __future__ import annotations

import argparse
import html
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from listening_study.analysis.correlations import best_metrics, metric_correlations, sdr_vs_ratings
from listening_study.analysis.metrics import sdr_table, study_excerpt_metrics
from listening_study.analysis.museval_sdr import sdr_table_from_eval
from listening_study.analysis.plots import boxplots, sdr_scatter
from listening_study.analysis.report import report_markdown
from listening_study.analysis.spreadsheet import neutralize_frame
from listening_study.analysis.stats import (
    MIN_PARTICIPANTS_FOR_TESTS,
    ab_summary,
    anchor_summary,
    condition_summary,
    friedman_tests,
    pairwise_wilcoxon,
    screen_rows,
    screen_sessions,
)
from listening_study.delivery.processing import recorded_anchors
from listening_study.design.study import ANCHORS, REFERENCE
from listening_study.errors import StudyError
from listening_study.sessions.ratings import read_ratings
from listening_study.sessions.table import headphone_results, shared_codes


@dataclass(frozen=True)
class AnalysisResult:
    n_rows: int  # rows of the ratings file, before anything is set aside
    n_ratings: int  # MUSHRA rows kept after post-screening
    participants: tuple[str, ...]  # every listener (session id) with MUSHRA ratings
    excluded: tuple[str, ...]  # the sessions post-screening excluded
    screening: pd.DataFrame  # per session
    shared_codes: pd.DataFrame  # participant codes typed in more than one session
    summary: pd.DataFrame
    anchors: (
        pd.DataFrame | None
    )  # the low-pass anchors' scores per cutoff (stats.anchor_summary), given anchor_hz
    friedman: pd.DataFrame
    pairwise: pd.DataFrame
    ab: pd.DataFrame
    sdr_points: pd.DataFrame | None
    sdr_correlation: pd.DataFrame | None
    sdr_listeners: pd.DataFrame | None  # Kendall tau between SDR and each listener's ratings
    metric_correlations: pd.DataFrame | None  # listening_study.analysis.correlations, per metric and target
    best_metrics: pd.DataFrame | None  # the metric with the highest Spearman rho, per target
    rejected: pd.DataFrame  # rows set aside before the analysis: line, ..., reason, detail
    rejected_counts: dict[str, int]  # reason -> number of rows
    tests_withheld: str  # why significance is not reported ("" when it is)
    markdown: str
    files: dict[str, Path] = field(default_factory=dict)


def _check_out_dir(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be one."""
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is" if folder == out_dir else f"lies inside {folder}, which is"
                raise StudyError(f"output folder {out_dir} {what} an existing file, not a folder")
            return


def _write(result: dict, markdown: str, out_dir: Path, mushra: pd.DataFrame) -> dict[str, Path]:
    try:
        return _write_files(result, markdown, out_dir, mushra)
    except OSError as exc:
        where = exc.filename or out_dir
        raise StudyError(f"cannot write the results to {where}: {exc.strerror or exc}") from exc


def _write_files(result: dict, markdown: str, out_dir: Path, mushra: pd.DataFrame) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in ("screening", "shared_codes", "summary", "anchors", "friedman", "pairwise", "ab", "sdr_points",
                 "sdr_correlation", "sdr_listeners", "metric_correlations", "rejected"):  # fmt: skip
        if result.get(name) is not None:
            files[name] = out_dir / f"{name}.csv"
            neutralize_frame(result[name]).to_csv(files[name], index=False)
    if not mushra.empty:
        files["boxplots"] = boxplots(mushra, result["summary"], out_dir / "boxplots.png")
    if result["sdr_points"] is not None and not result["sdr_points"].empty:
        files["sdr_scatter"] = sdr_scatter(result["sdr_points"], out_dir / "sdr_vs_rating.png")
    files["markdown"] = out_dir / "summary.md"
    files["markdown"].write_text(markdown)
    tables = "".join(
        f"<h2>{html.escape(name)}</h2>{result[name].to_html(index=False, float_format=lambda v: f'{v:.3g}')}"
        for name in (
            "rejected",
            "screening",
            "shared_codes",
            "summary",
            "anchors",
            "friedman",
            "pairwise",
            "ab",
            "sdr_correlation",
            "sdr_listeners",
        )
        if result.get(name) is not None and not result[name].empty
    )
    images = "".join(
        f'<p><img src="{files[k].name}" alt="{k}"></p>' for k in ("boxplots", "sdr_scatter") if k in files
    )
    files["html"] = out_dir / "summary.html"
    files["html"].write_text(f"<!doctype html><meta charset='utf-8'><title>Listening study</title>"
                             f"<h1>Listening study results</h1>{images}{tables}")  # fmt: skip
    return files


def _withhold_tests(pairwise: pd.DataFrame, kept: int, minimum: int) -> tuple[pd.DataFrame, str]:
    """Below ``minimum`` kept participants nothing is called significant; returns the reason."""
    if kept >= minimum:
        return pairwise, ""
    reason = (f"{kept} kept participant(s), fewer than {minimum}: differences between conditions are not "
              "tested for significance (p-values in pairwise.csv are for inspection only).")  # fmt: skip
    if not pairwise.empty:
        pairwise = pairwise.assign(significant=False, better="")
    return pairwise, reason


def _table(source, what: str) -> pd.DataFrame | None:
    """``source`` as a table: None, a DataFrame as it is, or a CSV read (StudyError naming ``what``)."""
    if source is None or isinstance(source, pd.DataFrame):
        return source
    try:
        return pd.read_csv(source, comment="#")
    except (OSError, ValueError) as exc:
        raise StudyError(f"cannot read the {what} table {source}: {exc}") from exc


def _sdr_table(excerpt_sdr, sdr_dir, mushra: pd.DataFrame) -> pd.DataFrame | None:
    if excerpt_sdr is None:
        return None if sdr_dir is None else sdr_table_from_eval(mushra, sdr_dir)
    return _table(excerpt_sdr, "excerpt SDR")


def stimuli_anchor_hz(folder: Path) -> dict[str, dict[str, float]]:
    """{trial id: {low-pass anchor: cutoff Hz}} of a rendered stimulus folder (``STUDY_DIR/stimuli/<hash>``,
    one ``<trial id>/trial.json`` per trial); StudyError naming the folder or file that does not give them."""
    files = sorted(Path(folder).glob("*/trial.json")) if Path(folder).is_dir() else []
    if not files:
        raise StudyError(
            f"--stimuli {folder}: no <trial id>/trial.json in it (a stimulus folder has one per trial)"
        )
    out = {}
    for path in files:
        try:
            out[path.parent.name] = recorded_anchors(path)[0]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StudyError(f"{path}: not a rendered trial's record ({exc})") from exc
    return out


def _without_failed_checks(rows: pd.DataFrame, headphones: dict[str, dict] | None) -> pd.DataFrame:
    """``rows`` without the sessions that failed the headphone check (A/B sessions take it too)."""
    failed = {sid for sid, check in (headphones or {}).items() if not check.get("passed", True)}
    return rows[~rows["session_uuid"].isin(failed)]


def analyze(
    ratings_csv: str | Path,
    sdr_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    *,
    excerpt_sdr: pd.DataFrame | str | Path | None = None,
    source_name: str | None = None,
    min_participants: int = MIN_PARTICIPANTS_FOR_TESTS,
    headphones: dict[str, dict] | None = None,
    excerpt_metrics: pd.DataFrame | str | Path | None = None,
    anchor_hz: dict[str, dict[str, float]] | None = None,
) -> AnalysisResult:
    """Analyse a ratings CSV (see the module docstring); RatingsFileError for malformed files, StudyError
    for an output folder that cannot be written. ``excerpt_sdr``: the SDR table (SDR_COLUMNS of
    listening_study.analysis.museval_sdr) or a CSV of it; it takes precedence over
    ``sdr_dir``. ``source_name`` names the ratings in the report (default:
    the file's path). ``headphones``: session id -> headphone-check result (session_table.headphone_results);
    sessions that failed it are excluded with the post-screening. ``excerpt_metrics``: the metrics of the
    rated excerpts (listening_study.analysis.metrics, or its cached CSV): gives ``metric_correlations``
    (which objective metric predicts these listeners) and ``best_metrics`` (the best per target).
    ``anchor_hz``: {trial id: {low-pass anchor: cutoff Hz}} (the stimuli's ``anchor_hz()``): gives ``anchors``,
    their scores per cutoff (fitted anchors cut lower where a reference has little treble)."""
    if out_dir is not None:
        _check_out_dir(Path(out_dir))
    ratings = read_ratings(ratings_csv, coerce_scores=True)
    n_rows = len(ratings)
    ratings, rejected = screen_rows(ratings)
    mushra_all = ratings[ratings["mode"] == "mushra"]
    screening = screen_sessions(mushra_all, headphones=headphones)
    excluded = tuple(screening.loc[screening["excluded"], "session_uuid"])
    mushra = mushra_all[~mushra_all["session_uuid"].isin(excluded)]
    systems = sorted(set(mushra["rating_stimulus"]) - {REFERENCE, *ANCHORS})
    result = {
        "n_rows": n_rows,
        "n_ratings": len(mushra),
        "participants": tuple(screening["session_uuid"]),
        "excluded": excluded,
        "screening": screening,
        "shared_codes": shared_codes(mushra_all),
        "summary": condition_summary(mushra),
        "anchors": None if anchor_hz is None else anchor_summary(mushra, anchor_hz),
        "friedman": friedman_tests(mushra, systems),
        "pairwise": None,
        "ab": ab_summary(_without_failed_checks(ratings[ratings["mode"] == "ab"], headphones)),
        "sdr_points": None,
        "sdr_correlation": None,
        "sdr_listeners": None,
        "rejected": rejected,
        "rejected_counts": {str(k): int(v) for k, v in rejected["reason"].value_counts(sort=True).items()},
    }
    kept = len(screening) - len(excluded)
    result["pairwise"], result["tests_withheld"] = _withhold_tests(
        pairwise_wilcoxon(mushra), kept, min_participants
    )
    metrics = _table(excerpt_metrics, "excerpt metrics")
    sdr = _sdr_table(excerpt_sdr, sdr_dir, mushra)
    if sdr is None and metrics is not None:  # the excerpts' SDR is one of their metrics
        sdr = sdr_table(metrics)
    if sdr is not None:
        comparison = sdr_vs_ratings(mushra, sdr)
        result["sdr_points"], result["sdr_correlation"] = comparison.points, comparison.correlation
        result["sdr_listeners"] = comparison.listeners
    result["metric_correlations"] = result["best_metrics"] = None
    if metrics is not None:
        result["metric_correlations"] = metric_correlations(mushra, metrics)
        result["best_metrics"] = best_metrics(result["metric_correlations"])
    markdown = report_markdown(result, source_name or f"`{ratings_csv}`")
    files = _write(result, markdown, Path(out_dir), mushra) if out_dir is not None else {}
    return AnalysisResult(**result, markdown=markdown, files=files)


#: The copy of the live ratings file that ``analyze_study`` analyses, in its ``out_dir``.
RATINGS_SNAPSHOT = "ratings-snapshot.csv"


def analyze_study(
    stimuli, store, out_dir: Path, source_name: str = "the ratings of this study"
) -> tuple[AnalysisResult | None, str]:
    """The analysis of a running study, as the experimenter's Results tab shows it: ``analyze`` on a
    snapshot of the live ratings file (``out_dir / RATINGS_SNAPSHOT``: the live one keeps growing), with
    the SDR and the other metrics of the rated excerpts computed from ``stimuli`` (cached beside them;
    about a minute the first time) and the headphone-check results of ``store``'s sessions. Returns (result, notes): result
    None while there is no rating; notes says what could not be computed, in a sentence."""
    out_dir = Path(out_dir)
    snapshot = out_dir / RATINGS_SNAPSHOT
    shutil.copyfile(store.ratings.path, snapshot)
    if read_ratings(snapshot, coerce_scores=True).empty:
        return None, ""
    try:
        metrics, notes = study_excerpt_metrics(stimuli), ""
    except (StudyError, OSError) as exc:
        metrics, notes = None, f"Metrics of the excerpts (SDR included) not available: {exc}."
    try:
        anchor_hz = stimuli.anchor_hz()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a trial.json broken since
        anchor_hz, notes = None, f"{notes} The anchors' cutoffs are not available: {exc}.".strip()
    result = analyze(snapshot, out_dir=out_dir / "analysis", source_name=source_name, excerpt_metrics=metrics,
                     headphones=headphone_results(store.sessions_dir), anchor_hz=anchor_hz)  # fmt: skip
    return result, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m listening_study.analysis", description=__doc__.split("\n")[0]
    )
    parser.add_argument("ratings", type=Path, help="ratings CSV written by the listening study")
    parser.add_argument(
        "--sdr", type=Path, default=None, help="mss.evaluate output folder (<method>/test/<track>.json)"
    )
    parser.add_argument("--excerpt-sdr", type=Path, default=None,
                        help="SDR of the rated excerpts (excerpt_sdr.csv in the study's stimulus folder)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="folder for tables, plots and the summary")
    parser.add_argument("--excerpt-metrics", type=Path, default=None,
                        help="metrics of the rated excerpts (excerpt_metrics.csv in the study's stimulus folder): "
                        "writes metric_correlations.csv")  # fmt: skip
    parser.add_argument("--sessions", type=Path, default=None,
                        help="the study's sessions folder (STUDY_DIR/<study id>/sessions): leaves out the "
                        "sessions that failed the headphone check")  # fmt: skip
    parser.add_argument("--stimuli", type=Path, default=None,
                        help="the study's stimulus folder (STUDY_DIR/stimuli/<hash>): the low-pass anchors' "
                        "scores per cutoff (anchors.csv)")  # fmt: skip
    parser.add_argument("--min-participants", type=int, default=MIN_PARTICIPANTS_FOR_TESTS,
                        help="fewest kept participants for which significance is reported")  # fmt: skip
    args = parser.parse_args(argv)
    if args.sessions is not None and not args.sessions.is_dir():
        print(f"error: --sessions {args.sessions}: not a folder", file=sys.stderr)
        return 2
    headphones = headphone_results(args.sessions) if args.sessions is not None else None
    try:
        anchor_hz = stimuli_anchor_hz(args.stimuli) if args.stimuli is not None else None
        result = analyze(
            args.ratings,
            args.sdr,
            args.out,
            excerpt_sdr=args.excerpt_sdr,
            min_participants=args.min_participants,
            headphones=headphones,
            excerpt_metrics=args.excerpt_metrics,
            anchor_hz=anchor_hz,
        )
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # anything the checks above missed (permissions, a full disk): still one line
        print(f"error: {exc.filename or args.ratings}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(result.markdown)
    if result.rejected_counts:
        counts = ", ".join(f"{n} {reason}" for reason, n in result.rejected_counts.items())
        print(f"warning: excluded {len(result.rejected)} rows of {args.ratings} ({counts})", file=sys.stderr)
    print(f"wrote {len(result.files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
