"""The mutation sites of bench/mutation.py: each target module parsed with `ast`, its sites listed with mutmut-like
operators (see bench/mutation.py's docstring for the list and what is skipped), and one mutation applied to a
module's source."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOG_OBJECTS = {"log", "logger", "logging", "_log", "LOG", "LOGGER", "warnings"}
NO_MUTATE = "pragma: no mutate"
CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in",
            ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


@dataclass
class Site:
    module: str
    line: int
    col: int
    end_line: int
    end_col: int
    operator: str
    replacement: str
    original: str = ""  # the source line as it is
    mutated: str = ""  # the source line(s) after the mutation (first line shown)

    @property
    def where(self) -> str:
        return f"{self.module}:{self.line}"


# ----------------------------------------------------------------------------------------------------------------
# sites


def _is_log_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute):
        base = f.value
        while isinstance(base, ast.Attribute):
            base = base.value
        if isinstance(base, ast.Name) and base.id in LOG_OBJECTS:
            return True
        if isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute) and base.func.attr == "getLogger":
            return True
    return False


def _skip_if(node: ast.If) -> bool:
    t = node.test
    if isinstance(t, ast.Name) and t.id == "TYPE_CHECKING":
        return True
    if isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING":
        return True
    if (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"):
        return True
    return False


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str, source: str):
        self.module = module
        self.source = source
        self.lines = source.splitlines()
        self.sites: list[Site] = []

    # -- helpers
    def _segment(self, node) -> str:
        return ast.get_source_segment(self.source, node) or ""

    def _add(self, node, operator: str, replacement: str, span=None):
        span = span or node
        line = span.lineno
        if NO_MUTATE in self.lines[line - 1]:
            return
        self.sites.append(Site(self.module, line, span.col_offset, span.end_lineno, span.end_col_offset, operator,
                               replacement, original=self.lines[line - 1].strip()))

    def _body_docstring(self, body):
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            return body[0]
        return None

    # -- structure
    def visit_Module(self, node):
        self._visit_body(node.body)

    def _visit_body(self, body):
        doc = self._body_docstring(body)
        for stmt in body:
            if stmt is doc:
                continue
            self.visit(stmt)

    def visit_FunctionDef(self, node):
        for d in node.decorator_list:
            self.visit(d)
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(default)
        self._visit_body(node.body)  # annotations (args, returns) are not visited

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        for d in node.decorator_list:
            self.visit(d)
        self._visit_body(node.body)

    def visit_Lambda(self, node):
        self.visit(node.body)

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node):
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_JoinedStr(self, node):
        return  # f-string parts: positions are unreliable and text mutations there are noise

    def visit_Expr(self, node):
        if _is_log_call(node.value):
            return
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a bare string (a comment-like docstring)
        if isinstance(node.value, ast.Call):
            self._add(node, "statement call -> pass", "pass")
        self.generic_visit(node)

    def visit_Call(self, node):
        if _is_log_call(node):
            return
        self.generic_visit(node)

    def visit_If(self, node):
        if _skip_if(node):
            return
        seg = self._segment(node.test)
        if seg:
            self._add(node.test, "if c -> if not c", f"not ({seg})")
        self.generic_visit(node)

    def visit_Return(self, node):
        v = node.value
        if v is not None and not (isinstance(v, ast.Constant) and v.value is None):
            self._add(v, "return x -> return None", "None")
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                self._add(v, "returned string -> XX..XX", repr("XX" + v.value + "XX"))
        self.generic_visit(node)

    # -- expressions
    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            new = CMP_SWAP.get(type(op))
            if new is None:
                continue
            ops = list(node.ops)
            ops[i] = new()
            mutated = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
            self._add(node, f"{CMP_TEXT[type(op)]} -> {CMP_TEXT[new]}", f"({ast.unparse(mutated)})")
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        new = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        name = "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        self._add(node, name, f"({ast.unparse(ast.BoolOp(op=new, values=node.values))})")
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            self._add(node, "not x -> x", f"({ast.unparse(node.operand)})")
        self.generic_visit(node)

    @staticmethod
    def _stringy(n) -> bool:
        return isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes)))

    def visit_BinOp(self, node):
        if isinstance(node.op, (ast.Add, ast.Sub)) and not (self._stringy(node.left) or self._stringy(node.right)):
            new = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            name = "+ -> -" if isinstance(node.op, ast.Add) else "- -> +"
            self._add(node, name, f"({ast.unparse(ast.BinOp(left=node.left, op=new, right=node.right))})")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        if isinstance(node.op, (ast.Add, ast.Sub)) and not self._stringy(node.value):
            new = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            name = "+= -> -=" if isinstance(node.op, ast.Add) else "-= -> +="
            self._add(node, name, ast.unparse(ast.AugAssign(target=node.target, op=new, value=node.value)))
        self.generic_visit(node)

    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, bool):
            self._add(node, f"{v} -> {not v}", str(not v))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            self._add(node, "n -> n+1", repr(v + 1))


def apply(source: str, site: Site) -> str:
    lines = source.splitlines(keepends=True)
    # byte columns (ast) -> character columns
    def char_col(line_no, byte_col):
        return len(lines[line_no - 1].encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    start = sum(len(l) for l in lines[: site.line - 1]) + char_col(site.line, site.col)
    end = sum(len(l) for l in lines[: site.end_line - 1]) + char_col(site.end_line, site.end_col)
    return source[:start] + site.replacement + source[end:]


def sites_of(module: str, root: Path = ROOT) -> list[Site]:
    source = (root / module).read_text(encoding="utf-8")
    finder = _Finder(module, source)
    finder.visit(ast.parse(source))
    good = []
    seen = set()
    for s in finder.sites:
        try:
            mutated = apply(source, s)
            if mutated == source:
                continue
            compile(mutated, module, "exec")
        except SyntaxError:
            continue
        key = (s.line, s.col, s.end_line, s.end_col, s.replacement)
        if key in seen:
            continue
        seen.add(key)
        s.mutated = mutated.splitlines()[s.line - 1].strip()
        good.append(s)
    return good
