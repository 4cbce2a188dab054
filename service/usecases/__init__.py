"""Use cases: verbs that take their dependencies as arguments."""
