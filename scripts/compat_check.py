"""Static check of the integration against a newer Home Assistant, without installing it.

Reads the `homeassistant` sources (an unpacked wheel) with `ast` only and reports:
- every `homeassistant.*` module and name that custom_components/ems imports, and whether the
  newer release still defines it (or only as a deprecated constant);
- the `StatisticMetaData` keys statistics.py sends, against the newer recorder's TypedDict;
- the TypedDict keys the integration feature-detects (`"key" in X.__annotations__`);
- the pymodbus version the newer core `modbus` integration pins.

Standard library only, so it runs in any of the project's venvs. `scripts/compat` downloads the
wheel and calls `main`; the functions are importable for tests.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
import json
from pathlib import Path
import re
import sys
import zipfile

# A `try:` around an import that catches one of these is feature detection: the name may be absent.
_OPTIONAL_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception"}
# HA keeps a removed constant importable for a while as `_DEPRECATED_<NAME>`, served by the
# module's __getattr__ (homeassistant.helpers.deprecation).
_DEPRECATED_PREFIX = "_DEPRECATED_"
_EXTRACTED = (".py", "package_constraints.txt", "manifest.json")
# Newer releases need Python 3.14, whose `except A, B:` (PEP 758) 3.13's parser rejects; with
# the parentheses added back the module parses the same.
_BARE_EXCEPT_TUPLE = re.compile(r"^(\s*except\*?\s+)(?!\()([^:\n]+?,[^:\n]+?):", re.MULTILINE)
_MARKER = ".complete"


@dataclass(frozen=True)
class ImportedName:
    """One `homeassistant` name imported by the integration; name None: the module itself."""

    module: str
    name: str | None
    file: str
    line: int
    context: str = "runtime"  # runtime | optional (inside try/except ImportError) | typing
    bound: str = ""  # the name the importing module uses (an `as` alias)


@dataclass(frozen=True)
class Finding:
    """What the newer release says about one imported name."""

    imported: ImportedName
    status: str  # ok | submodule | deprecated | missing | missing_module | unparsed

    @property
    def breaks(self) -> bool:
        """A plain import that is gone fails the integration's setup."""
        return self.status in {"missing", "missing_module"} and self.imported.context == "runtime"


# --- the integration's imports --------------------------------------------------------------


def imports_of(source: str, file: str = "<source>") -> list[ImportedName]:
    """Every `homeassistant` import in one module's source, with the context it runs in."""
    found: list[ImportedName] = []

    def visit(node: ast.AST, context: str) -> None:
        if isinstance(node, ast.Try):
            caught = set().union(*(_caught(handler.type) for handler in node.handlers))
            inner = "optional" if caught & _OPTIONAL_IMPORT_ERRORS else context
            for statement in node.body:
                visit(statement, inner)
            for other in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(other, context)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, "typing")
            for statement in node.orelse:
                visit(statement, context)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_ha(node.module):
            module = str(node.module)
            found.extend(
                ImportedName(
                    module, alias.name, file, node.lineno, context, alias.asname or alias.name
                )
                for alias in node.names
            )
        elif isinstance(node, ast.Import):
            found.extend(
                ImportedName(alias.name, None, file, node.lineno, context, alias.asname or "")
                for alias in node.names
                if _is_ha(alias.name)
            )
        for child in ast.iter_child_nodes(node):
            visit(child, context)

    visit(ast.parse(source, file), "runtime")
    return found


def integration_imports(package: Path) -> list[ImportedName]:
    """The `homeassistant` imports of every module under the integration's folder."""
    return [
        name
        for path in sorted(package.rglob("*.py"))
        for name in imports_of(path.read_text(encoding="utf-8"), str(path))
    ]


def attribute_uses(source: str, modules: dict[str, str], file: str) -> list[ImportedName]:
    """`alias.name` uses of modules bound to local names (`modules`: alias -> module)."""
    uses = {
        ImportedName(modules[node.value.id], node.attr, file, node.lineno, "runtime", node.attr)
        for node in ast.walk(ast.parse(source, file))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
    }
    return sorted(uses, key=lambda use: (use.line, use.module, use.bound))


