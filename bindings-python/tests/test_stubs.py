"""The hand-written stubs (_natsbridge.pyi) and the public package agree with the native module:
the same names, and the same parameter names in the same order. A renamed or added native
function, method or argument fails here until the stub follows."""

import ast
import inspect
from pathlib import Path

import natsbridge
from natsbridge import _natsbridge as native

STUB = Path(natsbridge.__file__).with_name("_natsbridge.pyi")


def stub_tree():
    return ast.parse(STUB.read_text())


def stub_params(fn: ast.FunctionDef) -> list:
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    return [n for n in names if n != "self"]


def runtime_params(obj) -> list:
    return [p for p in inspect.signature(obj).parameters if p != "self"]


def public(names):
    return {n for n in names if not n.startswith("_") or n == "__version__"}


def test_module_names_match():
    stub = set()
    for node in stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stub.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            stub.add(node.target.id)
    stub.discard("Payload")  # a type alias of the stub only
    assert public(dir(native)) == stub


def test_function_parameters_match():
    for node in stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            assert runtime_params(getattr(native, node.name)) == stub_params(node), node.name


def test_class_members_match():
    for node in stub_tree().body:
        if not isinstance(node, ast.ClassDef) or not hasattr(native, node.name):
            continue
        cls = getattr(native, node.name)
        if issubclass(cls, BaseException):
            continue  # exception classes: attributes only
        stub_methods = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
        runtime = {n for n in vars(cls) if not n.startswith("_") or n in ("__aiter__", "__anext__", "__iter__",
                                                                          "__next__")}
        assert runtime == set(stub_methods), node.name
        for name, fn in stub_methods.items():
            member = inspect.getattr_static(cls, name)
            if isinstance(member, property) or type(member).__name__ == "getset_descriptor":
                continue
            if name.startswith("__"):
                continue  # slot wrappers have no text signature
            assert runtime_params(getattr(cls, name)) == stub_params(fn), f"{node.name}.{name}"


def test_every_error_code_has_its_class():
    assert sorted(natsbridge.ERRORS) == sorted(native.error_codes())
    for code, cls in natsbridge.ERRORS.items():
        assert cls.code == code and issubclass(cls, natsbridge.NATSBridgeError)


def test_package_all_is_importable():
    for name in natsbridge.__all__:
        assert hasattr(natsbridge, name), name
