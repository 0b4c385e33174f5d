"""Pipeline ``iterate_again``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
