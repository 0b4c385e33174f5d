"""Every parameter of every pipeline, with its type, meaning and allowed range, in one place.

The values live in the YAML files, not here: ``conf/base/parameters*.yml`` sets every field of
these models (no field has a default, so the two cannot disagree; ``tests/test_configs.py``
checks it) and an environment's ``conf/<env>/parameters*.yml`` overrides some of them. Show an
environment's effective values, each with its file:
``python -m world_models_kedro.tools.show_params --env <env>``.

The parameters are validated against these models when a pipeline starts (see ``hooks.py``): an
unknown key, a missing one, a wrong type or a value out of range fails at once with the
parameter's dotted name and the file that sets it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # fields added after results were saved, with the value that behaves as before they existed:
    # left out of the fingerprint while they hold it, so that states saved before stay resumable
    _added_later: dict[str, Any] = {}

    def fingerprint_dict(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """The values that determine a result (for resume checks and metadata)."""
        unset = {name for name, old in self._added_later.items() if getattr(self, name) == old}
        values = self.model_dump(mode="json", exclude=set(exclude or ()) | unset)
        for name in values:  # nested groups leave out their own later fields too
            if isinstance(group := getattr(self, name), Params):
                values[name] = group.fingerprint_dict()
        return values


# ---------------------------------------------------------------- stable-retro games
class ProgressRewardParams(Params):
    """The Retro Contest's reward (stable-retro's Sonic ``contest`` scenario, in Python): progress
    along x from the start to ``end_x``, ``total`` for the whole way, plus at the end a bonus of
    ``time_bonus`` that falls linearly to 0 at ``frame_limit`` frames. The episode ends when a
    life is lost or the end is reached."""

    end_x: PositiveInt  # where the level ends (GreenHillZone.Act1: 0x2560 = 9568)
    total: PositiveFloat  # the contest: 9000
    time_bonus: Annotated[float, Field(ge=0)]  # the contest: 1000
    frame_limit: PositiveInt  # the contest: 18000 frames (5 minutes)


class RetroParams(Params):
    """How a stable-retro game (``env.id: retro:<Game>``) is played."""

    # A Discrete action set: each action holds a combination of the console's buttons ([]: none).
    # null: the console's buttons as they are (MultiBinary)
    buttons: list[list[str]] | None
    frame_skip: PositiveInt  # each action is held this many frames, rewards summed (contest: 4)
    progress_reward: ProgressRewardParams | None  # null: the game's own reward (its scenario)


# ---------------------------------------------------------------- environment (parameters.yml)
class EnvParams(Params):
    """The gymnasium environment and how a frame is taken from it."""

    id: str  # gymnasium id: CarRacing-v3, VizdoomTakeCover-v1, ...
    kwargs: dict[str, Any]  # extra gymnasium.make() arguments ({}: none)
    # Where frames come from: "observation" (pixel observations), a key of a dict observation
    # ("screen" for VizDoom), or "render" (env.render() with render_mode="rgb_array").
    frame: str
    # Rows and columns of the raw frame that are kept, [top, bottom, left, right) (null: all).
    # CarRacing: rows 84..95 are the HUD, so [0, 84, 0, 96] as in the original.
    crop: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt] | None
    max_steps: PositiveInt | None  # episode length limit (null: the environment's own)
    # Reward per step in the dream when M has no reward head (survival tasks: TakeCover's +1).
    dream_reward_per_step: float | None  # null: M's reward head gives the reward
    # How a value u in [-1, 1] (C's tanh output, or an exploration draw) becomes each dimension of
    # a Box action: "linear" maps [-1, 1] onto [low, high]; "clip" keeps u, clipped into
    # [low, high]. CarRacing as in the original: [linear, linear, clip] (steer = u,
    # gas = (u + 1) / 2, brake = max(u, 0): C's zero output means no brake). null: all linear.
    action_squash: list[Literal["linear", "clip"]] | None
    retro: RetroParams | None  # stable-retro games only (null: the game as it is)
    _added_later = {"retro": None}

    @model_validator(mode="after")
    def _retro_only_for_retro(self) -> EnvParams:
        if self.retro is not None and not self.id.startswith("retro:"):
            raise ValueError(
                f"retro settings are for stable-retro games (id retro:<Game>), not {self.id!r}"
            )
        return self

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

    kind: Literal["random", "brownian"]
    sigma: PositiveFloat  # brownian: per-step change, as a fraction of the action range
    hold_steps: PositiveInt  # every kind: each drawn action is held for this many frames
    # Box spaces: explore only inside [low, high] (null: the action space's bounds). CarRacing
    # explores better with little brake: low [-1, 0, 0], high [1, 1, 0.2].
    low: list[float] | None
    high: list[float] | None


class RolloutParams(Params):
    n_episodes: NonNegativeInt
    max_steps: PositiveInt | None  # shorter rollouts than env.max_steps (null: env's limit)
    policy: PolicyParams
    workers: NonNegativeInt | None  # worker processes; null or 0: every core
    compression_level: Annotated[int, Field(ge=0, le=9)]  # deflate level of episode files (0: none)


# ---------------------------------------------------------------- V
class VAEModelParams(Params):
    z_dim: PositiveInt  # the paper: 32 (CarRacing), 64 (Doom)
    # channels of the four conv layers (the paper's V: 32, 64, 128, 256)
    channels: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt]


class EpochTrainingParams(Params):
    """What V and M share about their epochs' outcome."""

    # The model a run returns: "best", the epoch with the lowest validation loss (the last epoch
    # when nothing is held out), or "last". The training state keeps both.
    keep: Literal["best", "last"]
    # An epoch whose loss (validation, else training) exceeds the lowest so far, or the untrained
    # model's, by more than this many times max(|that loss|, 1) has diverged: training stops and
    # nothing of that epoch is saved (null: never stop, only on NaN/inf).
    divergence_tolerance: PositiveFloat | None


