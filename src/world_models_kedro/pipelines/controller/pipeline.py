"""``controller``: C trained by CMA-ES (in the real environment, or in M's dream)."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_controller


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_controller,
                inputs=[
                    "vae_model",
                    "mdn_model",
                    "controller_training_state",
                    "params:controller",
                    "params:env",
                    "params:seed",
                    "params:parallel",
                ],
                outputs=["controller_model", "controller_history"],
                name="train_controller",
            )
        ]
    )
