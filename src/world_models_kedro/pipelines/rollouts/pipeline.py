"""``rollouts``: environment episodes from an exploration policy, one file per episode."""

from kedro.pipeline import Node, Pipeline

from .nodes import collect_rollouts, summarize_rollouts


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                collect_rollouts,
                inputs=[
                    "rollouts_on_disk",
                    "params:env",
                    "params:rollouts",
                    "params:seed",
                    "params:parallel",
                ],
                outputs="rollouts",
                name="collect_rollouts",
            ),
            Node(
                summarize_rollouts,
                inputs="rollouts",
                outputs="rollout_stats",
                name="summarize_rollouts",
            ),
        ]
    )
