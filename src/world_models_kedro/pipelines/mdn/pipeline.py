"""``mdn``: the MDN-RNN training set from the latents, and M trained on it."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_sequences, train_mdn


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_sequences,
                inputs=["latents", "mdn_sequences_on_disk", "params:mdn"],
                outputs="mdn_sequences",
                name="build_sequences",
            ),
            Node(
                train_mdn,
                inputs=[
                    "mdn_sequences",
                    "latents",
                    "mdn_training_state",
                    "params:mdn",
                    "params:seed",
                ],
                outputs=["mdn_model", "mdn_history"],
                name="train_mdn",
            ),
        ]
    )
