"""`gpt-lsp soak` with small counts: it runs the real server to the end and prints sane figures."""

from __future__ import annotations

import re
import subprocess
import sys


def test_soak_smoke(model_path):
    command = [sys.executable, "-m", "gpt_lsp", "soak", "--model", str(model_path)]
    counts = ["--notifications", "300", "--completions", "20", "--keystrokes", "5", "--documents", "40"]
    proc = subprocess.run(command + counts, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-2000:]

    def figure(label: str) -> float:
        match = re.search(rf"^{re.escape(label)}: (-?[\d.]+)", out, re.MULTILINE)
        assert match, f"{label!r} missing from:\n{out}"
        return float(match.group(1))

    assert "model: ready" in out
    assert figure("messages sent") >= 300 + 20 + 40 * 2 + 4 * 5
    assert figure("error replies") == figure("error popups") == figure("server deaths") == 0
    assert figure("largest message answered") >= 5_000_000
    rss = re.findall(r"RSS over \d+ [\w ]+: ([\d.]+) -> ([\d.]+) MB", out)
    assert len(rss) == 2 and all(50 < float(v) < 4000 for pair in rss for v in pair), out
    typing = re.findall(r"into (.+): p50 ([\d.]+) ms, p95 ([\d.]+) ms", out)
    assert [name for name, _, _ in typing] == ["1 MB line", "50k-deep nesting", "mixed CR/LF", "5 MB file"]
    assert all(0 < float(p50) <= float(p95) < 60_000 for _, p50, p95 in typing), out
