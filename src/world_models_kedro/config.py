"""Every parameter of every pipeline, with its type, default and allowed range, in one place.

The YAML files under ``conf/<env>/parameters*.yml`` are validated against these models when a
pipeline starts (see ``hooks.py``): an unknown key, a wrong type or a value out of range fails at
once with the parameter's dotted name and the file that sets it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

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
    # How a value u in [-1, 1] (C's tanh output, or an exploration draw) becomes each dimension of
    # a Box action: "linear" maps [-1, 1] onto [low, high]; "clip" keeps u, clipped into
    # [low, high]. CarRacing as in the original: [linear, linear, clip] (steer = u,
    # gas = (u + 1) / 2, brake = max(u, 0): C's zero output means no brake). null: all linear.
    action_squash: list[Literal["linear", "clip"]] | None = None

    @model_validator(mode="after")
    def _crop_is_a_window(self) -> EnvParams:
        if self.crop is not None and not (
            self.crop[0] < self.crop[1] and self.crop[2] < self.crop[3]
        ):
            raise ValueError(
                f"crop {list(self.crop)} must be [top, bottom, left, right) with top < bottom, left < right"
            )
        return self


# ---------------------------------------------------------------- rollouts
class PolicyParams(Params):
    """Exploration policy. Every kind draws a point u in [-1, 1]^d mapped into the action space
    (Box: linearly; Discrete: argmax; MultiBinary: u > 0)."""

    kind: Literal["random", "brownian", "hold"] = "brownian"
    sigma: PositiveFloat = 0.07  # brownian: per-step change, as a fraction of the action range
    hold_steps: PositiveInt = 1  # every kind: each drawn action is held for this many frames
    # Box spaces: explore only inside [low, high] (null: the action space's bounds). CarRacing
    # explores better with little brake: low [-1, 0, 0], high [1, 1, 0.2].
    low: list[float] | None = None
    high: list[float] | None = None


class RolloutParams(Params):
    n_episodes: NonNegativeInt = 32
    max_steps: PositiveInt | None = None  # shorter rollouts than env.max_steps (null: env's limit)
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


# ---------------------------------------------------------------- M
class MDNModelParams(Params):
    hidden: PositiveInt = 256
    gaussians: PositiveInt = 5
    predict_reward: bool = False  # reward head (dream training where rewards vary)
    predict_done: bool = False  # done head (dream training: the dream ends when it fires)


class MDNParams(Params):
    model: MDNModelParams = MDNModelParams()
    sequence_length: PositiveInt = 100  # steps per training window
    epochs: NonNegativeInt = 20
    batch_size: PositiveInt = 32
    learning_rate: PositiveFloat = 1e-3
    grad_clip: PositiveFloat | None = 1.0
    done_pos_weight: PositiveFloat = 10.0  # BCE weight of episode ends (rare positives)
    reward_weight: Annotated[float, Field(ge=0)] = 1.0  # weight of the reward MSE
    done_weight: Annotated[float, Field(ge=0)] = 1.0  # weight of the done BCE
    validation_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    shuffle_episodes: PositiveInt = 16
    loader_workers: NonNegativeInt = 0
    device: Device = "auto"
    resume: bool = True


# ---------------------------------------------------------------- C
class DreamParams(Params):
    """Training C inside M's dream (``controller.train_in: dream``)."""

    temperature: Annotated[float, Field(ge=0)] = 1.15  # tau: higher makes the dream harder
    max_steps: PositiveInt = 1000
    done_threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5  # P(done) that ends a dream episode
    device: Device = "auto"


class ControllerParams(Params):
    use_hidden: bool = (
        True  # C sees [z, h] (full World Model); false: z only (the paper's "V only")
    )
    train_in: Literal["real", "dream"] = "real"
    population: Annotated[int, Field(ge=2)] = 64
    trials: PositiveInt = 16  # episodes per candidate; its fitness is the mean return
    sigma0: PositiveFloat = 0.1
    generations: NonNegativeInt = 1800
    max_steps: PositiveInt | None = None  # cap on training episodes (null: the env's limit)
    stall_steps: PositiveInt | None = (
        None  # end a training episode after this many steps without a new best return
    )
    eval_every: PositiveInt = 25  # every so many generations, score the best candidate and the mean
    eval_trials: PositiveInt = 100  # ... on this many episodes
    workers: NonNegativeInt | None = None
    dream: DreamParams = DreamParams()
    resume: bool = True


class EvaluateParams(Params):
    trials: PositiveInt = 100
    workers: NonNegativeInt | None = None
    baseline: bool = True  # also score a random policy on the same seeds
    # the baseline's policy (null: the rollouts' exploration policy). TakeCover's usual floor is
    # uniform random actions every frame, whatever explored the rollouts.
    baseline_policy: PolicyParams | None = None


class AttributeParams(Params):
    """A frame property measured on pixels, for latent arithmetic: the weighted channel sum
    (R, G, B weights) averaged over ``region`` [top, bottom, left, right) exceeds ``threshold``."""

    name: str = "car on the grass"
    region: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt] = (44, 58, 24, 40)
    channels: tuple[float, float, float] = (-1.0, 1.0, 0.0)  # green minus red: grass
    threshold: float = 40.0


class ReportParams(Params):
    strip_frames: PositiveInt = 10  # frames per strip (real vs dream)
    strip_every: PositiveInt = 8  # steps between them
    interpolation_steps: Annotated[int, Field(ge=2)] = 8
    prior_samples: PositiveInt = 16
    arithmetic_scales: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0])
    attribute: AttributeParams = AttributeParams()
    attribute_episodes: PositiveInt = 16  # episodes whose frames give the attribute vector
    dream_temperature: Annotated[float, Field(ge=0)] = 1.0
    video_steps: PositiveInt = 300
    video_scale: PositiveInt = 2


PARAMETER_MODELS: dict[str, type[Params]] = {
    "env": EnvParams,
    "rollouts": RolloutParams,
    "vae": VAEParams,
    "encode": EncodeParams,
    "mdn": MDNParams,
    "controller": ControllerParams,
    "evaluate": EvaluateParams,
    "report": ReportParams,
}
SCALAR_PARAMETERS: dict[str, Any] = {"seed": Annotated[int, Field(ge=0)]}
