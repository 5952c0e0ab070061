"""`gpt-lsp --stdio` with the model's input recorded: `python spy_server.py LOG --stdio ...`.

Every token sequence the engine runs (prompt prefill, each decoded token, each hint score) is
decoded back to text and appended to LOG as one JSON string per line, so a test can prove what
the model was, and was not, shown by the real server.
"""

from __future__ import annotations

import json
import sys

from gpt_lsp import engine
from gpt_lsp.cli import main

LOG = sys.argv.pop(1)
_forward = engine.Engine.forward


def recording_forward(self, ids, past):
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(self.decode(ids)) + "\n")
    return _forward(self, ids, past)


engine.Engine.forward = recording_forward
raise SystemExit(main())
