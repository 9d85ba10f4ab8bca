"""The short questionnaire of a session: who listened, and with what (stored with the session).

QUESTIONS: tuple[Question, ...]           # sent to the page as JSON (as_json)
check_answers(answers) -> dict[str, str]  # SessionError naming the first missing or unknown answer
"""

from __future__ import annotations

from dataclasses import dataclass

from listening_study.errors import SessionError

MAX_TEXT_CHARS = 80


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    choices: tuple[tuple[str, str], ...] = ()  # (stored value, text shown); empty: free text
    required: bool = True

    def as_json(self) -> dict:
        return {"key": self.key, "text": self.text, "required": self.required,
                "choices": [{"value": value, "text": text} for value, text in self.choices]}  # fmt: skip


QUESTIONS: tuple[Question, ...] = (
    Question("age", "Your age", (
        ("18-24", "18-24"), ("25-34", "25-34"), ("35-44", "35-44"), ("45-54", "45-54"),
        ("55-64", "55-64"), ("65+", "65 or older"), ("undisclosed", "Prefer not to say"),
    )),
    Question("experience", "Your experience with listening critically to audio", (
        ("none", "None"),
        ("some", "Some: I play music or listen to music attentively"),
        ("experienced", "Experienced: I have taken part in listening tests before"),
        ("professional", "Professional: I work with audio (engineer, producer, musician)"),
    )),
    Question("headphones", "What are you listening with?", (
        ("closed", "Closed-back headphones"), ("open", "Open-back headphones"),
        ("in-ear", "In-ear headphones or earbuds"), ("speakers", "Loudspeakers"), ("other", "Other"),
    )),
    Question("headphones_model", "Make and model, if you know it (optional)", required=False),
)  # fmt: skip


def check_answers(answers) -> dict[str, str]:
    """The answers to store: every required question answered with one of its choices."""
    if not isinstance(answers, dict):
        raise SessionError("the questionnaire answers must be a mapping of question to answer")
    known = {q.key for q in QUESTIONS}
    unknown = sorted(str(k)[:40] for k in answers if k not in known)
    if unknown:
        raise SessionError(f"unknown questions {unknown}")
    checked = {}
    for question in QUESTIONS:
        value = answers.get(question.key, "")
        if not isinstance(value, str):
            raise SessionError(f"the answer to '{question.text}' must be text")
        value = value.strip()
        if not value:
            if question.required:
                raise SessionError(f"Please answer: {question.text}.")
            continue
        if question.choices and value not in {v for v, _ in question.choices}:
            raise SessionError(f"'{value[:40]}' is not one of the answers to '{question.text}'")
        if len(value) > MAX_TEXT_CHARS:
            raise SessionError(f"the answer to '{question.text}' is longer than {MAX_TEXT_CHARS} characters")
        checked[question.key] = value
    return checked
