"""Random damage to a working configuration: always a ConfigError, and every
problem names the key it is about.

``tests/unit/test_config.py`` already feeds ``parse_settings`` arbitrary
nested structures and checks that nothing but ``ConfigError`` escapes. This
test starts from the documented example instead, so that most of the file
stays valid and the damage reaches the checks deep inside each section, and
it also holds the messages to their promise: each problem line starts with
the key path it is about (``upload.tags[1]: ...``), so an operator can find
the line to fix.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from syncd.config import parse_settings
from syncd.errors import ConfigError
from tests.fuzz.profiles import fuzz_settings

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = yaml.safe_load((ROOT / "config.example.yaml").read_text())
ENVIRON = {"SYNCD_API_KEY": "fuzz-key", "HOME": "/home/fuzz"}
KEY = re.compile(r"[a-z_]{1,10}")
PATH = re.compile(r"^[a-z_]+(?:\.[a-z_]+|\[\d+\])*: \S")


def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        paths = [prefix] if prefix else []
        for key, value in node.items():
            paths += _leaf_paths(value, (*prefix, key))
        return paths
    if isinstance(node, list):
        paths = [prefix]
        for index, value in enumerate(node):
            paths += _leaf_paths(value, (*prefix, index))
        return paths
    return [prefix]


PATHS = _leaf_paths(EXAMPLE)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["${UNSET}", "${SYNCD_API_KEY}", "~/x", "../x", "$${x}", ""])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(KEY, fullmatch=True), inner, max_size=3)
    ),
    max_leaves=10,
)


def _put(config: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = config
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@fuzz_settings()
@given(
    damage=st.lists(
        st.tuples(
            st.sampled_from(PATHS),
            st.one_of(st.none(), st.from_regex(KEY, fullmatch=True)),
            VALUES,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_damaged_example_names_the_key_of_every_problem(
    damage: list[tuple[tuple[Any, ...], str | None, Any]],
) -> None:
    config = copy.deepcopy(EXAMPLE)
    for path, extra_key, value in damage:
        try:
            target: Any = config
            for step in path[:-1]:
                target = target[step]
            if extra_key is not None and isinstance(target, dict):
                # A key the loader does not know, beside a real one.
                target[extra_key] = value
            else:
                _put(config, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced this part of the tree

    try:
        parse_settings(config, Path("/srv/syncd-fuzz"), ENVIRON)
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:
            assert PATH.match(problem), problem
