"""AntPinpad configs: `--config=experiments/configs/ant.py:<preset>`, preset in tiny|small|paper.

- paper: SPEC.md section 4 for the ant (Hawk, 8 layers, width 256, 8 heads, MLP 512,
  lambda = 10, 204.8k steps x batch 512, AdamW 3e-4, wd 0.03), for accelerators.
- small: the CPU reproduction: a 4-layer Hawk of width 128 on the first 200 steps of 6,144
  expert episodes.
- tiny: seconds; the end-to-end test.

The data are episodes of the shipped ant expert (checkpoints/ant-expert, or `data.expert`) with
sampled actions, made once per run (irl/ant_data.py). The action head emits a mean and a log
standard deviation per torque, so `model.n_actions` is 16 (irl/spaces.py).
"""

from __future__ import annotations

import ml_collections

from experiments.configs import from_spec, grid

PRESETS = ("tiny", "small", "paper")


def pretrain_config(preset: str) -> ml_collections.ConfigDict:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.env = "ant_pinpad"
    c.seed = 0
    c.seeds = 10
    c.model = ml_collections.ConfigDict(dict(
        arch="hawk", obs_size=41, n_actions=16, n_layers=8, width=256, n_heads=8, mlp_width=512, init_scale=0.1,
        encoder="linear",
    ))
    # episodes: the training set's size; expert: "" = the shipped expert
    c.data = ml_collections.ConfigDict(dict(
        batch=512, eps=0.0, max_episode_steps=500, pack_length=0, episodes_per_row=1, episodes=65_536, expert="",
    ))
    c.data.labels = "taken"
    c.loss = ml_collections.ConfigDict(dict(obs_coef=10.0))
    c.optim = ml_collections.ConfigDict(dict(
        lr=3e-4, weight_decay=0.03, b1=0.9, b2=0.999, schedule="constant", warmup_steps=0,
        final_lr_fraction=1.0, grad_clip=0.0, decay_biases=True,
    ))
    c.train = ml_collections.ConfigDict(dict(steps=204_800, chunk_steps=1024, eval_every=20_480))
    # episodes: held-out episodes (kept apart from training; every held-out measure of a later
    # stage draws distinct ones of them) and closed-loop episodes per task set; max_steps 0 = T (500)
    c.eval = ml_collections.ConfigDict(dict(episodes=1024, max_steps=0))

    if preset == "small":
        c.seeds = 1
        c.model.update(n_layers=4, width=128, n_heads=4, mlp_width=256)
        # 6,000 steps on 6,144 episodes, not 2,000 on 2,048: held-out action NLL -1.02 against
        # -0.37, and both injection effects clear (docs/ant.md, "The ant pipeline")
        c.data.update(batch=32, max_episode_steps=200, episodes=6144)
        c.optim.update(lr=1e-3, schedule="cosine", warmup_steps=100, final_lr_fraction=0.05, grad_clip=1.0)
        c.train.update(steps=6000, chunk_steps=100, eval_every=1000)
        c.eval.episodes = 64
    elif preset == "tiny":
        c.seeds = 2
        c.model.update(n_layers=2, width=32, n_heads=2, mlp_width=64)
        c.data.update(batch=4, max_episode_steps=24, episodes=8)
        c.optim.update(lr=3e-3, schedule="cosine", warmup_steps=5, final_lr_fraction=0.1, grad_clip=1.0)
        c.train.update(steps=20, chunk_steps=10, eval_every=10)
        c.eval.update(episodes=4, max_steps=24)
    return c


