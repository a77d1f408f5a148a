"""Tests for ``xorlab.store.provenance``: the code version recorded with every session is xorlab's own."""

from __future__ import annotations

import subprocess

from xorlab.store import provenance


def git(*args: object) -> str:
    return subprocess.run(["git", *map(str, args)], capture_output=True, text=True, check=True).stdout.strip()


def test_a_checkout_records_its_commit():
    version = provenance.code_version()
    assert version["git_commit"] == git("-C", provenance.SOURCE_ROOT, "rev-parse", "HEAD")
    assert isinstance(version["git_dirty"], bool)


def test_an_installed_package_inside_another_repository_records_no_commit(tmp_path):
    """A wheel installed into ``project/.venv`` of the user's own git repository: that repository's commit is
    not xorlab's code version."""
    project = tmp_path / "project"
    site_packages = project / ".venv" / "lib" / "python3.11" / "site-packages"
    site_packages.mkdir(parents=True)
    git("init", "-q", project)
    git("-C", project, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "--allow-empty", "-m", "theirs")
    assert provenance.code_version(site_packages) == {"git_commit": None, "git_dirty": None}
    # the same repository, as the root of the package, is a checkout (so the check above can fail)
    assert provenance.code_version(project)["git_commit"] == git("-C", project, "rev-parse", "HEAD")


def test_outside_any_repository_records_no_commit(tmp_path):
    assert provenance.code_version(tmp_path) == {"git_commit": None, "git_dirty": None}
