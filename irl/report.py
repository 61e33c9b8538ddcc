"""The pipeline's report: `results.json` (every headline number, as measured by the stages of
this run) and `report.md` (tables and the stages' figures). On the ant, success rates are also
given divided by the expert's success on the same task, as the paper reports them."""

from __future__ import annotations

import json
from pathlib import Path

RL_METHODS = ("internal", "raw_action", "beta1", "cotrained", "compile")
DISCOVERY_BASELINES = ("beta1", "cotrained", "compile")
# per alpha of the metacontroller's sweep and per baseline, on held-out expert episodes
SWITCHING_MEASURES = ("switch_f1", "switches_per_episode", "beta_binary_fraction", "kl", "action_nll")


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _row(cells) -> str:
    return "| " + " | ".join(_fmt(c) for c in cells) + " |"


def discovery_headline(discovery: dict) -> dict:
    """The picked alpha's switching, the whole sweep (the rate-distortion curve), each baseline,
    and what the codes name where the stage measured it (a readout of the code; the code
    oracle: one code per subgoal switched by the true progress on the post-training task)."""
    switching = lambda run: {"alpha": run["alpha"], **{k: run[k] for k in SWITCHING_MEASURES}}  # noqa: E731
    out = {k: discovery[k] for k in ("best_alpha", "switch_f1", "beta_binary_fraction", "switches_per_episode",
                                     "subgoals_per_episode")}
    out["by_alpha"] = [switching(run) for run in discovery["by_alpha"]]
    out["baselines"] = {name: switching(discovery[name]) for name in DISCOVERY_BASELINES if name in discovery}
    if "code_readout" in discovery:
        out["code_readout"] = discovery["code_readout"]
    if "code_oracle" in discovery:
        out["code_oracle"] = {k: discovery["code_oracle"][k] for k in ("success", "subgoal_completion")}
    return out


def discovery_section(discovery: dict) -> list[str]:
    readout = discovery.get("code_readout", {})
    oracle = discovery.get("code_oracle")
    return [
        "## Discovery (metacontroller at L/2)",
        "",
        "| method (alpha) | " + " | ".join(k.replace("_", " ") for k in SWITCHING_MEASURES) + " |",
        "|---|" + "---|" * len(SWITCHING_MEASURES),
        *[_row([f"metacontroller ({run['alpha']:g})" + (" picked" if run["alpha"] == discovery["best_alpha"] else "")]
               + [run[k] for k in SWITCHING_MEASURES]) for run in discovery["by_alpha"]],
        *[_row([f"baseline: {name} ({run['alpha']:g})"] + [run[k] for k in SWITCHING_MEASURES])
          for name, run in discovery["baselines"].items()],
        "",
        f"Subgoals per episode: {_fmt(discovery['subgoals_per_episode'])}.",
        *([f"What the picked codes name (readout accuracy, chance in brackets): "
           + ", ".join(f"{label.replace('_', ' ')} {_fmt(v['accuracy'])} ({_fmt(v['chance'])})"
                       for label, v in readout.items() if "accuracy" in v) + "."] if readout else []),
        *([f"Code oracle (one code per subgoal through the decoder, switched by the true progress), post-task "
           f"success {_fmt(oracle['success'])}, per-subgoal completion {_fmt(oracle['subgoal_completion'])}."]
          if oracle else []),
        "",
        "![beta traces](discover/beta_traces.png) ![rate-distortion](discover/rate_distortion.png)",
        "",
    ]


def headline(env: str, preset: str, summaries: dict, stage_seconds: dict) -> dict:
    """results.json: every headline number, from the stages' own summaries."""
    pretrain, probe, control = summaries["pretrain"], summaries["probe"], summaries["control"]
    discovery = summaries["discover"]
    mid = control["mid_layer"]
    metric = "action_accuracy" if "action_accuracy" in pretrain else "action_mse"
    results = {
        "env": env,
        "preset": preset,
        "stage_seconds": stage_seconds,
        "total_seconds": sum(stage_seconds.values()),
        "expert": {k: summaries["expert"][k] for k in ("success_pretrain_tasks", "success_post_task")},
        "pretrain": {k: pretrain[k] for k in ("success_any_pretrain_task", "success_post_task", "tokens_per_s", "mfu",
                                              metric)},
        "probe": {"accuracy_by_layer": probe["accuracy_by_layer"]},
        "supervised_control": {
            "success_by_layer": control["success_by_layer"],
            "subgoal_completion_by_layer": control["subgoal_completion_by_layer"],
            "controlled_layer": mid,
            "success_at_controlled_layer": control["success_by_layer"][control["controlled_layers"].index(mid)]
            if mid in control["controlled_layers"] else None,
            **({"failure_causes_by_layer": control["failure_causes_by_layer"]}
               if "failure_causes_by_layer" in control else {}),
        },
        "discovery": discovery_headline(discovery),
    }
    if "inject" in summaries:
        results["injection"] = {k: summaries["inject"][k]
                                for k in ("switch_step", "at_step", "unseen_transition", "codes_per_colour")}
    if "rl" in summaries:
        results["rl"] = {method: {k: v for k, v in result.items() if k != "curve"}
                         for method, result in summaries["rl"].items()}
    if env == "ant":
        expert = results["expert"]
        relative = lambda rate, task: rate / max(expert[f"success_{task}"], 1e-9)
        results["relative_to_expert"] = {
            "base_model_any_pretrain_task": relative(pretrain["success_any_pretrain_task"], "pretrain_tasks"),
            "base_model_post_task": relative(pretrain["success_post_task"], "post_task"),
            "supervised_control_by_layer": [relative(s, "post_task") for s in control["success_by_layer"]],
        }
        if "rl" in results:
            from irl.stages.rl import THRESHOLDS, episodes_to

            post = expert["success_post_task"]
            results["relative_to_expert"]["rl_final_success_median"] = {
                method: relative(r["final_success_median"], "post_task") for method, r in results["rl"].items()}
            # episodes until the median run reaches each level of the expert's own post-task success
            results["relative_to_expert"]["rl_episodes_to"] = {
                method: {str(level): episodes_to(r["curve"], level * post) if post > 0 else None for level in THRESHOLDS}
                for method, r in summaries["rl"].items()}
    return results


