"""Training the ant expert with brax's PPO trainer (SPEC.md section 3).

`DirectionFollowing` is AntPinpad as a brax environment: the expert's observation (AntPinpad's
plus the path-direction features), the reward of ant_directions (torso velocity along the
current cell's direction), episodes that end on success or failure and, through brax's
EpisodeWrapper, are cut at T = 500 steps as truncations (which brax's PPO masks out of its
advantages rather than treating as terminal).

Brax's own AutoResetWrapper restarts every finished episode from the *same* first state, which
would freeze one task and one layout per environment slot; `FreshResets` instead draws a new
episode with the slot's own key stream, so every episode of training has a fresh task and layout.

`train` runs brax's trainer with a checkpoint after every evaluation: a killed run resumes from
its last checkpoint (weights and normaliser; the optimiser's moments restart), a non-finite
weight stops it before the checkpoint is overwritten, and the same seed gives the same run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
import warnings
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State
from brax.envs.wrappers import training as brax_wrappers
from brax.training.agents.ppo import train as brax_ppo

import irl.envs
from irl.envs.ant_pinpad import N_JOINTS
from irl.experts import ant_expert
from irl.experts.ant_directions import direction_features, guidance, path_progress_reward
from irl.experts.ant_expert import EXPERT_OBS_SIZE, ExpertNetworks

EPISODE_METRICS = ("success", "failure", "visits")
# the expert's training reward: the paper's velocity along the current cell's path direction, or
# (ours) the rate at which the torso shortens its way along the path (ant_directions)
REWARDS = ("cell_direction", "path_progress")


def _replicate(tree, devices):
    """jax.device_put_replicated, removed in JAX 0.10 and still called by brax 0.14's trainer:
    a copy of every leaf on each device, stacked along a new leading axis."""
    sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("devices",)),
                                          jax.sharding.PartitionSpec("devices"))
    return jax.tree.map(lambda x: jax.device_put(jnp.stack([jnp.asarray(x)] * len(devices)), sharding), tree)


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # JAX 0.8-0.9 warn before removing it
    if not hasattr(jax, "device_put_replicated"):
        jax.device_put_replicated = _replicate


class DirectionFollowing(Env):
    """AntPinpad seen by the expert in training, as a (single-episode) brax environment."""

    def __init__(self, tasks: str = "pretrain", failure_penalty: float = 0.0, reward: str = "cell_direction",
                 speed_cap: float = 0.0):
        if reward not in REWARDS:
            raise ValueError(f"unknown expert reward {reward!r}; known: {', '.join(REWARDS)}")
        self.world, self.world_params = irl.envs.make("ant_pinpad", tasks=tasks)
        self.failure_penalty, self.reward, self.speed_cap = failure_penalty, reward, speed_cap

    def reset(self, rng: jax.Array) -> State:
        obs, world_state = self.world.reset(rng, self.world_params)
        features, _ = guidance(world_state)
        zero = jnp.zeros(())
        return State(pipeline_state=world_state, obs=jnp.concatenate([obs, features]), reward=zero, done=zero,
                     metrics={name: zero for name in EPISODE_METRICS})

    def step(self, state: State, action: jax.Array) -> State:
        before = state.pipeline_state
        obs, world_state, _, _, info = self.world.step(None, before, action, self.world_params)
        if self.reward == "path_progress":
            features = direction_features(world_state)
            reward = path_progress_reward(before, world_state, info["failure"])
        else:
            features, reward = guidance(world_state)
        if self.speed_cap > 0:
            reward = jnp.minimum(reward, self.speed_cap)
        ended = info["success"] | info["failure"]  # the time limit is the EpisodeWrapper's truncation
        metrics = dict(state.metrics,  # wrappers may keep their own entries here
                       success=info["success"].astype(jnp.float32), failure=info["failure"].astype(jnp.float32),
                       visits=(world_state.progress - before.progress).astype(jnp.float32))
        reward = reward - self.failure_penalty * info["failure"].astype(jnp.float32)
        return state.replace(pipeline_state=world_state, obs=jnp.concatenate([obs, features]), reward=reward,
                             done=ended.astype(jnp.float32), metrics=metrics)

    @property
    def observation_size(self) -> int:
        return EXPERT_OBS_SIZE

    @property
    def action_size(self) -> int:
        return N_JOINTS

    @property
    def backend(self) -> str:
        return "mjx"


class FreshResets(brax_wrappers.Wrapper):
    """Auto-reset that starts each finished episode anew from the slot's own key stream (brax's
    AutoResetWrapper replays the slot's first state). Wraps an EpisodeWrapper over a batch."""

    def reset(self, rng: jax.Array) -> State:
        state = self.env.reset(rng)
        state.info["reset_key"] = jax.vmap(lambda k: jax.random.fold_in(k, 1))(rng)
        return state

    def step(self, state: State, action: jax.Array) -> State:
        if "steps" in state.info:
            state.info.update(steps=jnp.where(state.done, jnp.zeros_like(state.info["steps"]), state.info["steps"]))
        state = self.env.step(state.replace(done=jnp.zeros_like(state.done)), action)
        keys = jax.vmap(jax.random.split)(state.info["reset_key"])
        fresh = self.env.reset(keys[:, 0])
        done = state.done.astype(bool)

        def pick(new, old):
            return jnp.where(done.reshape(done.shape + (1,) * (new.ndim - 1)), new, old)

        state.info["reset_key"] = keys[:, 1]
        return state.replace(pipeline_state=jax.tree.map(pick, fresh.pipeline_state, state.pipeline_state),
                             obs=pick(fresh.obs, state.obs))


