"""The command line, the only package that writes to the terminal: the parser and `run` here; the commands in
commands.py (the gate), reporting.py (explain, report, mutate, numeric) and egglog_commands.py (which also
defines their parsers), what they share in arguments.py, how results are shown in output.py.

A command's module is imported when that command runs (`COMMANDS`, `command_module`): `verify check` on one rule
does not import codegen, mutate or the report writer. This is the package's one deferred import of its own
modules; tests/test_architecture.py reads `COMMANDS` as import edges, so the layers still hold for it.

Every command is a plain function `(args, out, err) -> exit status`, so tests drive it with StringIO.
Exit status, the same for every command: 2 if there was any ERROR or bad input (file, line and cause on
stderr, never a traceback), else 1 if anything was REFUTED or UNKNOWN or a requested output was not written,
else 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import verdict as V
from ..errors import UsageError, VerifyError, debugging, internal_message

# command -> the module of verify/cli/ that holds `cmd_<command>` (egglog_commands also holds its parsers)
COMMANDS = {
    "check": "commands", "equiv": "commands", "deps": "commands",
    "numeric": "reporting", "explain": "reporting", "report": "reporting", "mutate": "reporting",
    "codegen": "egglog_commands", "export": "egglog_commands", "optimize": "egglog_commands",
    "run": "egglog_commands", "draw": "egglog_commands", "grad": "grad",
}


def command_module(name: str):
    """The module of verify/cli/ named `name` (a value of `COMMANDS`), imported now."""
    return importlib.import_module(f"{__name__}.{name}")


def handler(command: str):
    """The function that runs `command`: `cmd_<command>` of its module (a parser may also name one with
    `set_defaults(func=...)`, as egglog_commands.py does)."""
    return getattr(command_module(COMMANDS[command]), f"cmd_{command}")

EXIT_HELP = """\
exit status (every command):
  2  any ERROR or bad input (the message names file, line and cause; never a traceback)
  1  otherwise, anything REFUTED or UNKNOWN, or a requested output not written
  0  everything certified, every requested output written

examples:
  verify check rules/ proofs/                      # the proof gate (results stream as they complete)
  verify check rules/tiling.egg:split-max          # one rule (FILE:NAME or FILE:LINE)
  verify check --changed-since origin/main         # only what a change affects (rules, chains, programs)
  verify check rules/ --json > results.json        # every result, ERROR included (schemas/check.schema.json)
  verify equiv proofs/attention.egg proofs/attention_1pass.egg
  verify explain myrules/factor.egg:factor-out     # smallest failing sizes and preconditions that fix it
  verify mutate rules/ --executor dask             # on a local dask cluster (pip install 'verify[cluster]')
  verify numeric proofs/masked/attention_masked.egg --sizes M=512,E=64
  verify draw proofs/attention_1pass.egg -o cascade.svg
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verify")
    except PackageNotFoundError:
        return "unknown"


