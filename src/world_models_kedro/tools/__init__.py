"""Project tooling (not used by the pipelines at run time)."""
