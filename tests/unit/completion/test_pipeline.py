"""The serving pipeline's own logic with a scripted engine: gating, shaping, parse check, cache,
typing-through, token healing (server/completion/pipeline.py). Real ONNX decoding is covered in tests/model
and tests/e2e; here the model's answer is fixed so each rule is pinned down exactly."""

from __future__ import annotations

import time

from gpt_lsp.completion.context import CompletionKind
from gpt_lsp.completion.pipeline import SAMPLING_TEMPERATURE, Pipeline
from gpt_lsp.completion.prompt import FimIds
from gpt_lsp.inference.engine import DecodeLimits, Generation
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore, Position


class ScriptedEngine:
    """Engine stand-in: one token per character, and a fixed answer per call."""

    fim = FimIds(-1, -2, -3)
    context_length = 256
    completion_prompt = "fim"
    eos_id = 0
    bos_id = None  # a model trained without <bos>

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[int], str]] = []
        self.temperatures: list[float] = []  # per call, and whether it got a random generator
        self.sampled: list[bool] = []

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids if i >= 0)

    def generate(
        self,
        prompt_ids,
        limits: DecodeLimits,
        stop=None,
        cancelled=lambda: False,
        healed="",
        rng=None,
        observe=None,
    ):
        self.calls.append((list(prompt_ids), healed))
        self.temperatures.append(limits.temperature)
        self.sampled.append(rng is not None)
        text = healed + self.answers.pop(0) if self.answers else healed
        cut = stop(text + "\n") if stop else None
        if cut is not None:
            text = text[:cut]
        return Generation(text, len(text), "stop_rule", 1.0)


def make_doc(text: str, uri: str = "file:///t.py"):
    store = DocumentStore()
    return store.open(uri, "python", 1, text)


def test_line_completion_is_cut_at_the_line_end_and_placed_at_the_cursor():
    doc = make_doc("def area(r):\n    return \n")
    engine = ScriptedEngine("3.14 * r * r\nprint(1)")
    outcome = Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 11))
    [s] = outcome.suggestions
    assert s.text == "3.14 * r * r"
    assert s.start == s.end == doc.text.index("return ") + len("return ")
    assert s.kind is CompletionKind.LINE and outcome.timings.keys() >= {"context", "prompt", "decode"}


def test_prefix_prompts_leave_out_the_code_after_the_cursor():
    """completion_prompt "prefix" (a model that continues better than it infills): no FIM sentinels,
    no suffix; "fim" sends both. The suffix is still used to de-duplicate the answer."""
    doc = make_doc("def area(r):\n    return \n\nprint(area(2))\n")
    fim_engine, prefix_engine = ScriptedEngine("3.14 * r * r"), ScriptedEngine("3.14 * r * r")
    prefix_engine.completion_prompt = "prefix"
    for engine in (fim_engine, prefix_engine):
        [s] = Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 11)).suggestions
        assert s.text == "3.14 * r * r"
    fim_ids, prefix_ids = fim_engine.calls[0][0], prefix_engine.calls[0][0]
    assert fim_ids[0] == -1 and -2 in fim_ids and fim_ids[-1] == -3
    assert "print(area(2))" in fim_engine.decode(fim_ids)
    assert min(prefix_ids) >= 0 and "print" not in prefix_engine.decode(prefix_ids)
    # The trailing space is healed: the model re-chooses it (" 3" or " (" are single tokens in real vocabularies).
    assert prefix_engine.decode(prefix_ids).endswith("return") and prefix_engine.calls[0][1] == " "
    # At the very start of a file there is no prefix at all: the prompt is a document boundary.
    empty = make_doc("")
    Pipeline(prefix_engine, GenerationSettings()).complete(empty, Position(0, 0))
    assert prefix_engine.calls[-1][0] == [0]
    # An evaluation can override the model directory's choice.
    overridden = ScriptedEngine("x")
    Pipeline(overridden, GenerationSettings(), prompt="prefix").complete(doc, Position(1, 11))
    assert min(overridden.calls[0][0]) >= 0


def test_gate_says_why_and_never_calls_the_model():
    doc = make_doc("# explain the algorithm here\n")
    engine = ScriptedEngine("anything")
    outcome = Pipeline(engine, GenerationSettings()).complete(doc, Position(0, 10))
    assert outcome.suggestions == [] and outcome.reason.startswith("gate:")
    assert engine.calls == []


def test_a_completion_that_breaks_the_parse_is_rejected():
    doc = make_doc("def f(x):\n    return \n")
    outcome = Pipeline(ScriptedEngine("(x + "), GenerationSettings()).complete(doc, Position(1, 11))
    assert outcome.suggestions == [] and "syntax" in outcome.reason


def test_same_prompt_twice_decodes_once():
    doc = make_doc("def f(x):\n    return \n")
    engine = ScriptedEngine("x * 2", "never used")
    pipeline = Pipeline(engine, GenerationSettings())
    first = pipeline.complete(doc, Position(1, 11))
    pipeline.typing.forget(doc.uri)
    second = pipeline.complete(doc, Position(1, 11))
    assert len(engine.calls) == 1 and second.cached
    assert [s.text for s in first.suggestions] == [s.text for s in second.suggestions] == ["x * 2"]


