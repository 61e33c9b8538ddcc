"""The learner: every method, one jitted program, seeds as batch axes.

`make_train(config, method, source)` returns a `Learner` whose `chunk(state)` runs
`config.train.chunk_updates` PPO updates (collect a batch of episodes from `train.batch`
episode slots, then PPO epochs on it) for every run at once: runs are [models, rl_seeds],
pretrained models x RL seeds per model, two vmapped axes (the frozen models vmap over the first only). Every random draw is keyed by
(run key, update index), so `irl.training.run` resumes a run exactly.

Methods differ only in what they act with:
- "internal", "beta1", "cotrained": internal RL on a `Discovered` (the metacontroller, its
  beta=1 baseline, the co-trained one); the policy is irl.rl.policy over latent codes;
- "raw_action": the pretrained base model itself on primitive actions (irl.rl.raw_env).
With `train.rollout_steps` > T a slot plays episodes back to back (InternalEnv.rollout), in
every method; curves count the episodes played (the "episodes" metric of every update).
Rewards come from the post-training task only (`envs.make(env, tasks="post")`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

import irl.envs as envs
from irl import spaces
from irl.control.discovered import Discovered
from irl.models.base import BaseModel
from irl.rl import policy, ppo, raw_env
from irl.rl.common import compact, episode_sums
from irl.rl.internal_env import InternalEnv
from irl.spaces import CategoricalActions

INTERNAL_METHODS = ("internal", "beta1", "cotrained")
METHODS = INTERNAL_METHODS + ("raw_action",)


@dataclasses.dataclass(frozen=True)
class PretrainedModels:
    """What the raw-action baseline starts from: a base model and its params [models, ...]."""
    model: BaseModel
    base_params: dict


@dataclasses.dataclass(frozen=True)
class Agent:
    """What a method contributes to the shared learner (all pure, one run, unbatched params).

    init_policy(key, frozen) -> policy params
    collect(params, frozen, key) -> (batch {"log_prob_old" [B, K], "mask" [B, K], "episode" [B, K],
                                            "returns" [B, E], "played" [B, E], ...} (irl.rl.ppo.update),
                                     stats {name: scalar}, "episodes" among them)
    log_prob(params, frozen, minibatch) -> [b, K]
    """
    init_policy: Callable
    collect: Callable
    log_prob: Callable


def _episodes(episode: jax.Array, reward: jax.Array, ended: jax.Array, steps: int, limit: int) -> dict:
    """The PPO batch's per-episode part, from per-step arrays [B, S]: "returns" and "played"
    [B, E], E = S - T + 1 being the most episodes a slot can play."""
    most = steps - limit + 1
    return {"returns": episode_sums(episode, reward, most),
            "played": episode_sums(episode, ended.astype(jnp.int32), most) > 0}


def internal_agent(env: InternalEnv, cfg: policy.PolicyConfig, slots: int, steps: int | None = None) -> Agent:
    """Internal RL over `slots` episode slots of `steps` raw steps each (default T: one
    episode per slot; more: each slot plays episodes back to back, see InternalEnv.rollout)."""
    steps = env.max_steps if steps is None else steps

    def collect(params, frozen, key):
        decide = lambda state, e, keys: policy.step(params, cfg, state, e, keys)
        traj, _ = env.rollout(frozen, key, slots, decide, policy.initial_state(cfg, (slots,)), steps=steps)
        at_decisions = lambda x: compact(traj.decision, x)
        data = {
            "e": at_decisions(traj.e),
            "z": at_decisions(traj.z),
            "log_prob_old": at_decisions(traj.log_prob),
            "episode": at_decisions(traj.episode),
            "mask": jnp.arange(steps)[None] < traj.decision.sum(1)[:, None],
            **_episodes(traj.episode, traj.reward, traj.ended, steps, env.max_steps),
        }
        return data, _episode_stats(traj.ended, traj.succeeded, traj.alive, traj.end_progress, traj.decision)

    return Agent(
        init_policy=lambda key, frozen: policy.init(key, cfg),
        collect=collect,
        log_prob=lambda params, frozen, mb: policy.sequence_log_prob(params, cfg, mb["e"], mb["z"], mb["episode"]),
    )


def raw_action_agent(model: BaseModel, env, env_params, slots: int, action_space=CategoricalActions(),
                     steps: int | None = None) -> Agent:
    """RL on the base model's primitive actions over `slots` episode slots of `steps` raw steps
    (as internal_agent's)."""
    limit = int(env_params.time_limit)
    steps = limit if steps is None else steps

    def collect(params, frozen, key):
        eps = raw_env.rollout(model, params, env, env_params, key, slots, action_space=action_space, steps=steps)
        data = {"obs": eps.obs, "actions": eps.actions, "log_prob_old": eps.log_prob, "mask": eps.alive,
                "episode": eps.episode, **_episodes(eps.episode, eps.reward, eps.ended, steps, limit)}
        return data, _episode_stats(eps.ended, eps.succeeded, eps.alive, eps.end_progress, eps.alive)

    return Agent(
        init_policy=lambda key, frozen: frozen["base"],  # fine-tune the pretrained model itself
        collect=collect,
        log_prob=lambda params, frozen, mb: raw_env.log_prob(model, params, mb["obs"], mb["actions"], action_space,
                                                             mb["episode"]),
    )


def _episode_stats(ended, succeeded, steps, progress, decisions) -> dict:
    """Means per episode played, from per-step arrays [B, S]: `ended` marks each episode once;
    the others are summed over the batch."""
    n = ended.sum()
    per_episode = lambda x: x.sum() / jnp.maximum(n, 1)
    return {"episodes": n.astype(jnp.float32), "success": per_episode(succeeded), "length": per_episode(steps),
            "progress": per_episode(progress), "decisions": per_episode(decisions)}


def ppo_config(config: ml_collections.ConfigDict, method: str) -> ppo.PPOConfig:
    c = config.ppo
    return ppo.PPOConfig(lr=c.raw_action_lr if method == "raw_action" else c.lr, weight_decay=c.weight_decay,
                         clip=c.clip, epochs=c.epochs, minibatches=c.minibatches, grad_clip=c.grad_clip)


def rollout_steps(config: ml_collections.ConfigDict) -> int:
    """Raw steps each slot runs per update: train.rollout_steps, or (0) the time limit T, one
    episode per slot."""
    limit = int(envs.make(config.env, tasks="post")[1].time_limit)
    steps = config.train.rollout_steps
    if steps and steps < limit:
        raise ValueError(f"bad rl config: train.rollout_steps must be 0 or >= the time limit {limit}, got {steps}")
    return steps or limit


def validate(config: ml_collections.ConfigDict) -> None:
    """Clear errors for bad RL configs, before any compute."""
    def need(ok, message):
        if not ok:
            raise ValueError(f"bad rl config: {message}")

    need(config.env in envs.ENV_NAMES, f"env must be one of {envs.ENV_NAMES}, got {config.env!r}")
    need(len(config.methods) > 0, "methods must not be empty")
    unknown = [m for m in config.methods if m not in METHODS]
    need(not unknown, f"unknown methods {unknown}; known: {METHODS}")
    need(config.rl_seeds >= 1, f"rl_seeds must be >= 1, got {config.rl_seeds}")
    need(config.models >= 0, f"models must be >= 0 (0: every pretrained model), got {config.models}")
    t = config.train
    need(t.updates >= 1 and t.chunk_updates >= 1, "train.updates and train.chunk_updates must be >= 1")
    need(t.updates % t.chunk_updates == 0, f"train.updates {t.updates} must be a multiple of chunk_updates {t.chunk_updates}")
    need(t.rollout_steps >= 0, f"train.rollout_steps must be >= 0 (0: the time limit), got {t.rollout_steps}")
    if t.rollout_steps and config.env in envs.ENV_NAMES:
        rollout_steps(config)  # at least the time limit
    for method in config.methods:
        try:
            ppo_config(config, method).check_batch(t.batch)
        except ValueError as error:
            need(False, str(error))
    p = config.policy
    need(p.width >= 1 and p.n_heads >= 1 and p.mlp_width >= 1, "policy width, n_heads, mlp_width must be >= 1")
    need(p.width % p.n_heads == 0, f"policy.width {p.width} must be divisible by policy.n_heads {p.n_heads}")


@dataclasses.dataclass
class Learner:
    """init_state() -> state {"policy", "opt_state" [models, rl_seeds, ...], "run_keys", "step",
    "elapsed"}; chunk(state) -> (state, metrics {name: [chunk_updates, models, rl_seeds]})."""
    config: ml_collections.ConfigDict
    method: str
    agent: Agent
    frozen: dict  # [models, ...]
    optimizer: object
    ppo_cfg: ppo.PPOConfig
    internal_env: InternalEnv | None = None
    policy_cfg: policy.PolicyConfig | None = None
    program: Callable | None = None  # the jitted chunk, once built (share_programs may hand it on)

    @property
    def models(self) -> int:
        return jax.tree.leaves(self.frozen)[0].shape[0]

    @property
    def runs(self) -> int:
        return self.models * self.config.rl_seeds

    def paid_steps_per_update(self) -> int:
        """Raw steps per update and run the fixed-shape rollout pays for: slots x steps."""
        return self.config.train.batch * rollout_steps(self.config)

    def _run_keys(self):
        seeds = self.config.rl_seeds
        keys = jax.random.split(jax.random.key(self.config.seed), self.models * seeds).reshape(self.models, seeds)
        init_keys, loop_keys = jax.vmap(jax.vmap(lambda k: tuple(jax.random.split(k))))(keys)
        return init_keys, loop_keys

    def init_state(self) -> dict:
        init_keys, loop_keys = self._run_keys()
        init_one_model = jax.vmap(self.agent.init_policy, in_axes=(0, None))
        params = jax.vmap(init_one_model)(init_keys, self.frozen)
        return {
            "policy": params,
            "opt_state": jax.vmap(jax.vmap(self.optimizer.init))(params),
            "run_keys": jax.random.key_data(loop_keys),
            "step": jnp.int32(0),
            "elapsed": jnp.float32(0.0),
        }

    def _update(self, params, opt_state, run_key, frozen, step):
        collect_key, update_key = jax.random.split(jax.random.fold_in(run_key, step))
        batch, stats = self.agent.collect(params, frozen, collect_key)
        log_prob_fn = lambda p, minibatch: self.agent.log_prob(p, frozen, minibatch)
        params, opt_state, ppo_stats = ppo.update(params, opt_state, batch, log_prob_fn, self.optimizer, self.ppo_cfg,
                                                  update_key)
        return params, opt_state, {**stats, **ppo_stats}

    def train(self):
        """The jitted (state, frozen) -> (state, metrics) over one chunk of updates."""
        per_model = jax.vmap(self._update, in_axes=(0, 0, 0, None, None))
        all_runs = jax.vmap(per_model, in_axes=(0, 0, 0, 0, None))

        @jax.jit
        def train(state, frozen):
            keys = jax.random.wrap_key_data(state["run_keys"])

            def body(carry, _):
                params, opt_state, step = carry
                params, opt_state, metrics = all_runs(params, opt_state, keys, frozen, step)
                return (params, opt_state, step + 1), metrics

            (params, opt_state, step), metrics = jax.lax.scan(
                body, (state["policy"], state["opt_state"], state["step"]), length=self.config.train.chunk_updates)
            return dict(state, policy=params, opt_state=opt_state, step=step), metrics

        return train

    def program_key(self) -> tuple | None:
        """Everything the chunk's program depends on besides its arguments (the state and the
        frozen params): learners with equal keys run the same compiled program. None for
        raw_action, whose program is its own."""
        if self.internal_env is None:
            return None
        env = self.internal_env
        gate = dataclasses.replace(env.mc_cfg, force_beta_one=False)  # data in `frozen`, see InternalEnv
        return (self.config.env, tuple(sorted(self.config.train.items())), self.ppo_cfg, self.policy_cfg, env.model,
                gate, env.layer, env.greedy, env.action_space)

    def chunk_fn(self):
        if self.program is None:
            self.program = self.train()
        return lambda state: self.program(state, self.frozen)


def share_programs(learners: list[Learner]) -> None:
    """Give learners of equal program_key one jitted chunk, so that it compiles once (internal
    RL, its beta = 1 baseline and the co-trained baseline, on models of one shape)."""
    programs = {}
    for learner in learners:
        key = learner.program_key()
        if key is not None:
            learner.program = programs.setdefault(key, learner.program or learner.train())


def _first_models(tree, n: int):
    return tree if n == 0 else jax.tree.map(lambda x: x[:n], tree)


def make_train(config: ml_collections.ConfigDict, method: str, source: Discovered | PretrainedModels) -> Learner:
    """The learner of `method` on `source` (a Discovered for the internal methods, the
    pretrained models for raw_action); config: experiments/configs/grid.py rl_config."""
    validate(config)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {METHODS}")
    env, post_params = envs.make(config.env, tasks="post")
    action_space = spaces.for_env(config.env)[0]
    ppo_cfg = ppo_config(config, method)
    optimizer = ppo.make_optimizer(ppo_cfg)
    batch = config.train.batch
    if method == "raw_action":
        frozen = {"base": _first_models(source.base_params, config.models)}
        agent = raw_action_agent(source.model, env, post_params, batch, action_space, rollout_steps(config))
        return Learner(config, method, agent, frozen, optimizer, ppo_cfg)
    if not isinstance(source, Discovered):
        raise ValueError(f"method {method!r} needs a Discovered (base model + metacontroller), got {type(source).__name__}")
    internal_env = InternalEnv.from_discovered(source, env, post_params, action_space=action_space)
    p = config.policy
    policy_cfg = policy.PolicyConfig(input_width=source.model.width, latent_dim=source.mc_cfg.latent_dim,
                                     width=p.width, n_heads=p.n_heads, mlp_width=p.mlp_width,
                                     init_log_std=p.init_log_std)
    frozen = _first_models(InternalEnv.frozen_params(source), config.models)
    agent = internal_agent(internal_env, policy_cfg, batch, rollout_steps(config))
    return Learner(config, method, agent, frozen, optimizer, ppo_cfg, internal_env, policy_cfg)
