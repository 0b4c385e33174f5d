"""``iterate_controller``: half of the ``iterate`` round (C trained again in the fine-tuned M's dream, scored, and the round check;
a sweep over ``refined_controller.*`` re-runs it alone), a pipeline and a DVC stage of its own."""

from kedro.pipeline import Pipeline

from world_models_kedro.pipelines.iterate.pipeline import CONTROLLER_TAG
from world_models_kedro.pipelines.iterate.pipeline import create_pipeline as create_round


def create_pipeline(**kwargs) -> Pipeline:
    return create_round().only_nodes_with_tags(CONTROLLER_TAG)
