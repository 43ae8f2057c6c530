"""The package's layout rules (STYLE.md 1, 16, 18): layers, homes, sizes."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import execctx_nb

PACKAGE = Path(execctx_nb.__file__).parent
GENERATED = {
    "_connection/_sync.py",
    "_store/_sync.py",
    "_store/_sync_leases.py",
    "_store/_sync_archive.py",
    "_store/_sync_index.py",
    "_store/_sync_flow.py",
    "_store/_sync_parts.py",
    "_events/_subscriber.py",
}
SUBMODULES = {"demo", "display", "errors", "events", "inference", "keys", "widgets"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_package_module_imports_the_facade() -> None:
    for path in _modules():
        if path == PACKAGE / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "execctx_nb":
                names = {a.name for a in node.names}
                assert names <= SUBMODULES, (
                    f"{path.relative_to(PACKAGE)} imports {names} from the facade"
                )


def _logic_lines(path: Path) -> int:
    # Lines that hold code: not blank, not comments, not docstrings.
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docstrings)


def test_modules_stay_under_about_400_lines_of_logic() -> None:
    sizes = {str(p.relative_to(PACKAGE)): _logic_lines(p) for p in _modules()}
    big = {name: n for name, n in sizes.items() if n > 400}
    assert not big, f"split these modules: {big}"


def test_one_health_state_and_one_home_per_helper() -> None:
    seen: dict[str, list[str]] = {}
    for path in _modules():
        rel = str(path.relative_to(PACKAGE))
        if rel in GENERATED:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                name = node.name
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
            else:
                continue
            seen.setdefault(name, []).append(rel)
    for name in ("HealthState", "resolve_tenant", "event_idempotency_key", "idempotency_key"):
        assert len(seen.get(name, [])) == 1, (name, seen.get(name))
    assert seen["resolve_tenant"] == ["_records.py"]
    assert seen["event_idempotency_key"] == seen["idempotency_key"] == ["_idempotency.py"]


def test_the_notebook_layer_never_touches_a_raw_client() -> None:
    for path in [*(PACKAGE / "widgets").glob("*.py"), PACKAGE / "magics.py"]:
        text = path.read_text()
        assert ".client" not in text and "make_client" not in text, path.name
        assert "store: Any" not in text and "._closed" not in text, path.name
