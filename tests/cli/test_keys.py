"""``polyhead keys``: the database ``polyhead up`` uses, named; revoke says what it did.

(``polyhead promote`` and ``keys create`` against a running suite are in tests/cli/test_up.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main as cli
from services.cli.data_dir import DATA_DIR
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_keys_and_up_default_to_the_same_data_folder_whatever_the_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # e.g. running from data/
    keys = cli.parser().parse_args(["keys", "create", "app"])
    up = cli.parser().parse_args(["up"])
    assert keys.data_dir == up.data_dir == DATA_DIR == ROOT / "var"


def test_keys_create_goes_to_the_data_folder_and_says_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["keys", "create", "app", "--data-dir", "var"]) == 0
    out, err = capsys.readouterr()
    database = tmp_path / "var" / "polyhead.db"
    assert out.startswith("ph_")
    assert f"stored in sqlite:///{database}" in err and database.exists()


def test_database_url_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert cli.main(["keys", "create", "app", "--data-dir", str(tmp_path / "var")]) == 0
    assert f"stored in sqlite:///{tmp_path / 'elsewhere.db'}" in capsys.readouterr().err
    assert not (tmp_path / "var").exists()


def test_keys_revoke_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--data-dir", str(tmp_path)]
    assert cli.main(["keys", "create", "app", *where]) == 0
    capsys.readouterr()

    assert cli.main(["keys", "revoke", "app", *where]) == 0
    assert capsys.readouterr().out.startswith(
        f"revoked the key 'app' in sqlite:///{tmp_path / 'polyhead.db'}")

    assert cli.main(["keys", "revoke", "app", *where]) == 0
    out = capsys.readouterr().out
    assert "the key 'app' was already revoked" in out and "nothing changed" in out

    assert cli.main(["keys", "revoke", "nobody", *where]) == 1
    assert "no key named 'nobody'" in capsys.readouterr().err