def wrap_for_training(env: Env, episode_length: int, action_repeat: int = 1, randomization_fn=None) -> Env:
    """brax's training wrapper stack with FreshResets in place of AutoResetWrapper."""
    if randomization_fn is not None:
        raise ValueError("the ant expert is trained without domain randomisation")
    return FreshResets(brax_wrappers.EpisodeWrapper(brax_wrappers.VmapWrapper(env), episode_length, action_repeat))


@dataclasses.dataclass(frozen=True)
class ExpertTrainConfig:
    """brax PPO's settings for the ant expert (its locomotion defaults, T = 500)."""

    num_timesteps: int = 100_000_000
    num_envs: int = 4096
    batch_size: int = 2048  # transitions' rows (of unroll_length steps) per minibatch
    num_minibatches: int = 32
    unroll_length: int = 10
    num_updates_per_batch: int = 4
    learning_rate: float = 3e-4
    entropy_cost: float = 1e-2
    discounting: float = 0.97
    gae_lambda: float = 0.95
    reward_scaling: float = 1.0
    clipping_epsilon: float = 0.3
    max_grad_norm: float = 1.0
    episode_length: int = 500
    failure_penalty: float = 0.0  # (ours) subtracted from the reward of the step that fails the task
    reward: str = "cell_direction"  # one of REWARDS
    speed_cap: float = 0.0  # (ours) m/s: no step's reward above it, so speed past it earns nothing (0: none)
    init_from: str = ""  # an exported expert whose weights and normaliser start the run ("" = fresh)
    num_evals: int = 20
    num_eval_envs: int = 256
    seed: int = 0
    networks: ExpertNetworks = ExpertNetworks()

    def __post_init__(self):
        positive = ("num_timesteps", "num_envs", "batch_size", "num_minibatches", "unroll_length",
                    "num_updates_per_batch", "episode_length", "num_evals", "num_eval_envs")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ExpertTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "discounting", "reward_scaling", "clipping_epsilon", "max_grad_norm"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"ExpertTrainConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.discounting <= 1 or not 0 <= self.gae_lambda <= 1 or self.entropy_cost < 0:
            raise ValueError("need 0 < discounting <= 1, 0 <= gae_lambda <= 1 and entropy_cost >= 0")
        if self.failure_penalty < 0 or self.speed_cap < 0:
            raise ValueError(f"ExpertTrainConfig.failure_penalty and speed_cap must be >= 0, got "
                             f"{self.failure_penalty}, {self.speed_cap}")
        if self.reward not in REWARDS:
            raise ValueError(f"ExpertTrainConfig.reward must be one of {REWARDS}, got {self.reward!r}")
        if (self.batch_size * self.num_minibatches) % self.num_envs:
            raise ValueError(f"batch_size * num_minibatches ({self.batch_size * self.num_minibatches}) must be "
                             f"a multiple of num_envs ({self.num_envs}), as brax's PPO requires")
        if self.num_envs % jax.local_device_count():
            raise ValueError(f"num_envs {self.num_envs} must divide over {jax.local_device_count()} devices")

    @property
    def steps_per_update(self) -> int:
        return self.batch_size * self.num_minibatches * self.unroll_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExpertTrainConfig":
        d = dict(d)
        networks = ExpertNetworks(**{k: tuple(v) for k, v in d.pop("networks", {}).items()})
        return cls(networks=networks, **d)