def _is_ha(module: str | None) -> bool:
    return module is not None and (module == "homeassistant" or module.startswith("homeassistant."))


def _caught(node: ast.expr | None) -> set[str]:
    if node is None:
        return {"Exception"}  # a bare except catches an ImportError too
    if isinstance(node, ast.Tuple):
        return set().union(*(_caught(element) for element in node.elts))
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return {node.id} if isinstance(node, ast.Name) else set()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


# --- the newer Home Assistant's modules ------------------------------------------------------


class SourceTree:
    """Python sources under a root folder (site-packages or an unpacked wheel), parsed once."""

    def __init__(self, root: Path) -> None:
        """Read modules from `root`, which holds the `homeassistant` package."""
        self.root = root
        self._parsed: dict[str, ast.Module | None] = {}
        self.unparsed: set[str] = set()

    def module_path(self, module: str) -> Path | None:
        """The module's file: a plain module or a package's __init__.py."""
        base = self.root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def parse(self, module: str) -> ast.Module | None:
        """The module's syntax tree, or None when there is no such module.

        A module this Python cannot parse counts as empty and is listed in `unparsed`.
        """
        if module not in self._parsed:
            path = self.module_path(module)
            self._parsed[module] = None if path is None else self._parse_file(module, path)
        return self._parsed[module]

    def _parse_file(self, module: str, path: Path) -> ast.Module:
        source = path.read_text(encoding="utf-8")
        try:
            return ast.parse(source, str(path))
        except SyntaxError:
            pass
        try:
            return ast.parse(_BARE_EXCEPT_TUPLE.sub(r"\1(\2):", source), str(path))
        except SyntaxError:
            self.unparsed.add(module)
            return ast.Module(body=[], type_ignores=[])

    def is_package(self, module: str) -> bool:
        """Whether the module is a package (a folder with __init__.py)."""
        path = self.module_path(module)
        return path is not None and path.name == "__init__.py"


