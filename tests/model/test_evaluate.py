"""`gpt-lsp eval` and its metrics (model/evaluate.py, model/metrics.py)."""

from __future__ import annotations

import argparse
import json

import pytest

from gpt_lsp.model import evaluate, metrics


def test_exact_match_is_whitespace_split_equality():
    assert metrics.exact_match("return  a +b", "return a +b")
    assert not metrics.exact_match("return a+b", "return a + b")


def test_edit_similarity_matches_fuzz_ratio():
    # fuzz.ratio("kitten", "sitting") == 62; ("this is a test", "this is a test!") == 97
    assert round(metrics.edit_similarity("kitten", "sitting")) == 62
    assert round(metrics.edit_similarity("this is a test", "this is a test!")) == 97
    assert metrics.edit_similarity("", "") == 100.0 and metrics.edit_similarity("abc", "") == 0.0


def test_bootstrap_interval_brackets_the_mean():
    values = [0.0] * 70 + [100.0] * 30
    lo, hi = metrics.bootstrap_ci(values, seed=1)
    assert lo < 30 < hi and hi - lo < 25


def test_cuts_are_inside_code_lines_and_of_the_requested_kind():
    text = "def add(first, second):\n    # a comment line here\n    return first + second\n"
    for mid in (False, True):
        for s in evaluate.sample_lines([text], 10, seed=3, mid_identifier=mid):
            assert evaluate._inside_word(s.text, s.cut) == mid
            assert s.target and "\n" not in s.target and "#" not in s.text[s.cut - 1 : s.line_end]


def test_eval_command_reports_every_figure_and_compares(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    import inspect
    import textwrap

    (data / "sample.py").write_text(inspect.getsource(textwrap))
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    out = tmp_path / "report.json"
    args = parser.parse_args(
        [
            "eval",
            str(tiny_model_dir.path),
            str(data),
            "--all-files",
            "--n",
            "8",
            "--lm-tokens",
            "500",
            "--compare",
            str(tiny_model_dir.path),
            "--variant",
            "fp32",
            "--json",
            str(out),
        ]
    )
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "boundary: EM %" in table and "mid_identifier: ES %" in table and "latency p95 ms" in table
    reports = json.loads(out.read_text())
    assert len(reports) == 2 and reports[0]["boundary"]["n"] == 8
    # Same model, same cuts, greedy: the two columns must agree exactly.
    assert reports[0]["boundary"]["em"] == reports[1]["boundary"]["em"]
    assert reports[0]["lm"]["loss_nats_per_token"] == pytest.approx(reports[1]["lm"]["loss_nats_per_token"])


def test_eval_on_an_empty_directory_says_what_to_do(tiny_model_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    args = parser.parse_args(["eval", str(tiny_model_dir.path), str(tmp_path)])
    assert args.func(args) == 1
    assert "gpt-lsp eval: error:" in capsys.readouterr().err


def test_fim_prompts_of_a_model_without_sentinels_are_refused_not_measured_as_prefix(
    tiny_model_dir, tmp_path, capsys
):
    import shutil

    model = tmp_path / "no-fim"
    shutil.copytree(tiny_model_dir.path, model)
    config = json.loads((model / "gpt-lsp.json").read_text())
    (model / "gpt-lsp.json").write_text(json.dumps({**config, "fim": None, "completion_prompt": "prefix"}))
    data = tmp_path / "data"
    data.mkdir()
    (data / "sample.py").write_text("def f(x):\n    return x + 1\n" * 20)
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers())
    args = parser.parse_args(["eval", str(model), str(data), "--all-files", "--prompt", "fim"])
    assert args.func(args) == 1
    assert "no fill-in-the-middle sentinels" in capsys.readouterr().err
