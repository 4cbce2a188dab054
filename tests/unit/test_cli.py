"""`pickup` as a person meets it: --version, help for every option with its default, and
arguments that make no sense refused before anything runs."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from service import cli


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"pickup {version('pickup-service')}"


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_option_has_help_and_shows_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    commands: list[str] = []
    for prog, parser in _parsers(cli.build_parser()):
        commands.append(prog)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            assert action.help, f"{prog} {action.dest} has no help"
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.option_strings and action.default not in (None, argparse.SUPPRESS):
                assert f"(default: {action.default})" in text, f"{prog} {action.dest}"
    assert "pickup seed" in commands and "pickup db rollback" in commands


@pytest.mark.parametrize(
    "argv",
    [["seed", "--orders", "-5"], ["seed", "--stores", "0"], ["db", "rollback", "--steps", "0"]],
)
def test_nonsense_counts_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        cli.main(argv)
    assert refused.value.code == 2
    assert "must be" in capsys.readouterr().err
