"""`gpt-lsp doctest-bench`: pass@1 of "implement function" on functions whose docstrings hold doctests.

For each top-level function of SOURCE (a package folder on its import root, e.g. an unpacked
sdist) whose docstring has `>>>` examples and whose doctests pass as shipped, the body after the
docstring is removed, the editor's implement-function action runs through the serving pipeline
(the same plan, prompt and parse check as the code action), the result is written into a copy of
the package, and the function's doctests run in a fresh interpreter. pass@1 is the share of
functions whose doctests all pass with the greedy candidate (HumanEval's measure, with doctests as
the tests).

Use sources in no training data. Doctests run the package's own code: only run this on code you trust.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_lsp.assist.snippets import SnippetKind, generate_snippet, plan_snippet
from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.inference.engine import DecodeLimits
from gpt_lsp.inference.model_dir import ModelDirError
from gpt_lsp.model.evaluate import add_decode_arguments, open_engine, say
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore
from gpt_lsp.text.languages import language_for
from gpt_lsp.text.syntax_tree import parser_for

DOCTEST_TIMEOUT_S = 30
_RUN_DOCTESTS = """
import doctest, importlib, sys
module = importlib.import_module(sys.argv[1])
function = getattr(module, sys.argv[2])
tests = doctest.DocTestFinder(recurse=False).find(function, sys.argv[2], globs=vars(module).copy())
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
for test in tests:
    runner.run(test, out=lambda s: None)
sys.exit(0 if tests and runner.tries and not runner.failures else 1)
"""


@dataclass(frozen=True)
class Task:
    file: Path  # relative to the import root
    module: str
    name: str
    stripped: str  # the file with this function's body after the docstring removed
    cursor: int  # an offset inside the stripped function


def find_tasks(root: Path) -> list[Task]:
    """Top-level functions with doctests in their docstring and a body after it."""
    spec = language_for("python")
    assert spec is not None
    tasks = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if any(part.startswith((".", "test")) for part in relative.parts):
            continue
        source = path.read_bytes()
        tree = parser_for(spec.language).parse(source)
        for node in tree.root_node.children:
            if node.type == "decorated_definition":
                continue  # decorators may change what the doctest calls
            if node.type != "function_definition":
                continue
            body = node.child_by_field_name("body")
            if body is None or len(body.named_children) < 2:
                continue
            first = body.named_children[0]
            docstring = source[first.start_byte : first.end_byte].decode("utf-8", "replace")
            if first.type != "expression_statement" or ">>>" not in docstring:
                continue
            stripped = source[: first.end_byte] + b"\n" + source[body.end_byte :]
            text = stripped.decode("utf-8", "replace")
            name_node = node.child_by_field_name("name")
            assert name_node is not None
            module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            name = source[name_node.start_byte : name_node.end_byte].decode()
            tasks.append(Task(relative, module, name, text, len(source[: first.start_byte].decode())))
    return tasks


def doctests_pass(import_root: Path, task: Task) -> bool:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RUN_DOCTESTS, task.module, task.name],
            cwd=import_root,
            env={"PYTHONPATH": str(import_root), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=DOCTEST_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def implement(pipeline: Pipeline, task: Task, max_tokens: int, timeout_ms: int) -> tuple[str | None, str]:
    """The file with the function implemented by the model, or None; and the action's message."""
    doc = DocumentStore().open(f"file:///bench/{task.file.as_posix()}", "python", 1, task.stripped)
    plan = plan_snippet(doc, SnippetKind.IMPLEMENT_FUNCTION, doc.position_at(task.cursor))
    if plan is None:
        return None, "implement-function is not offered here"
    # The server's cap for snippets: the block limit, at most half the model's context.
    cap = min(max_tokens, pipeline.engine.context_length // 2)
    outcome = generate_snippet(pipeline, doc, plan, DecodeLimits(cap, timeout_ms, 0.0))
    if not outcome.edits:
        return None, outcome.message
    edit = outcome.edits[0]
    return doc.text[: edit.start] + edit.text + doc.text[edit.end :], outcome.message


def evaluate(model: str, tasks: list[Task], root: Path, args: argparse.Namespace) -> dict[str, Any]:
    model_dir, engine = open_engine(model, args.variant, args.threads)
    pipeline = Pipeline(engine, GenerationSettings())
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "src"
        shutil.copytree(root, copy)
        for task in tasks:
            started = time.perf_counter()
            implemented, message = implement(pipeline, task, args.max_tokens, args.timeout_ms)
            ms = (time.perf_counter() - started) * 1000
            target = copy / task.file
            original = target.read_text(encoding="utf-8")
            passed = False
            if implemented is not None:
                target.write_text(implemented, encoding="utf-8")
                passed = doctests_pass(copy, task)
                target.write_text(original, encoding="utf-8")
            results.append(
                {"function": f"{task.module}.{task.name}", "passed": passed, "message": message, "ms": ms}
            )
            say(f"{model_dir.name}: {task.module}.{task.name}: {'pass' if passed else 'fail'} ({message})")
    passed_count = sum(1 for r in results if r["passed"])
    return {
        "model": str(model_dir),
        "variant": engine.onnx_path.name,
        "n": len(results),
        "passed": passed_count,
        "pass_at_1": 100.0 * passed_count / max(len(results), 1),
        "no_candidate": sum(1 for r in results if "nothing" in r["message"] or "not offered" in r["message"]),
        "results": results,
    }


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "doctest-bench",
        help="pass@1 of implement-function, checked by the functions' own doctests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model directory, GGUF file or model name")
    p.add_argument(
        "source", type=Path, metavar="SOURCE", help="import root of a package (e.g. an unpacked sdist)"
    )
    p.add_argument("--compare", metavar="OTHER_MODEL", help="a second model on the same functions")
    p.add_argument("--n", type=int, default=30, help="functions to try (a fixed random sample; default 30)")
    add_decode_arguments(
        p,
        max_tokens=GenerationSettings().max_tokens_block,
        timeout_ms=120000,
        max_tokens_help="token cap per function body (default: the server's block cap, at most half the context)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the full report here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.source.is_dir():
        say(f"gpt-lsp doctest-bench: error: not a folder: {args.source}")
        return 2
    tasks = [t for t in find_tasks(args.source) if doctests_pass(args.source, t)]
    random.Random(args.seed).shuffle(tasks)
    tasks = tasks[: args.n]
    if not tasks:
        say(f"gpt-lsp doctest-bench: error: no function in {args.source} has doctests that pass as shipped")
        return 2
    say(f"{len(tasks)} functions with passing doctests")
    try:
        reports = [evaluate(args.model, tasks, args.source, args)]
        if args.compare:
            reports.append(evaluate(args.compare, tasks, args.source, args))
    except ModelDirError as err:
        say(f"gpt-lsp doctest-bench: error: {err}")
        return 1
    for r in reports:
        print(
            f"{Path(r['model']).name} ({r['variant']}): pass@1 {r['pass_at_1']:.1f}% "
            f"({r['passed']}/{r['n']}; no candidate {r['no_candidate']})"
        )
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    return 0
