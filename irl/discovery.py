"""Unsupervised discovery of subgoal codes (SPEC.md section 6): the metacontroller and its
baselines, trained on fresh expert episodes at the controlled layer L/2.

loss = mean over real steps of [ -log p(a_t | o_1..t, z_1..t) + alpha * KL(N(mu_t, sig_t) || N(0, I)) ]

Methods (`METHODS`):
- "metacontroller": the frozen pretrained base model, swept over `config.alphas`;
- "beta1": the same with beta forced to 1 at every step, at the best alpha (or `beta1.alpha`);
- "cotrained": a fresh base model of the pretrained one's architecture, trained from scratch
  jointly with the metacontroller. Its loss adds the pretraining observation term
  (obs_coef * -log p(o_t+1 | ...), read from the same controlled forward pass) so that the base
  model is trained on what pretraining trains it on; only the controlled pass exists for it;
- "compile": CompILE (irl/control/compile.py): codes and at most M segments inferred from the
  raw observations, the codes driving the same hypernetwork at L/2 of the frozen base model.

`Discoverer(config, pretrained_workdir)` loads the frozen base model (params [seeds, ...]) and
builds, per method, a pure `chunk` for `irl.training.run`. Seeds and alphas are both batch
axes of one vmapped program: params are [seeds, alphas, ...]; within a seed every alpha sees
the same episodes, the same initialisation and the same noise, so the sweep differs only in
alpha, and the frozen lower half runs once per seed and batch. Every random draw is keyed by
(seed key, step), so a resumed run repeats an uninterrupted one.

KL schedule (ours, `train.kl_free_steps`, `train.kl_warmup_steps`; both 0 in the paper preset):
the KL weight may be 0 for a while and then ramp to alpha. At first the code carries nothing the
decoder can read, so a constant alpha pushes it to the prior before it becomes useful; on the
CPU budget of the small preset that collapse happened at every alpha >= 0.05.

Gate entropy (ours, `train.gate_entropy`; 0 in the paper preset): the loss may add
alpha * gate_entropy * H(beta_t), the gate's binary entropy per step, ramped in after the KL.
It prices a gate that hedges between holding and switching, so the codes are trained as
internal RL uses them, held exactly between switches.

Warm start (ours, `init_from`, `train.init_frozen_steps`; off by default): the metacontroller
method may start from an exported metacontroller's params (say, one fitted with the true
subgoals, irl/analysis/labelled_metacontroller.py) instead of a fresh draw, with the parts
internal RL keeps (`FROZEN_AT_START`: GRU, switch, decoder) held fixed for the first steps, so
that the encoder first learns to choose among the codes that decoder already reads. It asks
whether a solution is stable under discovery's objective, not how to find one.

`export` / `load_discovered` hand one alpha of a method to internal RL as a `Discovered`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
import orbax.checkpoint as ocp

from irl.control import compile as compile_
from irl.control import metacontroller as mc
from irl.control.discovered import Discovered
from irl.data import ExpertBatch, TokenBatch, drop_prefixes, episode_tokens
from irl.envs import grid_symmetry
from irl.models.base import BaseModel, make_base_model
from irl.pretraining import MAX_EPISODE_STEPS, SCHEDULES, load_pretrained, make_optimizer

METHODS = ("metacontroller", "beta1", "cotrained", "compile")
EXPORTED = ("metacontroller", "beta1", "cotrained")  # the ones internal RL consumes
FROZEN_AT_START = ("gru", "switch", "decoder")  # held for train.init_frozen_steps of a warm start


# what the metacontroller's action NLL scores: "taken", the expert's drawn action (the paper);
# "expert_policy" (ours, grid), the expert's whole action distribution
ACTION_TARGETS = ("taken", "expert_policy")


def validate(config: ml_collections.ConfigDict) -> None:
    """Clear errors for bad discovery configs, before anything is loaded or compiled."""
    def need(ok, message):
        if not ok:
            raise ValueError(f"bad discovery config: {message}")

    methods = tuple(config.methods)
    need(methods and len(set(methods)) == len(methods) and set(methods) <= set(METHODS),
         f"methods must be distinct names from {METHODS}, got {methods}")
    alphas = tuple(config.alphas)
    need(alphas and all(a >= 0 for a in alphas) and len(set(alphas)) == len(alphas),
         f"alphas must be distinct and >= 0, got {alphas}")
    need(config.best_alpha < 0 or config.best_alpha in alphas,
         f"best_alpha must be < 0 (choose by held-out switch F1) or one of alphas {alphas}, got {config.best_alpha}")
    need("beta1" not in methods or config.beta1.alpha >= 0 or "metacontroller" in methods,
         "beta1.alpha < 0 means 'the best alpha', which needs the metacontroller method")
    need(config.layer >= -1, f"layer must be -1 (L/2) or a layer index, got {config.layer}")
    data, train, optim = config.data, config.train, config.optim
    need(data.batch >= 1, f"data.batch must be >= 1, got {data.batch}")
    need(0 <= data.drop_prefixes <= 1, f"data.drop_prefixes must be in [0, 1], got {data.drop_prefixes}")
    longest = max(MAX_EPISODE_STEPS.values())  # the model's own environment is checked once it is loaded
    need(1 <= data.max_episode_steps <= longest,
         f"data.max_episode_steps must be in 1..{longest}, got {data.max_episode_steps}")
    need(train.chunk_steps >= 1, f"train.chunk_steps must be >= 1, got {train.chunk_steps}")
    for name, steps in (("train.steps", train.steps), ("cotrained.steps", config.cotrained.steps),
                        ("compile.steps", config.compile.steps)):
        need(steps >= 1 and steps % train.chunk_steps == 0,
             f"{name} must be a positive multiple of train.chunk_steps {train.chunk_steps}, got {steps}")
    need(train.kl_warmup_steps >= 0 and train.kl_free_steps >= 0,
         f"train.kl_free_steps and train.kl_warmup_steps must be >= 0, got {train.kl_free_steps}, {train.kl_warmup_steps}")
    need(train.gate_entropy >= 0, f"train.gate_entropy must be >= 0, got {train.gate_entropy}")
    need(train.init_frozen_steps >= 0, f"train.init_frozen_steps must be >= 0, got {train.init_frozen_steps}")
    need(train.init_frozen_steps == 0 or config.init_from,
         "train.init_frozen_steps holds the parts of a warm start (init_from), which is not set")
    need(train.view_window >= 0 and train.view_weight >= 0,
         f"train.view_window and train.view_weight must be >= 0, got {train.view_window}, {train.view_weight}")
    need(train.action_targets in ACTION_TARGETS,
         f"train.action_targets must be one of {ACTION_TARGETS}, got {train.action_targets!r}")
    need(train.eval_every >= 0 and train.eval_every % train.chunk_steps == 0,
         f"train.eval_every must be a multiple of train.chunk_steps (0: never), got {train.eval_every}")
    need(optim.lr > 0 and optim.weight_decay >= 0, "optim.lr must be > 0 and optim.weight_decay >= 0")
    need(optim.schedule in SCHEDULES, f"optim.schedule must be one of {SCHEDULES}, got {optim.schedule!r}")
    need(0 <= optim.warmup_steps < min(train.steps, config.cotrained.steps, config.compile.steps),
         f"optim.warmup_steps must be below every method's steps, got {optim.warmup_steps}")
    cot = tuple(config.cotrained.alphas)
    need(cot and all(a >= 0 for a in cot) and len(set(cot)) == len(cot),
         f"cotrained.alphas must be distinct and >= 0, got {cot}")
    need(config.compile.alpha >= 0, f"compile.alpha must be >= 0, got {config.compile.alpha}")
    need(config.eval.episodes >= 1 and config.eval.progress_episodes >= 1 and config.eval.figure_episodes >= 1,
         "eval.episodes, eval.progress_episodes and eval.figure_episodes must be >= 1")
    need(config.eval.tolerance >= 0, f"eval.tolerance must be >= 0, got {config.eval.tolerance}")
    need(config.eval.prior_episodes >= 0, f"eval.prior_episodes must be >= 0, got {config.eval.prior_episodes}")
    oracle = config.eval.code_oracle
    need(oracle.steps >= 0 and (oracle.steps == 0 or min(oracle.batch, oracle.episodes, oracle.restarts) >= 1),
         f"eval.code_oracle needs steps >= 0 and, when steps > 0, batch, episodes and restarts >= 1, got {oracle}")
    try:  # the modules' own checks, at a stand-in width
        metacontroller_config(config, width=max(config.metacontroller.rank or 1, 1))
        compile_config(config, width=max(config.metacontroller.rank or 1, 1), obs_size=1)
    except (ValueError, TypeError) as error:
        raise ValueError(f"bad discovery config: {error}") from error


def has_second_view(config: ml_collections.ConfigDict) -> bool:
    """Whether the loss scores the codes through a second view of the episodes (train.view_*)."""
    train = config.train
    return train.view_weight > 0 and (train.view_window > 0 or bool(train.view_symmetry))


def metacontroller_config(config: ml_collections.ConfigDict, width: int, force_beta_one: bool = False):
    return mc.MetacontrollerConfig(width=width, force_beta_one=force_beta_one, **dict(config.metacontroller))


def compile_config(config: ml_collections.ConfigDict, width: int, obs_size: int) -> compile_.CompileConfig:
    m, c = config.metacontroller, config.compile
    return compile_.CompileConfig(width=width, obs_size=obs_size, latent_dim=m.latent_dim, hidden=c.hidden,
                                  max_segments=c.max_segments, decoder_hidden=m.decoder_hidden, rank=m.rank,
                                  decoder_form=m.decoder_form, temperature=c.temperature)


def kl_ramp(train: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """The KL weight's multiplier at `step`: 0 for `train.kl_free_steps`, then a linear ramp to
    1 over `train.kl_warmup_steps` (both 0: the paper's constant alpha). A code that carries
    nothing yet (its decoder has not learnt to use it) is otherwise pushed to the prior before it
    can become useful, and never recovers; this lets the channel open first, and the KL then
    prunes what is not worth its price."""
    free, warmup = train.kl_free_steps, train.kl_warmup_steps
    return jnp.clip((step + 1 - free) / max(warmup, 1), 0.0, 1.0)


def gate_entropy_ramp(train: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
    """The gate-entropy term's multiplier at `step` (its weight is alpha * `train.gate_entropy`
    times this): a linear ramp to 1 over `train.kl_warmup_steps` that starts once the KL's ramp
    is complete. Measured on the small grid model: priced from the start, while the KL-free
    steps leave the gate open, the term pushes the gate to 1 at every step; the switches must
    be in place before it sharpens them."""
    return kl_ramp(train, step - train.kl_warmup_steps)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    weight = mask.astype(jnp.float32)
    return (x * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def action_measures(action_space, action_out: jax.Array, tokens: TokenBatch, targets: str = "taken") -> dict:
    """Mean action NLL and agreement (action_space.metric: accuracy on the grid, squared error
    on the ant; irl/spaces.py) over the real steps. targets "expert_policy": the NLL is the
    cross-entropy to the expert's action distribution (tokens.policy) instead of the NLL of
    the action it drew."""
    nll = (action_space.policy_nll(action_out, tokens.policy) if targets == "expert_policy"
           else action_space.nll(action_out, tokens.actions))
    return {"action_nll": masked_mean(nll, tokens.mask),
            "agreement": masked_mean(action_space.agreement(action_out, tokens.actions), tokens.mask)}


@dataclasses.dataclass(frozen=True)
class Method:
    """One discovery method as pure functions of (trainable, frozen base params, e, tokens).

    trainable: {"mc"} | {"mc", "base"} (co-trained) | {"compile"}. e is the frozen lower
    half's output at the controlled layer (None when the base model is trained)."""
    name: str
    alphas: tuple[float, ...]
    steps: int
    frozen_base: bool
    init: Callable  # key -> trainable
    loss: Callable  # (trainable, base, e, tokens, key, kl_weight, gate_weight) -> (loss, metrics)
    # (trainable, base, e, tokens, key, sample, hard_switch) -> {"beta" [B, T], "kl", "action_nll", "agreement"}
    # and, for the metacontroller's methods, the codes "z" [B, T, Z]
    analyse: Callable
    mc_cfg: mc.MetacontrollerConfig | None = None


