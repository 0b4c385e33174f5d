"""Pictures of the world model: what V sees and imagines, what M dreams, how C drives.

Each function returns a matplotlib Figure (or uint8 frames for a video);
:func:`world_model_pictures` and :func:`agent_videos` make everything the report shows.
No Kedro here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from world_models_kedro.actions import actions_to_vectors, squash_to_vectors
from world_models_kedro.config import DreamParams, EnvParams, ReportParams
from world_models_kedro.envs.agents import AgentSpec, play_video
from world_models_kedro.models.controller import Controller
from world_models_kedro.models.dream import Dream
from world_models_kedro.models.mdnrnn import MDNRNN, sample_mdn
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor, tensor_to_frames
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.reporting.figures import frame_grid
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.utils.seeding import derive_seed


@torch.inference_mode()
def encode_mu(vae: ConvVAE, frames: np.ndarray) -> torch.Tensor:
    return vae.encode(frames_to_tensor(frames))[0]


@torch.inference_mode()
def decode(vae: ConvVAE, z: torch.Tensor) -> np.ndarray:
    return tensor_to_frames(vae.decode(z))


def reconstruction_figure(vae: ConvVAE, frames: np.ndarray) -> Figure:
    """Real frames above V's reconstructions of them (decoded from mu)."""
    return frame_grid(
        [frames, decode(vae, encode_mu(vae, frames))],
        ["real", "V's reconstruction"],
        "Reconstructions",
    )


def prior_samples_figure(vae: ConvVAE, count: int, seed: int) -> Figure:
    """Frames decoded from z ~ N(0, I): what V imagines with no input at all."""
    z = torch.randn(count, vae.z_dim, generator=torch.Generator().manual_seed(seed))
    frames = decode(vae, z)
    half = (count + 1) // 2
    return frame_grid([frames[:half], frames[half:]], ["z ~ N(0, I)", ""], "Samples from the prior")


def interpolation_figure(vae: ConvVAE, start: np.ndarray, end: np.ndarray, steps: int) -> Figure:
    """Decoded points on the straight line between two real frames' latent codes."""
    z = encode_mu(vae, np.stack([start, end]))
    weights = torch.linspace(0, 1, steps)[:, None]
    path = decode(vae, (1 - weights) * z[0] + weights * z[1])
    return frame_grid(
        [[start, *([None] * (steps - 2)), end], path],
        ["the two real frames", "decoded along the line between their codes"],
        "Latent interpolation",
    )


def pixel_attribute(
    frames: np.ndarray, region: Sequence[int], channels: Sequence[float], threshold: float
) -> np.ndarray:
    """Boolean per frame: the weighted channel sum, averaged over ``region`` [top, bottom, left,
    right), exceeds ``threshold`` (CarRacing's "car on the grass": green minus red around the car)."""
    top, bottom, left, right = region
    patch = frames[:, top:bottom, left:right].astype(np.float32)
    return (patch @ np.asarray(channels, np.float32)).mean(axis=(1, 2)) > threshold


def attribute_vector(vae: ConvVAE, frames: np.ndarray, has: np.ndarray) -> torch.Tensor:
    """Mean z of the frames with the attribute minus mean z of those without it."""
    z = encode_mu(vae, frames)
    mask = torch.as_tensor(has)
    return z[mask].mean(0) - z[~mask].mean(0)


def arithmetic_figure(
    vae: ConvVAE, frame: np.ndarray, vector: torch.Tensor, scales: Sequence[float], name: str
) -> Figure:
    """A frame's code plus the attribute vector in steps, decoded (the talk's "sunglasses vector")."""
    z = encode_mu(vae, frame[None])[0]
    rows = decode(vae, torch.stack([z + s * vector for s in scales]))
    labels = ", ".join(f"{s:+.1f}" for s in scales)
    return frame_grid(
        [frame[None], rows],
        ["the real frame", f"z + k * ({name} vector), k = {labels}"],
        "Latent arithmetic",
    )


@torch.inference_mode()
def open_loop_dream(
    vae: ConvVAE,
    mdn: MDNRNN,
    first_frame: np.ndarray,
    action_vectors: np.ndarray,
    temperature: float,
    seed: int,
) -> np.ndarray:
    """M dreams forward from a real frame, fed the real episode's actions: decoded frames
    (len(action_vectors) + 1, 64, 64, 3), starting with V's reconstruction of the first frame."""
    generator = torch.Generator().manual_seed(seed)
    z = encode_mu(vae, first_frame[None])
    state = mdn.initial_state(1)
    codes = [z]
    for t, a in enumerate(torch.as_tensor(action_vectors, dtype=torch.float32)):
        restart = torch.full((1,), 1.0 if t == 0 else 0.0) if mdn.restart_input else None
        out, state = mdn.step(z, a[None], state, restart)
        z = sample_mdn(out.log_pi, out.mu, out.log_sigma, temperature, generator)
        codes.append(z)
    return decode(vae, torch.cat(codes))


def dream_strip_figure(
    real: np.ndarray, dreamed: np.ndarray, every: int, count: int, temperature: float
) -> Figure:
    """Every ``every``-th frame of the real episode above the dream fed the same actions."""
    index = np.arange(0, min(len(real), len(dreamed)), every)[:count]
    return frame_grid(
        [real[index], dreamed[index]],
        [
            f"real, every {every} steps",
            f"M's dream from the first frame, same actions (tau {temperature})",
        ],
        "Real vs dreamed rollout",
    )


