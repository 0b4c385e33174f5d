"""``encode``: the latent data set (V's mu and logvar for every frame)."""

from kedro.pipeline import Node, Pipeline

from .nodes import encode_rollouts


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                encode_rollouts,
                inputs=["rollouts", "latents_on_disk", "vae_model", "params:encode"],
                outputs="latents",
                name="encode_rollouts",
            )
        ]
    )
