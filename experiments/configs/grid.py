"""GridPinpad configs: `--config=experiments/configs/grid.py:<preset>`, preset in tiny|small|paper.

- paper: SPEC.md section 4 / the paper's Table A4 exactly (for accelerators).
- small: the CPU reproduction. Deviations from the paper, each measured (docs/grid.md, "Pretraining"):
  the agent-relative observation encoder, a smaller model, episodes packed into rows, a higher
  learning rate with warmup and cosine decay.
- tiny: seconds; the end-to-end test.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import from_spec

PRESETS = ("tiny", "small", "paper")


def pretrain_config(preset: str) -> ml_collections.ConfigDict:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.env = "grid_pinpad"
    c.seed = 0
    c.seeds = 10  # pretrained models, one vmapped program
    c.model = ml_collections.ConfigDict(dict(
        arch="transformer", n_layers=6, width=256, n_heads=4, head_dim=64, mlp_width=512,
        n_buckets=32, max_distance=128, init_scale=0.1, encoder="linear",
    ))
    # batch: rows per step; pack_length 0 = one episode per row padded to max_episode_steps
    c.data = ml_collections.ConfigDict(dict(
        batch=1024, eps=0.0, max_episode_steps=100, pack_length=0, episodes_per_row=1,
    ))
    # labels: "taken" (the action the eps-noisy expert took) or "optimal" (the noise-free
    # expert's move in the same state, so noisy steps teach recovery; equal at eps=0)
    c.data.labels = "taken"
    c.loss = ml_collections.ConfigDict(dict(obs_coef=0.01))
    c.optim = ml_collections.ConfigDict(dict(
        lr=3e-4, weight_decay=0.03, b1=0.9, b2=0.999, schedule="constant", warmup_steps=0,
        final_lr_fraction=1.0, grad_clip=0.0, decay_biases=True,  # False: no decay of biases and gains
    ))
    c.train = ml_collections.ConfigDict(dict(steps=256_000, chunk_steps=1000, eval_every=16_000))
    c.eval = ml_collections.ConfigDict(dict(episodes=1024))

    if preset == "small":
        c.seeds = 1
        c.model.update(n_layers=4, width=128, n_heads=4, head_dim=32, mlp_width=256, encoder="agent_relative")
        c.data.update(batch=64, max_episode_steps=80, pack_length=128, episodes_per_row=5)
        c.optim.update(lr=2e-3, schedule="cosine", warmup_steps=200, final_lr_fraction=0.05, grad_clip=1.0)
        # 10,000 steps (64 min alone on 2 cores): any-task success 0.879, against 0.707-0.742
        # after 3,000; the supervised controllers need the more reliable subgoals (docs/grid.md,
        # "Pretraining"); shipped as checkpoints/grid-small-10k-pretrain
        c.train.update(steps=10_000, chunk_steps=100, eval_every=2500)
        c.eval.episodes = 512
    elif preset == "tiny":
        c.seeds = 2
        c.model.update(n_layers=2, width=32, n_heads=2, head_dim=16, mlp_width=64, n_buckets=8,
                       max_distance=32, encoder="agent_relative")
        c.data.update(batch=8, max_episode_steps=60, pack_length=64, episodes_per_row=3)
        c.optim.update(lr=3e-3, schedule="cosine", warmup_steps=5, final_lr_fraction=0.1, grad_clip=1.0)
        c.train.update(steps=40, chunk_steps=10, eval_every=20)
        c.eval.episodes = 16
    return c


def analysis_config(preset: str) -> ml_collections.ConfigDict:
    """Probes (Table A6) and supervised controllers (Tables A7/A8) on a pretrained model."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.probe = ml_collections.ConfigDict(dict(steps=8000, batch=512, lr=1e-3, weight_decay=0.0, eval_episodes=2048))
    c.control = ml_collections.ConfigDict(dict(
        steps=3200, batch=512, lr=1e-3, weight_decay=0.03, rank=16, hidden=32, layers=(), eval_episodes=1024,
    ))  # layers () = every layer 0..L
    if preset == "small":
        c.probe.update(steps=300, batch=64, eval_episodes=512)
        # 3,000 steps at lr 3e-4: 0.384 post-task success at L/2 of the 10,000-step model (3
        # seeds), against 0.115 after 300 steps at 1e-3 (docs/grid.md, "Inside the pretrained model");
        # batch: episodes, packed 5 to a 128-token row as in pretraining (13 rows)
        c.control.update(steps=3000, batch=65, lr=3e-4, eval_episodes=512)
    elif preset == "tiny":
        c.probe.update(steps=10, batch=8, eval_episodes=16)
        c.control.update(steps=10, batch=9, eval_episodes=16, rank=4, layers=(1,))
    return c


