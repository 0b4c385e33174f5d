"""Training machinery: streaming data, the epoch loop (V, M) and CMA-ES (C). No Kedro here."""
