"""The `gpt-lsp complete` subcommand: arguments, and the report as text for a person (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..inference.model_select import add_model_option
from ..settings import Settings

# Shown instead of a token that is not printable text, so the table keeps one row per token.
_VISIBLE = str.maketrans({"\n": "\\n", "\t": "\\t", "\r": "\\r"})


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "complete",
        help="print the completion an editor would get at FILE:LINE:COL",
        description="Run the serving pipeline on a file at a position (LINE and COL start at 1; COL counts "
        "characters; FILE:LINE completes at the end of the line). Exit status 1 when there is no completion.",
    )
    parser.add_argument("target", metavar="FILE:LINE:COL")
    add_model_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show the prompt, what was cut or redacted, and each token's odds",
    )
    parser.add_argument(
        "--other-files",
        action=argparse.BooleanOptionalAction,
        default=Settings().context.other_files,
        help="index the file's project and give the model context from its other files, as the "
        "server does with context.otherFiles (default: the server's default, off)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.model_dir import ModelDirError
    from .complete import complete_file, parse_target

    try:
        path, line, col = parse_target(args.target)
        report = complete_file(path, line, col, args.model, args.explain, args.other_files)
    except (ValueError, OSError, ModelDirError) as err:
        print(f"gpt-lsp complete: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else render(report))
    return 0 if report["completions"] else 1


def _shown(token: dict[str, Any]) -> str:
    """A token as a Python literal (spaces and line breaks visible), or a sentinel's name in ⟦ ⟧."""
    return f"⟦{token['text']}⟧" if token["sentinel"] else repr(token["text"])


def render(report: dict[str, Any]) -> str:
    timings = " · ".join(f"{stage} {ms:.1f}" for stage, ms in report["timings_ms"].items())
    out = [
        f"{report['file']}:{report['line']}:{report['col']}  {report['language'] or 'unknown language'}"
        f"  context: {report['context_kind']} ({report['context_reason']})",
        f"model: {report['model']} ({report['onnx']}, loaded in {report['model_load_ms']:.0f} ms)",
        f"latency: {report['latency_ms']:.1f} ms ({timings})  stop: {report['stop_reason'] or '-'}"
        f"  result: {report['reason']}",
    ]
    if report["related"]:
        shown = ", ".join(f"{p['source']} from {p['path']}" for p in report["related"])
        out.append(f"context from other files: {shown}")
    for c in report["completions"]:
        start, end = c["start"], c["end"]
        where = f"{start['line']}:{start['col']}"
        if end != start:
            where += f" replacing up to {end['line']}:{end['col']}"
        out += [f"--- completion at {where} ---", c["text"], "---"]
    if not report["completions"]:
        out.append(f"(no completion: {report['reason']})")
    if "explain" in report:
        out += _render_explain(report["explain"])
    return "\n".join(out)


def _render_explain(ex: dict[str, Any]) -> list[str]:
    cut = ex["cut"]
    prompt = "".join(f"⟦{t['text']}⟧" if t["sentinel"] else t["text"] for t in ex["prompt_tokens"])
    out = [
        "",
        f"=== prompt: {len(ex['prompt_tokens'])} tokens ({ex['prompt_format']}) of a {ex['budget_tokens']}-token budget"
        f" (context {ex['context_length']} - {ex['max_new_tokens']} for the completion); sentinels in ⟦ ⟧ ===",
        prompt,
        "=== end of prompt ===",
        f"prefix: {cut['document_chars_before_cursor']} chars before the cursor, {cut['prefix_chars_in_window']} in the"
        f" context window, {cut['prefix_chars_after_redaction']} after redaction, {cut['prefix_chars_in_prompt']} in the prompt ({cut['prefix_chars_cut_for_budget']} cut for"
        " the token budget)",
        f"suffix: {cut['suffix_chars_in_window']} chars in the window, {cut['suffix_chars_in_prompt']} in the prompt",
        f"extra context (imports, enclosing signatures): {cut['extra_context_chars']} chars",
        (
            f"token healing: {cut['healed']!r} (removed from the prompt; the completion must start with it)"
            if cut["healed"]
            else "token healing: none"
        ),
        "redacted: " + (", ".join(f"{n} {kind}" for kind, n in sorted(ex["redacted"].items())) or "nothing"),
        "",
        f"=== decoded tokens ({len(ex['decoded'])}): probability, then the top alternatives ===",
    ]
    for n, step in enumerate(ex["decoded"], 1):
        alternatives = "  ".join(f"{_shown(a)} {a['prob']:.3f}" for a in step["alternatives"])
        kept = "" if step["in_completion"] else " cut"
        out.append(f"{n:3d}  {_shown(step):<18} {step['prob']:.3f}{kept:>4}  | {alternatives}")
    out.append("(cut: decoded, then dropped by a stop rule or postprocessing)")
    return out
