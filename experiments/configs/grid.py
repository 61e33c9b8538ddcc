"""GridPinpad configs: `--config=experiments/configs/grid.py:<preset>`, preset in tiny|small|paper.

- paper: SPEC.md section 4 / the paper's Table A4 exactly (for accelerators).
- small: the CPU reproduction. Deviations from the paper, each measured (README, "Pretraining"):
  the agent-relative observation encoder, a smaller model, episodes packed into rows, a higher
  learning rate with warmup and cosine decay.
- tiny: seconds; the end-to-end test.
"""

from __future__ import annotations

import ml_collections

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
    c.loss = ml_collections.ConfigDict(dict(obs_coef=0.01))
    c.optim = ml_collections.ConfigDict(dict(
        lr=3e-4, weight_decay=0.03, b1=0.9, b2=0.999, schedule="constant", warmup_steps=0,
        final_lr_fraction=1.0, grad_clip=0.0,
    ))
    c.train = ml_collections.ConfigDict(dict(steps=256_000, chunk_steps=1000, eval_every=16_000))
    c.eval = ml_collections.ConfigDict(dict(episodes=1024))

    if preset == "small":
        c.seeds = 1
        c.model.update(n_layers=4, width=128, n_heads=4, head_dim=32, mlp_width=256, encoder="agent_relative")
        c.data.update(batch=64, max_episode_steps=80, pack_length=128, episodes_per_row=5)
        c.optim.update(lr=2e-3, schedule="cosine", warmup_steps=200, final_lr_fraction=0.05, grad_clip=1.0)
        c.train.update(steps=3000, chunk_steps=100, eval_every=300)
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
        c.control.update(steps=300, batch=64, eval_episodes=512)
    elif preset == "tiny":
        c.probe.update(steps=10, batch=8, eval_episodes=16)
        c.control.update(steps=10, batch=8, eval_episodes=16, rank=4, layers=(1,))
    return c


def discover_config(preset: str) -> ml_collections.ConfigDict:
    """The metacontroller and its discovery baselines (SPEC.md section 6)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    return c


def rl_config(preset: str) -> ml_collections.ConfigDict:
    """Internal RL and its baselines (SPEC.md section 7)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    return c


STAGE_CONFIGS = {"analysis": analysis_config, "discover": discover_config, "rl": rl_config}


def get_config(spec: str = "small") -> ml_collections.ConfigDict:
    """`<preset>` for pretraining; `<stage>-<preset>` for a later stage, stage in
    analysis (probes and supervised controllers) | discover | rl."""
    stage, _, preset = spec.rpartition("-")
    if stage:
        if stage not in STAGE_CONFIGS:
            raise ValueError(f"unknown stage {stage!r} in {spec!r}; known: {', '.join(STAGE_CONFIGS)}")
        return STAGE_CONFIGS[stage](preset)
    return pretrain_config(preset)