class VAEParams(EpochTrainingParams):
    model: VAEModelParams
    kl_tolerance: Annotated[float, Field(ge=0)]  # free bits: KL >= kl_tolerance * z_dim
    kl_weight: Annotated[float, Field(ge=0)]
    epochs: NonNegativeInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    validation_fraction: Annotated[float, Field(ge=0, lt=1)]  # of episodes, held out
    shuffle_episodes: PositiveInt  # episodes decoded and shuffled together (bounds memory)
    loader_workers: NonNegativeInt  # torch DataLoader worker processes
    device: Device  # auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps
    resume: bool  # continue from the training state left by an interrupted run
    # V trains on every k-th frame of each episode (1: all). Neighbouring frames are nearly the
    # same, so a stride cuts V's training time on large data sets; `encode` still covers every frame.
    frame_stride: PositiveInt


class EncodeParams(Params):
    batch_size: PositiveInt
    device: Device


# ---------------------------------------------------------------- M
class MDNModelParams(Params):
    hidden: PositiveInt  # LSTM units (the paper: 256 for CarRacing, 512 for Doom)
    gaussians: PositiveInt  # mixture components per latent dimension (the paper: 5)
    predict_reward: bool  # reward head (dream training where rewards vary)
    predict_done: bool  # done head (dream training: the dream ends when it fires)
    # M's input also holds the episode-start ("restart") flag: 1 on an episode's first step, as
    # in the original TakeCover code ([z_t, a_t, restart_t]); false: [z_t, a_t].
    restart_input: bool


class MDNParams(EpochTrainingParams):
    model: MDNModelParams
    sequence_length: PositiveInt  # steps per training window
    epochs: NonNegativeInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    grad_clip: PositiveFloat | None  # gradient norm clip (null: none)
    done_pos_weight: PositiveFloat  # BCE weight of episode ends (rare positives)
    reward_weight: Annotated[float, Field(ge=0)]  # weight of the reward MSE
    done_weight: Annotated[float, Field(ge=0)]  # weight of the done BCE
    # M's inputs and targets: z drawn from V's posterior afresh for every batch (mu + sigma * eps,
    # as the original) or V's mean mu
    z_input: Literal["sample", "mean"]
    validation_fraction: Annotated[float, Field(ge=0, lt=1)]  # of episodes, held out
    shuffle_episodes: PositiveInt  # episodes shuffled together (bounds memory)
    loader_workers: NonNegativeInt  # torch DataLoader worker processes
    device: Device
    resume: bool  # continue from the training state left by an interrupted run


