"""World Models (Ha & Schmidhuber, 2018) as reproducible Kedro pipelines."""

__version__ = "0.1.0"