def nonnegative(text: str) -> float:
    """A finite number >= 0 (argparse's type: nan, inf or a negative value is a usage error, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _common(p: argparse.ArgumentParser, rules: bool = True, streams: bool = False,
            certificates: bool = False, verdicts: bool = True) -> None:
    """The options of the commands that check claims. Each command is given only the flags it honours (a flag it
    accepted and ignored would be a silent lie): `rules` (it reads rule files: `--strict-shapes`), `streams`
    (results stream as they complete: `--heartbeat`), `certificates` (`--certificates DIR`), `verdicts` (its
    verdicts may come from the cache and get SymPy's opinion: `--cache`, `--cache-dir`, `--no-sympy`)."""
    p.add_argument("--bound", help="sizes to check, e.g. M1=8,M0=4,F=2 (default M1,M0<=4; other ranks <=2)")
    p.add_argument("--timeout", type=float, help="seconds per rule or step (default 60)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="check independent rules in parallel")
    p.add_argument("--json", action="store_true", help="print results as JSON (see README, 'JSON output')")
    p.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    if streams:
        p.add_argument("--brief", action="store_true", help="plain text, one line per claim (its verdict)")
    if verdicts:
        p.add_argument("--no-sympy", action="store_true", help="skip SymPy's second opinion on certified claims")
        p.add_argument("--cache", choices=("rw", "ro", "off"), default=os.environ.get("VERIFY_CACHE", "rw"),
                       help="result cache: rw (default), ro (read only, e.g. CI), off; env VERIFY_CACHE")
        p.add_argument("--cache-dir", default=os.environ.get("VERIFY_CACHE_DIR", ".verify-cache"),
                       help="where cached results live (default .verify-cache)")
    if certificates:
        p.add_argument("--certificates", metavar="DIR",
                       help="write one JSON certificate per rule and chain step into DIR")
    if rules:
        p.add_argument("--strict-shapes", action="store_true",
                       help="no implicit tiling: a rank-m tensor under an m1/m0 operator is a shape error "
                            "(per file: '; shapes: strict')")
    p.add_argument("--executor", default=os.environ.get("VERIFY_EXECUTOR", "local"),
                   metavar="local|dask[=ADDRESS]",
                   help="where claims run: local (default), dask (a local dask cluster) or dask=HOST:PORT "
                        "(needs pip install 'verify[cluster]'); env VERIFY_EXECUTOR")
    if not streams:
        return
    p.add_argument("--heartbeat", type=nonnegative, default=float(os.environ.get("VERIFY_HEARTBEAT", 30)),
                   metavar="SECONDS", help="in plain output, say which claim is still running every SECONDS "
                                           "(default 30; 0: never); env VERIFY_HEARTBEAT")


def parser(egglog: bool = True) -> argparse.ArgumentParser:
    """Every command's parser; without `egglog`, not those egglog_commands.py defines (nor its imports)."""
    p = argparse.ArgumentParser(prog="verify", description="Certify or refute tensor rewrite rules and cascades.",
                                epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"verify {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check rule files, chain files and directories",
                       epilog=EXIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("paths", nargs="*", metavar="PATH",
                   help=".egg rule files, .chain.toml chains, directories, or FILE:RULE (a name or a line)")
    c.add_argument("--changed-since", metavar="REF",
                   help="check only what depends on the files changed since git REF (PATHs: where to look, "
                        "default rules and proofs where they exist, else everything)")
    c.add_argument("--staged", action="store_true",
                   help="with --changed-since (default HEAD): the staged changes only (the pre-commit hook)")
    _common(c, streams=True, certificates=True)
    e = sub.add_parser("equiv", help="are the extracted outputs of two programs equal?")
    e.add_argument("a")
    e.add_argument("b")
    _common(e, rules=False, streams=True)     # programs are always read with strict shapes
    n = sub.add_parser("numeric", help="evaluate any program at realistic sizes against the reference evaluator "
                                       "(and attention against numpy and torch SDPA)")
    n.add_argument("programs", nargs="*", metavar="PROGRAM",
                   help=".egg programs (default: the four attention cascades of proofs/, and the overflow demo)")
    for rank, default in (("E", 64), ("M", 1024), ("P", 128), ("F", 64)):
        n.add_argument(f"--{rank}", type=int, default=None, help=f"size of rank {rank.lower()} (default {default})")
    n.add_argument("--sizes", help="sizes of any ranks, e.g. M=4096,M1=64,E=64,J=4 (a split rank's parts: every "
                                   "tile count of 8, 32, 128 that divides it unless given)")
    n.add_argument("--bound", help="sizes as a bound: each rank at its upper end (M1=8,M0=4 -> M1=8, M0=4)")
    n.add_argument("--reference", metavar="PROGRAM",
                   help="the program every other one is compared with (default: the first)")
    n.add_argument("--tolerance", type=nonnegative, default=1e-9,
                   help="largest float64 error that passes (default 1e-9)")
    n.add_argument("--json", action="store_true", help="print a JSON object (schemas/numeric.schema.json)")
    x = sub.add_parser("explain", help="why a rule is refuted: smallest failing sizes, preconditions that fix it")
    x.add_argument("targets", nargs="+", metavar="FILE[:RULE]",
                   help="a rule file (every rule), FILE:NAME or FILE:LINE; chain files name steps")
    x.add_argument("--budget", type=float, default=60.0, help="seconds for trying preconditions (default 60)")
    _common(x)
    rp = sub.add_parser("report", help="write DIR/index.html with every rule, chain step and program")
    rp.add_argument("paths", nargs="*", default=["rules", "proofs"], help="what to check (default: rules proofs)")
    rp.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write the report into")
    rp.add_argument("--format", choices=("html", "md"), default="html", help="index.html (default) or index.md")
    _common(rp)
    mu = sub.add_parser("mutate",
                        help="mutation testing: every non-equivalent mutant of a rule or step must be refuted")
    mu.add_argument("paths", nargs="+", help=".egg rule files, .chain.toml chains, programs, or directories")
    mu.add_argument("--verbose", "-v", action="store_true", help="also list refuted and ill-shaped mutants")
    _common(mu, verdicts=False)    # mutants are checked afresh, without SymPy (see cmd_mutate)
    dp = sub.add_parser("deps", help="what a change makes the gate re-check (the dependency graph, verify/deps.py)")
    dp.add_argument("paths", nargs="*", help="where to look (default rules and proofs where they exist)")
    dp.add_argument("--changed-since", metavar="REF", default="HEAD", help="git revision to compare with "
                                                                         "(default HEAD)")
    dp.add_argument("--staged", action="store_true", help="the staged changes only")
    dp.add_argument("--files", action="store_true", help="print the files of the targets (for tools taking files)")
    dp.add_argument("--json", action="store_true", help="print a JSON object (schemas/deps.schema.json)")
    g = sub.add_parser("grad", help="reverse-mode derivative of a program: inputs plus a cotangent dOUT per output "
                                    "-> the gradients dX (verify/grad.py)")
    g.add_argument("program", metavar="PROGRAM")
    g.add_argument("--wrt", metavar="X,Y", help="inputs to differentiate with respect to, in this order (default: "
                                              "every real input, in order of appearance)")
    g.add_argument("-o", "--output", metavar="OUT.egg", help="write the gradient program here (default: stdout)")
    g.add_argument("--no-justify", action="store_true",
                   help="do not check that the outputs are independent of the maxima treated as constants (exit 1)")
    _common(g, rules=False)      # programs are always read with strict shapes
    if egglog:
        command_module("egglog_commands").add_egglog_commands(sub)
    return p


def run(argv, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    first = next((str(a) for a in argv if not str(a).startswith("-")), "")
    try:
        args = parser(egglog=COMMANDS.get(first) == "egglog_commands" or first not in COMMANDS).parse_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None):
            return 0
        if "--json" in argv:     # argparse has printed the usage error; the JSON says so in the schema

            command = next((a for a in argv if not a.startswith("-")), "")
            _json_error(argparse.Namespace(command=command), UsageError(
                "invalid arguments (see the usage message on stderr)"), out)
        return 2
    try:
        return (getattr(args, "func", None) or handler(args.command))(args, out, err)
    except VerifyError as exc:
        print(exc.format(), file=err)
        if getattr(args, "json", False):
            _json_error(args, exc, out)
        return 2
    except BrokenPipeError:
        raise                # the reader went away: main() stops without a traceback, exit 1
    except OSError as exc:   # a path the user gave cannot be read or written (-o into a file, no permission)
        where = exc.filename or "?"
        print(f"{where}: usage error: {exc.strerror or exc}", file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
    except Exception as exc:  # a bug outside the isolated engines: one line and exit 2, never a traceback
        if debugging():
            raise
        print(internal_message(exc), file=err)
        return 2


def _json_error(args, exc: VerifyError, out) -> None:
    """With --json, bad input is output too, in the command's schema (schemas/): a result of kind "input"
    for the commands that list results, else {"errors": [...]}."""
    import json

    if args.command in ("check", "equiv", "report"):
        out.write(V.dumps([V.error_result(exc)]) + "\n")
    elif args.command == "explain":
        explain = command_module("reporting").explain
        out.write(explain.dumps([explain.Explanation(V.error_result(exc))]) + "\n")
    else:
        out.write(json.dumps({"errors": [exc.format()]}, indent=2) + "\n")


def main() -> None:
    try:
        code = run(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`verify check rules | head`): stop, without a traceback; the output was not
        # all written, so exit 1 (the exit-status rule). Python would flush stdout again at exit: point it away.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)

