"""`gpt-lsp eval-context`: does context from other files help? Measured on whole repositories.

A repository-level set in the manner of CrossCodeEval and RepoBench: cuts in a repository's files
whose expected completion uses a name defined in another file of the same repository (and not in
the file itself), so the model can only know the name from elsewhere. Each cut goes through the
serving pipeline twice on the same model: with the file alone, and with context from other files
(the workspace index of the repository, and as "recent tabs" the local modules the file imports,
then files of its folder, up to three). Reported: line EM/ES with and without (for each share of
the prompt the other files may take), the same on the cuts whose name appears nowhere before the
cursor, how often context was found, and the cost of gathering it.

Use repositories that are in no training data (for example sdists from the package registry).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.completion.prompt import RELATED_SHARE
from gpt_lsp.completion.related import RelatedFiles
from gpt_lsp.inference.model_dir import ModelDirError
from gpt_lsp.model import metrics
from gpt_lsp.model.evaluate import LineSample, add_decode_arguments, aligned, open_engine, say
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore
from gpt_lsp.workspace.index import FileOutline, WorkspaceIndex
from gpt_lsp.workspace.neighbors import IDENTIFIER

_TYPED = re.compile(r"\w+$")
_SKIP_LINE = re.compile(r"^\s*(#|$|\"\"\"|'''|@|import |from \S+ import )")
MIN_NAME_CHARS = 4  # shorter names (`id`, `run`) are defined everywhere and say little
MAX_RECENT = 3
MIN_TYPED = 3  # characters of the name typed before an in-name cut


@dataclass(frozen=True)
class RepoCut:
    sample: LineSample
    path: Path  # the file, for its URI (relative imports resolve from it)
    name: str  # the name from another file that the completion has to produce


def foreign_names(index: WorkspaceIndex, entry: FileOutline) -> set[str]:
    """Names defined in other files of the repository and not in this one."""
    own = {d.name for d in entry.definitions}
    return {
        name
        for name in index.defined_names()
        if name not in own
        and len(name) >= MIN_NAME_CHARS
        and any(f.path != entry.path for f, _ in index.definitions_of(name))
    }


def repository_cuts(
    repo: Path, rng: random.Random, in_name: bool = False
) -> tuple[WorkspaceIndex, list[RepoCut]]:
    """Index `repo` and list one cut per line that uses a name from another file: before the name,
    or `in_name` (after its first MIN_TYPED characters, as while typing it)."""
    index = WorkspaceIndex([repo])
    index.build()
    cuts: list[RepoCut] = []
    for entry in index.files():
        if entry.language != "python":
            continue
        text = entry.path.read_text(encoding="utf-8", errors="replace")
        names = foreign_names(index, entry)
        start = 0
        for line in text.split("\n"):
            end = start + len(line)
            body = start + len(line) - len(line.lstrip())
            if not _SKIP_LINE.match(line) and len(line.strip()) >= 8:
                uses = [m for m in IDENTIFIER.finditer(line) if m.group() in names]
                if uses:
                    use = rng.choice(uses)
                    name_start = start + use.start()
                    if in_name:  # the user has typed the first characters of the name
                        choices = list(range(name_start + MIN_TYPED, start + use.end()))
                    else:  # a cut at a token boundary between the line's start and the name
                        choices = [c for c in range(body + 1, name_start + 1) if not _inside_word(text, c)]
                    if choices:
                        sample = LineSample(text, rng.choice(choices), end, in_name)
                        cuts.append(RepoCut(sample, entry.path, use.group()))
            start = end + 1
    return index, cuts


def _inside_word(text: str, offset: int) -> bool:
    return bool(re.match(r"\w", text[offset - 1]) and re.match(r"\w", text[offset]))


def recent_tabs(
    index: WorkspaceIndex, related: RelatedFiles, store: DocumentStore, cut: RepoCut
) -> list[Path]:
    """The files treated as recently open: local modules the file imports, then its folder's files."""
    doc = store.open(cut.path.as_uri(), "python", 1, cut.sample.text)
    imported = [f.path for f, _ in related.imported_modules(doc)]
    folder = sorted(p for p in cut.path.parent.glob("*.py") if p != cut.path and index.file(p))
    tabs: list[Path] = []
    for path in imported + folder:
        if path not in tabs and path != cut.path:
            tabs.append(path)
    store.close(doc.uri)
    return tabs[:MAX_RECENT]


