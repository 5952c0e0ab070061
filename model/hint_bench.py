"""`gpt-lsp hint-bench`: measure model hints on synthetic bugs and choose their threshold.

Bugs are injected one at a time into held-out Python files — identifier typos (swap, drop,
double or replace a letter), wrong-variable uses (another name of the same function) and
operator swaps (`<`→`<=`, `+`→`-`, `and`→`or`, ...). For each bug the hint pipeline the server
runs (`gpt_lsp.assist.hints`) examines the lines around it, exactly as it would after an edit there.

    precision = hints on the injected bug / all hints in the examined lines
    recall    = injected bugs that got a hint / injected bugs

reported per bug kind at every threshold. The default threshold is the smallest one whose overall
precision is at least 80% (MIN_PRECISION); `--save` writes it to the model directory's
`hints.json`, which is what turns hints on for that model. Runs on any model directory; no torch.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("typo", "wrong-variable", "operator")
DEFAULT_THRESHOLDS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0)
REGION_LINES = 3  # lines examined on each side of the bug, like a small edit
MAX_FILE_CHARS = 60_000
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class Bug:
    path: str
    kind: str
    start: int  # offsets of the injected text in the mutated file
    end: int
    original: str
    injected: str
    text: str  # the whole mutated file


def held_out_files(limit: int = 40) -> list[Path]:
    """Standard-library files in the corpus's validation split (what `gpt-lsp corpus` holds out)."""
    from gpt_lsp.model.corpus import Document, is_validation, stdlib_files, stdlib_root

    root = stdlib_root()
    files = [
        p
        for p in stdlib_files((".py",))
        if is_validation(Document(p.relative_to(root).as_posix(), "", "stdlib"))
        and 2000 < p.stat().st_size < MAX_FILE_CHARS
    ]
    return files[:limit]


def _identifier_uses(tree, source: bytes) -> list:
    from gpt_lsp.assist.hints import is_use

    out, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "identifier" and is_use(node):
            out.append(node)
        stack.extend(node.children)
    return out


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    op = rng.choice(("swap", "drop", "double", "replace"))
    if op == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    if op == "double":
        return word[: i + 1] + word[i] + word[i + 1 :]
    return word[:i] + rng.choice(_KEYBOARD) + word[i + 1 :]


def inject(path: str, text: str, kind: str, rng: random.Random, parser) -> Bug | None:
    """One bug of `kind` at a random place of `text`, or None when the file has no such place."""
    from gpt_lsp.assist.hints import OPERATOR_SWAPS, vocabulary

    swaps = OPERATOR_SWAPS

    source = text.encode("utf-8")
    if len(source) != len(text):
        return None  # keep byte and str offsets equal: ASCII files only
    tree = parser.parse(source)
    words = vocabulary(text)
    if kind == "operator":
        nodes, stack = [], [tree.root_node]
        while stack:
            node = stack.pop()
            if node.child_count == 0 and node.type in swaps and node.parent and not node.parent.has_error:
                nodes.append(node)
            stack.extend(node.children)
        if not nodes:
            return None
        node = rng.choice(nodes)
        return _bug(path, text, kind, node.start_byte, node.end_byte, swaps[node.type][0])
    uses = [n for n in _identifier_uses(tree, source) if len(n.text) >= 4 and words[n.text.decode()] >= 2]
    rng.shuffle(uses)
    for node in uses[:50]:
        word = node.text.decode()
        if kind == "typo":
            new = _typo(word, rng)
            if new != word and new not in words and new.isidentifier():
                return _bug(path, text, kind, node.start_byte, node.end_byte, new)
            continue
        scope = node.parent
        while scope is not None and scope.type != "function_definition":
            scope = scope.parent
        if scope is None:
            continue
        names = sorted({n.text.decode() for n in _identifier_uses_in(scope)} - {word})
        names = [n for n in names if len(n) >= 2 and words[n] >= 2]
        if names:
            return _bug(path, text, kind, node.start_byte, node.end_byte, rng.choice(names))
    return None


def _identifier_uses_in(scope) -> list:
    out, stack = [], [scope]
    while stack:
        node = stack.pop()
        if node.type == "identifier":
            out.append(node)
        stack.extend(node.children)
    return out


def _bug(path: str, text: str, kind: str, start: int, end: int, new: str) -> Bug:
    mutated = text[:start] + new + text[end:]
    return Bug(path, kind, start, start + len(new), text[start:end], new, mutated)


def measure_hints(engine, bugs: list[Bug], thresholds: tuple[float, ...]) -> dict[str, Any]:
    """Per kind and threshold: true positives, false positives, bugs; plus timing."""
    from gpt_lsp.assist.hints import candidate_sites, score_sites, select_hints
    from gpt_lsp.text.documents import DocumentStore

    store = DocumentStore()
    table = {k: {t: {"tp": 0, "fp": 0, "fixed": 0, "bugs": 0} for t in thresholds} for k in KINDS}
    started = time.perf_counter()
    for number, bug in enumerate(bugs):
        doc = store.open(f"file:///bench/{number}.py", "python", 1, bug.text)
        line = doc.index.line_of(bug.start)
        first = max(0, line - REGION_LINES)
        last = min(doc.line_count - 1, line + REGION_LINES)
        sites = candidate_sites(doc, int(doc.index.starts[first]), doc.index.line_span(last)[1])
        scored = score_sites(engine, doc, sites)
        store.close(doc.uri)
        for t in thresholds:
            cell = table[bug.kind][t]
            cell["bugs"] += 1
            hit = False
            for hint in select_hints(scored, t):
                if hint.start < bug.end and hint.end > bug.start:
                    hit = True
                    cell["fixed"] += hint.replacement == bug.original
                else:
                    cell["fp"] += 1
            cell["tp"] += hit
    seconds = time.perf_counter() - started
    return {
        "table": table,
        "seconds": round(seconds, 2),
        "ms_per_region": round(1000 * seconds / max(1, len(bugs)), 1),
    }


