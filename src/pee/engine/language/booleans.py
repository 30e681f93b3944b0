"""The words a plan spells booleans with (BMAD step conditions, template values).

Their own module: the template renderer of every worker reads them, and importing them from
the BMAD importer would load the plan language's models into a worker that needs none.
"""

from __future__ import annotations

TRUE_WORDS = ("true", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "no", "n", "0", "off")
