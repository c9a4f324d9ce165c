"""Front end: `.egg` text -> programs and rules in the IR, keeping file and line.

egglog's own parser (the Python bindings) reads the text, so what we accept is what egglog accepts; this module
only walks egglog's command objects. Names follow `notation.py`.

What a file may contain:
- `(datatype Tensor ...)` / `(constructor ...)`: optional. If a file declares constructors, every operator it
  uses must be declared there and used as declared (argument count and literal sorts, as egglog itself would
  demand: the seed's `(CreateTensor i64 i64 String)` means `(CreateTensor 64 1024 "Q")`); otherwise the shared
  prelude (generated from the operator names, see `egglog.prelude`) is assumed.
- `(let NAME expr)` and `(extract NAME)`: a program; the extracted names are its outputs.
- `(rewrite lhs rhs)`, `(birewrite lhs rhs)`, `(rule (FACTS) (ACTIONS))`: rules. Identifiers that are not
  `let` names are pattern variables (a global in a rule stands for its term). A `rule` ending in `(union a B)`
  claims a = B with every fact `(= v term)` substituted; naming rules and rules that only add terms or facts
  are notices (nothing to prove). A rule that cannot be read is its own located error (`rule_errors`).
- Scheduling commands (`run`, `run-schedule`, `ruleset`, `check`, `push`, `pop`, ...), function and relation
  declarations and facts about them are accepted and ignored.
- Terms nest at most `MAX_NESTING` (200) operators, counting through `let` names; a deeper file is refused by
  its brackets before egglog parses it, or by the reader at the level that goes too deep.
- Comments: `; expect: certified|refuted` in the first lines states a file's expected verdict (test corpus);
  `; NAME: text` directly above a rule names it; otherwise a rule is called `<file stem>:<line>`.
"""

from .program import read_file, read_text
from .source import SourceFile, expand_paths, form_end, source_text

__all__ = ["SourceFile", "expand_paths", "form_end", "read_file", "read_text", "source_text"]
