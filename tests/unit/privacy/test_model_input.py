"""Secrets never reach the model, from any feature: the real tiny model's input is recorded.

Each test runs a feature through its real code path (pipeline, snippet generation, repair, hints)
on the real ONNX engine, with `Engine.forward` (what every decode and every hint score goes
through) wrapped to decode each token sequence it is given back to text.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from gpt_lsp.assist.hints import find_hints
from gpt_lsp.assist.snippets import ACTION_KINDS, generate_snippet, plan_repair, plan_snippet
from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.inference.engine import DecodeLimits, Engine
from gpt_lsp.privacy.model_input import ModelView, model_view
from gpt_lsp.privacy.redact import find_secrets
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore, Position

AWS = "AKIA" + "Q3ZLXW7T2MNB5VRD"
GITHUB = "ghp_" + "Zr8Lq2Wx5Nc7Vb0Mk3Jh6Gf9Ds1Ap4Ty8Ue2Io5"
SLACK = "xoxb-" + "2938475610-4857362918273-ZbYxWvUtSrQpOnMlKjIhGfEd"
PASSWORD = "Tr0ub4dor&3x"
PEM_LINES = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0zIzW7yWR7QkrmBL7jTKEn5uaqKhbwKfBstIsabMY2Zkp18gnTxK",
    "LxoPHkAVdK7qRaeiOjaUNmG0QvqRgUnPYjsXmLBvNpBe8NSqH9jWTt0rBMgWXwN3",
    "r3QUgdMlJCRfAqLyxpQiUnsEBjUyFrpH9P5RBTwJlTaFTBqnjMcbSwFkEu4dPhVA",
    "hM5DKaLtD9Vxxyp9ssQPh7sbOlWkbTvgqZ1DuyTunsqvyQgHjeW0dXkXfnwWq9rF",
    "QKBgQD1qmXMGd4KdCzwGwvxHzAQo8CmvJK6qPBwC8oNwTKl5SXRJNMu1T9wQ0GTq",
    "Y4Lpa7sdw8RSBRmDwSD6Sa2XVL5Qy9wfoaHRfpyNeDqtsfzphhWj6uwMhSSf4Ioc",
    "kH7EUBSeV0RrpjaQm9vKDGJw6s7rE5BWCpsJfjyPhGmbFBDhoFMUhHvZi0mvsbxv",
    "TeMUEAKM0nu54wpAHLzqNpL8yH4ESZkJwGt6yxwN0fDg3eFNl9DsEuAj6fnYzYhT",
    "2j8XlmtWsQ3IEzd7L9IqsHW1XOCu6XJ6qNEcjw4S3EjOGG5G9EIBqbRzPqxe7yeo",
]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_LINES) + "\n-----END RSA PRIVATE KEY-----"
SECRET_PIECES = [AWS, GITHUB, SLACK, PASSWORD, *PEM_LINES]

SOURCE = f'''import os

AWS_KEY = "{AWS}"
SLACK = "{SLACK}"
KEY = """{PEM}"""
NAME = "service"
# read every line of the file at path


def connect(host, token="{GITHUB}"):
    # connect to the host with the key
    password = "{PASSWORD}"
    return open_session(host, AWS_KEY, password)


def load(path):
    pass


def total(items):
    result = 0
    for item in items:
        result += item
    return result
'''


class Spy:
    """Records every token sequence the engine runs, decoded back to text."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        run_graph = engine.run_graph

        # The graph run is the one door into the model: every prefill, decode step and probe passes it.
        def recording_run_graph(feeds, *args, **kwargs):
            self.seen.append(engine.decode(feeds["input_ids"][0].tolist()))
            return run_graph(feeds, *args, **kwargs)

        engine.run_graph = recording_run_graph  # type: ignore[method-assign]

    def assert_no_secret(self) -> None:
        assert self.seen, "the engine was never called: the test proves nothing"
        for text in self.seen:
            for piece in SECRET_PIECES:
                assert piece not in text, (piece, text)


@pytest.fixture
def engine(tiny_model_dir) -> Engine:
    return Engine(tiny_model_dir, "fp32", threads=1)


@pytest.fixture
def doc():
    return DocumentStore().open("file:///p/service.py", "python", 1, SOURCE)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n")) if needle in line)


def end_of_line(doc, needle: str) -> Position:
    line = line_of(doc.text, needle)
    return Position(line, len(doc.line_text(line)))


LINES = {
    "after the private key": 'NAME = "service"',  # the prompt window begins inside the key
    "after the slack token": "SLACK = ",
    "in the body of connect": "return open_session",
    "before the secrets": "import os",  # the secrets are in the suffix
}


@pytest.mark.parametrize("where", LINES)
def test_completion(engine, doc, where, monkeypatch):
    # Token-exact windows: block-aligned ones (for KV reuse) may start past the secret this case plants.
    monkeypatch.setattr("gpt_lsp.completion.pipeline.PROMPT_STEP", 1)
    spy = Spy(engine)
    Pipeline(engine, GenerationSettings(), prompt="fim").complete(doc, end_of_line(doc, LINES[where]))
    spy.assert_no_secret()
    assert any("<redacted:" in text for text in spy.seen)  # the window held a secret, replaced


