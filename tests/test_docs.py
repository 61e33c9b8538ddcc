"""The README and the pages under docs/ point only at files that exist: every link and image,
and every results file they cite; every "SPEC.md section N" in the code and pages names a
section SPEC.md has; every command written down sets only flags its script defines and config
fields its config has."""

from __future__ import annotations

import importlib
import itertools
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _expand_braces(path: str) -> list[str]:
    """`a-{b,c}.json` -> [`a-b.json`, `a-c.json`]."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_and_image_of_a_page_exists(page):
    text = page.read_text()
    targets = [t for t in re.findall(r"\]\(([^)\s#]+)[^)]*\)", text) if not re.match(r"[a-z]+://", t)]
    assert targets or page.name != "README.md"
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_results_file_a_page_cites_exists(page):
    cited = re.findall(r"(?:docs|benchmarks)/results/[\w.{},-]+\.(?:json|md)", page.read_text())
    missing = [p for c in cited for p in _expand_braces(c) if not (ROOT / p).exists()]
    assert not missing, f"{page.name} cites missing results files: {missing}"


def test_every_spec_section_cited_exists():
    sections = set(re.findall(r"^## (\d+)\. ", (ROOT / "SPEC.md").read_text(), flags=re.M))
    code = [path for folder in ("irl", "experiments", "benchmarks", "tests") for path in (ROOT / folder).rglob("*.py")]
    cited = {}
    for path in [*PAGES, *code]:
        for numbers in re.findall(r"SPEC\.md,? sections? (\d+(?:(?:, | and )\d+)*)", path.read_text()):
            for n in re.findall(r"\d+", numbers):
                cited.setdefault(n, []).append(path.relative_to(ROOT).as_posix())
    assert cited, "no SPEC.md section is cited anywhere"
    missing = {n: paths for n, paths in cited.items() if n not in sections}
    assert not missing, f"cited SPEC.md sections that do not exist: {missing}"


# Where commands are written down: the pages, the benchmark scripts and their results, the
# results files (each records the commands that made it) and the Makefile.
COMMAND_SOURCES = [*PAGES, *sorted((ROOT / "benchmarks").glob("*.sh")),
                   *sorted((ROOT / "benchmarks" / "results").glob("*.md")),
                   *sorted((ROOT / "docs" / "results").glob("*.json")), ROOT / "Makefile"]
# `experiments/<script>.py` and the arguments after it: flags, `--flag=value`, quoted values
COMMAND = re.compile(r"experiments/(\w+)\.py((?:\s+(?:--[\w.]+(?:=(?:'[^']*'|\"[^\"]*\"|[^\s`\"]+))?)){0,60})")


def _script_flags() -> dict[str, dict[str, str | None]]:
    """{script: {flag it defines: for a config file flag its default `<file>.py:<spec>`, else
    None}} of every script in experiments/."""
    found = {}
    for script in (ROOT / "experiments").glob("*.py"):
        for kind, flag, default in re.findall(r'DEFINE_(\w+)\(\s*"(\w+)",\s*("[^"]*"|[^,]+)', script.read_text()):
            found.setdefault(script.stem, {})[flag] = default.strip('"') if kind == "config_file" else None
    return found


def _load_config(spec: str):
    path, arg = spec.split(":")
    return importlib.import_module(path.removesuffix(".py").replace("/", ".")).get_config(arg)


def _has_field(config, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node.keys():
            return False
        node = node[part]
    return True


def written_flags(text: str, flags: dict[str, dict[str, str | None]]) -> list[tuple[str, str, str | None]]:
    """(script, flag as written, for `--<config flag>.<field>` the config that flag reads as
    `<file>.py:<spec>`, else None) for every flag of every command to a script of
    experiments/ written in text."""
    found = []
    for script, args in COMMAND.findall(text.replace("\\\n", " ")):
        for flag, field in re.findall(r"(?:^|\s)--(\w+)((?:\.\w+)*)", args):
            spec = None
            if field and flags.get(script, {}).get(flag):
                named = re.search(rf"--{flag}=(\S+\.py:[\w-]+)", args)
                spec = named.group(1) if named else flags[script][flag]
            found.append((script, f"--{flag}{field}", spec))
    return found


def test_flags_are_found_in_written_commands():
    flags = _script_flags()
    assert flags["discover"]["config"] == "experiments/configs/grid.py:discover-small"
    assert flags["discover"]["workdir"] is None
    text = ("python experiments/discover.py --pretrained=p --config.alphas='(0.1,)' \\\n"
            "  --config.train.steps=4\npython experiments/control.py --config=experiments/configs/ant.py:analysis-small"
            " --config.control.layers='(2,)' --noprogress and prose --config.not.this=1")
    discover, control = "experiments/configs/grid.py:discover-small", "experiments/configs/ant.py:analysis-small"
    assert written_flags(text, flags) == [
        ("discover", "--pretrained", None), ("discover", "--config.alphas", discover),
        ("discover", "--config.train.steps", discover), ("control", "--config", None),
        ("control", "--config.control.layers", control), ("control", "--noprogress", None)]
    assert not _has_field(_load_config(discover), "train.no_such_field")


def test_every_written_command_sets_only_flags_and_config_fields_that_exist():
    """A renamed or removed flag or config field would break every command that still sets
    it; the commands in the pages and results files are how a run is repeated."""
    flags = _script_flags()
    configs, checked, stale = {}, 0, []
    for source in COMMAND_SOURCES:
        for script, flag, spec in written_flags(source.read_text(), flags):
            name = flag[2:].split(".")[0]
            defined = flags.get(script, {})
            if spec:
                if spec not in configs:
                    configs[spec] = _load_config(spec)
                exists = _has_field(configs[spec], flag.split(".", 1)[1])
            else:  # absl's --noX sets a boolean X
                exists = name in defined or (name.startswith("no") and name[2:] in defined)
            checked += 1
            if not exists:
                where = f" (config {spec})" if spec else ""
                stale.append(f"{source.relative_to(ROOT)}: experiments/{script}.py {flag}{where}")
    assert checked > 400, f"only {checked} flags found: has the commands' form changed?"
    assert not stale, "written commands set what does not exist:\n" + "\n".join(stale)
