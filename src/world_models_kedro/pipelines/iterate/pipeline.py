"""``iterate``: one round of the paper's iterative training. The trained agent plays the real
environment, its episodes are encoded by the same V, M is fine-tuned on them with the first
rollouts, C is trained again in the new M's dream and scored like ``evaluate`` does; the round
check then plays C in held-out dreams and real episodes of their own and says whether the task
is completed and whether the new dream is still kinder than the game (``refined_check.json``:
another round advised or not).

Run it after the whole pipeline: ``kedro run --pipelines=iterate``. The first round's models stay
as they are; this round's are ``refined_mdn_model`` and ``refined_controller_model``.
"""

from kedro.pipeline import Node, Pipeline

from world_models_kedro.pipelines.encode.nodes import encode_rollouts
from world_models_kedro.pipelines.evaluate.nodes import evaluate_agent
from world_models_kedro.pipelines.mdn.nodes import build_sequences

from .nodes import (
    check_refined_agent,
    collect_agent_rollouts,
    collect_agent_rollouts_again,
    refine_mdn,
    retrain_controller,
)

# Two DVC stages (``iterate_mdn``, ``iterate_controller``, registered beside ``iterate``): a sweep
# over how C is trained again (``refined_controller.*``) reuses the round's episodes and M.
MDN_TAG, CONTROLLER_TAG = "iterate_mdn", "iterate_controller"


def create_round(again: bool = False) -> Pipeline:
    """The round's nodes; ``again``: a later round, whose first node reads the previous round's
    check (``previous_check``) and refuses to start where it advises no other round."""
    # after the models: a missing refined M or C names the run that makes it before the check
    guard = ["previous_check", "params:round_check", "params:iterate_again"] if again else []
    return Pipeline(
        [
            Node(
                collect_agent_rollouts_again if again else collect_agent_rollouts,
                inputs=[
                    "agent_rollouts_on_disk",
                    "vae_model",
                    "mdn_model",
                    "controller_model",
                    *guard,
                    "params:iterate",
                    "params:env",
                    "params:rollouts",
                    "params:seed",
                    "params:parallel",
                ],
                outputs="agent_rollouts",
                name="collect_agent_rollouts",
                tags=[MDN_TAG],
            ),
            Node(
                encode_rollouts,
                inputs=["agent_rollouts", "agent_latents_on_disk", "vae_model", "params:encode"],
                outputs="agent_latents",
                name="encode_agent_rollouts",
                tags=[MDN_TAG],
            ),
            Node(
                build_sequences,
                inputs=["agent_latents", "agent_sequences_on_disk", "params:mdn"],
                outputs="agent_sequences",
                name="build_agent_sequences",
                tags=[MDN_TAG],
            ),
            Node(
                refine_mdn,
                inputs=[
                    "mdn_model",
                    "mdn_sequences",
                    "agent_sequences",
                    "refined_mdn_training_state",
                    "params:mdn",
                    "params:iterate",
                    "params:seed",
                ],
                outputs=["refined_mdn_model", "refined_mdn_history"],
                name="refine_mdn",
                tags=[MDN_TAG],
            ),
            Node(
                retrain_controller,
                inputs=[
                    "vae_model",
                    "refined_mdn_model",
                    "refined_controller_training_state",
                    "params:controller",
                    "params:refined_controller",
                    "params:env",
                    "params:seed",
                    "params:parallel",
                ],
                outputs=["refined_controller_model", "refined_controller_history"],
                name="retrain_controller",
                tags=[CONTROLLER_TAG],
            ),
            Node(
                evaluate_agent,
                inputs=[
                    "vae_model",
                    "refined_mdn_model",
                    "refined_controller_model",
                    "params:evaluate",
                    "params:env",
                    "params:rollouts",
                    "params:seed",
                    "params:parallel",
                ],
                outputs=["refined_evaluation_metrics", "refined_evaluation_returns"],
                name="evaluate_refined_agent",
                tags=[CONTROLLER_TAG],
            ),
            Node(
                check_refined_agent,
                inputs=[
                    "vae_model",
                    "refined_mdn_model",
                    "refined_controller_model",
                    "params:controller",
                    "params:refined_controller",
                    "params:round_check",
                    "params:evaluate",
                    "params:env",
                    "params:seed",
                    "params:parallel",
                ],
                outputs="refined_check",
                name="check_refined_agent",
                tags=[CONTROLLER_TAG],
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    return create_round()
