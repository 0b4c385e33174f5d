"""The trained world model as typed objects: V, M and C checkpoints, and the rules that say
whether they fit together.

A checkpoint file holds a plain dict (``{"kind", "config", "state_dict", ...}``, see
``storage/checkpoints.py``); this module is the one place that knows each kind's fields.
:class:`WorldModel` is what nodes load once and pass down: V, M, C (when trained) and the action
space, checked against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from world_models_kedro.actions import canonical_description, check_thresholds, head_dim
from world_models_kedro.models.controller import Controller, ControllerSpec, feature_dim
from world_models_kedro.models.dream import Dream
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE


class IncompatibleModelsError(ValueError):
    """Checkpoints that do not fit together (or a file that is not the kind expected)."""


def _field(checkpoint: dict[str, Any], key: str) -> Any:
    if key not in checkpoint:
        raise IncompatibleModelsError(
            f"'{checkpoint.get('path', 'checkpoint')}' has no {key!r}: it was written by another "
            f"version of the project; run the pipeline that writes it again"
        )
    return checkpoint[key]


def _check_kind(checkpoint: dict[str, Any], kind: str) -> None:
    if checkpoint.get("kind") != kind:
        raise IncompatibleModelsError(
            f"'{checkpoint.get('path', 'checkpoint')}' is a {checkpoint.get('kind', 'unknown')!r} "
            f"checkpoint, not a {kind!r} one"
        )


class _Weights:
    """A model rebuilt from its config and weights on first use (so that checkpoints can be
    checked against each other, naming the files, before any weight is loaded)."""

    model_class: type[torch.nn.Module]

    def __init__(self, config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> None:
        self.config, self.state_dict = config, state_dict
        self._model: Any = None

    def build(self, path: str) -> Any:
        if self._model is None:
            model = self.model_class(**self.config)
            try:
                model.load_state_dict(self.state_dict)
            except RuntimeError as exc:
                raise IncompatibleModelsError(
                    f"'{path}': its weights do not fit its config {self.config} ({exc})"
                ) from exc
            self._model = model.eval()
        return self._model

    @classmethod
    def of(cls, model: torch.nn.Module) -> Any:
        weights = cls(dict(model.config), model.state_dict())
        weights._model = model
        return weights


class _VAEWeights(_Weights):
    model_class = ConvVAE


class _MDNWeights(_Weights):
    model_class = MDNRNN


class _ControllerWeights(_Weights):
    model_class = Controller


@dataclass
class VAECheckpoint:
    """V and what its training recorded."""

    weights: _VAEWeights
    weights_sha256: str
    epochs: int
    val_loss: float
    train_episodes: list[str]
    val_episodes: list[str]
    path: str = "vae checkpoint"

    @property
    def model(self) -> ConvVAE:
        return self.weights.build(self.path)

    @property
    def z_dim(self) -> int:
        return int(self.weights.config["z_dim"])

    @classmethod
    def of(cls, model: ConvVAE, *args: Any, **fields: Any) -> VAECheckpoint:
        """A just-trained V's checkpoint."""
        return cls(_VAEWeights.of(model), *args, **fields)

    @classmethod
    def from_dict(cls, checkpoint: dict[str, Any]) -> VAECheckpoint:
        _check_kind(checkpoint, "vae")
        return cls(
            weights=_VAEWeights(_field(checkpoint, "config"), _field(checkpoint, "state_dict")),
            weights_sha256=_field(checkpoint, "weights_sha256"),
            epochs=int(_field(checkpoint, "epochs")),
            val_loss=float(_field(checkpoint, "val_loss")),
            train_episodes=list(_field(checkpoint, "train_episodes")),
            val_episodes=list(_field(checkpoint, "val_episodes")),
            path=str(checkpoint.get("path", cls.path)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "vae",
            "config": self.weights.config,
            "state_dict": self.weights.state_dict,
            "weights_sha256": self.weights_sha256,
            "epochs": self.epochs,
            "val_loss": self.val_loss,
            "train_episodes": self.train_episodes,
            "val_episodes": self.val_episodes,
        }


@dataclass
class MDNCheckpoint:
    """M, the V it was trained on, the action space, and the encoded first frames dreams start
    from."""

    weights: _MDNWeights
    weights_sha256: str
    vae_sha256: str
    done_pos_weight: float  # the dream undoes it (models/dream.py)
    action_space: dict[str, Any]
    initial_mu: torch.Tensor  # (E, z_dim)
    initial_logvar: torch.Tensor
    epochs: int
    val_loss: float
    path: str = "mdn checkpoint"

    @property
    def model(self) -> MDNRNN:
        return self.weights.build(self.path)

    @property
    def z_dim(self) -> int:
        return int(self.weights.config["z_dim"])

    @classmethod
    def of(cls, model: MDNRNN, *args: Any, **fields: Any) -> MDNCheckpoint:
        """A just-trained M's checkpoint."""
        return cls(_MDNWeights.of(model), *args, **fields)

    @classmethod
    def from_dict(cls, checkpoint: dict[str, Any]) -> MDNCheckpoint:
        _check_kind(checkpoint, "mdn")
        starts = _field(checkpoint, "initial_frames")
        return cls(
            weights=_MDNWeights(_field(checkpoint, "config"), _field(checkpoint, "state_dict")),
            weights_sha256=_field(checkpoint, "weights_sha256"),
            vae_sha256=_field(checkpoint, "vae_sha256"),
            done_pos_weight=float(_field(checkpoint, "done_pos_weight")),
            action_space=_field(checkpoint, "action_space"),
            initial_mu=torch.as_tensor(starts["mu"]),
            initial_logvar=torch.as_tensor(starts["logvar"]),
            epochs=int(_field(checkpoint, "epochs")),
            val_loss=float(_field(checkpoint, "val_loss")),
            path=str(checkpoint.get("path", cls.path)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "mdn",
            "config": self.weights.config,
            "state_dict": self.weights.state_dict,
            "weights_sha256": self.weights_sha256,
            "vae_sha256": self.vae_sha256,
            "done_pos_weight": self.done_pos_weight,
            "action_space": self.action_space,
            "initial_frames": {"mu": self.initial_mu, "logvar": self.initial_logvar},
            "epochs": self.epochs,
            "val_loss": self.val_loss,
        }


@dataclass
class ControllerCheckpoint:
    """C, where it was trained, with which V and M, and its score there."""

    weights: _ControllerWeights
    action_space: dict[str, Any]
    inputs: str  # what C reads: "z", "zh" ([z, h]) or "zch" ([z, c, h])
    threshold_actions: list[int] | None  # the thresholds head's action per bin (None: argmax)
    z_input: str  # the z C gets from V in the real environment: "mean" or "sample"
    train_in: str  # "real" | "dream"
    vae_sha256: str
    mdn_sha256: str
    best_source: str
    best_score: float
    path: str = "controller checkpoint"

    @property
    def model(self) -> Controller:
        return self.weights.build(self.path)

    @property
    def spec(self) -> ControllerSpec:
        thresholds = tuple(self.threshold_actions) if self.threshold_actions is not None else None
        return ControllerSpec(
            self.inputs,
            thresholds,
            bool(self.weights.config["bias"]),
            self.z_input,
            tuple(self.weights.config.get("hidden_layers", ())),
        )

    @classmethod
    def of(cls, model: Controller, *args: Any, **fields: Any) -> ControllerCheckpoint:
        """A just-trained C's checkpoint."""
        return cls(_ControllerWeights.of(model), *args, **fields)

    @classmethod
    def from_dict(cls, checkpoint: dict[str, Any]) -> ControllerCheckpoint:
        _check_kind(checkpoint, "controller")
        return cls(
            weights=_ControllerWeights(
                _field(checkpoint, "config"), _field(checkpoint, "state_dict")
            ),
            action_space=_field(checkpoint, "action_space"),
            inputs=str(_field(checkpoint, "inputs")),
            threshold_actions=_field(checkpoint, "threshold_actions"),
            z_input=str(_field(checkpoint, "z_input")),
            train_in=str(_field(checkpoint, "train_in")),
            vae_sha256=_field(checkpoint, "vae_sha256"),
            mdn_sha256=_field(checkpoint, "mdn_sha256"),
            best_source=str(_field(checkpoint, "best_source")),
            best_score=float(_field(checkpoint, "best_score")),
            path=str(checkpoint.get("path", cls.path)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "controller",
            "config": self.weights.config,
            "state_dict": self.weights.state_dict,
            "action_space": canonical_description(self.action_space),
            "inputs": self.inputs,
            "threshold_actions": self.threshold_actions,
            "z_input": self.z_input,
            "train_in": self.train_in,
            "vae_sha256": self.vae_sha256,
            "mdn_sha256": self.mdn_sha256,
            "best_source": self.best_source,
            "best_score": self.best_score,
        }


def check_compatible(
    vae: VAECheckpoint, mdn: MDNCheckpoint, controller: ControllerCheckpoint | None = None
) -> None:
    """Every rule V, M and C must satisfy together; the error names the files and what differs."""
    if mdn.z_dim != vae.z_dim:
        raise IncompatibleModelsError(
            f"'{mdn.path}' was trained for latents of size {mdn.z_dim}, but '{vae.path}' "
            f"encodes frames to size {vae.z_dim}: run `kedro run --pipelines=encode,mdn`"
        )
    if mdn.vae_sha256 != vae.weights_sha256:
        raise IncompatibleModelsError(
            f"'{mdn.path}' was trained on the latents of another VAE than '{vae.path}' "
            f"(VAE {mdn.vae_sha256} vs {vae.weights_sha256}): "
            "run `kedro run --pipelines=encode,mdn` to retrain M on this VAE's latents"
        )
    if controller is None:
        return
    expected = feature_dim(controller.inputs, vae.z_dim, int(mdn.weights.config["hidden"]))
    if int(controller.weights.config["in_dim"]) != expected:
        raise IncompatibleModelsError(
            f"'{controller.path}' reads {controller.weights.config['in_dim']} features, but its "
            f"inputs {controller.inputs!r} from '{vae.path}' and '{mdn.path}' are {expected}: run "
            "`kedro run --pipelines=controller` again"
        )
    thresholds = controller.threshold_actions
    outputs = head_dim(mdn.action_space, thresholds)
    if int(controller.weights.config["out_dim"]) != outputs:
        raise IncompatibleModelsError(
            f"'{controller.path}' has {controller.weights.config['out_dim']} outputs, but its head "
            f"({'thresholds' if thresholds is not None else 'one output per action'}) in "
            f"{mdn.action_space} needs {outputs}: run `kedro run --pipelines=controller` again"
        )
    if thresholds is not None:
        try:
            check_thresholds(mdn.action_space, thresholds)
        except ValueError as exc:
            raise IncompatibleModelsError(f"'{controller.path}': {exc}") from exc
    if controller.action_space != mdn.action_space:
        raise IncompatibleModelsError(
            f"'{controller.path}' was trained for the action space {controller.action_space}, but "
            f"'{mdn.path}' for {mdn.action_space}: run `kedro run --pipelines=controller` for this "
            "environment"
        )
    if controller.vae_sha256 != vae.weights_sha256 or (
        controller.inputs != "z" and controller.mdn_sha256 != mdn.weights_sha256
    ):
        raise IncompatibleModelsError(
            f"'{controller.path}' was trained with other V/M models than '{vae.path}' and "
            f"'{mdn.path}': run `kedro run --pipelines=controller` again"
        )


def check_action_space(mdn: MDNCheckpoint, env_space: dict[str, Any], env_id: str) -> None:
    """The environment's action space (``envs/spaces.describe_space``) must be M's."""
    if mdn.action_space != env_space:
        raise IncompatibleModelsError(
            f"'{mdn.path}' was trained on actions of {mdn.action_space}, but {env_id}'s action "
            f"space is {env_space}"
        )


@dataclass
class WorldModel:
    """V, M and (once trained) C, checked to fit together; ``action_space`` is M's."""

    vae: VAECheckpoint
    mdn: MDNCheckpoint
    controller: ControllerCheckpoint | None = None

    def __post_init__(self) -> None:
        check_compatible(self.vae, self.mdn, self.controller)

    @classmethod
    def from_checkpoints(
        cls,
        vae: dict[str, Any],
        mdn: dict[str, Any],
        controller: dict[str, Any] | None = None,
    ) -> WorldModel:
        """From the catalog's checkpoint dicts (``vae_model``, ``mdn_model``, ``controller_model``)."""
        return cls(
            VAECheckpoint.from_dict(vae),
            MDNCheckpoint.from_dict(mdn),
            ControllerCheckpoint.from_dict(controller) if controller is not None else None,
        )

    @property
    def action_space(self) -> dict[str, Any]:
        return self.mdn.action_space

    @property
    def uses_hidden(self) -> bool:
        """Whether C reads M's state (the full World Model) rather than z alone."""
        return self.controller is None or self.controller.inputs != "z"

    def dream(
        self,
        num_envs: int,
        *,
        temperature: float,
        max_steps: int,
        done_rule: str,
        done_threshold: float,
        reward_per_step: float | None = None,
        inputs: str | None = None,
        render: bool = False,
        device: torch.device | str = "cpu",
    ) -> Dream:
        """``num_envs`` dreams of M, starting from the encoded real first frames it keeps; their
        features are what C reads (``inputs``; by default the trained C's, else [z, h])."""
        if len(self.mdn.initial_mu) == 0:
            raise IncompatibleModelsError(
                f"'{self.mdn.path}' holds no encoded first frames to start dreams from: train M "
                "again (`kedro run --pipelines=mdn`)"
            )
        return Dream(
            self.mdn.model,
            self.mdn.initial_mu,
            self.mdn.initial_logvar,
            num_envs=num_envs,
            action_desc=self.action_space,
            temperature=temperature,
            max_steps=max_steps,
            done_threshold=done_threshold,
            reward_per_step=reward_per_step,
            vae=self.vae.model if render else None,
            device=device,
            done_pos_weight=self.mdn.done_pos_weight,
            done_rule=done_rule,
            inputs=inputs or self._controller_inputs(),
        )

    def _controller_inputs(self) -> str:
        if self.controller is None:
            raise ValueError(
                "a dream of a world model without C needs the features C reads: inputs="
            )
        return self.controller.inputs
