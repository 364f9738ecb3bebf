"""The docs name only reports that exist: every `reports/...` path in README.md and docs/ is a committed file or
folder, unless its line says the report is not made yet."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"reports/[A-Za-z0-9_./*-]*[A-Za-z0-9_*/]")


def test_every_report_the_docs_name_exists():
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text().splitlines(), start=1):
            if "not run yet" in line:
                continue
            for path in PATH.findall(line):
                if not list(ROOT.glob(path.rstrip("/"))):
                    missing.append(f"{doc.name}:{number}: {path}")
    assert missing == []


def test_every_test_the_guarantees_name_exists():
    """docs/guarantees.md backs each promise with tests, `tests/file.py::name` or `::name` for the file named last."""
    text = (ROOT / "docs" / "guarantees.md").read_text()
    missing, file = [], None
    for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)", text):
        file = path or file
        if file is None or not re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.MULTILINE):
            missing.append(f"{file}::{name}")
    assert len(re.findall(r"::\w+", text)) > 10 and missing == []


def test_every_script_command_the_docs_give_names_a_live_module_and_its_options():
    """`python -m experiments.X --opt` or `benchmarks.X` in README.md and docs/: X is a module here, or one that
    usage.md lists as retired (and is gone), and each plain `--opt` on the line is an option its source defines
    (dotted ones pass through to longdiv's CLI and are checked by the config tests)."""
    usage = (ROOT / "docs" / "usage.md").read_text()
    retired_text = " ".join(usage.split("### Retired analyses", 1)[1].split("\n#", 1)[0].split())
    retired = set(re.findall(r"(?<!lives on in )`((?:experiments|benchmarks)\.\w+)`", retired_text))
    command = re.compile(r"python -m ((?:experiments|benchmarks)\.\w+)([^`#]*)")
    problems, seen = [], set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text().splitlines(), start=1):
            for module, rest in command.findall(line):
                seen.add(module)
                path = ROOT / (module.replace(".", "/") + ".py")
                if module in retired:
                    if path.exists():
                        problems.append(f"{doc.name}:{number}: {module} is listed as retired but still exists")
                    continue
                if not path.exists():
                    problems.append(f"{doc.name}:{number}: no module {module}")
                    continue
                source = path.read_text()
                for option in re.findall(r"(?<![\w-])--([a-z][a-z0-9_]*)(?![\w.])", rest):
                    if not re.search(rf"""["']--{option}["']""", source):
                        problems.append(f"{doc.name}:{number}: {module} defines no --{option}")
    assert len(seen) > 15 and retired and problems == []
