"""PPO (stable-baselines3) for the controller, checkpointed after every update and resumable
exactly. No hand-written PPO: SB3's ``PPO`` with an ``MlpPolicy`` whose actor is C (no hidden
layers: C is linear, as the paper's) and whose critic has ``value_layers``.

The environment (``envs/ppo_env.py``, passed in already built) gives C's features and takes C's raw
outputs. After each update the policy, Adam's state, the random generators, SB3's last
observations, the environment's episodes in progress and, with ``normalize_reward`` (SB3's
``VecNormalize`` over the rewards), the return's running statistics are written atomically; a
re-run continues after the last finished update with the result of an uninterrupted run. Every
``eval_every`` updates (and after the last) C is scored like a CMA-ES candidate
(``evaluate_many``, the same evaluation episodes) and the best scored C is the result.
stable-baselines3 is imported on first use (the ``sb3`` extra).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from world_models_kedro.models.controller import Controller
from world_models_kedro.storage.checkpoints import ResumeLimit, TrainingState, restore_state
from world_models_kedro.training.cmaes import EvaluateMany, SearchResult
from world_models_kedro.utils.optional import require
from world_models_kedro.utils.progress import Progress

# SB3 logger keys of an update -> the history's columns
LOSSES = {
    "train/policy_gradient_loss": "policy_loss",
    "train/value_loss": "value_loss",
    "train/entropy_loss": "entropy_loss",
    "train/approx_kl": "approx_kl",
    "train/clip_fraction": "clip_fraction",
    "train/explained_variance": "explained_variance",
    "train/std": "std",
}


@dataclass
class PPOSpec:
    """Everything one PPO training needs; ``hyperparameters`` are SB3 ``PPO``'s own arguments."""

    controller: Controller  # C, untrained: its shape (the actor's), filled with the result
    hyperparameters: dict[str, Any]  # n_steps, batch_size, n_epochs, learning_rate, gamma, ...
    total_timesteps: int
    log_std_init: float
    value_layers: list[int]
    eval_every: int  # updates
    normalize_reward: bool  # SB3's VecNormalize over the rewards only (its state is saved too)
    seed: int
    fingerprint: dict[str, Any]  # a saved state must match to be resumed
    evaluate_many: EvaluateMany  # flat C parameters (K, n) -> returns (K, eval_trials)


def new_ppo(spec: PPOSpec, vec_env: Any) -> Any:
    """SB3's PPO over ``vec_env`` with C as the actor (tanh hidden layers, like C's)."""
    sb3 = require("stable_baselines3", "controller.algorithm: ppo")
    policy_kwargs = {
        "net_arch": {"pi": list(spec.controller.hidden_layers), "vf": list(spec.value_layers)},
        "activation_fn": torch.nn.Tanh,
        "log_std_init": spec.log_std_init,
    }
    model = sb3.PPO(
        "MlpPolicy",
        vec_env,
        policy_kwargs=policy_kwargs,
        seed=spec.seed,
        device="cpu",
        verbose=0,
        **spec.hyperparameters,
    )
    # the losses are read from the logger after each update (the history); without a logger of
    # its own, every learn() makes an empty SB3-<time> folder in the temporary directory
    sb3_logger = require("stable_baselines3.common.logger", "controller.algorithm: ppo")
    model.set_logger(sb3_logger.Logger(folder=None, output_formats=[]))
    return model


def normalized(spec: PPOSpec, vec_env: Any) -> Any:
    """``vec_env`` as PPO learns from it: rewards scaled by the running std of the discounted
    return (SB3's ``VecNormalize``, observations untouched) with ``spec.normalize_reward``."""
    if not spec.normalize_reward:
        return vec_env
    vec_env_module = require("stable_baselines3.common.vec_env", "controller.algorithm: ppo")
    gamma = spec.hyperparameters["gamma"]
    return vec_env_module.VecNormalize(vec_env, norm_obs=False, norm_reward=True, gamma=gamma)


def _reward_norm_state(vec_env: Any) -> dict[str, Any]:
    """A ``VecNormalize``'s reward statistics, as a resumed run needs them."""
    rms = vec_env.ret_rms
    return {"mean": rms.mean, "var": rms.var, "count": rms.count, "returns": vec_env.returns.copy()}


def _restore_reward_norm(vec_env: Any, saved: dict[str, Any]) -> None:
    rms = vec_env.ret_rms
    rms.mean, rms.var, rms.count = saved["mean"], saved["var"], saved["count"]
    vec_env.returns = saved["returns"].copy()


def actor_to_controller(policy: Any, controller: Controller) -> Controller:
    """Copy PPO's actor (its hidden layers, then ``action_net``) into ``controller``: C acts as
    the policy's most likely action (categorical) or mean (Gaussian) does."""
    hidden = [m for m in policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for ours, theirs in zip(controller.layers, [*hidden, policy.action_net], strict=True):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    return controller


def _rng_states() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "random": random.getstate(),
    }


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["random"])


def _restore(
    spec: PPOSpec, state: TrainingState, resume: bool, logger: logging.Logger
) -> dict[str, Any] | None:
    limit = ResumeLimit(
        "controller: the PPO", "timesteps", spec.total_timesteps, "controller.ppo.total_timesteps"
    )
    saved = restore_state(state, resume, spec.fingerprint, limit, logger)
    if saved is not None:
        logger.info(
            "controller: resuming PPO from %s after update %d (%d timesteps)",
            state.path, saved["update"], saved["timesteps"],
        )  # fmt: skip
    return saved


