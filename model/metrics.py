"""Completion metrics as the literature reports them, so figures are comparable (CodeXGLUE line-level completion: EM, edit similarity).

EM is CodeXGLUE's whitespace-split equality; ES is the Levenshtein ratio of fuzzywuzzy's
`fuzz.ratio` (what CodeXGLUE's line-level scorer uses), in percent; intervals are percentile
bootstrap over samples with a fixed seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def exact_match(prediction: str, target: str) -> bool:
    return prediction.split() == target.split()


def edit_similarity(prediction: str, target: str) -> float:
    """fuzz.ratio: 100 * (1 - distance / total length), on the stripped strings."""
    p, t = prediction.strip(), target.strip()
    total = len(p) + len(t)
    if total == 0:
        return 100.0
    # fuzz.ratio counts a substitution as two edits (difflib-style), i.e. insert+delete distance.
    return 100.0 * (total - _indel_distance(p, t)) / total


def _indel_distance(a: str, b: str) -> int:
    """Insertions + deletions only: len(a) + len(b) - 2 * LCS(a, b)."""
    if not a or not b:
        return len(a) + len(b)
    previous = [0] * (len(b) + 1)
    for ca in a:
        current = [0]
        for j, cb in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if ca == cb else max(previous[j], current[j - 1]))
        previous = current
    return len(a) + len(b) - 2 * previous[-1]


def bootstrap_ci(
    values: Sequence[float], seed: int = 0, rounds: int = 1000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    if not values:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    lo = means[int((1 - level) / 2 * rounds)]
    hi = means[min(rounds - 1, int((1 + level) / 2 * rounds))]
    return lo, hi


def bleu(predictions: list[str], targets: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [targets], tokenize="13a").score)


def rouge_l(predictions: list[str], targets: list[str]) -> float:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    if not predictions:
        return math.nan
    total = sum(scorer.score(t, p)["rougeL"].fmeasure for p, t in zip(predictions, targets, strict=True))
    return 100.0 * total / len(predictions)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
