"""The static check: read training scripts with ``ast`` for loss misuse written in the code.

It reports only what the source makes plain: the activation is in the loss call's own argument
(``F.cross_entropy(x.softmax(-1), y)``), or a variable the loss reads was assigned from it earlier in the same
function (a simple flow analysis: branches that disagree make a name unknown, function parameters are
unknown), or the value comes from a layer or model whose class is in the same file (``nn.Linear``,
``nn.Sequential(..., nn.Sigmoid())``, a module whose ``forward`` always returns ``log_softmax(...)``).
Loss objects are followed the same way (``criterion = nn.CrossEntropyLoss()`` at module level, in the
function, or as ``self.criterion`` in the class). Names resolve through the file's imports, so only torch's
losses and activations count. Anything less certain (a model passed in as an argument, a name bound in two
ways) is not reported.

Imports no torch.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from advisor.doctor.findings import FINDINGS, Finding

_LOSS_CLASSES = {
    "CrossEntropyLoss": "ce",
    "NLLLoss": "nll",
    "BCELoss": "bce",
    "BCEWithLogitsLoss": "bce_logits",
}
_LOSS_FUNCTIONS = {
    "cross_entropy": "ce",
    "nll_loss": "nll",
    "binary_cross_entropy": "bce",
    "binary_cross_entropy_with_logits": "bce_logits",
}
_LOSS_PREFIXES = ("torch.nn.", "torch.nn.modules.", "torch.nn.modules.loss.")
_ACTIVATIONS = {"softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid", "expit": "sigmoid"}
_ACTIVATION_PREFIXES = ("torch.", "torch.nn.functional.", "torch.special.")
_ACTIVATION_MODULES = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}
_LINEAR_MODULES = {
    "Linear",
    "LazyLinear",
    "Bilinear",
    *(
        f"{kind}{d}d"
        for kind in ("Conv", "LazyConv", "ConvTranspose", "LazyConvTranspose")
        for d in (1, 2, 3)
    ),
}
_PASS_MODULES = {
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "Flatten",
    "Unflatten",
    "Identity",
}
# Methods and functions whose result reads the same way as their input (a view, a copy, a device move).
_KEEP_METHODS = {
    "to",
    "cuda",
    "cpu",
    "float",
    "double",
    "half",
    "bfloat16",
    "type",
    "type_as",
    "view",
    "view_as",
    "reshape",
    "reshape_as",
    "squeeze",
    "unsqueeze",
    "flatten",
    "permute",
    "transpose",
    "t",
    "contiguous",
    "detach",
    "clone",
    "clamp",
    "clip",
    "train",
    "eval",
}
_KEEP_FUNCTIONS = {
    f"torch.{name}" for name in ("squeeze", "unsqueeze", "flatten", "reshape", "clamp", "clip")
}

# What each loss reads, and the input kinds that contradict it: kind -> what to say.
_MISUSE: dict[str, tuple[str, dict[str, str]]] = {
    "ce": (
        "softmax-into-cross-entropy",
        {
            "softmax": "probabilities, but it applies log_softmax itself",
            "sigmoid": "probabilities, but it applies log_softmax itself",
        },
    ),
    "nll": (
        "nll-without-log-softmax",
        {
            "softmax": "probabilities, but it reads log-probabilities (no log between them)",
            "sigmoid": "probabilities, but it reads log-probabilities (no log between them)",
            "logits": "raw logits, but it reads log-probabilities (no log_softmax between them)",
        },
    ),
    "bce": (
        "logits-into-bce",
        {
            "logits": "raw logits (no sigmoid between them), but it reads probabilities",
            "log_softmax": "log-probabilities, but it reads probabilities",
        },
    ),
    "bce_logits": (
        "probabilities-into-bce-with-logits",
        {
            "sigmoid": "probabilities, but it applies a sigmoid itself",
            "softmax": "probabilities, but it applies a sigmoid itself",
        },
    ),
}


@dataclass(frozen=True)
class _Value:
    """What an expression is: a tensor of a kind, a tuple of values, a module whose output is one of those, or a
    loss object.

    kind: softmax | log_softmax | sigmoid | logits (tensors and modules); ce | nll | bce | bce_logits (losses).
    items: a tuple's values, the tuple a module returns (then kind is None), or a list's last known entries
    (``complete`` False: entries before them are unknown, e.g. appended in a loop).
    """

    role: str
    kind: str | None
    origin: str
    activation: bool = False  # a module that only applies its activation (nn.Sigmoid())
    items: tuple[_Value | None, ...] | None = None
    complete: bool = True

    @property
    def signature(self) -> tuple[Any, ...]:
        items = None if self.items is None else tuple(i.signature if i else None for i in self.items)
        return self.role, self.kind, items, self.complete

    def same(self, other: _Value | None) -> bool:
        return other is not None and self.signature == other.signature


Env = dict[str, _Value]


_SOME_LIST = _Value("list", None, "a list", items=(), complete=False)


def _merge(*envs: Env) -> Env:
    """Names every branch binds the same way (a list bound differently stays a list of unknown entries)."""
    first, *rest = envs
    merged = {}
    for key, value in first.items():
        others = [env.get(key) for env in rest]
        if all(value.same(other) for other in others):
            merged[key] = value
        elif value.role == "list" and all(other is not None and other.role == "list" for other in others):
            merged[key] = _SOME_LIST
    return merged


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _target_names(target: ast.AST) -> Iterator[str]:
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute) and (dotted := _dotted(node)):
            yield dotted


def _parameters(arguments: ast.arguments) -> set[str]:
    names = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return set(names)


def _without(env: Env, names: Iterable[str]) -> Env:
    drop = set(names)
    return {k: v for k, v in env.items() if k.split(".")[0] not in drop}


def _input_argument(call: ast.Call) -> ast.expr | None:
    if call.args and not isinstance(call.args[0], ast.Starred):
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "input"), None)


@dataclass
class _Class:
    node: ast.ClassDef
    self_env: Env | None = None
    kind: _Value | None = None
    state: str = "new"  # new | running | done


class _Analysis:
    """One file's analysis: imports, classes, then every scope's statements in order."""

    def __init__(self, tree: ast.Module, source: str, path: str) -> None:
        self.tree, self.source, self.path = tree, source, path
        self.imports = self._imports(tree)
        defined = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        class_names = [n.name for n in defined]
        self.all_classes = [_Class(n) for n in defined]
        self.classes = {c.node.name: c for c in self.all_classes if class_names.count(c.node.name) == 1}
        top = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        names = [n.name for n in top]
        self.functions = {n.name: n for n in top if names.count(n.name) == 1 and not n.decorator_list}
        self._function_results: dict[str, _Value | None] = {}
        self.found: dict[tuple[str, int, int], Finding] = {}
        # every loss call seen: (line, column) -> (loss kind, the input's kind or None when unknown)
        self.loss_calls: dict[tuple[int, int], tuple[str, str | None]] = {}
        self.global_env: Env = {}
        self._module_bindings: dict[str, list[_Value | None]] = {}
        self._depth = 0
        self._current_class: list[_Class | None] = []  # the class whose method runs (None: a plain function)
        self._returns: list[list[_Value | None]] = []
        self._collect: dict[str, list[_Value | None]] | None = None
        self._deferred: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Env, _Class | None]] = []

    # ---------------------------------------------------------------------------------------------- names

    @staticmethod
    def _imports(tree: ast.Module) -> dict[str, str]:
        names: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        root = alias.name.split(".")[0]
                        names[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if alias.name != "*":
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        return names

    def qual(self, node: ast.AST, env: Env) -> str | None:
        """The imported name an expression spells (``F.softmax`` -> ``torch.nn.functional.softmax``)."""
        if isinstance(node, ast.Name):
            return None if node.id in env else self.imports.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.qual(node.value, env)
            return f"{base}.{node.attr}" if base else None
        return None

    def _is_module_name(self, node: ast.AST, env: Env) -> bool:
        """Whether ``node`` names an imported module or ``self`` (so ``node.softmax`` is not a tensor method)."""
        return self.qual(node, env) is not None or (isinstance(node, ast.Name) and node.id == "self")

    def src(self, node: ast.AST, limit: int = 50) -> str:
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 3] + "..."

    # ------------------------------------------------------------------------------------------- findings

    def report(self, finding_id: str, node: ast.AST, seen: str) -> None:
        key = (finding_id, node.lineno, node.col_offset + 1)
        if key not in self.found:
            self.found[key] = FINDINGS[finding_id].finding(
                seen, path=self.path, line=node.lineno, column=node.col_offset + 1
            )

    def _sigmoid_twice(self, call: ast.AST, inner: ast.AST | None, env: Env) -> None:
        value = self.value(inner, env) if inner is not None else None
        if value is not None and value.role == "tensor" and value.kind == "sigmoid":
            self.report(
                "sigmoid-applied-twice",
                call,
                f"`{self.src(call)}` applies a sigmoid to `{self.src(inner)}`, which comes from {value.origin}: "
                "twice squeezes every output into (0.5, 0.731].",
            )

    def _loss_call(self, call: ast.Call, env: Env) -> None:
        found = self._loss_of(call, env)
        if found is None:
            return
        kind, label = found
        argument = _input_argument(call)
        value = self.value(argument, env) if argument is not None else None
        known = value.kind if value is not None and value.role == "tensor" else None
        self.loss_calls[call.lineno, call.col_offset + 1] = (kind, known)
        if argument is None or value is None or value.role != "tensor" or value.kind is None:
            return
        finding_id, misuse = _MISUSE[kind]
        if value.kind in misuse:
            what = misuse[value.kind]
            self.report(
                finding_id, call, f"{label} reads `{self.src(argument)}`, from {value.origin}: {what}."
            )

    def _loss_of(self, call: ast.Call, env: Env) -> tuple[str, str] | None:
        """(loss kind, how to name it) when ``call`` calls one of torch's losses."""
        name = self.qual(call.func, env)
        if name is not None:
            short = name.rsplit(".", 1)[-1]
            if name.startswith("torch.nn.functional.") or name == "torch.binary_cross_entropy_with_logits":
                kind = _LOSS_FUNCTIONS.get(short)
                return (kind, self.src(call.func)) if kind else None
            return None
        if isinstance(call.func, ast.Call):  # nn.CrossEntropyLoss()(x, y)
            kind = self._loss_class(call.func.func, env)
            return (kind, f"{self.src(call.func.func)}()") if kind else None
        callee = self.value(call.func, env)
        if callee is not None and callee.role == "loss" and callee.kind:
            return callee.kind, f"`{self.src(call.func)}` ({callee.origin})"
        return None

    def _loss_class(self, func: ast.AST, env: Env) -> str | None:
        name = self.qual(func, env)
        if name is None:
            return None
        prefix, _, short = name.rpartition(".")
        return _LOSS_CLASSES.get(short) if f"{prefix}." in _LOSS_PREFIXES else None

    # --------------------------------------------------------------------------------------------- values

    def value(self, node: ast.AST | None, env: Env) -> _Value | None:
        if node is None:
            return None
        if isinstance(node, ast.Name | ast.Attribute):
            key = _dotted(node)
            return env.get(key) if key else None
        if isinstance(node, ast.Subscript):
            inner = self.value(node.value, env)
            if inner is not None and inner.role == "tuple" and inner.items is not None:
                index = node.slice
                size = len(inner.items)
                if (
                    isinstance(index, ast.Constant)
                    and isinstance(index.value, int)
                    and -size <= index.value < size
                ):
                    return inner.items[index.value]
                return None
            return inner if inner is not None and inner.role == "tensor" else None
        if isinstance(node, ast.Tuple) and not any(isinstance(e, ast.Starred) for e in node.elts):
            items = tuple(self.value(e, env) for e in node.elts)
            return _Value("tuple", None, "a tuple", items=items) if any(items) else None
        if isinstance(node, ast.List) and not any(isinstance(e, ast.Starred) for e in node.elts):
            return _Value("list", None, "a list", items=tuple(self.value(e, env) for e in node.elts))
        if isinstance(node, ast.IfExp):
            body, orelse = self.value(node.body, env), self.value(node.orelse, env)
            return body if body is not None and body.same(orelse) else None
        if isinstance(node, ast.NamedExpr):
            return self.value(node.value, env)
        if isinstance(node, ast.Call):
            return self._call_value(node, env)
        return None

    def _call_value(self, call: ast.Call, env: Env) -> _Value | None:
        func, line = call.func, call.lineno
        first = _input_argument(call)
        name = self.qual(func, env)
        if name is not None:
            return self._named_call(name, call, first, env)
        if isinstance(func, ast.Attribute) and not self._is_module_name(func.value, env):
            method = func.attr.removesuffix("_")  # x.sigmoid_() reads like x.sigmoid()
            if method in _ACTIVATIONS:
                if _ACTIVATIONS[method] == "sigmoid":
                    self._sigmoid_twice(call, func.value, env)
                return _Value("tensor", _ACTIVATIONS[method], f"{method} (line {line})")
            if method == "log":
                return self._log_of(func.value, line, env)
            if method in _KEEP_METHODS:
                return self.value(func.value, env)
        if isinstance(func, ast.Name) and func.id in self.classes and func.id not in env:
            return self._class_value(self.classes[func.id], line)
        if isinstance(func, ast.Name) and func.id in self.functions and func.id not in env:
            return self._function_value(self.functions[func.id])
        current = self._current_class[-1] if self._current_class else None
        calls_self = isinstance(func, ast.Name) and func.id == "self"  # self(x) in a LightningModule
        calls_forward = (
            isinstance(func, ast.Attribute)
            and func.attr == "forward"
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
        )
        if current is not None and (calls_self or calls_forward):
            return self._output_of(self._class_value(current, line))
        callee = self.value(func, env)
        if callee is not None and callee.role == "module":
            if callee.activation and callee.kind == "sigmoid":
                self._sigmoid_twice(call, first, env)
            return self._output_of(callee)
        return None

    @staticmethod
    def _output_of(module: _Value | None) -> _Value | None:
        if module is None or module.role != "module" or module.kind == "pass":
            return None
        if module.items is not None:
            return _Value("tuple", None, module.origin, items=module.items)
        if module.kind is None:
            return None
        return _Value(
            "tensor", module.kind, module.origin if module.activation else f"the output of {module.origin}"
        )

    def _named_call(self, name: str, call: ast.Call, first: ast.expr | None, env: Env) -> _Value | None:
        prefix, _, short = name.rpartition(".")
        line = call.lineno
        if short in _ACTIVATIONS and f"{prefix}." in _ACTIVATION_PREFIXES:
            if _ACTIVATIONS[short] == "sigmoid":
                self._sigmoid_twice(call, first, env)
            return _Value("tensor", _ACTIVATIONS[short], f"{self.src(call.func)} (line {line})")
        if name == "torch.log":
            return self._log_of(first, line, env)
        if name in _KEEP_FUNCTIONS:
            inner = self.value(first, env)
            return inner if inner is not None and inner.role == "tensor" else None
        if prefix != "torch.nn":
            kind = self._loss_class(call.func, env)
            return _Value("loss", kind, f"{name.removeprefix('torch.')}, line {line}") if kind else None
        if short in _LOSS_CLASSES:
            return _Value("loss", _LOSS_CLASSES[short], f"nn.{short}, line {line}")
        if short in _ACTIVATION_MODULES:
            return _Value("module", _ACTIVATION_MODULES[short], f"nn.{short} (line {line})", activation=True)
        if short in _LINEAR_MODULES:
            return _Value("module", "logits", f"an nn.{short} layer (line {line})")
        if short in _PASS_MODULES:
            return _Value("module", "pass", f"nn.{short}")
        if short == "Sequential":
            return self._sequential(call, env)
        return None

    def _log_of(self, node: ast.AST | None, line: int, env: Env) -> _Value | None:
        """log(p), log(p + eps) or log(p.clamp(...)) of softmax probabilities: log-probabilities."""
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            node = node.left if isinstance(node.right, ast.Constant) else node.right
        inner = self.value(node, env)
        if inner is not None and inner.role == "tensor" and inner.kind == "softmax":
            return _Value("tensor", "log_softmax", f"log of softmax (line {line})")
        return None

    def _sequential(self, call: ast.Call, env: Env) -> _Value | None:
        """nn.Sequential(a, b, c) or nn.Sequential(*layers): the kind of the last layer that is not a pass-through
        (Dropout, Flatten, Identity)."""
        if len(call.args) == 1 and isinstance(call.args[0], ast.Starred):
            listed = self.value(call.args[0].value, env)
            if listed is None or listed.role != "list" or listed.items is None:
                return None
            layers = list(listed.items)  # when they run out before a known layer: unknown
        elif any(isinstance(arg, ast.Starred) for arg in call.args):
            return None
        else:
            layers = [self.value(arg, env) for arg in call.args]
        for module in reversed(layers):
            if module is not None and module.role == "module" and module.kind == "pass":
                continue
            if module is None or module.role != "module" or module.kind is None:
                return None
            return _Value("module", module.kind, f"an nn.Sequential ending in {module.origin}")
        return None

    # ---------------------------------------------------------------------------------------------- classes

    def _class_value(self, cls: _Class, line: int) -> _Value | None:
        """A module of an in-file class whose forward always returns the same kind (or tuple of kinds)."""
        if cls.state == "new":
            cls.state = "running"
            forward = self._method(cls, "forward")
            if forward is not None and not any(  # a __call__ of its own may not run forward
                isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "__call__"
                for n in cls.node.body
            ):
                returned = _agreed(self._run_function(forward, self._class_env(cls), cls))
                name = cls.node.name
                if returned is not None and returned.role == "tensor":
                    cls.kind = _Value(
                        "module", returned.kind, f"{name}, whose forward returns {returned.origin}"
                    )
                elif returned is not None and returned.role == "tuple" and returned.items is not None:
                    items = tuple(
                        None
                        if item is None or item.role != "tensor"
                        else _Value(
                            "tensor", item.kind, f"item {i} of what {name}.forward returns, {item.origin}"
                        )
                        for i, item in enumerate(returned.items)
                    )
                    cls.kind = _Value("module", None, f"{name}.forward", items=items)
            cls.state = "done"
        return cls.kind

    def _function_value(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> _Value | None:
        """What an in-file module-level function returns, when every return agrees."""
        name = function.name
        if name not in self._function_results:
            self._function_results[name] = None  # a recursive call reads it as unknown
            returned = _agreed(self._run_function(function, {}, None))
            if returned is not None and returned.role == "tensor":
                returned = replace(returned, origin=f"{name}(), which returns {returned.origin}")
            self._function_results[name] = (
                returned if returned is not None and returned.role != "loss" else None
            )
        return self._function_results[name]

    @staticmethod
    def _method(cls: _Class, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        found = [
            n
            for n in cls.node.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name == name
            and not n.decorator_list
        ]
        return found[0] if len(found) == 1 else None

    def _class_env(self, cls: _Class) -> Env:
        """``self.x`` bound in the class's methods (followed through each method's flow), where every binding
        agrees."""
        if cls.self_env is None:
            cls.self_env = {}  # while collecting, the class's own attributes are unknown
            bindings: dict[str, list[_Value | None]] = {}
            outer, self._collect = self._collect, bindings
            try:
                for method in cls.node.body:
                    if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                        self._run_function(method, {}, None)
            finally:
                self._collect = outer
            cls.self_env = {
                name: values[0] for name, values in bindings.items() if _agreed(values) is not None
            }
        return cls.self_env

    # ------------------------------------------------------------------------------------------ statements

    def run(self) -> list[Finding]:
        self._block(self.tree.body, {})
        self.global_env = {
            name: values[0]
            for name, values in self._module_bindings.items()
            if values[0] is not None and all(values[0].same(v) for v in values)
        }
        while self._deferred:
            function, start, cls = self._deferred.pop(0)
            self._run_function(function, start, cls)
        for cls in self.all_classes:
            for method in cls.node.body:
                if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                    self._run_function(method, self._class_env(cls), cls)
        while self._deferred:
            function, start, cls = self._deferred.pop(0)
            self._run_function(function, start, cls)
        return sorted(self.found.values(), key=lambda f: (f.line or 0, f.column or 0, f.id))

    def _run_function(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef, start: Env, cls: _Class | None
    ) -> list[_Value | None]:
        env = {**self.global_env, **start}
        env = _without(env, _parameters(function.args))
        if cls is not None:
            env.update(self._class_env(cls))
        self._current_class.append(cls)
        self._returns.append([])
        self._depth += 1
        try:
            self._block(function.body, env)
        finally:
            self._depth -= 1
            returns = self._returns.pop()
            self._current_class.pop()
        return returns

    def _block(self, statements: list[ast.stmt], env: Env) -> Env:
        for statement in statements:
            env = self._statement(statement, env)
        return env

    def _record(self, key: str, value: _Value | None) -> None:
        """Note a binding of ``self.x`` while collecting a class's attributes."""
        if self._collect is not None and key.startswith("self.") and key.count(".") == 1:
            self._collect.setdefault(key, []).append(value)

    def _bind(self, target: ast.AST, value: _Value | None, env: Env) -> Env:
        env = dict(env)
        if isinstance(target, ast.Name | ast.Attribute) and (key := _dotted(target)):
            self._record(key, value)
            env = {k: v for k, v in env.items() if not k.startswith(f"{key}.")}
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
            if self._depth == 0 and isinstance(target, ast.Name):
                self._module_bindings.setdefault(target.id, []).append(value)
            return env
        if isinstance(target, ast.Subscript):  # x[...] = ... changes what x holds
            base = _dotted(target.value)
            return env if base is None else self._bind(target.value, None, env)
        if (
            isinstance(target, ast.Tuple | ast.List)
            and value is not None
            and value.items is not None
            and value.role == "tuple"
            and len(value.items) == len(target.elts)
            and not any(isinstance(e, ast.Starred) for e in target.elts)
        ):
            for element, item in zip(target.elts, value.items, strict=True):
                env = self._bind(element, item, env)
            return env
        for name in _target_names(target):  # other tuples, starred: unknown
            env.pop(name, None)
            self._record(name, None)
            if self._depth == 0 and "." not in name:
                self._module_bindings.setdefault(name, []).append(None)
        return env

    def _statement(self, node: ast.stmt, env: Env) -> Env:
        if isinstance(node, ast.Assign):
            self.scan(node.value, env)
            value = self.value(node.value, env)
            for target in node.targets:
                env = self._bind(target, value, env)
            return env
        if isinstance(node, ast.AnnAssign):
            self.scan(node.value, env)
            return self._bind(node.target, self.value(node.value, env), env) if node.value else env
        if isinstance(node, ast.AugAssign):
            self.scan(node.value, env)
            return self._bind(node.target, None, env)
        if isinstance(node, ast.Expr):
            self.scan(node.value, env)
            call = node.value
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("sigmoid_", "softmax_")
                and _dotted(call.func.value)
            ):
                return self._bind(call.func.value, self.value(call, env), env)
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and (key := _dotted(call.func.value))
            ):
                listed = env.get(key)
                if listed is not None and listed.role == "list":  # layers.append(nn.Softmax(dim=1))
                    if call.func.attr == "append" and len(call.args) == 1 and listed.items is not None:
                        grown = replace(listed, items=(*listed.items, self.value(call.args[0], env)))
                        return self._bind(call.func.value, grown, env)
                    return self._bind(call.func.value, None, env)  # extend, insert, pop, ...: unknown
            return env
        if isinstance(node, ast.Return):
            self.scan(node.value, env)
            if self._returns:
                self._returns[-1].append(self.value(node.value, env) if node.value else None)
            return env
        if isinstance(node, ast.If):
            self.scan(node.test, env)
            return _merge(self._block(node.body, dict(env)), self._block(node.orelse, dict(env)))
        if isinstance(node, ast.For | ast.AsyncFor):
            self.scan(node.iter, env)
            body = self._block(node.body, self._bind(node.target, None, env))
            return self._block(node.orelse, _merge(env, body))
        if isinstance(node, ast.While):
            self.scan(node.test, env)
            return self._block(node.orelse, _merge(env, self._block(node.body, dict(env))))
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self.scan(item.context_expr, env)
                if item.optional_vars is not None:
                    env = self._bind(item.optional_vars, None, env)
            return self._block(node.body, env)
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            body = self._block(getattr(node, "orelse", []), self._block(node.body, dict(env)))  # type: ignore[attr-defined]
            start = _merge(env, body)
            branches = [body]
            for handler in node.handlers:  # type: ignore[attr-defined]
                names = [handler.name] if handler.name else []
                branches.append(self._block(handler.body, _without(start, names)))
            return self._block(node.finalbody, _merge(*branches))  # type: ignore[attr-defined]
        if isinstance(node, ast.Match):
            self.scan(node.subject, env)
            cases = [
                self._block(case.body, _without(env, _pattern_names(case.pattern))) for case in node.cases
            ]
            return _merge(env, *cases)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                self.scan(decorator, env)
            # top-level functions see the module's settled names; nested ones what the enclosing scope bound
            start = {} if self._depth == 0 else dict(env)
            cls = self._current_class[-1] if self._current_class and self._depth > 0 else None
            self._deferred.append((node, start, cls))
            return self._bind(ast.Name(node.name), None, env)
        if isinstance(node, ast.ClassDef):
            return self._bind(ast.Name(node.name), None, env) if node.name not in self.classes else env
        if isinstance(node, ast.Delete):
            for target in node.targets:
                env = self._bind(target, None, env)
            return env
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
            return _without(env, names)
        for child in ast.iter_child_nodes(node):  # assert, raise, ...: scan their expressions
            if isinstance(child, ast.expr):
                self.scan(child, env)
        return env

    def scan(self, node: ast.AST | None, env: Env) -> None:
        """Check every call in an expression (lambda and comprehension variables shadow outer names)."""
        if node is None:
            return
        stack: list[tuple[ast.AST, Env]] = [(node, env)]
        while stack:
            current, scope = stack.pop()
            if isinstance(current, ast.Lambda):
                stack.append((current.body, _without(scope, _parameters(current.args))))
                continue
            if isinstance(current, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
                names = [n for g in current.generators for n in _target_names(g.target)]
                scope = _without(scope, names)
            if isinstance(current, ast.Call):
                self._loss_call(current, scope)
                self.value(current, scope)  # reports a sigmoid applied twice
            stack.extend((child, scope) for child in ast.iter_child_nodes(current))


def _agreed(values: list[_Value | None]) -> _Value | None:
    """The value every return gives, or None (no return, a bare return, or returns that disagree)."""
    if not values or values[0] is None:
        return None
    first = values[0]
    return first if all(first.same(v) for v in values) else None


def _pattern_names(pattern: ast.AST) -> list[str]:
    return [n.name for n in ast.walk(pattern) if isinstance(n, ast.MatchAs | ast.MatchStar) and n.name]


# ------------------------------------------------------------------------------------------------- the entry


def scan_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings in one script's source, in line order. Raises ``SyntaxError`` for source that does not parse.

    Examples
    --------
    >>> code = "import torch.nn.functional as F\\nloss = F.cross_entropy(x.softmax(-1), y)\\n"
    >>> [(f.id, f.line, f.column) for f in scan_source(code)]
    [('softmax-into-cross-entropy', 2, 8)]
    """
    return _Analysis(ast.parse(source, filename=path), source, path).run()


LossCall = tuple[int, int, str, "str | None"]


def scan_with_calls(source: str, path: str = "<string>") -> tuple[list[Finding], list[LossCall]]:
    """:func:`scan_source`'s findings, and (line, column, loss, input kind) of every torch loss call it saw;
    the kind (softmax, log_softmax, sigmoid, logits) is None where the check cannot tell what the input is.
    For measuring the check's reach."""
    analysis = _Analysis(ast.parse(source, filename=path), source, path)
    found = analysis.run()
    calls = sorted((line, column, loss, kind) for (line, column), (loss, kind) in analysis.loss_calls.items())
    return found, calls


@dataclass
class ScanResult:
    """What :func:`scan_paths` read: the files, the findings, and one line per file it could not read."""

    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.errors,
        }


def _python_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*.py")
        if p.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts)
    )


def read_source(path: Path) -> str:
    """A file's text, decoded as Python decodes source (PEP 263 cookie, else UTF-8)."""
    data = path.read_bytes()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def scan_paths(paths: Iterable[str | Path]) -> ScanResult:
    """Scan files and folders (every ``*.py`` below a folder, hidden folders skipped).

    A missing path, a file that cannot be decoded or parsed becomes one line in ``errors`` naming it.
    """
    result = ScanResult()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = _python_files(path)
        elif path.exists():
            files = [path]
        else:
            result.errors.append(f"{path}: no such file or directory")
            continue
        for file in files:
            try:
                source = read_source(file)
                result.findings += scan_source(source, str(file))
            except SyntaxError as exc:
                result.errors.append(f"{file}: line {exc.lineno}: {exc.msg} (not Python 3 source)")
                continue
            except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
                result.errors.append(f"{file}: cannot read: {exc}")
                continue
            result.files.append(str(file))
    return result
