"""The package uses only its dependencies' public names (issue #24: `MultiFernet._fernets` went in
cryptography 51 and `key check` crashed for every new user).

A name with one leading underscore that the package reads but never defines itself is a
dependency's (`part._payload`, `client._imap`, `self._instance` inherited from a Dagster class),
as is a module path with such a component (`from dagster._core ... import`). What has no public
equivalent is allowed here, each with its reason, and checked to still exist, so a re-lock that
removes one fails a test that names it instead of a run.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mail_pipeline"

# module (relative to the package) -> dependency private names it may use, and why.
ALLOWED: dict[str, set[str]] = {
    # The one adapter under imapclient (pipelined FETCH/STATUS, capabilities off the greeting):
    # imapclient has no public accessor for its imaplib connection, imaplib no public way to send
    # a command without waiting. Checked by test_the_imap_wire_private_names_still_exist.
    "imap/wire.py": {
        "_imap",
        "_create_IMAP4",
        "_timeout",
        "_command",
        "_command_complete",
        "_get_capabilities",
        "_encoding",
    },
    # check_run_worker_health's result type has no public name in dagster 1.13 (RunLauncher is a
    # documented extension point, its result is not exported).
    "defs/run_launcher.py": {"dagster._core.launcher"},
    # AssetCheckEvaluation's public `target_materialization_data` takes this unexported type.
    "defs/checks.py": {"dagster._core.definitions.asset_checks.asset_check_evaluation"},
}


# Named tuples' documented methods and fields carry an underscore only so as not to clash with
# field names (collections.namedtuple's docs): public API, e.g. urllib's SplitResult._replace.
NAMEDTUPLE_API = {"_asdict", "_field_defaults", "_fields", "_make", "_replace"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in NAMEDTUPLE_API


def defined_names(trees: list[ast.AST]) -> set[str]:
    """Every underscore name the package defines: functions, classes, variables, arguments,
    attributes it assigns (`self._x = ...`), class fields, import aliases."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {name for name in names if is_private(name)}


def private_uses(tree: ast.AST, own: set[str]) -> set[str]:
    """Dependency private names `tree` reads, and private module paths it imports."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            modules = []
        found |= {
            m
            for m in modules
            if not m.startswith("mail_pipeline") and any(map(is_private, m.split(".")))
        }
        if isinstance(node, ast.Attribute) and is_private(node.attr) and node.attr not in own:
            found.add(node.attr)
    return found


def package_private_uses() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    trees = {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(), str(path))
        for path in files
    }
    own = defined_names(list(trees.values()))
    found = {name: private_uses(tree, own) for name, tree in trees.items()}
    for name, tree in trees.items():
        found[name] |= overridden_hooks(name, tree)
    return {name: uses for name, uses in found.items() if uses}


def overridden_hooks(relative: str, tree: ast.AST) -> set[str]:
    """Private names a class in `tree` defines that a base from a dependency has: a private hook
    overridden (`_create_IMAP4`) or a dependency attribute shadowed. Only classes with such
    members are imported."""
    members = {
        node.name: {
            item.name
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        | {
            target.id
            for item in node.body
            if isinstance(item, (ast.Assign, ast.AnnAssign))
            for target in (item.targets if isinstance(item, ast.Assign) else [item.target])
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.bases
    }
    members = {cls: {name for name in names if is_private(name)} for cls, names in members.items()}
    if not any(members.values()):
        return set()
    module = importlib.import_module(
        "mail_pipeline." + relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    )
    found = set()
    for cls_name, names in members.items():
        cls = getattr(module, cls_name, None)
        for base in cls.__mro__[1:] if isinstance(cls, type) else ():
            if not base.__module__.startswith("mail_pipeline"):
                found |= {name for name in names if name in vars(base)}
    return found


def test_the_package_uses_no_private_names_of_its_dependencies():
    unexpected = {
        module: sorted(uses - ALLOWED.get(module, set()))
        for module, uses in package_private_uses().items()
        if uses - ALLOWED.get(module, set())
    }
    assert unexpected == {}


def test_the_allow_list_has_nothing_stale():
    uses = package_private_uses()
    assert {
        module: sorted(names - uses.get(module, set()))
        for module, names in ALLOWED.items()
        if names - uses.get(module, set())
    } == {}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("encoded = part._payload", {"_payload"}),
        ("self.client._imap.debug = 0", {"_imap"}),
        ("run = self._instance.get_run_by_id(x)", {"_instance"}),
        ("from dagster._core.storage.tags import X", {"dagster._core.storage.tags"}),
        ("import dagster._core.launcher", {"dagster._core.launcher"}),
        ("self._mine = 1\nprint(self._mine, other._mine)", set()),
        ("def _helper(): pass\nmodule._helper()", set()),
        ("from mail_pipeline.imap import _x\nprint(x.__class__)", set()),
    ],
)
def test_what_counts_as_a_dependency_private_name(source, expected):
    tree = ast.parse(source)
    assert private_uses(tree, defined_names([tree])) == expected


@pytest.mark.integration
def test_the_imap_wire_private_names_still_exist(dovecot):
    from mail_pipeline.imap import wire

    client = wire.GreetedClient("127.0.0.1", port=dovecot.port, ssl=False)
    try:
        connection = wire.connection(client)
        missing = [f"IMAPClient.{n}" for n in wire.CLIENT_PRIVATE if not hasattr(client, n)]
        missing += [
            f"imaplib.IMAP4.{n}" for n in wire.CONNECTION_PRIVATE if not hasattr(connection, n)
        ]
    finally:
        client.shutdown()
    assert missing == [], f"imapclient/imaplib no longer have {missing}: imap/wire.py must change"
    assert set(wire.CLIENT_PRIVATE + wire.CONNECTION_PRIVATE) == ALLOWED["imap/wire.py"]


def test_dagster_still_has_the_unexported_names_and_tag_strings_we_use():
    from dagster._core.storage import tags

    from mail_pipeline.defs import run_launcher, sensors

    assert (sensors.ASSET_PARTITION_RANGE_START_TAG, sensors.ASSET_PARTITION_RANGE_END_TAG) == (
        tags.ASSET_PARTITION_RANGE_START_TAG,
        tags.ASSET_PARTITION_RANGE_END_TAG,
    )
    assert {status.name for status in run_launcher.WorkerStatus} >= {"RUNNING", "FAILED", "SUCCESS"}
