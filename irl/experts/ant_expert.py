"""The ant expert (SPEC.md section 3): one direction-following policy for every task.

It sees AntPinpad's observation [41] plus, for each of the 16 cells, a one-hot of the direction
of the grid-level shortest path to the next colour [64] (irl/experts/ant_directions.py), and
outputs 8 torques in [-1, 1] through brax's PPO networks (a tanh-squashed Gaussian whose mean
is the "mean action"; observations normalised by running statistics learnt in training).

Its weights live in a directory: `params.msgpack` (the observation normaliser, the policy and
the value network, flax-serialised) and `expert.json` (the network sizes, the command and seed
that trained it, and its measured success rates). `checkpoints/ant-expert` is the shipped one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from brax.training.acme import running_statistics, specs
from brax.training.agents.ppo import networks as ppo_networks
from flax import serialization, struct

from irl.envs.ant_pinpad import (GRID_SIZE, N_JOINTS, OBS_SIZE, AntPinpadState, cell_of, current_subgoal,
                                 out_of_bounds)
from irl.experts.ant_directions import N_DIRECTIONS, direction_features

EXPERT_OBS_SIZE = OBS_SIZE + GRID_SIZE * GRID_SIZE * N_DIRECTIONS  # 105
SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "ant-expert"
PARAMS_FILE, META_FILE = "params.msgpack", "expert.json"


@dataclasses.dataclass(frozen=True)
class ExpertNetworks:
    policy_hidden: tuple[int, ...] = (128, 128, 128, 128)
    value_hidden: tuple[int, ...] = (256, 256, 256, 256, 256)

    def __post_init__(self):
        for name in ("policy_hidden", "value_hidden"):
            sizes = tuple(getattr(self, name))
            if not sizes or any(int(n) < 1 for n in sizes):
                raise ValueError(f"ExpertNetworks.{name} must be a non-empty tuple of sizes >= 1, got {sizes}")
            object.__setattr__(self, name, tuple(int(n) for n in sizes))

    def build(self) -> ppo_networks.PPONetworks:
        return ppo_networks.make_ppo_networks(
            EXPERT_OBS_SIZE, N_JOINTS, preprocess_observations_fn=running_statistics.normalize,
            policy_hidden_layer_sizes=self.policy_hidden, value_hidden_layer_sizes=self.value_hidden)


def expert_observation(obs: jax.Array, state: AntPinpadState) -> jax.Array:
    """AntPinpad's observation [41] and the path-direction features [64] -> [105]."""
    return jnp.concatenate([obs, direction_features(state)])


def initial_params(networks: ExpertNetworks, key: jax.Array):
    """(normaliser, policy, value) as brax's PPO builds them: the template weights load into."""
    nets = networks.build()
    policy_key, value_key = jax.random.split(key)
    obs_spec = specs.Array((EXPERT_OBS_SIZE,), jnp.dtype("float32"))
    return (running_statistics.init_state(obs_spec), nets.policy_network.init(policy_key),
            nets.value_network.init(value_key))


def save(directory: str | Path, params, networks: ExpertNetworks, meta: dict[str, Any]) -> Path:
    """Write params (normaliser, policy, value) and expert.json (networks + meta) atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> None:  # a reader never sees a half-written file
        tmp = directory / (name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(directory / name)

    write(PARAMS_FILE, serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(params))))
    write(META_FILE, (json.dumps(dict(meta, networks=dataclasses.asdict(networks)), indent=2) + "\n").encode())
    return directory


@dataclasses.dataclass(frozen=True)
class AntExpert:
    """A trained expert: its networks, weights (normaliser, policy, value) and expert.json."""

    networks: ExpertNetworks
    params: Any  # (normaliser, policy, value)
    meta: dict

    @classmethod
    def load(cls, directory: str | Path = SHIPPED) -> "AntExpert":
        directory = Path(directory)
        if not (directory / PARAMS_FILE).is_file() or not (directory / META_FILE).is_file():
            raise FileNotFoundError(f"no ant expert in {directory} (expected {PARAMS_FILE} and {META_FILE}); "
                                    "train one with experiments/train_ant_expert.py")
        meta = json.loads((directory / META_FILE).read_text())
        networks = ExpertNetworks(**{k: tuple(v) for k, v in meta["networks"].items()})
        template = initial_params(networks, jax.random.key(0))
        state = serialization.msgpack_restore((directory / PARAMS_FILE).read_bytes())
        return cls(networks, serialization.from_state_dict(template, state), meta)

    @functools.cached_property
    def _nets(self) -> ppo_networks.PPONetworks:
        return self.networks.build()

    @functools.cached_property
    def _inference(self):
        return ppo_networks.make_inference_fn(self._nets)

    def gaussian(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(loc, scale) [*B, 8] of the Gaussian whose samples the policy squashes with tanh."""
        normaliser, policy_params, _ = self.params
        dist = self._nets.parametric_action_distribution.create_dist(
            self._nets.policy_network.apply(normaliser, policy_params, obs))
        return dist.loc, dist.scale

    def policy(self, deterministic: bool):
        """(obs [*B, 105], key) -> torques [*B, 8]: the mean action (tanh of the Gaussian's
        mean) when deterministic, else a sample (one key draws the whole batch)."""
        brax_policy = self._inference(self.params, deterministic=deterministic)
        return lambda obs, key: brax_policy(obs, key)[0]


