"""Every parameter of every pipeline, with its type, default and allowed range, in one place.

The YAML files under ``conf/<env>/parameters*.yml`` are validated against these models when a
pipeline starts (see ``hooks.py``): an unknown key, a wrong type or a value out of range fails at
once with the parameter's dotted name and the file that sets it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt

Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def fingerprint_dict(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The values that determine a result (for resume checks and metadata)."""
        return self.model_dump(mode="json", exclude=exclude)


# ---------------------------------------------------------------- environment (parameters.yml)
class EnvParams(Params):
    """The gymnasium environment and how a frame is taken from it."""

    id: str = "CarRacing-v3"
    kwargs: dict[str, Any] = Field(default_factory=dict)  # extra gymnasium.make() arguments
    # Where frames come from: "observation" (pixel observations), a key of a dict observation
    # ("screen" for VizDoom), or "render" (env.render() with render_mode="rgb_array").
    frame: str = "observation"
    # Rows and columns of the raw frame that are kept, [top, bottom, left, right) (null: all).
    # CarRacing: rows 84..95 are the HUD, so [0, 84, 0, 96] as in the original.
    crop: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt] | None = (
        0,
        84,
        0,
        96,
    )
    max_steps: PositiveInt | None = 1000  # episode length limit (null: the environment's own)
    # Reward per step in the dream when M has no reward head (survival tasks: TakeCover's +1).
    dream_reward_per_step: float | None = None


# ---------------------------------------------------------------- rollouts
class PolicyParams(Params):
    """Exploration policy. Every kind draws a point u in [-1, 1]^d mapped into the action space
    (Box: linearly; Discrete: argmax; MultiBinary: u > 0)."""

    kind: Literal["random", "brownian", "hold"] = "brownian"
    sigma: PositiveFloat = 0.07  # brownian: per-step change, as a fraction of the action range
    hold_steps: PositiveInt = 1  # every kind: each drawn action is held for this many frames


class RolloutParams(Params):
    n_episodes: NonNegativeInt = 32
    policy: PolicyParams = PolicyParams()
    workers: NonNegativeInt | None = None  # worker processes; null or 0: every core
    compression_level: Annotated[int, Field(ge=0, le=9)] = 1


# ---------------------------------------------------------------- V
class VAEModelParams(Params):
    z_dim: PositiveInt = 32
    channels: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (32, 64, 128, 256)


class VAEParams(Params):
    model: VAEModelParams = VAEModelParams()
    kl_tolerance: Annotated[float, Field(ge=0)] = 0.5  # free bits: KL >= kl_tolerance * z_dim
    kl_weight: Annotated[float, Field(ge=0)] = 1.0
    epochs: NonNegativeInt = 3
    batch_size: PositiveInt = 64
    learning_rate: PositiveFloat = 1e-3
    validation_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1  # of episodes, held out
    shuffle_episodes: PositiveInt = 4  # episodes decoded and shuffled together (bounds memory)
    loader_workers: NonNegativeInt = 0  # torch DataLoader worker processes
    device: Device = "auto"
    resume: bool = True  # continue from the training state left by an interrupted run


class EncodeParams(Params):
    batch_size: PositiveInt = 500
    device: Device = "auto"


PARAMETER_MODELS: dict[str, type[Params]] = {
    "env": EnvParams,
    "rollouts": RolloutParams,
    "vae": VAEParams,
    "encode": EncodeParams,
}
SCALAR_PARAMETERS: dict[str, Any] = {"seed": Annotated[int, Field(ge=0)]}