# ---------------------------------------------------------------- C
class DreamParams(Params):
    """Training C inside M's dream (``controller.train_in: dream``)."""

    temperature: Annotated[float, Field(ge=0)]  # tau: higher makes the dream harder (paper: 1.15)
    max_steps: PositiveInt  # dream episode length limit
    # When a dream ends (M's done head was trained with episode ends weighted by
    # mdn.done_pos_weight = w):
    # - weighted: the head's own probability, as trained (weighted), exceeds done_threshold; at 0.5
    #   this is the original's rule (raw logit > 0), a death probability above 1 / (1 + w) on the
    #   data's own scale;
    # - calibrated: the probability with the weighting undone exceeds done_threshold;
    # - sample: the dream ends with the calibrated probability (as the zacwellmer/WorldModels port);
    # - none: only at max_steps (M needs no done head).
    done_rule: Literal["weighted", "calibrated", "sample", "none"]
    done_threshold: Annotated[float, Field(gt=0, lt=1)]  # for the weighted and calibrated rules
    device: Device
    # CMA-ES's dreams (the population's and the re-scoring's): true drops a dream from the batch
    # once it has ended, so M steps only the dreams still running (several times faster when most
    # die early); false steps the whole batch until the last one ends. The same dreams either way
    # in distribution, not the same random draws: true gives other (equally likely) results.
    compact: bool
    _added_later = {"compact": False}


class PPOParams(Params):
    """C trained by stable-baselines3's PPO (``controller.algorithm: ppo``); the names and meanings
    of SB3's own arguments. The actor is C itself (``controller.hidden_layers``); the critic is
    used in training only."""

    total_timesteps: PositiveInt  # environment steps (real or dreamed) of the whole training
    # environments stepped together: real games, one worker process each (V and M batched over them
    # in this process), or dreams in one torch batch
    n_envs: PositiveInt
    n_steps: PositiveInt  # steps per environment in each update's rollout
    batch_size: Annotated[int, Field(ge=2)]  # minibatch size
    n_epochs: PositiveInt  # passes over each rollout
    learning_rate: PositiveFloat
    gamma: Annotated[float, Field(gt=0, le=1)]  # discount
    gae_lambda: Annotated[float, Field(ge=0, le=1)]
    clip_range: PositiveFloat
    ent_coef: NonNegativeFloat  # entropy bonus
    vf_coef: NonNegativeFloat  # value loss weight
    max_grad_norm: PositiveFloat
    # Box spaces and the thresholds head: C's raw outputs are the mean of a Gaussian (state-
    # independent std, this log at the start); Discrete argmax: a categorical over C's outputs
    log_std_init: float
    value_layers: list[PositiveInt]  # the critic's hidden layers (tanh), over the same features
    # generalized State-Dependent Exploration (gSDE; Box spaces and the thresholds head only): the
    # noise is a function of the features, redrawn every sde_sample_freq steps (-1: once per
    # rollout); rl-baselines3-zoo's CarRacing setting is true, 4
    use_sde: bool
    sde_sample_freq: Annotated[int, Field(ge=-1)]
    # PPO learns from rewards scaled by a running std of the discounted return (SB3's
    # VecNormalize, norm_reward only; the zoo's CarRacing setting); history and scores stay raw
    normalize_reward: bool
    _added_later = {"use_sde": False, "sde_sample_freq": -1, "normalize_reward": False}
    # the fields that are the project's, not arguments of SB3's PPO
    _ours = {"total_timesteps", "n_envs", "log_std_init", "value_layers", "normalize_reward"}

    def sb3_arguments(self) -> dict[str, Any]:
        """The fields that are arguments of stable-baselines3's ``PPO`` (n_steps, gamma, ...)."""
        return self.model_dump(exclude=self._ours)

    @model_validator(mode="after")
    def _batch_fits(self) -> PPOParams:
        if self.batch_size > self.n_steps * self.n_envs:
            raise ValueError(
                f"batch_size ({self.batch_size}) is larger than a rollout (n_steps x n_envs = "
                f"{self.n_steps} x {self.n_envs} = {self.n_steps * self.n_envs})"
            )
        return self