def summarize(table: dict, thresholds: tuple[float, ...]) -> tuple[list[dict], float | None]:
    """Rows of precision/recall per kind and overall; the chosen default threshold (or None)."""
    from gpt_lsp.assist.hints import MIN_PRECISION

    rows, chosen = [], None
    for t in thresholds:
        total = {"tp": 0, "fp": 0, "fixed": 0, "bugs": 0}
        for kind in KINDS:
            cell = table[kind][t]
            rows.append(_row(kind, t, cell))
            for key in total:
                total[key] += cell[key]
        overall = _row("all", t, total)
        rows.append(overall)
        if (
            chosen is None
            and overall["precision"] is not None
            and overall["precision"] >= MIN_PRECISION
            and total["tp"] >= 5
        ):
            chosen = t
    return rows, chosen


def _row(kind: str, t: float, cell: dict) -> dict:
    hints = cell["tp"] + cell["fp"]
    precision = cell["tp"] / hints if hints else None
    recall = cell["tp"] / cell["bugs"] if cell["bugs"] else None
    return {"kind": kind, "threshold": t, "precision": precision, "recall": recall, **cell}


def _pct(x: float | None) -> str:
    return "   n/a" if x is None else f"{100 * x:5.1f}%"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "hint-bench",
        help="measure model hints on injected bugs; choose and save their threshold",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument(
        "bench_model",
        nargs="?",
        metavar="MODEL",
        help="model directory, GGUF file or model name (default: the top-level --model, else the shipped model)",
    )
    p.add_argument(
        "--files", nargs="*", metavar="PATH", help="held-out Python files (default: stdlib validation split)"
    )
    p.add_argument("--per-kind", type=int, default=40, help="bugs injected per kind (default 40)")
    p.add_argument(
        "--thresholds", default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS), help="nats, comma-separated"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="auto", choices=("auto", "int8", "fp32"))
    p.add_argument("--json", metavar="PATH", help="also write the full results as JSON")
    p.add_argument(
        "--save",
        action="store_true",
        help="write the chosen threshold to the model's hints.json (enables hints)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tree_sitter

    from gpt_lsp.assist.hints import CALIBRATION_NAME
    from gpt_lsp.inference.engine import Engine
    from gpt_lsp.inference.model_dir import ModelDirError, default_model_path, load_model_dir
    from gpt_lsp.inference.model_select import resolve_model
    from gpt_lsp.text.languages import language_for

    named = getattr(args, "bench_model", None) or getattr(args, "model", None)
    try:
        path = (
            resolve_model(named, on_stage=lambda line: print(line, file=sys.stderr))
            if named
            else default_model_path()
        )
        engine = Engine(load_model_dir(path), args.variant)
    except ModelDirError as err:
        print(f"gpt-lsp hint-bench: error: {err}", file=sys.stderr)
        return 2
    spec = language_for("python")
    assert spec is not None
    parser = tree_sitter.Parser(spec.language)
    files = [Path(f) for f in args.files] if args.files else held_out_files()
    rng = random.Random(args.seed)
    texts = [(str(f), f.read_text(encoding="utf-8", errors="replace")[:MAX_FILE_CHARS]) for f in files]
    bugs: list[Bug] = []
    for kind in KINDS:
        for attempt in range(args.per_kind * 5):
            if sum(b.kind == kind for b in bugs) >= args.per_kind or not texts:
                break
            name, text = texts[attempt % len(texts)]
            bug = inject(name, text, kind, rng, parser)
            if bug is not None:
                bugs.append(bug)
    thresholds = tuple(float(t) for t in args.thresholds.split(","))
    print(
        f"hint-bench: model {path} ({engine.onnx_path.name}), {len(texts)} files, {len(bugs)} bugs",
        file=sys.stderr,
    )
    result = measure_hints(engine, bugs, thresholds)
    rows, chosen = summarize(result["table"], thresholds)
    print(f"{'kind':16} {'nats':>5} {'precision':>9} {'recall':>7} {'hints':>6} {'fixed':>6} {'bugs':>5}")
    for r in rows:
        hints = r["tp"] + r["fp"]
        print(
            f"{r['kind']:16} {r['threshold']:5g} {_pct(r['precision']):>9} {_pct(r['recall']):>7} {hints:6d} {r['fixed']:6d} {r['bugs']:5d}"
        )
    print(f"{result['ms_per_region']} ms per examined region ({2 * REGION_LINES + 1} lines)")
    if chosen is None:
        print("no threshold reaches 80% precision with this model: hints stay off for it")
    else:
        at = [r for r in rows if r["threshold"] == chosen]
        print(
            f"default threshold {chosen:g} nats: "
            + ", ".join(f"{r['kind']} P {_pct(r['precision'])} R {_pct(r['recall'])}" for r in at)
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": str(path),
                    "bugs": len(bugs),
                    "rows": rows,
                    "chosen": chosen,
                    **{k: v for k, v in result.items() if k != "table"},
                },
                indent=2,
            )
        )
    if args.save and chosen is not None:
        overall = next(r for r in rows if r["threshold"] == chosen and r["kind"] == "all")
        calibration = {
            "threshold": chosen,
            "precision": overall["precision"],
            "recall": overall["recall"],
            "note": f"hint-bench, {len(bugs)} bugs, seed {args.seed}",
        }
        (path / CALIBRATION_NAME).write_text(json.dumps(calibration, indent=2) + "\n")
        print(f"saved {path / CALIBRATION_NAME}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpt-lsp")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["hint-bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Bug", "measure_hints", "inject", "register", "run", "summarize"]
