"""Pretraining the base model on expert behaviour (SPEC.md section 4).

loss = mean over real steps of [ -log p(a_t | o_1..t) - lambda * log p(o_t+1 | o_1..t) ].

The observation likelihood for the grid ("grid_objects", ours): each of the 13 one-hot
channels (8 colours, 4 walls, the agent) marks exactly one cell, so p(o_t+1) is a product of
13 categoricals over the 49 cells, one per channel (the obs head's 637 logits, read as
[49 cells, 13 channels]). This is exact for every valid observation, unlike a per-cell
categorical, which cannot express the agent standing on a colour.

`Pretrainer(config)` builds everything from a config (experiments/configs/grid.py): the
model, a jitted data source drawing fresh expert episodes every step, AdamW, and the pure
`chunk` that runs `chunk_steps` steps for every seed at once (seeds are a vmapped axis).
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import optax

import irl.envs as envs
from irl.data import LABELS, TokenBatch, episode_tokens, make_expert_data, pack_episodes
from irl.envs.grid_pinpad import GRID_SIZE, N_CHANNELS
from irl.models.base import BaseModel, make_base_model
from irl.rollout import run_base_model

SCHEDULES = ("constant", "cosine")


def grid_obs_nll(logits: jax.Array, next_obs: jax.Array) -> jax.Array:
    """[..., 637] logits and uint8 one-hot target -> [...] nats, summed over the 13 channels."""
    shape = (*logits.shape[:-1], GRID_SIZE * GRID_SIZE, N_CHANNELS)
    log_p = jax.nn.log_softmax(logits.reshape(shape), axis=-2)
    return -(log_p * next_obs.reshape(shape)).sum((-1, -2))


def sequence_loss(model: BaseModel, params, tokens: TokenBatch, obs_coef: float):
    """Scalar loss and metrics over the real tokens of a TokenBatch."""
    action_logits, obs_logits = model.forward(params, tokens.obs, tokens.segments)
    weight = tokens.mask.astype(jnp.float32)
    n = jnp.maximum(weight.sum(), 1.0)
    action_nll = -jnp.take_along_axis(jax.nn.log_softmax(action_logits), tokens.actions[..., None], -1)[..., 0]
    obs_nll = grid_obs_nll(obs_logits, tokens.next_obs)
    correct = jnp.argmax(action_logits, -1) == tokens.actions
    metrics = {
        "action_nll": (action_nll * weight).sum() / n,
        "obs_nll": (obs_nll * weight).sum() / n,
        "accuracy": (correct * weight).sum() / n,
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

    need(config.env == "grid_pinpad", f"env must be 'grid_pinpad' for now, got {config.env!r}")
    need(config.seeds >= 1, f"seeds must be >= 1, got {config.seeds}")
    data, train, optim = config.data, config.train, config.optim
    need(data.batch >= 1, f"data.batch must be >= 1, got {data.batch}")
    need(0.0 <= data.eps <= 1.0, f"data.eps must be in [0, 1], got {data.eps}")
    need(data.get("labels", "taken") in LABELS, f"data.labels must be one of {LABELS}, got {data.get('labels')!r}")
    need(1 <= data.max_episode_steps <= 100, f"data.max_episode_steps must be in 1..100, got {data.max_episode_steps}")
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
    need(config.model.arch in ("transformer", "hawk"), f"model.arch must be transformer or hawk, got {config.model.arch!r}")
    model_from_config(config.model)  # the model's own checks (sizes, encoder)


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

    def __post_init__(self):
        validate(self.config)
        c = self.config
        self.model = model_from_config(c.model)
        self.env, self.env_params = envs.make(c.env)
        self.optimizer = make_optimizer(c.optim, c.train.steps)
        data = c.data
        self.packed = data.pack_length > 0
        n_episodes = data.batch * (data.episodes_per_row if self.packed else 1)
        self.expert = self.expert_data(n_episodes, data.max_episode_steps)
        self.row_length = data.pack_length if self.packed else data.max_episode_steps

    def expert_data(self, batch_size: int, max_steps: int | None = None):
        """key -> ExpertBatch: expert episodes as this model was trained on them (its eps and
        labels), for pretraining, its evaluation and every later stage that reads the model."""
        data = self.config.data
        return make_expert_data(self.env, self.env_params, batch_size, data.eps, max_steps, data.get("labels", "taken"))

    def tokens(self, key: jax.Array) -> TokenBatch:
        """A fresh training batch [batch, row_length] for one seed."""
        episodes = self.expert(key)
        if self.packed:
            return pack_episodes(episodes, self.config.data.batch, self.config.data.pack_length)
        return episode_tokens(episodes)

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

    def update(self, params, opt_state, tokens: TokenBatch):
        """One optimiser step of one seed on a given batch: (params, opt_state, metrics)."""
        grad_fn = jax.value_and_grad(lambda p: sequence_loss(self.model, p, tokens, self.config.loss.obs_coef), has_aux=True)
        (loss, metrics), grads = grad_fn(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        return optax.apply_updates(params, updates), opt_state, metrics

    def _seed_step(self, params, opt_state, seed_key, step):
        return self.update(params, opt_state, self.tokens(jax.random.fold_in(jax.random.fold_in(seed_key, 1), step)))

    def chunk_fn(self):
        """jitted state -> (state, metrics [chunk_steps, seeds])."""
        def chunk(state):
            keys = jax.random.wrap_key_data(state["seed_keys"])

            def body(carry, _):
                params, opt_state, step = carry
                params, opt_state, metrics = jax.vmap(self._seed_step, in_axes=(0, 0, 0, None))(params, opt_state, keys, step)
                return (params, opt_state, step + 1), metrics

            (params, opt_state, step), metrics = jax.lax.scan(
                body, (state["params"], state["opt_state"], state["step"]), length=self.config.train.chunk_steps
            )
            return dict(state, params=params, opt_state=opt_state, step=step), metrics

        return jax.jit(chunk)

    def evaluate_fn(self):
        """jitted (params [seeds, ...], key) -> per-seed: held-out action accuracy (expert
        episodes of the pretraining tasks, one per row) and closed-loop success of the model
        acting alone (sampling) on any pretraining task and on the post-training task."""
        c = self.config
        held_out = self.expert_data(c.eval.episodes)
        _, any_params = envs.make(c.env, tasks="any_pretrain")
        _, post_params = envs.make(c.env, tasks="post")

        def one_seed(params, key):
            k_data, k_any, k_post = jax.random.split(key, 3)
            tokens = episode_tokens(held_out(k_data))
            _, metrics = sequence_loss(self.model, params, tokens, 0.0)
            any_task = run_base_model(self.model, params, self.env, any_params, k_any, c.eval.episodes)
            post = run_base_model(self.model, params, self.env, post_params, k_post, c.eval.episodes)
            return {
                "eval/action_accuracy": metrics["accuracy"],
                "eval/action_nll": metrics["action_nll"],
                "eval/success_any_pretrain_task": any_task.success.mean(),
                "eval/success_post_task": post.success.mean(),
                "eval/any_task_length": any_task.length.mean(),
            }

        @jax.jit
        def evaluate(params, key):
            return jax.vmap(one_seed, in_axes=(0, None))(params, key)

        return evaluate

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
    from pathlib import Path

    from irl.training import restore_latest

    config = ml_collections.ConfigDict(json.loads((Path(workdir) / "config.json").read_text()))
    trainer = Pretrainer(config)
    state = restore_latest(workdir, jax.eval_shape(trainer.init_state))
    return trainer, state["params"]
