"""mss workbench app: blind MUSHRA listening test, spectrogram browser, results. Gradio UI only.

    python app.py [--port N] [--host 127.0.0.1] [--dataset ROOT] [--study FILE] [--study-dir DIR]
                  [--checkpoint NAME=PATH ...] [--eval-dir DIR] [--password ...]

Everything that computes lives in ``mss`` and ``listening_study``; this file only wires it to a page.
The listening test runs in the browser (listening_study/static/mushra.js, Web Audio) and talks to a
small JSON API mounted on the same server (``/mushra/api/...``); audio is served only through
``/mushra/audio/<opaque stimulus id>``, resolved by ``StimulusSet.path`` (a whitelist).
"""

from __future__ import annotations

import argparse
import hmac
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import fastapi
import gradio as gr
import numpy as np
import uvicorn
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from mss.errors import MSSError

REPO_ROOT = Path(__file__).resolve().parent
STATIC_FILES = {  # the only files /mushra/static serves
    "mushra.js": (REPO_ROOT / "listening_study" / "static" / "mushra.js", "text/javascript"),
    "mushra.css": (REPO_ROOT / "listening_study" / "static" / "mushra.css", "text/css"),
}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
PASSWORD_ENV = "MSS_RESULTS_PASSWORD"
TRAIN_HINT = (
    "Train them with `python -m training.run --model unet --dataset default --out runs/unet` "
    "(and `--model demucs`), then copy `runs/<model>/best.pt` to `checkpoints/<model>.pt`, "
    "or start the app with `--checkpoint NAME=PATH`."
)


@dataclass(frozen=True)
class AppConfig:
    """Everything the app needs; built from the command line by :func:`parse_args`."""

    host: str = "127.0.0.1"
    port: int = 7860
    dataset: str = "default"
    study_file: Path | None = None
    study_dir: Path = Path("study")
    checkpoints: tuple[tuple[str, Path], ...] = ()  # (name, path); empty = the committed defaults
    eval_dir: Path = Path("eval")
    password: str | None = None
    n_songs: int = 4
    targets: tuple[str, ...] = ("vocals", "drums", "bass", "other")


# --------------------------------------------------------------------------------------------- study
@dataclass
class StudyContext:
    """The loaded study and its stores, or the reason there is none (shown in the UI)."""

    study: object | None = None
    stimuli: object | None = None
    sessions: object | None = None
    ratings_csv: Path | None = None
    error: str | None = None
    checkpoints: dict[str, Path] = field(default_factory=dict)  # systems shown in the spectrogram browser
    dataset: str = "default"
    missing_checkpoints: str | None = None


def resolve_checkpoints(config: AppConfig) -> tuple[dict[str, Path], str | None]:
    """Checkpoints to compare (name -> path) and, when some are missing, a message saying what to do."""
    from mss.checkpoint import DEFAULT_CHECKPOINTS

    if config.checkpoints:
        found = {name: Path(path) for name, path in config.checkpoints}
    else:
        found = dict(DEFAULT_CHECKPOINTS)
    missing = [f"{name} ({path})" for name, path in found.items() if not Path(path).is_file()]
    present = {name: Path(path) for name, path in found.items() if Path(path).is_file()}
    message = f"Checkpoints not found: {', '.join(missing)}. {TRAIN_HINT}" if missing else None
    return present, message


