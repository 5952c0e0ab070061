"""Model hints: places where the model finds the written token very unlikely and strongly prefers
another ("`lenght` — did you mean `length`?").

Three stages, each testable alone:

1. `candidate_sites` (tree-sitter, no model): identifiers and operators in the changed region,
   each with a few replacements worth asking about — names of the same file within a small edit
   distance (typos), and the operator's usual swaps (`<`/`>`, `+`/`-`, `and`/`or`, ...).
2. `score_sites` (the model): one forward pass over the region, then, for each site the model
   finds surprising, the log-likelihood of the rest of the line with each replacement (the KV
   cache is sliced at the site, so a replacement costs only its own tokens). The model's own
   top guess at the site becomes a candidate too when it spells a name used elsewhere in the file.
3. `select_hints`: keep a site when its best replacement beats the written text by at least
   `threshold` nats. The threshold is measured per model by `gpt-lsp hint-bench` and stored next
   to it (`hints.json`); without that measurement hints stay off, since a noisy hint is worse
   than none.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tree_sitter

from ..privacy.model_input import model_view
from ..text.documents import Document

log = logging.getLogger(__name__)

CALIBRATION_NAME = "hints.json"  # written by `gpt-lsp hint-bench --save` into the model directory
MIN_PRECISION = 0.8  # a calibration below this precision keeps hints off
GATE_NATS = -2.0  # sites whose written word the model finds likelier than this are not examined
MAX_REGION_LINES = 60  # hints look at the changed lines, never at a whole large file at once
MAX_SITES = 200
MAX_CANDIDATES = 4
SPAN_TOKENS = 16  # tokens of the line (from the site on) compared between written text and replacement

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OPERATOR_SWAPS = {
    "<": ("<=", ">"),
    "<=": ("<", ">="),
    ">": (">=", "<"),
    ">=": (">", "<="),
    "==": ("!=",),
    "!=": ("==",),
    "+": ("-",),
    "-": ("+",),
    "*": ("/",),
    "/": ("*",),
    "and": ("or",),
    "or": ("and",),
    "&&": ("||",),
    "||": ("&&",),
    "is": ("is not",),
}
_DEFINING_PARENTS = frozenset(
    "parameters typed_parameter default_parameter typed_default_parameter function_definition class_definition "
    "import_statement import_from_statement aliased_import dotted_name keyword_argument formal_parameters "
    "function_declaration method_definition required_parameter optional_parameter".split()
)


@dataclass(frozen=True)
class Site:
    """A word or operator the model is asked about, with the replacements to compare."""

    start: int  # str offsets into the document
    end: int
    text: str
    kind: str  # "name" (identifier) or "operator"
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Hint:
    start: int
    end: int
    word: str
    replacement: str
    kind: str  # typo | name | operator
    score: float  # nats by which the model prefers the replacement

    @property
    def message(self) -> str:
        return f"`{self.word}` — did you mean `{self.replacement}`?"

    @property
    def code(self) -> str:
        return f"hint-{self.kind}"


@dataclass
class Scored:
    """What the model said about one site: best replacement and its advantage in nats."""

    site: Site
    best: str = ""
    delta: float = float("-inf")
    extra: list[str] = field(default_factory=list)  # the model's own guess, when it names something


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance (a transposition counts once), capped at `limit` + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def vocabulary(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text))


def candidate_sites(doc: Document, start: int, end: int) -> list[Site]:
    """Identifiers and operators in text[start:end] (whole lines), with replacements to try."""
    if doc.tree is None or doc.spec is None:
        return []
    words = vocabulary(model_view(doc).slice(0, len(doc.text)))  # candidates are sent to the model
    first, last = doc.index.line_of(start), doc.index.line_of(end)
    last = min(last, first + MAX_REGION_LINES)
    a = doc.byte_offset(int(doc.index.starts[first]))
    b = doc.byte_offset(doc.index.line_span(last)[1])
    sites: list[Site] = []
    for node in _leaves_between(doc.tree.root_node, a, b):
        text = doc.text_of(node)
        s, e = doc.str_offset(node.start_byte), doc.str_offset(node.end_byte)
        if "identifier" in node.type and is_use(node):
            near = [w for w in words if w != text and edit_distance(text, w) <= max(1, len(text) // 4)]
            near.sort(key=lambda w: (edit_distance(text, w), -words[w]))
            if len(text) >= 3:
                sites.append(Site(s, e, text, "name", tuple(near[:MAX_CANDIDATES])))
        elif node.type in OPERATOR_SWAPS:
            sites.append(Site(s, e, text, "operator", OPERATOR_SWAPS[node.type]))
        if len(sites) >= MAX_SITES:
            break
    return sites


def _leaves_between(root: tree_sitter.Node, a: int, b: int) -> list[tree_sitter.Node]:
    out: list[tree_sitter.Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.end_byte < a or node.start_byte > b or node.is_error or node.is_missing:
            continue
        if node.child_count == 0 or "identifier" in node.type:
            out.append(node)
        elif not node.type.startswith(("string", "comment")):
            stack.extend(reversed(node.children))
    return out


def is_use(node: tree_sitter.Node) -> bool:
    """Definitions (parameters, names being defined, imports) introduce names; they are not typos."""
    parent = node.parent
    if parent is None or parent.type in _DEFINING_PARENTS:
        return False
    name = parent.child_by_field_name("name")
    return not (name is not None and name.id == node.id)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def score_sites(
    engine, doc: Document, sites: list[Site], cancelled: Callable[[], bool] = lambda: False
) -> list[Scored]:
    """Ask the model about each site; sites it does not find surprising get delta -inf."""
    view = model_view(doc)  # the model reads the document only with its secrets replaced
    sites = [s for s in sites if not view.overlapping(s.start, s.end)]
    if not sites:
        return []
    window = engine.context_length
    first = min(s.start for s in sites)
    line_start = int(doc.index.starts[doc.index.line_of(first)])
    ctx_start = max(0, line_start - window * 4)  # about as much context as the window holds
    end = doc.index.line_span(doc.index.line_of(max(s.end for s in sites)))[1]
    text, to_document = view.slice_mapped(ctx_start, end)
    encoding = engine.tokenizer.encode(text, add_special_tokens=False)
    ids = list(encoding.ids)
    offsets = [(to_document(a, False), to_document(b, True)) for a, b in encoding.offsets]
    results: list[Scored] = []
    start_token = 0
    while start_token < len(ids) and not cancelled():
        span = ids[start_token : start_token + window]
        logits, past = engine.forward(span, engine.empty_cache())
        logp = _log_softmax(logits)
        # Each site is scored in a window where it has context before it and room after it.
        last_window = start_token + len(span) >= len(ids)
        usable_from = start_token + (window // 4 if start_token else 1)
        usable_to = start_token + len(span) - (0 if last_window else _margin(window))
        for site in sites:
            t0 = _token_at(offsets, site.start)
            if t0 is None or not (usable_from <= t0 < usable_to) or cancelled():
                continue
            results.append(_score_site(engine, view, doc, site, ids, offsets, logp, past, start_token, t0))
        if last_window:
            break
        start_token += window // 2
    return results


def _margin(window: int) -> int:
    return min(2 * SPAN_TOKENS, window // 4)


def _token_at(offsets: list[tuple[int, int]], char: int) -> int | None:
    for i, (a, b) in enumerate(offsets):
        if a <= char < b:
            return i
    return None


def _score_site(engine, view, doc, site, ids, offsets, logp, past, base, t0) -> Scored:
    """Compare log p(rest of line) as written with each replacement, from token t0 on."""
    scored = Scored(site)
    line_end = doc.index.line_span(doc.index.line_of(site.end))[1]
    t_end = next((i for i in range(t0, len(ids)) if offsets[i][0] >= line_end), len(ids))
    t_end = min(t_end, base + logp.shape[0], t0 + SPAN_TOKENS)
    t_word = next((i for i in range(t0, t_end) if offsets[i][0] >= site.end), t_end)
    rows = np.arange(t0 - 1, t_word - 1) - base
    word_lp = float(logp[rows, ids[t0:t_word]].sum())
    if word_lp > GATE_NATS or t_end <= t0:
        return scored
    head = view.slice(offsets[t0][0], site.start)  # a leading space that shares the site's first token
    tail = view.slice(site.end, offsets[t_end - 1][1])
    rows = np.arange(t0 - 1, t_end - 1) - base
    written_lp = float(logp[rows, ids[t0:t_end]].sum())
    prefix_past = [p[:, :, : t0 - base] for p in past]
    first_row = logp[t0 - 1 - base]
    candidates = list(site.candidates)
    if site.kind == "name":
        guess = _model_guess(engine, first_row, head)
        if guess and guess != site.text and guess in vocabulary(doc.text) and guess not in candidates:
            candidates.append(guess)
            scored.extra.append(guess)
    for candidate in candidates:
        cand_ids = engine.encode(head + candidate + tail)
        if not cand_ids or len(cand_ids) - 1 + (t0 - base) > engine.context_length:
            continue
        cand_logits, _ = engine.forward(cand_ids[:-1], prefix_past) if len(cand_ids) > 1 else (None, None)
        lp = float(first_row[cand_ids[0]])
        if cand_logits is not None:
            rest = _log_softmax(cand_logits)
            lp += float(rest[np.arange(len(cand_ids) - 1), cand_ids[1:]].sum())
        if lp - written_lp > scored.delta:
            scored.best, scored.delta = candidate, lp - written_lp
    return scored


def _model_guess(engine, row: np.ndarray, head: str) -> str:
    """The word the model's most likely next token starts (after `head`, e.g. a space)."""
    token = engine.decode([int(row.argmax())])
    if not token.startswith(head):
        return ""
    match = _WORD.match(token[len(head) :])
    return match.group(0) if match else ""


