"""Judges an irctest run against the list of expected failures.

    python3 judge.py RESULTS EXPECTED [SELECTION_MD]

RESULTS is the file irctest_plugin.py wrote (``nodeid<TAB>outcome<TAB>reason``
lines after ``# collected N``). EXPECTED is expected-failures.txt: one test
node id per line, then whitespace, then the reason (required); a line that
starts with ``#`` is a comment (a ``#`` inside a reason is part of it); blank
lines are ignored. SELECTION_MD, if given, is selection.md:
the node ids it lists (in backquotes, first column of its table) are
compared with the tests that ran, and a difference is reported.

Prints a summary and exits 0 if every test that failed or errored is in
EXPECTED; 1 if one is not; 2 if the inputs are unusable. Expected failures
that now pass are printed, without failing, so that the list can shrink.
"""

import re
import sys
from typing import Dict, List, Tuple

NOT_PASSED_OK = ("skipped", "xfailed")
FAILED = ("failed", "error")


class InputError(Exception):
    pass


def read_results(path: str) -> List[Tuple[str, str, str]]:
    rows = []
    collected = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("# collected "):
                collected = int(line.split()[-1])
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise InputError(f"{path}:{number}: not nodeid<TAB>outcome<TAB>reason")
            rows.append((parts[0], parts[1], parts[2]))
    if collected is None or collected != len(rows):
        raise InputError(f"{path}: {len(rows)} outcomes for {collected} tests collected")
    if not rows:
        raise InputError(f"{path}: no test was selected")
    return rows


def read_expected(path: str) -> Dict[str, str]:
    expected: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2 or not parts[1].strip():
                raise InputError(f"{path}:{number}: {parts[0]} has no reason")
            if parts[0] in expected:
                raise InputError(f"{path}:{number}: {parts[0]} is listed twice")
            expected[parts[0]] = parts[1].strip()
    return expected


def read_selection(path: str) -> List[str]:
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^\|\s*`([^`]+::[^`]+)`\s*\|", line)
            if m:
                ids.append(m.group(1))
    return ids


def judge(results, expected, selection) -> int:
    total = len(results)
    by_outcome: Dict[str, List[Tuple[str, str]]] = {}
    for nodeid, outcome, reason in results:
        by_outcome.setdefault(outcome, []).append((nodeid, reason))
    ran = {nodeid for nodeid, _, _ in results}

    failed = [(n, o, r) for n, o, r in results if o in FAILED]
    unexpected = [(n, o, r) for n, o, r in failed if n not in expected]
    as_expected = [(n, o, r) for n, o, r in failed if n in expected]
    now_passing = [n for n, o, _ in results if o == "passed" and n in expected]
    listed_skipped = [n for n, o, _ in results if o in NOT_PASSED_OK and n in expected]
    stale = [n for n in expected if n not in ran]

    passed = len(by_outcome.get("passed", []))
    skipped = sum(len(by_outcome.get(o, [])) for o in NOT_PASSED_OK)

    if by_outcome.get("skipped") or by_outcome.get("xfailed"):
        print(f"\nSkipped ({skipped}):")
        for outcome in NOT_PASSED_OK:
            for nodeid, reason in by_outcome.get(outcome, []):
                print(f"  {nodeid}  [{outcome}] {reason}")
    if as_expected:
        print(f"\nExpected failures ({len(as_expected)}):")
        for nodeid, outcome, _ in as_expected:
            print(f"  {nodeid}  [{outcome}] listed: {expected[nodeid]}")
    if now_passing:
        print(f"\nListed as expected failures but passed ({len(now_passing)}); "
              "remove them from the list:")
        for nodeid in now_passing:
            print(f"  {nodeid}")
    if listed_skipped:
        print(f"\nListed as expected failures but skipped ({len(listed_skipped)}):")
        for nodeid in listed_skipped:
            print(f"  {nodeid}")
    if stale:
        print(f"\nListed as expected failures but not in this run ({len(stale)}):")
        for nodeid in stale:
            print(f"  {nodeid}")
    if selection:
        missing = [n for n in selection if n not in ran]
        extra = [n for n in sorted(ran) if n not in set(selection)]
        if missing or extra:
            print(f"\nThe selection differs from selection.md: {len(extra)} tests "
                  f"not listed there ran, {len(missing)} listed there did not run:")
            for nodeid in extra:
                print(f"  + {nodeid}")
            for nodeid in missing:
                print(f"  - {nodeid}")
    if unexpected:
        print(f"\nUNEXPECTED FAILURES ({len(unexpected)}):")
        for nodeid, outcome, reason in unexpected:
            print(f"  {nodeid}  [{outcome}] {reason}")

    print(
        f"\nirctest: {passed} passed, {skipped} skipped, {len(failed)} failed "
        f"({len(as_expected)} expected failures, {len(unexpected)} unexpected), "
        f"of {total} selected"
    )
    return 1 if unexpected else 0


def main(argv: List[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        results = read_results(argv[1])
        expected = read_expected(argv[2])
        selection = read_selection(argv[3]) if len(argv) == 4 else []
    except (OSError, ValueError, InputError) as e:
        print(f"judge: {e}", file=sys.stderr)
        return 2
    return judge(results, expected, selection)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
