"""What a newcomer's `make test` says about the tests it skips: one line per optional extra they need, naming the
files and how to install it (pytest's own summary only counts them)."""

from __future__ import annotations

import re

# a skip reason that names `make <target>` says which extra installs what the test needs
EXTRA_RE = re.compile(r"`make ([a-z-]+)`")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    needs: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        found = EXTRA_RE.search(reason)
        if found:
            target = found.group(1)
            needs.setdefault(target, set()).add(report.nodeid.split("::")[0].rsplit("/", 1)[-1])
            counts[target] = counts.get(target, 0) + 1
    for target, files in sorted(needs.items()):
        terminalreporter.write_line(f"{counts[target]} tests skipped ({', '.join(sorted(files))}): they need an "
                                    f"optional extra; `make {target}` installs it")
