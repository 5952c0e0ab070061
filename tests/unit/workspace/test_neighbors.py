"""Neighbouring-tab snippets: the window of a recent file most like the code above the cursor."""

from __future__ import annotations

from gpt_lsp.text.documents import DocumentStore
from gpt_lsp.workspace.neighbors import NeighborWindows, identifiers, jaccard


def test_jaccard_of_identifier_sets():
    assert jaccard(identifiers("a b c"), identifiers("b c d")) == 0.5
    assert jaccard(frozenset(), identifiers("a")) == 0.0


def test_the_most_similar_window_wins_and_unrelated_files_give_nothing():
    store = DocumentStore()
    filler = "".join(f"unrelated_{i} = {i}\n" for i in range(40))
    useful = store.open(
        "file:///w/use.py",
        "python",
        1,
        filler + "session = open_session(user_id, timeout=3)\nsession.commit_order(order)\n",
    )
    other = store.open("file:///w/other.py", "python", 1, "print('hello world')\n")
    windows = NeighborWindows()
    [best] = windows.best("session = open_session(user_id)\nsession.", [other, useful])
    assert best.uri == useful.uri and "commit_order" in best.text and best.similarity >= 0.15
    assert windows.best("completely different words here", [other, useful]) == []