class ControllerParams(Params):
    # How C is trained: cmaes (the paper: population, trials, sigma0, generations) or ppo
    # (stable-baselines3, controller.ppo); either in the real environment or the dream (train_in)
    algorithm: Literal["cmaes", "ppo"]
    # C's hidden layers, tanh between them: [] is the paper's linear C; e.g. [64] an MLP
    hidden_layers: list[PositiveInt]
    # What C reads: z (the paper's "V only"), zh ([z, h]: the full World Model) or zch ([z, c, h]:
    # M's LSTM cell state too, as the original TakeCover C)
    inputs: Literal["z", "zh", "zch"]
    # How C's outputs become an action. Box spaces: one tanh output per dimension, always.
    # Discrete spaces: argmax over one output per action, or thresholds: one tanh output u, [-1, 1]
    # cut into n equal bins, bin i plays threshold_actions[i] (TakeCover as the original:
    # left below -1/3, stay, right above +1/3).
    head: Literal["argmax", "thresholds"]
    threshold_actions: (
        list[int] | None
    )  # the head "thresholds": the action of each bin, low to high
    bias: bool  # C's layers have biases (the original TakeCover C has none; PPO needs them)
    # The z C (and M) get from V in the real environment: V's mean, or drawn from its posterior
    # (mu + sigma * eps, seeded per episode), as the original's agent
    z_input: Literal["mean", "sample"]
    train_in: Literal["real", "dream"]  # where C is trained (and its candidates scored)
    population: Annotated[int, Field(ge=2)]  # CMA-ES population (the paper: 64)
    trials: PositiveInt  # episodes per candidate; its fitness is the mean return (paper: 16)
    sigma0: PositiveFloat  # CMA-ES initial step size
    generations: NonNegativeInt  # the paper: 1800 (CarRacing)
    max_steps: PositiveInt | None  # cap on real training episodes (null: the env's limit)
    # CMA-ES: end a real training episode after this many steps without a new best return
    # (null: never)
    stall_steps: PositiveInt | None
    # every so many CMA-ES generations (the best candidate and the mean) or PPO updates (the
    # policy), score C on eval_trials episodes; the best scored C is the result
    eval_every: PositiveInt
    eval_trials: PositiveInt
    workers: NonNegativeInt | None  # worker processes; null or 0: every core
    # episodes each worker plays at once in the real environment, V and M batched over them (C
    # per episode): 8 plays TakeCover about twice as fast as 1 on a CPU; an episode's floats depend
    # on lanes (the last bits), not on which episodes share its batch. stable-retro: 1
    lanes: PositiveInt
    dream: DreamParams
    ppo: PPOParams
    resume: bool  # continue from the training state left by an interrupted run
    _added_later = {"lanes": 1}

    @model_validator(mode="after")
    def _ppo_has_biases(self) -> ControllerParams:
        if self.algorithm == "ppo" and not self.bias:
            raise ValueError(
                "PPO trains C with biases (stable-baselines3's layers have them): set "
                "controller.bias: true, or controller.algorithm: cmaes for a C without biases"
            )
        return self

    @model_validator(mode="after")
    def _head_fits(self) -> ControllerParams:
        if (self.head == "thresholds") != (self.threshold_actions is not None):
            raise ValueError(
                "threshold_actions lists the action of each bin of the head 'thresholds' (e.g. "
                "[2, 0, 1] for TakeCover: left, stay, right); set it with that head and only then"
            )
        return self


class EvaluateParams(Params):
    trials: PositiveInt  # real episodes scored (the paper: 100)
    workers: NonNegativeInt | None  # worker processes; null or 0: every core
    lanes: PositiveInt  # episodes each worker plays at once (see ControllerParams.lanes)
    baseline: bool  # also score a random policy on the same seeds
    # the baseline's policy (null: the rollouts' exploration policy). TakeCover's usual floor is
    # uniform random actions every frame, whatever explored the rollouts. A policy given here
    # must set every field of PolicyParams (it replaces null: nothing to merge with).
    baseline_policy: PolicyParams | None


