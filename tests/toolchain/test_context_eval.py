"""The cross-file measurements on a small repository made in the test: eval-context's cuts and
report, bench-context's timing report, doctest-bench's harness (server/… + model/context_*.py,
model/doctest_bench.py). The tiny shipped model keeps them fast; the figures themselves are
measured with the commands, not asserted here."""

from __future__ import annotations

import random
import re
from pathlib import Path

from gpt_lsp.cli import main
from gpt_lsp.model.context_eval import repository_cuts
from gpt_lsp.model.doctest_bench import doctests_pass, find_tasks

SHAPES = '''def polygon_area(points):
    """Area of a polygon.

    >>> polygon_area([(0, 0), (2, 0), (2, 2), (0, 2)])
    4.0
    """
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2
'''
REPORT = "from shapes import polygon_area\n\n\ndef square(side):\n    corners = [(0, 0), (side, 0), (side, side), (0, side)]\n    return polygon_area(corners)\n"


def make_repo(root: Path) -> Path:
    (root / "shapes.py").write_text(SHAPES)
    (root / "report.py").write_text(REPORT)
    return root


def test_cuts_use_a_name_defined_in_another_file_only(tmp_path):
    _, cuts = repository_cuts(make_repo(tmp_path), random.Random(0))
    assert cuts and {c.name for c in cuts} == {"polygon_area"}
    assert all(c.path.name == "report.py" and c.sample.target.endswith("polygon_area(corners)") for c in cuts)
    _, typing = repository_cuts(tmp_path, random.Random(0), in_name=True)
    assert typing
    for c in typing:  # the cursor sits after 3 or more typed characters of the name
        typed = re.search(r"\w+$", c.sample.text[: c.sample.cut]).group()
        assert len(typed) >= 3 and c.name.startswith(typed) and typed != c.name


def test_eval_context_reports_both_conditions(tmp_path, capsys):
    assert (
        main(["eval-context", "default", str(make_repo(tmp_path)), "--n", "2", "--timeout-ms", "2000"]) == 0
    )
    out = capsys.readouterr().out
    assert "this file" in out and "+ other files (1/4)" in out and "gathering p95 ms" in out
    assert main(["eval-context", "default", str(tmp_path / "missing")]) == 2


def test_bench_context_times_the_gathering(tmp_path, capsys):
    for i in range(30):
        (tmp_path / f"m{i}.py").write_text(
            f"from m{(i + 1) % 30} import f{(i + 1) % 30}\n\n\ndef f{i}(x):\n    return f{(i + 1) % 30}(x)\n"
        )
    assert main(["bench-context", str(tmp_path), "--n", "20", "--tabs", "3"]) == 0
    out = capsys.readouterr().out
    assert "30 files indexed" in out and "gathering: p50" in out


def test_doctest_harness_keeps_functions_whose_doctests_pass_and_fails_a_wrong_body(tmp_path):
    make_repo(tmp_path)
    [task] = find_tasks(tmp_path)
    assert (task.module, task.name) == ("shapes", "polygon_area")
    assert "total = 0.0" not in task.stripped and ">>> polygon_area" in task.stripped
    assert doctests_pass(tmp_path, task)
    (tmp_path / "shapes.py").write_text(
        task.stripped.replace('    """\n\n', '    """\n    return 0.0\n\n', 1)
    )
    assert not doctests_pass(tmp_path, task)
