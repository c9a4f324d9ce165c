"""pytest plugin: every rule of an `.egg` file and every step of a `*.chain.toml` file is a test item.

    pytest rules/                                  # the rule library, one item per rule
    pytest proofs/attention.chain.toml             # one item per chain step
    pytest --verify-rules rules proofs --junitxml=proof-gate.xml

Items are checked through the gate of `verify check` (`gate.Gate`, prepared once for all items of the session):
the same preflight of the bound, the same vacuity guard, the same verdicts for the same files.

An item passes when its claim is CERTIFIED. A REFUTED claim fails with the formatted verdict and counterexample
(`verdict.format_result`, the same text as `verify check`) as the failure message; UNKNOWN and ERROR fail too.
A file whose first lines say `; expect: refuted` (the test corpus) expects the refutation: its items are strict
xfails, so a refuted rule is reported as xfailed and a certified one fails the run.

When are rule files collected? The repository's own test suite (`pytest` with `testpaths = ["tests"]`) keeps
.egg files under tests/ that are *meant* to be refuted or malformed, so the plugin never collects rule files
just because pytest walks a directory. A rule file is collected only
- when it is named on the command line itself (`pytest rules/softmax.egg`), or
- when it lies below a directory named on the command line that is not inside the configured `testpaths`
  (`pytest rules/`, `pytest proofs/`), or
- with `--verify-rules`, below any path named on the command line (`pytest --verify-rules tests/corpus/true`).
`pytest`, `pytest tests` and `pytest tests/corpus` collect no rule files. `--verify-rules` needs paths.

Options: `--verify-bound`, `--verify-timeout`, `--verify-no-sympy`, `--verify-cache rw|ro|off` (default rw, or
$VERIFY_CACHE, as `verify check`: the authenticated cache, so a re-run takes seconds) and `--verify-cache-dir`
(default .verify-cache) mean what the same options of `verify check` mean. Files are named relative to the
directory pytest was started in, as `verify check` names them. Each item
records verdict, bound, method and seconds as JUnit XML properties. Disable the plugin with `-p no:verify_rules`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .errors import VerifyError
from .gate import Gate
from .options import CacheMode, Options
from .reader import read_file
from .sizes import Bound
from .targets import claims_of, collect
from .verdict import Verdict, format_result


def pytest_addoption(parser):
    group = parser.getgroup("verify", "tensor rewrite rules (verify)")
    group.addoption("--verify-rules", action="store_true",
                    help="collect .egg rule files and *.chain.toml chains below the paths given (one item per "
                         "rule or step), also inside testpaths")
    group.addoption("--verify-bound", default=None, metavar="SPEC",
                    help="sizes to check rules at, e.g. M1=8,M0=4 (as verify check --bound)")
    group.addoption("--verify-timeout", type=float, default=60.0, metavar="S", help="seconds per rule (default 60)")
    group.addoption("--verify-no-sympy", action="store_true", help="skip SymPy's second opinion")
    group.addoption("--verify-cache", choices=("rw", "ro", "off"), default=os.environ.get("VERIFY_CACHE", "rw"),
                    help="result cache mode for rule items: rw (default, the authenticated cache of verify check), "
                         "ro, off; env VERIFY_CACHE")
    group.addoption("--verify-cache-dir", default=os.environ.get("VERIFY_CACHE_DIR", ".verify-cache"), metavar="DIR",
                    help="result cache directory (default .verify-cache)")


def pytest_configure(config):
    if config.getoption("verify_rules") and config.args_source is not pytest.Config.ArgsSource.ARGS:
        raise pytest.UsageError("--verify-rules needs the rule paths, e.g. pytest --verify-rules rules proofs")


def _is_rule_file(path: Path) -> bool:
    return (path.suffix == ".egg" or path.name.endswith(".chain.toml")) and "certificates" not in path.parts


def _below(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _explicit(config) -> list[Path]:
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return []
    base = Path(config.invocation_params.dir)
    return [(base / arg.split("::")[0]).resolve() for arg in config.args]


def wanted(path: Path, config) -> bool:
    """Is this rule file asked for? (see the module docstring)"""
    path = path.resolve()
    roots = _explicit(config)
    if config.getoption("verify_rules"):
        return any(_below(path, root) for root in roots)
    testpaths = [(config.rootpath / t).resolve() for t in config.getini("testpaths")]
    for root in roots:
        if path == root:
            return True
        if root.is_dir() and _below(path, root) and not any(_below(root, t) for t in testpaths):
            return True
    return False


def pytest_collect_file(file_path: Path, parent):
    if _is_rule_file(file_path) and wanted(file_path, parent.config):
        return RuleFile.from_parent(parent, path=file_path)
    return None


def _relative(path: Path, config) -> str:
    """`path` relative to where pytest was started when it lies below it (the names verify check prints)."""
    base = Path(config.invocation_params.dir).resolve()
    return str(path.resolve().relative_to(base)) if _below(path.resolve(), base) else str(path)


class BadRuleFile(Exception):
    """The file could not be read (parse, notation or shape error): reported as a collection error."""


class RuleFailed(Exception):
    def __init__(self, result):
        super().__init__(result.verdict.value)
        self.result = result


class RuleRefuted(RuleFailed):
    pass


class RuleFile(pytest.File):
    def collect(self):
        options = _options(self.config)
        expect = None
        if self.path.suffix == ".egg":          # one read: the claims and the file's `; expect:` line
            try:
                source = read_file(_relative(self.path, self.config))
            except VerifyError as exc:
                raise BadRuleFile(exc.format()) from None
            errors = list(source.rule_errors)
            claims = claims_of(source, options, errors)
            expect = source.expect
        else:
            claims, errors, _ = collect([_relative(self.path, self.config)], options)
        if errors:
            raise BadRuleFile("\n".join(e.format() for e in errors))
        for claim in claims:
            item = RuleItem.from_parent(self, name=claim.name, claim=claim)
            if expect == "refuted":
                item.add_marker(pytest.mark.xfail(reason="the file says: expect: refuted", strict=True,
                                                  raises=RuleRefuted))
            yield item

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, BadRuleFile):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _options(config):
    return Options(bound=Bound.parse(config.getoption("verify_bound")), timeout=config.getoption("verify_timeout"),
                   sympy=not config.getoption("verify_no_sympy"),
                   cache_mode=CacheMode(config.getoption("verify_cache")),
                   cache_dir=config.getoption("verify_cache_dir"))


_GATE = pytest.StashKey[Gate]()


def _gate(session) -> Gate:
    """The gate of `verify check`, prepared once for every rule item of the session (the same preflight, bound
    check and vacuity guard as a `verify check` of the same paths)."""
    if _GATE not in session.config.stash:
        try:
            options = _options(session.config)
        except Exception as exc:  # a bad --verify-bound: a usage error, not a failing rule
            raise pytest.UsageError(str(exc)) from None
        claims = [item.claim for item in session.items if isinstance(item, RuleItem)]
        try:
            session.config.stash[_GATE] = Gate(claims, options)
        except VerifyError as exc:  # an absurd bound, a rank no rule has: bad input, as `verify check` exits 2
            raise pytest.UsageError(exc.format()) from None
    return session.config.stash[_GATE]


class RuleItem(pytest.Item):
    def __init__(self, *, claim, **kwargs):
        super().__init__(**kwargs)
        self.claim = claim
        self.result = None

    def runtest(self):
        self.result = result = _gate(self.session).check(self.claim)
        self.user_properties.extend([("verdict", result.verdict.value), ("bound", str(result.bound)),
                                     ("method", result.method), ("seconds", f"{result.seconds:.3f}")])
        if result.verdict is Verdict.REFUTED:
            raise RuleRefuted(result)
        if result.verdict is not Verdict.CERTIFIED:
            raise RuleFailed(result)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, RuleFailed):
            return format_result(excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, (self.claim.line or 1) - 1, f"{self.claim.kind} {self.claim.name}"