# ---------------------------------------------------------------- fan-out (parameters_parallel.yml)
class ParallelParams(Params):
    """Where the episode-level fan-out runs: rollout collection, CMA-ES candidates scored in the
    real environment, evaluation trials (and the ``iterate`` round's agent episodes). Results
    are the same bytes on either backend; only where and how fast they are made differs."""

    # processes: worker processes on this machine (no Ray import); ray: tasks on a Ray cluster
    backend: Literal["processes", "ray"]
    # ray only. null: the RAY_ADDRESS environment variable if set, else the cluster that
    # `ray start` runs on this machine, else a new local Ray; "auto": a running cluster this
    # machine belongs to; "host:port" (a node of the cluster) or "ray://host:port" (Ray Client)
    ray_address: str | None
    # ray only: times a task is run again when its worker dies (killed, node lost, out of memory)
    task_retries: NonNegativeInt


# ---------------------------------------------------------------- iterative training
class ExplorationMix(Params):
    """How the trained agent explores in one set of its episodes."""

    # share of the agent's held segments (policy.hold_steps frames each) played by the
    # exploration policy instead of C: 0 plays C alone, 1 explores only
    explore: Annotated[float, Field(ge=0, le=1)]
    # the policy of those segments (null: rollouts.policy). Long holds take the agent to the walls
    # on both sides, where C's own behaviour only shows M one of them.
    policy: PolicyParams | None


class IterateParams(Params):
    """One round of the paper's iterative training (its section 5), ``--pipelines=iterate``: the
    trained agent plays the real environment, exploring part of the time, M is fine-tuned on those
    episodes together with the first rollouts, and C is trained again in the new M's dream."""

    episodes: NonNegativeInt  # real episodes the trained agent plays, in each exploration mix
    # one set of ``episodes`` episodes per mix (folder mix<k>/ of agent_rollouts); episode i of
    # every mix starts from the same seed (common random numbers: the mixes differ by exploring)
    exploration: Annotated[list[ExplorationMix], Field(min_length=1)]
    mdn_epochs: PositiveInt  # M's fine-tuning epochs over the old and the new episodes
    workers: NonNegativeInt | None  # worker processes; null or 0: every core
    lanes: PositiveInt  # episodes each worker plays at once (see ControllerParams.lanes)


class RefinedControllerParams(Params):
    """How the ``iterate`` round trains C again in the fine-tuned M's dream, where it differs from
    the first C (``controller.*``). A group of its own: a sweep over it (``dvc exp``, the paper's
    temperature table) re-runs the ``iterate_controller`` stage alone, reusing the round's M."""

    dream_temperature: (
        PositiveFloat | None
    )  # tau of that dream (null: controller.dream.temperature)

    def applied_to(self, controller: ControllerParams) -> ControllerParams:
        """``controller`` as the round trains C: its dream at ``dream_temperature`` (if set)."""
        if self.dream_temperature is None:
            return controller
        dream = controller.dream.model_copy(update={"temperature": self.dream_temperature})
        return controller.model_copy(update={"dream": dream})


class RoundCheckParams(Params):
    """After a round of ``iterate``: is the task completed, is the new M's dream still kinder than
    the game? The round's C plays ``dreams`` held-out dreams (as C was trained) and ``episodes``
    real episodes on seeds of their own (not the evaluation's; ``evaluate.workers`` play them);
    another round is advised while the real score is below ``solved_score`` (the paper's step 4:
    back to collection while the task is not completed; null: no such line), or when the dream
    score exceeds ``max_dream_ratio`` x the real one (for a real score <= 0: by
    ``max_dream_ratio - 1`` of its size). Measured: README, "The round check"."""

    episodes: PositiveInt  # real check episodes of the round's C
    dreams: PositiveInt  # held-out dreams of the round's C
    max_dream_ratio: PositiveFloat  # the target: the dream no kinder than 1.2 x the game
    solved_score: float | None  # the task completed: TakeCover's 750, CarRacing's 900


