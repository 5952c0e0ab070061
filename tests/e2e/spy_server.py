"""`gpt-lsp --stdio` with the model's input recorded: `python spy_server.py LOG --stdio ...`.

Every token sequence the ONNX graph runs (prompt prefill, each decoded token, each hint score) is
decoded back to text and appended to LOG as one JSON string per line, so a test can prove what
the model was, and was not, shown by the real server.
"""

from __future__ import annotations

import json
import sys

from gpt_lsp.cli import main
from gpt_lsp.inference import engine

LOG = sys.argv.pop(1)
_run_graph = engine.Engine.run_graph


def recording_run_graph(self, feeds, *args, **kwargs):
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(self.decode(feeds["input_ids"][0].tolist())) + "\n")
    return _run_graph(self, feeds, *args, **kwargs)


# The graph run is the one door into the model: every prefill, decode step and probe passes it.
engine.Engine.run_graph = recording_run_graph
raise SystemExit(main())