def module_names(tree: ast.Module) -> set[str]:
    """Names bound at module level: definitions, assignments, imports and `__all__`.

    Bodies of module-level `if`, `try`, `with` and loops count (version switches and optional
    imports live there); function and class bodies do not.
    """
    names: set[str] = set()
    for node in _module_level(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(_bound(targets))
            if _assigns_all(node) and isinstance(node.value, ast.List | ast.Tuple):
                names.update(
                    e.value for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                )  # fmt: skip
        elif isinstance(node, ast.TypeAlias) and isinstance(node.name, ast.Name):
            names.add(node.name.id)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names if a.name != "*")
        elif isinstance(node, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            targets = (
                [node.target] if isinstance(node, ast.For | ast.AsyncFor)
                else [i.optional_vars for i in node.items if i.optional_vars]
            )  # fmt: skip
            names.update(_bound(targets))
    return names


def star_imports(tree: ast.Module, module: str, *, is_package: bool) -> list[str]:
    """Absolute names of the modules this one re-exports with `from x import *`."""
    return [
        _absolute(node, module, is_package=is_package)
        for node in _module_level(tree.body)
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
    ]


def _module_level(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.For | ast.AsyncFor | ast.While | ast.With | ast.AsyncWith):
            yield from _module_level(node.body)
            yield from _module_level(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)


def _bound(targets: Iterable[ast.expr]) -> Iterator[str]:
    for target in targets:
        if isinstance(target, ast.Name):
            yield target.id
        elif isinstance(target, ast.Tuple | ast.List):
            yield from _bound(target.elts)
        elif isinstance(target, ast.Starred):
            yield from _bound([target.value])


def _assigns_all(node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)


def _absolute(node: ast.ImportFrom, module: str, *, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def defines(tree: SourceTree, module: str, name: str, _seen: frozenset[str] = frozenset()) -> str:
    """How `module` provides `name`: ok, deprecated, submodule or missing."""
    parsed = tree.parse(module)
    if parsed is None or module in _seen:
        return "missing"
    names = module_names(parsed)
    if name in names:
        return "ok"
    if tree.module_path(f"{module}.{name}") is not None:
        return "submodule"
    for source in star_imports(parsed, module, is_package=tree.is_package(module)):
        if (status := defines(tree, source, name, _seen | {module})) != "missing":
            return status
    return "deprecated" if f"{_DEPRECATED_PREFIX}{name}" in names else "missing"


def check_imports(tree: SourceTree, imported: Iterable[ImportedName]) -> list[Finding]:
    """One finding per imported module or name."""
    findings = []
    for item in imported:
        if tree.parse(item.module) is None:
            status = "missing_module"
        elif item.name is None:
            status = "ok"
        else:
            status = defines(tree, item.module, item.name)
        if status == "missing" and item.module in tree.unparsed:
            status = "unparsed"  # this Python could not read the module: unknown, not gone
        findings.append(Finding(item, status))
    return findings


# --- TypedDicts: StatisticMetaData and feature-detected keys ---------------------------------


@dataclass(frozen=True)
class TypedDictKeys:
    """A TypedDict's keys, split by whether a value must be given."""

    required: frozenset[str]
    optional: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        """Every key the TypedDict declares."""
        return self.required | self.optional


def find_class(
    tree: SourceTree, module: str, name: str, _seen: frozenset[str] = frozenset()
) -> tuple[str, ast.ClassDef] | None:
    """The class `name` as `module` sees it, following re-exports to where it is defined."""
    parsed = tree.parse(module)
    if parsed is None or module in _seen:
        return None
    seen = _seen | {module}
    for node in _module_level(parsed.body):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
    is_package = tree.is_package(module)
    for node in _module_level(parsed.body):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _absolute(node, module, is_package=is_package)
        for alias in node.names:
            if alias.name == "*" or (alias.asname or alias.name) == name:
                original = name if alias.name == "*" else alias.name
                if found := find_class(tree, source, original, seen):
                    return found
    return None


def typed_dict_keys(tree: SourceTree, module: str, name: str) -> TypedDictKeys | None:
    """The keys of a TypedDict class, with those of TypedDict bases from the same tree."""
    found = find_class(tree, module, name)
    if found is None:
        return None
    home, node = found
    total = all(
        not (k.arg == "total" and isinstance(k.value, ast.Constant) and k.value.value is False)
        for k in node.keywords
    )
    required: set[str] = set()
    optional: set[str] = set()
    for base in node.bases:
        inherited = (
            typed_dict_keys(tree, home, base.id)
            if isinstance(base, ast.Name) and base.id != "TypedDict"
            else None
        )
        if inherited:
            required |= inherited.required
            optional |= inherited.optional
    for statement in node.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            wrapper = _subscript_name(statement.annotation)
            is_required = wrapper == "Required" or (total and wrapper != "NotRequired")
            (required if is_required else optional).add(statement.target.id)
    return TypedDictKeys(frozenset(required), frozenset(optional))


def _subscript_name(annotation: ast.expr) -> str:
    if isinstance(annotation, ast.Subscript):
        value = annotation.value
        if isinstance(value, ast.Name):
            return value.id
        if isinstance(value, ast.Attribute):
            return value.attr
    return ""


@dataclass(frozen=True)
class KeysSent:
    """The keys a function puts into a dict it returns: always, or only behind an `if`."""

    always: frozenset[str]
    conditional: frozenset[str]


def keys_sent(source: str, returns: str) -> KeysSent:
    """String keys of dict literals and `x["key"] = ...` in functions annotated `-> returns`."""
    always: set[str] = set()
    conditional: set[str] = set()

    def visit(node: ast.AST, *, guarded: bool) -> None:
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            (conditional if guarded else always).update(k for k in keys if isinstance(k, str))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                    key = target.slice.value
                    if isinstance(key, str):
                        (conditional if guarded else always).add(key)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded=guarded or isinstance(node, ast.If | ast.IfExp))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and _annotation_name(node.returns) == returns:
            for statement in node.body:
                visit(statement, guarded=False)
    return KeysSent(frozenset(always), frozenset(conditional - always))


def _annotation_name(node: ast.expr | None) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


def metadata_problems(sent: KeysSent, accepted: TypedDictKeys) -> list[str]:
    """Why the recorder would refuse the metadata: unknown keys sent, required keys not sent."""
    problems = [f"sends {key!r}, which StatisticMetaData no longer declares"
                for key in sorted(sent.always - accepted.all)]  # fmt: skip
    sendable = sent.always | (sent.conditional & accepted.all)
    problems += [f"does not send {key!r}, which StatisticMetaData requires"
                 for key in sorted(accepted.required - sendable)]  # fmt: skip
    return problems


def detected_keys(source: str) -> list[tuple[str, str]]:
    """`("key", "Class")` for each `"key" in Class.__annotations__` (or module.Class...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
            continue
        left, (op,), (right,) = node.left, node.ops, node.comparators
        if (
            isinstance(op, ast.In)
            and isinstance(left, ast.Constant)
            and isinstance(left.value, str)
            and isinstance(right, ast.Attribute)
            and right.attr == "__annotations__"
        ):
            found.append((left.value, ast.unparse(right.value)))
    return found


def resolve_owner(
    imported: Iterable[ImportedName], file: str, expression: str
) -> tuple[str, str] | None:
    """(module, class) of `Class` or `module_alias.Class` as imported by `file`."""
    head, _, rest = expression.partition(".")
    for item in imported:
        if item.file != file or item.name is None or item.bound != head or "." in rest:
            continue
        return (f"{item.module}.{item.name}", rest) if rest else (item.module, item.name)
    return None


# --- versions ----------------------------------------------------------------------------------


def ha_version(tree: SourceTree) -> str:
    """MAJOR.MINOR.PATCH from homeassistant/const.py."""
    parsed = tree.parse("homeassistant.const")
    if parsed is None:
        return "unknown"
    parts: dict[str, object] = {}
    for node in parsed.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                parts[target.id] = node.value.value
    return ".".join(str(parts.get(f"{p}_VERSION", "?")) for p in ("MAJOR", "MINOR", "PATCH"))


def pinned_requirement(tree: SourceTree, integration: str, package: str) -> str | None:
    """The requirement a core integration's manifest pins for `package` (e.g. pymodbus==3.13.1)."""
    manifest = tree.root / "homeassistant" / "components" / integration / "manifest.json"
    if not manifest.is_file():
        return None
    requirements = json.loads(manifest.read_text(encoding="utf-8")).get("requirements", [])
    return next((r for r in requirements if re.match(rf"{package}\b", r, re.IGNORECASE)), None)


def _version_key(wheel: Path) -> tuple[int, ...]:
    match = re.match(r"homeassistant-([\d.]+)-", wheel.name)
    return tuple(int(p) for p in match.group(1).strip(".").split(".")) if match else ()


def newest_wheel(folder: Path) -> Path | None:
    """The newest homeassistant wheel in the folder, by version (not by name or date)."""
    wheels = [w for w in folder.glob("homeassistant-*.whl") if _version_key(w)]
    return max(wheels, key=_version_key, default=None)


def unpack(wheel: Path, cache: Path) -> Path:
    """The wheel's sources under cache/<wheel name>/, extracted once (no install, no deps)."""
    target = cache / wheel.stem
    if not (target / _MARKER).exists():
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist()
                       if m.startswith("homeassistant/") and m.endswith(_EXTRACTED)]  # fmt: skip
            archive.extractall(target, members)
        (target / _MARKER).touch()
    return target


