"""Participants' sessions: the store (steps, audio of each step, submissions), the ratings file and the
experimenter's table of sessions. Import from the modules; the app uses the package face,
``listening_study``."""
