"""FIM prompt construction: exact budget, nearest prefix first, and token healing (server/completion/prompt.py)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_lsp.completion.prompt import FimIds, build_fim_prompt, fim_training_ids

FIM = FimIds(prefix=-1, suffix=-2, middle=-3)


class CharTokenizer:
    """One token per character: makes budgets and spans easy to reason about exactly."""

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids if i >= 0)


def split(ids):
    """Split PSM ids back into (prefix ids, suffix ids)."""
    assert ids[0] == FIM.prefix and ids[-1] == FIM.middle
    s = ids.index(FIM.suffix)
    return ids[1:s], ids[s + 1 : -1]


def test_prompt_keeps_the_prefix_nearest_the_cursor():
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, FIM, "a" * 100 + "XYZ ", "tail", budget=20, heal=False)
    prefix_ids, suffix_ids = split(prompt.ids)
    assert len(prompt.ids) <= 20
    assert tok.decode(prefix_ids).endswith("XYZ ")
    assert tok.decode(suffix_ids) == "tail"


def test_suffix_gets_at_most_a_quarter_and_returns_the_rest_to_the_prefix():
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, FIM, "p" * 500, "s" * 500, budget=103, heal=False)
    prefix_ids, suffix_ids = split(prompt.ids)
    assert len(prompt.ids) == 103
    assert len(suffix_ids) <= 25
    short = build_fim_prompt(tok, FIM, "p" * 500, "ss", budget=103, heal=False)
    assert len(split(short.ids)[0]) > len(prefix_ids)


def test_extra_context_fills_what_is_left_before_the_prefix():
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, FIM, "x = 1\n", "", budget=40, extra="import os\n", heal=False)
    prefix_ids, _ = split(prompt.ids)
    assert tok.decode(prefix_ids) == "import os\nx = 1\n"


def test_without_fim_the_prompt_is_the_prefix_alone():
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, None, "hello", "world", budget=10, heal=False)
    assert tok.decode(prompt.ids) == "hello"


def test_token_healing_backs_up_over_a_word_fragment():
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, FIM, "print(valu", ")", budget=50)
    assert prompt.healed == "u"
    assert tok.decode(split(prompt.ids)[0]) == "print(val"
    no_heal = build_fim_prompt(tok, FIM, "print(", ")", budget=50)
    assert no_heal.healed == ""


def test_token_healing_backs_up_over_trailing_spaces_but_not_a_line_break():
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, FIM, "x ", "", budget=50)
    assert prompt.healed == " "
    assert tok.decode(split(prompt.ids)[0]) == "x"
    assert build_fim_prompt(tok, FIM, "x = 1\n", "", budget=50).healed == ""


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=300),
    st.text(max_size=300),
    st.integers(min_value=4, max_value=200),
    st.text(max_size=50),
)
def test_prompt_never_exceeds_its_budget_and_spans_are_contiguous(prefix, suffix, budget, extra):
    tok = CharTokenizer()
    prompt = build_fim_prompt(tok, FIM, prefix, suffix, budget, extra)
    assert len(prompt.ids) <= budget
    prefix_ids, suffix_ids = split(prompt.ids)
    healed_prefix = prefix[: len(prefix) - len(prompt.healed)]
    assert prefix.endswith(prompt.healed)
    assert tok.decode(prefix_ids).endswith(healed_prefix[len(healed_prefix) - prompt.prefix_chars :])
    assert suffix.startswith(tok.decode(suffix_ids))


def test_training_examples_match_the_serving_layout():
    psm = fim_training_ids([10, 11], [20], [30, 31], FIM, spm=False)
    assert psm == [FIM.prefix, 10, 11, FIM.suffix, 30, 31, FIM.middle, 20]
    spm = fim_training_ids([10, 11], [20], [30, 31], FIM, spm=True)
    assert spm == [FIM.prefix, FIM.suffix, 30, 31, FIM.middle, 10, 11, 20]


def test_prompt_with_a_real_bpe_tokenizer_stays_in_budget(tiny_tokenizer):
    class Wrapped:
        def encode(self, text):
            return tiny_tokenizer.encode(text, add_special_tokens=False).ids

        def decode(self, ids):
            return tiny_tokenizer.decode(list(ids), skip_special_tokens=False)

    source = "def handler(request):\n    return request.json()\n" * 50
    prompt = build_fim_prompt(Wrapped(), FIM, source, source, budget=64)
    assert len(prompt.ids) <= 64


def test_a_stepped_window_keeps_the_prompt_start_while_typing():
    """Typing at the end of a long prefix leaves the first tokens alone for many keystrokes
    (what lets the engine reuse their cache), and the prompt stays within step tokens of the budget."""
    tok = CharTokenizer()
    text = "".join(f"line {i}\n" for i in range(400))
    starts = set()
    for typed in range(40):
        prompt = build_fim_prompt(tok, None, text + "x" * typed, "", budget=200, heal=False, step=64)
        assert 200 - 64 < len(prompt.ids) <= 200
        assert tok.decode(prompt.ids).endswith("x" * typed)
        starts.add(tuple(prompt.ids[:10]))
    assert len(starts) == 1
    exact = build_fim_prompt(tok, None, text, "", budget=200, heal=False)
    assert len(exact.ids) == 200


def test_context_from_other_files_leads_the_prompt_in_whole_lines_within_its_share():
    tok = CharTokenizer()
    related = "# From a.py:\n# def helper(x):\n" * 10
    long_prefix = "y = 1\n" * 100
    prompt = build_fim_prompt(tok, FIM, long_prefix, "", budget=103, related=related, heal=False)
    body = tok.decode(split(prompt.ids)[0])
    # A quarter of the room (25 tokens) holds the first line (13) but not the second (17 more).
    assert body.startswith("# From a.py:\n") and "helper" not in body
    # A short prefix leaves the rest of the room to the other files.
    short = build_fim_prompt(tok, FIM, "y = 1\n", "", budget=103, related=related, heal=False)
    assert len(tok.decode(split(short.ids)[0])) > 25