class IterateAgainParams(Params):
    """``kedro run --pipelines=iterate_again``: a second round, where the first round's check
    advises it (``advised``) or in any case (``always``). A group of its own: no DVC stage reads it."""

    second_round: Literal["advised", "always"]


class AttributeParams(Params):
    """A frame property measured on pixels, for latent arithmetic: the weighted channel sum
    (R, G, B weights) averaged over ``region`` [top, bottom, left, right) exceeds ``threshold``."""

    name: str  # shown in the report, e.g. "car on the grass"
    region: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt]
    channels: tuple[float, float, float]  # e.g. (-1, 1, 0): green minus red, i.e. grass
    threshold: float


class ReportParams(Params):
    first_frame: NonNegativeInt  # pictures start here (CarRacing zooms in for 50 frames)
    strip_frames: PositiveInt  # frames per strip (real vs dream)
    strip_every: PositiveInt  # steps between them
    interpolation_steps: Annotated[int, Field(ge=2)]  # frames between two real frames' latents
    prior_samples: PositiveInt  # frames decoded from z ~ N(0, I)
    arithmetic_scales: list[float]  # multiples of the attribute vector added to a latent
    attribute: AttributeParams
    attribute_episodes: PositiveInt  # episodes whose frames give the attribute vector
    dream_temperature: Annotated[float, Field(ge=0)]  # tau of the dream strip and video
    video_steps: PositiveInt  # steps per video (real and dream)
    video_scale: PositiveInt  # nearest-neighbour enlargement of the videos


# ---------------------------------------------------------------- the GAN beside V (issue 12)
class JudgeModelParams(Params):
    width: PositiveInt  # conv width of the judge (its features: 4 x width)


class JudgeParams(EpochTrainingParams):
    """The feature extractor of FID and KID (``models/judge.py``), trained on real frames of V's
    training episodes to tell four rotations apart."""

    model: JudgeModelParams
    epochs: NonNegativeInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    validation_fraction: Annotated[float, Field(ge=0, lt=1)]  # of V's training episodes
    shuffle_episodes: PositiveInt
    loader_workers: NonNegativeInt
    device: Device
    resume: bool


class GANParams(Params):
    """The GAN: generator = V's decoder, critic = V's encoder trunk + one output (``models/gan.py``),
    built from V's configuration and trained on the frames of V's training episodes."""

    loss: Literal["dcgan", "wgan-gp"]  # non-saturating DCGAN, or Wasserstein with gradient penalty
    epochs: NonNegativeInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat  # Adam, both networks
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]]
    critic_steps: PositiveInt  # critic updates per generator update (DCGAN 1, WGAN-GP 5)
    gradient_penalty: Annotated[float, Field(ge=0)]  # WGAN-GP's lambda (10); unused by dcgan
    frame_stride: PositiveInt  # every k-th frame of each episode, as vae.frame_stride
    shuffle_episodes: PositiveInt
    loader_workers: NonNegativeInt
    device: Device
    resume: bool
    judge: JudgeParams
    samples: Annotated[int, Field(ge=2)]  # frames per compared set (FID, KID, sharpness)
    kid_subset_size: Annotated[int, Field(ge=2)]  # KID's subset size (at most `samples`)
    grid: PositiveInt  # samples shown per row in the report
    interpolation_steps: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _kid_fits(self) -> GANParams:
        if self.kid_subset_size > self.samples:
            raise ValueError(
                f"kid_subset_size ({self.kid_subset_size}) must be at most samples ({self.samples})"
            )
        return self


PARAMETER_MODELS: dict[str, type[Params]] = {
    "env": EnvParams,
    "rollouts": RolloutParams,
    "vae": VAEParams,
    "encode": EncodeParams,
    "mdn": MDNParams,
    "controller": ControllerParams,
    "evaluate": EvaluateParams,
    "iterate": IterateParams,
    "refined_controller": RefinedControllerParams,
    "round_check": RoundCheckParams,
    "iterate_again": IterateAgainParams,
    "parallel": ParallelParams,
    "report": ReportParams,
    "gan": GANParams,
}
SCALAR_PARAMETERS: dict[str, Any] = {"seed": Annotated[int, Field(ge=0)]}