PRESETS = {
    # brax's MJX-ant PPO settings; about 10 minutes for 100M steps on one H100/H200
    "gpu": dict(num_timesteps=150_000_000, num_envs=4096, batch_size=2048, num_minibatches=32, unroll_length=5,
                num_evals=30),
    # the same, scaled to a 2-core CPU (about 10k steps/s)
    "cpu": dict(num_timesteps=30_000_000, num_envs=512, batch_size=256, num_minibatches=16, unroll_length=5,
                num_evals=30),
    # (ours) the GPU run continued from an exported expert, with the task's failures penalised
    # and less entropy regularisation (pass --init_from)
    "gpu-finetune": dict(num_timesteps=300_000_000, num_envs=4096, batch_size=2048, num_minibatches=32,
                         unroll_length=5, num_evals=40, failure_penalty=10.0, entropy_cost=1e-3),
    # (ours) the same continued on the path-progress reward, with a larger failure penalty and
    # speed past 1.5 m/s unpaid
    "gpu-path-progress": dict(num_timesteps=300_000_000, num_envs=4096, batch_size=2048, num_minibatches=32,
                              unroll_length=5, num_evals=40, entropy_cost=1e-3, reward="path_progress",
                              failure_penalty=30.0, speed_cap=1.5),
    # seconds: for tests of the machinery
    "tiny": dict(num_timesteps=2_560, num_envs=16, batch_size=16, num_minibatches=2, unroll_length=5, num_evals=2,
                 num_eval_envs=4, networks=ExpertNetworks((16, 16), (16, 16))),
}


def preset(name: str, **overrides) -> ExpertTrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown ant expert preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return ExpertTrainConfig(**{**PRESETS[name], **overrides})


def _finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(tree)
               if np.issubdtype(np.asarray(x).dtype, np.floating))


def save_checkpoint(directory: Path, params, networks: ExpertNetworks, steps: int, seed: int) -> None:
    """Overwrite the checkpoint in directory, unless params hold a NaN or an infinity: then
    raise, and the last good checkpoint stays."""
    if not _finite(params):
        raise FloatingPointError(f"non-finite weights at {steps:,} steps; the last good checkpoint in "
                                 f"{directory} is kept")
    ant_expert.save(directory, params, networks, {"steps": steps, "seed": seed})


class _OutOfTime(Exception):
    pass


def starting_point(cfg: ExpertTrainConfig, latest: Path) -> tuple[int, object, str]:
    """(steps done, the (normaliser, policy, value) to start from or None for fresh weights,
    a line saying which): the run's last checkpoint `latest`, else cfg.init_from's expert."""
    if (latest / ant_expert.META_FILE).exists():
        previous = ant_expert.AntExpert.load(latest)
        return int(previous.meta["steps"]), previous.params, f"resuming from {latest} at {previous.meta['steps']:,} steps"
    if not cfg.init_from:
        return 0, None, "starting from fresh weights"
    start_from = ant_expert.AntExpert.load(cfg.init_from)
    if start_from.networks != cfg.networks:
        raise ValueError(f"the expert in {cfg.init_from} has networks {start_from.networks}, the config {cfg.networks}")
    return 0, start_from.params, f"starting from the expert in {cfg.init_from} ({start_from.meta['steps']:,} steps)"


