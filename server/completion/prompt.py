"""Fill-in-the-middle prompts with an exact token budget — the contract between serving and training.

Serving builds `<fim_prefix> extra+prefix <fim_suffix> suffix <fim_middle>` (PSM) from the text
around the cursor; training formats examples with the same functions, so the model is trained on
exactly what it is shown ("prompt.py is the contract"). Sentinel spelling and joint
PSM/SPM training follow Bavarian et al. 2022 (arXiv 2207.14255) and StarCoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Tokenising a window much longer than the budget is wasted work on every keystroke; no
# tokenizer we ship averages more than this many characters per token on code.
MAX_CHARS_PER_TOKEN = 8
# Context from other files takes at most 1/RELATED_SHARE of a prompt whose prefix needs the room.
RELATED_SHARE = 4


class TextTokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


@dataclass(frozen=True)
class FimIds:
    """Token ids of the three FIM sentinels."""

    prefix: int
    suffix: int
    middle: int


@dataclass(frozen=True)
class Prompt:
    """Token ids to feed the model, and what part of the text they cover."""

    ids: list[int]
    prefix_chars: int  # characters of the prefix that made it into the prompt
    suffix_chars: int  # characters of the suffix that made it into the prompt
    healed: str = (
        ""  # trailing prefix characters removed for token healing; the completion must start with them
    )


def _tail_ids(tokenizer: TextTokenizer, text: str, budget: int, step: int = 1) -> tuple[list[int], int, bool]:
    """The last `budget` tokens of `text` (fewer, see `step`), how many characters they span, and
    whether that is all of `text`.

    With `step` > 1 the start of the window moves in jumps: the character window begins at a
    multiple of 2·step·MAX_CHARS_PER_TOKEN and whole `step`-token blocks are dropped from its
    front, so while the user types at the end, the first tokens stay the same for many
    keystrokes and the engine can reuse their KV cache. The price is up to `step` - 1 tokens.
    """
    if budget <= 0 or not text:
        return [], 0, not text
    step = max(1, min(step, budget))
    start = max(0, len(text) - budget * MAX_CHARS_PER_TOKEN)
    if step > 1:
        start -= start % (2 * step * MAX_CHARS_PER_TOKEN)
    ids = tokenizer.encode(text[start:])
    if start > 0 and ids:
        ids = ids[1:]  # the first token may be a fragment of a word cut by the window
    over = len(ids) - budget
    if over > 0:
        ids = ids[-(-over // step) * step :]
    return ids, len(tokenizer.decode(ids)), start == 0 and over <= 0


def _head_ids(tokenizer: TextTokenizer, text: str, budget: int) -> tuple[list[int], int]:
    """The first `budget` tokens of `text` and how many characters they span."""
    if budget <= 0 or not text:
        return [], 0
    window = text[: budget * MAX_CHARS_PER_TOKEN]
    ids = tokenizer.encode(window)
    if len(window) < len(text) and ids:
        ids = ids[:-1]
    ids = ids[:budget]
    return ids, len(tokenizer.decode(ids))


def _head_lines(tokenizer: TextTokenizer, text: str, budget: int) -> list[int]:
    """The tokens of the longest run of whole lines at the start of `text` that fits `budget`."""
    ids, chars = _head_ids(tokenizer, text, budget)
    if chars >= len(text):
        return ids
    kept = text[: text.rfind("\n", 0, chars + 1) + 1]
    ids = tokenizer.encode(kept) if kept else []
    return ids if len(ids) <= budget else []


def _heal(tokenizer: TextTokenizer, ids: list[int], prefix_chars: int) -> tuple[list[int], int, str]:
    """Drop the last prefix token when it is a word fragment or bare spaces, so the model can
    re-choose it.

    Mid-identifier cuts otherwise force the model to continue from a token boundary it never saw
    in training ("token healing"). A trailing space is the same trap: after `x ` the tokenizer
    has ` =` and ` in` as single tokens, so a lone ` ` token leads the model off the code it knows
    (measured on Gemma: most boundary cuts after a space were rejected by the parse check).
    """
    if not ids:
        return ids, prefix_chars, ""
    last = tokenizer.decode(ids[-1:])
    fragment = bool(last) and (last[-1].isalnum() or last[-1] == "_")
    spaces = bool(last) and not last.strip(" \t")
    if not (fragment or spaces) or "\n" in last:
        return ids, prefix_chars, ""
    return ids[:-1], prefix_chars - len(last), last


def build_fim_prompt(
    tokenizer: TextTokenizer,
    fim: FimIds | None,
    prefix: str,
    suffix: str,
    budget: int,
    extra: str = "",
    heal: bool = True,
    step: int = 1,
    related: str = "",
    related_share: int = RELATED_SHARE,
) -> Prompt:
    """Build a prompt of at most `budget` tokens.

    The prefix nearest the cursor comes first; the suffix gets up to a quarter of the budget
    (whatever it does not use goes back to the prefix); `related` (context from other files,
    whole lines) leads the prompt with up to 1/`related_share` of it; `extra` (imports, signatures
    of the enclosing scopes) fills what is left, placed before the prefix. Without FIM sentinels
    the model sees the prefix alone. `step` > 1 trades up to step - 1 prefix tokens for a prompt
    start that stays put while the user types (see `_tail_ids`).
    """
    sentinels = 3 if fim else 0
    room = budget - sentinels
    if room <= 0:
        raise ValueError(f"token budget {budget} leaves no room for a prompt")
    suffix_ids, suffix_chars = _head_ids(tokenizer, suffix, room // 4) if fim else ([], 0)
    # Context from other files may take up to RELATED_SHARE of the room from the prefix, and more
    # when the prefix is short; it is cut at a line end so the file's own code starts on a new line.
    related_ids = _head_lines(tokenizer, related, room - len(suffix_ids))
    reserved = min(len(related_ids), room // related_share)
    prefix_ids, prefix_chars, whole = _tail_ids(tokenizer, prefix, room - len(suffix_ids) - reserved, step)
    # Extra context only when the whole prefix fits: a cut prefix is better context than extra.
    extra_room = room - len(suffix_ids) - len(prefix_ids) - reserved if whole else 0
    healed = ""
    if heal:
        prefix_ids, prefix_chars, healed = _heal(tokenizer, prefix_ids, prefix_chars)
    extra_ids, _ = _head_ids(tokenizer, extra, extra_room)
    if len(related_ids) > reserved:
        spare = extra_room - len(extra_ids) if whole else 0
        related_ids = _head_lines(tokenizer, related, reserved + spare)
    body = related_ids + extra_ids + prefix_ids
    ids = [fim.prefix, *body, fim.suffix, *suffix_ids, fim.middle] if fim else body
    assert len(ids) <= budget, (len(ids), budget)
    return Prompt(ids=ids, prefix_chars=prefix_chars, suffix_chars=suffix_chars, healed=healed)


def fim_training_ids(
    prefix: list[int], middle: list[int], suffix: list[int], fim: FimIds, spm: bool
) -> list[int]:
    """One FIM training example (without the end-of-text token the caller appends).

    PSM is what serving sends. SPM is the StarCoder variant (`<fim_prefix><fim_suffix> suffix
    <fim_middle> prefix middle`), trained jointly because it teaches the same task with the
    prefix adjacent to the middle (Bavarian et al., appendix D).
    """
    if spm:
        return [fim.prefix, fim.suffix, *suffix, fim.middle, *prefix, *middle]
    return [fim.prefix, *prefix, fim.suffix, *suffix, fim.middle, *middle]