def test_typing_through_a_shown_suggestion_needs_no_decode():
    store = DocumentStore()
    doc = store.open("file:///t.py", "python", 1, "def f(x):\n    return \n")
    engine = ScriptedEngine("x * 2 + 1")
    pipeline = Pipeline(engine, GenerationSettings())
    pipeline.complete(doc, Position(1, 11))
    from gpt_lsp.text.documents import TextChange

    doc = store.change(doc.uri, 2, [TextChange("x *", Position(1, 11), Position(1, 11))])
    outcome = pipeline.complete(doc, Position(1, 14))
    assert [s.text for s in outcome.suggestions] == [" 2 + 1"]
    assert len(engine.calls) == 1 and outcome.reason == "typing-through"


def test_mid_identifier_cut_heals_and_the_edit_starts_at_the_cursor():
    doc = make_doc("import os\nos.pa\n")
    engine = ScriptedEngine("th.join")
    outcome = Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 5))
    assert engine.calls[0][1] == "a"  # the model re-chose the token that held the typed "a"
    [s] = outcome.suggestions
    assert s.text == "th.join" and s.start == doc.text.index("os.pa") + len("os.pa")


def test_block_completion_stops_at_the_dedent():
    doc = make_doc("class A:\n    def size(self):\n\nx = 1\n")
    engine = ScriptedEngine("        return len(self.items)\n    def other(self):\n        pass")
    outcome = Pipeline(engine, GenerationSettings()).complete(doc, Position(2, 0))
    [s] = outcome.suggestions
    assert s.kind is CompletionKind.BLOCK
    assert "other" not in s.text and "return len(self.items)" in s.text


class SlowEngine(ScriptedEngine):
    """Decodes one character at a time, asking the stop rule after each, and the second line slowly."""

    def generate(
        self, prompt_ids, limits, stop=None, cancelled=lambda: False, healed="", rng=None, observe=None
    ):
        answer = healed + self.answers.pop(0) + "\n"
        for end in range(1, len(answer) + 1):
            if answer[end - 1] == "\n":
                time.sleep(0.01)
            cut = stop(answer[:end]) if stop else None
            if cut is not None:
                return Generation(answer[:cut], end, "stop_rule", 1.0)
        return Generation(answer, len(answer), "eos", 1.0)


def test_while_typing_a_block_ends_at_the_last_line_ready_within_the_budget():
    doc = make_doc("class A:\n    def size(self):\n\nx = 1\n")
    answer = "        n = len(self.items)\n        return n"
    settings = GenerationSettings(typing_budget_ms=5)
    typed = Pipeline(SlowEngine(answer), settings).complete(doc, Position(2, 0), typing=True)
    asked = Pipeline(SlowEngine(answer), settings).complete(doc, Position(2, 0))
    assert [s.text for s in typed.suggestions] == ["        n = len(self.items)"]
    assert typed.stop_reason == "budget" and typed.reason == "ok (budget)"
    assert [s.text for s in asked.suggestions] == [answer] and asked.stop_reason == "eos"


def test_models_trained_with_bos_get_it_before_every_prompt():
    doc = make_doc("def area(r):\n    return \n")
    engine = ScriptedEngine("3.14 * r * r")
    engine.bos_id, engine.completion_prompt = -9, "prefix"
    [s] = Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 11)).suggestions
    assert s.text == "3.14 * r * r"
    ids = engine.calls[0][0]
    assert ids[0] == -9 and min(ids[1:]) >= 0 and engine.decode(ids[1:]).endswith("return")


def test_several_candidates_are_the_greedy_one_then_sampled_ones_without_duplicates():
    doc = make_doc("def area(r):\n    return \n")
    engine = ScriptedEngine("3.14 * r * r", "r ** 2", "3.14 * r * r")
    outcome = Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 11), n=3)
    assert [s.text for s in outcome.suggestions] == ["3.14 * r * r", "r ** 2"]
    assert engine.temperatures == [0.0, SAMPLING_TEMPERATURE, SAMPLING_TEMPERATURE]
    assert engine.sampled == [False, True, True]


def test_the_first_of_several_candidates_is_the_cached_single_answer():
    doc = make_doc("def area(r):\n    return \n")
    engine = ScriptedEngine("3.14 * r * r", "r ** 2", "r * r")
    pipeline = Pipeline(engine, GenerationSettings())
    [single] = pipeline.complete(doc, Position(1, 11)).suggestions
    outcome = pipeline.complete(doc, Position(1, 11), n=3)
    assert [s.text for s in outcome.suggestions] == [single.text, "r ** 2", "r * r"]
    assert engine.temperatures == [0.0, SAMPLING_TEMPERATURE, SAMPLING_TEMPERATURE]  # greedy decoded once


def test_a_configured_temperature_applies_to_every_candidate():
    doc = make_doc("def area(r):\n    return \n")
    engine = ScriptedEngine("a", "b")
    Pipeline(engine, GenerationSettings(temperature=0.3)).complete(doc, Position(1, 11), n=2)
    assert engine.temperatures == [0.3, 0.3]
