"""What a study is and how one session is laid out: the study file, its dataset, the secret key, the
session design (order, letters), the questionnaire, the rules of a trial and the headphone check.
Import from the modules; the app uses the package face, ``listening_study``."""
