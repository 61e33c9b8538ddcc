"""The README and the pages under docs/ point only at files that exist: every link and image,
and every results file they cite; every "SPEC.md section N" in the code and pages names a
section SPEC.md has; every config override a written command gives names a field its config
has."""

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


def _config_flags() -> dict[str, dict[str, str]]:
    """{script: {config flag: its default `<file>.py:<spec>`}} of every script in experiments/."""
    found = {}
    for script in (ROOT / "experiments").glob("*.py"):
        for flag, default in re.findall(r'DEFINE_config_file\(\s*"(\w+)",\s*"([^"]+)"', script.read_text()):
            found.setdefault(script.stem, {})[flag] = default
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


def config_overrides(text: str, flags: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    """(script, `--<config flag>.<field>`, the config that flag reads as `<file>.py:<spec>`) for every
    `--<config flag>.<field>=` of every command to a script of experiments/ written in text."""
    found = []
    for script, args in COMMAND.findall(text.replace("\\\n", " ")):
        for flag, default in flags.get(script, {}).items():
            named = re.search(rf"--{flag}=(\S+\.py:[\w-]+)", args)
            spec = named.group(1) if named else default
            found += [(script, f"--{flag}.{field}", spec) for field in re.findall(rf"--{flag}\.([\w.]+)=", args)]
    return found


def test_config_overrides_are_found_in_written_commands():
    flags = _config_flags()
    text = ("python experiments/discover.py --pretrained=p --config.alphas='(0.1,)' \\\n"
            "  --config.train.steps=4\npython experiments/control.py --config=experiments/configs/ant.py:analysis-small"
            " --config.control.layers='(2,)' and prose --config.not.this=1")
    assert config_overrides(text, flags) == [
        ("discover", "--config.alphas", "experiments/configs/grid.py:discover-small"),
        ("discover", "--config.train.steps", "experiments/configs/grid.py:discover-small"),
        ("control", "--config.control.layers", "experiments/configs/ant.py:analysis-small")]
    assert not _has_field(_load_config("experiments/configs/grid.py:discover-small"), "train.no_such_field")


def test_every_written_config_override_names_a_field_of_its_config():
    """A renamed or removed config field would break every command that still sets it; the
    commands in the pages and results files are how a run is repeated."""
    flags = _config_flags()
    configs, checked, stale = {}, 0, []
    for source in COMMAND_SOURCES:
        for script, override, spec in config_overrides(source.read_text(), flags):
            if spec not in configs:
                configs[spec] = _load_config(spec)
            checked += 1
            if not _has_field(configs[spec], override.split(".", 1)[1]):
                stale.append(f"{source.relative_to(ROOT)}: experiments/{script}.py {override} (config {spec})")
    assert checked > 100, f"only {checked} overrides found: has the commands' form changed?"
    assert not stale, "config overrides naming no field:\n" + "\n".join(stale)