def test_the_window_begins_inside_a_private_key(engine):
    """A 4096-bit key's armour is longer than the prompt's 4,000-character window: the window starts
    among its base64 lines, where no BEGIN line says they are a key."""
    body = [base64.b64encode(hashlib.sha512(str(i).encode()).digest()).decode()[:64] for i in range(70)]
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END RSA PRIVATE KEY-----"
    text = f'KEY = """{key}"""\nNAME = "service"\n'
    doc = DocumentStore().open("file:///p/key.py", "python", 1, text)
    spy = Spy(engine)
    Pipeline(engine, GenerationSettings(), prompt="fim").complete(doc, end_of_line(doc, "NAME = "))
    assert spy.seen and not any(line in seen for seen in spy.seen for line in body)
    assert "<redacted:private-key>" in spy.seen[0] and "-----BEGIN" not in spy.seen[0]


def test_a_private_key_straddling_the_cursor_is_never_completed_in(engine, doc):
    spy = Spy(engine)
    inside = end_of_line(doc, PEM_LINES[4])
    outcome = Pipeline(engine, GenerationSettings()).complete(doc, inside)
    assert outcome.reason == "gate: the cursor is inside a secret" and not spy.seen
    view = model_view(doc)
    offset = doc.offset_at(inside)
    before, after = view.slice(0, offset), view.slice(offset, len(SOURCE))
    assert before.endswith('SLACK = "<redacted:slack-bot-token>"\nKEY = """<redacted:private-key>')
    assert after.startswith('<redacted:private-key>"""\nNAME')
    assert not any(piece in before + after for piece in SECRET_PIECES)


@pytest.mark.parametrize("kind", ACTION_KINDS, ids=[k.value for k in ACTION_KINDS])
def test_snippets(engine, doc, kind):
    plans = (
        plan_snippet(doc, kind, Position(line, col)) for line in range(doc.line_count) for col in (0, 4, 8)
    )
    plan = next((p for p in plans if p is not None), None)
    assert plan is not None, f"{kind} applies nowhere in the test document"
    spy = Spy(engine)
    generate_snippet(Pipeline(engine, GenerationSettings()), doc, plan, DecodeLimits(8, 2000))
    spy.assert_no_secret()


def test_repair_of_a_line_holding_a_secret(engine):
    text = SOURCE.replace(f'    password = "{PASSWORD}"', f'    password = "{PASSWORD}" +')
    doc = DocumentStore().open("file:///p/service.py", "python", 1, text)
    line = line_of(text, "password = ")
    start, end = doc.index.line_span(line)
    spy = Spy(engine)
    generate_snippet(
        Pipeline(engine, GenerationSettings()), doc, plan_repair(doc, start, end), DecodeLimits(8, 2000)
    )
    spy.assert_no_secret()
    assert any("<redacted:" in text for text in spy.seen)


def test_model_hints_over_the_whole_file(engine, doc):
    spy = Spy(engine)
    find_hints(engine, doc, 0, len(SOURCE), threshold=-1e9)  # every site the model finds surprising
    spy.assert_no_secret()
    assert any("<redacted:" in text for text in spy.seen)


def test_hint_sites_inside_a_secret_are_never_scored(engine):
    text = 'token = "q8Fz3LmN0pXrTvWq"\nvalue = token\n'
    doc = DocumentStore().open("file:///p/t.py", "python", 1, text)
    spy = Spy(engine)
    find_hints(engine, doc, 0, len(text), threshold=-1e9)
    assert all("q8Fz3LmN0pXrTvWq" not in seen for seen in spy.seen)


def test_slices_map_back_to_document_offsets():
    text = 'a = 1\nk = "AKIAIOSFODNN7EXAMPLE"\nb = 2\n'
    view = ModelView(text, find_secrets(text))
    redacted, to_document = view.slice_mapped(0, len(text))
    assert redacted == 'a = 1\nk = "<redacted:aws-key>"\nb = 2\n'
    placeholder = redacted.index("<")
    assert to_document(placeholder) == text.index("AKIA")
    assert to_document(placeholder + 5) == text.index("AKIA")  # inside: the secret's start...
    assert to_document(placeholder + 5, True) == text.index('"\nb')  # ...or its end
    assert to_document(redacted.index("b =")) == text.index("b =")
    assert view.slice(text.index("b ="), len(text)) == "b = 2\n"


def test_text_copied_out_of_the_document_is_redacted_too():
    text = f'def connect(host, token="{GITHUB}"):\n    pass\n'
    view = ModelView(text, find_secrets(text))
    assert (
        view.redact(f'def connect(host, token="{GITHUB}"):\n')
        == 'def connect(host, token="<redacted:github-token>"):\n'
    )


def test_each_version_is_redacted_once(doc):
    assert model_view(doc) is model_view(doc)
    changed = DocumentStore().open(doc.uri, "python", 2, SOURCE.replace("NAME", "LABEL"))
    assert model_view(changed) is not model_view(doc)
    assert [s.kind for s in model_view(changed).secrets] == [s.kind for s in model_view(doc).secrets]
