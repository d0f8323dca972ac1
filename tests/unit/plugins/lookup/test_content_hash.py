import os

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.webinfra.distributed.plugins.lookup.content_hash import LookupModule, tree_digest


def make_tree(base, files):
    for rel, content in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return base


def test_same_content_same_digest_regardless_of_mtime(tmp_path):
    a = make_tree(tmp_path / "a", {"app.py": "x = 1\n", "pkg/mod.py": "y = 2\n"})
    b = make_tree(tmp_path / "b", {"pkg/mod.py": "y = 2\n", "app.py": "x = 1\n"})
    os.utime(b / "app.py", (0, 0))
    assert tree_digest(str(a)) == tree_digest(str(b))


@pytest.mark.parametrize(
    "change",
    [
        {"app.py": "x = 2\n"},  # content
        {"other.py": ""},  # new file
    ],
)
def test_any_content_change_changes_digest(tmp_path, change):
    base = {"app.py": "x = 1\n"}
    a = make_tree(tmp_path / "a", base)
    b = make_tree(tmp_path / "b", {**base, **change})
    assert tree_digest(str(a)) != tree_digest(str(b))


def test_rename_changes_digest(tmp_path):
    a = make_tree(tmp_path / "a", {"app.py": "x\n"})
    b = make_tree(tmp_path / "b", {"main.py": "x\n"})
    assert tree_digest(str(a)) != tree_digest(str(b))


def test_executable_bit_counts(tmp_path):
    a = make_tree(tmp_path / "a", {"run.sh": "echo\n"})
    b = make_tree(tmp_path / "b", {"run.sh": "echo\n"})
    (b / "run.sh").chmod(0o755)
    assert tree_digest(str(a)) != tree_digest(str(b))


def test_bytecode_and_caches_ignored(tmp_path):
    a = make_tree(tmp_path / "a", {"app.py": "x\n"})
    b = make_tree(tmp_path / "b", {"app.py": "x\n", "__pycache__/app.cpython-311.pyc": "junk", "old.pyc": "j"})
    assert tree_digest(str(a)) == tree_digest(str(b))


def test_file_digest_is_plain_sha256(tmp_path):
    f = tmp_path / "app.tar.gz"
    f.write_bytes(b"abc")
    assert tree_digest(str(f)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_lookup_missing_path_names_it(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(AnsibleLookupError, match="nope"):
        LookupModule().run([str(missing)], variables={})
