"""Making and sending the audio: the stimuli rendered once (stimuli, processing), the bytes a session
receives (wav), what the server sent (evidence), and the curious participant's audit (audit, a CLI).
Import from the modules; the app uses the package face, ``listening_study``."""
