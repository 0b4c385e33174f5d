"""``gan``: the first seed talk's GAN beside V. The generator is V's decoder and the critic V's
encoder trunk with one output, trained on the frames of V's training episodes; a judge trained
on real frames scores V's and the GAN's frames (FID, KID, sharpness) for ``gan_report.html``.

Part of the default ``kedro run`` (last); alone, after ``vae``: ``kedro run --pipelines=gan``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import build_gan_report, compare_generators, train_gan, train_judge


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_gan,
                inputs=["rollouts", "vae_model", "gan_training_state", "params:gan", "params:seed"],
                outputs=["gan_model", "gan_history"],
                name="train_gan",
            ),
            Node(
                train_judge,
                inputs=[
                    "rollouts",
                    "vae_model",
                    "judge_training_state",
                    "params:gan",
                    "params:seed",
                ],
                outputs=["gan_judge", "judge_history"],
                name="train_judge",
            ),
            Node(
                compare_generators,
                inputs=[
                    "rollouts",
                    "vae_model",
                    "gan_model",
                    "gan_judge",
                    "params:gan",
                    "params:seed",
                ],
                outputs=["gan_metrics", "gan_samples", "gan_interpolation"],
                name="compare_generators",
            ),
            Node(
                build_gan_report,
                inputs=[
                    "gan_metrics",
                    "gan_history",
                    "judge_history",
                    "gan_samples",
                    "gan_interpolation",
                    "gan_model",
                ],
                outputs="gan_report",
                name="build_gan_report",
            ),
        ]
    )
