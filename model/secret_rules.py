"""Regenerate `server/privacy/secret_rules.json`, the secret formats redaction knows, from gitleaks's rules.

gitleaks (https://github.com/gitleaks/gitleaks, MIT License, Copyright (c) 2019 Zachary Rice)
maintains one regex per provider token format in `config/gitleaks.toml`, each with the literal
keywords that must occur for it to run, an optional Shannon-entropy floor and allowlists. This
reads that file as data and writes the rules Python's `re` can run, translated where Go's RE2
syntax differs (`\\z`, POSIX classes such as `[[:alnum:]]`, a flag group such as `(?i)` in the
middle of a pattern), and lists every rule left out with its reason. No gitleaks code is used.

    python -m gpt_lsp.model.secret_rules gitleaks/config/gitleaks.toml --commit SHA
    python -m gpt_lsp.model.secret_rules --false-positives /usr/lib/python3.11   # changed lines
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "server" / "privacy" / "secret_rules.json"
# Rules that would redact ordinary code (measured with --false-positives on the standard library).
EXCLUDED = {
    "generic-api-key": "any `key = <10+ characters>` with entropy 3.5: hundreds of hits on the standard library;"
    " the password/secret assignment rules of redact.py cover the named-variable case",
}


_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "xdigit": "0-9a-fA-F",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r"\s",
    "word": r"\w",
}


def _group_end(pattern: str, start: int) -> int:
    """Index of the `|` or `)` that ends the alternative containing `start` (len(pattern) at the end)."""
    depth, i, in_class = 0, start, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":  # a literal ] first in a class
                i += 1
        elif c == "(":
            depth += 1
        elif c in ")|" and depth == 0:
            return i
        elif c == ")":
            depth -= 1
        i += 1
    return len(pattern)


def to_python(pattern: str) -> str:
    """Go RE2 syntax -> Python `re`: `\\z` is `\\Z`; a flag group `(?i)` inside a pattern becomes a
    scoped `(?i:...)` up to the end of its alternative (Go carries it into later alternatives of the
    same group too; gitleaks repeats the flag in each alternative, so nothing is lost)."""
    pattern = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", pattern)
    for name, members in _POSIX_CLASSES.items():
        pattern = pattern.replace(f"[:{name}:]", members)
    while True:
        match = re.search(r"(?<!\\)\(\?([a-z]+)\)", pattern[1:])
        if match is None:
            return pattern
        start = match.start() + 1
        end = _group_end(pattern, match.end() + 1)
        body = pattern[match.end() + 1 : end]
        pattern = f"{pattern[:start]}(?{match.group(1)}:{body}){pattern[end:]}"


def _compiles(pattern: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            re.compile(pattern)
        except re.error as err:
            return str(err)
    return None


def _allowlists(raw: list[dict]) -> list[dict]:
    """Allowlists that judge the text itself (regexes, stopwords); path- and commit-based ones do not apply."""
    kept = []
    for allow in raw:
        if allow.get("condition") == "AND" and ("paths" in allow or "commits" in allow):
            continue  # its regexes only hold for some file paths or commits
        entry = {"target": allow.get("regexTarget", "secret")}
        if allow.get("regexes"):
            entry["regexes"] = [to_python(r) for r in allow["regexes"]]
        if allow.get("stopwords"):
            entry["stopwords"] = [w.lower() for w in allow["stopwords"]]
        if len(entry) > 1:
            kept.append(entry)
    return kept


def convert(config: dict, commit: str) -> dict:
    rules, excluded = [], {}
    for rule in config["rules"]:
        rid = rule["id"]
        if rid in EXCLUDED:
            excluded[rid] = EXCLUDED[rid]
            continue
        if "regex" not in rule or "path" in rule:
            excluded[rid] = "applies to files by name or extension only"
            continue
        # `[\w.-]{0,50}?` before a rule's keyword only widens the reported match (the secret is a
        # group after it); as a leading lazy repeat it makes `re` retry at every character.
        pattern = to_python(rule["regex"]).replace(r"(?i)[\w.-]{0,50}?(?:", "(?i)(?:", 1)
        error = _compiles(pattern)
        if error:
            excluded[rid] = f"does not translate to Python re: {error}"
            continue
        entry = {"id": rid, "regex": pattern, "keywords": [k.lower() for k in rule.get("keywords", [])]}
        if "secretGroup" in rule:
            entry["secretGroup"] = rule["secretGroup"]
        if "entropy" in rule:
            entry["entropy"] = rule["entropy"]
        allow = _allowlists(rule.get("allowlists", []))
        if allow:
            entry["allowlists"] = allow
        rules.append(entry)
    global_allow = _allowlists([config.get("allowlist", {})])
    return {
        "source": f"https://github.com/gitleaks/gitleaks/blob/{commit}/config/gitleaks.toml",
        "license": "MIT License, Copyright (c) 2019 Zachary Rice (gitleaks); the rules are used as data",
        "generated_by": "python -m gpt_lsp.model.secret_rules",
        "global_allowlists": global_allow,
        "rules": rules,
        "excluded": excluded,
    }


def false_positives(root: Path, show: int = 40) -> int:
    """Redact every .py file under `root` (ordinary code: any change is a false positive); print the count."""
    import time
    from collections import Counter

    from gpt_lsp.privacy.redact import find_secrets

    files = lines = changed = 0
    kinds: Counter[str] = Counter()
    examples: list[str] = []
    start = time.perf_counter()
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts:  # installed packages are not the standard library
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        files += 1
        lines += text.count("\n") + 1
        hit_lines: set[int] = set()
        for secret in find_secrets(text):
            kinds[secret.kind] += 1
            first = text.count("\n", 0, secret.start)
            hit_lines.update(range(first, first + text.count("\n", secret.start, secret.end) + 1))
            if len(examples) < show:
                line_start = text.rfind("\n", 0, secret.start) + 1
                line = text[line_start : text.find("\n", secret.start)].strip()
                examples.append(f"{path.relative_to(root)}:{first + 1}: [{secret.kind}] {line[:110]}")
        changed += len(hit_lines)
    seconds = time.perf_counter() - start
    print("\n".join(examples))
    print(f"{files} files, {lines} lines, {seconds:.1f} s: {changed} lines changed ({changed / lines:.5%})")
    print("by kind:", dict(kinds.most_common()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("toml", type=Path, nargs="?", help="gitleaks's config/gitleaks.toml")
    parser.add_argument("--commit", help="the gitleaks commit the file comes from")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--false-positives",
        type=Path,
        metavar="DIR",
        help="instead: redact every .py file under DIR (e.g. the standard library) and count changed lines",
    )
    args = parser.parse_args(argv)
    if args.false_positives:
        return false_positives(args.false_positives)
    if not (args.toml and args.commit):
        parser.error("the gitleaks.toml path and --commit are required")
    import tomllib

    data = convert(tomllib.loads(args.toml.read_text(encoding="utf-8")), args.commit)
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    sys.stderr.write(f"{args.out}: {len(data['rules'])} rules, {len(data['excluded'])} left out\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
