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
