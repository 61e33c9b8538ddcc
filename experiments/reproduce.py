"""The whole pipeline for one environment and preset, then the report.

    python experiments/reproduce.py --env=grid --preset=small --workdir=runs/grid-small
    make reproduce ENV=ant PRESET=small

Stages (each in `<workdir>/<stage>/`): expert check, pretraining, linear probes, supervised
controllers, discovery (metacontroller and its baselines), internal RL (and its baselines),
and on the ant the latent-code injection analysis.
A stage already done is reused; an interrupted pretraining resumes. Writes
`<workdir>/results.json` (every headline number), `<workdir>/report.md` (tables, figures) and
`<workdir>/stage_seconds.json`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from absl import app, flags, logging  # noqa: E402

from irl.pipeline import reproduce  # noqa: E402

ENV = flags.DEFINE_string("env", "grid", "environment: grid | ant")
PRESET = flags.DEFINE_string("preset", "small", "tiny | small | paper")
WORKDIR = flags.DEFINE_string("workdir", None, "output folder (default runs/<env>-<preset>)")


def main(_):
    logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint at INFO
    workdir = WORKDIR.value or f"runs/{ENV.value}-{PRESET.value}"
    results = reproduce(ENV.value, PRESET.value, workdir)
    print(json.dumps(results, indent=2))
    print(f"report: {workdir}/report.md")


if __name__ == "__main__":
    app.run(main)
