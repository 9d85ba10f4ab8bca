"""The web app of the workbench (``python app.py``), one module per surface:

    context.py       AppConfig, the loaded study and its stores (StudyContext)
    participant.py   the participant page at / : the listening test and nothing else
    api.py           the participant's HTTP API (/mushra/api/*, /mushra/audio/*, /mushra/static/*)
    experimenter.py  the experimenter's Gradio views at /experimenter: results, sessions, spectrograms
    security.py      the experimenter password (login, cookie, gate), request size limits, headers
    server.py        build_app: everything above on one FastAPI app; BackgroundServer for tests

All computing lives in ``mss`` and ``listening_study``; these modules only serve it.
"""
