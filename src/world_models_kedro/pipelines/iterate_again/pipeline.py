"""``iterate_again``: a second round of iterative training on the first round's M and C, run by
name (``kedro run --pipelines=iterate_again``) when the first round's check advises it
(``refined_check.json``: its real score below ``round_check.solved_score``, or its dream still
kinder than ``round_check.max_dream_ratio`` x the game); its first node refuses otherwise, before
anything is written.

The same nodes and parameters as ``iterate``, under the namespace ``round2``: its episodes, M, C,
scores and check are ``round2.*`` (``<data_root>/round2/``), and its first models are the first
round's refined M and C. README, "A second round".
"""

from kedro.pipeline import Pipeline

from world_models_kedro.pipelines.iterate.pipeline import create_round

ROUND = "round2"


def create_pipeline(**kwargs) -> Pipeline:
    nodes = create_round(again=True)
    return Pipeline(
        nodes,
        namespace=ROUND,
        inputs={
            "vae_model": "vae_model",
            "mdn_sequences": "mdn_sequences",
            "mdn_model": "refined_mdn_model",
            "controller_model": "refined_controller_model",
            "previous_check": "refined_check",
        },
        parameters={name for name in nodes.inputs() if name.startswith("params:")},
    )
