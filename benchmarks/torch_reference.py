"""The same transformer training step in PyTorch: the yardstick for our JAX step's speed.

A PyTorch re-implementation of irl/models/transformer.py with identical shapes and FLOPs:
linear embedding of the 637-value observation, pre-norm blocks with a T5-style bucketed
relative-position bias shared by all layers, a ReLU MLP, the action head and the per-cell
categorical next-observation head (weight 0.01), AdamW. Inputs are a fixed random batch, so the
step times the model alone (our JAX step also draws fresh expert data, 0-2% of a step).

    python benchmarks/torch_reference.py            # paper size, batch 64 x 100, this machine
    python benchmarks/train_speed.py --torch        # the same, beside our JAX step, in one run

torch is not a dependency of `irl`; install it for this benchmark only (CPU wheel:
`pip install torch --index-url https://download.pytorch.org/whl/cpu`).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

GRID_CELLS, N_CHANNELS = 49, 13


def relative_bucket(distance: torch.Tensor, n_buckets: int, max_distance: int) -> torch.Tensor:
    exact = n_buckets // 2
    log_ratio = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
    far = exact + (log_ratio * (n_buckets - exact)).long()
    return torch.where(distance < exact, distance, far.clamp(max=n_buckets - 1))


class Block(nn.Module):
    def __init__(self, width, n_heads, head_dim, mlp_width, fused_attention):
        super().__init__()
        inner = n_heads * head_dim
        self.n_heads, self.head_dim, self.fused = n_heads, head_dim, fused_attention
        self.ln1, self.ln2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.wq, self.wk, self.wv = (nn.Linear(width, inner, bias=False) for _ in range(3))
        self.wo = nn.Linear(inner, width, bias=False)
        self.w1, self.w2 = nn.Linear(width, mlp_width), nn.Linear(mlp_width, width)

    def _split(self, x):  # [B, T, H*hd] -> [B, H, T, hd]
        return x.view(*x.shape[:2], self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, e, bias):
        x = self.ln1(e)
        q, k, v = self._split(self.wq(x)), self._split(self.wk(x)), self._split(self.wv(x))
        if self.fused:
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias
            mixed = logits.softmax(-1) @ v
        e = e + self.wo(mixed.transpose(1, 2).reshape(*e.shape[:2], -1))
        return e + self.w2(F.relu(self.w1(self.ln2(e))))


class Transformer(nn.Module):
    def __init__(self, obs_size=637, n_actions=4, n_layers=6, width=256, n_heads=4, head_dim=64, mlp_width=512,
                 n_buckets=32, max_distance=128, fused_attention=True):
        super().__init__()
        self.n_buckets, self.max_distance = n_buckets, max_distance
        self.embed = nn.Linear(obs_size, width)
        self.blocks = nn.ModuleList(Block(width, n_heads, head_dim, mlp_width, fused_attention) for _ in range(n_layers))
        self.rel_bias = nn.Embedding(n_buckets, n_heads)
        self.ln_f = nn.LayerNorm(width, eps=1e-6)
        self.action_head, self.obs_head = nn.Linear(width, n_actions), nn.Linear(width, obs_size)

    def forward(self, obs):
        t = obs.shape[1]
        positions = torch.arange(t, device=obs.device)
        distance = positions[:, None] - positions[None, :]
        bias = self.rel_bias(relative_bucket(distance.clamp(min=0), self.n_buckets, self.max_distance))
        bias = bias.permute(2, 0, 1).masked_fill(distance < 0, float("-inf"))  # [H, T, T]
        e = self.embed(obs)
        for block in self.blocks:
            e = block(e, bias)
        x = self.ln_f(e)
        return self.action_head(x), self.obs_head(x)


def loss_fn(model, obs, actions, next_obs, obs_coef=0.01):
    action_logits, obs_logits = model(obs)
    action_nll = F.cross_entropy(action_logits.flatten(0, 1), actions.flatten())
    log_p = obs_logits.view(*obs_logits.shape[:2], GRID_CELLS, N_CHANNELS).log_softmax(-2)
    obs_nll = -(log_p * next_obs.view_as(log_p)).sum((-1, -2)).mean()
    return action_nll + obs_coef * obs_nll


def random_batch(batch, length, device, obs_size=637, n_actions=4, seed=0):
    """One-hot-shaped float observations (one channel on per cell) and random actions."""
    g = torch.Generator().manual_seed(seed)

    def one_hot_obs():
        channel = torch.randint(N_CHANNELS, (batch, length, GRID_CELLS), generator=g)
        return F.one_hot(channel, N_CHANNELS).transpose(-1, -2).reshape(batch, length, obs_size).float()

    actions = torch.randint(n_actions, (batch, length), generator=g)
    return one_hot_obs().to(device), actions.to(device), one_hot_obs().to(device)


def make_step(batch=64, length=100, steps=5, fused_attention=True, device=None, **model_kwargs):
    """A callable that runs `steps` AdamW training steps of the model on one fixed random batch."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.set_float32_matmul_precision("high")  # TF32 on GPUs, as XLA's default float32 dot there
    torch.manual_seed(0)
    model = Transformer(fused_attention=fused_attention, **model_kwargs).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.03)
    obs, actions, next_obs = random_batch(batch, length, device)

    def run():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model, obs, actions, next_obs).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def tokens_per_second(batch=64, length=100, steps=5, repeats=5, fused_attention=True, device=None, **model_kwargs):
    """Median tokens/s of `steps` AdamW training steps, after one warm-up call, over `repeats`."""
    run = make_step(batch, length, steps, fused_attention, device, **model_kwargs)
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return batch * length * steps / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for fused in (False, True):
        rate = tokens_per_second(args.batch, args.length, args.steps, args.repeats, fused)
        print(f"{'fused' if fused else 'explicit'} attention: {rate:,.0f} tokens/s")


if __name__ == "__main__":
    main()