@struct.dataclass
class AntEpisodes:
    """Expert episodes in AntPinpad, padded to T steps (after an episode ends its last
    observation repeats and actions are 0)."""

    obs: jax.Array  # float32 [N, T+1, 41]: AntPinpad's observation (what a base model sees)
    actions: jax.Array  # float32 [N, T, 8]: the torques taken
    mask: jax.Array  # bool [N, T]: step t was taken inside the episode
    subgoal: jax.Array  # int32 [N, T]: the colour sought when acting at t
    progress: jax.Array  # int32 [N, T]: task colours visited before acting at t
    xy: jax.Array  # float32 [N, T+1, 2]: the torso's position, for figures
    task_id: jax.Array  # int32 [N]
    success: jax.Array  # bool [N]
    length: jax.Array  # int32 [N]: steps taken
    final: AntPinpadState  # [N]: each episode's last state (its layout and task, for render_ant)


def run_episodes(expert: AntExpert, world, world_params, key: jax.Array, n_episodes: int,
                 deterministic: bool) -> AntEpisodes:
    """n_episodes of the expert in `world` (an AntPinpad and its params), in one scanned,
    vmapped rollout of the world's time limit. deterministic: the mean action (the
    metacontroller's data); else sampled actions (pretraining data)."""
    steps = int(world_params.time_limit)
    reset_key, act_key = jax.random.split(key)
    obs, state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(reset_key, n_episodes), world_params)
    policy = expert.policy(deterministic)

    def step(carry, t):
        obs, state, done = carry
        action = policy(jax.vmap(expert_observation)(obs, state), jax.random.fold_in(act_key, t))
        label, progress = jax.vmap(current_subgoal)(state), state.progress
        next_obs, next_state, _, next_done, info = jax.vmap(world.step, in_axes=(None, 0, 0, None))(
            None, state, action, world_params)
        keep = lambda new, old: jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), old, new)
        carry = (keep(next_obs, obs), jax.tree.map(keep, next_state, state), done | next_done)
        out = (carry[0], carry[1].physics.qpos[:, :2], jnp.where(done[:, None], 0.0, action), ~done, label,
               progress, info["success"] & ~done)
        return carry, out

    (_, final, _), (next_obs, xy, actions, mask, subgoal, progress, success) = jax.lax.scan(
        step, (obs, state, jnp.zeros(n_episodes, bool)), jnp.arange(steps))
    first = lambda x0, xs: jnp.concatenate([x0[:, None], jnp.swapaxes(xs, 0, 1)], axis=1)
    mask = mask.T
    return AntEpisodes(
        obs=first(obs, next_obs), actions=jnp.swapaxes(actions, 0, 1), mask=mask, subgoal=subgoal.T,
        progress=progress.T, xy=first(state.physics.qpos[:, :2], xy), task_id=state.task_id,
        success=success.any(axis=0), length=mask.sum(axis=1).astype(jnp.int32), final=final)


END_CAUSES = ("success", "wrong_colour", "wall", "off_grid", "fallen", "time_limit")