def load_study_context(config: AppConfig, progress=None) -> StudyContext:
    """Load or build the study, render its stimuli (cached) and open the session and ratings stores."""
    from listening_study.sessions import SessionStore
    from listening_study.stimuli import prepare_stimuli
    from listening_study.study import default_study, load_study

    checkpoints, missing = resolve_checkpoints(config)
    context = StudyContext(checkpoints=checkpoints, dataset=config.dataset, missing_checkpoints=missing)
    try:
        if config.study_file is not None:
            study = load_study(config.study_file)
            # A study file names its own dataset and systems: the spectrogram browser shows the same ones.
            context.dataset = study.dataset
            context.checkpoints = {system.name: system.checkpoint for system in study.systems}
            context.missing_checkpoints = None
        elif missing:
            context.error = missing
            return context
        else:
            study = default_study(config.dataset, checkpoints, n_songs=config.n_songs, targets=config.targets)
        folder = Path(config.study_dir) / study.study_id
        folder.mkdir(parents=True, exist_ok=True)
        stimuli = prepare_stimuli(study, Path(config.study_dir) / "stimuli", progress=progress)
        context.study, context.stimuli = study, stimuli
        context.sessions = SessionStore(folder, stimuli)
        context.ratings_csv = context.sessions.ratings.path
    except MSSError as exc:
        context.error = f"The listening study is not available: {exc}"
    return context


# --------------------------------------------------------------------------------------------- JSON API
class StartRequest(BaseModel):
    participant_id: str = Field(max_length=64)
    mode: str = Field(default="mushra", max_length=16)


class ResumeRequest(BaseModel):
    session_id: str = Field(max_length=64)


class SubmitRequest(BaseModel):
    session_id: str = Field(max_length=64)
    trial_id: str = Field(max_length=128)
    scores: dict[str, float | str]
    plays: dict[str, int]
    time_ms: int = 0
    comment: str = Field(default="", max_length=2000)


def _audio_url(stimulus_id: str) -> str:
    return f"/mushra/audio/{stimulus_id}"


def trial_json(trial) -> dict:
    """What the browser gets for one SessionTrial: neutral labels and opaque audio URLs, nothing else."""
    return {
        "trial_id": trial.trial_id,
        "mode": trial.mode,
        "reference_url": _audio_url(trial.reference),
        "conditions": [
            {"label": label, "url": _audio_url(trial.stimuli[label])} for label in trial.screen_labels
        ],
    }


def session_json(context: StudyContext, session) -> dict:
    """Progress of a session, its next trial (None when finished) and the training example."""
    sessions = context.sessions
    done, total = sessions.progress(session)
    upcoming = sessions.next_trial(session)
    training = None
    if not session.training_done and session.mode == "mushra" and upcoming is not None:
        # The training page plays one of the session's own trials (same blind labels), not recorded.
        training = trial_json(session.trials[session.trial_order[-1]])
    return {
        "session_id": session.session_id,
        "participant_id": session.participant_id,
        "mode": session.mode,
        "n_trials": total,
        "n_done": done,
        "trial": None if upcoming is None else trial_json(upcoming),
        "training": training,
    }