@dataclasses.dataclass
class Discoverer:
    config: ml_collections.ConfigDict
    pretrained_workdir: str | Path

    def __post_init__(self):
        validate(self.config)
        c = self.config
        if c.init_from and not (Path(c.init_from) / "metacontroller" / "discovered.json").exists():
            raise FileNotFoundError(f"bad discovery config: init_from={c.init_from!r} holds no exported "
                                    "metacontroller (metacontroller/discovered.json)")
        config_file = Path(self.pretrained_workdir) / "config.json"
        if not config_file.exists():
            raise FileNotFoundError(f"no pretraining run in {self.pretrained_workdir} (config.json missing): "
                                    "run the pretraining stage first")
        pretraining = json.loads(config_file.read_text())  # checked before the model is loaded
        env_name = pretraining["env"]
        arch = pretraining.get("model", {}).get("arch")
        if c.train.view_window and arch != "transformer":
            raise ValueError("bad discovery config: train.view_window limits a transformer's attention, "
                             f"not that of the {env_name} base model ({arch})")
        if c.train.view_symmetry and env_name != "grid_pinpad":
            raise ValueError(f"bad discovery config: train.view_symmetry turns the grid's board, not {env_name}'s")
        if c.train.action_targets == "expert_policy" and env_name != "grid_pinpad":
            raise ValueError(f"bad discovery config: train.action_targets='expert_policy' needs the grid's expert "
                             f"(its data records the expert's action distribution), not {env_name}")
        if c.data.drop_prefixes > 0 and env_name != "grid_pinpad":
            raise ValueError(f"bad discovery config: data.drop_prefixes cuts the grid's expert episodes, not {env_name}'s")
        if c.data.max_episode_steps > MAX_EPISODE_STEPS[env_name]:
            raise ValueError(f"bad discovery config: data.max_episode_steps must be <= {MAX_EPISODE_STEPS[env_name]} "
                             f"on {env_name}, got {c.data.max_episode_steps}")
        self.pretrainer, self.base_params = load_pretrained(self.pretrained_workdir)
        self.model: BaseModel = self.pretrainer.model
        self.view_model = self.model  # the model the second view runs (train.view_window)
        if c.train.view_window:
            self.view_model = BaseModel(self.model.arch, dataclasses.replace(self.model.cfg, window=c.train.view_window))
        self.action_space, self.obs_space = self.pretrainer.action_space, self.pretrainer.obs_space
        self.layer = self.model.n_layers // 2 if c.layer < 0 else c.layer
        if not 0 <= self.layer <= self.model.n_layers:
            raise ValueError(f"bad discovery config: layer must be in 0..{self.model.n_layers}, got {self.layer}")
        self.seeds = jax.tree.leaves(self.base_params)[0].shape[0]
        # the metacontroller's data: on the ant, the expert's mean action (SPEC.md section 3)
        self.expert = self.pretrainer.expert_data(c.data.batch, c.data.max_episode_steps, mean_action=True)
        self.held_out_data = self.pretrainer.held_out_data(c.eval.episodes, mean_action=True)
        self.progress_held_out_data = self.pretrainer.held_out_data(c.eval.progress_episodes, mean_action=True)
        self.seed_keys = jax.random.split(jax.random.key(c.seed), self.seeds)
        self.eval_key = jax.random.key(c.seed + 1_000_003)

    # ---- methods -------------------------------------------------------------------------
    def method(self, name: str, alpha: float | None = None) -> Method:
        """The method `name`; `alpha` fixes the alpha of "beta1" (else its config's)."""
        c, width = self.config, self.model.width
        if name in ("metacontroller", "beta1"):
            cfg = metacontroller_config(c, width, force_beta_one=name == "beta1")
            alphas = tuple(c.alphas) if name == "metacontroller" else (c.beta1.alpha if alpha is None else alpha,)
            return self._metacontroller_method(name, cfg, alphas, c.train.steps, cotrained=False)
        if name == "cotrained":
            return self._metacontroller_method(name, metacontroller_config(c, width), tuple(c.cotrained.alphas),
                                               c.cotrained.steps, cotrained=True)
        if name == "compile":
            return self._compile_method(compile_config(c, width, self.model.cfg.obs_size))
        raise ValueError(f"unknown method {name!r}; known: {METHODS}")

    def _metacontroller_method(self, name, cfg, alphas, steps, cotrained: bool) -> Method:
        model, layer = self.model, self.layer
        obs_coef = self.pretrainer.config.loss.obs_coef if cotrained else 0.0

        def init(key):
            trainable = {"mc": mc.init(jax.random.fold_in(key, 0), cfg)}
            if cotrained:
                trainable["base"] = model.init(jax.random.fold_in(key, 1))
            return trainable

        def run(trainable, base, e, tokens, key, sample, switch_noise=False, hard_switch=False):
            base = trainable.get("base", base)
            if e is None:
                e = model.lower(base, tokens.obs, layer)
            observed = model.lower(base, tokens.obs, 0) if cfg.embeds_observations else None
            seq = mc.sequence(trainable["mc"], cfg, e, tokens.mask, key, sample=sample, switch_noise=switch_noise,
                              hard_switch=hard_switch, observed=observed)
            action_logits, obs_logits = model.upper(base, seq.controlled, layer)
            measures = dict(action_measures(self.action_space, action_logits, tokens, self.config.train.action_targets),
                            kl=masked_mean(seq.kl, tokens.mask), mean_beta=masked_mean(seq.beta, tokens.mask),
                            kl_switched=masked_mean(seq.beta * seq.kl, tokens.mask),
                            gate_entropy=masked_mean(mc.binary_entropy(seq.beta), tokens.mask))
            if cotrained:
                measures["obs_nll"] = masked_mean(self.obs_space.nll(obs_logits, tokens.next_obs), tokens.mask)
            return seq, measures

        rate = "kl_switched" if self.config.train.kl_by_beta else "kl"
        second_view = self.second_view if has_second_view(self.config) and not cotrained else None
        view_weight = self.config.train.view_weight

        def loss(trainable, base, e, tokens, key, kl_weight, gate_weight=0.0):
            seq, m = run(trainable, base, e, tokens, key, sample=True, switch_noise=True)
            penalty = kl_weight * m[rate] + gate_weight * m["gate_entropy"]
            total = m["action_nll"] + penalty + obs_coef * m.get("obs_nll", 0.0)
            if second_view is not None:
                m["second_view_action_nll"] = second_view(trainable["mc"], cfg, base, seq.z, tokens,
                                                          jax.random.fold_in(key, 2))
                total = total + view_weight * m["second_view_action_nll"]
            return total, m

        def analyse(trainable, base, e, tokens, key, sample, hard_switch):
            seq, m = run(trainable, base, e, tokens, key, sample, hard_switch=hard_switch)
            return dict(m, beta=seq.beta, z=seq.z)

        return Method(name, alphas, steps, not cotrained, init, loss, analyse, cfg)

    def second_view(self, mc_params, cfg, base, z, tokens: TokenBatch, key: jax.Array) -> jax.Array:
        """The action NLL of the same codes z steering the frozen base model through the
        episodes seen differently (train.view_*): through an attention window, which cannot
        tell from its context which subgoals may follow, and/or on the board rotated or
        reflected, where a code that names a cell or a heading points elsewhere."""
        train = self.config.train
        if train.view_symmetry:
            tokens = grid_symmetry.transform_tokens(tokens, key)
        e = jax.lax.stop_gradient(self.view_model.lower(base, tokens.obs, self.layer))
        action_logits, _ = self.view_model.upper(base, mc.steer(mc_params, z, e, cfg), self.layer)
        return action_measures(self.action_space, action_logits, tokens, train.action_targets)["action_nll"]

    def _compile_method(self, cfg: compile_.CompileConfig) -> Method:
        model, layer = self.model, self.layer

        def run(trainable, base, e, tokens, key, sample, hard):
            seg = compile_.segment(trainable["compile"], cfg, tokens.obs, tokens.mask, key, sample=sample, hard=hard)
            action_logits, _ = model.upper(base, compile_.controlled(trainable["compile"], cfg, e, seg), layer)
            kl = seg.kl.sum() / jnp.maximum(tokens.mask.sum(), 1)  # per real step, as the metacontroller's
            targets = self.config.train.action_targets
            return seg, dict(action_measures(self.action_space, action_logits, tokens, targets), kl=kl,
                             mean_beta=masked_mean(seg.switch, tokens.mask))

        def loss(trainable, base, e, tokens, key, kl_weight, gate_weight=0.0):  # no beta gate to price
            _, m = run(trainable, base, e, tokens, key, sample=True, hard=False)
            return m["action_nll"] + kl_weight * m["kl"], m

        def analyse(trainable, base, e, tokens, key, sample, hard_switch):  # its segments are always hard
            seg, m = run(trainable, base, e, tokens, key, sample, hard=True)
            return dict(m, beta=seg.switch)

        init = lambda key: {"compile": compile_.init(key, cfg)}
        return Method("compile", (self.config.compile.alpha,), self.config.compile.steps, True, init, loss, analyse)

    # ---- training ------------------------------------------------------------------------
    def optimizer(self, method: Method) -> optax.GradientTransformation:
        return make_optimizer(self.config.optim, method.steps)

    def init_state(self, method: Method) -> dict:
        """params [seeds, alphas, ...]: one initialisation per seed, shared by its alphas."""
        n_alphas = len(method.alphas)
        per_seed = jax.vmap(lambda k: method.init(jax.random.fold_in(k, 0)))(self.seed_keys)
        if method.name == "metacontroller" and self.config.init_from:
            per_seed = dict(per_seed, mc=self.warm_start(method.mc_cfg))
        params = jax.tree.map(lambda x: jnp.repeat(x[:, None], n_alphas, axis=1), per_seed)
        return {
            "params": params,
            "opt_state": jax.vmap(jax.vmap(self.optimizer(method).init))(params),
            "seed_keys": jax.random.key_data(self.seed_keys),
            "step": jnp.int32(0),
            "elapsed": jnp.float32(0.0),
        }

    def warm_start(self, cfg: mc.MetacontrollerConfig) -> dict:
        """The metacontroller params [seeds, ...] exported in `init_from`, checked to fit."""
        warm = load_discovered(self.config.init_from, "metacontroller")
        fresh = jax.eval_shape(lambda: mc.init(jax.random.key(0), cfg))
        if warm.layer != self.layer or warm.seeds < self.seeds or jax.tree.structure(
                warm.mc_params) != jax.tree.structure(fresh) or any(
                w.shape[1:] != f.shape for w, f in zip(jax.tree.leaves(warm.mc_params), jax.tree.leaves(fresh))):
            raise ValueError(f"bad discovery config: the metacontroller in init_from={self.config.init_from!r} "
                             f"(layer {warm.layer}, {warm.seeds} seeds) does not fit this one (layer {self.layer}, "
                             f"{self.seeds} seeds, the metacontroller config's shapes)")
        return jax.tree.map(lambda x: jnp.asarray(x[:self.seeds], jnp.float32), warm.mc_params)

    def tokens(self, key: jax.Array) -> TokenBatch:
        fraction = self.config.data.drop_prefixes
        if fraction == 0:
            return episode_tokens(self.expert(key))
        data_key, cut_key = jax.random.split(key)
        return episode_tokens(drop_prefixes(self.expert(data_key), cut_key, fraction))

    def _seed_step(self, method: Method, optimizer, trainable, opt_state, base, seed_key, step):
        """One optimiser step for every alpha of one seed, all on the same batch and noise."""
        data_key, noise_key = jax.random.split(jax.random.fold_in(jax.random.fold_in(seed_key, 1), step))
        tokens = self.tokens(data_key)
        e = jax.lax.stop_gradient(self.model.lower(base, tokens.obs, self.layer)) if method.frozen_base else None
        warm_held = method.name == "metacontroller" and self.config.train.init_frozen_steps > 0

        def alpha_step(trainable, opt_state, alpha):
            (loss, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(
                trainable, base, e, tokens, noise_key, alpha * kl_ramp(self.config.train, step),
                alpha * self.config.train.gate_entropy * gate_entropy_ramp(self.config.train, step))
            if warm_held:
                grads = hold_parts(grads, step < self.config.train.init_frozen_steps)
            updates, opt_state = optimizer.update(grads, opt_state, trainable)
            if warm_held:
                updates = hold_parts(updates, step < self.config.train.init_frozen_steps)
            return optax.apply_updates(trainable, updates), opt_state, dict(metrics, loss=loss,
                                                                             grad_norm=optax.tree.norm(grads))

        return jax.vmap(alpha_step)(trainable, opt_state, jnp.asarray(method.alphas, jnp.float32))

    def chunk_fn(self, method: Method) -> Callable[[dict], tuple[dict, dict]]:
        """state -> (state, metrics): `chunk_steps` steps of every seed and alpha. Metrics hold
        "loss" [chunk, seeds, alphas] and, per alpha, "<name>/alpha=<a>" [chunk, seeds]."""
        optimizer = self.optimizer(method)
        frozen = self.base_params if method.frozen_base else None

        @jax.jit
        def chunk(state, frozen):
            keys = jax.random.wrap_key_data(state["seed_keys"])

            def body(carry, _):
                params, opt_state, step = carry
                params, opt_state, metrics = jax.vmap(
                    lambda p, o, b, k: self._seed_step(method, optimizer, p, o, b, k, step))(params, opt_state, frozen, keys)
                return (params, opt_state, step + 1), metrics

            (params, opt_state, step), metrics = jax.lax.scan(
                body, (state["params"], state["opt_state"], state["step"]), length=self.config.train.chunk_steps)
            return dict(state, params=params, opt_state=opt_state, step=step), metrics

        def run(state):
            state, metrics = chunk(state, frozen)
            return state, per_alpha_metrics(metrics, method.alphas)

        return run

    # ---- analysis ------------------------------------------------------------------------
    def analyse_fn(self, method: Method) -> Callable:
        """jitted (trainable of one seed and alpha, base of that seed, tokens, key, sample,
        hard_switch=False) -> {"beta" [B, T], "kl", "action_nll", "agreement", "mean_beta"} (and
        "z" [B, T, Z] for the metacontroller's methods). One pair at a time keeps the memory of
        a long held-out batch bounded."""
        def analyse(trainable, base, tokens, key, sample: bool, hard_switch: bool = False):
            e = self.model.lower(base, tokens.obs, self.layer) if method.frozen_base else None
            return method.analyse(trainable, base, e, tokens, key, sample, hard_switch)

        return jax.jit(analyse, static_argnames=("sample", "hard_switch"))

    def base_of(self, method: Method, params: dict, seed: int, alpha_index: int):
        """The base model params one (seed, alpha) of a method runs on."""
        if method.frozen_base:
            return take(self.base_params, seed)
        return take(params["base"], seed, alpha_index)

    def held_out(self, progress: bool = False) -> ExpertBatch:
        """The fixed held-out expert episodes of the final (or the in-training) evaluation."""
        data = self.progress_held_out_data if progress else self.held_out_data
        return data(jax.random.fold_in(self.eval_key, int(progress)))


def hold_parts(tree: dict, hold: jax.Array) -> dict:
    """tree ({"mc": ...} gradients or updates) with the FROZEN_AT_START parts zeroed while hold."""
    mc_tree = {name: jax.tree.map(lambda x: jnp.where(hold, jnp.zeros_like(x), x), part)
               if name in FROZEN_AT_START else part for name, part in tree["mc"].items()}
    return dict(tree, mc=mc_tree)


def take(tree, *index):
    return jax.tree.map(lambda x: x[index], tree)


def per_alpha_metrics(metrics: dict, alphas: tuple[float, ...]) -> dict:
    """[chunk, seeds, alphas] metrics -> "loss" kept whole plus "<name>/alpha=<a>" [chunk, seeds]
    (just "<name>" when there is one alpha), which the logs can plot one curve each."""
    out = {"loss": metrics["loss"]}
    for name, value in metrics.items():
        for i, alpha in enumerate(alphas):
            out[name if len(alphas) == 1 else f"{name}/alpha={alpha:g}"] = value[..., i]
    return out


# ---- the hand-off to internal RL ----------------------------------------------------------
def export(workdir: str | Path, method: str, model: BaseModel, layer: int, mc_cfg: mc.MetacontrollerConfig,
           base_params, mc_params, alpha: float) -> None:
    """Write `<workdir>/<method>/discovered.json` and the params ([seeds, ...]) beside it."""
    folder = Path(workdir).absolute() / method
    folder.mkdir(parents=True, exist_ok=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder / "discovered", {"base": base_params, "mc": mc_params}, force=True)
    checkpointer.wait_until_finished()
    checkpointer.close()
    (folder / "discovered.json").write_text(json.dumps({
        "method": method,
        "alpha": alpha,
        "layer": layer,
        "model": {"arch": model.arch, **dataclasses.asdict(model.cfg)},
        "mc_cfg": dataclasses.asdict(mc_cfg),
    }, indent=2))


def load_discovered(workdir: str | Path, method: str) -> Discovered:
    """The base model, its params [seeds, ...], the metacontroller config and params [seeds, ...]
    and the controlled layer that discovery exported for `method` (metacontroller at the best
    alpha, beta1, cotrained)."""
    if method not in EXPORTED:
        raise ValueError(f"method must be one of {EXPORTED}, got {method!r}")
    folder = Path(workdir).absolute() / method
    if not (folder / "discovered.json").exists():
        raise FileNotFoundError(f"no exported {method} in {folder}: run the discovery stage first")
    meta = json.loads((folder / "discovered.json").read_text())
    model_fields = dict(meta["model"])
    model = make_base_model(model_fields.pop("arch"), **model_fields)
    checkpointer = ocp.StandardCheckpointer()
    try:
        params = checkpointer.restore(folder / "discovered")
    finally:
        checkpointer.close()
    return Discovered(model=model, base_params=params["base"], mc_cfg=mc.MetacontrollerConfig(**meta["mc_cfg"]),
                      mc_params=params["mc"], layer=int(meta["layer"]))
