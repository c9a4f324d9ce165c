"""The egglog engine: the only code that builds or runs an e-graph (`reader/` uses egglog's parser only).

- `session`: an e-graph in this process, egglog text run on it, egglog's failures as located errors;
- `prelude`: the `Tensor` datatype of the operators in use, and the analyses (rank sets, finiteness) that
  guard the rewrites;
- `rewrites`: a `CertifiedRule` (a rule the checker certified; the decide layer makes them, see
  `verify.certified_rules`) as a guarded egglog rewrite;
- `saturation`: a program saturated with certified rewrites (`saturate`), or two programs connected by them
  (`connect`);
- `egraph`: the frozen e-graph read into Python, each e-node as an IR node;
- `extraction`: the program of least passes or memory in the e-graph, ranked by the exact cost of its DAG;
- `run`: a .egg file run as the egglog binary would, and an extracted term read back as a program.

The engine reports what egglog found (a saturation, an extracted program, whether two outputs met); it never
calls the checker. Turning rules into `CertifiedRule`s and validating what was extracted are the checker's
(`verify.certified_rules`, `verify.optimize`).
"""

from .egraph import ENode, ENodeKind, PyEGraph, enode_ir, enode_kind
from .extraction import COSTS, Candidate, Cost, Extractor, selection_program
from .prelude import ANALYSIS, RULESET, analysis_rules, operators_in, prelude
from .rewrites import DEFAULT_TILES, CertifiedRule, pattern_variables, rewrite_text, rules_operators
from .run import RunOutput, run_program, share, term_program
from .saturation import Saturation, Schedule, Stop, connect, saturate
from .session import new_egraph, run_text

__all__ = [
    "ANALYSIS", "COSTS", "DEFAULT_TILES", "RULESET", "Candidate", "CertifiedRule", "Cost", "ENode", "ENodeKind",
    "Extractor", "PyEGraph", "RunOutput", "Saturation", "Schedule", "Stop", "analysis_rules", "connect", "enode_ir",
    "enode_kind", "new_egraph", "operators_in", "pattern_variables", "prelude", "rewrite_text", "rules_operators",
    "run_program", "run_text", "saturate", "selection_program", "share", "term_program",
]