def select_hints(scored: list[Scored], threshold: float) -> list[Hint]:
    """Sites whose best replacement beats the written text by `threshold` nats or more."""
    hints = []
    for s in scored:
        if not s.best or s.delta < threshold:
            continue
        site = s.site
        if site.kind == "operator":
            kind = "operator"
        elif s.best in s.extra and edit_distance(site.text, s.best) > max(1, len(site.text) // 4):
            kind = "name"
        else:
            kind = "typo" if edit_distance(site.text, s.best) <= max(1, len(site.text) // 4) else "name"
        hints.append(Hint(site.start, site.end, site.text, s.best, kind, round(s.delta, 2)))
    return hints


def find_hints(
    engine,
    doc: Document,
    start: int,
    end: int,
    threshold: float,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[Hint]:
    """Hints for the lines spanning text[start:end]; [] when cancelled."""
    sites = candidate_sites(doc, start, end)
    scored = score_sites(engine, doc, sites, cancelled)
    return [] if cancelled() else select_hints(scored, threshold)


@dataclass(frozen=True)
class Calibration:
    """The measured threshold for one model (written by hint-bench)."""

    threshold: float
    precision: float
    recall: float
    note: str = ""

    @property
    def usable(self) -> bool:
        return self.precision >= MIN_PRECISION


def load_calibration(model_path: Path) -> Calibration | None:
    """The model directory's `hints.json`, or None (hints stay off) when absent or unreadable."""
    path = Path(model_path) / CALIBRATION_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Calibration(
            float(raw["threshold"]), float(raw["precision"]), float(raw["recall"]), str(raw.get("note", ""))
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("%s: unreadable hint calibration (%s); model hints stay off", path, err)
        return None


# --- keeping hints in place while the user types --------------------------------------------


def changed_span(old: str, new: str) -> tuple[int, int, int]:
    """(start, old_end, new_end): new[start:new_end] replaced old[start:old_end]."""
    lo, hi = 0, min(len(old), len(new))
    while lo < hi:  # binary search on slice equality runs at C speed even for large files
        mid = (lo + hi + 1) // 2
        if old[:mid] == new[:mid]:
            lo = mid
        else:
            hi = mid - 1
    start = lo
    lo, hi = 0, min(len(old), len(new)) - start
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if old[len(old) - mid :] == new[len(new) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return start, len(old) - lo, len(new) - lo


def shift_hints(hints: list[Hint], start: int, old_end: int, new_end: int) -> list[Hint]:
    """Hints outside the changed span, moved to their new offsets; hints touching it are dropped."""
    delta = new_end - old_end
    kept = []
    for h in hints:
        if h.end < start:
            kept.append(h)
        elif h.start > old_end:
            kept.append(Hint(h.start + delta, h.end + delta, h.word, h.replacement, h.kind, h.score))
    return kept


def merge_region(region: tuple[int, int] | None, start: int, old_end: int, new_end: int) -> tuple[int, int]:
    """The pending (not yet hinted) region after one more change, in the new text's offsets."""
    if region is None:
        return start, new_end
    delta = new_end - old_end
    a = region[0] if region[0] <= start else max(start, region[0] + delta)
    b = region[1] if region[1] <= start else max(new_end, region[1] + delta)
    return min(a, start), max(b, new_end)
