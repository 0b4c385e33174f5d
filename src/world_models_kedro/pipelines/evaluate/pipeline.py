"""``evaluate``: the trained agent over seeded real-environment trials, against the random baseline."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_report, evaluate_agent


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                evaluate_agent,
                inputs=[
                    "vae_model",
                    "mdn_model",
                    "controller_model",
                    "params:evaluate",
                    "params:env",
                    "params:rollouts",
                    "params:seed",
                ],
                outputs=["evaluation_metrics", "evaluation_returns"],
                name="evaluate_agent",
            ),
            Node(
                build_report,
                inputs=[
                    "evaluation_metrics",
                    "evaluation_returns",
                    "vae_history",
                    "mdn_history",
                    "controller_history",
                ],
                outputs="report",
                name="build_report",
            ),
        ]
    )