def _integer(value):
    """JSON numbers arrive as float; the backend wants int confidences (it validates the value)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def build_api(context: StudyContext) -> fastapi.APIRouter:
    """Routes of the listening test; every error the backend raises becomes a 400 with its message."""
    from listening_study.errors import StudyError

    router = fastapi.APIRouter()

    def require_study():
        if context.study is None:
            raise fastapi.HTTPException(503, context.error or "no study loaded")

    def refuse(exc: Exception):
        raise fastapi.HTTPException(400, str(exc)) from exc

    @router.get("/mushra/static/{name}")
    def static_file(name: str):
        if name not in STATIC_FILES:
            raise fastapi.HTTPException(404, "not found")
        path, media_type = STATIC_FILES[name]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    @router.get("/mushra/audio/{stimulus_id}")
    def audio(stimulus_id: str):
        require_study()
        try:
            path = context.stimuli.path(stimulus_id)
        except StudyError:
            raise fastapi.HTTPException(404, "unknown stimulus") from None
        return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "private, max-age=3600"})

    @router.post("/mushra/api/start")
    def start(request: StartRequest):
        require_study()
        try:
            session = context.sessions.start(request.participant_id, mode=request.mode)
            return session_json(context, session)
        except StudyError as exc:
            refuse(exc)

    @router.post("/mushra/api/resume")
    def resume(request: ResumeRequest):
        require_study()
        try:
            return session_json(context, context.sessions.resume(request.session_id))
        except StudyError as exc:
            refuse(exc)

    @router.post("/mushra/api/training_done")
    def training_done(request: ResumeRequest):
        require_study()
        try:
            sessions = context.sessions
            return session_json(context, sessions.mark_training_done(sessions.resume(request.session_id)))
        except StudyError as exc:
            refuse(exc)

    @router.post("/mushra/api/submit")
    def submit(request: SubmitRequest):
        require_study()
        sessions, scores = context.sessions, request.scores
        try:
            if set(scores) == {"choice", "confidence"}:  # A/B preference trial
                sessions.submit_ab(
                    request.session_id, request.trial_id, scores["choice"], _integer(scores["confidence"]),
                    request.plays, request.time_ms, request.comment,
                )  # fmt: skip
            else:
                sessions.submit(
                    request.session_id,
                    request.trial_id,
                    scores,
                    request.plays,
                    request.time_ms,
                    request.comment,
                )
            return session_json(context, sessions.resume(request.session_id))
        except StudyError as exc:
            refuse(exc)

    return router


# --------------------------------------------------------------------------------------------- UI helpers
def _mushra_tab(context: StudyContext) -> None:
    if context.error:
        gr.Markdown(f"**{context.error}**")
    gr.HTML(
        value="",
        html_template='<div class="mushra-app" id="mushra-root"></div>',
        js_on_load="window.MushraApp.mount(element.querySelector('.mushra-app'), {api: '/mushra/api'});",
        head='<script src="/mushra/static/mushra.js"></script><link rel="stylesheet" href="/mushra/static/mushra.css">',
        apply_default_css=False,
    )


def check_password(config: AppConfig, attempt: str | None) -> None:
    """gr.Error unless the Results password (when one is set) matches; constant-time comparison."""
    if config.password and not hmac.compare_digest((attempt or "").encode(), config.password.encode()):
        raise gr.Error("Wrong password.")


def _results_tab(config: AppConfig, context: StudyContext) -> None:
    with gr.Row():
        password = gr.Textbox(label="Password", type="password", visible=bool(config.password), scale=3)
        show = gr.Button("Show results" if config.password else "Refresh results", variant="primary", scale=1)
    with gr.Column(visible=False) as panel:
        summary = gr.Markdown()
        with gr.Row():
            boxplot = gr.Image(
                label="Scores per condition", type="filepath", interactive=False, visible=False
            )
            scatter = gr.Image(label="SDR vs. rating", type="filepath", interactive=False, visible=False)
        sdr = gr.Dataframe(label="museval SDR (evaluation)", interactive=False)
        download = gr.File(label="Ratings CSV")

    def render(attempt, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        check_password(config, attempt)
        out_dir = Path(tempfile.mkdtemp(prefix="mss-results-"))
        sdr_table = _table(_sdr_table(config.eval_dir))
        csv = context.ratings_csv
        if csv is None or not csv.is_file():
            message = (
                "No ratings yet." if context.study is not None else (context.error or "No study loaded.")
            )
            hidden = gr.update(value=None, visible=False)
            return gr.update(visible=True), message, hidden, hidden, sdr_table, None
        from listening_study.analyze import analyze

        progress(0.2, desc="analysing ratings")
        copy = out_dir / "ratings.csv"
        shutil.copyfile(csv, copy)  # a snapshot: the live file keeps growing
        try:
            result = analyze(
                copy, config.eval_dir if Path(config.eval_dir).is_dir() else None, out_dir / "analysis"
            )
        except MSSError as exc:
            raise gr.Error(str(exc)) from exc
        images = [result.files.get(key) for key in ("boxplots", "sdr_scatter")]
        images = [gr.update(value=str(path) if path else None, visible=path is not None) for path in images]
        return gr.update(visible=True), result.markdown, *images, sdr_table, str(copy)

    show.click(
        render,
        inputs=password,
        outputs=[panel, summary, boxplot, scatter, sdr, download],
        api_visibility="private",
    )


def _table(frame):
    """A Dataframe update that hides the component when there is nothing to show."""
    return gr.update(value=frame, visible=frame is not None)


def _sdr_table(eval_dir: Path):
    """The evaluation's results.csv when present, else None."""
    import pandas as pd

    path = Path(eval_dir) / "results.csv"
    return pd.read_csv(path) if path.is_file() else None


