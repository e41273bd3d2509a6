"""The structure stays as built (ARCHITECTURE.md): layers only point down, no import cycles, no
private names borrowed across modules, and each identity source is one package that imports no other
source. Every import counts, also those inside functions. Read from the installed package, which is
what users get."""

import ast
import os

import credproc

PACKAGE = os.path.dirname(os.path.abspath(credproc.__file__))

# highest first; a module may import its own layer (without a cycle) or any lower one
LAYERS = ["entry", "cli", "wiring", "sources", "core"]


def layer_of(module):
    if module in ("credproc._entry", "credproc.__main__", "credproc.fastpath"):
        return "entry"
    if module == "credproc.cli" or module.startswith("credproc.commands"):
        return "cli"
    if module in ("credproc.app", "credproc.config", "credproc.chain", "credproc.context"):
        return "wiring"
    if module.startswith("credproc.sources"):
        return "sources"
    if module == "credproc" or module.startswith("credproc.core"):
        return "core"
    raise AssertionError(f"{module} is in no layer: place it in one (ARCHITECTURE.md) and here")


def source_package(module):
    """'credproc.sources.saml.protocol' -> 'saml'; None for the shared part of the sources layer."""
    parts = module.split(".")
    if len(parts) >= 4 and parts[:2] == ["credproc", "sources"]:
        return parts[2]
    return None


def modules(root=PACKAGE, name="credproc"):
    found = {}
    for folder, _, files in os.walk(root):
        for file in files:
            if file.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, file), root)[:-3].replace(os.sep, ".")
                if rel.endswith("__init__"):
                    rel = rel[:-len("__init__")].rstrip(".")
                module = name + "." + rel if rel else name
                found[module] = os.path.join(folder, file)
    return found


def imports(found):
    """[(importer, imported module, name or None, line, private)] for every import of a credproc module,
    and every `module._name` use of an imported credproc module."""
    result = []
    for module, path in found.items():
        is_package = path.endswith("__init__.py")
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        bound = {}  # local name -> credproc module it names
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target != "credproc" and not target.startswith("credproc."):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    if full in found:
                        result.append((module, full, None, node.lineno, False))
                        bound[alias.asname or alias.name] = full
                    else:
                        private = alias.name.startswith("_") and not alias.name.startswith("__")
                        result.append((module, target, alias.name, node.lineno, private))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("credproc"):
                        result.append((module, alias.name, None, node.lineno, False))
                        if alias.asname:
                            bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and bound[node.value.id] != module):
                result.append((module, bound[node.value.id], node.attr, node.lineno, True))
    return result


def upward(edges, layer=layer_of):
    bad = []
    for importer, imported, name, line, _ in edges:
        if LAYERS.index(layer(imported)) < LAYERS.index(layer(importer)):
            bad.append(f"{importer}:{line} ({layer(importer)}) imports {imported} ({layer(imported)})")
    return bad


def cycles(edges):
    graph = {}
    for importer, imported, *_ in edges:
        if importer != imported:
            graph.setdefault(importer, set()).add(imported)
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def private_uses(edges):
    return [f"{importer}:{line} uses {imported}.{name}" for importer, imported, name, line, private in edges
            if private and importer != imported]


EDGES = imports(modules())


def test_every_module_is_in_a_layer_and_the_package_root_imports_nothing():
    for module in modules():
        layer_of(module)
    assert [e for e in EDGES if e[0] == "credproc"] == []


def test_no_module_imports_a_higher_layer():
    assert upward(EDGES) == []


def test_no_import_cycles():
    assert cycles(EDGES) == []


def test_no_private_name_is_borrowed_across_modules():
    assert private_uses(EDGES) == []


def test_a_source_package_imports_no_other_source_and_the_shared_part_no_source():
    bad = []
    for importer, imported, _, line, _ in EDGES:
        theirs = source_package(imported)
        if importer.startswith("credproc.sources") and theirs and source_package(importer) != theirs:
            bad.append(f"{importer}:{line} imports {imported}")
    assert bad == []


def test_the_checker_sees_what_it_must(tmp_path):
    """The checks above cannot pass vacuously: a planted upward import, cycle and private use are found."""
    pkg = tmp_path / "credproc"
    (pkg / "core").mkdir(parents=True)
    (pkg / "commands").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "commands" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from ..commands import b\n")
    (pkg / "commands" / "b.py").write_text("from ..core import a\nx = a._hidden\n")
    edges = imports(modules(str(pkg)))
    assert upward(edges) == ["credproc.core.a:2 (core) imports credproc.commands.b (cli)"]
    assert cycles(edges) == [["credproc.commands.b", "credproc.core.a", "credproc.commands.b"]]
    assert private_uses(edges) == ["credproc.commands.b:2 uses credproc.core.a._hidden"]
