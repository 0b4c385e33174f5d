"""The models' share of one real agent step: M's state-only step vs M's full step, same run.

In the real environment the agent (``models/agent.py``) encodes the frame with V, lets C act and
advances M, one episode at a time on one thread (as in the worker processes). It needs only M's
new LSTM state: ``MDNRNN.advance`` (PyTorch's LSTM cell) instead of ``MDNRNN.step`` (``nn.LSTM``,
oneDNN's kernel on a CPU, plus the mixture, reward and done heads). Random weights at the paper's
sizes; no environment (its own cost: ``rollout_throughput.py``, ``dream_throughput.py``).
``agent_call_with_step_ms`` is the agent's call with ``step`` in place of ``advance`` (the call's
time, less ``advance``'s, plus ``step``'s). Goal: ``advance`` at least 2x faster than ``step``.
``agent_lane_ms``: the agent's call per episode when it plays ``--lanes`` episodes at once (V
and M batched over them, C per lane: ``evaluate.lanes``, ``iterate.lanes``), against one.
Prints one JSON object; logs go to stderr.

TakeCover's sizes (the default) and CarRacing's (V and M only; C and the action head as
TakeCover's)::

    python benchmarks/agent_step.py
    python benchmarks/agent_step.py --z-dim 32 --hidden 256
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import _util
import gymnasium as gym
import numpy as np
import torch

from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.agent import WorldModelAgent
from world_models_kedro.models.controller import Controller, feature_dim
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE


def ms_per_call(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """The best of ``repeats`` timings of ``calls`` calls, in ms per call (after a warm-up)."""
    timeit.timeit(fn, number=20)
    return min(timeit.repeat(fn, number=calls, repeat=repeats)) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--z-dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lanes", type=int, default=8)
    args = parser.parse_args()
    _util.setup_logging()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # as in the worker processes
    z_dim, hidden = args.z_dim, args.hidden
    vae = ConvVAE(z_dim=z_dim).eval()
    # TakeCover's agent (conf/doom): Discrete(3) as a one-hot for M; C reads [z, c, h] and has
    # one tanh output thresholded into left / stay / right; z drawn from V's posterior
    mdn = MDNRNN(z_dim, 3, hidden, 5, predict_done=True, restart_input=True).eval()
    controller = Controller(feature_dim("zch", z_dim, hidden), 1, bias=False)
    space = describe_space(gym.spaces.Discrete(3))
    agent = WorldModelAgent(vae, mdn, controller, space, "zch", (2, 0, 1), sample_z=True)
    lanes = WorldModelAgent(vae, mdn, controller, space, "zch", (2, 0, 1), True, args.lanes)
    frames = np.random.default_rng(0).integers(0, 256, (args.lanes, 64, 64, 3), dtype=np.uint8)
    frame = frames[0]
    z, a, restart = torch.randn(1, z_dim), torch.eye(3)[:1], torch.zeros(1)
    state = mdn.initial_state(1)
    with _util.json_stdout() as out, torch.inference_mode():
        step = ms_per_call(lambda: mdn.step(z, a, state, restart), args.calls, args.repeats)
        advance = ms_per_call(lambda: mdn.advance(z, a, state, restart), args.calls, args.repeats)
        agent_ms = ms_per_call(lambda: agent(frame), args.calls, args.repeats)
        played = [None] * args.lanes
        lane_ms = ms_per_call(lambda: lanes.act(frames, played), args.calls, args.repeats)
        gap = (
            (mdn.advance(z, a, state, restart)[0] - mdn.step(z, a, state, restart)[1][0])
            .abs()
            .max()
        )
        out.update(
            z_dim=z_dim,
            hidden=hidden,
            threads=torch.get_num_threads(),
            torch=torch.__version__,
            m_step_ms=round(step, 4),
            m_advance_ms=round(advance, 4),
            speedup=round(step / advance, 2),
            agent_call_ms=round(agent_ms, 4),
            agent_call_with_step_ms=round(agent_ms - advance + step, 4),
            max_abs_state_gap=float(gap),
            lanes=args.lanes,
            agent_lane_ms=round(lane_ms / args.lanes, 4),
            lanes_speedup=round(agent_ms / (lane_ms / args.lanes), 2),
        )
        _util.log.info(
            "M per step: step %.3f ms, advance %.3f ms (%.1fx); the agent's call %.3f ms, "
            "%.3f ms per episode with %d lanes",
            step,
            advance,
            step / advance,
            agent_ms,
            lane_ms / args.lanes,
            args.lanes,
        )


if __name__ == "__main__":
    main()
