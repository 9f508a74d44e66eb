"""The README's two commands stay true: CI runs the second one verbatim."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = text.split("```bash\n")[1:3]
    return [block.split("\n```", 1)[0].strip() for block in blocks]


def test_ci_runs_the_readme_test_command() -> None:
    install, tests = _commands()
    assert "music-pipeline up" in install and ".venv" in install
    assert "pytest" in tests
    assert tests in (REPO / ".ci" / "run").read_text().splitlines()


def test_workspace_points_at_the_definitions() -> None:
    assert "music_pipeline.definitions" in (REPO / "workspace.yaml").read_text()