# --- the report --------------------------------------------------------------------------------


def report(tree: SourceTree, package: Path, statistics: Path) -> tuple[list[str], bool]:
    """The report's lines and whether anything breaks."""
    imported = integration_imports(package)
    findings = check_imports(tree, imported)
    # `from homeassistant.helpers import config_validation as cv`: cv.string must exist too.
    uses = [
        use
        for path in sorted(package.rglob("*.py"))
        for use in attribute_uses(
            path.read_text(encoding="utf-8"), _module_aliases(tree, findings, path), str(path)
        )
    ]
    findings += check_imports(tree, uses)
    lines = [f"Home Assistant {ha_version(tree)} (from {tree.root})"]
    modules = {f.imported.module for f in findings}
    names = {(f.imported.module, f.imported.name) for f in findings if f.imported.name}
    lines.append(f"checked: {len(modules)} modules, {len(names)} names used by {package}")
    for finding in findings:
        if finding.status in {"ok", "submodule"}:
            continue
        item = finding.imported
        what = f"{item.module}.{item.name}" if item.name else item.module
        where = f"{Path(item.file).name}:{item.line}"
        note = "" if item.context == "runtime" else f" ({item.context} import)"
        lines.append(f"  {finding.status.upper()}: {what} at {where}{note}")
    broken = any(f.breaks for f in findings)

    accepted = typed_dict_keys(
        tree, "homeassistant.components.recorder.models", "StatisticMetaData"
    )
    if accepted is None:
        lines.append("  MISSING: StatisticMetaData (recorder models) not found")
        broken = True
    else:
        sent = keys_sent(statistics.read_text(encoding="utf-8"), "StatisticMetaData")
        problems = metadata_problems(sent, accepted)
        lines.append(
            f"StatisticMetaData: declares {', '.join(sorted(accepted.all))}; "
            f"ems sends {', '.join(sorted(sent.always))}"
            + (
                f" + feature-detected {', '.join(sorted(sent.conditional))}"
                if sent.conditional
                else ""
            )
        )
        lines += [f"  PROBLEM: statistics.py {p}" for p in problems]
        broken = broken or bool(problems)

    for path in sorted(package.rglob("*.py")):
        for key, owner in detected_keys(path.read_text(encoding="utf-8")):
            resolved = resolve_owner(imported, str(path), owner)
            keys = typed_dict_keys(tree, *resolved) if resolved else None
            state = "unresolved" if keys is None else ("present" if key in keys.all else "absent")
            lines.append(f"feature detection {path.name}: {key!r} in {owner}: {state}")

    if tree.unparsed:
        lines.append(f"note: this Python could not parse {', '.join(sorted(tree.unparsed))}")
    pin = pinned_requirement(tree, "modbus", "pymodbus")
    lines.append(f"core modbus pins: {pin or 'nothing'}")
    lines.append("result: " + ("MISSING NAMES (see above)" if broken else "all names found"))
    return lines, broken


