"""``iterate_mdn``: half of the ``iterate`` round (the agent's episodes, encoded, and M fine-tuned on them), a pipeline and a DVC stage of its own."""

from kedro.pipeline import Pipeline

from world_models_kedro.pipelines.iterate.pipeline import MDN_TAG
from world_models_kedro.pipelines.iterate.pipeline import create_pipeline as create_round


def create_pipeline(**kwargs) -> Pipeline:
    return create_round().only_nodes_with_tags(MDN_TAG)