def run_cuts(
    pipeline: Pipeline, index: WorkspaceIndex, cuts: list[RepoCut], with_context: bool
) -> list[dict[str, Any]]:
    results = []
    for cut in cuts:
        s = cut.sample
        store = DocumentStore()
        related = RelatedFiles(index)
        if with_context:
            for path in reversed(recent_tabs(index, related, store, cut)):
                related.touch(
                    store.open(path.as_uri(), "python", 1, path.read_text(encoding="utf-8", errors="replace"))
                )
        pipeline.related = related if with_context else None
        doc = store.open(cut.path.as_uri(), "python", 1, s.text[: s.cut] + s.text[s.line_end :])
        if with_context:
            related.gather(doc, s.cut)  # the tabs were open before this keystroke: their windows are known
        started = time.perf_counter()
        outcome = pipeline.complete(doc, doc.position_at(s.cut))
        ms = (time.perf_counter() - started) * 1000
        prediction = outcome.suggestions[0].text.split("\n", 1)[0] if outcome.suggestions else ""
        results.append(
            {
                "file": str(cut.path),
                "name": cut.name,
                "unseen": cut.name not in s.text[: s.cut],
                # What the line reads after accepting: the typed part of a word, then the completion.
                "typed": typed.group() if (typed := _TYPED.search(s.text[: s.cut])) else "",
                "target": s.target,
                "prediction": prediction,
                "ms": ms,
                "related_ms": outcome.timings.get("related", 0.0),
                "related": [f"{p.source}: {p.path}" for p in outcome.related],
                "reason": outcome.reason,
            }
        )
        pipeline.typing.forget(doc.uri)
    pipeline.related = None
    return results