# --------------------------------------------------------------------------------------------- spectrograms
def _spectrogram_tab(config: AppConfig, context: StudyContext) -> None:
    """Widgets around mss.browser.SpectrogramBrowser: it reads, separates and scores only the window."""
    from mss.browser import SpectrogramBrowser

    try:
        browser = SpectrogramBrowser(context.dataset, context.checkpoints, config.eval_dir)
    except MSSError as exc:
        gr.Markdown(f"**The spectrogram browser is not available: {exc}**")
        return
    if context.missing_checkpoints:
        gr.Markdown(f"**{context.missing_checkpoints}**")
    songs, targets, systems = browser.songs(), browser.targets(), browser.systems()
    limit_s = browser.config.max_window_s
    with gr.Row():
        song = gr.Dropdown(songs, value=songs[0] if songs else None, label="Test song")
        target = gr.Dropdown(targets, value=targets[0] if targets else None, label="Target")
        chosen = gr.CheckboxGroup(systems, value=systems, label="Systems")
    duration = browser.duration(songs[0]) if songs else 10.0
    with gr.Row():
        start = gr.Slider(0, duration, value=0, step=0.1, label="Start (s)")
        label = f"End (s), at most {limit_s:g} s after the start"
        end = gr.Slider(0, duration, value=min(duration, 10.0), step=0.1, label=label)
        show = gr.Button("Show", variant="primary")
    sdr = gr.Dataframe(label="museval SDR (dB, median over 1-s frames)", interactive=False)
    notes = gr.Markdown()
    gr.Markdown("Spectrograms: log frequency, dB, one colour scale for all panels, time aligned.")
    plot = gr.Plot(show_label=False)
    with gr.Row():
        mix_audio = gr.Audio(label="Mixture", interactive=False)
        ref_audio = gr.Audio(label="Reference", interactive=False)
    players = []
    for name in systems:
        with gr.Row():
            players.append(gr.Audio(label=f"{name}: estimate", interactive=False))
            players.append(gr.Audio(label=f"{name}: error (reference - estimate)", interactive=False))

    def on_song(song_name: str):
        try:
            length_s = browser.duration(song_name)
        except MSSError as exc:
            raise gr.Error(str(exc)) from exc
        return gr.update(maximum=length_s, value=0), gr.update(maximum=length_s, value=min(length_s, 10.0))

    def on_start(song_name: str, start_s: float, end_s: float):
        """Keep the end after the start and within the window limit: a 10-s window from the new start."""
        if start_s < end_s <= start_s + limit_s:
            return gr.update()
        try:
            return gr.update(value=min(browser.duration(song_name), start_s + 10.0))
        except MSSError:
            return gr.update()

    def render(song_name, target_name, names, start_s, end_s, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        import pandas as pd

        try:
            view = browser.view(
                song_name, target_name, [n for n in (names or []) if n in systems], start_s, end_s,
                on_progress=lambda fraction, message: progress(fraction, desc=message),
            )  # fmt: skip
        except MSSError as exc:
            raise gr.Error(str(exc)) from exc

        def clip(audio):  # gr.Audio wants (T, C)
            return (view.sample_rate, np.ascontiguousarray(audio.T))

        outputs = []
        for name in systems:
            shown = name in view.estimates
            outputs += [
                gr.update(value=clip(view.estimates[name]) if shown else None, visible=shown),
                gr.update(value=clip(view.error(name)) if shown else None, visible=shown),
            ]
        table = pd.DataFrame([row.as_dict() for row in view.rows])
        message = "\n\n".join([f"Window {view.start_s:.2f}-{view.end_s:.2f} s of {view.song}.", *view.notes])
        return (table, message, view.figure, clip(view.mixture), clip(view.reference), *outputs)

    song.change(on_song, inputs=song, outputs=[start, end], api_visibility="private")
    start.release(on_start, inputs=[song, start, end], outputs=end, api_visibility="private")
    show.click(
        render,
        inputs=[song, target, chosen, start, end],
        outputs=[sdr, notes, plot, mix_audio, ref_audio, *players],
        api_visibility="private",
    )


# --------------------------------------------------------------------------------------------- app
def build_blocks(config: AppConfig, context: StudyContext) -> gr.Blocks:
    """The three tabs. Per-user state lives in the browser (listening test) or in the components."""
    with gr.Blocks(title="mss workbench") as blocks:
        gr.Markdown("# mss workbench")
        with gr.Tabs():
            with gr.Tab("Listening test"):
                _mushra_tab(context)
            with gr.Tab("Spectrogram browser"):
                _spectrogram_tab(config, context)
            with gr.Tab("Results"):
                _results_tab(config, context)
    return blocks


def build_app(config: AppConfig, context: StudyContext | None = None) -> fastapi.FastAPI:
    """A FastAPI app: the listening-test API routes first, then the Gradio UI mounted at /."""
    check_exposure(config)
    context = context or load_study_context(config)
    app = fastapi.FastAPI()
    app.include_router(build_api(context))
    blocks = build_blocks(config, context)
    # No allowed_paths: Gradio must not serve the stimulus cache (its trial.json files name the conditions);
    # audio goes only through /mushra/audio/<id>.
    return gr.mount_gradio_app(app, blocks, path="", footer_links=[], show_error=True)


def check_exposure(config: AppConfig) -> None:
    """Serving beyond localhost needs a Results password (ratings are personal data)."""
    if config.host not in LOOPBACK_HOSTS and not config.password:
        raise SystemExit(
            f"Refusing to serve on {config.host}: the Results tab needs a password when the app is reachable "
            f"from other machines. Pass --password or set {PASSWORD_ENV}."
        )


class BackgroundServer:
    """uvicorn in a thread (tests, notebooks): ``with BackgroundServer(app, port) as url: ...``."""

    def __init__(self, app: fastapi.FastAPI, host: str = "127.0.0.1", port: int = 0):
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the app did not start on {self.url}")
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def parse_args(argv: list[str] | None = None) -> AppConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to serve on (default: loopback only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--dataset", default="default", help="dataset root (MUSDB18 / MUSDB18-HQ) or 'default'"
    )
    parser.add_argument(
        "--study", type=Path, default=None, help="study file (YAML/TOML); default: a study over --dataset"
    )
    parser.add_argument(
        "--study-dir", type=Path, default=Path("study"), help="stimulus cache, sessions, ratings"
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a system to compare (repeatable)",
    )
    parser.add_argument(
        "--eval-dir", type=Path, default=Path("eval"), help="python -m mss.evaluate output folder"
    )
    parser.add_argument(
        "--password", default=os.environ.get(PASSWORD_ENV), help=f"Results password (or ${PASSWORD_ENV})"
    )
    args = parser.parse_args(argv)
    checkpoints = []
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--checkpoint expects NAME=PATH, got {item!r}")
        checkpoints.append((name, Path(path)))
    return AppConfig(
        host=args.host, port=args.port, dataset=args.dataset, study_file=args.study, study_dir=args.study_dir,
        checkpoints=tuple(checkpoints), eval_dir=args.eval_dir, password=args.password or None,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    check_exposure(config)
    if config.dataset == "default":
        from mss.data import ensure_default_dataset

        print("preparing the default dataset (first run only)...", file=sys.stderr)
        ensure_default_dataset()

    def report(fraction: float, message: str) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    context = load_study_context(config, progress=report)
    if context.error:
        print(context.error, file=sys.stderr)
    app = build_app(config, context)
    print(f"serving on http://{config.host}:{config.port}", file=sys.stderr)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


if __name__ == "__main__":
    main()
