"""The experimenter's views (Gradio, mounted at /experimenter behind the password of mss_app/security):
results of the listening study, its sessions, and the spectrogram browser.

Everything here names the systems; none of it is reachable from the participant page.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np

from listening_study import RATINGS_SNAPSHOT, analyze_study, neutralize_frame
from mss.browser import SpectrogramBrowser
from mss.errors import MSSError
from mss_app.config import AppConfig
from mss_app.context import StudyContext

#: The buttons of images and players here: download and full screen, never Gradio's "share" (it posts
#: to Hugging Face discussions; these views name the systems and hold the participants' data).
NO_SHARE = ["download", "fullscreen"]
AUDIO_BUTTONS = ["download"]


# --------------------------------------------------------------------------------------------- results
def _hidden():
    return gr.update(value=None, visible=False)


def _image(path):
    return gr.update(value=str(path), visible=True) if path else _hidden()


def _export_csv(frame, path: Path) -> Path:
    """A CSV for a spreadsheet: text cells that would run as formulas are neutralized."""
    neutralize_frame(frame).to_csv(path, index=False)
    return path


def results_state(context: StudyContext, folder: Path) -> dict:
    """Everything the Results tab shows, computed into ``folder`` (listening_study.analyze_study): a dict
    of headline, images, report, files; ``headline`` alone when there is nothing to analyse yet."""
    import pandas as pd

    if context.study is None:
        return {"headline": f"**No study loaded.** {context.error or ''}"}
    sessions = context.sessions.sessions_table()
    finished = int((sessions["step"] == "finished").sum()) if len(sessions) else 0
    started = f"{len(sessions)} session(s) started, {finished} finished"
    result, notes = analyze_study(context.stimuli, context.sessions, folder)
    if result is None:
        return {"headline": (f"**No ratings yet.** {started}. Participants take the test on the app's main "
                             "page (`/`); their ratings appear here as soon as they submit a trial.")}  # fmt: skip
    kept = len(result.participants) - len(result.excluded)
    headline = (f"**{result.n_rows} rating rows** from {len(result.participants)} session(s) ({kept} kept "
                f"after post-screening and the headphone check); {started}.{' ' + notes if notes else ''}")  # fmt: skip
    if not result.shared_codes.empty:
        codes = ", ".join(
            f"{row.participant_id} ({row.n_sessions} sessions)" for row in result.shared_codes.itertuples()
        )
        headline += f"\n\n**Participant codes used by more than one session:** {codes}."
    if result.tests_withheld:
        headline += f"\n\n**Significance not reported:** {result.tests_withheld}"
    if result.best_metrics is not None and result.best_metrics["metric"].notna().any():
        best = "; ".join(f"{row.target}: {row.metric} (rho {row.spearman_rho:.2f})"
                         for row in result.best_metrics.dropna(subset=["metric"]).itertuples())  # fmt: skip
        headline += f"\n\n**The metric that best predicts these listeners** (Spearman, per target): {best}."
    snapshot = folder / RATINGS_SNAPSHOT
    files = [
        _export_csv(pd.read_csv(snapshot, keep_default_na=False), folder / "ratings.csv"),
        _export_csv(sessions, folder / "sessions.csv"),
        result.files["html"],
    ]
    return {"headline": headline, "boxplots": result.files.get("boxplots"),
            "scatter": result.files.get("sdr_scatter"), "report": result.markdown, "files": files}  # fmt: skip


def _remove_folder(folder: str | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _results_tab(context: StudyContext):
    refresh = gr.Button("Refresh results", variant="primary")
    headline = gr.Markdown("Press *Refresh results*.")
    # no Gradio label: it would sit over the plot's own title and the top of its y-axis
    # no "share" button (to Hugging Face discussions) anywhere in these confidential views: NO_SHARE
    boxplot = gr.Image(label="Scores per condition", show_label=False, type="filepath", interactive=False,
                       visible=False, buttons=NO_SHARE)  # fmt: skip
    scatter = gr.Image(
        label="SDR vs. rating",
        show_label=False,
        type="filepath",
        interactive=False,
        visible=False,
        buttons=NO_SHARE,
    )
    report = gr.Markdown(visible=False)
    downloads = gr.File(label="Downloads (spreadsheet-safe CSV)", file_count="multiple", visible=False)
    # this browser tab's output folder (ratings snapshot, exports), replaced on every refresh and removed
    # when the tab's session ends, so closed or reloaded tabs leave no copies of the ratings behind
    folder_state = gr.State(None, delete_callback=_remove_folder)

    def render(previous, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        _remove_folder(previous)
        folder = Path(tempfile.mkdtemp(prefix="mss-results-"))
        progress(0.2, desc="analysing ratings")
        try:
            state = results_state(context, folder)
        except MSSError as exc:
            raise gr.Error(str(exc)) from exc
        if "report" not in state:
            return str(folder), state["headline"], _hidden(), _hidden(), _hidden(), _hidden()
        return (str(folder), state["headline"], _image(state["boxplots"]), _image(state["scatter"]),
                gr.update(value=state["report"], visible=True),
                gr.update(value=[str(p) for p in state["files"]], visible=True))  # fmt: skip

    outputs = [folder_state, headline, boxplot, scatter, report, downloads]
    refresh.click(render, inputs=folder_state, outputs=outputs, api_visibility="private")
    return render, folder_state, outputs


# --------------------------------------------------------------------------------------------- sessions
#: The sessions table's columns as shown (header in words, width in px): they fit 1200 px without
#: breaking a header mid-word. The CSV export keeps every column under its machine name.
SESSION_VIEW = {
    "session_id": ("Session", 90), "participant_id": ("Code", 105), "code_sessions": ("Code's sessions", 80),
    "mode": ("Mode", 70), "created": ("Started (UTC)", 115), "age": ("Age", 60),
    "experience": ("Experience", 110), "headphones": ("Listens with", 90), "headphones_model": ("Model", 100),
    "headphone_check": ("Headphone check", 95), "step": ("Step", 120), "trials_done": ("Trials", 70),
    "completion_code": ("Completion code", 100),
}  # fmt: skip
#: Height (px) the sessions table may take before it scrolls in a box of its own: a study's sessions, all on the page.
SESSIONS_TABLE_PX = 4000
SESSIONS_REFRESH_S = 15


def sessions_view(context: StudyContext):
    """The sessions table as the experimenter reads it: headers in words, short ids, no seconds, trials as
    "done of total"."""
    table = context.sessions.sessions_table()
    table["session_id"] = table["session_id"].str[:8]
    table["created"] = table["created"].str.replace("T", " ").str[:16]
    table["trials_done"] = [
        f"{done} of {total}" for done, total in zip(table["trials_done"], table["trials"], strict=True)
    ]
    return table[list(SESSION_VIEW)].rename(columns={key: name for key, (name, _) in SESSION_VIEW.items()})


def _sessions_tab(context: StudyContext):
    refresh = gr.Button("Refresh sessions")
    gr.Markdown(f"Refreshed every {SESSIONS_REFRESH_S} s while this tab is open.")
    table = gr.Dataframe(label="Sessions", show_label=False, interactive=False, wrap=True, max_height=SESSIONS_TABLE_PX,
                         column_widths=[width for _, width in SESSION_VIEW.values()], elem_classes=["mss-sessions"])  # fmt: skip

    def render():
        if context.study is None:
            raise gr.Error(context.error or "No study loaded.")
        return sessions_view(context)

    refresh.click(render, outputs=table, api_visibility="private")
    gr.Timer(SESSIONS_REFRESH_S).tick(render, outputs=table, api_visibility="private")
    return render, table


# --------------------------------------------------------------------------------------------- spectrograms
def _spectrogram_tab(config: AppConfig, context: StudyContext) -> None:
    """Widgets around mss.browser.SpectrogramBrowser: it reads, separates and scores only the window."""
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
    # hidden until a window is shown: an empty Gradio table shows placeholder columns "1 2 3"
    sdr = gr.Dataframe(label="museval SDR (dB, median over 1-s frames)", interactive=False, visible=False)
    notes = gr.Markdown()
    gr.Markdown("Spectrograms: log frequency, dB, one colour scale for all panels, time aligned.")
    plot = gr.Plot(show_label=False)
    with gr.Row():
        mix_audio = gr.Audio(label="Mixture", interactive=False, buttons=AUDIO_BUTTONS)
        ref_audio = gr.Audio(label="Reference", interactive=False, buttons=AUDIO_BUTTONS)
    players = []
    for name in systems:
        with gr.Row():
            players.append(gr.Audio(label=f"{name}: estimate", interactive=False, buttons=AUDIO_BUTTONS))
            players.append(
                gr.Audio(
                    label=f"{name}: error (reference - estimate)", interactive=False, buttons=AUDIO_BUTTONS
                )
            )

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
        return _window_outputs(browser, systems, song_name, target_name, names, start_s, end_s, progress)

    song.change(on_song, inputs=song, outputs=[start, end], api_visibility="private")
    start.release(on_start, inputs=[song, start, end], outputs=end, api_visibility="private")
    show.click(
        render,
        inputs=[song, target, chosen, start, end],
        outputs=[sdr, notes, plot, mix_audio, ref_audio, *players],
        api_visibility="private",
    )


def _window_outputs(browser, systems, song_name, target_name, names, start_s, end_s, progress):
    """What the spectrogram browser shows for one window: SDR table, notes, figure and the players."""
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
    return (gr.update(value=table, visible=True), message, view.figure, clip(view.mixture),
            clip(view.reference), *outputs)  # fmt: skip


# --------------------------------------------------------------------------------------------- blocks
def build_experimenter_blocks(config: AppConfig, context: StudyContext) -> gr.Blocks:
    """Results (computed when the page opens), sessions and the spectrogram browser."""
    with gr.Blocks(title="mss workbench: experimenter") as blocks:
        with gr.Row():
            gr.Markdown("# mss workbench: experimenter view")
            gr.Markdown("Participants: the main page `/` · [Log out](/experimenter/logout)")
        if context.error:
            gr.Markdown(f"**{context.error}**")
        if context.notes:  # e.g. songs the default study skipped, a target being silent in them
            gr.Markdown("\n".join(f"- {note}" for note in context.notes))
        with gr.Tabs():
            with gr.Tab("Results"):
                render, folder_state, outputs = _results_tab(context)
            with gr.Tab("Sessions"):
                sessions_render, sessions_table = _sessions_tab(context)
            with gr.Tab("Spectrogram browser"):
                _spectrogram_tab(config, context)
        blocks.load(render, inputs=folder_state, outputs=outputs, api_visibility="private")
        if context.study is not None:
            blocks.load(sessions_render, outputs=sessions_table, api_visibility="private")
    return blocks