def summarize(results: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    em = [100.0 * metrics.exact_match(r["prediction"], r["target"]) for r in results]
    es = [metrics.edit_similarity(r["prediction"], r["target"]) for r in results]
    unseen = [i for i, r in enumerate(results) if r["unseen"]]
    named = [100.0 * (r["name"] in r["typed"] + r["prediction"]) for r in results]
    related_ms = [r["related_ms"] for r in results]
    return {
        "n": len(results),
        "em": sum(em) / max(len(em), 1),
        "em_ci": metrics.bootstrap_ci(em, seed),
        "es": sum(es) / max(len(es), 1),
        "es_ci": metrics.bootstrap_ci(es, seed),
        "name_used": sum(named) / max(len(named), 1),
        # Cuts whose name appears nowhere before the cursor: only another file can tell it.
        "unseen_n": len(unseen),
        "unseen_em": sum(em[i] for i in unseen) / max(len(unseen), 1),
        "unseen_es": sum(es[i] for i in unseen) / max(len(unseen), 1),
        "unseen_name_used": sum(named[i] for i in unseen) / max(len(unseen), 1),
        "empty": sum(1 for r in results if not r["prediction"]),
        "with_related": sum(1 for r in results if r["related"]),
        "related_p50_ms": metrics.percentile(related_ms, 0.5),
        "related_p95_ms": metrics.percentile(related_ms, 0.95),
        "latency_p50_ms": metrics.percentile([r["ms"] for r in results], 0.5),
    }


def evaluate(model: str, repos: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    model_dir, engine = open_engine(model, args.variant, args.threads)
    pipeline = Pipeline(
        engine, GenerationSettings(max_tokens_line=args.max_tokens, timeout_ms=args.timeout_ms)
    )
    rng = random.Random(args.seed)
    report: dict[str, Any] = {"model": str(model_dir), "variant": engine.onnx_path.name, "repos": {}}
    conditions = ["without"] + [f"share {share}" for share in args.shares]
    everything: dict[str, list[dict[str, Any]]] = {c: [] for c in conditions}
    per_repo = max(1, args.n // len(repos))
    for repo in repos:
        index, cuts = repository_cuts(repo, rng, args.in_name)
        rng.shuffle(cuts)
        cuts = cuts[:per_repo]
        say(f"{model_dir.name}: {repo.name}: {len(index)} files indexed, {len(cuts)} cuts")
        everything["without"] += run_cuts(pipeline, index, cuts, False)
        for share in args.shares:
            pipeline.related_share = share
            everything[f"share {share}"] += run_cuts(pipeline, index, cuts, True)
        report["repos"][repo.name] = {"files": len(index), "cuts": len(cuts)}
    report["conditions"] = conditions
    for condition, results in everything.items():
        report[condition] = summarize(results, args.seed)
        report[condition + " results"] = results
    return report


ROWS = [
    ("n", "n", "{}"),
    ("EM %", "em", "{:.1f}"),
    ("EM 95% CI", "em_ci", "{0[0]:.1f}-{0[1]:.1f}"),
    ("ES %", "es", "{:.1f}"),
    ("ES 95% CI", "es_ci", "{0[0]:.1f}-{0[1]:.1f}"),
    ("uses the name %", "name_used", "{:.1f}"),
    ("name unseen in file: n", "unseen_n", "{}"),
    ("  EM %", "unseen_em", "{:.1f}"),
    ("  ES %", "unseen_es", "{:.1f}"),
    ("  uses the name %", "unseen_name_used", "{:.1f}"),
    ("empty", "empty", "{}"),
    ("cuts given context", "with_related", "{}"),
    ("gathering p50 ms", "related_p50_ms", "{:.2f}"),
    ("gathering p95 ms", "related_p95_ms", "{:.2f}"),
    ("latency p50 ms", "latency_p50_ms", "{:.0f}"),
]


def format_table(reports: list[dict[str, Any]]) -> str:
    headers = ["metric"]
    for r in reports:
        headers += [
            f"{Path(r['model']).name}: "
            + ("this file" if c == "without" else f"+ other files (1/{c.split()[1]})")
            for c in r["conditions"]
        ]
    lines = [headers]
    for label, key, fmt in ROWS:
        lines.append([label] + [fmt.format(r[c][key]) for r in reports for c in r["conditions"]])
    return aligned(lines)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval-context",
        help="measure completions with and without context from other files, on whole repositories",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model directory, GGUF file or model name")
    p.add_argument(
        "repos", type=Path, nargs="+", metavar="REPO", help="repository folders (held out from training)"
    )
    p.add_argument("--compare", metavar="OTHER_MODEL", help="a second model on the same cuts")
    p.add_argument("--n", type=int, default=200, help="cuts in all, spread evenly over the repositories")
    add_decode_arguments(p, max_tokens=48, timeout_ms=60000)
    p.add_argument(
        "--shares",
        type=int,
        nargs="+",
        default=[RELATED_SHARE],
        metavar="K",
        help=f"measure with other files taking at most 1/K of a full prompt, for each K (default {RELATED_SHARE})",
    )
    p.add_argument(
        "--in-name",
        action="store_true",
        help="cut after the first characters of the name (while it is being typed) instead of before it",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the full report here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    missing = [str(r) for r in args.repos if not r.is_dir()]
    if missing:
        say(f"gpt-lsp eval-context: error: not a folder: {', '.join(missing)}")
        return 2
    try:
        reports = [evaluate(args.model, args.repos, args)]
        if args.compare:
            reports.append(evaluate(args.compare, args.repos, args))
    except ModelDirError as err:
        say(f"gpt-lsp eval-context: error: {err}")
        return 1
    print(format_table(reports))
    if args.json:
        args.json.write_text(json.dumps(reports if args.compare else reports[0], indent=2) + "\n")
    return 0
