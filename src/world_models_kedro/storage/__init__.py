"""Files on disk, in plain Python (no Kedro): episode files, checkpoints and training states,
atomic writes. ``datasets/`` wraps them for the Kedro catalog."""