def end_causes(episodes: AntEpisodes) -> jax.Array:
    """int32 [N]: why each episode ended, an index into END_CAUSES, read from its last state
    (the rules of AntPinpad.move_to, checked in the same order)."""
    off_grid, in_wall, fallen = jax.vmap(out_of_bounds)(episodes.final)
    timed_out = episodes.length >= episodes.mask.shape[1]
    cause = jnp.select([episodes.success, off_grid, in_wall, fallen, timed_out], [0, 3, 2, 4, 5], default=1)
    return cause.astype(jnp.int32)


def colours_visited(episodes: AntEpisodes) -> jax.Array:
    """int32 [N]: the task's colours each episode visited in order, its last state's progress
    (a visit on the last step counts, whether it succeeded, fell or met the time limit; the
    per-step `progress` is read before each step, and after the end repeats the final one)."""
    return episodes.final.progress


def where_failures_happen(episodes: AntEpisodes, causes: jax.Array) -> dict:
    """Where the failed episodes (every end but success and the time limit) failed, given
    end_causes(episodes): the share of all episodes failing on each leg (leg k seeks the task's
    k-th colour), the median steps into its leg a failure comes, and the share of all episodes
    failing straight out of the cell their last leg began in (the colour just visited, or the
    start cell), never having left it."""
    progress, mask, length = (np.asarray(x) for x in (episodes.progress, episodes.mask, episodes.length))
    causes = np.asarray(causes)
    failed = (causes != END_CAUSES.index("success")) & (causes != END_CAUSES.index("time_limit"))
    rows = np.arange(len(length))
    leg = progress[rows, length - 1]
    in_leg = (progress == leg[:, None]) & mask
    start = np.argmax(in_leg, axis=1)
    cells = np.asarray(cell_of(episodes.xy))[:, :-1]  # [N, T, 2]: the cell acted from at each step
    stayed = np.all((cells == cells[rows, start][:, None]).all(-1) | ~in_leg, axis=1)
    steps_into_leg = length - start
    legs = int(np.where(mask, progress, 0).max()) + 1
    return {"failed_on_leg": [float((failed & (leg == k)).mean()) for k in range(legs)],
            "failure_steps_into_leg_median": float(np.median(steps_into_leg[failed])) if failed.any() else None,
            "failed_from_the_leg_first_cell": float((failed & stayed).mean())}


def run_many(expert: AntExpert, tasks: str, key: jax.Array, n_episodes: int, deterministic: bool,
             chunk: int = 256, keep_final: bool = True) -> AntEpisodes:
    """n_episodes of run_episodes on the task set `tasks`, generated `chunk` at a time (one
    compiled rollout per chunk size); keep_final=False drops the final states (large) as it goes."""
    import irl.envs

    if n_episodes < 1 or chunk < 1:
        raise ValueError(f"n_episodes and chunk must be >= 1, got {n_episodes}, {chunk}")
    world, world_params = irl.envs.make("ant_pinpad", tasks=tasks)

    def one(k, n):
        episodes = run_episodes(expert, world, world_params, k, n, deterministic)
        return episodes if keep_final else episodes.replace(final=None)

    run = jax.jit(one, static_argnums=1)
    parts = [run(jax.random.fold_in(key, i), min(chunk, n_episodes - first))
             for i, first in enumerate(range(0, n_episodes, chunk))]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def success_rates(expert: AntExpert, key: jax.Array, n_episodes: int, chunk: int = 256) -> dict:
    """The expert's success with its mean action on fresh episodes of the pretraining tasks and
    of the post-training task (SPEC.md: the paper's expert, 0.8 and 0.7), the colours it
    visits, how its episodes end (END_CAUSES), how many end within 50 steps, and where the
    failures happen (where_failures_happen)."""
    out = {"episodes": n_episodes}
    for tasks in ("pretrain", "post"):
        episodes = run_many(expert, tasks, key, n_episodes, deterministic=True, chunk=chunk)
        causes = end_causes(episodes)
        out[f"success_{tasks}"] = float(episodes.success.mean())
        out[f"colours_visited_{tasks}"] = float(colours_visited(episodes).mean())
        out[f"ended_by_{tasks}"] = {name: float((causes == i).mean()) for i, name in enumerate(END_CAUSES)}
        out[f"ended_within_50_steps_{tasks}"] = float((episodes.length <= 50).mean())
        out.update({f"{name}_{tasks}": value for name, value in where_failures_happen(episodes, causes).items()})
    return out
