"""MuJoCo-rendered frames along one episode of the shipped ant expert (its mean action).

    python experiments/render_ant.py --out=docs/figures/ant_expert_frames.png [--tasks=pretrain] [--seed=0]

Plays episodes from `--seed` on (at most `--tries`) until one ends as `--want` asks, then writes
one image: the frames at every `--every` steps and at the last step, each with the torso's path
so far (dots, blue to yellow) and captioned with its step and the colours visited. Needs an
OpenGL context (irl/envs/ant_frame.py: Mesa's EGL renders in software, no GPU needed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import irl.envs  # noqa: E402
from irl.envs.ant_frame import FrameRenderer  # noqa: E402
from irl.envs.render import save_png  # noqa: E402
from irl.experts.ant_expert import AntExpert, expert_observation  # noqa: E402

OUT = flags.DEFINE_string("out", "runs/ant-frames/frames.png", "image to write")
TASKS = flags.DEFINE_enum("tasks", "pretrain", ["pretrain", "post"], "task set the episode is drawn from")
SEED = flags.DEFINE_integer("seed", 0, "first episode's seed")
TRIES = flags.DEFINE_integer("tries", 20, "episodes to play at most")
WANT = flags.DEFINE_enum("want", "success", ["success", "any"], "which episode to draw")
EVERY = flags.DEFINE_integer("every", 30, "steps between frames")
FRAME = flags.DEFINE_integer("frame_width", 320, "width of one frame in pixels (height: 3/4 of it)")
EXPERT = flags.DEFINE_string("expert", None, "expert directory (default: the shipped one)")


def episode_player(expert: AntExpert, world, params):
    """key -> one episode with the expert's mean action: (every state, from the reset on; success)."""
    policy = expert.policy(deterministic=True)
    act = jax.jit(lambda obs, state: policy(expert_observation(obs, state)[None], jax.random.key(0))[0])
    step = jax.jit(lambda state, action: world.step(None, state, action, params))
    reset = jax.jit(lambda key: world.reset(key, params))

    def play(key: jax.Array) -> tuple[list, bool]:
        obs, state = reset(key)
        states, done, success = [state], False, False
        while not done:
            obs, state, _, done, info = step(state, act(obs, state))
            states.append(state)
            done, success = bool(done), bool(info["success"])
        return states, success

    return play


def caption(image: np.ndarray, text: str) -> np.ndarray:
    picture = Image.fromarray(image)
    ImageDraw.Draw(picture).text((6, 4), text, fill=(0, 0, 0))
    return np.asarray(picture)


def with_header(image: np.ndarray, text: str, height: int = 22) -> np.ndarray:
    picture = Image.new("RGB", (image.shape[1], image.shape[0] + height), (255, 255, 255))
    picture.paste(Image.fromarray(image), (0, height))
    ImageDraw.Draw(picture).text((6, 4), text, fill=(0, 0, 0))
    return np.asarray(picture)


def main(_):
    expert = AntExpert.load() if EXPERT.value is None else AntExpert.load(EXPERT.value)
    world, params = irl.envs.make("ant_pinpad", tasks=TASKS.value)
    play = episode_player(expert, world, params)
    for seed in range(SEED.value, SEED.value + TRIES.value):
        states, success = play(jax.random.key(seed))
        if success or WANT.value == "any":
            break
    else:
        raise SystemExit(f"no successful episode in seeds {SEED.value}..{SEED.value + TRIES.value - 1}")
    picked = sorted(set(range(0, len(states), EVERY.value)) | {len(states) - 1})
    path = np.stack([np.asarray(s.physics.qpos[:2]) for s in states])
    with FrameRenderer(FRAME.value, FRAME.value * 3 // 4) as frames:
        images = [caption(frames.render(states[t], path[: t + 1]), f"t={t}, colours visited: {int(states[t].progress)}")
                  for t in picked]
    task = "-".join(str(int(c)) for c in np.asarray(states[0].task)[: int(states[0].task_len)])
    outcome = f"{'success' if success else 'failure'} after {len(states) - 1} steps"
    header = f"the ant expert (mean action), task {task} (colours 0 red, 1 orange, 2 yellow, 3 green; wall grey): {outcome}"
    save_png(with_header(np.concatenate(images, axis=1), header), OUT.value)
    print(f"{OUT.value}: seed {seed}, task {task}, {outcome}, frames at {picked}")


if __name__ == "__main__":
    app.run(main)
