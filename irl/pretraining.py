"""Pretraining the base model on expert behaviour (SPEC.md section 4).

loss = mean over real steps of [ -log p(a_t | o_1..t) - lambda * log p(o_t+1 | o_1..t) ],
with the likelihoods of the environment's spaces (irl/spaces.py: softmax moves and the grid's
object categoricals; Gaussian torques with learned variance and a unit-variance Gaussian
observation on the ant).

The observation likelihood for the grid ("grid_objects", ours): each of the 13 one-hot
channels (8 colours, 4 walls, the agent) marks exactly one cell, so p(o_t+1) is a product of
13 categoricals over the 49 cells, one per channel (the obs head's 637 logits, read as
[49 cells, 13 channels]). This is exact for every valid observation, unlike a per-cell
categorical, which cannot express the agent standing on a colour.

`Pretrainer(config)` builds everything from a config (experiments/configs/grid.py, ant.py): the
model, the data (GridPinpad: a jitted generator drawing fresh expert episodes every step;
AntPinpad: a set of the shipped expert's episodes made once, irl/ant_data.py, drawn from),
AdamW, and the pure `chunk` that runs `chunk_steps` steps for every seed at once (seeds are a
vmapped axis).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import optax

import irl.envs as envs
from irl import ant_data, spaces
from irl.data import LABELS, TokenBatch, episode_tokens, make_expert_data, pack_episodes
from irl.models.base import BaseModel, make_base_model
from irl.rollout import run_base_model

SCHEDULES = ("constant", "cosine")
ENVS = ("grid_pinpad", "ant_pinpad")
MAX_EPISODE_STEPS = {"grid_pinpad": 100, "ant_pinpad": 500}

grid_obs_nll = spaces.GridObjectsObs().nll  # [..., 637] logits, one-hot target -> [...] nats


def sequence_loss(model: BaseModel, params, tokens: TokenBatch, obs_coef: float,
                  action_space=spaces.CategoricalActions(), obs_space=spaces.GridObjectsObs()):
    """Scalar loss and metrics over the real tokens of a TokenBatch: action_nll, obs_nll, the
    action space's agreement metric (accuracy, or the torques' mse) and the token count."""
    action_out, obs_out = model.forward(params, tokens.obs, tokens.segments)
    weight = tokens.mask.astype(jnp.float32)
    n = jnp.maximum(weight.sum(), 1.0)
    mean = lambda x: (x * weight).sum() / n
    metrics = {
        "action_nll": mean(action_space.nll(action_out, tokens.actions)),
        "obs_nll": mean(obs_space.nll(obs_out, tokens.next_obs)),
        action_space.metric: mean(action_space.agreement(action_out, tokens.actions)),
        "tokens": weight.sum(),
    }
    return metrics["action_nll"] + obs_coef * metrics["obs_nll"], metrics


def model_from_config(model_cfg: ml_collections.ConfigDict) -> BaseModel:
    fields = dict(model_cfg)
    return make_base_model(fields.pop("arch"), **fields)


def make_optimizer(optim: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
    if optim.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {optim.schedule!r}")
    if optim.schedule == "constant":
        lr = optax.join_schedules(
            [optax.linear_schedule(0.0, optim.lr, max(optim.warmup_steps, 1)), optax.constant_schedule(optim.lr)],
            [optim.warmup_steps],
        ) if optim.warmup_steps else optim.lr
    else:
        lr = optax.warmup_cosine_decay_schedule(
            0.0, optim.lr, max(optim.warmup_steps, 1), total_steps, end_value=optim.lr * optim.final_lr_fraction
        )
    mask = None if optim.get("decay_biases", True) else decayed_weights
    adamw = optax.adamw(lr, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay, mask=mask)
    return optax.chain(optax.clip_by_global_norm(optim.grad_clip), adamw) if optim.grad_clip else adamw


NOT_DECAYED = ("b", "bias", "scale")  # biases and normalisation gains


def decayed_weights(params):
    """Weight-decay mask (`optim.decay_biases=False`) that leaves biases and normalisation
    gains alone."""
    return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) not in NOT_DECAYED, params)


def validate(config: ml_collections.ConfigDict) -> None:
    """Clear errors for bad configs, before any compute."""
    def need(ok, message):
        if not ok:
            raise ValueError(f"bad pretraining config: {message}")

    need(config.env in ENVS, f"env must be one of {ENVS}, got {config.env!r}")
    need(config.seeds >= 1, f"seeds must be >= 1, got {config.seeds}")
    data, train, optim = config.data, config.train, config.optim
    need(data.batch >= 1, f"data.batch must be >= 1, got {data.batch}")
    need(0.0 <= data.eps <= 1.0, f"data.eps must be in [0, 1], got {data.eps}")
    need(data.get("labels", "taken") in LABELS, f"data.labels must be one of {LABELS}, got {data.get('labels')!r}")
    longest = MAX_EPISODE_STEPS[config.env]
    need(1 <= data.max_episode_steps <= longest, f"data.max_episode_steps must be in 1..{longest}, got {data.max_episode_steps}")
    if config.env == "ant_pinpad":
        need(data.pack_length == 0, "data.pack_length must be 0 on the ant (one episode per row)")
        need(data.eps == 0.0 and data.get("labels", "taken") == "taken", "the ant's data has no eps-noise or labels")
        need(data.episodes >= 1, f"data.episodes must be >= 1, got {data.episodes}")
    need(data.pack_length >= 0, f"data.pack_length must be >= 0 (0: one episode per row), got {data.pack_length}")
    need(data.episodes_per_row >= 1, f"data.episodes_per_row must be >= 1, got {data.episodes_per_row}")
    need(train.steps >= 1 and train.chunk_steps >= 1, "train.steps and train.chunk_steps must be >= 1")
    need(train.steps % train.chunk_steps == 0, f"train.steps {train.steps} must be a multiple of chunk_steps {train.chunk_steps}")
    need(train.eval_every % train.chunk_steps == 0, f"train.eval_every must be a multiple of chunk_steps {train.chunk_steps}")
    need(optim.lr > 0 and optim.weight_decay >= 0, "optim.lr must be > 0 and optim.weight_decay >= 0")
    need(optim.schedule in SCHEDULES, f"optim.schedule must be one of {SCHEDULES}, got {optim.schedule!r}")
    need(0 <= optim.warmup_steps < train.steps, f"optim.warmup_steps must be in 0..train.steps-1, got {optim.warmup_steps}")
    need(config.loss.obs_coef >= 0, f"loss.obs_coef must be >= 0, got {config.loss.obs_coef}")
    need(config.eval.episodes >= 1, f"eval.episodes must be >= 1, got {config.eval.episodes}")
    need(config.eval.get("max_steps", 0) >= 0, "eval.max_steps must be >= 0 (0: the environment's time limit)")
    need(config.model.arch in ("transformer", "hawk"), f"model.arch must be transformer or hawk, got {config.model.arch!r}")
    model = model_from_config(config.model).cfg  # the model's own checks (sizes, encoder)
    head, env_obs = spaces.for_env(config.env)[0].head_size, envs.obs_size(config.env)
    need(model.n_actions == head, f"model.n_actions must be {head} for {config.env} (the action head's outputs), "
                                  f"got {model.n_actions}")
    need(model.obs_size == env_obs, f"model.obs_size must be {env_obs} for {config.env}, got {model.obs_size}")


def flops_per_token(model: BaseModel, context: int) -> float:
    """Training FLOPs per token (3x the forward's matmuls; the gather-based embedding is free):
    the blocks' matmuls (for the transformer, attention scores and mixing at `context` too)
    and the heads."""
    cfg = model.cfg
    if model.arch == "transformer":
        inner = cfg.n_heads * cfg.head_dim
        per_layer = 2 * (4 * cfg.width * inner + 2 * cfg.width * cfg.mlp_width) + 2 * 2 * context * inner
    else:  # hawk: gate, input and output projections, block-diagonal RG-LRU gates, MLP
        per_layer = 2 * (3 * cfg.width**2 + 2 * cfg.width**2 // cfg.n_heads + 2 * cfg.width * cfg.mlp_width)
    embed = 2 * cfg.obs_size * cfg.width if cfg.encoder == "linear" else 0
    heads = 2 * cfg.width * (cfg.n_actions + cfg.obs_size)
    return 3.0 * (cfg.n_layers * per_layer + embed + heads)


@dataclasses.dataclass
class Pretrainer:
    config: ml_collections.ConfigDict
    workdir: str | None = None  # the ant's episode sets are saved there once, and read back

    def __post_init__(self):
        validate(self.config)
        c = self.config
        self.model = model_from_config(c.model)
        self.env, self.env_params = envs.make(c.env)
        self.action_space, self.obs_space = spaces.for_env(c.env)
        self.optimizer = make_optimizer(c.optim, c.train.steps)
        data = c.data
        self.packed = data.pack_length > 0
        self.row_length = data.pack_length if self.packed else data.max_episode_steps
        # the ant's episode sets of sampled torques (training, held out), made once; None on the grid
        self.dataset, self.held_out = self._ant_datasets(mean_action=False) if c.env == "ant_pinpad" else (None, None)
        n_episodes = data.batch * (data.episodes_per_row if self.packed else 1)
        self.training_tokens = self.token_batches(n_episodes, data.max_episode_steps)

    @functools.cached_property
    def mean_action_sets(self):
        """The ant's episode sets of the expert's mean action (training, held out; the
        metacontroller's data, SPEC.md section 3), as many as the sampled ones, made the first
        time a later stage asks (None on the grid, whose expert has no mean action)."""
        return self._ant_datasets(mean_action=True) if self.held_out is not None else None

    def _ant_datasets(self, mean_action: bool):
        from irl.experts.ant_expert import AntExpert

        c = self.config
        expert = AntExpert.load(c.data.expert) if c.data.get("expert") else AntExpert.load()
        key = jax.random.key(c.seed + (8 if mean_action else 7))
        n_episodes = c.data.episodes + c.eval.episodes
        make = lambda: ant_data.make_dataset(expert, n_episodes, key, deterministic=mean_action)  # noqa: E731
        if self.workdir is None:
            episodes = make()
        else:
            meta = dict(seed=c.seed, episodes=n_episodes, expert=c.data.get("expert") or "shipped")
            name = "ant_episodes_mean_action.npz" if mean_action else "ant_episodes.npz"
            episodes = ant_data.load_or_make(Path(self.workdir) / name, meta, make)
        split = lambda lo, hi: jax.tree.map(lambda x: x[lo:hi], episodes)
        return split(0, c.data.episodes), split(c.data.episodes, None)

    def expert_data(self, batch_size: int, max_steps: int | None = None, mean_action: bool = False):
        """key -> expert episodes as this model was trained on them (the grid: fresh ones with
        its eps and labels; the ant: drawn from its training set), for pretraining and every
        later stage that trains on the model's data (held-out measures: `held_out_data`).
        mean_action: on the ant, the mean-action set instead (the metacontroller's data)."""
        data = self.config.data
        if self.dataset is not None:
            return self._draws(self.mean_action_sets[0] if mean_action else self.dataset, batch_size, max_steps)
        return make_expert_data(self.env, self.env_params, batch_size, data.eps, max_steps, data.get("labels", "taken"))

    def held_out_data(self, batch_size: int, max_steps: int | None = None, mean_action: bool = False):
        """key -> expert episodes the model never trained on, for held-out measures: on the ant,
        batch_size distinct ones of the `eval.episodes` kept apart from its training set (a
        ValueError here, as a stage sets up its measures, where that is too few; mean_action:
        of the mean-action set's); on the grid, fresh episodes, as `expert_data`."""
        if self.held_out is None:
            return self.expert_data(batch_size, max_steps)
        kept = int(self.held_out.length.shape[0])
        if batch_size > kept:
            raise ValueError(f"a held-out measure of {batch_size} episodes needs as many kept apart, and this "
                             f"model's pretraining config kept eval.episodes={kept}: measure on fewer, or "
                             "pretrain with more kept apart")
        held_out = self.mean_action_sets[1] if mean_action else self.held_out
        return self._draws(held_out, batch_size, max_steps, distinct=True)

    def _draws(self, episodes, batch_size: int, max_steps: int | None, distinct: bool = False):
        """key -> batch_size episodes drawn from one of the ant's saved sets (ant_data.draw)."""
        steps = self.config.data.max_episode_steps if max_steps is None else max_steps
        return lambda key, episodes=episodes: ant_data.draw(episodes, key, batch_size, steps, distinct)

    def token_batches(self, n_episodes: int, max_steps: int | None = None):
        """key -> `n_episodes` expert episodes (`expert_data`) laid out in rows as this model
        was trained on them: packed `episodes_per_row` to a row of `pack_length` tokens where
        pretraining packs (a later stage then pays for real steps, not padding), else one
        episode per row padded to `max_steps`."""
        episodes = self.expert_data(n_episodes, max_steps)
        if not self.packed:
            return lambda key: episode_tokens(episodes(key))
        per_row = self.config.data.episodes_per_row
        if n_episodes % per_row:
            raise ValueError(f"{n_episodes} episodes do not pack {per_row} to a row (data.episodes_per_row of the "
                             f"pretrained model): use a multiple of {per_row}")
        return lambda key: pack_episodes(episodes(key), n_episodes // per_row, self.config.data.pack_length)

    def tokens(self, key: jax.Array, dataset=None) -> TokenBatch:
        """A fresh training batch [batch, row_length] for one seed (dataset: the ant's set,
        passed in rather than closed over, so that it is an argument of the jitted chunk)."""
        if dataset is not None:
            return episode_tokens(ant_data.draw(dataset, key, self.config.data.batch, self.config.data.max_episode_steps))
        return self.training_tokens(key)

    def init_state(self) -> dict:
        seeds = self.config.seeds
        keys = jax.random.split(jax.random.key(self.config.seed), seeds)
        params = jax.vmap(self.model.init)(jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys))
        return {
            "params": params,
            "opt_state": jax.vmap(self.optimizer.init)(params),
            "seed_keys": jax.random.key_data(keys),
            "step": jnp.int32(0),
            "elapsed": jnp.float32(0.0),
        }

    def loss(self, params, tokens: TokenBatch, obs_coef: float):
        return sequence_loss(self.model, params, tokens, obs_coef, self.action_space, self.obs_space)

    def update(self, params, opt_state, tokens: TokenBatch):
        """One optimiser step of one seed on a given batch: (params, opt_state, metrics)."""
        grad_fn = jax.value_and_grad(lambda p: self.loss(p, tokens, self.config.loss.obs_coef), has_aux=True)
        (loss, metrics), grads = grad_fn(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        return optax.apply_updates(params, updates), opt_state, metrics

    def _seed_step(self, params, opt_state, seed_key, step, dataset):
        key = jax.random.fold_in(jax.random.fold_in(seed_key, 1), step)
        return self.update(params, opt_state, self.tokens(key, dataset))

    def _all_seeds_step(self, params, opt_state, keys, step, dataset):
        """One step of every seed (a vmapped axis). A single seed is stepped without the vmap,
        whose size-1 batch axis costs XLA's CPU backend about 4% of a paper-size step."""
        if self.config.seeds > 1:
            return jax.vmap(self._seed_step, in_axes=(0, 0, 0, None, None))(params, opt_state, keys, step, dataset)
        first = lambda tree: jax.tree.map(lambda x: x[0], tree)
        out = self._seed_step(first(params), first(opt_state), keys[0], step, dataset)
        return jax.tree.map(lambda x: x[None], out)

    def chunk_fn(self):
        """jitted state -> (state, metrics [chunk_steps, seeds])."""
        def chunk(state, dataset):
            keys = jax.random.wrap_key_data(state["seed_keys"])

            def body(carry, _):
                params, opt_state, step = carry
                params, opt_state, metrics = self._all_seeds_step(params, opt_state, keys, step, dataset)
                return (params, opt_state, step + 1), metrics

            (params, opt_state, step), metrics = jax.lax.scan(
                body, (state["params"], state["opt_state"], state["step"]), length=self.config.train.chunk_steps
            )
            return dict(state, params=params, opt_state=opt_state, step=step), metrics

        jitted = jax.jit(chunk)
        return lambda state: jitted(state, self.dataset)

    def evaluate_fn(self):
        """jitted (params [seeds, ...], key) -> per-seed: held-out teacher-forced agreement
        (action accuracy, or the torques' mse) and nll on expert episodes of the pretraining
        tasks, one per row, and closed-loop success of the model acting alone (sampling) on any
        pretraining task and on the post-training task; also the share of episodes that succeed
        within the length the model trained on (data.max_episode_steps: the ant's small preset
        trains on the first 200 of T = 500 steps)."""
        c = self.config
        fresh = self.expert_data(c.eval.episodes) if self.held_out is None else None
        _, any_params = envs.make(c.env, tasks="any_pretrain")
        _, post_params = envs.make(c.env, tasks="post")
        max_steps = c.eval.get("max_steps", 0) or None
        metric = self.action_space.metric

        def one_seed(params, key, held_out):
            k_data, k_any, k_post = jax.random.split(key, 3)
            episodes = fresh(k_data) if held_out is None else ant_data.crop(held_out, c.data.max_episode_steps)
            _, metrics = self.loss(params, episode_tokens(episodes), 0.0)
            run = lambda env_params, k: run_base_model(self.model, params, self.env, env_params, k, c.eval.episodes,
                                                       max_steps=max_steps, action_space=self.action_space)
            any_task, post = run(any_params, k_any), run(post_params, k_post)
            return {
                f"eval/action_{metric}": metrics[metric],
                "eval/action_nll": metrics["action_nll"],
                "eval/success_any_pretrain_task": any_task.success.mean(),
                "eval/success_post_task": post.success.mean(),
                "eval/success_any_pretrain_task_within_training_length":
                    (any_task.success & (any_task.length <= c.data.max_episode_steps)).mean(),
                "eval/any_task_length": any_task.length.mean(),
            }

        @jax.jit
        def evaluate(params, key, held_out):
            return jax.vmap(one_seed, in_axes=(0, None, None))(params, key, held_out)

        return lambda params, key: evaluate(params, key, self.held_out)

    def tokens_per_step(self) -> int:
        return self.config.seeds * self.config.data.batch * self.row_length

    def flops_per_step(self) -> float:
        return self.tokens_per_step() * flops_per_token(self.model, self.row_length)


def real_token_fraction(config: ml_collections.ConfigDict, key: jax.Array, batches: int = 4) -> float:
    """Fraction of the row tokens that are real steps (the rest is padding), measured."""
    trainer = Pretrainer(config)
    fractions = [float(trainer.tokens(k).mask.mean()) for k in jax.random.split(key, batches)]
    return sum(fractions) / len(fractions) if fractions else math.nan


def load_pretrained(workdir) -> tuple[Pretrainer, dict]:
    """(Pretrainer of the run's saved config, params [seeds, ...]) from a pretraining workdir."""
    from irl.training import restore_latest

    config = ml_collections.ConfigDict(json.loads((Path(workdir) / "config.json").read_text()))
    trainer = Pretrainer(config, str(workdir))
    state = restore_latest(workdir, jax.eval_shape(trainer.init_state))
    return trainer, state["params"]
