"""The README keeps its promises: two commands first, every setting documented."""
from pathlib import Path

from spkt.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["./spkt.sh up --demo", "./spkt.sh test"]


def test_every_setting_is_documented():
    missing = [f"SPKT_{name.upper()}" for name in Settings.model_fields if f"`SPKT_{name.upper()}`" not in README]
    assert missing == []
