"""docs/architecture.md draws the state machines from the transitions table: each machine's
diagram in the document is exactly ``mermaid(machine)``, so the picture cannot drift from the
table the code checks every status write against."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackvol.db.transitions import MACHINES, Machine, mermaid

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def mermaid_blocks(text: str) -> list[str]:
    """The bodies of the document's ```mermaid fences."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is None and line.strip() == "```mermaid":
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_the_document_draws_the_machine_as_the_table_says(machine: Machine) -> None:
    drawn = mermaid(machine)
    assert drawn in mermaid_blocks(DOC.read_text()), (
        f"docs/architecture.md: the {machine.name} diagram differs from the transitions table; "
        f"paste mermaid({machine.name.upper()}) from stackvol.db.transitions:\n{drawn}")


def test_the_document_has_one_diagram_per_machine() -> None:
    assert len(mermaid_blocks(DOC.read_text())) >= len(MACHINES)
    assert "## State machines" in DOC.read_text()