def markdown(results: dict, summaries: dict) -> str:
    r = results
    control = summaries["control"]
    metric = next(k for k in r["pretrain"] if k.startswith("action_"))
    relative = r.get("relative_to_expert")
    lines = [
        f"# Internal RL on {r['env']}, preset `{r['preset']}`",
        "",
        "Every number below was measured by the run that wrote this report.",
        "",
        "## Wall time by stage (s)",
        "",
        _row(list(r["stage_seconds"]) + ["total"]),
        _row(["---"] * (len(r["stage_seconds"]) + 1)),
        _row([f"{s:.0f}" for s in r["stage_seconds"].values()] + [f"{r['total_seconds']:.0f}"]),
        "",
        "## Expert and base model",
        "",
        "| measure | value |",
        "|---|---|",
        _row(["expert success, pretraining tasks", r["expert"]["success_pretrain_tasks"]]),
        _row(["expert success, post-training task", r["expert"]["success_post_task"]]),
        _row(["base model alone (sampling), any pretraining task", r["pretrain"]["success_any_pretrain_task"]]),
        _row(["base model alone (sampling), post-training task", r["pretrain"]["success_post_task"]]),
        _row([f"held-out {metric.replace('_', ' ')}", r["pretrain"][metric]]),
        *([_row(["base model / expert, post-training task", relative["base_model_post_task"]])] if relative else []),
        _row(["training tokens/s", f"{r['pretrain']['tokens_per_s']:.0f}"]),
        _row(["MFU", r["pretrain"]["mfu"]]),
        "",
        "![success vs time](pretrain/success_vs_time.png)",
        "",
        "## Linear probes and supervised controllers, by layer",
        "",
        _row(["layer"] + list(range(len(r["probe"]["accuracy_by_layer"])))),
        _row(["---"] * (len(r["probe"]["accuracy_by_layer"]) + 1)),
        _row(["probe accuracy (chance 0.25)"] + r["probe"]["accuracy_by_layer"]),
        "",
        _row(["controlled layer"] + control["controlled_layers"]),
        _row(["---"] * (len(control["controlled_layers"]) + 1)),
        _row(["post-task success"] + control["success_by_layer"]),
        _row(["per-subgoal completion"] + control["subgoal_completion_by_layer"]),
        *[_row([f"episodes ending: {cause.replace('_', ' ')}"] + fractions)
          for cause, fractions in control.get("failure_causes_by_layer", {}).items() if cause != "success"],
        *([_row(["post-task success / expert's"] + relative["supervised_control_by_layer"])] if relative else []),
        "",
        "![probe accuracy](probe/probe_accuracy_by_layer.png) ![controller success](control/control_success_by_layer.png)",
        "",
        "![controlled episode](control/controlled_episode.png)",
        "",
        *discovery_section(r["discovery"]),
    ]
    if "rl" in r:
        lines += rl_section(r)
    if "injection" in r:
        lines += injection_section(r["injection"])
    return "\n".join(lines)


def injection_section(injection: dict) -> list[str]:
    at_step, unseen = injection["at_step"], injection["unseen_transition"] or {}
    return [
        "## Latent-code injection (metacontroller with prior codes)",
        "",
        f"Colour codes collected per colour: {injection['codes_per_colour']}.",
        "",
        "| injection | episodes | reached without | reached with |",
        "|---|---|---|---|",
        _row([f"colour X's code at step {injection['switch_step']} (reach X)", at_step["episodes"],
              at_step["without_injection"],
              at_step["with_injection"]]),
        _row([f"colour {unseen.get('then', '-')}'s code after colour {unseen.get('first', '-')} (unseen transition)",
              unseen.get("episodes"), unseen.get("without_injection"), unseen.get("with_injection")]),
        "",
        "![injected episodes](inject/injected_episodes.png)",
        "",
    ]


def rl_section(r: dict) -> list[str]:
    relative = r.get("relative_to_expert", {}).get("rl_final_success_median")
    to_level = r.get("relative_to_expert", {}).get("rl_episodes_to", {})
    extra = lambda m: [relative[m], *to_level[m].values()] if relative else []
    return [
        "## Internal RL and baselines (post-training task)",
        "",
        "| method | final success (median) | episodes | episodes to 0.5 | episodes to 0.8 |"
        + (" final / expert's | episodes to 0.5 of expert's | episodes to 0.8 of expert's |" if relative else ""),
        "|---|---|---|---|---|" + ("---|---|---|" if relative else ""),
        *[_row([m, v.get("final_success_median"), v.get("episodes"), v.get("episodes_to_0.5"),
                v.get("episodes_to_0.8"), *extra(m)]) for m, v in r["rl"].items()],
        "",
        "![RL curves](rl/rl_curves.png) ![RL curves, log scale](rl/rl_curves_log.png)",
        "",
        "![internal policy episode](rl/internal_policy_episode.png)",
        "",
    ]


def write_report(env: str, preset: str, workdir: str | Path, summaries: dict, stage_seconds: dict) -> dict:
    workdir = Path(workdir)
    results = headline(env, preset, summaries, stage_seconds)
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    (workdir / "report.md").write_text(markdown(results, summaries))
    return results