def _module_aliases(tree: SourceTree, findings: Iterable[Finding], path: Path) -> dict[str, str]:
    aliases = {}
    for finding in findings:
        item = finding.imported
        if item.file != str(path):
            continue
        if finding.status == "submodule" and item.name:
            aliases[item.bound] = f"{item.module}.{item.name}"
        elif item.name is None and item.bound and tree.parse(item.module) is not None:
            aliases[item.bound] = item.module
    return aliases


def main(argv: list[str] | None = None) -> int:
    """Check the integration against an unpacked wheel (or a site-packages folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--wheels", type=Path, help="folder of downloaded wheels: the newest is used"
    )
    source.add_argument("--ha-root", type=Path, help="folder holding the homeassistant package")
    parser.add_argument("--cache", type=Path, default=Path(".cache/compat"))
    parser.add_argument("--integration", type=Path, default=Path("custom_components/ems"))
    args = parser.parse_args(argv)

    root = args.ha_root
    if args.wheels is not None:
        wheel = newest_wheel(args.wheels)
        if wheel is None:
            print(f"compat: no homeassistant wheel in {args.wheels}", file=sys.stderr)
            return 2
        root = unpack(wheel, args.cache)
    lines, broken = report(SourceTree(root), args.integration, args.integration / "statistics.py")
    print("\n".join(lines))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
