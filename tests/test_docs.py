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
