"""The exchange over a real https:// remote: ``git http-backend`` behind TLS on 127.0.0.1 with a
self-signed certificate. The CA is given as a user would (GIT_SSL_CAINFO, or exchange_git.ca_file in
config.yml); without it the remote is unreachable and the commit waits. Credentials come from a git
credential helper, never from the URL, and never reach the history, the clone's config or output."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from cyclotron_py.cli import main
from cyclotron_py.store import Store
from tests.integration.https_git import bare_repository, git_https_server
from tests.unit.test_exchange import LEAK, git, manifest_for

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A global git config of our own (the credential helper test writes one)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_SSL_CAINFO", raising=False)


def _state(tmp_path: Path, host: str, **exchange: str) -> Path:
    state = tmp_path / "state" / host
    state.mkdir(parents=True)
    if exchange:
        (state / "config.yml").write_text(yaml.safe_dump({"exchange_git": exchange}))
    return state


def _everything_stored(state: Path) -> str:
    """The store's rows and the clone's config, as text: where a credential must never be."""
    with sqlite3.connect(state / "cyclotron.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [repr(row) for table in tables for row in db.execute(f"SELECT * FROM {table}")]
    configs = [p.read_text() for p in (state / "exchange").glob("*/.git/config")]
    return "\n".join(rows + configs)


def test_publish_and_fetch_over_https_with_the_ca_from_the_environment_or_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with git_https_server(tmp_path) as server:
        bare = bare_repository(server, "exchange.git")
        url = server.url("exchange.git")
        # laptop: the CA in the environment, as git itself reads it.
        monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(_state(tmp_path, "laptop")))
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca_file))
        assert main(["exchange", "publish", "--repo", url, "--host", "laptop",
                     "--manifest", str(manifest_for("laptop", tmp_path / "m"))]) == 0
        monkeypatch.delenv("GIT_SSL_CAINFO")
        # desktop and the reader: exchange_git.ca_file in config.yml.
        config = {"repo": url, "ca_file": str(server.ca_file)}
        monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(_state(tmp_path, "desktop", **config)))
        assert main(["exchange", "publish", "--host", "desktop",
                     "--manifest", str(manifest_for("desktop", tmp_path / "m", "pc2"))]) == 0
        assert capsys.readouterr().out.count(": pushed") == 2
        monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(_state(tmp_path, "reader", **config)))
        assert main(["exchange", "fetch", "--into", str(tmp_path / "out")]) == 0
        assert "2 manifest(s)" in capsys.readouterr().out
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["desktop.json", "laptop.json"]
        assert any(r.startswith("POST /exchange.git/git-receive-pack") for r in server.requests)
    assert git("log", "--format=%s", "main", cwd=bare).splitlines() == [
        "desktop: manifest and status (ACTIVE)", "laptop: manifest and status (ACTIVE)"]
    assert git("rev-list", "--merges", "main", cwd=bare) == ""


def test_without_the_ca_the_remote_is_unreachable_and_the_commit_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with git_https_server(tmp_path) as server:
        bare = bare_repository(server, "exchange.git")
        state = _state(tmp_path, "laptop")
        monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(state))
        args = ["exchange", "publish", "--repo", server.url("exchange.git"), "--host", "laptop",
                "--manifest", str(manifest_for("laptop", tmp_path / "m"))]
        assert main(args) == 0
        assert "1 unpushed since" in capsys.readouterr().out
        with Store.open(state) as store:
            details = [e["detail"] for e in store.exchange_events() if e["outcome"] == "unreachable"]
        assert details and "certificate" in details[0].lower(), details
        assert git("rev-list", "--all", cwd=bare) == ""
        # The CA given: the next publish pushes the kept commit.
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca_file))
        assert main(args) == 0
        assert ": pushed" in capsys.readouterr().out
    assert git("log", "--format=%s", "main", cwd=bare) == "laptop: manifest and status (ACTIVE)"


def test_a_ca_file_that_does_not_exist_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(_state(tmp_path, "pc1", ca_file=str(tmp_path / "nope.pem"))))
    assert main(["exchange", "fetch", "--repo", "https://127.0.0.1:9/x.git", "--into", str(tmp_path / "o")]) == 1
    assert "exchange_git.ca_file" in capsys.readouterr().err


def test_credentials_come_from_a_helper_and_never_reach_history_config_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = LEAK
    with git_https_server(tmp_path, credentials=("cyc", token)) as server:
        bare = bare_repository(server, "exchange.git")
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca_file))
        state = _state(tmp_path, "laptop")
        monkeypatch.setenv("CYCLOTRON_STATE_DIR", str(state))
        manifest = str(manifest_for("laptop", tmp_path / "m"))

        # The token in the URL: refused before anything is stored, and not shown.
        leaky = server.url("exchange.git", user=f"cyc:{token}")
        assert main(["exchange", "publish", "--repo", leaky, "--host", "laptop", "--manifest", manifest]) == 1
        captured = capsys.readouterr()
        assert token not in captured.out + captured.err and "credential helper" in captured.err
        assert f"https://127.0.0.1:{server.port}/exchange.git" in captured.err

        # No helper yet: the server says 401 and git may not prompt: unreachable, nothing leaks.
        url = server.url("exchange.git", user="cyc")
        assert main(["exchange", "publish", "--repo", url, "--host", "laptop", "--manifest", manifest]) == 0
        assert "unpushed" in capsys.readouterr().out

        # The way a user keeps a token: a credential helper in their git config.
        store_file = tmp_path / "home" / ".git-credentials"
        store_file.write_text(f"https://cyc:{token}@127.0.0.1:{server.port}\n")
        store_file.chmod(0o600)
        git("config", "--global", "credential.helper", f"store --file={store_file}")
        assert main(["exchange", "publish", "--repo", url, "--host", "laptop", "--manifest", manifest]) == 0
        out = capsys.readouterr()
        assert ": pushed" in out.out and token not in out.out + out.err
        assert git("log", "--format=%s", "main", cwd=bare) == "laptop: manifest and status (ACTIVE)"

        # Nowhere in the store (runs, exchange events, history) nor in the clone's config.
        stored = _everything_stored(state)
        assert token not in stored
        assert f"https://127.0.0.1:{server.port}/exchange.git" in stored
        with Store.open(state) as store:
            assert {r["inventory"] for r in store.runs()} == {f"https://127.0.0.1:{server.port}/exchange.git"}