def discover_config(preset: str) -> ml_collections.ConfigDict:
    """The metacontroller and its discovery baselines (SPEC.md section 6)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.layer = -1  # -1: L/2
    c.methods = ("metacontroller", "beta1", "cotrained", "compile")
    c.metacontroller = ml_collections.ConfigDict(dict(
        latent_dim=8, gru_size=32, embed_size=32, encoder_hidden=64, switch_hidden=64, decoder_hidden=32, rank=16,
        decoder_form="linear", switch_bias=-2.0, encoder_log_std=0.0, switch_temperature=0.0, hard_switch=False,
        encoder_inputs="all", sequence_embedding="per_step",
    ))
    c.alphas = (0.0, 0.05, 0.1, 0.17, 0.3, 0.5, 1.0)
    c.best_alpha = -1.0  # < 0: the alpha with the best held-out switch F1
    # init_from (ours; "" = a fresh draw): a folder with an exported metacontroller whose params
    # start the metacontroller method (train.init_frozen_steps: steps its GRU, switch and
    # decoder are held; irl/discovery.py, warm start)
    c.init_from = ""
    # one episode per row; episodes longer than max_episode_steps are cut (a prefix is still a
    # correct teacher-forced sequence)
    # drop_prefixes (ours): the fraction of training episodes that start at a random step, with
    # no history (0: none, the paper)
    c.data = ml_collections.ConfigDict(dict(batch=512, max_episode_steps=100, drop_prefixes=0.0))
    c.optim = ml_collections.ConfigDict(dict(
        lr=1e-3, weight_decay=0.03, b1=0.9, b2=0.999, schedule="constant", warmup_steps=0,
        final_lr_fraction=1.0, grad_clip=0.0, decay_biases=True,  # False: no decay of biases and gains
    ))
    # the KL weight is 0 for kl_free_steps, then ramps linearly to alpha over kl_warmup_steps
    # (both 0: the paper's constant alpha). kl_by_beta: each step's KL weighted by its beta_t, as
    # in the ELBO of the discrete-switch model, where a held code costs nothing (False: the
    # paper's unweighted KL, exact under its continuous relaxation). gate_entropy (ours): the
    # loss adds alpha * gate_entropy * the gate's binary entropy per step (nats), ramped in over
    # kl_warmup_steps after the KL's ramp: a price on a gate that hedges between holding and
    # switching (0: none, the paper)
    # action_targets: what the action NLL scores, "taken" (the paper: the expert's drawn action)
    # or "expert_policy" (ours: its whole distribution, uniform over its optimal moves, as the
    # ant's metacontroller data takes the expert's mean action), so that a code gains nothing
    # by naming which of several equally good moves the expert happened to draw
    # the second view (ours; off by default, the paper has none): the loss adds view_weight *
    # the action NLL of the same codes steering the frozen base model through the episodes seen
    # differently: through an attention window of view_window steps (0: the whole past), which
    # cannot tell from its context which subgoals may follow, and/or, with view_symmetry, on
    # the board rotated or reflected (irl/envs/grid_symmetry.py), where a code that names a
    # cell or a heading points elsewhere; the metacontroller's methods on the frozen model only
    c.train = ml_collections.ConfigDict(dict(steps=64_000, chunk_steps=1000, eval_every=8000, kl_free_steps=0,
                                             kl_warmup_steps=0, kl_by_beta=False, gate_entropy=0.0,
                                             action_targets="taken", view_window=0, view_symmetry=False,
                                             view_weight=1.0, init_frozen_steps=0))
    c.beta1 = ml_collections.ConfigDict(dict(alpha=-1.0))  # < 0: the metacontroller's best alpha
    c.cotrained = ml_collections.ConfigDict(dict(alphas=c.alphas, steps=64_000))
    c.compile = ml_collections.ConfigDict(dict(alpha=0.1, steps=64_000, max_segments=4, hidden=64, temperature=1.0))
    # figure_episodes: episodes drawn in beta_traces.png; tolerance: steps a switch may miss a boundary by;
    # prior_episodes: episodes of the metacontroller acting alone with codes from its prior, on the
    # pretraining tasks and on the post-training task (0: none), to see which transitions they reach;
    # code_oracle: one code per subgoal fitted through the frozen decoder (steps of batch
    # episodes; 0 steps: none), then switched by the true progress on the post-training task
    # for `episodes`: the ceiling internal RL has on that decoder; the best of `restarts` fits
    # from their own draws of the prior
    c.eval = ml_collections.ConfigDict(dict(episodes=1024, progress_episodes=256, figure_episodes=4, tolerance=1,
                                            prior_episodes=4096))
    c.eval.code_oracle = ml_collections.ConfigDict(dict(steps=3200, batch=512, episodes=1024, restarts=1))

    if preset == "small":
        # measured on the small base model (4 layers, width 128): with the paper's constant
        # alpha the code collapses to the prior before the decoder learns to read it (KL -> 0 at
        # every alpha >= 0.05 within 300 steps); 200 KL-free steps, then a 300-step ramp, let the
        # channel open first. Alphas around the window where subgoal codes pay for themselves;
        # it moves between pretraining runs (F1 1.0 at 0.10-0.115 on one small model, at
        # 0.06-0.08 on another; docs/grid.md, Discovery), so the sweep covers both.
        c.metacontroller.update(switch_bias=-3.0)
        c.alphas = (0.05, 0.07, 0.08, 0.1, 0.115, 0.13, 0.17, 0.3)
        c.data.update(batch=32, max_episode_steps=48)  # 95% of expert episodes end within 44 steps
        c.optim.update(lr=3e-3, schedule="cosine", warmup_steps=50, final_lr_fraction=0.1, grad_clip=1.0)
        c.train.update(steps=1200, chunk_steps=100, eval_every=400, kl_free_steps=200, kl_warmup_steps=300)
        # without a price on a hedging gate it rests at 0.1-0.2 and fires at 0.7-0.85, and the
        # decoder learns to read that blend (at most 0.57 of values below 0.1 or above 0.9);
        # priced once the switches are in place, it becomes binary on the same boundaries
        # (docs/grid.md, Discovery)
        c.train.gate_entropy = 3.0
        c.cotrained.update(alphas=(0.05, 0.1, 0.3), steps=600)
        c.compile.update(steps=800)
        c.eval.update(episodes=256, progress_episodes=64, prior_episodes=2048)
        # batch: packed 5 to a row, as the controllers; restarts: one fit in a few stalls (docs/grid.md)
        c.eval.code_oracle.update(steps=1000, batch=65, episodes=512, restarts=3)
    elif preset == "tiny":
        c.metacontroller.update(latent_dim=4, gru_size=8, embed_size=8, encoder_hidden=16, switch_hidden=16,
                                decoder_hidden=8, rank=4)
        c.alphas = (0.0, 0.3)
        c.data.update(batch=4, max_episode_steps=40)
        c.optim.update(lr=3e-3)
        c.train.update(steps=4, chunk_steps=2, eval_every=4)
        c.train.gate_entropy = 3.0  # the small preset's, so the end-to-end test runs its term
        c.cotrained.update(alphas=(0.0, 0.3), steps=2)
        c.compile.update(steps=2, hidden=16)
        c.eval.update(episodes=8, progress_episodes=8, figure_episodes=2, prior_episodes=8)  # one shape: one compile
        c.eval.code_oracle.update(steps=2, batch=9, episodes=8)
    return c


def rl_config(preset: str) -> ml_collections.ConfigDict:
    """Internal RL and its baselines (SPEC.md section 7).

    paper: 100k updates x 1024 episodes, AdamW 3e-5, wd 0, a width-256 Hawk policy, for every
    method. small: the CPU budget (all methods in about half an hour on 2 cores; sized from
    the measured speed of the fixed-shape rollout, docs/grid.md, "Internal RL"): fewer, smaller
    batches and a higher learning rate so that learning shows within ~10^5 episodes.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.env = "grid_pinpad"
    c.methods = ("internal", "raw_action", "beta1", "cotrained")
    c.models = 0  # pretrained models used, the first ones (0: all)
    c.rl_seeds = 3  # RL runs per pretrained model
    c.policy = ml_collections.ConfigDict(dict(width=256, n_heads=8, mlp_width=512, init_log_std=0.0))
    c.ppo = ml_collections.ConfigDict(dict(
        lr=3e-5, raw_action_lr=3e-5, weight_decay=0.0, clip=0.2, epochs=1, minibatches=1, grad_clip=0.0,
    ))
    # batch: episode slots per update and run; rollout_steps: raw steps each slot runs (0: the
    # time limit T, one episode per slot, the paper's batch; more: a slot plays episodes back
    # to back, those begun by step rollout_steps - T, see irl.rl.internal_env.InternalEnv.rollout)
    c.train = ml_collections.ConfigDict(dict(updates=100_000, batch=1024, chunk_updates=1000, rollout_steps=0))
    c.render_tries = 64  # episodes drawn to find a solved one to render

    if preset == "small":
        # measured on the 2-core CPU: the fixed-shape rollout pays every raw step of every slot;
        # with episodes of ~10 steps under the prior, 32 slots of 300 steps play ~700 episodes
        # per update (~22 per slot) for 1.5x the steps 64 one-episode slots paid (docs/grid.md,
        # "Episodes back to back")
        # lr 3e-4: on the labelled metacontroller all 3 runs learn the post task (0.20-0.22);
        # at 1e-3 one run of 2 was thrown back to the prior by its first rare successes
        # (docs/grid.md, "Internal RL")
        c.rl_seeds = 2
        c.policy.update(width=128, n_heads=4, mlp_width=256)
        c.ppo.update(lr=3e-4, raw_action_lr=1e-4, epochs=2, minibatches=2)
        c.train.update(updates=40, batch=32, chunk_updates=5, rollout_steps=300)
    elif preset == "tiny":
        c.models = 1
        c.rl_seeds = 2
        c.policy.update(width=16, n_heads=2, mlp_width=32)
        c.ppo.update(lr=1e-3, raw_action_lr=1e-4, epochs=2, minibatches=2)
        c.train.update(updates=4, batch=8, chunk_updates=2, rollout_steps=120)
        c.render_tries = 4
    return c


STAGE_CONFIGS = {"analysis": analysis_config, "discover": discover_config, "rl": rl_config}


def get_config(spec: str = "small") -> ml_collections.ConfigDict:
    """`<preset>` for pretraining; `<stage>-<preset>` for a later stage, stage in
    analysis (probes and supervised controllers) | discover | rl."""
    return from_spec(spec, pretrain_config, STAGE_CONFIGS)