def train(cfg: ExpertTrainConfig, workdir: str | Path, max_seconds: float | None = None,
          log: Callable[[str], None] = print, environment: Env | None = None):
    """Train (or resume) in workdir: `latest/` holds the newest checkpoint (an ant_expert
    directory), `metrics.jsonl` one line per evaluation. Returns ((normaliser, policy, value),
    finished): finished is False when max_seconds stopped the run after a checkpoint (run it
    again to go on). A run whose checkpoint already reached num_timesteps returns it as is.
    environment: what to train in, DirectionFollowing on the pretraining tasks with cfg's
    reward unless given (any brax Env of the expert's observation and action sizes, with
    EPISODE_METRICS among its metrics)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "train_config.json"
    if config_path.exists():
        saved = ExpertTrainConfig.from_dict(json.loads(config_path.read_text()))
        if saved != cfg:
            raise ValueError(f"{workdir} holds a run with another config; use a new workdir. saved: {saved}")
    latest = workdir / "latest"
    done_steps, restore, where = starting_point(cfg, latest)
    config_path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    log(where)
    remaining = cfg.num_timesteps - done_steps
    if remaining <= 0:
        return restore, True
    start = time.time()
    evals_left = max(1, math.ceil(cfg.num_evals * remaining / cfg.num_timesteps))

    def on_params(step, make_policy, params):
        del make_policy
        save_checkpoint(latest, params, cfg.networks, done_steps + int(step), cfg.seed)

    def on_progress(step, metrics):
        row = {"steps": done_steps + int(step), "seconds": round(time.time() - start, 1),
               **{k: float(v) for k, v in metrics.items()}}
        with open(workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        log(f"{row['steps']:>12,} steps {row['seconds']:7.0f}s  "
            + "  ".join(f"{name} {row.get(f'eval/episode_{name}', float('nan')):.3f}" for name in EPISODE_METRICS)
            + f"  reward {row.get('eval/episode_reward', float('nan')):.1f}")
        # never at step 0: brax reports the first evaluation before the first checkpoint is written
        if max_seconds is not None and time.time() - start > max_seconds and 0 < step \
                and row["steps"] < cfg.num_timesteps:
            raise _OutOfTime

    if environment is None:
        environment = DirectionFollowing("pretrain", cfg.failure_penalty, cfg.reward, cfg.speed_cap)
    try:
        _, params, _ = brax_ppo.train(
            environment=environment,
            num_timesteps=remaining,
            wrap_env_fn=wrap_for_training,
            num_envs=cfg.num_envs,
            episode_length=cfg.episode_length,
            learning_rate=cfg.learning_rate,
            entropy_cost=cfg.entropy_cost,
            discounting=cfg.discounting,
            gae_lambda=cfg.gae_lambda,
            unroll_length=cfg.unroll_length,
            batch_size=cfg.batch_size,
            num_minibatches=cfg.num_minibatches,
            num_updates_per_batch=cfg.num_updates_per_batch,
            normalize_observations=True,
            reward_scaling=cfg.reward_scaling,
            clipping_epsilon=cfg.clipping_epsilon,
            max_grad_norm=cfg.max_grad_norm,
            network_factory=functools.partial(_network_factory, cfg.networks),
            seed=cfg.seed + done_steps,  # a resumed run draws new data, deterministically
            num_evals=evals_left + 1,
            num_eval_envs=cfg.num_eval_envs,
            deterministic_eval=True,
            progress_fn=on_progress,
            policy_params_fn=on_params,
            restore_params=restore,
        )
    except _OutOfTime:
        log(f"stopped after {max_seconds:.0f} s; the same command resumes from {latest}")
        return ant_expert.AntExpert.load(latest).params, False
    return params, True


def _network_factory(networks: ExpertNetworks, observation_size, action_size, preprocess_observations_fn):
    """brax's network_factory signature over our ExpertNetworks (sizes fixed by the expert)."""
    if tuple(np.atleast_1d(observation_size)) != (EXPERT_OBS_SIZE,) or action_size != N_JOINTS:
        raise ValueError(f"expert networks take {EXPERT_OBS_SIZE} -> {N_JOINTS}, got {observation_size} -> {action_size}")
    return networks.build()