@torch.inference_mode()
def dream_video(
    dream: Dream,
    controller: Controller,
    steps: int,
    seed: int,
    thresholds: Sequence[int] | None = None,
) -> np.ndarray:
    """C acting inside a single dream (whose features are what C reads): the decoded frames
    (up to ``steps`` + 1)."""
    features = dream.reset(seed)
    frames = [dream.decode()[0]]
    for _ in range(steps):
        raw = controller(features)
        features, _, terminated, truncated = dream.step(
            squash_to_vectors(dream.action_desc, raw, thresholds)
        )
        if bool(terminated[0] | truncated[0]):
            break
        frames.append(dream.decode()[0])
    return np.stack(frames)


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (T, H, W, 3) frames, for watchable GIFs."""
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def _episode_for_pictures(
    rollouts: Mapping[str, Callable[[], Episode]], world_model: WorldModel
) -> Episode:
    """A held-out episode (one V never trained on), else the last one."""
    held_out = [pid for pid in world_model.vae.val_episodes if pid in rollouts]
    return rollouts[held_out[0] if held_out else sorted(rollouts)[-1]]()


def world_model_pictures(
    world_model: WorldModel,
    rollouts: Mapping[str, Callable[[], Episode]],
    params: ReportParams,
    seed: int,
    logger: logging.Logger,
) -> tuple[Figure, Figure, Figure, Figure, Figure]:
    """Pictures of V and M: reconstructions, prior samples, an interpolation, latent arithmetic
    and a real rollout beside M's dream of it (fed the same actions)."""
    vae, mdn = world_model.vae.model, world_model.mdn.model
    episode = _episode_for_pictures(rollouts, world_model)
    data = episode.read("observations", "actions")
    count = params.strip_frames
    first = min(params.first_frame, (len(data["observations"]) - 1) // 2)  # after the intro
    frames, actions = data["observations"][first:], data["actions"][first:]
    picks = np.linspace(0, len(frames) - 1, count).astype(int)
    reconstructions = reconstruction_figure(vae, frames[picks])
    prior = prior_samples_figure(vae, params.prior_samples, seed)
    interpolation = interpolation_figure(
        vae, frames[picks[0]], frames[picks[-1]], params.interpolation_steps
    )
    pool = np.concatenate(
        [
            rollouts[pid]()["observations"][:: params.strip_every]
            for pid in sorted(rollouts)[: params.attribute_episodes]
        ]
    )
    attribute = params.attribute
    has = pixel_attribute(pool, attribute.region, attribute.channels, attribute.threshold)
    if has.all() or not has.any():
        logger.warning(
            "report: every sampled frame %s '%s' (report.attribute): the latent arithmetic shows no change",
            "has" if has.all() else "lacks", attribute.name,
        )  # fmt: skip
        vector = torch.zeros(vae.z_dim)
    else:
        vector = attribute_vector(vae, pool, has)
    start = frames[picks[0]] if has.all() or not has.any() else pool[np.flatnonzero(~has)[0]]
    arithmetic = arithmetic_figure(vae, start, vector, params.arithmetic_scales, attribute.name)
    steps = min(len(actions), params.strip_every * (count - 1))
    vectors = actions_to_vectors(world_model.action_space, actions[:steps])
    dreamed = open_loop_dream(vae, mdn, frames[0], vectors, params.dream_temperature, seed)
    strip = dream_strip_figure(
        frames[: steps + 1], dreamed, params.strip_every, count, params.dream_temperature
    )
    logger.info(
        "report: pictures of %s from frame %d; '%s' in %d of %d sampled frames",
        episode.path, first, attribute.name, int(has.sum()), len(has),
    )  # fmt: skip
    return reconstructions, prior, interpolation, arithmetic, strip


def agent_videos(
    world_model: WorldModel,
    env: EnvParams,
    params: ReportParams,
    dream: DreamParams,
    seed: int,
    logger: logging.Logger,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of the trained agent playing the real environment and playing inside M's dream
    (at ``report.dream_temperature``, ending by the rule C was trained with, ``dream``)."""
    if world_model.controller is None:
        raise ValueError("agent_videos needs a world model with a trained controller")
    controller = world_model.controller
    spec = AgentSpec(env, world_model, controller.spec, max_steps=params.video_steps)
    real = play_video(spec, derive_seed(seed, "video"))
    has_done_head = world_model.mdn.model.predict_done
    dreaming = world_model.dream(
        1,
        temperature=params.dream_temperature,
        max_steps=params.video_steps,
        done_rule=dream.done_rule if has_done_head else "none",
        done_threshold=dream.done_threshold,
        # a video needs no reward: any constant does where M has no reward head
        reward_per_step=None if world_model.mdn.model.predict_reward else 0.0,
        render=True,
    )
    dreamed = dream_video(
        dreaming,
        controller.model,
        params.video_steps,
        derive_seed(seed, "dream-video"),
        controller.spec.thresholds,
    )
    logger.info("report: videos of %d real and %d dreamed steps", len(real) - 1, len(dreamed) - 1)
    return upscale(real, params.video_scale), upscale(dreamed, params.video_scale)
