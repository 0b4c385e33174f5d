"""``vae``: train V (the convolutional VAE) on the rollout frames."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_vae


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_vae,
                inputs=["rollouts", "vae_training_state", "params:vae", "params:seed"],
                outputs=["vae_model", "vae_history"],
                name="train_vae",
            )
        ]
    )