def run_ppo(
    spec: PPOSpec, env: Any, state: TrainingState, resume: bool, logger: logging.Logger
) -> SearchResult:
    """Train C with PPO in ``env`` (a ``TrainingEnv``) for ``spec.total_timesteps`` steps."""
    callbacks = require("stable_baselines3.common.callbacks", "controller.algorithm: ppo")
    vec_env = normalized(spec, env.vec_env)
    model = new_ppo(spec, vec_env)
    per_update = model.n_steps * vec_env.num_envs
    updates = -(-spec.total_timesteps // per_update)
    saved = _restore(spec, state, resume, logger)
    book: dict[str, Any] = {
        "update": 0,
        "history": [],
        "champion": {"source": "initial", "score": -np.inf, "params": None},
        "running": np.zeros(vec_env.num_envs),  # returns of the episodes in progress
        "finished": [],  # returns of the episodes finished in the current update
        "started": time.perf_counter(),
    }
    if saved is not None:
        model.set_parameters(saved["parameters"], exact_match=True)
        model.num_timesteps, model._n_updates = saved["timesteps"], saved["n_updates"]
        model._last_obs = saved["last_obs"]
        model._last_episode_starts = saved["last_episode_starts"]
        env.restore(saved["env"])
        if spec.normalize_reward:
            _restore_reward_norm(vec_env, saved["reward_norm"])
        _set_rng_states(saved["rng"])
        book.update(
            update=saved["update"],
            history=list(saved["history"]),
            champion=saved["champion"],
            running=saved["running"].copy(),
        )

    def end_update() -> None:
        """After an update: record it, score C every eval_every updates, save everything."""
        book["update"] += 1
        update, finished = book["update"], book["finished"]
        values = model.logger.name_to_value
        row: dict[str, Any] = {
            "update": update,
            "timesteps": model.num_timesteps,
            "episodes": len(finished),
            "return_mean": float(np.mean(finished)) if finished else np.nan,
            "return_max": float(np.max(finished)) if finished else np.nan,
            **{column: float(values[key]) for key, column in LOSSES.items() if key in values},
            "seconds": round(time.perf_counter() - book["started"], 3),
        }
        model.logger.dump(model.num_timesteps)  # clears the update's values
        if update % spec.eval_every == 0 or model.num_timesteps >= spec.total_timesteps:
            params = actor_to_controller(model.policy, spec.controller).flat_params()
            # scoring C leaves training's random stream alone (a worker built in this process
            # on its first task draws from it: the first task after a resume would differ)
            before = _rng_states()
            returns = spec.evaluate_many(params[None])[0]
            _set_rng_states(before)
            row |= {"eval_return": float(returns.mean()), "eval_std": float(returns.std())}
            if row["eval_return"] > book["champion"]["score"]:
                book["champion"] = {
                    "source": f"ppo@{update}",
                    "score": row["eval_return"],
                    "params": params,
                }
        book["history"].append(row)
        state.write(
            {
                "update": update,
                "timesteps": model.num_timesteps,
                "n_updates": model._n_updates,
                "parameters": model.get_parameters(),
                "last_obs": model._last_obs,
                "last_episode_starts": model._last_episode_starts,
                "env": env.snapshot(),
                "reward_norm": _reward_norm_state(vec_env) if spec.normalize_reward else None,
                "rng": _rng_states(),
                "history": book["history"],
                "champion": book["champion"],
                "running": book["running"],
                "fingerprint": spec.fingerprint,
            }
        )
        book["finished"], book["started"] = [], time.perf_counter()
        progress.update(
            1,
            timesteps=model.num_timesteps,
            episodes=row["episodes"],
            **({"return": f"{row['return_mean']:.1f}"} if finished else {}),
            **({"eval": f"{row['eval_return']:.1f}"} if "eval_return" in row else {}),
        )

    class Bookkeeping(callbacks.BaseCallback):
        """Episode returns as they finish; :func:`end_update` once each update is trained."""

        def _on_step(self) -> bool:  # the game's rewards, not the normalized ones PPO learns
            if spec.normalize_reward:
                book["running"] += vec_env.get_original_reward()
            else:
                book["running"] += self.locals["rewards"]
            for i in np.flatnonzero(self.locals["dones"]):
                book["finished"].append(float(book["running"][i]))
                book["running"][i] = 0.0
            return True

        def _on_rollout_start(self) -> None:  # the previous update is trained by now
            if self.model.num_timesteps > per_update * book["update"]:
                end_update()

        def _on_training_end(self) -> None:
            if self.model.num_timesteps > per_update * book["update"]:
                end_update()

    with Progress(
        updates, "controller PPO", "updates", logger, every=0.0, initial=book["update"]
    ) as progress:
        remaining = spec.total_timesteps - model.num_timesteps
        if remaining > 0:
            model.learn(
                remaining,
                callback=Bookkeeping(),
                log_interval=None,
                reset_num_timesteps=saved is None,
            )
    champion = book["champion"]
    if champion["params"] is None:  # nothing trained (total reached before): score C as it is
        params = actor_to_controller(model.policy, spec.controller).flat_params()
        champion = {
            "source": f"ppo@{book['update']}",
            "score": float(spec.evaluate_many(params[None]).mean()),
            "params": params,
        }
    return SearchResult(
        np.asarray(champion["params"]),
        float(champion["score"]),
        champion["source"],
        pd.DataFrame(book["history"]),
    )
