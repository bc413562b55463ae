"""Reading and writing pipeline files safely: plain YAML only, no duplicate keys, bounded size."""

from __future__ import annotations

from typing import Any

import yaml

from estafeta.domain.errors import PipelineInvalid

MAX_BYTES = 1 << 20


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML would silently keep the last one)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            line = key_node.start_mark.line + 1
            raise PipelineInvalid([f"line {line}: the key {key!r} is given twice"])
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str | bytes, *, source: str = "pipeline") -> Any:
    if len(text) > MAX_BYTES:
        raise PipelineInvalid([f"the file is larger than {MAX_BYTES // 1024} KiB"], source=source)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PipelineInvalid(["the file is not UTF-8 text"], source=source) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except PipelineInvalid as exc:
        raise PipelineInvalid(exc.problems, source=source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PipelineInvalid([f"{where}not valid YAML ({problem})"], source=source) from None


class _Dumper(yaml.SafeDumper):
    pass


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
