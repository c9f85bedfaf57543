"""pytest plugin for the irctest run (loaded with ``-p irctest_plugin``).

1. Restores the check of the hook that the runner removes from irctest's
   conftest.py. That hook (``@pytest.hookimpl(wrapper=True)`` around
   ``pytest_runtest_call``) needs pluggy >= 1.1, and Debian's pytest 7.2 ships
   pluggy 1.0. It turns a skip for a missing optional behaviour into an error
   when the controller declares that behaviour. Here the same rule is an
   old-style hook wrapper on ``pytest_runtest_makereport``, which pluggy 1.0
   loads: the report becomes a failure with the hook's own words.

2. Writes every selected test's outcome to the file given by
   ``--chatroom-results``: one line per test, ``nodeid<TAB>outcome<TAB>reason``,
   outcome one of passed, failed, error, skipped, xfailed; a first line
   ``# collected N``. judge.py reads it.
"""

from typing import Dict, Tuple

import pytest

from irctest.runner import OptionalBehaviorNotSupported

# nodeid -> (outcome, reason); filled in by the phases of each test.
_results: Dict[str, Tuple[str, str]] = {}
_collected = []


def pytest_addoption(parser):
    parser.addoption(
        "--chatroom-results",
        default=None,
        help="write each test's outcome to this file (tab-separated)",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Read the exception before pytest's unittest plugin (tryfirst) replaces
    # a unittest.SkipTest, which OptionalBehaviorNotSupported is, with a
    # pytest skip.
    excinfo = call.excinfo
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.skipped or excinfo is None:
        return
    if not isinstance(excinfo.value, OptionalBehaviorNotSupported):
        return
    behavior = excinfo.value.args[0]
    controller = getattr(item.instance, "controller", None)
    if controller is not None and behavior in controller.optional_behaviors:
        report.outcome = "failed"
        report.longrepr = (
            f"Software {controller.software_name} must support behavior "
            f"{behavior} but does not"
        )


def pytest_collection_finish(session):
    _collected[:] = [item.nodeid for item in session.items]


def _reason(report) -> str:
    """One line that says why a test did not pass."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        text = str(longrepr[2])
    else:
        crash = getattr(longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(longrepr)
    text = " ".join(text.split())
    if text.startswith("Skipped: "):
        text = text[len("Skipped: ") :]
    return text[:300]


def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    previous = _results.get(nodeid)
    if hasattr(report, "wasxfail") and report.skipped:
        _results[nodeid] = ("xfailed", " ".join(str(report.wasxfail).split()))
        return
    if report.when == "setup":
        if report.failed:
            _results[nodeid] = ("error", _reason(report))
        elif report.skipped:
            _results[nodeid] = ("skipped", _reason(report))
    elif report.when == "call":
        if report.passed:
            _results[nodeid] = ("passed", "")
        elif report.failed:
            _results[nodeid] = ("failed", _reason(report))
        elif report.skipped:
            _results[nodeid] = ("skipped", _reason(report))
    elif report.when == "teardown" and report.failed:
        # A failure in teardown after a pass is an error of that test.
        if previous is None or previous[0] == "passed":
            _results[nodeid] = ("error", "teardown: " + _reason(report))


def pytest_sessionfinish(session):
    path = session.config.getoption("chatroom_results")
    if not path:
        return
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"# collected {len(_collected)}\n")
        for nodeid in _collected:
            outcome, reason = _results.get(nodeid, ("error", "no outcome reported"))
            out.write(f"{nodeid}\t{outcome}\t{reason}\n")
