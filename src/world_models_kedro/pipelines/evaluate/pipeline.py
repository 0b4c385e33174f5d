"""``evaluate``: the trained agent over seeded real-environment trials against the random baseline,
pictures and videos of the world model, and the self-contained HTML report."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_report, draw_world_model, evaluate_agent, record_videos


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
                    "params:parallel",
                ],
                outputs=["evaluation_metrics", "evaluation_returns"],
                name="evaluate_agent",
            ),
            Node(
                draw_world_model,
                inputs=["rollouts", "vae_model", "mdn_model", "params:report", "params:seed"],
                outputs=[
                    "vae_reconstructions",
                    "vae_prior_samples",
                    "vae_interpolation",
                    "vae_arithmetic",
                    "dream_strip",
                ],
                name="draw_world_model",
            ),
            Node(
                record_videos,
                inputs=[
                    "vae_model",
                    "mdn_model",
                    "controller_model",
                    "params:env",
                    "params:report",
                    "params:controller",
                    "params:seed",
                ],
                outputs=["agent_video", "dream_video"],
                name="record_videos",
            ),
            Node(
                build_report,
                inputs=[
                    "evaluation_metrics",
                    "evaluation_returns",
                    "vae_history",
                    "mdn_history",
                    "controller_history",
                    "vae_reconstructions",
                    "vae_prior_samples",
                    "vae_interpolation",
                    "vae_arithmetic",
                    "dream_strip",
                    "agent_video",
                    "dream_video",
                    "vae_model",
                    "mdn_model",
                    "controller_model",
                    "stage_times",
                    "parameters",
                ],
                outputs="report",
                name="build_report",
            ),
        ]
    )