def analysis_config(preset: str) -> ml_collections.ConfigDict:
    """Linear probes (Table A6) and supervised controllers (Tables A7/A8) of a pretrained ant
    model (`analysis-<preset>`). A controller's code is one colour."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = grid.analysis_config("paper")  # the paper's probe settings (Table A6)
    c.control.update(rank=None, batch=256, lr=3e-4)  # Tables A7/A8 for the ant: full-rank U
    c.probe.eval_episodes = pretrain_config(preset).eval.episodes  # the held-out episodes, each once
    if preset == "small":
        c.probe.update(steps=300, batch=32)
        c.control.update(steps=300, batch=32, eval_episodes=64)
    elif preset == "tiny":
        c.probe.update(steps=10, batch=4)
        c.control.update(steps=4, batch=4, eval_episodes=4, rank=4, layers=(1,))
    return c


def discover_config(preset: str) -> ml_collections.ConfigDict:
    """The metacontroller and its discovery baselines on the ant (SPEC.md section 6): the grid's
    settings, with rows as long as the ant model's and a looser switch tolerance (an ant
    step is 0.05 s; a colour is entered over several steps)."""
    c = grid.discover_config(preset)
    c.metacontroller.rank = None  # the ant's decoder writes a full D x D U (SPEC.md section 6)
    c.data.max_episode_steps = pretrain_config(preset).data.max_episode_steps
    c.eval.tolerance = 5
    c.train.gate_entropy = 0.0  # the grid's price on a hedging gate is not measured on the ant
    c.eval.code_oracle.steps = 0  # the ant's oracle needs its full-rank controllers' budget; not measured
    c.eval.prior_episodes = 0  # minutes of physics per task set; the injection stage runs the prior's codes
    if preset == "paper":  # 32k steps of 128 episodes at lr 3e-4
        c.data.batch = 128
        c.optim.lr = 3e-4
        c.train.steps = c.cotrained.steps = c.compile.steps = 32_000
    elif preset == "small":
        # the ant's rows are four times the grid's: fewer alphas and steps fit the CPU budget
        c.alphas = (0.05, 0.1, 0.3)
        c.data.batch = 16
        c.train.update(steps=600, eval_every=300, kl_free_steps=100, kl_warmup_steps=200)
        c.cotrained.update(alphas=(0.05, 0.3), steps=300)
        c.compile.update(steps=400)
        c.eval.update(episodes=64, progress_episodes=32)
    elif preset == "tiny":
        c.methods = ("metacontroller",)  # the others read the same spaces; the grid's tiny run covers them
        kept = pretrain_config(preset).eval.episodes  # the held-out episodes, each once
        c.eval.update(episodes=kept, progress_episodes=kept)
    return c


def rl_config(preset: str) -> ml_collections.ConfigDict:
    """Internal RL and its baselines on the ant's post-training task (SPEC.md section 7): the
    grid's settings with the ant's budget, 51.2k updates x 256 episodes at the paper preset."""
    c = grid.rl_config(preset)
    c.env = "ant_pinpad"
    c.train.rollout_steps = 0  # one episode per slot (back-to-back episodes are not measured on the ant)
    if preset == "paper":
        c.train.update(updates=51_200, batch=256, chunk_updates=256)
    elif preset == "small":
        # an update of 2 runs x 32 episodes pays 32k MJX steps of T = 500 (about 20k/s here)
        c.train.update(updates=30, batch=32, chunk_updates=5)
        c.render_tries = 16
    elif preset == "tiny":
        c.methods = ("internal", "raw_action")  # each method compiles its own MJX rollout
        c.train.update(updates=2, batch=4, chunk_updates=1)
    return c


def inject_config(preset: str) -> ml_collections.ConfigDict:
    """The latent-code injection analysis (irl/analysis/injection.py): codes collected from
    collect_episodes prior-code episodes, each injection judged on eval_episodes new ones."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    # unseen_transition: (first, then), a transition no pretraining task makes
    c.inject = ml_collections.ConfigDict(dict(collect_episodes=2048, eval_episodes=1024, switch_step=30,
                                              unseen_transition=(0, 1)))
    if preset == "small":
        c.inject.update(collect_episodes=512, eval_episodes=256)
    elif preset == "tiny":
        c.inject.update(collect_episodes=4, eval_episodes=4)
    return c


STAGE_CONFIGS = {"analysis": analysis_config, "discover": discover_config, "rl": rl_config, "inject": inject_config}


def get_config(spec: str = "small") -> ml_collections.ConfigDict:
    """`<preset>` for pretraining; `<stage>-<preset>` for a later stage, stage in analysis
    (probes and supervised controllers) | discover | rl | inject."""
    return from_spec(spec, pretrain_config, STAGE_CONFIGS)
